/*
 * Flash write session. Data (plain or inflated) is staged in a 4 KiB aligned
 * buffer and written with the ROM's SPIWrite contract (aligned source,
 * address and length). Sectors are erased just ahead of the data, a 64 KiB
 * block at a time where the remaining range allows; like esptool's stubs the
 * whole sectors touched by [offset, offset+size) are erased.
 *
 * A retried packet (same seq as the last one accepted, sent again because
 * the reply was lost) is acknowledged without being written twice.
 */
#include "flashw.h"
#include "inflate.h"
#include "stub.h"

#define STAGE 0x1000u

static struct {
	uint8_t active, compressed;
	uint8_t overflow;    /* inflated more than announced */
	int sticky;          /* first error of this session, repeated */
	uint32_t addr;       /* flash address of stage[0] */
	uint32_t remaining;  /* bytes still expected */
	uint32_t erase_next; /* first address not erased yet */
	uint32_t erase_end;
	uint32_t next_seq, num_blocks;
	uint32_t stage_len;
	int infl_result;
} fw;

static uint8_t stage[STAGE] __attribute__((aligned(4)));
static struct infl inflater;

static int erase_to(uint32_t end)
{
	while (fw.erase_next < end && fw.erase_next < fw.erase_end) {
		int r;
		if ((fw.erase_next & (FLASH_BLOCK - 1u)) == 0 &&
		    fw.erase_end - fw.erase_next >= FLASH_BLOCK) {
			r = plat_flash_erase_block(fw.erase_next / FLASH_BLOCK);
			if (r == 0)
				fw.erase_next += FLASH_BLOCK;
		} else {
			r = plat_flash_erase_sector(fw.erase_next / FLASH_SECTOR);
			if (r == 0)
				fw.erase_next += FLASH_SECTOR;
		}
		if (r != 0)
			return ST_FAILED_SPI_OP;
	}
	return ST_OK;
}

/* Write the staged bytes, padded with 0xFF to a multiple of 4 (0xFF leaves
 * erased flash as it is). */
static int commit(void)
{
	uint32_t n = fw.stage_len;
	if (n == 0)
		return ST_OK;
	while (n & 3u)
		stage[n++] = 0xFF;
	int r = erase_to(fw.addr + n);
	if (r != ST_OK)
		return r;
	if (plat_flash_write(fw.addr, stage, n) != 0)
		return ST_FAILED_SPI_OP;
	fw.addr += fw.stage_len;
	fw.stage_len = 0;
	return ST_OK;
}

static int put(const uint8_t *p, uint32_t n)
{
	while (n > 0) {
		uint32_t k = STAGE - fw.stage_len;
		if (k > n)
			k = n;
		__builtin_memcpy(stage + fw.stage_len, p, k);
		fw.stage_len += k;
		fw.remaining -= k;
		p += k;
		n -= k;
		if (fw.stage_len == STAGE) {
			int r = commit();
			if (r != ST_OK)
				return r;
		}
	}
	return ST_OK;
}

/*
 * Inflated output. Output beyond the announced size is not written, but
 * decoding goes on: a corrupt stream often decodes to too much data before
 * it breaks a rule, and it must be reported as an inflate error, not as the
 * client's size mistake. TOO_MUCH_DATA is reported once the stream turns
 * out valid.
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

int fw_begin(uint32_t size, uint32_t num_blocks, uint32_t block_size,
	     uint32_t offset, int compressed, uint32_t chip_size)
{
	fw.active = 0;
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
	fw.addr = offset;
	fw.remaining = size;
	fw.erase_next = offset & ~(FLASH_SECTOR - 1u);
	fw.erase_end = (offset + size + FLASH_SECTOR - 1u) & ~(FLASH_SECTOR - 1u);
	fw.next_seq = 0;
	fw.num_blocks = num_blocks;
	fw.stage_len = 0;
	fw.infl_result = INFL_MORE;
	if (compressed)
		infl_init(&inflater, sink, 0);
	return ST_OK;
}

int fw_data(const uint8_t *p, uint32_t len, uint32_t seq, int compressed)
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
			r = put(p, len < fw.remaining ? len : fw.remaining);
	}
	if (r != ST_OK) {
		fw.sticky = r;
		return r;
	}
	fw.next_seq++;
	return ST_OK;
}

int fw_end(int compressed)
{
	if (!fw.active)
		return ST_OK;
	fw.active = 0;
	if (fw.sticky != ST_OK)
		return fw.sticky;
	if (fw.compressed != (compressed != 0))
		return ST_NOT_IN_FLASH_MODE;
	if (compressed && fw.infl_result != INFL_DONE)
		return ST_INFLATE_ERROR; /* the stream stopped early */
	int r = commit();
	if (r != ST_OK)
		return r;
	return fw.remaining == 0 ? ST_OK : ST_NOT_ENOUGH_DATA;
}
