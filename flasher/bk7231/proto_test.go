package bk7231

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// Frames from bk7231-protocol.md §4.0 (captures of bkWriter and
// BK7231GUIFlashTool).
func TestFramesMatchCaptures(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"link check", shortFrame(cmdLinkCheck), []byte{0x01, 0xE0, 0xFC, 0x01, 0x00}},
		{"set baud 921600 delay 15", shortFrame(cmdSetBaud, append(le32(921600), 15)...), []byte{0x01, 0xE0, 0xFC, 0x06, 0x0F, 0x00, 0x10, 0x0E, 0x00, 0x0F}},
		{"read 4K at 0x11000", longFrame(opFlashRead4K, le32(0x11000)), []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x05, 0x00, 0x09, 0x00, 0x10, 0x01, 0x00}},
		{"erase 4K at 0x11000", longFrame(opFlashErase, []byte{eraseCmd4K}, le32(0x11000)), []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x06, 0x00, 0x0F, 0x20, 0x00, 0x10, 0x01, 0x00}},
		{"erase via wrapped address", longFrame(opFlashErase, []byte{eraseCmd4K}, le32(0x212000)), []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x06, 0x00, 0x0F, 0x20, 0x00, 0x20, 0x21, 0x00}},
		{"check CRC 0x11000..0x11FFF", shortFrame(cmdCheckCRC, append(le32(0x11000), le32(0x11FFF)...)...), []byte{0x01, 0xE0, 0xFC, 0x09, 0x10, 0x00, 0x10, 0x01, 0x00, 0xFF, 0x1F, 0x01, 0x00}},
		{"reboot", shortFrame(cmdReboot, 0xA5), []byte{0x01, 0xE0, 0xFC, 0x02, 0x0E, 0xA5}},
		{"get MID", longFrame(opGetMID, []byte{0x9F, 0, 0, 0}), []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x05, 0x00, 0x0E, 0x9F, 0x00, 0x00, 0x00}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % X, want % X", tc.name, tc.got, tc.want)
		}
	}
	w4k := longFrame(opFlashWrite4K, le32(0x11000), make([]byte, 4096))
	if !bytes.Equal(w4k[:12], []byte{0x01, 0xE0, 0xFC, 0xFF, 0xF4, 0x05, 0x10, 0x07, 0x00, 0x10, 0x01, 0x00}) || len(w4k) != 12+4096 {
		t.Errorf("write 4K header % X, len %d", w4k[:12], len(w4k))
	}
}

// TestAwaitFindsReplyInNoise feeds replies surrounded by what real links
// carry: boot-log text, stale LinkCheck replies, replies of other commands,
// a GetMID with the ROM's wrong length, split across reads.
func TestAwaitFindsReplyInNoise(t *testing.T) {
	linkReply := []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00}
	crcReply := []byte{0x04, 0x0E, 0x08, 0x01, 0xE0, 0xFC, 0x10, 0x47, 0x3E, 0xAB, 0x45}
	midBug := []byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x05, 0x00, 0x0E, 0x00, 0x9F, 0xEB, 0x60, 0x15}
	readErr := []byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x06, 0x00, 0x09, 0x06, 0x00, 0x00, 0x00, 0x00}
	tests := []struct {
		name     string
		stream   [][]byte
		long     bool
		code     byte
		wantData []byte
		wantStat byte
	}{
		{"crc after stale link replies and log text", [][]byte{[]byte("BK7231S_1.0.5\r\n"), linkReply, linkReply, crcReply}, false, cmdCheckCRC, []byte{0x47, 0x3E, 0xAB, 0x45}, 0},
		{"reply split byte by byte", splitBytes(crcReply), false, cmdCheckCRC, []byte{0x47, 0x3E, 0xAB, 0x45}, 0},
		{"false 04 0E in noise", [][]byte{{0x04, 0x0E, 0x04, 0x99, 0x04, 0x0E}, crcReply}, false, cmdCheckCRC, []byte{0x47, 0x3E, 0xAB, 0x45}, 0},
		{"GetMID with length 5", [][]byte{midBug}, true, opGetMID, []byte{0x9F, 0xEB, 0x60, 0x15}, 0},
		{"long reply with error status", [][]byte{readErr}, true, opFlashRead4K, []byte{0, 0, 0, 0}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, dev := transport.Pipe(transport.LinkOptions{})
			for _, b := range tc.stream {
				dev.Write(b)
			}
			c := newConn(host)
			r, err := c.await(tc.long, tc.code, time.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.data, tc.wantData) || r.status != tc.wantStat {
				t.Errorf("reply data % X status %d, want % X status %d", r.data, r.status, tc.wantData, tc.wantStat)
			}
		})
	}
}

