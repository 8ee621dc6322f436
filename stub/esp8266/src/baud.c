/*
 * CHANGE_BAUDRATE, shared by the stub and the loader.
 */
#include "stub.h"

/*
 * The new divider = current divider * old baud / new baud, where old is the
 * rate the link runs at now (115200 when the client sends 0, i.e. the rate
 * the ROM was synced at). Rounded to nearest.
 */
uint8_t baud_divider(const uint8_t *d, uint32_t size, uint32_t *div,
		     uint32_t *nominal)
{
	if (size != 8)
		return ST_BAD_DATA_LEN;
	uint32_t nb = get_le32(d), ob = get_le32(d + 4);
	if (ob == 0)
		ob = ROM_BAUD;
	uint32_t cur = plat_uart_divider();
	if (nb < 300u || nb > 8000000u || ob > 8000000u || cur == 0 ||
	    cur > 0xFFFFFFFFu / ob)
		return ST_BAD_DATA_LEN;
	uint32_t clk = cur * ob; /* the UART clock, in Hz */
	uint32_t nd = (clk + nb / 2u) / nb;
	if (nd == 0 || nd > 0xFFFFFu) /* UART_CLKDIV is 20 bits */
		return ST_BAD_DATA_LEN;
	*div = nd;
	*nominal = nb;
	return ST_OK;
}

/* After the reply has gone out at the old rate: wait until it has left
 * the transmitter, give the client 5 ms, switch. */
void baud_switch(uint32_t div, uint32_t nominal)
{
	plat_uart_drain();
	plat_delay_us(5000);
	plat_uart_set(div, nominal);
}
