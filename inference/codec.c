#include "inference/codec.h"
#include "common/rtci_error.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* The quantizer must match PyTorch bit for bit: never fuse a*b+c into one rounding. GCC keeps
 * products and sums separate in ISO C mode (-std=c17 implies -ffp-contract=off). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

/* Elements per quantize/pack step: a multiple of 8 so every step starts on a byte boundary of
 * the bit stream, small enough that the code scratch stays in L1. */
#define CHUNK 2048u
/* Inner loops run over fixed-size blocks so compilers vectorize them at -O2 as well. */
#define BLK 32u

/* The hot loops are compiled twice on x86-64, for AVX2 and for the baseline, and the loader picks
 * one (ifunc). Both give the same bits: the same IEEE single-precision operations, no FMA. */
#if defined(__x86_64__) && defined(__has_attribute) && !defined(RTCI_CODEC_NO_CLONES)
#if __has_attribute(target_clones)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT_CLONES
#define HOT_CLONES
#endif
#define KERNEL static inline __attribute__((always_inline))

struct rtci_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	uint32_t max_elements;
	uint8_t *packed; /* max_elements * 2 bytes: packed codes on the way to or from zstd */
	uint8_t *zbuf;   /* ZSTD_compressBound(max_elements * 2): zstd output when dst is tighter */
	bool packed_only;
	uint8_t codes8[RTCI_CODEC_BYTES_MAX_CODES];                      /* one code per byte */
	uint8_t alt[ZSTD_COMPRESSBOUND(RTCI_CODEC_BYTES_MAX_CODES)];     /* their zstd frame */
	float side[2 * RTCI_CODEC_MAX_CHANNELS];
};

/* ---- little-endian fields ---- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}
static float getf(const uint8_t *p)
{
	uint32_t u = get32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}
static void putf(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	put32(p, u);
}

/* ---- sizes ---- */

int rtci_codec_bits(uint32_t levels)
{
	switch (levels) {
	case 65535: return 16;
	case 255: return 8;
	case 15: return 4;
	case 3: return 2;
	case 1: return 1;
	default: return -RTCI_ERR_CODEC_LEVELS;
	}
}

static int shape_check(uint32_t c, uint32_t height, uint32_t width)
{
	if (c == 0 || c > RTCI_CODEC_MAX_CHANNELS || height == 0 || height > RTCI_CODEC_MAX_DIM ||
	    width == 0 || width > RTCI_CODEC_MAX_DIM)
		return -RTCI_ERR_CODEC_SHAPE;
	if ((uint64_t)c * height * width > RTCI_CODEC_MAX_ELEMENTS)
		return -RTCI_ERR_CODEC_TOO_LARGE;
	return 0;
}

ssize_t rtci_codec_packed_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width)
{
	int bits = rtci_codec_bits(levels);
	if (bits < 0)
		return bits;
	int ret = shape_check(c, height, width);
	if (ret < 0)
		return ret;
	return (ssize_t)(((uint64_t)c * height * width * (uint64_t)bits + 7) / 8);
}

ssize_t rtci_codec_raw_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width)
{
	ssize_t n = rtci_codec_packed_size(c, levels, height, width);
	return n < 0 ? n : n + (ssize_t)c * RTCI_CODEC_SIDE_INFO_PER_CHANNEL;
}

ssize_t rtci_codec_max_encoded_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width)
{
	ssize_t n = rtci_codec_raw_size(c, levels, height, width);
	return n < 0 ? n : n + RTCI_CODEC_HEADER_SIZE;
}

int rtci_codec_desc_check(const struct rtci_codec_desc *d)
{
	if (rtci_codec_bits(d->levels) < 0)
		return -RTCI_ERR_CODEC_LEVELS;
	if (d->channels < d->c || d->channels > RTCI_CODEC_MAX_CHANNELS)
		return -RTCI_ERR_CODEC_SHAPE;
	return shape_check(d->c, d->height, d->width);
}

/* ---- quantizer kernels ---- */

/* Min and max of n finite floats; -RTCI_ERR_CODEC_NONFINITE when one is NaN or infinite. Eight
 * independent lanes so the loop vectorizes (sixteen measured slower); the largest magnitude bit pattern catches what the
 * comparisons skip (NaN, infinity). */
#define SCAN_LANES 8

