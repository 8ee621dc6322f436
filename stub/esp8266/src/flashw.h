/*
 * A flash write session: FLASH_BEGIN/DATA/END and FLASH_DEFL_BEGIN/DATA/END.
 */
#ifndef TF_FLASHW_H
#define TF_FLASHW_H

#include <stdint.h>

/* Start a session of size bytes at offset (compressed: size is the size
 * after inflating). block_size and num_blocks are the client's packet plan.
 * Returns a stub status code. */
int fw_begin(uint32_t size, uint32_t num_blocks, uint32_t block_size,
	     uint32_t offset, int compressed, uint32_t chip_size);
/* One FLASH_DATA / FLASH_DEFL_DATA payload. */
int fw_data(const uint8_t *p, uint32_t len, uint32_t seq, int compressed);
/* FLASH_END / FLASH_DEFL_END: write what is buffered and close the session.
 * Without an open session there is nothing to finish: ST_OK. */
int fw_end(int compressed);

#endif
