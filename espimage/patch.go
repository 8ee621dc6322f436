package espimage

import "encoding/binary"

// PatchHeader sets the flash mode (header byte 2) and the flash size and
// frequency (header byte 3) of the image the ROM boots from 0x0, as esptool
// does for --flash-mode/--flash-size/--flash-freq. size is an esptool size
// name ("1MB", "4MB-c1" …) or "keep"; freq is "40m", "26m", "20m", "80m" or
// "keep"; mode may be ModeKeep.
//
// Only bytes 2 and 3 change, and only when their value changes: otherwise
// b comes back as it is with changed=false. A patched image is a new slice;
// b is never modified. The checksums stay valid: the V1 XOR checksum does
// not cover the header; the Arduino whole-file CRC does, so when the file
// carries a valid one it is computed again; a stale one is left stale. The
// ESP8266 image format has no SHA-256 digest (esptool appends one only for
// ESP32-family images), so there is no digest to update.
//
// The file must parse (see Parse); a V2 application (0xEA) is refused with
// ErrNotPatchable: the ROM does not boot it and the SDK bootloader in front
// of it holds the flash settings. Callers patch only what they write at
// 0x0, and never a restored backup.
func PatchHeader(b []byte, mode FlashMode, size, freq string) (patched []byte, changed bool, err error) {
	if mode != ModeKeep && (mode < ModeQIO || mode > ModeDOUT) {
		return b, false, errAt(ErrNotPatchable, 2, "flash mode %d is none of qio/qout/dio/dout", int(mode))
	}
	im, err := Parse(b)
	if err != nil {
		return b, false, err
	}
	if im.Format != FormatV1 {
		return b, false, errAt(ErrNotPatchable, 0, "a %v is written behind a bootloader and its header is not patched", im.Format)
	}
	b2, b3 := b[2], b[3]
	if mode != ModeKeep {
		b2 = byte(mode)
	}
	if size != "" && size != "keep" {
		code, err := SizeCode(size)
		if err != nil {
			return b, false, err
		}
		b3 = code | b3&0x0F
	}
	if freq != "" && freq != "keep" {
		code, err := FreqCode(freq)
		if err != nil {
			return b, false, err
		}
		b3 = b3&0xF0 | code
	}
	if b2 == b[2] && b3 == b[3] {
		return b, false, nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	out[2], out[3] = b2, b3
	if c := im.EbootCRC; c != nil && c.Valid {
		binary.LittleEndian.PutUint32(out[ebootCRCValOffset:], ebootCRC(out[:c.Length]))
	}
	return out, true, nil
}