KERNEL int scan_channel(const float *restrict x, size_t n, float *mn_out, float *mx_out)
{
	float lo[SCAN_LANES], hi[SCAN_LANES];
	uint32_t mag[SCAN_LANES];
	size_t i = 0;

	for (int k = 0; k < SCAN_LANES; k++) {
		lo[k] = hi[k] = x[0];
		mag[k] = 0;
	}
	for (; i + SCAN_LANES <= n; i += SCAN_LANES) {
		for (int k = 0; k < SCAN_LANES; k++) {
			float v = x[i + k];
			uint32_t u;
			memcpy(&u, &v, sizeof(u));
			u &= 0x7fffffffu;
			mag[k] = u > mag[k] ? u : mag[k];
			lo[k] = v < lo[k] ? v : lo[k];
			hi[k] = v > hi[k] ? v : hi[k];
		}
	}
	for (; i < n; i++) {
		float v = x[i];
		uint32_t u;
		memcpy(&u, &v, sizeof(u));
		u &= 0x7fffffffu;
		mag[0] = u > mag[0] ? u : mag[0];
		lo[0] = v < lo[0] ? v : lo[0];
		hi[0] = v > hi[0] ? v : hi[0];
	}
	float mn = lo[0], mx = hi[0];
	uint32_t m = mag[0];
	for (int k = 1; k < SCAN_LANES; k++) {
		mn = lo[k] < mn ? lo[k] : mn;
		mx = hi[k] > mx ? hi[k] : mx;
		m = mag[k] > m ? mag[k] : m;
	}
	if (m >= 0x7f800000u)
		return -RTCI_ERR_CODEC_NONFINITE;
	if (!isfinite(mx - mn))
		return -RTCI_ERR_CODEC_RANGE;
	*mn_out = mn;
	*mx_out = mx;
	return 0;
}

/* q = floorf((x - mn) / range * L + 0.5f) clamped to [0, L]. x lies in [mn, mn + range], so
 * t + 0.5f >= 0.5 and truncation toward zero equals floorf; the clamp only guards rounding. */
KERNEL uint32_t quant1(float x, float mn, float range, float lf, uint32_t L)
{
	float t = (x - mn) / range * lf;
	uint32_t q = (uint32_t)(int32_t)(t + 0.5f);
	return q > L ? L : q;
}

KERNEL void quant_u8(const float *restrict x, size_t n, float mn, float range, uint32_t L,
		     uint8_t *restrict q)
{
	size_t i = 0;
	if (range == 0.0f) {
		memset(q, 0, n);
		return;
	}
	float lf = (float)L;
	for (; i + BLK <= n; i += BLK)
		for (size_t k = 0; k < BLK; k++)
			q[i + k] = (uint8_t)quant1(x[i + k], mn, range, lf, L);
	for (; i < n; i++)
		q[i] = (uint8_t)quant1(x[i], mn, range, lf, L);
}

/* 16-bit codes straight into the little-endian bit stream. */
KERNEL void quant_u16(const float *restrict x, size_t n, float mn, float range, uint8_t *restrict out)
{
	uint16_t tmp[BLK];
	size_t i = 0;
	if (range == 0.0f) {
		memset(out, 0, 2 * n);
		return;
	}
	float lf = 65535.0f;
	for (; i + BLK <= n; i += BLK) {
		for (size_t k = 0; k < BLK; k++) {
			uint16_t v = (uint16_t)quant1(x[i + k], mn, range, lf, 65535u);
			tmp[k] = HOST_BIG_ENDIAN ? (uint16_t)(v << 8 | v >> 8) : v;
		}
		memcpy(out + 2 * i, tmp, sizeof(tmp));
	}
	for (; i < n; i++)
		put16(out + 2 * i, quant1(x[i], mn, range, lf, 65535u));
}

KERNEL void dequant_u8(const uint8_t *restrict q, size_t n, float mn, float step, float *restrict y)
{
	size_t i = 0;
	for (; i + BLK <= n; i += BLK)
		for (size_t k = 0; k < BLK; k++)
			y[i + k] = mn + (float)q[i + k] * step;
	for (; i < n; i++)
		y[i] = mn + (float)q[i] * step;
}

KERNEL void dequant_u16(const uint8_t *restrict in, size_t n, float mn, float step, float *restrict y)
{
	size_t i = 0;
	for (; i + BLK <= n; i += BLK)
		for (size_t k = 0; k < BLK; k++) {
			uint16_t v;
			memcpy(&v, in + 2 * (i + k), 2);
			if (HOST_BIG_ENDIAN)
				v = (uint16_t)(v << 8 | v >> 8);
			y[i + k] = mn + (float)v * step;
		}
	for (; i < n; i++)
		y[i] = mn + (float)get16(in + 2 * i) * step;
}

/* Thresholds: q(x) is a composition of monotone float operations, so it is a non-decreasing
 * step function of x, and q(x) = #{ j in 1..L : x >= X_j } where X_j is the smallest float with
 * q(X_j) >= j. Bisection over the ordered float bit patterns in [min, max] evaluates the exact
 * formula to find each X_j; the codes are then bit-identical to the formula's for every x in the
 * channel, at the price of a few dozen divisions per channel instead of one per element. Used
 * for L = 1 (one comparison per element); for L = 3 three comparisons measured slower than the
 * division. */
