package espsim

import "fmt"

// Opcodes (reference §5, esptool loader.py ESP_CMDS).
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
	opReadFlashSlow  = 0x0E
	opChangeBaudrate = 0x0F
	opFlashDeflBegin = 0x10
	opFlashDeflData  = 0x11
	opFlashDeflEnd   = 0x12
	opSPIFlashMD5    = 0x13
	opGetSecInfo     = 0x14
	opEraseFlash     = 0xD0
	opEraseRegion    = 0xD1
	opReadFlash      = 0xD2
	opRunUserCode    = 0xD3
	// opStubInfo is tuyaflash's stub's STUB_INFO (stub/esp8266 README).
	opStubInfo = 0x7D
	// opIdentify is the virtual identification command (contract C2):
	// real loaders answer it as an unknown command.
	opIdentify = 0x7E
)

var opNames = map[byte]string{
	opFlashBegin:     "FLASH_BEGIN",
	opFlashData:      "FLASH_DATA",
	opFlashEnd:       "FLASH_END",
	opMemBegin:       "MEM_BEGIN",
	opMemEnd:         "MEM_END",
	opMemData:        "MEM_DATA",
	opSync:           "SYNC",
	opWriteReg:       "WRITE_REG",
	opReadReg:        "READ_REG",
	opSPISetParams:   "SPI_SET_PARAMS",
	opSPIAttach:      "SPI_ATTACH",
	opReadFlashSlow:  "READ_FLASH_SLOW",
	opChangeBaudrate: "CHANGE_BAUDRATE",
	opFlashDeflBegin: "FLASH_DEFL_BEGIN",
	opFlashDeflData:  "FLASH_DEFL_DATA",
	opFlashDeflEnd:   "FLASH_DEFL_END",
	opSPIFlashMD5:    "SPI_FLASH_MD5",
	opGetSecInfo:     "GET_SECURITY_INFO",
	opEraseFlash:     "ERASE_FLASH",
	opEraseRegion:    "ERASE_REGION",
	opReadFlash:      "READ_FLASH",
	opRunUserCode:    "RUN_USER_CODE",
	opStubInfo:       "STUB_INFO",
}

// opName is the key Stats.Commands uses: esptool's name, or 0xNN.
func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("0x%02X", op)
}

// ROM loader error codes: second status byte when the first is 1
// (reference §4.4).
const (
	romErrParam    = 0x01 // invalid parameter
	romErrMsg      = 0x05 // invalid message format (also: unsupported opcode)
	romErrChecksum = 0x07
	romErrWrite    = 0x08 // flash write error: read-back differs
)

// Stub error codes: first status byte, second byte 0 (reference §4.5;
// esp-flasher-stub commands.h, sent big-endian as code<<8).
const (
	stubOK             = 0x00
	stubBadDataLen     = 0xC0
	stubBadChecksum    = 0xC1
	stubBadBlocksize   = 0xC2
	stubInvalidCommand = 0xC3
	stubFailedSPIOp    = 0xC4
	stubNotInFlashMode = 0xC6
	stubInflateError   = 0xC7
	stubNotEnoughData  = 0xC8
	stubTooMuchData    = 0xC9
	stubNotImplemented = 0xFF
)

// Protocol constants.
const (
	romBaud        = 115200
	syncValueROM   = 0x20120707
	checksumSeed   = 0xEF
	sectorSize     = 0x1000
	blockSize64K   = 0x10000
	stubMaxBlock   = 0x4000 // legacy stub MAX_WRITE_BLOCK
	romMaxData     = 0x1800 + 16
	stubMaxData    = stubMaxBlock + 16
	maxReadPacket  = 4096 // esp-flasher-stub READ_FLASH packet limit
	maxFlashSize   = 16 * mib
	greeting       = "OHAI"
	syncPayloadLen = 36
)

// syncPayload is the SYNC request data: 07 07 12 20 then 32 × 0x55.
var syncPayload = func() []byte {
	b := []byte{0x07, 0x07, 0x12, 0x20}
	for range 32 {
		b = append(b, 0x55)
	}
	return b
}()

// xorChecksum is the protocol checksum: 0xEF XOR every byte (§4.6).
func xorChecksum(b []byte) byte {
	s := byte(checksumSeed)
	for _, v := range b {
		s ^= v
	}
	return s
}

// response builds an unframed reply: 01, op, size, value, data, status.
func response(op byte, value uint32, data []byte, status [2]byte) []byte {
	size := len(data) + 2
	p := make([]byte, 0, 8+size)
	p = append(p, 0x01, op, byte(size), byte(size>>8))
	p = le32(p, value)
	p = append(p, data...)
	return append(p, status[0], status[1])
}
