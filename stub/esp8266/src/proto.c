/*
 * Protocol core: SLIP framing, command dispatch, and the commands that do
 * not write flash (the write session lives in flashw.c).
 *
 * Received bytes wait in the receive ring (rxring.c), filled by the UART
 * interrupt, until the core decodes them; so a client may send the next
 * request while the stub still works on the previous one, and every reply
 * is sent after its command's work, on the request that caused it. While
 * no complete frame is waiting, the core does the write session's
 * background work (fw_background).
 */
#include "stub.h"
#include "flashw.h"
#include "rxring.h"

#define SLIP_END 0xC0u
#define SLIP_ESC 0xDBu
#define SLIP_ESC_END 0xDCu
#define SLIP_ESC_ESC 0xDDu

/* ---- receive ----------------------------------------------------------- */

static struct {
	uint32_t len;     /* bytes of the frame being assembled */
	uint8_t in_frame; /* a start byte was seen */
	uint8_t escaped;
	uint8_t broken;   /* bad escape: drop the frame */
	uint8_t overflow; /* longer than buf: answer BAD_DATA_LEN */
	uint8_t pending;  /* buf holds a complete frame not handled yet */
	uint8_t frame_overflow;
	uint32_t frame_len;
} rx;

static uint8_t rxbuf[MAX_FRAME + 8] __attribute__((aligned(4)));

/* Decode one byte; returns 1 when it completes a frame (rx.frame_len set;
 * oversized frames complete with rx.frame_overflow set). */
static int rx_byte(uint8_t b)
{
	if (b == SLIP_END) {
		int done = rx.in_frame && rx.len > 0 && !rx.broken;
		if (done) {
			rx.frame_len = rx.len;
			rx.frame_overflow = rx.overflow;
		}
		rx.in_frame = 1; /* END also opens the next frame */
		rx.len = 0;
		rx.escaped = rx.broken = rx.overflow = 0;
		return done;
	}
	if (!rx.in_frame || rx.broken)
		return 0; /* noise between frames */
	if (rx.escaped) {
		rx.escaped = 0;
		if (b == SLIP_ESC_END)
			b = SLIP_END;
		else if (b == SLIP_ESC_ESC)
			b = SLIP_ESC;
		else {
			rx.broken = 1;
			return 0;
		}
	} else if (b == SLIP_ESC) {
		rx.escaped = 1;
		return 0;
	}
	if (rx.len < sizeof rxbuf)
		rxbuf[rx.len++] = b;
	else
		rx.overflow = 1;
	return 0;
}

/* Decode received bytes until a frame is complete. Returns 1 with the frame
 * in rxbuf, 0 when nothing complete arrived (only if !wait), -1 when the
 * link is gone. While waiting it runs the write session's background work,
 * one short step at a time, so a frame that completes meanwhile waits for
 * at most one step. */
static int rx_frame(int wait)
{
	for (;;) {
		const uint8_t *p;
		uint32_t n = rx_peek(&p);
		if (n > 0) {
			uint32_t used = 0;
			int done = 0;
			while (used < n && !done)
				done = rx_byte(p[used++]);
			rx_consume(used);
			if (done)
				return 1;
			continue;
		}
		if (rx_closed() && rx_peek(&p) == 0)
			return -1;
		if (!wait)
			return 0;
		int bg = fw_background();
		if (bg != FW_WORKED)
			plat_rx_wait(bg == FW_WAITING);
	}
}

/* ---- send -------------------------------------------------------------- */

static uint8_t txbuf[128];
static uint32_t txlen;

static void tx_flush(void)
{
	if (txlen > 0)
		plat_uart_write(txbuf, txlen);
	txlen = 0;
}

static void tx_byte(uint8_t b)
{
	if (txlen == sizeof txbuf)
		tx_flush();
	txbuf[txlen++] = b;
}

static void tx_escaped(const uint8_t *p, uint32_t n)
{
	while (n--) {
		uint8_t b = *p++;
		if (b == SLIP_END) {
			tx_byte(SLIP_ESC);
			tx_byte(SLIP_ESC_END);
		} else if (b == SLIP_ESC) {
			tx_byte(SLIP_ESC);
			tx_byte(SLIP_ESC_ESC);
		} else {
			tx_byte(b);
		}
	}
}

/* A raw frame: OHAI, READ_FLASH data and its MD5. */
static void send_raw(const uint8_t *p, uint32_t n)
{
	tx_byte(SLIP_END);
	tx_escaped(p, n);
	tx_byte(SLIP_END);
	tx_flush();
}