#define THR_MIN_PLANE 2048u /* below this the bisection costs more than it saves */

static int64_t float_key(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

static float key_float(int64_t k)
{
	uint32_t u = k < 0 ? 0x80000000u | (uint32_t)(-k) : (uint32_t)k;
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static void thresholds(float mn, float mx, uint32_t L, float *thr)
{
	float range = mx - mn, lf = (float)L, step = range / lf;
	int64_t kmn = float_key(mn), kmx = float_key(mx);
	for (uint32_t j = 1; j <= L; j++) {
		/* Bracket [lo, hi] with q(lo) < j <= q(hi) around the real-number threshold, widening
		 * by doubling steps (q(mn) = 0 < j and q(mx) = L >= j bound the search), then bisect. */
		int64_t guess = float_key(mn + ((float)j - 0.5f) * step), lo, hi = guess, w = 1;
		if (hi < kmn)
			hi = kmn;
		if (hi > kmx)
			hi = kmx;
		while (quant1(key_float(hi), mn, range, lf, L) < j) {
			hi = hi + w < kmx ? hi + w : kmx;
			w *= 2;
		}
		lo = hi;
		w = 1;
		while (lo > kmn && quant1(key_float(lo), mn, range, lf, L) >= j) {
			lo = lo - w > kmn ? lo - w : kmn;
			w *= 2;
		}
		/* Now q(lo) < j <= q(hi) (q(mn) = 0 < j; q(mx) = L >= j ends the first loop). */
		while (hi - lo > 1) {
			int64_t mid = lo + (hi - lo) / 2;
			if (quant1(key_float(mid), mn, range, lf, L) >= j)
				hi = mid;
			else
				lo = mid;
		}
		thr[j - 1] = key_float(hi);
	}
}

KERNEL void quant_thr1(const float *restrict x, size_t n, float t, uint8_t *restrict q)
{
	size_t i = 0;
	for (; i + BLK <= n; i += BLK)
		for (size_t k = 0; k < BLK; k++)
			q[i + k] = x[i + k] >= t;
	for (; i < n; i++)
		q[i] = x[i] >= t;
}

/* ---- bit packing: codes of `bits` < 8 bits, LSB first ----
 *
 * One loop per width, working on "words" of eight codes. Each form was picked by measurement
 * (bench/codec); fixed-size inner blocks let GCC vectorize at -O2 too. */

#define PBLK 16u /* words per block */

KERNEL uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return HOST_BIG_ENDIAN ? __builtin_bswap64(v) : v;
}

/* Eight 2-bit codes (one per byte) into 16 bits: each shift-or-mask step halves the distance
 * between groups. */
KERNEL uint64_t gather2(uint64_t x)
{
	x = (x | x >> 6) & 0x000f000f000f000full;
	x = (x | x >> 12) & 0x000000ff000000ffull;
	return (x | x >> 24) & 0xffffull;
}

KERNEL void pack2(const uint8_t *restrict q, size_t words, uint8_t *restrict out)
{
	size_t w = 0;
	for (; w + PBLK <= words; w += PBLK) {
		uint64_t v[PBLK];
		uint8_t o[2 * PBLK];
		memcpy(v, q + 8 * w, sizeof(v));
		for (size_t k = 0; k < PBLK; k++) {
			uint64_t g = gather2(HOST_BIG_ENDIAN ? __builtin_bswap64(v[k]) : v[k]);
			o[2 * k] = (uint8_t)g;
			o[2 * k + 1] = (uint8_t)(g >> 8);
		}
		memcpy(out + 2 * w, o, sizeof(o));
	}
	for (; w < words; w++) {
		uint64_t g = gather2(load64(q + 8 * w));
		out[2 * w] = (uint8_t)g;
		out[2 * w + 1] = (uint8_t)(g >> 8);
	}
}

/* 4 bits: two codes per byte, a strided loop compilers vectorize directly. */
KERNEL void pack4(const uint8_t *restrict q, size_t words, uint8_t *restrict out)
{
	size_t w = 0;
	for (; w + PBLK <= words; w += PBLK)
		for (size_t k = 0; k < 4 * PBLK; k++)
			out[4 * w + k] = (uint8_t)(q[8 * w + 2 * k] | q[8 * w + 2 * k + 1] << 4);
	for (size_t k = 4 * w; k < 4 * words; k++)
		out[k] = (uint8_t)(q[2 * k] | q[2 * k + 1] << 4);
}

KERNEL void unpack4(const uint8_t *restrict in, size_t words, uint8_t *restrict q)
{
	size_t w = 0;
	for (; w + PBLK <= words; w += PBLK)
		for (size_t k = 0; k < 4 * PBLK; k++) {
			q[8 * w + 2 * k] = in[4 * w + k] & 15;
			q[8 * w + 2 * k + 1] = in[4 * w + k] >> 4;
		}
	for (size_t k = 4 * w; k < 4 * words; k++) {
		q[2 * k] = in[k] & 15;
		q[2 * k + 1] = in[k] >> 4;
	}
}

/* 1 bit: eight 0/1 bytes into one byte by shift-or-mask steps, over fixed-size blocks. */
KERNEL uint64_t gather1(uint64_t x)
{
	x = (x | x >> 7) & 0x0003000300030003ull;
	x = (x | x >> 14) & 0x0000000f0000000full;
	return (x | x >> 28) & 0xffull;
}

KERNEL void pack1(const uint8_t *restrict q, size_t words, uint8_t *restrict out)
{
	size_t w = 0;
	for (; w + PBLK <= words; w += PBLK) {
		uint64_t v[PBLK];
		memcpy(v, q + 8 * w, sizeof(v));
		for (size_t k = 0; k < PBLK; k++)
			out[w + k] = (uint8_t)gather1(HOST_BIG_ENDIAN ? __builtin_bswap64(v[k]) : v[k]);
	}
	for (; w < words; w++)
		out[w] = (uint8_t)gather1(load64(q + 8 * w));
}

/* Unpacking 2- and 1-bit codes: one table row per byte value (1 KiB and 2 KiB, in L1), one load
 * and one store per 4 or 8 codes; measured faster than shift or multiply forms. */
#define U2(b) { (b) & 3, (b) >> 2 & 3, (b) >> 4 & 3, (b) >> 6 & 3 }
#define U1(b) { (b) & 1, (b) >> 1 & 1, (b) >> 2 & 1, (b) >> 3 & 1, (b) >> 4 & 1, (b) >> 5 & 1, (b) >> 6 & 1, (b) >> 7 & 1 }
#define R4(U, b) U(b), U((b) + 1), U((b) + 2), U((b) + 3)
#define R16(U, b) R4(U, b), R4(U, (b) + 4), R4(U, (b) + 8), R4(U, (b) + 12)
#define R64(U, b) R16(U, b), R16(U, (b) + 16), R16(U, (b) + 32), R16(U, (b) + 48)
#define R256(U) R64(U, 0), R64(U, 64), R64(U, 128), R64(U, 192)
static const uint8_t spread2[256][4] = { R256(U2) };
static const uint8_t spread1[256][8] = { R256(U1) };

KERNEL void unpack1(const uint8_t *restrict in, size_t words, uint8_t *restrict q)
{
	for (size_t w = 0; w < words; w++)
		memcpy(q + 8 * w, spread1[in[w]], 8);
}

KERNEL void unpack2(const uint8_t *restrict in, size_t words, uint8_t *restrict q)
{
	for (size_t b = 0; b < 2 * words; b++)
		memcpy(q + 4 * b, spread2[in[b]], 4);
}

KERNEL void pack_bits(const uint8_t *restrict q, size_t n, int bits, uint8_t *restrict out)
{
	size_t words = n / 8, i = words * 8, o = words * (size_t)bits;

	switch (bits) {
	case 4: pack4(q, words, out); break;
	case 2: pack2(q, words, out); break;
	default: pack1(q, words, out); break;
	}
	/* Tail of fewer than eight codes, bit by bit. */
	if (i < n) {
		size_t bitpos = 0;
		memset(out + o, 0, ((n - i) * (size_t)bits + 7) / 8);
		for (; i < n; i++, bitpos += (size_t)bits)
			out[o + bitpos / 8] |= (uint8_t)(q[i] << (bitpos % 8));
	}
}

KERNEL void unpack_bits(const uint8_t *restrict in, size_t n, int bits, uint8_t *restrict q)
{
	size_t words = n / 8, i = words * 8, o = words * (size_t)bits;

	switch (bits) {
	case 4: unpack4(in, words, q); break;
	case 2: unpack2(in, words, q); break;
	default: unpack1(in, words, q); break;
	}
	for (size_t bitpos = 0; i < n; i++, bitpos += (size_t)bits)
		q[i] = (uint8_t)((in[o + bitpos / 8] >> (bitpos % 8)) & ((1u << bits) - 1));
}

/* ---- the codec's own work ---- */

HOT_CLONES static int quantize_pack(const struct rtci_codec_desc *d, const float *x, float *side,
				       uint8_t *packed)
{
	int ret, bits = rtci_codec_bits(d->levels);
	size_t plane = (size_t)d->height * d->width;
	size_t n = (size_t)d->c * plane;

	for (uint32_t k = 0; k < d->c; k++) {
		ret = scan_channel(x + k * plane, plane, &side[2 * k], &side[2 * k + 1]);
		if (ret < 0)
			return ret;
	}

	if (bits == 16 || bits == 8) {
		/* Byte-aligned codes go straight to the stream, channel by channel. */
		for (uint32_t k = 0; k < d->c; k++) {
			float mn = side[2 * k], range = side[2 * k + 1] - side[2 * k];
			if (bits == 16)
				quant_u16(x + k * plane, plane, mn, range, packed + 2 * k * plane);
			else
				quant_u8(x + k * plane, plane, mn, range, d->levels, packed + k * plane);
		}
		return 0;
	}

	/* Narrow codes: quantize one chunk (it may span channels) into L1 scratch, then pack it.
	 * For L = 1 on large planes, a comparison against the exact threshold replaces the division
	 * (see thresholds()). */
	uint8_t codes[CHUNK];
	float thr = 0.0f;
	size_t thr_k = SIZE_MAX;
	bool use_thr = d->levels == 1 && plane >= THR_MIN_PLANE;
	for (size_t base = 0; base < n; base += CHUNK) {
		size_t end = n - base < CHUNK ? n : base + CHUNK;
		for (size_t e = base; e < end;) {
			size_t k = e / plane;
			size_t seg_end = (k + 1) * plane < end ? (k + 1) * plane : end;
			float mn = side[2 * k], range = side[2 * k + 1] - side[2 * k];
			if (use_thr && k != thr_k && range != 0.0f) {
				thresholds(mn, side[2 * k + 1], 1, &thr);
				thr_k = k;
			}
			if (use_thr && range != 0.0f)
				quant_thr1(x + e, seg_end - e, thr, codes + (e - base));
			else
				quant_u8(x + e, seg_end - e, mn, range, d->levels, codes + (e - base));
			e = seg_end;
		}
		pack_bits(codes, end - base, bits, packed + base * (size_t)bits / 8);
	}
	return 0;
}

int rtci_codec_quantize_pack(const struct rtci_codec_desc *d, const float *x, float *side,
			     uint8_t *packed)
{
	int ret = rtci_codec_desc_check(d);
	return ret < 0 ? ret : quantize_pack(d, x, side, packed);
}

static void zero_tail(const struct rtci_codec_desc *d, float *dst, uint32_t out_channels)
{
	size_t plane = (size_t)d->height * d->width;
	if (out_channels > d->c)
		memset(dst + (size_t)d->c * plane, 0, (size_t)(out_channels - d->c) * plane * sizeof(float));
}

HOT_CLONES static int unpack_dequantize(const struct rtci_codec_desc *d, const float *side,
					   const uint8_t *packed, float *dst, uint32_t out_channels)
{
	int bits = rtci_codec_bits(d->levels);
	size_t plane = (size_t)d->height * d->width;
	size_t n = (size_t)d->c * plane;
	float lf = (float)d->levels;

	/* Unused high bits of the last byte must be zero: one canonical encoding per tensor. */
	size_t used = (n * (size_t)bits) % 8;
	if (used && (packed[(n * (size_t)bits) / 8] >> used) != 0)
		return -RTCI_ERR_CODEC_PADDING;

	if (bits == 16 || bits == 8) {
		for (uint32_t k = 0; k < d->c; k++) {
			float mn = side[2 * k], step = (side[2 * k + 1] - side[2 * k]) / lf;
			if (bits == 16)
				dequant_u16(packed + 2 * k * plane, plane, mn, step, dst + k * plane);
			else
				dequant_u8(packed + k * plane, plane, mn, step, dst + k * plane);
		}
	} else {
		uint8_t codes[CHUNK];
		for (size_t base = 0; base < n; base += CHUNK) {
			size_t end = n - base < CHUNK ? n : base + CHUNK;
			unpack_bits(packed + base * (size_t)bits / 8, end - base, bits, codes);
			for (size_t e = base; e < end;) {
				size_t k = e / plane;
				size_t seg_end = (k + 1) * plane < end ? (k + 1) * plane : end;
				float mn = side[2 * k], step = (side[2 * k + 1] - side[2 * k]) / lf;
				dequant_u8(codes + (e - base), seg_end - e, mn, step, dst + e);
				e = seg_end;
			}
		}
	}
	zero_tail(d, dst, out_channels);
	return 0;
}

/* Codes one per byte (RTCI_CODEC_F_BYTES payloads): each must be <= L. */
static int bytes_dequantize(const struct rtci_codec_desc *d, const float *side, const uint8_t *codes,
			    float *dst, uint32_t out_channels)
{
	size_t plane = (size_t)d->height * d->width, n = (size_t)d->c * plane;
	uint8_t top = 0;
	for (size_t i = 0; i < n; i++)
		top = codes[i] > top ? codes[i] : top;
	if (top > d->levels)
		return -RTCI_ERR_CODEC_CODE_RANGE;
	float lf = (float)d->levels;
	for (uint32_t k = 0; k < d->c; k++) {
		float mn = side[2 * k], step = (side[2 * k + 1] - side[2 * k]) / lf;
		dequant_u8(codes + k * plane, plane, mn, step, dst + k * plane);
	}
	zero_tail(d, dst, out_channels);
	return 0;
}

int rtci_codec_unpack_dequantize(const struct rtci_codec_desc *d, const float *side,
				 const uint8_t *packed, float *dst, uint32_t out_channels)
{
	int ret = rtci_codec_desc_check(d);
	if (ret < 0)
		return ret;
	if (out_channels == 0)
		out_channels = d->c;
	if (out_channels < d->c)
		return -EINVAL;
	return unpack_dequantize(d, side, packed, dst, out_channels);
}

int rtci_codec_quantize_ref(float *x, size_t channels, size_t plane, uint32_t levels)
{
	if (rtci_codec_bits(levels) < 0)
		return -RTCI_ERR_CODEC_LEVELS;
	if (!x || plane == 0)
		return -EINVAL;
	/* Check every channel first so x stays untouched on error. */
	for (size_t k = 0; k < channels; k++) {
		float mn, mx;
		int ret = scan_channel(x + k * plane, plane, &mn, &mx);
		if (ret < 0)
			return ret;
	}
	float lf = (float)levels;
	for (size_t k = 0; k < channels; k++) {
		float *c = x + k * plane, mn = 0.0f, mx = 0.0f;
		scan_channel(c, plane, &mn, &mx);
		float range = mx - mn, step = range / lf;
		for (size_t i = 0; i < plane; i++) {
			uint32_t q = range == 0.0f ? 0 : quant1(c[i], mn, range, lf, levels);
			c[i] = mn + (float)q * step;
		}
	}
	return 0;
}

/* ---- context ---- */

int rtci_codec_create(const struct rtci_codec_config *cfg, struct rtci_codec **out)
{
	struct rtci_codec_config def = { 0 };
	if (!cfg)
		cfg = &def;
	*out = NULL;
	int level = cfg->level ? cfg->level : RTCI_CODEC_DEFAULT_LEVEL;
	uint32_t max_el = cfg->max_elements ? cfg->max_elements : RTCI_CODEC_DEFAULT_MAX_ELEMENTS;
	if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() || max_el > RTCI_CODEC_MAX_ELEMENTS)
		return -EINVAL;

	struct rtci_codec *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max_elements = max_el;
	c->packed_only = cfg->packed_only;
	size_t packed_cap = (size_t)max_el * 2;
	c->packed = malloc(packed_cap);
	c->zbuf = malloc(ZSTD_compressBound(packed_cap));
	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	if (!c->packed || !c->zbuf || !c->cctx || !c->dctx)
		goto nomem;

	/* Frames never need a window beyond the packed size; refuse any that claim more. */
	int wlog = 10;
	while (wlog < 31 && ((size_t)1 << wlog) < packed_cap)
		wlog++;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, cfg->checksum)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_windowLogMax, wlog))) {
		rtci_codec_destroy(c);
		return -EINVAL;
	}

	/* Run zstd once at full size so its workspaces are allocated now, not on the hot path. */
	memset(c->packed, 0, packed_cap);
	size_t z = ZSTD_compress2(c->cctx, c->zbuf, ZSTD_compressBound(packed_cap), c->packed, packed_cap);
	if (!ZSTD_isError(z))
		z = ZSTD_decompressDCtx(c->dctx, c->packed, packed_cap, c->zbuf, z);
	if (ZSTD_isError(z)) {
		rtci_codec_destroy(c);
		return -RTCI_ERR_CODEC_COMPRESS;
	}
	*out = c;
	return 0;
