/*
 * Flash write session.
 *
 * Data (plain, or inflated through the inflater's 32 KiB window) is
 * programmed straight from where it lies, with the ROM's SPIWrite contract
 * (aligned source, address and length): a payload's bytes line up with
 * their flash address modulo 4 (the window by construction, a plain payload
 * after put_aligned moves it), and the up to 3 bytes of a word that the
 * next payload completes wait in a one-word carry.
 *
 * Sectors are erased ahead of the data, a 64 KiB block at a time where the
 * remaining range allows; like esptool's stubs the whole sectors touched by
 * [offset, offset+size) are erased. An erase is started and left to run
 * (plat_flash_erase_start); the next flash operation waits for it. While
 * the stub waits for the next packet, fw_background starts the next erase
 * of the session, then reads back what has been programmed into an MD5 of
 * the region, so that SPI_FLASH_MD5 after FLASH_END has little left to do.
 *
 * A retried packet (same seq as the last one accepted, sent again because
 * the reply was lost) is acknowledged without being written twice.
 */
#include "flashw.h"
#include "inflate.h"
#include "stub.h"

enum { HASH_NONE, HASH_RUNNING, HASH_DONE };

/* Read-back step sizes: small in the background (a packet that completes
 * meanwhile waits for at most one step), larger when the MD5 is asked for. */
#define HASH_STEP_IDLE 1024u
#define HASH_STEP_BUSY MAX_READ_PACKET

static struct {
	uint8_t active, compressed;
	uint8_t overflow; /* inflated more than announced */
	uint8_t hash;     /* HASH_*: state of the read-back MD5 */
	int sticky;       /* first error of this session, repeated */
	uint32_t start, size;
	uint32_t addr;       /* next flash address to program (word-aligned) */
	uint32_t remaining;  /* bytes still expected */
	uint32_t erase_next; /* first address not erased yet */
	uint32_t erase_end;
	uint32_t next_seq, num_blocks;
	int infl_result;
	uint32_t carry_len; /* bytes of the word at addr held in carry */
	union {
		uint32_t w;
		uint8_t b[4];
	} carry;
	uint32_t hashed; /* flash read back into md5 up to here */
	plat_md5_ctx md5;
	uint8_t digest[16];
} fw;

static struct infl inflater;

/* Start the next erase of the session: a 64 KiB block where aligned and
 * wholly inside the range, else a sector. */
static int erase_next(void)
{
	int block = (fw.erase_next & (FLASH_BLOCK - 1u)) == 0 &&
		    fw.erase_end - fw.erase_next >= FLASH_BLOCK;
	if (plat_flash_erase_start(fw.erase_next, block) != 0)
		return ST_FAILED_SPI_OP;
	fw.erase_next += block ? FLASH_BLOCK : FLASH_SECTOR;
	return ST_OK;
}

static int erase_to(uint32_t end)
{
	while (fw.erase_next < end && fw.erase_next < fw.erase_end) {
		int r = erase_next();
		if (r != ST_OK)
			return r;
	}
	return ST_OK;
}

/* Program n bytes (a multiple of 4, p word-aligned) at fw.addr, a sector
 * at a time, each piece after the erase that covers it. */
static int program(const uint8_t *p, uint32_t n)
{
	while (n > 0) {
		uint32_t k = FLASH_SECTOR - (fw.addr & (FLASH_SECTOR - 1u));
		if (k > n)
			k = n;
		int r = erase_to(fw.addr + k);
		if (r != ST_OK)
			return r;
		if (plat_flash_write(fw.addr, p, k) != 0)
			return ST_FAILED_SPI_OP;
		fw.addr += k;
		p += k;
		n -= k;
	}
	return ST_OK;
}

/* Write n bytes whose flash address is fw.addr + fw.carry_len; p must be
 * congruent to that address modulo 4. */
static int put(const uint8_t *p, uint32_t n)
{
	fw.remaining -= n;
	if (fw.carry_len > 0) {
		while (fw.carry_len < 4 && n > 0) {
			fw.carry.b[fw.carry_len++] = *p++;
			n--;
		}
		if (fw.carry_len < 4)
			return ST_OK;
		int r = program(fw.carry.b, 4);
		if (r != ST_OK)
			return r;
		fw.carry_len = 0;
	}
	uint32_t body = n & ~3u;
	if (body > 0) {
		int r = program(p, body);
		if (r != ST_OK)
			return r;
		p += body;
		n -= body;
	}
	while (n > 0) {
		fw.carry.b[fw.carry_len++] = *p++;
		n--;
	}
	return ST_OK;
}

/* A plain payload: move it (up to 3 bytes) so that it lines up with its
 * flash address, then put it. */
static int put_aligned(uint8_t *p, uint32_t n)
{
	uint32_t k = (fw.addr + fw.carry_len) & 3u;
	if (k != 0) {
		__builtin_memmove(p + k, p, n);
		p += k;
	}
	return put(p, n);
}

/*
 * Inflated output (p lies in the inflater's window, whose offset is the
 * output count modulo 32 KiB, so it lines up). Output beyond the announced
 * size is not written, but decoding goes on: a corrupt stream often decodes
 * to too much data before it breaks a rule, and it must be reported as an
 * inflate error, not as the client's size mistake. TOO_MUCH_DATA is
 * reported once the stream turns out valid.
 */
static int sink(void *ctx, const uint8_t *p, uint32_t n)
{
	(void)ctx;
	if (n > fw.remaining) {
		fw.overflow = 1;
		n = fw.remaining;
	}
	return put(p, n);
}

