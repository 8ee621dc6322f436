package esp8266

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
)

// Opcodes of the ROM loader and the flasher stubs (reference §5; esptool
// loader.py ESP_CMDS).
const (
	opFlashBegin     = 0x02
	opFlashData      = 0x03
	opFlashEnd       = 0x04
	opMemBegin       = 0x05
	opMemEnd         = 0x06
	opMemData        = 0x07
	opSync           = 0x08
	opWriteReg       = 0x09
	opReadReg        = 0x0A
	opSPISetParams   = 0x0B
	opSPIAttach      = 0x0D
	opChangeBaudrate = 0x0F
	opFlashDeflBegin = 0x10
	opFlashDeflData  = 0x11
	opFlashDeflEnd   = 0x12
	opSPIFlashMD5    = 0x13
	opEraseFlash     = 0xD0
	opEraseRegion    = 0xD1
	opReadFlash      = 0xD2
	opRunUserCode    = 0xD3
	// opStubInfo is tuyaflash's own stub command (stub/esp8266 README,
	// STUB_INFO): what the running stub can do. Other stubs answer it with
	// an error, as any opcode they do not know.
	opStubInfo = 0x7D
)

// Protocol constants (reference Appendix A).
const (
	dirRequest    = 0x00
	dirResponse   = 0x01
	checksumSeed  = 0xEF
	romBlockSize  = 0x400  // ROM FLASH_DATA block
	stubBlockSize = 0x4000 // stub FLASH_DATA / FLASH_DEFL_DATA block
	ramBlockSize  = 0x1800 // MEM_DATA block
	sectorSize    = 0x1000
	readPacket    = 0x1000 // READ_FLASH packet size
	// readWindow is READ_FLASH's max_in_flight: unacknowledged bytes the
	// stub may send ahead. tuyaflash's stub (and esptool's legacy one)
	// count bytes, so 4 packets stream without waiting for each ACK — the
	// next packet pushes the last one's tail through the adapter instead
	// of its latency timer; esp-flasher-stub keeps one packet in flight
	// whatever it is told. (esptool sends 64: one packet.)
	readWindow    = 4 * readPacket
	romBaud       = 115200 // esptool ESP_ROM_BAUD: sync rate
	statusLen     = 2      // ESP8266 ROM and stubs: [status, error]
	maxStrayReply = 100    // replies skipped while waiting for a matching one (§4.2)
)

// syncPayload is SYNC's data: 07 07 12 20 and 32 × 0x55.
var syncPayload = func() []byte {
	b := []byte{0x07, 0x07, 0x12, 0x20}
	for range 32 {
		b = append(b, 0x55)
	}
	return b
}()

// Timeouts (esptool loader.py; reference §10.4 and its recommendations).
const (
	defaultTimeout  = 3 * time.Second
	syncTimeout     = 100 * time.Millisecond
	memEndROM       = 200 * time.Millisecond
	maxTimeout      = 240 * time.Second
	eraseFullChip   = 120 * time.Second
	erasePerMB      = 40 * time.Second // ROM FLASH_BEGIN, ERASE_REGION, compressed blocks
	md5PerMB        = 30 * time.Second // esptool's 8 s/MB proved short (esptool#559)
	readFrameWait   = 3 * time.Second  // per READ_FLASH data frame
	deflateWindow   = 32 << 10         // stub inflate buffer (esptool STUB_DEFLATE_BUFFER_SIZE)
	flashBlockBytes = 64 << 10         // erase block
)

// command describes one opcode: its name in errors, which side implements
// it and how long its reply may take.
type command struct {
	name       string
	rom, stub  bool
	timeout    time.Duration // fixed or minimum timeout
	perMB      time.Duration // scaled part: max(timeout, perMB × size/1e6)
	romTimeout time.Duration // ROM-specific fixed timeout, when set
	romPerMB   time.Duration // ROM-specific scaled part, when set
}

// commands is the opcode table (reference §5 and §10.4).
var commands = map[byte]command{
	opFlashBegin:     {name: "FLASH_BEGIN", rom: true, stub: true, timeout: defaultTimeout, romPerMB: erasePerMB},
	opFlashData:      {name: "FLASH_DATA", rom: true, stub: true, timeout: defaultTimeout},
	opFlashEnd:       {name: "FLASH_END", rom: true, stub: true, timeout: defaultTimeout},
	opMemBegin:       {name: "MEM_BEGIN", rom: true, stub: true, timeout: defaultTimeout},
	opMemEnd:         {name: "MEM_END", rom: true, stub: true, timeout: defaultTimeout, romTimeout: memEndROM},
	opMemData:        {name: "MEM_DATA", rom: true, stub: true, timeout: defaultTimeout},
	opSync:           {name: "SYNC", rom: true, stub: true, timeout: syncTimeout},
	opWriteReg:       {name: "WRITE_REG", rom: true, stub: true, timeout: defaultTimeout},
	opReadReg:        {name: "READ_REG", rom: true, stub: true, timeout: defaultTimeout},
	opSPISetParams:   {name: "SPI_SET_PARAMS", stub: true, timeout: defaultTimeout},
	opSPIAttach:      {name: "SPI_ATTACH", stub: true, timeout: defaultTimeout},
	opChangeBaudrate: {name: "CHANGE_BAUDRATE", stub: true, timeout: defaultTimeout},
	opFlashDeflBegin: {name: "FLASH_DEFL_BEGIN", stub: true, timeout: defaultTimeout},
	opFlashDeflData:  {name: "FLASH_DEFL_DATA", stub: true, timeout: defaultTimeout, perMB: erasePerMB},
	opFlashDeflEnd:   {name: "FLASH_DEFL_END", stub: true, timeout: defaultTimeout, perMB: erasePerMB},
	opSPIFlashMD5:    {name: "SPI_FLASH_MD5", stub: true, timeout: defaultTimeout, perMB: md5PerMB},
	opEraseFlash:     {name: "ERASE_FLASH", stub: true, timeout: eraseFullChip},
	opEraseRegion:    {name: "ERASE_REGION", stub: true, timeout: defaultTimeout, perMB: erasePerMB},
	opReadFlash:      {name: "READ_FLASH", stub: true, timeout: defaultTimeout},
	opRunUserCode:    {name: "RUN_USER_CODE", stub: true, timeout: defaultTimeout},
	opStubInfo:       {name: "STUB_INFO", stub: true, timeout: stubInfoTimeout},
}

