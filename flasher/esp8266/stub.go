package esp8266

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Stub is a flasher stub: RAM code that replaces the ROM loader and speaks
// the stub protocol (READ_FLASH, compressed writes, MD5, baud change).
type Stub struct {
	Text      []byte // loaded at TextStart (IRAM)
	Data      []byte // loaded at DataStart (DRAM); may be empty
	TextStart uint32
	DataStart uint32
	Entry     uint32
	// BSSStart is the start of the stub's zeroed data, when the file
	// names it (informational: nothing is uploaded there).
	BSSStart uint32
}

// The ESP8266 RAM a stub may occupy: IRAM 0x40100000–0x40110000 (the
// upper half is the instruction cache, free in download mode: esptool's
// stubs load at 0x4010C500 and 0x4010D000) and DRAM 0x3FFE8000–0x40000000
// (esptool targets/esp8266.py MEMORY_MAP).
const (
	iramStart, iramEnd = 0x40100000, 0x40110000
	dramStart, dramEnd = 0x3FFE8000, 0x40000000
)

// stubJSON is esptool's stub file layout (loader.py StubFlasher).
type stubJSON struct {
	Text      *string `json:"text"`
	Data      *string `json:"data"`
	TextStart *uint32 `json:"text_start"`
	DataStart *uint32 `json:"data_start"`
	Entry     *uint32 `json:"entry"`
	BSSStart  *uint32 `json:"bss_start"`
}

// StubError says what is wrong with a stub file.
type StubError struct {
	Field  string // JSON key, "" for the file as a whole
	Reason string
}

func (e *StubError) Error() string {
	if e.Field == "" {
		return "stub file: " + e.Reason
	}
	return fmt.Sprintf("stub file: %q %s", e.Field, e.Reason)
}

