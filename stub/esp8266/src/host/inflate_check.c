/*
 * inflate-check: runs the stub's inflater on a zlib stream, fed in pieces
 * the way FLASH_DEFL_DATA packets feed it, for the Go tests.
 *
 *   inflate-check [-c CHUNK] [-e] < stream.zlib > data
 *
 * -c CHUNK  piece size in bytes (default 16384, the stub's block size)
 * -e        mark no piece final; finish with an empty final piece, as
 *           FLASH_DEFL_END does when the client's block count is unknown
 *
 * stderr gets one line: "stored=S fixed=F dynamic=D in=I out=O status=X",
 * where X is "done" or the stub status code (0xC7 for a bad stream).
 * Exit status 0 when the stream decoded completely and its Adler-32
 * matched, 1 otherwise, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../inflate.h"
#include "../stub.h"

static int sink(void *ctx, const uint8_t *p, uint32_t n)
{
	(void)ctx;
	return fwrite(p, 1, n, stdout) == n ? 0 : ST_FAILED_SPI_OP;
}

static struct infl st;

int main(int argc, char **argv)
{
	size_t chunk = 16384;
	int end_separately = 0;
	int opt;
	while ((opt = getopt(argc, argv, "c:e")) != -1) {
		if (opt == 'c')
			chunk = strtoul(optarg, 0, 0);
		else if (opt == 'e')
			end_separately = 1;
		else
			return 2;
	}
	if (chunk == 0)
		return 2;

	size_t cap = 1 << 16, len = 0;
	uint8_t *in = malloc(cap);
	for (;;) {
		if (len == cap)
			in = realloc(in, cap *= 2);
		if (!in)
			return 2;
		size_t n = fread(in + len, 1, cap - len, stdin);
		if (n == 0)
			break;
		len += n;
	}

	infl_init(&st, sink, 0);
	int r = INFL_MORE;
	size_t off = 0;
	do {
		size_t n = len - off < chunk ? len - off : chunk;
		int final = !end_separately && off + n == len;
		r = infl_feed(&st, in + off, (uint32_t)n, final);
		off += n;
	} while (off < len && (r == INFL_MORE || r == INFL_DONE));
	if (end_separately && (r == INFL_MORE || r == INFL_DONE))
		r = infl_feed(&st, 0, 0, 1);
	fflush(stdout);

	char status[16];
	if (r == INFL_DONE)
		snprintf(status, sizeof status, "done");
	else
		snprintf(status, sizeof status, "0x%02X", r);
	fprintf(stderr, "stored=%u fixed=%u dynamic=%u in=%zu out=%u status=%s\n",
		st.n_stored, st.n_fixed, st.n_dynamic, len, st.total_out, status);
	free(in);
	return r == INFL_DONE ? 0 : 1;
}
