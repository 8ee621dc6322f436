/*
 * Streaming zlib (RFC 1950) / deflate (RFC 1951) decoder for the stub.
 *
 * Input arrives in pieces of any size (one FLASH_DEFL_DATA packet at a
 * time); a piece may end anywhere, even inside a Huffman code or a dynamic
 * block header. The decoder works in atomic steps (the zlib header, a block
 * header including a whole dynamic code description, one literal or one
 * length/distance pair, the Adler-32 trailer); a step that runs out of input
 * is rolled back and its bytes are kept in a small carry buffer until the next
 * piece arrives. Stored blocks are copied as far as the input goes.
 *
 * Output goes through a 32 KiB window (the largest distance deflate allows)
 * and is handed to a sink whenever the window fills and at the end of every
 * piece. The Adler-32 of the output is checked against the trailer.
 */
#ifndef TF_INFLATE_H
#define TF_INFLATE_H

#include <stdint.h>

#define INFL_WINDOW 32768u
/* Longest atomic step: a dynamic block header is at most
 * 14 + 19*3 + 316*7 bits (~290 bytes); 512 leaves room. */
#define INFL_CARRY 512u

/* Results of infl_feed (errors are stub status codes, >= 0xC0). */
#define INFL_MORE 0 /* consumed everything, wants more input */
#define INFL_DONE 1 /* stream complete and Adler-32 verified */

/* Receives decoded bytes; returns 0 or a stub status code, which aborts
 * decoding and is returned by infl_feed. */
typedef int (*infl_sink)(void *ctx, const uint8_t *p, uint32_t n);

struct infl_huff {
	uint16_t count[16]; /* number of codes of each length */
	uint16_t sym[288];  /* symbols ordered by code */
};

struct infl {
	/* bit reader */
	uint32_t bitbuf, bitcnt;
	const uint8_t *src;
	uint32_t srclen, srcpos;
	/* decoder */
	uint8_t state, last;
	int err;
	uint32_t stored_left;
	struct infl_huff lit, dist;
	uint8_t lens[320];
	/* output */
	uint32_t wpos, wflushed, total_out;
	uint32_t adler;
	infl_sink sink;
	void *sink_ctx;
	/* statistics: blocks seen by type (for tests and diagnostics) */
	uint32_t n_stored, n_fixed, n_dynamic;
	uint32_t carry_len;
	uint8_t carry[INFL_CARRY];
	uint8_t window[INFL_WINDOW] __attribute__((aligned(4)));
};

void infl_init(struct infl *s, infl_sink sink, void *ctx);
/* Decode the next piece. final != 0 says no more input follows: a stream
 * that is not complete by then is an error. Returns INFL_MORE, INFL_DONE or
 * a stub status code (ST_INFLATE_ERROR for a bad stream, or the sink's
 * error). Errors are sticky. Bytes after the end of the stream are ignored. */
int infl_feed(struct infl *s, const uint8_t *in, uint32_t len, int final);

#endif