nomem:
	rtci_codec_destroy(c);
	return -ENOMEM;
}

void rtci_codec_destroy(struct rtci_codec *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c->packed);
	free(c->zbuf);
	free(c);
}

/* ---- frames ---- */

ssize_t rtci_codec_encode(struct rtci_codec *codec, const struct rtci_codec_desc *d, const float *x,
			  void *dst, size_t cap)
{
	int ret = rtci_codec_desc_check(d);
	if (ret < 0)
		return ret;
	if ((uint64_t)d->c * d->height * d->width > codec->max_elements)
		return -RTCI_ERR_CODEC_TOO_LARGE;
	size_t packed_len = (size_t)rtci_codec_packed_size(d->c, d->levels, d->height, d->width);
	size_t head = RTCI_CODEC_HEADER_SIZE + (size_t)d->c * RTCI_CODEC_SIDE_INFO_PER_CHANNEL;
	if (cap <= head)
		return -RTCI_ERR_CODEC_NOSPACE;

	ret = rtci_codec_quantize_pack(d, x, codec->side, codec->packed);
	if (ret < 0)
		return ret;

	uint8_t *p = dst;
	/* Compressed only when strictly smaller than the codes; otherwise store them. zstd gets a
	 * full compressBound of room (in dst when it has it, else in the context's buffer): with
	 * less it can fail on inputs whose final output would have fit. */
	size_t bound = ZSTD_compressBound(packed_len);
	bool direct = cap - head >= bound;
	uint8_t *zdst = direct ? p + head : codec->zbuf;
	size_t z = ZSTD_compress2(codec->cctx, zdst, bound, codec->packed, packed_len);
	if (ZSTD_isError(z))
		return -RTCI_ERR_CODEC_COMPRESS;
	uint8_t flags = 0;
	size_t payload;
	int bits = rtci_codec_bits(d->levels);
	size_t n = (size_t)d->c * d->height * d->width;
	size_t zb = SIZE_MAX;
	if (bits < 8 && n <= RTCI_CODEC_BYTES_MAX_CODES && !codec->packed_only) {
		/* Small frame of narrow codes: also try one code per byte, keep the smaller. */
		unpack_bits(codec->packed, n, bits, codec->codes8);
		zb = ZSTD_compress2(codec->cctx, codec->alt, sizeof(codec->alt), codec->codes8, n);
		if (ZSTD_isError(zb))
			return -RTCI_ERR_CODEC_COMPRESS;
	}
	if (zb < z && zb < packed_len) {
		if (cap - head < zb)
			return -RTCI_ERR_CODEC_NOSPACE;
		memcpy(p + head, codec->alt, zb);
		flags = RTCI_CODEC_F_BYTES;
		payload = zb;
	} else if (z >= packed_len) {
		if (cap - head < packed_len)
			return -RTCI_ERR_CODEC_NOSPACE;
		memcpy(p + head, codec->packed, packed_len);
		flags = RTCI_CODEC_F_STORED;
		payload = packed_len;
	} else {
		if (cap - head < z)
			return -RTCI_ERR_CODEC_NOSPACE;
		if (!direct)
			memcpy(p + head, zdst, z);
		payload = z;
	}

	memcpy(p, "RTCF", 4);
	p[4] = RTCI_CODEC_VERSION;
	p[5] = flags;
	p[6] = (uint8_t)bits;
	p[7] = 0;
	put16(p + 8, d->levels);
	put16(p + 10, d->c);
	put16(p + 12, d->channels);
	put16(p + 14, d->height);
	put16(p + 16, d->width);
	put16(p + 18, 0);
	put32(p + 20, (uint32_t)packed_len);
	put32(p + 24, (uint32_t)payload);
	for (uint32_t k = 0; k < 2 * d->c; k++)
		putf(p + RTCI_CODEC_HEADER_SIZE + 4 * k, codec->side[k]);
	return (ssize_t)(head + payload);
}

