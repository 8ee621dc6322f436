/*
 * The loader's protocol core (loader.h). Frames are decoded as they arrive,
 * byte by byte: MEM_DATA's payload goes straight into RAM a word at a time
 * (IRAM takes only 32-bit stores), so the loader needs no buffer for it;
 * its place is set by the packet's sequence number, so a packet sent again
 * after a checksum error lands where it belongs. Replies are the stub's:
 * value, then the status bytes [code, 0].
 */
#include "loader.h"
#include "stub.h"

#define SLIP_END 0xC0u
#define SLIP_ESC 0xDBu

enum {
	CMD_MEM_BEGIN = 0x05,
	CMD_MEM_END = 0x06,
	CMD_MEM_DATA = 0x07
};

static void put(uint8_t b)
{
	uint8_t e[2] = {SLIP_ESC, 0};
	if (b == SLIP_END || b == SLIP_ESC) {
		e[1] = b == SLIP_END ? 0xDC : 0xDD;
		plat_uart_write(e, 2);
	} else {
		plat_uart_write(&b, 1);
	}
}

static void frame_edge(void)
{
	uint8_t b = SLIP_END;
	plat_uart_write(&b, 1);
}

/* Fields are set one by one and the greeting is a word: the loader has
 * no read-only data (loader.ld). */
static void reply(uint8_t op, uint32_t value, uint8_t status)
{
	uint8_t h[10];
	h[0] = 0x01;
	h[1] = op;
	h[2] = 2;
	h[3] = 0;
	put_le32(h + 4, value);
	h[8] = status;
	h[9] = 0;
	frame_edge();
	for (int i = 0; i < 10; i++)
		put(h[i]);
	frame_edge();
}

static int within(uint32_t addr, uint32_t size, uint32_t lo, uint32_t len)
{
	return addr - lo <= len && size <= len - (addr - lo);
}

/* RAM a program may be loaded into (the windows the ROM loader writes
 * uploads to: the user DRAM 0x3FFE8000-0x3FFFC000, IRAM 0x40100000-
 * 0x40110000 below the loader itself). */
static int may_load(uint32_t addr, uint32_t size)
{
	return within(addr, size, 0x3FFE8000u, 0x14000u) ||
	       within(addr, size, 0x40100000u, LOADER_START - 0x40100000u);
}

/* The MEM_BEGIN in progress (size 0: none). */
struct mem {
	uint32_t addr, size, block;
};

/* A MEM_DATA packet's place, checked when its 16-byte header is in:
 * returns the address of its first byte, or 0 when it cannot be stored. */
static uint32_t data_place(const struct mem *m, const uint8_t *hdr)
{
	uint32_t size = (uint32_t)hdr[2] | (uint32_t)hdr[3] << 8;
	uint32_t len = get_le32(hdr + 8), seq = get_le32(hdr + 12);
	uint32_t off = seq * m->block;
	if (len != size - 16u || (len & 3u) || len > m->block ||
	    seq > 0xFFFFu || off >= m->size || len > m->size - off)
		return 0;
	return m->addr + off;
}

void loader_run(void)
{
	struct mem mem = {0, 0, 0};
	uint8_t ohai[4];
	put_le32(ohai, 0x4941484Fu); /* "OHAI" */
	frame_edge();
	for (int i = 0; i < 4; i++)
		put(ohai[i]);
	frame_edge();
	for (;;) {
		/* A frame: header (8 bytes), then data; a MEM_DATA's first 16
		 * data bytes are its own header, the rest its payload. */
		uint8_t hdr[24];
		uint32_t n = 0, dest = 0, word = 0;
		uint8_t sum = 0xEF, broken = 0;
		int c;
		do {
			c = plat_ld_getc();
			if (c < 0)
				return;
		} while (c != SLIP_END);
		for (;;) {
			c = plat_ld_getc();
			if (c < 0)
				return;
			if (c == SLIP_END)
				break;
			if (c == SLIP_ESC) {
				c = plat_ld_getc();
				if (c < 0)
					return;
				if (c == 0xDC)
					c = SLIP_END;
				else if (c == 0xDD)
					c = SLIP_ESC;
				else
					broken = 1;
			}
			if (n < sizeof hdr) {
				hdr[n++] = (uint8_t)c;
				if (n == sizeof hdr && hdr[1] == CMD_MEM_DATA)
					dest = data_place(&mem, hdr);
				continue;
			}
			uint32_t k = n++ - sizeof hdr;
			sum ^= (uint8_t)c;
			word |= (uint32_t)c << (8u * (k & 3u));
			if ((k & 3u) == 3u) {
				if (dest != 0)
					plat_ld_store(dest + k - 3u, word);
				word = 0;
			}
		}
		if (n == 0)
			continue; /* the END that closed a frame opened this one */
		if (broken || n < 8 || hdr[0] != 0x00)
			continue; /* not a request: ignore it */
		uint8_t op = hdr[1];
		uint32_t size = (uint32_t)hdr[2] | (uint32_t)hdr[3] << 8;
		const uint8_t *d = hdr + 8;
		uint32_t value = 0;
		uint8_t st = ST_OK;
		if (size != n - 8u) {
			reply(op, 0, ST_BAD_DATA_LEN);
			continue;
		}
		switch (op) {
		case CMD_READ_REG:
			if (size != 4 || (get_le32(d) & 3u))
				st = ST_BAD_DATA_LEN;
			else
				value = plat_ld_load(get_le32(d));
			break;
		case CMD_CHANGE_BAUDRATE: {
			/* As the stub's (baud.c), without its range checks: the
			 * loader serves only tuyaflash's client. */
			uint32_t nb = get_le32(d), ob = get_le32(d + 4);
			if (size != 8 || nb == 0) {
				st = ST_BAD_DATA_LEN;
				break;
			}
			if (ob == 0)
				ob = ROM_BAUD;
			reply(op, 0, ST_OK); /* at the old rate */
			baud_switch((plat_uart_divider() * ob + nb / 2u) / nb, nb);
			continue;
		}
		case CMD_MEM_BEGIN: {
			uint32_t sz = get_le32(d), bl = get_le32(d + 8);
			uint32_t addr = get_le32(d + 12);
			mem.size = 0;
			if (size != 16 || ((sz | bl | addr) & 3u) || bl == 0 ||
			    !may_load(addr, sz))
				st = ST_BAD_DATA_LEN;
			else {
				mem.addr = addr;
				mem.size = sz;
				mem.block = bl;
			}
			break;
		}
		case CMD_MEM_DATA:
			if (size < 16 || dest == 0)
				st = ST_BAD_DATA_LEN;
			else if (sum != (uint8_t)get_le32(hdr + 4))
				st = ST_BAD_DATA_CHECKSUM;
			break;
		case CMD_MEM_END:
			if (size != 8) {
				st = ST_BAD_DATA_LEN;
				break;
			}
			reply(op, 0, ST_OK);
			if (get_le32(d) == 0) {
				plat_uart_drain();
				plat_ld_jump(get_le32(d + 4));
				return;
			}
			continue;
		default:
			st = ST_INVALID_COMMAND;
			break;
		}
		reply(op, value, st);
	}
}
