package bk7231

import (
	"testing"
)

// TestIdentifySurvivesLinkFaults: the commands that identify a chip — the
// read that tells the protocol of a bootloader not in the table (§6 step
// 2), the chip id register, the flash's JEDEC id — are retried like every
// other command when their reply is lost or garbled, or the command itself
// is lost. Found by the fault campaign: one such reply, or a chip reset in
// the middle of one, ended detect (and migrate's detect step) with "no
// reply" or "incomplete or unexpected reply", no retry and nothing about
// what to do.
func TestIdentifySurvivesLinkFaults(t *testing.T) {
	for _, cmd := range []string{"FlashRead4K", "ReadReg", "GetMID"} {
		for _, kind := range []string{"lost", "drop", "garble"} {
			t.Run(cmd+"/"+kind, func(t *testing.T) {
				f := profile("BK7231M", 2<<20, 0x1D0000)
				f.arm(cmd, kind, 0)
				withFake(t, f, Options{}, func(t *testing.T, r *fakeRig, err error) {
					if err != nil {
						t.Fatalf("identification failed on one %s %s: %v", kind, cmd, err)
					}
					if !f.fired() {
						t.Fatal("the fault was never applied")
					}
					if i := r.dev.Info(); i.Model != "BK7231M" || i.FlashSize != 2<<20 {
						t.Errorf("identified as %q with %d bytes of flash", i.Model, i.FlashSize)
					}
				})
			})
		}
	}
}
