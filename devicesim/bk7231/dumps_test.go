package bksim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpChips is what reference §12.6 says each real dump is.
var dumpChips = map[string]Chip{
	"Feit_SYW-BR30-RGBW-CA-AG_Bulb.bin":                 BK7231T,
	"Tuya_Generic_DS-101JL_4_Gang_Smart_Switch.bin":     BK7231T,
	"Kanlux_33643_S_GU10_RGBCCT_Bulb.bin":               BK7231N,
	"SmartLED_8046_2_Gang_Smart_Switch.bin":             BK7231N,
	"MOES_WK-US2-TC_In-Wall_Outlet.bin":                 BK7231N,
	"Mirabella_Genio_I003632_Plug.bin":                  BK7231N,
	"Tuya_Generic_AP-SMT-Breaker02-1CH_Smart_Relay.bin": BK7231N,
}

// TestRealDumpBootloaderCRC loads every real dump as the flash of both chips
// and checks that CheckCRC(0, 256) gives the bootloader table values of
// reference §6: 0xBA54C1B8 for the T dumps on a T (256 bytes), 0xE14191BA
// for the N dumps on an N (257 bytes). Only CRCs are reported, never dump
// contents (they hold real keys).
func TestRealDumpBootloaderCRC(t *testing.T) {
	dir := sharedDir(t)
	if dir == "" {
		t.Skip("../shared/testdata/bk7231 not found next to the repository; CRC ranges are covered by TestCheckCRCRange")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dumps in %s: %v", dir, err)
	}
	full := 0
	for _, path := range files {
		name := filepath.Base(path)
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, known := dumpChips[name]
		if len(img) != 2<<20 {
			if _, err := New(Config{Chip: BK7231T, Flash: img}); err == nil || !strings.Contains(err.Error(), "power of two") {
				t.Errorf("%s (%d bytes): New = %v, want a flash-size error", name, len(img), err)
			}
			continue
		}
		if !known {
			t.Errorf("%s: full dump not listed in reference §12.6", name)
			continue
		}
		full++
		for _, chip := range []Chip{BK7231T, BK7231N} {
			t.Run(name+"/"+chip.String(), func(t *testing.T) {
				withLinkedChip(t, Config{Chip: chip, Flash: img}, func(t *testing.T, r *rig) {
					got := r.roundTrip(crcCmd(0, 256), 11)
					std := le32(got[7:]) ^ 0xFFFFFFFF
					n := 256
					if chip == BK7231N {
						n = 257
					}
					if calc := hostCRC(img[:n]) ^ 0xFFFFFFFF; std != calc {
						t.Fatalf("chip CRC %08X, host CRC of %d bytes %08X", std, n, calc)
					}
					switch {
					case want == BK7231T && chip == BK7231T && std != 0xBA54C1B8,
						want == BK7231N && chip == BK7231N && std != 0xE14191BA,
						want == BK7231N && chip == BK7231T && std != 0x4063D299:
						t.Fatalf("bootloader CRC %08X (%s) does not match reference §6", std, knownBootloaders[std])
					}
				})
			})
		}
	}
	if full != len(dumpChips) {
		t.Errorf("found %d of the %d full dumps", full, len(dumpChips))
	}
}
