/*
 * Single-producer single-consumer byte ring (see rxring.h). head and tail
 * are indexes in [0, RX_RING); the ring is empty when they are equal, so
 * it holds at most RX_RING - 1 bytes. Index loads and stores go through
 * __atomic builtins with acquire/release order: on the chip (one core, the
 * producer is an interrupt) they compile to plain 32-bit loads and stores
 * the compiler may not reorder; on the host (the producer is a thread)
 * they also order the memory accesses between cores.
 */
#include "rxring.h"

static struct {
	uint32_t head; /* next byte the producer writes */
	uint32_t tail; /* next byte the consumer reads */
	uint32_t closed;
	uint32_t high_water, lost, fifo_overflows;
} rb;

static uint8_t ring[RX_RING] __attribute__((aligned(4)));

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
/* Statistics: either side may touch them; only their values matter. */
#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static uint32_t used(uint32_t head)
{
	uint32_t tail = LOAD(rb.tail);
	return head >= tail ? head - tail : RX_RING - tail + head;
}

uint32_t rx_room(void)
{
	return RX_RING - 1u - used(rb.head);
}

void rx_push(const uint8_t *p, uint32_t n)
{
	uint32_t head = rb.head; /* only the producer writes it */
	uint32_t fill = used(head);
	uint32_t room = RX_RING - 1u - fill;
	if (n > room) {
		SET(rb.lost, GET(rb.lost) + (n - room));
		n = room;
	}
	fill += n;
	while (n > 0) {
		uint32_t k = RX_RING - head;
		if (k > n)
			k = n;
		__builtin_memcpy(ring + head, p, k);
		p += k;
		n -= k;
		head += k;
		if (head == RX_RING)
			head = 0;
	}
	if (fill > GET(rb.high_water))
		SET(rb.high_water, fill);
	STORE(rb.head, head);
}

void rx_fifo_overflow(void)
{
	SET(rb.fifo_overflows, GET(rb.fifo_overflows) + 1u);
}

void rx_close(void)
{
	STORE(rb.closed, 1u);
}

int rx_closed(void)
{
	return LOAD(rb.closed) != 0;
}

uint32_t rx_peek(const uint8_t **p)
{
	uint32_t head = LOAD(rb.head);
	uint32_t tail = rb.tail; /* only the consumer writes it */
	*p = ring + tail;
	return head >= tail ? head - tail : RX_RING - tail;
}

void rx_consume(uint32_t n)
{
	uint32_t tail = rb.tail + n;
	if (tail >= RX_RING)
		tail -= RX_RING;
	STORE(rb.tail, tail);
}

void rx_stats(struct rx_stats *st, int reset)
{
	st->high_water = GET(rb.high_water);
	st->lost = GET(rb.lost);
	st->fifo_overflows = GET(rb.fifo_overflows);
	if (reset) {
		/* Racing with the producer only loses an update of a statistic. */
		SET(rb.high_water, 0u);
		SET(rb.lost, 0u);
		SET(rb.fifo_overflows, 0u);
	}
}