/* A response: 01 op size value [data] status 00. */
static void reply(uint8_t op, uint32_t value, const uint8_t *data, uint32_t n,
		  uint8_t status)
{
	uint8_t h[8];
	uint8_t st[2] = {status, 0};
	h[0] = 0x01;
	h[1] = op;
	h[2] = (uint8_t)(n + 2u);
	h[3] = (uint8_t)((n + 2u) >> 8);
	put_le32(h + 4, value);
	tx_byte(SLIP_END);
	tx_escaped(h, 8);
	tx_escaped(data, n);
	tx_escaped(st, 2);
	tx_byte(SLIP_END);
	tx_flush();
}

/* ---- state ------------------------------------------------------------- */

static uint32_t chip_size = FLASH_MAX_SIZE;
uint8_t scratch[SCRATCH_SIZE] __attribute__((aligned(4)));

/* Read len bytes at addr (any alignment) into scratch; returns the offset
 * of the first byte in scratch, or -1. len <= MAX_READ_PACKET. */
static int read_unaligned(uint32_t addr, uint32_t len)
{
	uint32_t skip = addr & 3u;
	uint32_t n = (skip + len + 3u) & ~3u;
	if (plat_flash_read(addr - skip, scratch, n) != 0)
		return -1;
	return (int)skip;
}

static int in_chip(uint32_t addr, uint32_t len)
{
	return addr <= chip_size && len <= chip_size - addr;
}

/* ---- commands ------------------------------------------------------------ */

static uint8_t cmd_sync(uint32_t size)
{
	if (size != 36)
		return ST_BAD_DATA_LEN;
	/* The ROM answers a SYNC with eight replies; a stub does the same with
	 * value 0, which is how a client tells that a stub is running. */
	for (int i = 0; i < 7; i++)
		reply(CMD_SYNC, 0, 0, 0, ST_OK);
	return ST_OK;
}

static uint8_t cmd_write_reg(const uint8_t *d, uint32_t size)
{
	if (size == 0 || size % 16u != 0)
		return ST_BAD_DATA_LEN;
	for (uint32_t i = 0; i < size; i += 16) {
		if (get_le32(d + i) & 3u)
			return ST_BAD_DATA_LEN;
	}
	for (uint32_t i = 0; i < size; i += 16) {
		uint32_t addr = get_le32(d + i), value = get_le32(d + i + 4);
		uint32_t mask = get_le32(d + i + 8), delay = get_le32(d + i + 12);
		if (delay)
			plat_delay_us(delay);
		if (mask != 0xFFFFFFFFu)
			value = (value & mask) | (plat_reg_read(addr) & ~mask);
		plat_reg_write(addr, value);
	}
	return ST_OK;
}

static uint8_t cmd_set_params(const uint8_t *d, uint32_t size)
{
	if (size != 24)
		return ST_BAD_DATA_LEN;
	uint32_t total = get_le32(d + 4);
	if (total == 0)
		return ST_BAD_DATA_LEN;
	if (total > FLASH_MAX_SIZE)
		total = FLASH_MAX_SIZE;
	if (plat_flash_set_params(get_le32(d), total, get_le32(d + 8),
				  get_le32(d + 12), get_le32(d + 16),
				  get_le32(d + 20)) != 0)
		return ST_FAILED_SPI_OP;
	chip_size = total;
	return ST_OK;
}

static uint8_t cmd_md5(const uint8_t *d, uint32_t size, uint8_t out[16])
{
	if (size != 16)
		return ST_BAD_DATA_LEN;
	uint32_t addr = get_le32(d), len = get_le32(d + 4);
	if (!in_chip(addr, len))
		return ST_BAD_DATA_LEN;
	if (fw_md5(addr, len, out))
		return ST_OK; /* read back while the data arrived */
	plat_md5_ctx c;
	plat_md5_init(&c);
	while (len > 0) {
		uint32_t n = len < MAX_READ_PACKET ? len : MAX_READ_PACKET;
		int off = read_unaligned(addr, n);
		if (off < 0)
			return ST_FAILED_SPI_OP;
		plat_md5_update(&c, scratch + off, n);
		addr += n;
		len -= n;
	}
	plat_md5_final(out, &c);
	return ST_OK;
}

static uint8_t cmd_erase_region(const uint8_t *d, uint32_t size)
{
	if (size != 8)
		return ST_BAD_DATA_LEN;
	uint32_t addr = get_le32(d), len = get_le32(d + 4);
	if ((addr | len) & (FLASH_SECTOR - 1u) || !in_chip(addr, len))
		return ST_BAD_DATA_LEN;
	if (plat_flash_unlock() != 0)
		return ST_FAILED_SPI_UNLOCK;
	while (len > 0) {
		int r;
		if ((addr & (FLASH_BLOCK - 1u)) == 0 && len >= FLASH_BLOCK) {
			r = plat_flash_erase_block(addr / FLASH_BLOCK);
			addr += FLASH_BLOCK;
			len -= FLASH_BLOCK;
		} else {
			r = plat_flash_erase_sector(addr / FLASH_SECTOR);
			addr += FLASH_SECTOR;
			len -= FLASH_SECTOR;
		}
		if (r != 0)
			return ST_FAILED_SPI_OP;
	}
	return ST_OK;
}

