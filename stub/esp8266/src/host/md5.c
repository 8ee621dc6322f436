/*
 * MD5 (RFC 1321) for the host build, standing in for the ESP8266 ROM's
 * MD5Init/MD5Update/MD5Final.
 */
#include <stdint.h>
#include <string.h>

#include "../stub.h"

struct md5 {
	uint32_t a[4];
	uint32_t nlo, nhi; /* message length in bytes */
	uint8_t buf[64];
};
_Static_assert(sizeof(struct md5) <= sizeof(plat_md5_ctx), "MD5 context");

/* Per-round shift amounts and the constants floor(abs(sin(i+1)) * 2^32). */
static const uint8_t shift[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
	5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
	6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
static const uint32_t konst[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
	0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
	0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
	0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
	0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
	0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static uint32_t rol(uint32_t x, uint32_t n)
{
	return x << n | x >> (32u - n);
}

static void block(struct md5 *m, const uint8_t *p)
{
	uint32_t w[16], a = m->a[0], b = m->a[1], c = m->a[2], d = m->a[3];
	for (int i = 0; i < 16; i++)
		w[i] = get_le32(p + 4 * i);
	for (uint32_t i = 0; i < 64; i++) {
		uint32_t f, g;
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) & 15;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) & 15;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) & 15;
		}
		uint32_t t = d;
		d = c;
		c = b;
		b = b + rol(a + f + konst[i] + w[g], shift[i]);
		a = t;
	}
	m->a[0] += a;
	m->a[1] += b;
	m->a[2] += c;
	m->a[3] += d;
}

void plat_md5_init(plat_md5_ctx *c)
{
	struct md5 *m = (struct md5 *)c;
	m->a[0] = 0x67452301;
	m->a[1] = 0xefcdab89;
	m->a[2] = 0x98badcfe;
	m->a[3] = 0x10325476;
	m->nlo = m->nhi = 0;
}

void plat_md5_update(plat_md5_ctx *c, const void *data, uint32_t n)
{
	struct md5 *m = (struct md5 *)c;
	const uint8_t *p = data;
	uint32_t used = m->nlo & 63u;
	if (m->nlo + n < m->nlo)
		m->nhi++;
	m->nlo += n;
	if (used > 0) {
		uint32_t k = 64 - used < n ? 64 - used : n;
		memcpy(m->buf + used, p, k);
		p += k;
		n -= k;
		if (used + k < 64)
			return;
		block(m, m->buf);
	}
	for (; n >= 64; n -= 64, p += 64)
		block(m, p);
	memcpy(m->buf, p, n);
}

void plat_md5_final(uint8_t out[16], plat_md5_ctx *c)
{
	struct md5 *m = (struct md5 *)c;
	uint8_t pad[72] = {0x80};
	uint32_t lo = m->nlo << 3, hi = m->nhi << 3 | m->nlo >> 29;
	uint32_t used = m->nlo & 63u;
	uint32_t padlen = (used < 56 ? 56 : 120) - used;
	uint8_t len[8];
	put_le32(len, lo);
	put_le32(len + 4, hi);
	plat_md5_update(c, pad, padlen);
	plat_md5_update(c, len, 8);
	for (int i = 0; i < 4; i++)
		put_le32(out + 4 * i, m->a[i]);
}