/* Read back up to max bytes after fw.hashed (below limit) into the MD5. */
static int hash_step(uint32_t limit, uint32_t max)
{
	uint32_t n = limit - fw.hashed;
	if (n > max)
		n = max;
	if (plat_flash_read(fw.hashed, scratch, (n + 3u) & ~3u) != 0) {
		fw.hash = HASH_NONE; /* SPI_FLASH_MD5 will read it and fail */
		return -1;
	}
	plat_md5_update(&fw.md5, scratch, n);
	fw.hashed += n;
	return 0;
}

/* How far the read-back may go: what is programmed, within the region. */
static uint32_t hash_limit(void)
{
	uint32_t end = fw.start + fw.size;
	return fw.active && fw.addr < end ? fw.addr : end;
}

static void fail(int r)
{
	fw.sticky = r;
	fw.hash = HASH_NONE;
}

int fw_begin(uint32_t size, uint32_t num_blocks, uint32_t block_size,
	     uint32_t offset, int compressed, uint32_t chip_size)
{
	fw.active = 0;
	fw.hash = HASH_NONE;
	if (block_size > MAX_BLOCK)
		return ST_BAD_BLOCKSIZE;
	if ((offset & 3u) != 0 || offset > chip_size || size > chip_size - offset)
		return ST_BAD_DATA_LEN;
	if (plat_flash_unlock() != 0)
		return ST_FAILED_SPI_UNLOCK;
	fw.active = 1;
	fw.compressed = (uint8_t)(compressed != 0);
	fw.overflow = 0;
	fw.sticky = ST_OK;
	fw.start = fw.addr = offset;
	fw.size = fw.remaining = size;
	fw.erase_next = offset & ~(FLASH_SECTOR - 1u);
	fw.erase_end = (offset + size + FLASH_SECTOR - 1u) & ~(FLASH_SECTOR - 1u);
	fw.next_seq = 0;
	fw.num_blocks = num_blocks;
	fw.carry_len = 0;
	fw.infl_result = INFL_MORE;
	fw.hash = HASH_RUNNING;
	fw.hashed = offset;
	plat_md5_init(&fw.md5);
	if (compressed)
		infl_init(&inflater, sink, 0);
	return ST_OK;
}

int fw_data(uint8_t *p, uint32_t len, uint32_t seq, int compressed)
{
	if (!fw.active || fw.compressed != (compressed != 0))
		return ST_NOT_IN_FLASH_MODE;
	if (fw.sticky != ST_OK)
		return fw.sticky;
	if (fw.next_seq > 0 && seq == fw.next_seq - 1u)
		return ST_OK; /* a retry of a packet already written */
	if (seq != fw.next_seq)
		return ST_BAD_DATA_LEN;
	int r;
	if (compressed) {
		int final = fw.num_blocks > 0 && seq + 1u >= fw.num_blocks;
		fw.infl_result = infl_feed(&inflater, p, len, final);
		if (fw.infl_result == INFL_MORE)
			r = ST_OK;
		else if (fw.infl_result == INFL_DONE)
			r = fw.overflow ? ST_TOO_MUCH_DATA : ST_OK;
		else
			r = fw.infl_result;
	} else {
		if (fw.remaining == 0 && len > 0)
			r = ST_TOO_MUCH_DATA;
		else /* bytes past the announced size are padding */
			r = put_aligned(p, len < fw.remaining ? len : fw.remaining);
	}
	if (r != ST_OK) {
		fail(r);
		return r;
	}
	fw.next_seq++;
	return ST_OK;
}

int fw_end(int compressed)
{
	if (!fw.active)
		return ST_OK;
	int r = fw.sticky;
	if (r == ST_OK && fw.compressed != (compressed != 0))
		r = ST_NOT_IN_FLASH_MODE;
	if (r == ST_OK && compressed && fw.infl_result != INFL_DONE)
		r = ST_INFLATE_ERROR; /* the stream stopped early */
	if (r == ST_OK && fw.carry_len > 0) {
		/* The last word, padded with 0xFF (erased cells stay erased). */
		while (fw.carry_len < 4)
			fw.carry.b[fw.carry_len++] = 0xFF;
		r = program(fw.carry.b, 4);
		fw.carry_len = 0;
	}
	if (r == ST_OK && fw.remaining != 0)
		r = ST_NOT_ENOUGH_DATA;
	fw.active = 0;
	if (r != ST_OK)
		fw.hash = HASH_NONE;
	return r;
}

int fw_background(void)
{
	if (fw.active && fw.sticky == ST_OK && fw.erase_next < fw.erase_end) {
		if (plat_flash_busy())
			return FW_WAITING;
		int r = erase_next();
		if (r != ST_OK)
			fail(r); /* the next packet reports it */
		return FW_WORKED;
	}
	if (fw.hash == HASH_RUNNING && fw.hashed < hash_limit()) {
		if (plat_flash_busy())
			return FW_WAITING;
		hash_step(hash_limit(), HASH_STEP_IDLE);
		return FW_WORKED;
	}
	return FW_IDLE;
}

int fw_md5(uint32_t addr, uint32_t len, uint8_t out[16])
{
	if (fw.active || addr != fw.start || len != fw.size)
		return 0;
	if (fw.hash == HASH_RUNNING) {
		while (fw.hashed < fw.start + fw.size) {
			if (hash_step(fw.start + fw.size, HASH_STEP_BUSY) != 0)
				return 0;
		}
		plat_md5_final(fw.digest, &fw.md5);
		fw.hash = HASH_DONE;
	}
	if (fw.hash != HASH_DONE)
		return 0;
	__builtin_memcpy(out, fw.digest, 16);
	return 1;
}

void fw_invalidate(void)
{
	fw.hash = HASH_NONE;
}
