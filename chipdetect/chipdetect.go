// Package chipdetect finds out which family of chip is at the end of a
// serial port when the user does not say: it sends Beken link checks every
// few milliseconds and slots an ESP SYNC in about every 100 ms, within one
// power-cycle prompt, because a BK7231 only listens right after reset
// (bk7231-protocol.md §2.2) while an ESP8266 with GPIO0 held low stays in
// its loader.
package chipdetect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/flasher/bk7231"
	"github.com/tuyaflash/tuyaflash/flasher/esp8266"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Kind is the family that answered.
type Kind int

// Kinds.
const (
	None Kind = iota
	Beken
	Espressif
)

func (k Kind) String() string {
	switch k {
	case Beken:
		return "Beken BK72xx"
	case Espressif:
		return "Espressif ESP8266"
	}
	return "none"
}

// Timing of the combined loop.
const (
	espEvery   = 100 * time.Millisecond // an ESP SYNC this often
	bekenEvery = 5 * time.Millisecond   // a Beken LinkCheck this often
	promptText = "Waiting for the chip: power-cycle the module now. BK7231: just power-cycle it (or briefly short CEN to GND). ESP8266: hold GPIO0 to GND while powering it up."
)

// NoAnswerHint is what the bench user checks when neither family answers;
// its last line lists every --chip value (flasher.Families).
var NoAnswerHint = `neither a BK72xx nor an ESP8266 answered. Check, in this order:
  - the module was power-cycled while tuyaflash was waiting (BK7231: it only listens right after reset; ESP8266: GPIO0 held to GND during power-up)
  - RX/TX are crossed: adapter TX -> module RX (BK7231: RX1/P10; ESP8266: RXD), adapter RX <- module TX
  - the 3.3 V supply gives at least 300 mA (the adapter's own 3.3 V pin is often too weak), with a common GND
  - the adapter runs at 3.3 V logic, not 5 V
  - nothing else drives RX/TX (TuyaMCU boards: hold the MCU in reset or isolate it)
  - if you know the chip, say so with --chip (` + chipNames() + `)`

// chipNames lists the families --chip takes, lower case.
func chipNames() string {
	var s []string
	for _, f := range flasher.Families {
		s = append(s, strings.ToLower(string(f)))
	}
	return strings.Join(s, ", ")
}

// Wait runs the combined loop on p at 115200 baud until a chip answers or
// timeout passes. LinkChecks go out every 5 ms without pause — a BK7231's
// listening window after reset is short — with a SYNC slotted in every
// 100 ms, and one reader looks for either reply. The chip is left linked: a
// Beken in download mode, an ESP8266 in its loader.
func Wait(ctx context.Context, p transport.Port, timeout time.Duration, events flasher.Notify) (Kind, error) {
	if err := p.SetBaudRate(bk7231.LinkBaud); err != nil {
		return None, fmt.Errorf("set %d baud: %w", bk7231.LinkBaud, err)
	}
	events.Emit(flasher.Action, promptText)
	link, sync := bk7231.LinkCheckFrame(), esp8266.SyncFrame()
	deadline := time.Now().Add(timeout)
	var nextESP time.Time
	seen := make([]byte, 0, 1024)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return None, err
		}
		if !time.Now().Before(nextESP) {
			nextESP = time.Now().Add(espEvery)
			if err := transport.WriteAll(p, sync); err != nil {
				return None, err
			}
		}
		if err := transport.WriteAll(p, link); err != nil {
			return None, err
		}
		// Read until the next LinkCheck is due.
		next := time.Now().Add(bekenEvery)
		for {
			left := time.Until(next)
			if left <= 0 {
				break
			}
			if err := p.SetReadTimeout(left); err != nil {
				return None, err
			}
			n, err := p.Read(buf)
			if err != nil {
				return None, err
			}
			if n == 0 {
				break
			}
			if len(seen) > 512 {
				seen = append(seen[:0], seen[len(seen)-16:]...)
			}
			seen = append(seen, buf[:n]...)
			switch {
			case bk7231.HasLinkCheckReply(seen):
				return Beken, nil
			case esp8266.HasSyncReply(seen):
				return Espressif, nil
			}
		}
	}
	return None, &flasher.HintError{Err: fmt.Errorf("no chip answered within %v: %w", timeout, flasher.ErrNoLink), Hint: NoAnswerHint}
}