// opName names an opcode for messages.
func opName(op byte) string {
	if c, ok := commands[op]; ok {
		return c.name
	}
	return fmt.Sprintf("command 0x%02X", op)
}

// timeoutFor returns how long the reply to op may take when the command
// covers size bytes (erase, write, MD5), for the ROM or a stub. Scaled
// timeouts follow esptool's timeout_per_mb: max(fixed, perMB × size/1e6),
// capped at esptool's MAX_TIMEOUT.
func timeoutFor(op byte, stub bool, size int) time.Duration {
	c, ok := commands[op]
	if !ok {
		return defaultTimeout
	}
	t, per := c.timeout, c.perMB
	if !stub {
		if c.romTimeout != 0 {
			t = c.romTimeout
		}
		if c.romPerMB != 0 {
			per = c.romPerMB
		}
	}
	if per != 0 {
		t = max(t, time.Duration(float64(per)*float64(size)/1e6))
	}
	return min(t, maxTimeout)
}

// deflBlockTimeout is esptool's _get_flash_defl_block_timeout for a stub:
// a compressed block that inflates to n bytes may make the stub erase one
// 64 KiB block per 32 KiB inflate-buffer cycle plus one.
func deflBlockTimeout(n int) time.Duration {
	erases := (n+deflateWindow-1)/deflateWindow + 1
	return timeoutFor(opFlashDeflData, true, n+erases*flashBlockBytes)
}

// checksum is the XOR checksum of *_DATA payloads, seeded with 0xEF.
func checksum(b []byte) uint32 {
	s := byte(checksumSeed)
	for _, c := range b {
		s ^= c
	}
	return uint32(s)
}

// words packs little-endian u32 words.
func words(dst []byte, w ...uint32) []byte {
	for _, v := range w {
		dst = binary.LittleEndian.AppendUint32(dst, v)
	}
	return dst
}

// romErrors are the ROM loader's error codes, sent in the second status
// byte (reference §4.4; esptool util.py FatalError.WithResult).
var romErrors = map[byte]string{
	0x00: "undefined error",
	0x01: "invalid parameter",
	0x02: "out of memory",
	0x03: "send failed",
	0x04: "receive failed",
	0x05: "invalid message format (command not supported by the ROM)",
	0x06: "message OK but the result is wrong",
	0x07: "checksum error",
	0x08: "flash write error (read-back differs)",
	0x09: "flash read error",
	0x0A: "flash read length error",
	0x0B: "deflate error",
	0x0C: "deflate Adler-32 error",
	0x0D: "deflate parameter error",
	0x0E: "invalid RAM binary size",
	0x0F: "invalid RAM binary address",
	0x64: "invalid parameter",
	0x65: "invalid format",
	0x66: "description too long",
	0x67: "bad encoding description",
	0x69: "insufficient storage",
}

// stubErrors are the flasher stubs' codes, sent in the first status byte
// (reference §4.5).
var stubErrors = map[byte]string{
	0xC0: "bad data length",
	0xC1: "bad data checksum",
	0xC2: "bad block size",
	0xC3: "invalid command",
	0xC4: "SPI flash operation failed",
	0xC5: "SPI flash unlock failed",
	0xC6: "not in flash mode",
	0xC7: "inflate error",
	0xC8: "not enough data",
	0xC9: "too much data",
	0xCA: "NAND program failed",
	0xCB: "NAND erase failed",
	0xFF: "command not implemented",
}

// Status codes the client reacts to.
const (
	romInvalidMessage = 0x05
	romChecksumError  = 0x07
	stubBadChecksum   = 0xC1
)

// statusErr is statusError, also matching flasher.ErrUnsupported when the
// code says the command is not implemented (ROM 0x05, stub 0xC3/0xFF).
func statusErr(op byte, st0, st1 byte) error {
	se := statusError(op, st0, st1)
	if st0 == 0xC3 || st0 == 0xFF || (st0 < 0xC0 && st1 == romInvalidMessage) {
		return fmt.Errorf("%w: %w", se, flasher.ErrUnsupported)
	}
	return se
}

// statusError turns the two status bytes of a failed reply into a
// *flasher.StatusError. Stubs put their code (0xC0…0xFF) in the first
// byte; the ROM puts 1 there and its code in the second byte.
func statusError(op byte, st0, st1 byte) *flasher.StatusError {
	code, meaning := st1, romErrors[st1]
	if st0 >= 0xC0 {
		code, meaning = st0, stubErrors[st0]
	}
	if meaning == "" {
		meaning = fmt.Sprintf("unknown code, status bytes %02X %02X", st0, st1)
	}
	return &flasher.StatusError{Command: opName(op), Status: code, Meaning: meaning}
}
