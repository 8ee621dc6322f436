package ops

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tuyaflash/tuyaflash/espimage"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// bekenAppSignature starts every Tuya-key encrypted BK7231 app (the
// encrypted "b #0x40; ldr pc,[pc,#0x14]", bk7231-protocol.md §6).
var bekenAppSignature = []byte{0x2F, 0x07, 0xB5, 0x94, 0x35, 0xFF, 0x2A, 0x9B}

// ImageOptions say how a user image is prepared for the chip.
type ImageOptions struct {
	// FlashMode is the ESP flash mode to put in an image written at 0x0
	// (espimage.ModeKeep leaves it).
	FlashMode espimage.FlashMode
	// FlashSize and FlashFreq are esptool names or "keep".
	FlashSize, FlashFreq string
	// Raw writes the bytes as they are: no image checks, no patching.
	Raw bool
}

// PrepareImage checks that data is an image for the connected family and,
// for an ESP8266 image written at 0x0, sets the flash mode/size/frequency
// bytes of its header (only when they change; checksums stay valid). It
// never touches a full flash dump. Refusals wrap flasher.ErrRefused and name
// the flag that overrides them.
func PrepareImage(info flasher.Info, addr uint32, data []byte, o ImageOptions) ([]byte, []string, error) {
	if o.Raw {
		return data, []string{"--raw: written as it is, no image checks"}, nil
	}
	_, espErr := espimage.Parse(data)
	isESP := espErr == nil
	isBeken := bytes.HasPrefix(data, bekenAppSignature) || len(data) > 0x11008 && bytes.Equal(data[0x11000:0x11008], bekenAppSignature)
	switch {
	case info.Family.Beken() && isESP:
		return nil, nil, fmt.Errorf("this is an ESP8266 firmware image, the chip is a %s (pick the %s build): %w", info.Family, info.Family, flasher.ErrRefused)
	case info.Family.Espressif() && isBeken:
		return nil, nil, fmt.Errorf("this is a Beken BK7231 image, the chip is an %s (pick the ESP8266 build, e.g. tasmota.bin): %w", info.Family, flasher.ErrRefused)
	case !info.Family.Espressif():
		return data, nil, nil
	}
	if info.Family == flasher.ESP8285 && o.FlashMode != espimage.ModeKeep && o.FlashMode != espimage.ModeDOUT {
		return nil, nil, fmt.Errorf("the ESP8285's embedded flash runs in DOUT mode only; --flash-mode %s would not boot: %w", o.FlashMode, flasher.ErrRefused)
	}
	if addr != 0 {
		return data, nil, nil
	}
	if !isESP {
		var ie *espimage.ImageError
		reason := espErr.Error()
		if errors.As(espErr, &ie) {
			reason = ie.Reason
		}
		return nil, nil, fmt.Errorf("not an ESP8266 firmware image (%s); at 0x0 it would not boot (--raw writes it anyway): %w", reason, flasher.ErrRefused)
	}
	if len(data) == info.FlashSize {
		return data, []string{"full flash image: written byte-exact, header not patched"}, nil
	}
	size, freq := o.FlashSize, o.FlashFreq
	if size == "" {
		size = "keep"
	}
	if freq == "" {
		freq = "keep"
	}
	patched, changed, err := espimage.PatchHeader(data, o.FlashMode, size, freq)
	if err != nil {
		return nil, nil, fmt.Errorf("patch the image header: %w", err)
	}
	if !changed {
		return data, nil, nil
	}
	return patched, []string{fmt.Sprintf("image header set to flash mode %s (bytes 2-3 only; checksums kept valid)", o.FlashMode)}, nil
}
