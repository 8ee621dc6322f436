/*
 * Streaming zlib/deflate decoder, see inflate.h. Format facts: RFC 1950
 * (zlib header, Adler-32 trailer) and RFC 1951 (block types, Huffman code
 * construction, length and distance tables).
 */
#include "inflate.h"
#include "stub.h"

enum {
	S_ZHDR,    /* 2-byte zlib header */
	S_BLOCK,   /* 3-bit block header (+ stored lengths / dynamic codes) */
	S_STORED,  /* copying a stored block */
	S_CODES,   /* decoding a Huffman-coded block */
	S_TRAILER, /* 4-byte Adler-32 */
	S_DONE,
	S_FAILED
};

/* Step results. */
#define R_OK 0
#define R_SHORT (-1) /* ran out of input: roll back, wait for more */
#define R_BAD (-2)   /* malformed stream */
/* anything > 0 is a sink status code */

/* RFC 1951 3.2.5: base values and extra bits for length codes 257..285 and
 * distance codes 0..29. */
static const uint16_t len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
	193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
	6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
	6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
/* RFC 1951 3.2.7: order of the code length code lengths. */
static const uint8_t clen_order[19] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* ---- bit reader ------------------------------------------------------ */

/* Take n (<= 16) bits, least significant first. */
static int getbits(struct infl *s, uint32_t n, uint32_t *v)
{
	while (s->bitcnt < n) {
		if (s->srcpos >= s->srclen)
			return R_SHORT;
		s->bitbuf |= (uint32_t)s->src[s->srcpos++] << s->bitcnt;
		s->bitcnt += 8;
	}
	*v = s->bitbuf & ((1u << n) - 1u);
	s->bitbuf >>= n;
	s->bitcnt -= n;
	return R_OK;
}

/* Drop the bits up to the next byte boundary. */
static void align_byte(struct infl *s)
{
	uint32_t drop = s->bitcnt & 7u;
	s->bitbuf >>= drop;
	s->bitcnt -= drop;
}

/* Decode one symbol of a canonical Huffman code, one bit at a time: codes
 * of each length are consecutive integers starting at 'first'. */
static int decode(struct infl *s, const struct infl_huff *h, uint32_t *sym)
{
	int code = 0, first = 0, index = 0;
	for (int len = 1; len < 16; len++) {
		if (s->bitcnt == 0) {
			if (s->srcpos >= s->srclen)
				return R_SHORT;
			s->bitbuf = s->src[s->srcpos++];
			s->bitcnt = 8;
		}
		code |= (int)(s->bitbuf & 1u);
		s->bitbuf >>= 1;
		s->bitcnt--;
		int count = h->count[len];
		if (code - first < count) {
			*sym = h->sym[index + code - first];
			return R_OK;
		}
		index += count;
		first = (first + count) << 1;
		code <<= 1;
	}
	return R_BAD; /* no code of up to 15 bits matched */
}

/*
 * Build a decoding table from code lengths. Returns the number of unused
 * code points at the longest length: < 0 over-subscribed, 0 complete,
 * > 0 incomplete. *ncodes gets the number of symbols that have a code.
 */
static int build(struct infl_huff *h, const uint8_t *len, uint32_t n,
		 uint32_t *ncodes)
{
	uint16_t offs[16];
	for (int i = 0; i < 16; i++)
		h->count[i] = 0;
	for (uint32_t i = 0; i < n; i++)
		h->count[len[i]]++;
	*ncodes = n - h->count[0];
	int left = 1;
	for (int i = 1; i < 16; i++) {
		left <<= 1;
		left -= h->count[i];
		if (left < 0)
			return left;
	}
	offs[1] = 0;
	for (int i = 1; i < 15; i++)
		offs[i + 1] = (uint16_t)(offs[i] + h->count[i]);
	for (uint32_t i = 0; i < n; i++)
		if (len[i] != 0)
			h->sym[offs[len[i]]++] = (uint16_t)i;
	return left;
}

/* The literal/length and distance codes of a dynamic block must be
 * complete, except that a code with one symbol of length 1 is accepted and
 * a distance code may be empty (a block of literals only); zlib and Go's
 * compress/flate decode the same set. */
