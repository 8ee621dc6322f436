/*
 * The receive ring: every byte UART0 receives goes here, put by the UART
 * interrupt (target.c) or by the host build's reader thread (host/host.c),
 * and the protocol core takes it out when it decodes the next frame. The
 * stub therefore keeps receiving while it inflates, erases and programs a
 * block, so a client may send the next block before the previous one is
 * answered (README, "Pipelined writes").
 *
 * One producer (the interrupt) and one consumer (the core): the producer
 * only moves head, the consumer only moves tail; no lock is needed. A byte
 * that finds the ring full is dropped and counted (the client broke the
 * window the stub announced, or the link delivered more than it sent).
 */
#ifndef TF_RXRING_H
#define TF_RXRING_H

#include <stdint.h>

/* Ring size in bytes. One 16 KiB block frame as it travels on the wire
 * (header, escapes, delimiters) fits with room to spare. */
#define RX_RING 20480u
/* What the stub announces as the client's window (STUB_INFO): the ring less
 * the bytes that may arrive while the core decodes the frame after the
 * one it answered last (it decodes far faster than any baud rate delivers,
 * see README). */
#define RX_MARGIN 2048u
#define RX_WINDOW (RX_RING - RX_MARGIN)

/* ---- producer side (interrupt / reader thread) ---- */

/* Store n received bytes; those that do not fit are dropped and counted. */
void rx_push(const uint8_t *p, uint32_t n);
/* How many bytes rx_push would take now. */
uint32_t rx_room(void);
/* The UART's own FIFO overflowed before the interrupt emptied it. */
void rx_fifo_overflow(void);
/* The link is gone for good (host build: EOF). */
void rx_close(void);

/* ---- consumer side (protocol core) ---- */

/* Contiguous received bytes: *p and the count (0: none). */
uint32_t rx_peek(const uint8_t **p);
/* Release n bytes returned by rx_peek. */
void rx_consume(uint32_t n);
/* Whether rx_close was called (bytes may still be waiting). */
int rx_closed(void);

/* Statistics since the last rx_stats call with reset set: the fullest the
 * ring has been, bytes dropped because it was full, and UART FIFO
 * overflows. */
struct rx_stats {
	uint32_t high_water, lost, fifo_overflows;
};
void rx_stats(struct rx_stats *st, int reset);

#endif