/* Header and lengths; on success *flags and *payload_len describe the payload. */
static int parse(const uint8_t *p, size_t len, struct rtci_codec_desc *d, uint8_t *flags,
		 uint32_t *payload_len)
{
	if (len < RTCI_CODEC_HEADER_SIZE)
		return -RTCI_ERR_CODEC_TRUNCATED;
	if (memcmp(p, "RTCF", 4) != 0)
		return -RTCI_ERR_CODEC_MAGIC;
	if (p[4] != RTCI_CODEC_VERSION)
		return -RTCI_ERR_CODEC_VERSION;
	d->levels = get16(p + 8);
	d->c = get16(p + 10);
	d->channels = get16(p + 12);
	d->height = get16(p + 14);
	d->width = get16(p + 16);
	*flags = p[5];
	int bits = rtci_codec_bits(d->levels);
	if ((*flags & ~(RTCI_CODEC_F_STORED | RTCI_CODEC_F_BYTES)) || p[7] || get16(p + 18) || bits < 0 ||
	    p[6] != bits)
		return -RTCI_ERR_CODEC_HEADER;
	if ((*flags & RTCI_CODEC_F_BYTES) && ((*flags & RTCI_CODEC_F_STORED) || bits >= 8))
		return -RTCI_ERR_CODEC_HEADER;
	int ret = rtci_codec_desc_check(d);
	if (ret == -RTCI_ERR_CODEC_TOO_LARGE)
		return ret;
	if (ret < 0)
		return -RTCI_ERR_CODEC_HEADER;
	uint32_t packed_len = get32(p + 20);
	*payload_len = get32(p + 24);
	if (packed_len != (uint64_t)rtci_codec_packed_size(d->c, d->levels, d->height, d->width))
		return -RTCI_ERR_CODEC_HEADER;
	if ((*flags & RTCI_CODEC_F_STORED) ? *payload_len != packed_len
					   : (*payload_len == 0 || *payload_len >= packed_len))
		return -RTCI_ERR_CODEC_HEADER;
	uint64_t total = RTCI_CODEC_HEADER_SIZE + (uint64_t)d->c * RTCI_CODEC_SIDE_INFO_PER_CHANNEL +
			 *payload_len;
	if (len < total)
		return -RTCI_ERR_CODEC_TRUNCATED;
	if (len > total)
		return -RTCI_ERR_CODEC_TRAILING;
	return 0;
}

