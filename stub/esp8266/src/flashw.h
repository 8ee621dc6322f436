/*
 * A flash write session: FLASH_BEGIN/DATA/END and FLASH_DEFL_BEGIN/DATA/END,
 * with the work the stub does in the background while it waits for the
 * next packet (erasing ahead, reading the written data back for its MD5).
 */
#ifndef TF_FLASHW_H
#define TF_FLASHW_H

#include <stdint.h>

/* Start a session of size bytes at offset (compressed: size is the size
 * after inflating). block_size and num_blocks are the client's packet plan.
 * Returns a stub status code. */
int fw_begin(uint32_t size, uint32_t num_blocks, uint32_t block_size,
	     uint32_t offset, int compressed, uint32_t chip_size);
/* One FLASH_DATA / FLASH_DEFL_DATA payload. p must be word-aligned with 3
 * writable bytes after p[len-1]: an uncompressed payload is moved up to 3
 * bytes so that it lines up with its flash address. */
int fw_data(uint8_t *p, uint32_t len, uint32_t seq, int compressed);
/* FLASH_END / FLASH_DEFL_END: write what is left and close the session.
 * Without an open session there is nothing to finish: ST_OK. */
int fw_end(int compressed);

/* One step of background work, called while the stub waits for bytes:
 * start erasing the next sector or block of the open session, or read
 * back up to 1 KiB of written data into the session's MD5. */
enum { FW_IDLE, FW_WORKED, FW_WAITING };
int fw_background(void);

/* The MD5 of [addr, addr+len) if that is exactly the region of the last
 * session, closed without error and with the flash untouched since: the
 * read-back done in the background, finished now. Returns 1 with out
 * filled, 0 when the caller must compute it. */
int fw_md5(uint32_t addr, uint32_t len, uint8_t out[16]);
/* Something else may have changed the flash: forget the read-back. */
void fw_invalidate(void);

#endif