static uint8_t cmd_erase_flash(void)
{
	if (plat_flash_unlock() != 0)
		return ST_FAILED_SPI_UNLOCK;
	return plat_flash_erase_chip() == 0 ? ST_OK : ST_FAILED_SPI_OP;
}

/*
 * STUB_INFO (tuyaflash's own command): value STUB_INFO_MAGIC, data six
 * words: the window (bytes of requests a client may send beyond the one
 * the stub works on), the feature bits, and the receive statistics since
 * the last STUB_INFO whose flag word had bit 0 set (the ring's high-water
 * mark, bytes lost to a full ring, UART FIFO overflows), the ring size.
 */
static uint8_t cmd_stub_info(const uint8_t *d, uint32_t size, uint32_t *value,
			     uint8_t out[STUB_INFO_LEN])
{
	if (size != 4)
		return ST_BAD_DATA_LEN;
	struct rx_stats rs;
	rx_stats(&rs, get_le32(d) & 1u);
	*value = STUB_INFO_MAGIC;
	put_le32(out, RX_WINDOW);
	put_le32(out + 4, FEAT_PIPELINE | FEAT_WRITE_MD5 | FEAT_BG_ERASE);
	put_le32(out + 8, rs.high_water);
	put_le32(out + 12, rs.lost);
	put_le32(out + 16, rs.fifo_overflows);
	put_le32(out + 20, RX_RING);
	return ST_OK;
}

/*
 * READ_FLASH: reply, then raw frames of packet_size bytes (last shorter);
 * the client acknowledges each with a 4-byte frame holding the number of
 * bytes it has received. A new packet goes out only while fewer than
 * max_in_flight bytes are unacknowledged, so esptool's values (4096, 64)
 * mean one packet at a time. After the last acknowledgement: the MD5 of
 * the data. Any other frame that arrives meanwhile (a client that gave up
 * and sends SYNC, say) ends the transfer and is handled as a command.
 */
static void read_flash_stream(uint32_t addr, uint32_t len, uint32_t packet,
			      uint32_t window)
{
	plat_md5_ctx c;
	uint32_t sent = 0, acked = 0;
	plat_md5_init(&c);
	while (acked < len) {
		if (sent < len && sent - acked < window) {
			uint32_t n = len - sent < packet ? len - sent : packet;
			int off = read_unaligned(addr + sent, n);
			if (off < 0)
				return; /* the client times out and reports it */
			plat_md5_update(&c, scratch + off, n);
			send_raw(scratch + off, n);
			sent += n;
			continue;
		}
		int r = rx_frame(1);
		if (r < 0)
			return;
		if (rx.frame_overflow || rx.frame_len != 4) {
			rx.pending = 1; /* not an acknowledgement */
			return;
		}
		uint32_t got = get_le32(rxbuf);
		if (got < acked || got > sent)
			return; /* the client lost data; it will say so */
		acked = got;
	}
	uint8_t sum[16];
	plat_md5_final(sum, &c);
	send_raw(sum, 16);
}

/* ---- dispatch ---------------------------------------------------------- */

static uint8_t checksum(const uint8_t *p, uint32_t n)
{
	uint8_t x = 0xEF;
	while (n--)
		x ^= *p++;
	return x;
}

/* FLASH_DATA / FLASH_DEFL_DATA: len, seq, 0, 0, then len bytes. */
static uint8_t data_packet(uint8_t *d, uint32_t size, uint32_t chk,
			   int compressed)
{
	if (size < 16)
		return ST_BAD_DATA_LEN;
	uint32_t len = get_le32(d), seq = get_le32(d + 4);
	if (len != size - 16)
		return ST_BAD_DATA_LEN;
	if (checksum(d + 16, len) != (uint8_t)chk)
		return ST_BAD_DATA_CHECKSUM;
	return (uint8_t)fw_data(d + 16, len, seq, compressed);
}

