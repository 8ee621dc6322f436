/*
 * ESP8266 UART0 registers, as both the stub and the loader use them
 * (esp-stub-lib src/target/esp8266/include/soc/uart_reg.h; the interrupt
 * number from esptool-legacy-flasher-stub include/soc_support.h,
 * ETS_UART0_INUM).
 */
#ifndef TF_REGS_H
#define TF_REGS_H

#include <stdint.h>

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0_FIFO 0x60000000u
#define UART0_INT_ST 0x60000008u
#define UART0_INT_ENA 0x6000000Cu
#define UART0_INT_CLR 0x60000010u
#define UART0_CLKDIV 0x60000014u
#define UART0_STATUS 0x6000001Cu
#define UART0_CONF1 0x60000024u
#define RXFIFO_CNT(st) ((st) & 0xFFu)
#define TXFIFO_CNT(st) (((st) >> 16) & 0xFFu)
#define FIFO_SIZE 128u
/* INT_ST / INT_ENA / INT_CLR bits */
#define INT_RXFIFO_FULL (1u << 0)
#define INT_RXFIFO_OVF (1u << 4)
#define INT_RXFIFO_TOUT (1u << 8)
#define INT_ALL 0x1FFu
/* CONF1 fields: rxfifo_full_thrhd bits 0-6, rx_tout_thrhd bits 24-30,
 * rx_tout_en bit 31. */
#define CONF1_FULL_MASK 0x7Fu
#define CONF1_TOUT_SHIFT 24
#define CONF1_TOUT_MASK (0x7Fu << CONF1_TOUT_SHIFT)
#define CONF1_TOUT_EN (1u << 31)
/* UART0's interrupt number. */
#define ETS_UART0_INUM 5u

#endif
