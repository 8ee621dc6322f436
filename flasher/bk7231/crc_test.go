package bk7231

import (
	"hash/crc32"
	"math/rand"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, n := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {4096, 4096}, {65536, 12345}, {3, 2 << 20}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		rng.Read(a)
		rng.Read(b)
		want := crc32.ChecksumIEEE(append(append([]byte(nil), a...), b...))
		if got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b))); got != want {
			t.Errorf("combine(%d, %d bytes) = %08X, want %08X", n[0], n[1], got, want)
		}
	}
}