static void handle(uint32_t flen)
{
	uint8_t op = flen > 1 ? rxbuf[1] : 0;
	if (rx.frame_overflow) {
		reply(op, 0, 0, 0, ST_BAD_DATA_LEN);
		return;
	}
	if (flen < 8)
		return; /* too short to be a request: ignore */
	if (rxbuf[0] != 0x00) {
		reply(op, 0, 0, 0, ST_INVALID_COMMAND);
		return;
	}
	uint32_t size = (uint32_t)rxbuf[2] | (uint32_t)rxbuf[3] << 8;
	uint32_t chk = get_le32(rxbuf + 4);
	uint8_t *d = rxbuf + 8;
	if (size != flen - 8) {
		reply(op, 0, 0, 0, ST_BAD_DATA_LEN);
		return;
	}

	uint8_t st = ST_OK, out[STUB_INFO_LEN];
	uint32_t value = 0, outlen = 0;
	switch (op) {
	case CMD_SYNC:
		st = cmd_sync(size);
		break;
	case CMD_READ_REG:
		if (size != 4 || (get_le32(d) & 3u))
			st = ST_BAD_DATA_LEN;
		else
			value = plat_reg_read(get_le32(d));
		break;
	case CMD_WRITE_REG:
		fw_invalidate(); /* a register write can drive the SPI flash */
		st = cmd_write_reg(d, size);
		break;
	case CMD_SPI_SET_PARAMS:
		fw_invalidate();
		st = cmd_set_params(d, size);
		break;
	case CMD_SPI_ATTACH:
		/* 4 bytes (8 from clients that add the ROM's legacy flag); the
		 * HSPI choice does not exist on the ESP8266. */
		if (size != 4 && size != 8)
			st = ST_BAD_DATA_LEN;
		else
			plat_flash_attach();
		fw_invalidate();
		break;
	case CMD_FLASH_BEGIN:
	case CMD_FLASH_DEFL_BEGIN:
		if (size != 16 && size != 20)
			st = ST_BAD_DATA_LEN;
		else if (size == 20 && get_le32(d + 16) != 0)
			st = ST_INVALID_COMMAND; /* no flash encryption here */
		else
			st = (uint8_t)fw_begin(get_le32(d), get_le32(d + 4),
					       get_le32(d + 8), get_le32(d + 12),
					       op == CMD_FLASH_DEFL_BEGIN, chip_size);
		break;
	case CMD_FLASH_DATA:
	case CMD_FLASH_DEFL_DATA:
		/* The reply names the packet it answers (its sequence number),
		 * so that a client with packets in flight can check. */
		if (size >= 16)
			value = get_le32(d + 4);
		st = data_packet(d, size, chk, op == CMD_FLASH_DEFL_DATA);
		break;
	case CMD_FLASH_END:
	case CMD_FLASH_DEFL_END:
		if (size != 4) {
			st = ST_BAD_DATA_LEN;
			break;
		}
		st = (uint8_t)fw_end(op == CMD_FLASH_DEFL_END);
		if (st == ST_OK && get_le32(d) == 0) {
			/* flag 0: reboot, after the reply has left */
			reply(op, 0, 0, 0, ST_OK);
			plat_uart_drain();
			plat_delay_us(10000);
			plat_reboot();
		}
		break;
	case CMD_SPI_FLASH_MD5:
		st = cmd_md5(d, size, out);
		if (st == ST_OK)
			outlen = 16;
		break;
	case CMD_ERASE_FLASH:
		fw_invalidate();
		st = size == 0 ? cmd_erase_flash() : ST_BAD_DATA_LEN;
		break;
	case CMD_ERASE_REGION:
		fw_invalidate();
		st = cmd_erase_region(d, size);
		break;
	case CMD_STUB_INFO:
		st = cmd_stub_info(d, size, &value, out);
		if (st == ST_OK)
			outlen = STUB_INFO_LEN;
		break;
	case CMD_CHANGE_BAUDRATE: {
		uint32_t div, nominal;
		st = baud_divider(d, size, &div, &nominal);
		if (st != ST_OK)
			break;
		reply(op, 0, 0, 0, ST_OK); /* at the old rate */
		baud_switch(div, nominal);
		return;
	}
	case CMD_READ_FLASH: {
		if (size != 16) {
			st = ST_BAD_DATA_LEN;
			break;
		}
		uint32_t addr = get_le32(d), len = get_le32(d + 4);
		uint32_t packet = get_le32(d + 8), window = get_le32(d + 12);
		if (packet == 0 || packet > MAX_READ_PACKET || !in_chip(addr, len)) {
			st = ST_BAD_DATA_LEN;
			break;
		}
		if (window == 0)
			window = 1;
		reply(op, 0, 0, 0, ST_OK);
		read_flash_stream(addr, len, packet, window);
		return;
	}
	default:
		st = ST_INVALID_COMMAND;
		break;
	}
	reply(op, value, out, st == ST_OK ? outlen : 0, st);
}

void stub_run(void)
{
	static const uint8_t ohai[4] = {'O', 'H', 'A', 'I'};
	send_raw(ohai, 4);
	for (;;) {
		if (!rx.pending) {
			if (rx_frame(1) < 0)
				return;
		}
		rx.pending = 0;
		handle(rx.frame_len);
	}
}
