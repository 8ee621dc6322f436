package bk7231

import (
	"testing"
)

// TestIdentifyProbeSurvivesLinkFaults: the read that tells the protocol of
// a bootloader not in the table (§6 step 2) is retried like every other
// command when its reply is lost or garbled. Found by the fault campaign:
// one garbled reply ended migrate's detect step with "incomplete or
// unexpected reply", no retry and nothing about what to do.
func TestIdentifyProbeSurvivesLinkFaults(t *testing.T) {
	for _, kind := range []string{"lost", "drop", "garble"} {
		t.Run(kind, func(t *testing.T) {
			f := profile("BK7231M", 2<<20, 0x1D0000)
			f.arm(longCmdName(0x09), kind, 0)
			withFake(t, f, Options{}, func(t *testing.T, r *fakeRig, err error) {
				if err != nil {
					t.Fatalf("identification failed on one %s reply: %v", kind, err)
				}
				if !f.fired() {
					t.Fatal("the fault was never applied")
				}
				if m := r.dev.Info().Model; m != "BK7231M" {
					t.Errorf("identified as %q", m)
				}
			})
		})
	}
}
