/*
 * The loader on the ESP8266: entry point, UART0 receive by polling the
 * FIFO (the loader does nothing else while bytes arrive), RAM stores and
 * the jump. Transmit, divider and delays in uart0.c.
 *
 * Not run on silicon yet: see README.md.
 */
#include "loader.h"
#include "regs.h"
#include "stub.h"

extern void ets_set_user_start(void (*fn)(void));

int plat_ld_getc(void)
{
	while (RXFIFO_CNT(REG(UART0_STATUS)) == 0) {
	}
	return (int)(REG(UART0_FIFO) & 0xFFu);
}

uint32_t plat_ld_load(uint32_t addr)
{
	return REG(addr);
}

void plat_ld_store(uint32_t addr, uint32_t word)
{
	REG(addr) = word;
}

void plat_ld_jump(uint32_t entry)
{
	((void (*)(void))entry)();
}

/*
 * The ROM loader calls the entry after MEM_END, on its own stack. The
 * loader receives by polling: the ROM's UART interrupt handler must not
 * take bytes out of the RX FIFO meanwhile.
 */
void loader_entry(void) __attribute__((noreturn, used));
void loader_entry(void)
{
	ets_set_user_start(0);
	REG(UART0_INT_ENA) = 0;
	REG(UART0_INT_CLR) = INT_ALL;
	loader_run();
	for (;;) {
	}
}
