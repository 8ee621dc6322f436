/*
 * ESP8266 platform layer: the stub's entry point, UART0 by register polling,
 * and the mask-ROM routines for SPI flash, MD5, delays and reset. The ROM
 * addresses are given to the linker in rom.ld.
 *
 * Not run on silicon yet: see README.md.
 */
#include "stub.h"

/* ---- mask ROM (addresses in rom.ld) ---------------------------------- */

struct rom_md5 { /* the ROM's MD5Context: 88 bytes */
	uint32_t buf[4];
	uint32_t bits[2];
	uint8_t in[64];
};
_Static_assert(sizeof(struct rom_md5) <= sizeof(plat_md5_ctx),
	       "MD5 context does not fit");

extern int SPIRead(uint32_t addr, void *dst, uint32_t size);
extern int SPIWrite(uint32_t addr, const void *src, uint32_t size);
extern int SPIEraseSector(uint32_t sector);
extern int SPIEraseBlock(uint32_t block);
extern int SPIEraseChip(void);
extern int SPIUnlock(void);
extern int SPIParamCfg(uint32_t id, uint32_t size, uint32_t block,
		       uint32_t sector, uint32_t page, uint32_t status_mask);
extern void SelectSpiFunction(void);
extern void spi_flash_attach(void);
extern void MD5Init(struct rom_md5 *c);
extern void MD5Update(struct rom_md5 *c, const void *p, uint32_t n);
extern void MD5Final(uint8_t out[16], struct rom_md5 *c);
extern void uart_div_modify(uint32_t uart, uint32_t div);
extern void ets_delay_us(uint32_t us);
extern void ets_set_user_start(void (*fn)(void));
extern void software_reset(void);

/* ---- UART0 registers (ESP8266 technical reference / esptool) ----------- */

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0_FIFO 0x60000000u
#define UART0_INT_ENA 0x6000000Cu
#define UART0_INT_CLR 0x60000010u
#define UART0_CLKDIV 0x60000014u
#define UART0_STATUS 0x6000001Cu
#define RXFIFO_CNT(st) ((st) & 0xFFu)
#define TXFIFO_CNT(st) (((st) >> 16) & 0xFFu)
#define FIFO_SIZE 128u

int plat_uart_read(uint8_t *buf, uint32_t max, int wait)
{
	uint32_t n = 0;
	for (;;) {
		uint32_t avail = RXFIFO_CNT(REG(UART0_STATUS));
		while (avail > 0 && n < max) {
			buf[n++] = (uint8_t)REG(UART0_FIFO);
			avail--;
		}
		if (n > 0 || !wait)
			return (int)n;
	}
}

void plat_uart_write(const uint8_t *buf, uint32_t n)
{
	while (n--) {
		while (TXFIFO_CNT(REG(UART0_STATUS)) >= FIFO_SIZE - 2u) {
		}
		REG(UART0_FIFO) = *buf++;
	}
}

void plat_uart_drain(void)
{
	while (TXFIFO_CNT(REG(UART0_STATUS)) != 0) {
	}
	ets_delay_us(1000); /* the last character leaves the shift register */
}

uint32_t plat_uart_divider(void)
{
	return REG(UART0_CLKDIV) & 0xFFFFFu;
}

void plat_uart_set(uint32_t div, uint32_t nominal)
{
	(void)nominal;
	uart_div_modify(0, div);
}

void plat_delay_us(uint32_t us)
{
	ets_delay_us(us);
}

void plat_reboot(void)
{
	software_reset();
	for (;;) {
	}
}

uint32_t plat_reg_read(uint32_t addr)
{
	return REG(addr);
}

void plat_reg_write(uint32_t addr, uint32_t value)
{
	REG(addr) = value;
}

/* ---- SPI flash ----------------------------------------------------------- */

int plat_flash_read(uint32_t addr, void *dst, uint32_t len)
{
	return SPIRead(addr, dst, len);
}

int plat_flash_write(uint32_t addr, const void *src, uint32_t len)
{
	return SPIWrite(addr, src, len);
}

int plat_flash_erase_sector(uint32_t sector)
{
	return SPIEraseSector(sector);
}

int plat_flash_erase_block(uint32_t block)
{
	return SPIEraseBlock(block);
}

int plat_flash_erase_chip(void)
{
	return SPIEraseChip();
}

int plat_flash_unlock(void)
{
	return SPIUnlock();
}

void plat_flash_attach(void)
{
	SelectSpiFunction();
	spi_flash_attach();
}

int plat_flash_set_params(uint32_t id, uint32_t size, uint32_t block,
			  uint32_t sector, uint32_t page, uint32_t status_mask)
{
	return SPIParamCfg(id, size, block, sector, page, status_mask);
}

/* ---- MD5 ------------------------------------------------------------------ */

void plat_md5_init(plat_md5_ctx *c)
{
	MD5Init((struct rom_md5 *)c);
}

void plat_md5_update(plat_md5_ctx *c, const void *p, uint32_t n)
{
	MD5Update((struct rom_md5 *)c, p, n);
}

void plat_md5_final(uint8_t out[16], plat_md5_ctx *c)
{
	MD5Final(out, (struct rom_md5 *)c);
}

/* ---- entry ------------------------------------------------------------------ */

extern uint32_t _bss_start[], _bss_end[];

/*
 * The ROM loader calls the entry after MEM_END, on its own stack, with
 * interrupts as it left them. The stub never returns.
 */
void stub_entry(void) __attribute__((noreturn, used));
void stub_entry(void)
{
	for (uint32_t *p = _bss_start; p < _bss_end; p++)
		*p = 0;
	/* MEM_END registered us as the user-start hook; clear it so that a
	 * later restart does not come back here. */
	ets_set_user_start(0);
	/* Receive by polling: keep the ROM's UART interrupt handler from
	 * taking bytes out of the RX FIFO. */
	REG(UART0_INT_ENA) = 0;
	REG(UART0_INT_CLR) = 0x1FFu;
	plat_flash_attach();
	SPIParamCfg(0, FLASH_MAX_SIZE, FLASH_BLOCK, FLASH_SECTOR, FLASH_PAGE,
		    0xFFFFu);
	stub_run();
	for (;;) {
	}
}
