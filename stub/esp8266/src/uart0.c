/*
 * ESP8266 UART0 transmit side, the divider and delays: shared by the stub
 * (target.c) and the loader (ldtarget.c). Registers in regs.h.
 *
 * Not run on silicon yet: see README.md.
 */
#include "regs.h"
#include "stub.h"

extern void uart_div_modify(uint32_t uart, uint32_t div);
extern void ets_delay_us(uint32_t us);

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

uint32_t plat_reg_read(uint32_t addr)
{
	return REG(addr);
}

void plat_reg_write(uint32_t addr, uint32_t value)
{
	REG(addr) = value;
}
