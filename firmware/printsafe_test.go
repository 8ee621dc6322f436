package firmware

import (
	"strings"
	"testing"

	"github.com/tuyaflash/tuyaflash/firmware/fwtest"
)

// TestDetectionStringsAreSafeToPrint: the version and names an image
// carries (an RBL header here, and the file's name) reach firmware
// verify's output with their control characters as visible escapes.
func TestDetectionStringsAreSafeToPrint(t *testing.T) {
	const payload = "\x1b[2J\x1b]0;x\x07\n"
	img := append(fwtest.RBL(2, 1, "app"+payload[:4], "1.0"+payload), fwtest.PRNG(4000, 9)...)
	d, err := Detect(img, "fw"+payload+".bin")
	if d == nil || err == nil {
		t.Fatalf("an OTA package: %+v %v, want a refusal", d, err)
	}
	all := strings.Join(append([]string{d.Name, d.Version, d.Describe(), err.Error()}, d.Notes...), "|")
	for _, r := range all {
		if r < 0x20 || r == 0x7F {
			t.Fatalf("detection holds %U: %q", r, all)
		}
	}
	if !strings.Contains(d.Version, `\x1b[2J`) {
		t.Errorf("version %q: the escape sequence should be visible", d.Version)
	}
}
