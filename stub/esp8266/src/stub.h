/*
 * tuyaflash ESP8266 flasher stub: protocol constants and the platform layer.
 *
 * The protocol core (proto.c, flashw.c, inflate.c) is plain C11 without a C
 * library. It talks to the chip only through the plat_* functions declared
 * here. target.c implements them on the ESP8266 with the mask-ROM routines;
 * host/host.c implements them on Linux with a file-backed fake flash and a
 * tty or pipe standing in for UART0, so that the very same core can be run
 * and tested on the build machine.
 *
 * Protocol facts follow esptool's serial protocol (packet layout, opcodes,
 * stub error codes, READ_FLASH flow): see README.md for the sources.
 */
#ifndef TF_STUB_H
#define TF_STUB_H

#include <stdint.h>
#include <stddef.h>

/* Opcodes (request byte 1). */
enum {
	CMD_FLASH_BEGIN = 0x02,
	CMD_FLASH_DATA = 0x03,
	CMD_FLASH_END = 0x04,
	CMD_SYNC = 0x08,
	CMD_WRITE_REG = 0x09,
	CMD_READ_REG = 0x0A,
	CMD_SPI_SET_PARAMS = 0x0B,
	CMD_SPI_ATTACH = 0x0D,
	CMD_CHANGE_BAUDRATE = 0x0F,
	CMD_FLASH_DEFL_BEGIN = 0x10,
	CMD_FLASH_DEFL_DATA = 0x11,
	CMD_FLASH_DEFL_END = 0x12,
	CMD_SPI_FLASH_MD5 = 0x13,
	CMD_ERASE_FLASH = 0xD0,
	CMD_ERASE_REGION = 0xD1,
	CMD_READ_FLASH = 0xD2,
	/* tuyaflash's own: what this stub can do (README, STUB_INFO). Other
	 * stubs answer it with an error, as any unknown opcode. */
	CMD_STUB_INFO = 0x7D
};

/* STUB_INFO: reply value ("TFS1" in little-endian byte order), data
 * length and feature bits. */
#define STUB_INFO_MAGIC 0x31534654u
#define STUB_INFO_LEN 24u
enum {
	FEAT_PIPELINE = 1u << 0,  /* data replies after the work, value = seq */
	FEAT_WRITE_MD5 = 1u << 1, /* MD5 of a written region read back meanwhile */
	FEAT_BG_ERASE = 1u << 2   /* erases ahead while waiting for data */
};

/*
 * Stub error codes. They travel as the first of the two status bytes at the
 * end of every response (second byte 0), which is the byte order esptool's
 * stubs use: read as a big-endian u16 the pair is 0xC000, 0xC100, ...
 */
enum {
	ST_OK = 0x00,
	ST_BAD_DATA_LEN = 0xC0,
	ST_BAD_DATA_CHECKSUM = 0xC1,
	ST_BAD_BLOCKSIZE = 0xC2,
	ST_INVALID_COMMAND = 0xC3,
	ST_FAILED_SPI_OP = 0xC4,
	ST_FAILED_SPI_UNLOCK = 0xC5,
	ST_NOT_IN_FLASH_MODE = 0xC6,
	ST_INFLATE_ERROR = 0xC7,
	ST_NOT_ENOUGH_DATA = 0xC8,
	ST_TOO_MUCH_DATA = 0xC9
};

/* Flash geometry the stub works with (SPI NOR, ESP8266: 24-bit addresses). */
#define FLASH_SECTOR 0x1000u
#define FLASH_BLOCK 0x10000u
#define FLASH_PAGE 0x100u
#define FLASH_MAX_SIZE 0x1000000u /* 16 MiB: the ESP8266 SPI0 address limit */

/* Largest FLASH_DATA/FLASH_DEFL_DATA payload (esptool's stub block size). */
#define MAX_BLOCK 0x4000u
/* Request header (8) + data header (16) + block. */
#define MAX_FRAME (8u + 16u + MAX_BLOCK)
/* Largest READ_FLASH packet. */
#define MAX_READ_PACKET 0x1000u

/* The baud rate assumed for the ROM link when CHANGE_BAUDRATE says 0. */
#define ROM_BAUD 115200u

/* ---- platform layer ------------------------------------------------- */

/* UART0. Received bytes arrive in the receive ring (rxring.h), put there
 * by the platform's UART interrupt or reader thread. plat_rx_wait is
 * called when the core has nothing to decode and nothing to do: it may
 * return at once (the chip spins), or sleep until bytes arrive or, with
 * soon != 0, for at most about a millisecond (background work is waiting
 * for the flash). */
void plat_rx_wait(int soon);
void plat_uart_write(const uint8_t *buf, uint32_t n);
/* Wait until everything written has left the transmitter. */
void plat_uart_drain(void);
/* The UART clock divider now in use. */
uint32_t plat_uart_divider(void);
/* Switch to divider div; nominal is the baud rate the client asked for
 * (the host build uses it for the tty speed, the chip only needs div). */
void plat_uart_set(uint32_t div, uint32_t nominal);

void plat_delay_us(uint32_t us);
/* Restart the chip (FLASH_END with flag 0). Does not return. */
void plat_reboot(void) __attribute__((noreturn));

uint32_t plat_reg_read(uint32_t addr);
void plat_reg_write(uint32_t addr, uint32_t value);

/* SPI flash, with the mask-ROM's contract: buffers 4-byte aligned, lengths
 * multiples of 4, addresses 4-byte aligned. Return 0 on success. */
int plat_flash_read(uint32_t addr, void *dst, uint32_t len);
int plat_flash_write(uint32_t addr, const void *src, uint32_t len);
int plat_flash_erase_sector(uint32_t sector);
int plat_flash_erase_block(uint32_t block);
int plat_flash_erase_chip(void);
/* Start erasing the 4 KiB sector (block == 0) or the 64 KiB block at addr
 * and return without waiting for the flash; plat_flash_busy reports 1
 * until it is done. Every other plat_flash_* call waits for it first. */
int plat_flash_erase_start(uint32_t addr, int block);
int plat_flash_busy(void);
int plat_flash_unlock(void);
void plat_flash_attach(void);
int plat_flash_set_params(uint32_t id, uint32_t size, uint32_t block,
			  uint32_t sector, uint32_t page, uint32_t status_mask);

/* MD5 (RFC 1321). The context is opaque storage large enough for the ESP8266
 * ROM's MD5Context (88 bytes) and the host implementation. */
typedef struct {
	uint32_t w[24];
} plat_md5_ctx;
void plat_md5_init(plat_md5_ctx *c);
void plat_md5_update(plat_md5_ctx *c, const void *p, uint32_t n);
void plat_md5_final(uint8_t out[16], plat_md5_ctx *c);

/* ---- core entry points -------------------------------------------- */

/* Send "OHAI", then serve commands. Returns only when the host build's link
 * is gone. */
void stub_run(void);

/* CHANGE_BAUDRATE (baud.c): the divider for the request's 8 data bytes
 * (a status code), and the switch once the reply is out. */
uint8_t baud_divider(const uint8_t *d, uint32_t size, uint32_t *div,
		     uint32_t *nominal);
void baud_switch(uint32_t div, uint32_t nominal);

/* A 4 KiB (+8) word-aligned buffer for flash reads: READ_FLASH packets,
 * MD5 computation, the write session's read-back. Those never overlap. */
extern uint8_t scratch[];
#define SCRATCH_SIZE (MAX_READ_PACKET + 8u)

/* Little helpers shared by the core files. */
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

#endif