// LoadStub reads a stub in esptool's JSON layout: "text" and "data" as
// base64, "text_start", "data_start", "entry" and optionally "bss_start"
// as numbers. Errors (*StubError) name the field at fault.
func LoadStub(r io.Reader) (*Stub, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, &StubError{Reason: "cannot read: " + err.Error()}
	}
	var j stubJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&j); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &StubError{Field: te.Field, Reason: fmt.Sprintf("must be a %s, not a JSON %s", te.Type, te.Value)}
		}
		return nil, &StubError{Reason: "not esptool's JSON stub layout: " + err.Error()}
	}
	s := &Stub{}
	if j.Text == nil {
		return nil, &StubError{Field: "text", Reason: "is missing"}
	}
	if s.Text, err = base64.StdEncoding.DecodeString(*j.Text); err != nil {
		return nil, &StubError{Field: "text", Reason: "is not base64: " + err.Error()}
	}
	if len(s.Text) == 0 {
		return nil, &StubError{Field: "text", Reason: "is empty"}
	}
	if j.TextStart == nil {
		return nil, &StubError{Field: "text_start", Reason: "is missing"}
	}
	s.TextStart = *j.TextStart
	if j.Entry == nil {
		return nil, &StubError{Field: "entry", Reason: "is missing"}
	}
	s.Entry = *j.Entry
	if j.Data != nil {
		if s.Data, err = base64.StdEncoding.DecodeString(*j.Data); err != nil {
			return nil, &StubError{Field: "data", Reason: "is not base64: " + err.Error()}
		}
		if len(s.Data) > 0 && j.DataStart == nil {
			return nil, &StubError{Field: "data_start", Reason: "is missing (the file has \"data\")"}
		}
	}
	if j.DataStart != nil {
		s.DataStart = *j.DataStart
	}
	if j.BSSStart != nil {
		s.BSSStart = *j.BSSStart
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// check verifies that the segments fit the ESP8266's RAM and the entry
// point lies in the code.
func (s *Stub) check() error {
	end := uint64(s.TextStart) + uint64(len(s.Text))
	if s.TextStart < iramStart || end > iramEnd {
		return &StubError{Field: "text_start", Reason: fmt.Sprintf("puts %d bytes of code at 0x%08X–0x%08X, outside the ESP8266's IRAM (0x%08X–0x%08X): not an ESP8266 stub?", len(s.Text), s.TextStart, end, iramStart, iramEnd)}
	}
	if len(s.Data) > 0 {
		dend := uint64(s.DataStart) + uint64(len(s.Data))
		if s.DataStart < dramStart || dend > dramEnd {
			return &StubError{Field: "data_start", Reason: fmt.Sprintf("puts %d bytes at 0x%08X–0x%08X, outside the ESP8266's DRAM (0x%08X–0x%08X)", len(s.Data), s.DataStart, dend, dramStart, dramEnd)}
		}
	}
	if s.Entry < s.TextStart || uint64(s.Entry) >= end {
		return &StubError{Field: "entry", Reason: fmt.Sprintf("0x%08X is outside the code (0x%08X–0x%08X)", s.Entry, s.TextStart, end)}
	}
	return nil
}

// overlaps reports whether any segment of s lies where o's do: a loader
// cannot load a stub over itself.
func (s *Stub) overlaps(o *Stub) bool {
	segs := func(x *Stub) [][2]uint64 {
		return [][2]uint64{
			{uint64(x.TextStart), uint64(x.TextStart) + uint64(len(x.Text))},
			{uint64(x.DataStart), uint64(x.DataStart) + uint64(len(x.Data))},
		}
	}
	for _, a := range segs(s) {
		for _, b := range segs(o) {
			if a[0] < a[1] && b[0] < b[1] && a[0] < b[1] && b[0] < a[1] {
				return true
			}
		}
	}
	return false
}

// ohai is the stub's greeting frame.
var ohai = []byte("OHAI")

// runStub uploads s with MEM_BEGIN/MEM_DATA/MEM_END and waits for OHAI
// (esptool run_stub, reference §12.2).
func (d *Device) runStub(s *Stub) error {
	if err := d.upload(s, "flasher stub"); err != nil {
		return err
	}
	d.setStub("stub")
	d.opts.Events.Emit(flasher.Note, "flasher stub running")
	return nil
}

// upload loads s (the stub, or the loader) into RAM through the ROM or
// the loader, starts it and waits for its OHAI.
func (d *Device) upload(s *Stub, what string) error {
	if err := s.check(); err != nil {
		return err
	}
	d.opts.Events.Emit(flasher.Note, fmt.Sprintf("uploading the %s (%d + %d bytes) at %d baud", what, len(s.Text), len(s.Data), d.l.p.BaudRate()))
	for _, seg := range []struct {
		b    []byte
		addr uint32
	}{{s.Text, s.TextStart}, {s.Data, s.DataStart}} {
		if len(seg.b) == 0 {
			continue
		}
		if err := d.memUpload(seg.b, seg.addr, what); err != nil {
			return err
		}
	}
	// MEM_END may go unanswered: the stub takes over the UART (esptool
	// gives the ROM 0.2 s and ignores the outcome). Its reply, if any, and
	// the OHAI greeting are read in one loop so that neither order loses
	// the greeting.
	var p [8]byte
	words(p[:0], 0, s.Entry)
	sent, err := d.l.send(opMemEnd, p[:], 0)
	if err != nil {
		return &flasher.OpError{Op: "start " + what + " (MEM_END)", Addr: s.Entry, Err: err}
	}
	deadline := sent.Add(defaultTimeout)
	for {
		f, err := d.l.frame(deadline)
		if err != nil {
			if errors.Is(err, transport.ErrTimeout) {
				err = fmt.Errorf("no OHAI greeting: %w", err)
			}
			return &flasher.HintError{
				Err:  &flasher.OpError{Op: "start " + what, Addr: s.Entry, Err: err},
				Hint: "the " + what + " did not start: check that --stub is an ESP8266 stub; power-cycle with GPIO0 low and try again, or leave out --stub to write in ROM mode",
			}
		}
		if bytes.Equal(f, ohai) {
			return nil
		}
		if len(f) >= 8 && f[0] == dirResponse {
			continue // the MEM_END reply (its status does not matter)
		}
		return &flasher.OpError{Op: "start " + what, Addr: s.Entry, Err: fmt.Errorf("expected the OHAI greeting, got %d other bytes: %w", len(f), flasher.ErrProtocol)}
	}
}

// memUpload sends one RAM segment.
func (d *Device) memUpload(b []byte, addr uint32, what string) error {
	blocks := (len(b) + ramBlockSize - 1) / ramBlockSize
	var p [16]byte
	words(p[:0], uint32(len(b)), uint32(blocks), ramBlockSize, addr)
	if _, _, err := d.l.check(opMemBegin, p[:], 0, 0, defaultTimeout); err != nil {
		return &flasher.OpError{Op: "upload " + what + " (MEM_BEGIN)", Addr: addr, Err: err}
	}
	for seq := range blocks {
		blk := b[seq*ramBlockSize : min((seq+1)*ramBlockSize, len(b))]
		d.buf = words(d.buf[:0], uint32(len(blk)), uint32(seq), 0, 0)
		d.buf = append(d.buf, blk...)
		a := addr + uint32(seq*ramBlockSize)
		for try := 0; ; try++ {
			_, _, err := d.l.check(opMemData, d.buf, checksum(blk), 0, defaultTimeout)
			if err == nil {
				break
			}
			// tuyaflash's loader places a block by its sequence number:
			// one it refused for its checksum may go again. (The ROM
			// reports a checksum error otherwise; esptool never repeats
			// a block to it.)
			var se *flasher.StatusError
			if !errors.As(err, &se) || se.Status != stubBadChecksum || try == 2 {
				return &flasher.OpError{Op: "upload " + what + " (MEM_DATA)", Addr: a, Err: err}
			}
			d.l.flush()
		}
	}
	return nil
}