static int usable(int left, uint32_t ncodes, const struct infl_huff *h)
{
	if (left < 0)
		return 0;
	if (left == 0 || ncodes == 0)
		return 1;
	return ncodes == 1 && h->count[1] == 1;
}

/* ---- output ---------------------------------------------------------- */

static uint32_t adler_update(uint32_t adler, const uint8_t *p, uint32_t n)
{
	uint32_t a = adler & 0xFFFFu, b = adler >> 16;
	while (n > 0) {
		/* 5552 bytes keep b below 2^32 before the reduction (RFC 1950). */
		uint32_t k = n < 5552u ? n : 5552u;
		n -= k;
		while (k--) {
			a += *p++;
			b += a;
		}
		a %= 65521u;
		b %= 65521u;
	}
	return b << 16 | a;
}

static int flush(struct infl *s)
{
	uint32_t n = s->wpos - s->wflushed;
	if (n > 0) {
		const uint8_t *p = s->window + s->wflushed;
		s->adler = adler_update(s->adler, p, n);
		s->wflushed = s->wpos;
		int r = s->sink(s->sink_ctx, p, n);
		if (r != 0)
			return r;
	}
	if (s->wpos == INFL_WINDOW)
		s->wpos = s->wflushed = 0;
	return R_OK;
}

static int put(struct infl *s, uint8_t b)
{
	s->window[s->wpos++] = b;
	s->total_out++;
	if (s->wpos == INFL_WINDOW)
		return flush(s);
	return R_OK;
}

/* ---- steps ------------------------------------------------------------ */

static int step_zhdr(struct infl *s)
{
	uint32_t cmf, flg;
	if (getbits(s, 8, &cmf) || getbits(s, 8, &flg))
		return R_SHORT;
	/* CM 8 (deflate), window <= 32 KiB, check bits, no preset dictionary. */
	if ((cmf & 0x0Fu) != 8u || (cmf >> 4) > 7u ||
	    ((cmf << 8) | flg) % 31u != 0u || (flg & 0x20u) != 0u)
		return R_BAD;
	s->state = S_BLOCK;
	return R_OK;
}

static void fixed_tables(struct infl *s)
{
	uint32_t i, n;
	for (i = 0; i < 144; i++)
		s->lens[i] = 8;
	for (; i < 256; i++)
		s->lens[i] = 9;
	for (; i < 280; i++)
		s->lens[i] = 7;
	for (; i < 288; i++)
		s->lens[i] = 8;
	build(&s->lit, s->lens, 288, &n);
	for (i = 0; i < 30; i++)
		s->lens[i] = 5;
	build(&s->dist, s->lens, 30, &n);
}

