package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds dumps and sidecars to Load. Besides never panicking: a
// backup it accepts has exactly the size and SHA-256 its sidecar names,
// and a refusal wraps ErrBadSidecar, ErrCorrupt or ErrNoSidecar.
func FuzzLoad(f *testing.F) {
	dump := []byte("\x00\x01flash dump\xff\xff")
	sum := sha256.Sum256(dump)
	good, _ := json.Marshal(Sidecar{Format: FormatV1, Family: "BK7231N", FlashSize: 2 << 20, Size: int64(len(dump)),
		SHA256: hex.EncodeToString(sum[:]), CRC32: "00000000", Date: "2026-01-02T03:04:05Z", ToolVersion: "dev"})
	f.Add(dump, good)
	f.Add(dump[:5], good)
	f.Add(dump, []byte(`{"size":14,"sha256":"abc"}`))
	f.Add(dump, []byte(`{"size":-1,"sha256":"`+hex.EncodeToString(sum[:])+`"}`))
	f.Add(dump, []byte(`[]`))
	f.Add([]byte{}, []byte(`{"size":0}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data, sidecar []byte) {
		path := filepath.Join(dir, "dump.bin")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".json", sidecar, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := Load(path, false)
		if err != nil {
			if !errors.Is(err, ErrBadSidecar) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNoSidecar) {
				t.Fatalf("unclear error %v", err)
			}
			return
		}
		sum := sha256.Sum256(b.Data)
		if int64(len(b.Data)) != b.Sidecar.Size || hex.EncodeToString(sum[:]) != b.Sidecar.SHA256 {
			t.Fatalf("accepted a backup of %d bytes whose sidecar says %d bytes, sha256 %q", len(b.Data), b.Sidecar.Size, b.Sidecar.SHA256)
		}
	})
}

// TestLoadRefusesMalformedSHA256: a sidecar whose sha256 is not 64 hex
// digits is refused as a bad sidecar (a short one used to panic while
// formatting the mismatch; found by FuzzLoad's seeds).
func TestLoadRefusesMalformedSHA256(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.bin")
	os.WriteFile(path, []byte("0123456789abcd"), 0o600)
	for _, sha := range []string{"abc", "zz" + hex.EncodeToString(make([]byte, 31)), hex.EncodeToString(make([]byte, 33))} {
		os.WriteFile(path+".json", []byte(`{"size":14,"sha256":"`+sha+`"}`), 0o600)
		if _, err := Load(path, false); !errors.Is(err, ErrBadSidecar) {
			t.Errorf("sha256 %q: err %v, want ErrBadSidecar", sha, err)
		}
	}
}
