package bksim

import "time"

// Flash busy times used when Config.Timing is set. The TH25Q16HB of Tuya N
// modules has no datasheet among the sources, so these are the typical
// figures of the Winbond W25Q serial-flash family that such parts clone:
// sector erase (4 KiB) 45 ms, 32 KiB block erase 120 ms, 64 KiB block erase
// 150 ms, page program 0.4 ms per 256 bytes (W25Q128JV / W25Q64JV
// datasheets, "Sector Erase Time (4KB) tSE 45 ms typ"), write status register
// 10 ms (W25X40 "write status register 10 ms typ"). Chip erase is scaled
// from the W25Q128JV's 40 s typical for 128 Mbit to 5 s for a 16 Mbit part.
// CheckCRC runs at the ~400 000 bytes/s bk7231tools assumes for its timeout
// (crc_speed_bps, reference §4.2).
const (
	timeSectorErase = 45 * time.Millisecond
	timeBlock32     = 120 * time.Millisecond
	timeBlock64     = 150 * time.Millisecond
	timeChipErase   = 5 * time.Second
	timePageProgram = 400 * time.Microsecond
	timeWRSR        = 10 * time.Millisecond
	crcBytesPerSec  = 400_000
)

// crcTime is how long the ROM takes to checksum n bytes.
func crcTime(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / crcBytesPerSec)
}

// programTime is how long programming n bytes takes, page by page.
func programTime(n int) time.Duration {
	return time.Duration((n+pageSize-1)/pageSize) * timePageProgram
}

// wireTime is how long n bytes take on a UART at baud (8N1, 10 bits a byte).
func wireTime(n int, baud int) time.Duration {
	if baud <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(baud))
}

// frameIdleTimeout is how long the chip waits for the rest of a frame that
// stopped arriving before it gives up on it. bk_idk counts 1000 polls of its
// main loop (TRAhcit_UART_Rx rx_time) without saying how long that is; 100 ms
// (longer at very low rates, three 64-byte USB packets' worth) tolerates
// adapter latency and answers well inside every host's reply timeout.
func frameIdleTimeout(baud int) time.Duration {
	return max(100*time.Millisecond, 3*wireTime(64, baud))
}