static int dynamic_tables(struct infl *s)
{
	uint32_t hlit, hdist, hclen, v, n;
	if (getbits(s, 5, &hlit) || getbits(s, 5, &hdist) ||
	    getbits(s, 4, &hclen))
		return R_SHORT;
	hlit += 257;
	hdist += 1;
	hclen += 4;
	if (hlit > 286 || hdist > 30)
		return R_BAD;

	/* Code length code; s->dist is free until the end of the header. */
	uint8_t *lens = s->lens;
	for (uint32_t i = 0; i < 19; i++)
		lens[i] = 0;
	for (uint32_t i = 0; i < hclen; i++) {
		if (getbits(s, 3, &v))
			return R_SHORT;
		lens[clen_order[i]] = (uint8_t)v;
	}
	if (build(&s->dist, lens, 19, &n) != 0)
		return R_BAD; /* must be complete */

	uint32_t idx = 0, total = hlit + hdist;
	while (idx < total) {
		uint32_t sym, rep, val = 0;
		int r = decode(s, &s->dist, &sym);
		if (r)
			return r;
		if (sym < 16) {
			lens[idx++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (idx == 0)
				return R_BAD; /* nothing to repeat */
			val = lens[idx - 1];
			if (getbits(s, 2, &rep))
				return R_SHORT;
			rep += 3;
		} else if (sym == 17) {
			if (getbits(s, 3, &rep))
				return R_SHORT;
			rep += 3;
		} else {
			if (getbits(s, 7, &rep))
				return R_SHORT;
			rep += 11;
		}
		if (idx + rep > total)
			return R_BAD;
		while (rep--)
			lens[idx++] = (uint8_t)val;
	}
	if (lens[256] == 0)
		return R_BAD; /* no end-of-block code */
	int left = build(&s->lit, lens, hlit, &n);
	if (!usable(left, n, &s->lit) || n == 0)
		return R_BAD;
	left = build(&s->dist, lens + hlit, hdist, &n);
	if (!usable(left, n, &s->dist))
		return R_BAD;
	return R_OK;
}

static int step_block(struct infl *s)
{
	uint32_t last, type;
	if (getbits(s, 1, &last) || getbits(s, 2, &type))
		return R_SHORT;
	if (type == 0) {
		uint32_t len, nlen;
		align_byte(s);
		if (getbits(s, 16, &len) || getbits(s, 16, &nlen))
			return R_SHORT;
		if (len != (~nlen & 0xFFFFu))
			return R_BAD;
		s->stored_left = len;
		s->state = S_STORED;
		s->n_stored++;
	} else if (type == 1) {
		fixed_tables(s);
		s->state = S_CODES;
		s->n_fixed++;
	} else if (type == 2) {
		int r = dynamic_tables(s);
		if (r)
			return r;
		s->state = S_CODES;
		s->n_dynamic++;
	} else {
		return R_BAD; /* reserved block type */
	}
	s->last = (uint8_t)last;
	return R_OK;
}

static void end_block(struct infl *s)
{
	s->state = s->last ? S_TRAILER : S_BLOCK;
}

/* Stored blocks are not atomic: copy what is there. */
static int step_stored(struct infl *s)
{
	while (s->stored_left > 0) {
		if (s->bitcnt >= 8) { /* whole bytes already in the bit buffer */
			int r = put(s, (uint8_t)s->bitbuf);
			s->bitbuf >>= 8;
			s->bitcnt -= 8;
			s->stored_left--;
			if (r)
				return r;
			continue;
		}
		uint32_t avail = s->srclen - s->srcpos;
		if (avail == 0)
			return R_SHORT;
		uint32_t n = s->stored_left;
		if (n > avail)
			n = avail;
		if (n > INFL_WINDOW - s->wpos)
			n = INFL_WINDOW - s->wpos;
		__builtin_memcpy(s->window + s->wpos, s->src + s->srcpos, n);
		s->srcpos += n;
		s->wpos += n;
		s->total_out += n;
		s->stored_left -= n;
		if (s->wpos == INFL_WINDOW) {
			int r = flush(s);
			if (r)
				return r;
		}
	}
	end_block(s);
	return R_OK;
}

/* One literal, end-of-block, or length/distance pair. */
static int step_symbol(struct infl *s)
{
	uint32_t sym, extra, dsym, len, dist;
	int r = decode(s, &s->lit, &sym);
	if (r)
		return r;
	if (sym < 256)
		return put(s, (uint8_t)sym);
	if (sym == 256) {
		end_block(s);
		return R_OK;
	}
	sym -= 257;
	if (sym >= 29)
		return R_BAD;
	if (getbits(s, len_extra[sym], &extra))
		return R_SHORT;
	len = len_base[sym] + extra;
	r = decode(s, &s->dist, &dsym);
	if (r)
		return r;
	if (dsym >= 30)
		return R_BAD;
	if (getbits(s, dist_extra[dsym], &extra))
		return R_SHORT;
	dist = dist_base[dsym] + extra;
	if (dist > s->total_out || dist > INFL_WINDOW)
		return R_BAD; /* reaches before the start of the output */
	while (len--) {
		r = put(s, s->window[(s->wpos - dist) & (INFL_WINDOW - 1u)]);
		if (r)
			return r;
	}
	return R_OK;
}

static int step_trailer(struct infl *s)
{
	uint32_t b[4];
	align_byte(s);
	for (int i = 0; i < 4; i++)
		if (getbits(s, 8, &b[i]))
			return R_SHORT;
	int r = flush(s); /* the Adler-32 covers every byte decoded */
	if (r)
		return r;
	uint32_t want = b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
	if (want != s->adler)
		return R_BAD;
	s->state = S_DONE;
	return R_OK;
}

/* Run steps over s->src until it is used up or the stream ends. */
static int run(struct infl *s, int final)
{
	while (s->state != S_DONE) {
		uint32_t sv_buf = s->bitbuf, sv_cnt = s->bitcnt, sv_pos = s->srcpos;
		int r;
		switch (s->state) {
		case S_ZHDR:
			r = step_zhdr(s);
			break;
		case S_BLOCK:
			r = step_block(s);
			break;
		case S_STORED:
			r = step_stored(s);
			break;
		case S_CODES:
			r = step_symbol(s);
			break;
		default:
			r = step_trailer(s);
			break;
		}
		if (r == R_OK)
			continue;
		if (r == R_SHORT) {
			if (s->state != S_STORED) { /* roll the step back */
				s->bitbuf = sv_buf;
				s->bitcnt = sv_cnt;
				s->srcpos = sv_pos;
			}
			return final ? ST_INFLATE_ERROR : INFL_MORE;
		}
		return r == R_BAD ? ST_INFLATE_ERROR : r;
	}
	return INFL_DONE;
}

void infl_init(struct infl *s, infl_sink sink, void *ctx)
{
	s->bitbuf = s->bitcnt = 0;
	s->src = 0;
	s->srclen = s->srcpos = 0;
	s->state = S_ZHDR;
	s->last = 0;
	s->err = 0;
	s->stored_left = 0;
	s->wpos = s->wflushed = s->total_out = 0;
	s->adler = 1;
	s->sink = sink;
	s->sink_ctx = ctx;
	s->n_stored = s->n_fixed = s->n_dynamic = 0;
	s->carry_len = 0;
}

int infl_feed(struct infl *s, const uint8_t *in, uint32_t len, int final)
{
	int r = INFL_MORE;
	if (s->state == S_DONE)
		return INFL_DONE;
	if (s->state == S_FAILED)
		return s->err;

	/* First finish the step left over from the previous piece. */
	while (s->carry_len > 0) {
		uint32_t old = s->carry_len, take = INFL_CARRY - old;
		if (take > len)
			take = len;
		if (take > 0)
			__builtin_memcpy(s->carry + old, in, take);
		s->carry_len += take;
		in += take;
		len -= take;
		s->src = s->carry;
		s->srclen = s->carry_len;
		s->srcpos = 0;
		r = run(s, final && len == 0);
		if (r != INFL_MORE) {
			s->carry_len = 0;
			goto out;
		}
		if (s->srcpos >= old) {
			/* Unused bytes all came from 'in': read them from there. */
			uint32_t back = s->carry_len - s->srcpos;
			in -= back;
			len += back;
			s->carry_len = 0;
			break;
		}
		s->carry_len -= s->srcpos;
		__builtin_memmove(s->carry, s->carry + s->srcpos, s->carry_len);
		if (len == 0)
			goto out;
		if (s->carry_len == INFL_CARRY) {
			r = ST_INFLATE_ERROR; /* no step is this long */
			goto out;
		}
	}
	if (s->carry_len == 0 && (len > 0 || final)) {
		s->src = in;
		s->srclen = len;
		s->srcpos = 0;
		r = run(s, final);
		if (r == INFL_MORE) {
			uint32_t rest = len - s->srcpos;
			if (rest > INFL_CARRY) {
				r = ST_INFLATE_ERROR;
			} else if (rest > 0) {
				__builtin_memcpy(s->carry, in + s->srcpos, rest);
				s->carry_len = rest;
			}
		}
	}
out:
	s->src = 0;
	s->srclen = s->srcpos = 0;
	if (r == INFL_MORE || r == INFL_DONE) {
		int f = flush(s);
		if (f)
			r = f;
	}
	if (r != INFL_MORE && r != INFL_DONE) {
		s->state = S_FAILED;
		s->err = r;
	}
	return r;
}