// TestAwaitLongReplyCutAfterLength reads a long reply whose first read
// ends right after its length field, before the opcode: the parser must
// wait for the rest instead of looking at the missing opcode.
func TestAwaitLongReplyCutAfterLength(t *testing.T) {
	reply := []byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x07, 0x00, 0x0F, 0x00, 0x20, 0x00, 0x10, 0x01, 0x00}
	for cut := 1; cut < len(reply); cut++ {
		synctest.Test(t, func(t *testing.T) {
			host, dev := transport.Pipe(transport.LinkOptions{})
			dev.Write(reply[:cut])
			go func() {
				time.Sleep(5 * time.Millisecond)
				dev.Write(reply[cut:])
			}()
			r, err := newConn(host).await(true, opFlashErase, time.Now().Add(time.Second))
			if err != nil || r.status != 0 || !bytes.Equal(r.data, reply[11:]) {
				t.Errorf("cut after %d bytes: reply % X status %d, err %v", cut, r.data, r.status, err)
			}
		})
	}
}

func splitBytes(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func TestLongCmdReportsStatus(t *testing.T) {
	host, dev := transport.Pipe(transport.LinkOptions{})
	dev.Write([]byte{0x04, 0x0E, 0xFF, 0x01, 0xE0, 0xFC, 0xF4, 0x06, 0x00, 0x09, 0x06, 0x00, 0x00, 0x00, 0x00})
	c := newConn(host)
	_, err := c.longCmd("read 4K", opFlashRead4K, time.Second, le32(0))
	var se *flasher.StatusError
	if !errors.As(err, &se) || se.Status != 6 || !errors.Is(err, flasher.ErrDevice) {
		t.Fatalf("err = %v, want StatusError 6", err)
	}
	if se.Error() != "read 4K: chip status 6 (parameter error)" {
		t.Errorf("message %q", se.Error())
	}
}

func TestParseTLVMAC(t *testing.T) {
	sector := make([]byte, 4096)
	for i := range sector {
		sector[i] = 0xFF
	}
	copy(sector, []byte{'T', 'L', 'V', 0, 0x30, 0, 0, 0,
		0x01, 0x11, 0x11, 0x11, 0x04, 0, 0, 0, 1, 2, 3, 4,
		0x02, 0x11, 0x11, 0x11, 0x06, 0, 0, 0, 0x10, 0xD5, 0x61, 0x01, 0x02, 0x03})
	// The layout of real RF sectors: one container entry holding the rest.
	nested := bytes.Repeat([]byte{0xFF}, 4096)
	copy(nested, []byte{'T', 'L', 'V', 0, 0x2A, 0, 0, 0,
		0x00, 0x11, 0x11, 0x11, 0x22, 0, 0, 0,
		0x01, 0x11, 0x11, 0x11, 0x04, 0, 0, 0, 9, 9, 9, 9,
		0x02, 0x11, 0x11, 0x11, 0x06, 0, 0, 0, 0x10, 0xD5, 0x61, 0x04, 0x05, 0x06})
	tests := []struct {
		name   string
		sector []byte
		want   string
		ok     bool
	}{
		{"mac entry after another", sector, "10:D5:61:01:02:03", true},
		{"mac inside the 0x11111100 container", nested, "10:D5:61:04:05:06", true},
		{"erased sector", bytes.Repeat([]byte{0xFF}, 4096), "", false},
		{"header only", []byte("TLV\x00\x00\x00\x00\x00"), "", false},
	}
	for _, tc := range tests {
		mac, ok := ParseTLVMAC(tc.sector)
		if ok != tc.ok || (ok && mac.String() != tc.want) {
			t.Errorf("%s: got %s %v, want %s %v", tc.name, mac, ok, tc.want, tc.ok)
		}
	}
}

func TestFlashTable(t *testing.T) {
	tests := []struct {
		id   [3]byte
		name string
		size int
	}{
		{[3]byte{0xEB, 0x60, 0x15}, "TH25Q16HB", 2 << 20},
		{[3]byte{0x1C, 0x70, 0x15}, "EN25QH16B", 2 << 20},
		{[3]byte{0x85, 0x20, 0x15}, "P25Q16HBK", 2 << 20},
		{[3]byte{0xC8, 0x40, 0x16}, "GD25Q32E", 4 << 20},
	}
	for _, tc := range tests {
		part, ok := lookupFlash(tc.id)
		if !ok || part.name != tc.name {
			t.Errorf("% X: %q %v, want %q", tc.id, part.name, ok, tc.name)
		}
		if got := flashSizeFromID(tc.id); got != tc.size {
			t.Errorf("% X: size %d, want %d", tc.id, got, tc.size)
		}
	}
	for _, bad := range [][3]byte{{}, {0xFF, 0xFF, 0xFF}, {0xEB, 0x60, 0x40}} {
		if got := flashSizeFromID(bad); got != 0 {
			t.Errorf("invalid id % X gave size %d", bad, got)
		}
	}
}

func TestHasLinkCheckReply(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"reply after boot noise", append([]byte("BK7231S_1.0.5\r\n"), 0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01, 0x00), true},
		{"our own LinkCheck echoed", LinkCheckFrame(), false},
		{"an ESP SYNC reply", []byte{0xC0, 0x01, 0x08, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0xC0}, false},
		{"cut short", []byte{0x04, 0x0E, 0x05, 0x01, 0xE0, 0xFC, 0x01}, false},
	}
	for _, tc := range tests {
		if got := HasLinkCheckReply(tc.in); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
