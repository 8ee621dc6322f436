package espimage

import (
	"fmt"
	"hash/crc32"
)

// Parse reads an ESP8266 firmware file: a V1 image at offset 0 (what the ROM
// boots) with, behind it, an application at 0x1000 where the file has one
// (Arduino eboot + sketch as Tasmota and ESPHome ship, or SDK boot_v1.x +
// a V2 user1.bin as in stock Tuya flash), or a lone V2 application. It
// walks every segment with bounds checks, verifies the XOR checksums, the
// V2 CRC32 and the Arduino whole-file CRC, and returns an *ImageError
// (ErrNotImage, ErrMalformed or ErrChecksum) saying why a file is refused.
// A stale Arduino CRC is only a warning: esptool patches headers without
// updating it and such files boot.
func Parse(b []byte) (*Image, error) {
	if len(b) == 0 {
		return nil, errAt(ErrNotImage, 0, "the file is empty")
	}
	var im *Image
	var err error
	switch b[0] {
	case MagicV1:
		im, err = parseV1(b, 0, nil)
	case MagicV2:
		im, err = parseV2(b, 0)
	default:
		return nil, notImage(b)
	}
	if err != nil {
		return nil, err
	}
	if im.Format == FormatV1 && im.End <= AppOffset && len(b) > AppOffset+8 {
		var app *Image
		switch b[AppOffset] {
		case MagicV1:
			crc := ebootCRCRange(b)
			app, err = parseV1(b, AppOffset, crc)
			if err == nil && crc != nil {
				im.EbootCRC, im.Warnings = checkEbootCRC(b, im.Warnings)
			}
		case MagicV2:
			app, err = parseV2(b, AppOffset)
		}
		if err != nil {
			return nil, fmt.Errorf("application image at 0x%X: %w", AppOffset, err)
		}
		if app != nil {
			im.App = app
			for _, w := range app.Warnings {
				im.Warnings = append(im.Warnings, fmt.Sprintf("application at 0x%X: %s", AppOffset, w))
			}
		}
	}
	return im, nil
}

// header reads the 8-byte common header at off.
func header(b []byte, off int, magic byte) (count int, mode FlashMode, sizeFreq byte, entry uint32, err error) {
	if len(b)-off < 8 {
		return 0, 0, 0, 0, errAt(ErrMalformed, off, "image header is cut short: %d of 8 bytes", len(b)-off)
	}
	if b[off] != magic {
		return 0, 0, 0, 0, errAt(ErrMalformed, off, "expected image magic 0x%02X, found 0x%02X", magic, b[off])
	}
	return int(b[off+1]), FlashMode(b[off+2]), b[off+3], le32(b, off+4), nil
}

// parseV1 reads a V1 image at off. skip, when set, is a file range whose
// bytes may be left out of the checksum (the Arduino CRC words, which
// elf2bin.py fills in after computing the checksum over zeros).
func parseV1(b []byte, off int, skip *[2]int) (*Image, error) {
	n, mode, sf, entry, err := header(b, off, MagicV1)
	if err != nil {
		return nil, err
	}
	im := &Image{Format: FormatV1, Offset: off, FlashMode: mode, FlashSizeFreq: sf, Entry: entry}
	im.checkHeaderCodes()
	pos, sum, err := im.segments(b, off+8, n, 0)
	if err != nil {
		return nil, err
	}
	return im, im.checksum(b, off, pos, sum, skip)
}

// parseV2 reads a V2 (SDK OTA) application at off: a 0xEA header, the
// flash-mapped IROM part, then a V1 header with the RAM segments, the
// checksum and a CRC32 of everything before it.
func parseV2(b []byte, off int) (*Image, error) {
	count, mode1, sf1, entry1, err := header(b, off, MagicV2)
	if err != nil {
		return nil, err
	}
	im := &Image{Format: FormatV2, Offset: off}
	if count != 4 {
		im.warn("V2 header has %d where 4 is usual", count)
	}
	pos := off + 8
	if len(b)-pos < 8 {
		return nil, errAt(ErrMalformed, pos, "IROM segment header is cut short")
	}
	if size := le32(b, pos+4); uint64(size) > uint64(len(b)-pos-8) {
		return nil, errAt(ErrMalformed, pos, "IROM segment claims %d bytes, only %d remain", size, len(b)-pos-8)
	}
	size := int(le32(b, pos+4))
	im.Segments = append(im.Segments, Segment{Addr: 0, Offset: pos + 8, Size: size})
	pos += 8 + size
	n, mode, sf, entry, err := header(b, pos, MagicV1)
	if err != nil {
		return nil, fmt.Errorf("second header of V2 image: %w", err)
	}
	im.FlashMode, im.FlashSizeFreq, im.Entry = mode, sf, entry
	if mode != mode1 || sf != sf1 || entry != entry1 {
		im.warn("the two V2 headers disagree (mode %d/%d, size-freq 0x%02X/0x%02X, entry 0x%08X/0x%08X); the second is used", mode1, mode, sf1, sf, entry1, entry)
	}
	im.checkHeaderCodes()
	pos, sum, err := im.segments(b, pos+8, n, 1)
	if err != nil {
		return nil, err
	}
	if err := im.checksum(b, off, pos, sum, nil); err != nil {
		return nil, err
	}
	if len(b)-im.End < 4 {
		im.warn("no CRC32 after the V2 image")
		return im, nil
	}
	stored := le32(b, im.End)
	if got := sdkCRC32(b[off:im.End]); got != stored {
		return nil, errAt(ErrChecksum, im.End, "V2 image CRC32 is 0x%08X, the data gives 0x%08X: the file is damaged", stored, got)
	}
	im.V2CRC = &stored
	im.End += 4
	return im, nil
}

