package fwtest

import (
	"bytes"
	"hash/crc32"
	"testing"
)

func TestBekenBootloaderCRCsAreForged(t *testing.T) {
	for _, c := range []struct {
		crc  uint32
		over int
	}{{BootCRCT, 256}, {BootCRCN, 257}, {BootCRCU, 256}} {
		img := Beken(c.crc, c.over, nil, 0x20000)
		if got := crc32.ChecksumIEEE(img[:c.over]); got != c.crc {
			t.Errorf("CRC over %d bytes = %08X, want %08X", c.over, got, c.crc)
		}
		// every unit of the bootloader area keeps a valid CRC16
		for off := 0; off+34 <= 0x11000; off += 34 {
			if CMS(img[off:off+32]) != uint16(img[off+32])<<8|uint16(img[off+33]) {
				t.Fatalf("unit at 0x%X has a bad CRC16", off)
			}
		}
	}
}

func TestCMSCheckValue(t *testing.T) {
	// CRC-16/CMS check value from the CRC catalogue: "123456789" → 0xAEE7.
	if got := CMS([]byte("123456789")); got != 0xAEE7 {
		t.Errorf("CMS check = %04X, want AEE7", got)
	}
}

func TestUF2BlocksAre512Bytes(t *testing.T) {
	f := LibreTinyUF2(0x7B3EF230, App(SigTuya, 0x400, 1), 0x1000, Frame(RBL(0, 0, "app", "1")))
	if len(f)%512 != 0 || !bytes.HasPrefix(f, []byte("UF2\n")) {
		t.Errorf("%d bytes, starts % X", len(f), f[:4])
	}
}
