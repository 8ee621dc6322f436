package bk7231

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// scriptedROM answers LinkCheck, CheckCRC (with a fixed raw value) and
// ReadReg of the chip id register, like the download mode of a BK72xx that
// tuyaflash does not support. It decodes frames with its own few lines.
func scriptedROM(ctx context.Context, p *transport.PipePort, crcRaw, chipID uint32) {
	var buf []byte
	tmp := make([]byte, 256)
	p.SetReadTimeout(5 * time.Millisecond)
	for ctx.Err() == nil {
		n, err := p.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		for {
			i := bytes.Index(buf, []byte{0x01, 0xE0, 0xFC})
			if i < 0 || len(buf) < i+5 || len(buf) < i+4+int(buf[i+3]) {
				break
			}
			code, payload := buf[i+4], buf[i+5:i+4+int(buf[i+3])]
			buf = buf[i+4+int(buf[i+3]):]
			le := binary.LittleEndian.AppendUint32
			switch code {
			case 0x00:
				p.Write([]byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00})
			case 0x10:
				p.Write(le([]byte{0x04, 0x0E, 0x08, 0x01, 0xE0, 0xFC, 0x10}, crcRaw))
			case 0x03:
				p.Write(le(append([]byte{0x04, 0x0E, 0x0C, 0x01, 0xE0, 0xFC, 0x03}, payload[:4]...), chipID))
			}
		}
	}
}

func TestUnsupportedBK72xx(t *testing.T) {
	tests := []struct {
		name   string
		crcRaw uint32 // what CheckCRC(0, 256) answers, raw
		chipID uint32
		want   string
	}{
		{"BK7231Q bootloader", 0x0FDCE109, 0, "BK7231Q"},
		{"BK7238 BootROM", 0x0BD073CD, 0x7238, "BK7238"},
		{"BK7252N chip id", 0x1EBE6E45, 0x7252A, "BK7252N"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host, dev := transport.Pipe(transport.LinkOptions{})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { scriptedROM(ctx, dev, tc.crcRaw, tc.chipID); close(done) }()
				defer func() { cancel(); host.Close(); dev.Close(); <-done }()
				_, err := Connect(context.Background(), host, Options{LinkTimeout: time.Second})
				var ue *UnsupportedChipError
				if !errors.As(err, &ue) || !errors.Is(err, flasher.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "supports BK7231T and BK7231N only") {
					t.Fatalf("err = %v; want an unsupported %s", err, tc.want)
				}
			})
		})
	}
}
