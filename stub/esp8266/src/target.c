/*
 * ESP8266 platform layer: the stub's entry point, UART0 (receive under
 * interrupt into the ring, transmit by polling the FIFO), SPI flash through
 * the mask-ROM routines plus a non-blocking erase through the SPI0
 * registers, and the ROM's MD5, delays and reset. The ROM addresses are
 * given to the linker in rom.ld.
 *
 * Not run on silicon yet: see README.md.
 */
#include "regs.h"
#include "rxring.h"
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
extern void ets_set_user_start(void (*fn)(void));
extern void software_reset(void);
extern void ets_isr_attach(uint32_t inum, void (*fn)(void *), void *arg);
extern void ets_isr_unmask(uint32_t mask);

/* The receive interrupt fires when 32 bytes wait (96 more fit: 1 ms at
 * 921600 baud, 0.5 ms at 2 Mbaud of latency allowed) or when the line has
 * been quiet for 2 byte times with bytes waiting. */
#define RX_FULL_THRESHOLD 32u
#define RX_TOUT_THRESHOLD 2u

/* Empty the RX FIFO into the ring. */
static void uart0_isr(void *arg)
{
	(void)arg;
	uint8_t buf[32];
	uint32_t st = REG(UART0_INT_ST);
	for (;;) {
		uint32_t n = RXFIFO_CNT(REG(UART0_STATUS));
		if (n == 0)
			break;
		if (n > sizeof buf)
			n = sizeof buf;
		for (uint32_t i = 0; i < n; i++)
			buf[i] = (uint8_t)REG(UART0_FIFO);
		rx_push(buf, n);
	}
	if (st & INT_RXFIFO_OVF)
		rx_fifo_overflow();
	REG(UART0_INT_CLR) = st;
}

static void uart0_rx_start(void)
{
	REG(UART0_INT_ENA) = 0;
	REG(UART0_INT_CLR) = INT_ALL;
	uint32_t c = REG(UART0_CONF1);
	c &= ~(CONF1_FULL_MASK | CONF1_TOUT_MASK | CONF1_TOUT_EN);
	c |= RX_FULL_THRESHOLD | RX_TOUT_THRESHOLD << CONF1_TOUT_SHIFT |
	     CONF1_TOUT_EN;
	REG(UART0_CONF1) = c;
	/* Replaces the ROM loader's own UART handler on this interrupt. */
	ets_isr_attach(ETS_UART0_INUM, uart0_isr, 0);
	REG(UART0_INT_ENA) = INT_RXFIFO_FULL | INT_RXFIFO_TOUT | INT_RXFIFO_OVF;
	ets_isr_unmask(1u << ETS_UART0_INUM);
}

void plat_rx_wait(int soon)
{
	(void)soon; /* the interrupt fills the ring: just look again */
}

void plat_reboot(void)
{
	software_reset();
	for (;;) {
	}
}

/* ---- SPI flash ----------------------------------------------------------- */

/*
 * SPI0 registers for a non-blocking erase, as esptool's legacy ESP8266
 * stub drives them (esptool-legacy-flasher-stub soc_support.h and
 * stub_write_flash.c: start_next_erase, spiflash_is_ready): the command
 * register's one-shot bits, the address register, the read-status result,
 * and the controller's state in EXT2.
 */
#define SPI_CMD 0x60000200u
#define SPI_ADDR 0x60000204u
#define SPI_RD_STATUS 0x60000210u
#define SPI_EXT2 0x600002F8u
#define SPI_CMD_WREN (1u << 30)
#define SPI_CMD_RDSR (1u << 27)
#define SPI_CMD_SE (1u << 24)
#define SPI_CMD_BE (1u << 23)
#define SPI_ST 0x7u
#define STATUS_WIP 1u

static void spi_cmd(uint32_t bit)
{
	while (REG(SPI_EXT2) & SPI_ST) {
	}
	REG(SPI_CMD) = bit;
	while (REG(SPI_CMD) != 0) {
	}
}

/* Set while an erase started by plat_flash_erase_start may still run:
 * only then is the flash's status register polled (never before the
 * flash is attached at start). */
static uint8_t erasing;

static int write_in_progress(void)
{
	REG(SPI_RD_STATUS) = 0;
	spi_cmd(SPI_CMD_RDSR);
	return (REG(SPI_RD_STATUS) & STATUS_WIP) != 0;
}

int plat_flash_busy(void)
{
	if (!erasing)
		return 0;
	if (write_in_progress())
		return 1;
	erasing = 0;
	return 0;
}

static void flash_wait(void)
{
	while (plat_flash_busy()) {
	}
}

int plat_flash_erase_start(uint32_t addr, int block)
{
	/* Whatever ran before (our erase, or a status write of the ROM's
	 * SPIUnlock) must be over, or the flash ignores the write enable. */
	while (write_in_progress()) {
	}
	erasing = 0;
	spi_cmd(SPI_CMD_WREN);
	while (REG(SPI_EXT2) & SPI_ST) {
	}
	REG(SPI_ADDR) = addr & 0xFFFFFFu;
	spi_cmd(block ? SPI_CMD_BE : SPI_CMD_SE);
	erasing = 1;
	return 0;
}

int plat_flash_read(uint32_t addr, void *dst, uint32_t len)
{
	flash_wait();
	return SPIRead(addr, dst, len);
}

int plat_flash_write(uint32_t addr, const void *src, uint32_t len)
{
	flash_wait();
	return SPIWrite(addr, src, len);
}

int plat_flash_erase_sector(uint32_t sector)
{
	flash_wait();
	return SPIEraseSector(sector);
}

int plat_flash_erase_block(uint32_t block)
{
	flash_wait();
	return SPIEraseBlock(block);
}

int plat_flash_erase_chip(void)
{
	flash_wait();
	return SPIEraseChip();
}

int plat_flash_unlock(void)
{
	flash_wait();
	return SPIUnlock();
}

void plat_flash_attach(void)
{
	flash_wait();
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
	plat_flash_attach();
	SPIParamCfg(0, FLASH_MAX_SIZE, FLASH_BLOCK, FLASH_SECTOR, FLASH_PAGE,
		    0xFFFFu);
	uart0_rx_start();
	stub_run();
	for (;;) {
	}
}
