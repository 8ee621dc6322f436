package espsim

import "fmt"

// RAM windows the ROM loader can write an upload into and run it from.
//
//   - IRAM 0x40100000–0x40110000 (64 KiB). esptool's memory map gives only
//     0x40100000–0x40108000 (reference §8.3, targets/esp8266.py
//     MEMORY_MAP), the part an SDK application keeps once it enables the
//     flash cache in the upper 32 KiB; the ROM loader runs without the
//     cache, and the esp8266-wiki memory map (rev. 2014-11-17) lists iram1
//     as 0x10000 bytes. Both Espressif stubs are uploaded into that upper
//     half (text at 0x4010C500 and 0x4010D000, reference §12.1).
//   - DRAM 0x3FFE8000–0x3FFFC000, the "user data RAM" (esp8266.com wiki,
//     ESP8266 Memory Map). 0x3FFFC000–0x40000000 is the ROM's own "ETS
//     system data RAM" (flashchip 0x3FFFC714, UartDev 0x3FFFDE10 and the
//     loader's stack, reference §8.3): an upload there overwrites the
//     running loader.
//
// Code runs only from IRAM: the lx106 fetches instructions over the
// instruction bus, which does not reach the data RAM.
var (
	iramWindow = span{0x40100000, 0x10000}
	dramWindow = span{0x3FFE8000, 0x14000}
)

// span is an address range [addr, addr+size).
type span struct{ addr, size uint32 }

func (s span) end() uint64 { return uint64(s.addr) + uint64(s.size) }

func (s span) contains(o span) bool {
	return o.addr >= s.addr && o.end() <= s.end()
}

// checkUpload decides whether the RAM image uploaded with MEM_BEGIN /
// MEM_DATA would run when MEM_END jumps to entry, as the chip would run
// it. The criteria, all required:
//
//  1. something was uploaded;
//  2. every MEM_BEGIN range lies wholly inside one RAM window (IRAM or
//     DRAM above);
//  3. every byte MEM_BEGIN announced arrived in a MEM_DATA block (a hole
//     leaves whatever the RAM held);
//  4. the entry point lies in IRAM, inside uploaded bytes, with at least
//     3 bytes (one Xtensa instruction) of them from the entry on.
//
// A failure names the first unmet criterion. The bytes themselves are not
// looked at: whether they are a flasher stub, and which one, the
// simulator cannot tell (Config.Stub).
func checkUpload(announced []span, uploaded []memSegment, entry uint32) error {
	if len(uploaded) == 0 {
		return fmt.Errorf("MEM_END jumps to 0x%08X but nothing was uploaded", entry)
	}
	for _, a := range announced {
		if !iramWindow.contains(a) && !dramWindow.contains(a) {
			return fmt.Errorf("segment 0x%08X+0x%X lies outside the RAM the loader can use (IRAM 0x40100000-0x40110000, DRAM 0x3FFE8000-0x3FFFC000)", a.addr, a.size)
		}
		if missing, at := uncovered(a, uploaded); missing {
			return fmt.Errorf("segment 0x%08X+0x%X: no MEM_DATA delivered the bytes at 0x%08X", a.addr, a.size, at)
		}
	}
	for _, u := range uploaded {
		s := span{u.addr, uint32(len(u.data))}
		if !iramWindow.contains(s) && !dramWindow.contains(s) {
			return fmt.Errorf("data at 0x%08X+0x%X lies outside the RAM the loader can use", s.addr, s.size)
		}
	}
	if !iramWindow.contains(span{entry, 3}) {
		return fmt.Errorf("entry point 0x%08X is not in instruction RAM (0x40100000-0x40110000)", entry)
	}
	if missing, _ := uncovered(span{entry, 3}, uploaded); missing {
		return fmt.Errorf("entry point 0x%08X lies outside the uploaded code", entry)
	}
	return nil
}

// uncovered reports the first address of s that no uploaded block covers.
func uncovered(s span, uploaded []memSegment) (bool, uint32) {
	a := uint64(s.addr)
	for a < s.end() {
		next := a
		for _, u := range uploaded {
			if uint64(u.addr) <= a && a < uint64(u.addr)+uint64(len(u.data)) {
				next = max(next, uint64(u.addr)+uint64(len(u.data)))
			}
		}
		if next == a {
			return true, uint32(a)
		}
		a = next
	}
	return false, 0
}