// segments walks n segment headers from pos and returns the position after
// the last one and the XOR checksum of their data. first is the index the
// first of them gets in im.Segments' numbering (for messages).
func (im *Image) segments(b []byte, pos, n, first int) (int, byte, error) {
	if n == 0 || n > maxSegments {
		return 0, 0, errAt(ErrMalformed, pos-7, "segment count is %d; an image has 1 to %d", n, maxSegments)
	}
	sum := byte(ChecksumSeed)
	for i := range n {
		if len(b)-pos < 8 {
			return 0, 0, errAt(ErrMalformed, pos, "segment %d header is cut short (file ends)", first+i)
		}
		addr := le32(b, pos)
		size := le32(b, pos+4)
		if addr < addrLow || addr >= iromMapEnd {
			return 0, 0, errAt(ErrNotImage, pos, "segment %d loads at 0x%08X, outside the ESP8266 address space (an ESP32 image, or not an image at all)", first+i, addr)
		}
		if uint64(size) > uint64(len(b)-pos-8) {
			return 0, 0, errAt(ErrMalformed, pos, "segment %d (load 0x%08X) claims %d bytes but only %d remain in the file", first+i, addr, size, len(b)-pos-8)
		}
		irom := addr >= iromMapStart
		if !irom && (addr < ramLow || size > maxRAMSegment) {
			im.warn("suspicious segment %d: 0x%08X, %d bytes", first+i, addr, size)
		}
		data := b[pos+8 : pos+8+int(size)]
		for _, c := range data {
			sum ^= c
		}
		im.Segments = append(im.Segments, Segment{Addr: addr, Offset: pos + 8, Size: int(size), InChecksum: true})
		pos += 8 + int(size)
	}
	return pos, sum, nil
}

// checksum finds the checksum byte after the segments (zero padding up to
// the last byte of a 16-byte line, counted from the image start) and checks
// it.
func (im *Image) checksum(b []byte, off, pos int, sum byte, skip *[2]int) error {
	at := off + ((pos - off) | 15)
	if at >= len(b) {
		return errAt(ErrMalformed, pos, "file ends before the checksum byte at 0x%X", at)
	}
	im.Checksum = b[at]
	im.End = at + 1
	if im.Checksum == sum {
		return nil
	}
	if skip != nil && im.covers(skip[0], skip[1]) {
		alt := sum
		for _, c := range b[skip[0]:skip[1]] {
			alt ^= c
		}
		if im.Checksum == alt {
			return nil
		}
	}
	return errAt(ErrChecksum, at, "stored checksum 0x%02X, the segments give 0x%02X: the file is damaged", im.Checksum, sum)
}

// covers reports whether [from, to) lies inside one checksummed segment.
func (im *Image) covers(from, to int) bool {
	for _, s := range im.Segments {
		if s.InChecksum && from >= s.Offset && to <= s.Offset+s.Size {
			return true
		}
	}
	return false
}

func (im *Image) checkHeaderCodes() {
	if im.FlashMode < ModeQIO || im.FlashMode > ModeDOUT {
		im.warn("flash mode byte %d is none of qio/qout/dio/dout", int(im.FlashMode))
	}
	if _, _, ok := im.FlashSize(); !ok {
		im.warn("unknown flash size code 0x%X", im.FlashSizeFreq>>4)
	}
	if im.FlashFreq() == "" {
		im.warn("unknown flash frequency code 0x%X", im.FlashSizeFreq&0xF)
	}
}

func (im *Image) warn(format string, args ...any) {
	im.Warnings = append(im.Warnings, fmt.Sprintf(format, args...))
}

// sdkCRC32 is the CRC the SDK bootloader checks after a V2 image (esptool
// bin_image.py esp8266_crc32): the zlib CRC-32, inverted when its top bit
// is set, else plus one.
func sdkCRC32(b []byte) uint32 {
	c := crc32.ChecksumIEEE(b)
	if c&0x80000000 != 0 {
		return c ^ 0xFFFFFFFF
	}
	return c + 1
}

// ebootCRCRange returns the range of the Arduino CRC words when the file is
// long enough to hold them.
func ebootCRCRange(b []byte) *[2]int {
	if len(b) < ebootCRCValOffset+4 {
		return nil
	}
	return &[2]int{ebootCRCLenOffset, ebootCRCValOffset + 4}
}

// checkEbootCRC reads and checks the Arduino CRC words. The words are
// only taken for a CRC when the length word matches the file (or a prefix
// of it whose CRC matches): builds made without elf2bin's CRC step have
// code there.
func checkEbootCRC(b []byte, warnings []string) (*EbootCRC, []string) {
	l := le32(b, ebootCRCLenOffset)
	if l < ebootCRCValOffset+4 || uint64(l) > uint64(len(b)) {
		return nil, warnings
	}
	c := &EbootCRC{Length: l, Stored: le32(b, ebootCRCValOffset)}
	c.Valid = ebootCRC(b[:l]) == c.Stored
	switch {
	case int(l) < len(b) && !c.Valid:
		return nil, warnings
	case int(l) < len(b):
		warnings = append(warnings, fmt.Sprintf("%d bytes follow the end the Arduino CRC covers", len(b)-int(l)))
	case !c.Valid:
		warnings = append(warnings, "the Arduino whole-file CRC does not match (header patched by another tool, or damage outside the segments); ESP.checkFlashCRC() will fail on the device")
	}
	return c, warnings
}