int rtci_codec_parse(const void *src, size_t len, struct rtci_codec_desc *d)
{
	uint8_t flags;
	uint32_t payload_len;
	if (!src)
		return -EINVAL;
	return parse(src, len, d, &flags, &payload_len);
}

int rtci_codec_decode(struct rtci_codec *codec, const void *src, size_t len, float *dst,
		      size_t dst_floats, uint32_t out_channels, struct rtci_codec_desc *dout)
{
	const uint8_t *p = src;
	struct rtci_codec_desc d;
	uint8_t flags;
	uint32_t payload_len;

	if (!src || !dst)
		return -EINVAL;
	int ret = parse(p, len, &d, &flags, &payload_len);
	if (ret < 0)
		return ret;
	size_t plane = (size_t)d.height * d.width;
	size_t n = (size_t)d.c * plane;
	if (n > codec->max_elements)
		return -RTCI_ERR_CODEC_TOO_LARGE;
	if (out_channels == 0)
		out_channels = d.c;
	if (out_channels < d.c)
		return -EINVAL;
	if ((uint64_t)out_channels * plane > dst_floats)
		return -RTCI_ERR_CODEC_NOSPACE;

	for (uint32_t k = 0; k < d.c; k++) {
		float mn = getf(p + RTCI_CODEC_HEADER_SIZE + 8 * k);
		float mx = getf(p + RTCI_CODEC_HEADER_SIZE + 8 * k + 4);
		if (!isfinite(mn) || !isfinite(mx) || !(mn <= mx) || !isfinite(mx - mn))
			return -RTCI_ERR_CODEC_SIDE_INFO;
		codec->side[2 * k] = mn;
		codec->side[2 * k + 1] = mx;
	}

	size_t packed_len = get32(p + 20);
	size_t content_len = (flags & RTCI_CODEC_F_BYTES) ? n : packed_len;
	const uint8_t *payload = p + RTCI_CODEC_HEADER_SIZE + (size_t)d.c * RTCI_CODEC_SIDE_INFO_PER_CHANNEL;
	const uint8_t *codes = payload;
	if (!(flags & RTCI_CODEC_F_STORED)) {
		/* Bound the output before decompressing: exactly one frame that declares exactly the
		 * size the header implies, decompressed into a buffer of that size. */
		unsigned long long content = ZSTD_getFrameContentSize(payload, payload_len);
		if (content == ZSTD_CONTENTSIZE_ERROR)
			return -RTCI_ERR_CODEC_ZSTD;
		if (content == ZSTD_CONTENTSIZE_UNKNOWN || content != content_len)
			return -RTCI_ERR_CODEC_CONTENT_SIZE;
		size_t fsize = ZSTD_findFrameCompressedSize(payload, payload_len);
		if (ZSTD_isError(fsize) || fsize != payload_len)
			return -RTCI_ERR_CODEC_ZSTD;
		size_t z = ZSTD_decompressDCtx(codec->dctx, codec->packed, content_len, payload, payload_len);
		if (ZSTD_isError(z))
			return -RTCI_ERR_CODEC_ZSTD;
		if (z != content_len)
			return -RTCI_ERR_CODEC_CONTENT_SIZE;
		codes = codec->packed;
	}
	if (flags & RTCI_CODEC_F_BYTES)
		ret = bytes_dequantize(&d, codec->side, codes, dst, out_channels);
	else
		ret = rtci_codec_unpack_dequantize(&d, codec->side, codes, dst, out_channels);
	if (ret < 0)
		return ret;
	if (dout)
		*dout = d;
	return 0;
}
