/* rtci-bench-codec: feature codec throughput and size for every setup, on realistic partition
 * tensors, against a baseline measured in the same run.
 *
 * Inputs: Fashion-MNIST test images (read with the shared IDX loader, which gunzips in-process
 * with zlib: no helper process, no shell, the same code path the demo uses), normalized with the
 * model-format constants, through a fixed random 3x3 stride-2 filter bank of 32 filters (He-scaled,
 * seed 1) and ReLU6: the partition tensor of a real image before the stem's BatchNorm is trained.
 *   fmnist:   28x28x1 -> 32x14x14.
 *   mnv2-224: each image upscaled bilinearly (half-pixel centres, like PyTorch's
 *             align_corners=False) to 224x224, the gray value copied to R, G and B, normalized
 *             with the ImageNet mean/std -> 32x112x112.
 *
 * Baseline: the same per-channel quantizer with one code per byte (two for 16-bit codes), no bit
 * packing, zstd at the same level, same header and side info sizes.
 *
 * For every setup: bytes per frame, ratio to the kept float channels, encode and decode MB/s of
 * float tensor on one core, and the split of each between the codec's own work
 * (rtci_codec_quantize_pack / rtci_codec_unpack_dequantize) and the zstd call it wraps (called
 * exactly as the codec calls it). Each figure is the median over --runs runs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "common/clock.h"
#include "common/idx.h"
#include "common/rtci_error.h"
#include "inference/codec.h"
#include "bench_util.h"

#define C_PART 32
#define MAX_RUNS 64

static const uint32_t channel_set[] = { 1, 2, 3, 4, 5, 6, 7, 8, 16, 32 };
static const uint32_t level_set[] = { 65535, 255, 15, 3, 1 };

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- partition tensors ---- */

struct geometry {
	const char *name;
	uint32_t in_ch, in_hw, out_hw, images;
	float *tensors; /* images x 32 x out_hw x out_hw */
};

static uint64_t rng = 1;
static float unif(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (float)(rng >> 40) / (float)(1u << 24);
}

/* conv 3x3 stride 2 pad 1, in_ch -> 32, then ReLU6. */
static void stem(const float *in, uint32_t in_ch, uint32_t hw, const float *w, float *out, uint32_t ohw)
{
	for (uint32_t o = 0; o < C_PART; o++)
		for (uint32_t y = 0; y < ohw; y++)
			for (uint32_t x = 0; x < ohw; x++) {
				float acc = 0.0f;
				for (uint32_t ci = 0; ci < in_ch; ci++)
					for (int ky = 0; ky < 3; ky++)
						for (int kx = 0; kx < 3; kx++) {
							int iy = (int)(2 * y) + ky - 1, ix = (int)(2 * x) + kx - 1;
							if (iy < 0 || ix < 0 || iy >= (int)hw || ix >= (int)hw)
								continue;
							acc += w[((o * in_ch + ci) * 3 + (uint32_t)ky) * 3 + (uint32_t)kx] *
							       in[(ci * hw + (uint32_t)iy) * hw + (uint32_t)ix];
						}
				out[(o * ohw + y) * ohw + x] = fminf(fmaxf(acc, 0.0f), 6.0f);
			}
}

/* Bilinear resize of a 28x28 gray image to hw x hw, half-pixel centres, edges clamped. */
static void upscale(const uint8_t *src, uint32_t shw, float *dst, uint32_t hw)
{
	float scale = (float)shw / (float)hw;
	for (uint32_t y = 0; y < hw; y++) {
		float sy = fmaxf(((float)y + 0.5f) * scale - 0.5f, 0.0f);
		uint32_t y0 = (uint32_t)sy, y1 = y0 + 1 < shw ? y0 + 1 : y0;
		float fy = sy - (float)y0;
		for (uint32_t x = 0; x < hw; x++) {
			float sx = fmaxf(((float)x + 0.5f) * scale - 0.5f, 0.0f);
			uint32_t x0 = (uint32_t)sx, x1 = x0 + 1 < shw ? x0 + 1 : x0;
			float fx = sx - (float)x0;
			float top = src[y0 * shw + x0] * (1 - fx) + src[y0 * shw + x1] * fx;
			float bot = src[y1 * shw + x0] * (1 - fx) + src[y1 * shw + x1] * fx;
			dst[y * hw + x] = (top * (1 - fy) + bot * fy) / 255.0f;
		}
	}
}

static void make_tensors(struct geometry *g, const struct rtci_idx *idx)
{
	static const float mean224[3] = { 0.485f, 0.456f, 0.406f }, std224[3] = { 0.229f, 0.224f, 0.225f };
	size_t fan_in = (size_t)g->in_ch * 9, plane_out = (size_t)g->out_hw * g->out_hw;
	float *w = xmalloc(C_PART * fan_in * sizeof(float));
	float *in = xmalloc((size_t)g->in_ch * g->in_hw * g->in_hw * sizeof(float));
	float *gray = xmalloc((size_t)g->in_hw * g->in_hw * sizeof(float));
	float a = sqrtf(6.0f / (float)fan_in);

	rng = 1;
	for (size_t i = 0; i < C_PART * fan_in; i++)
		w[i] = (2.0f * unif() - 1.0f) * a;
	g->tensors = xmalloc((size_t)g->images * C_PART * plane_out * sizeof(float));
	for (uint32_t n = 0; n < g->images; n++) {
		const uint8_t *img = rtci_idx_item(idx, n % idx->count);
		size_t px = (size_t)g->in_hw * g->in_hw;
		if (g->in_hw == idx->rows) {
			for (size_t i = 0; i < px; i++)
				in[i] = ((float)img[i] / 255.0f - 0.2860f) / 0.3530f;
		} else {
			upscale(img, idx->rows, gray, g->in_hw);
			for (uint32_t c = 0; c < g->in_ch; c++)
				for (size_t i = 0; i < px; i++)
					in[c * px + i] = (gray[i] - mean224[c]) / std224[c];
		}
		stem(in, g->in_ch, g->in_hw, w, g->tensors + (size_t)n * C_PART * plane_out, g->out_hw);
	}
	free(w);
	free(in);
	free(gray);
}

/* ---- baseline: one code per byte (two for 16-bit), zstd ---- */

static size_t base_quantize(const float *x, uint32_t c, size_t plane, uint32_t L, float *side,
			    uint8_t *codes)
{
	size_t o = 0;
	for (uint32_t k = 0; k < c; k++) {
		const float *v = x + k * plane;
		float mn = v[0], mx = v[0];
		for (size_t i = 1; i < plane; i++) {
			mn = v[i] < mn ? v[i] : mn;
			mx = v[i] > mx ? v[i] : mx;
		}
		side[2 * k] = mn;
		side[2 * k + 1] = mx;
		float range = mx - mn;
		for (size_t i = 0; i < plane; i++) {
			uint32_t q = 0;
			if (range != 0.0f) {
				q = (uint32_t)floorf((v[i] - mn) / range * (float)L + 0.5f);
				q = q > L ? L : q;
			}
			codes[o++] = (uint8_t)q;
			if (L > 255)
				codes[o++] = (uint8_t)(q >> 8);
		}
	}
	return o;
}

static void base_dequantize(const uint8_t *codes, uint32_t c, size_t plane, uint32_t L,
			    const float *side, float *y)
{
	size_t o = 0;
	for (uint32_t k = 0; k < c; k++) {
		float mn = side[2 * k], step = (side[2 * k + 1] - mn) / (float)L;
		for (size_t i = 0; i < plane; i++) {
			uint32_t q = codes[o++];
			if (L > 255)
				q |= (uint32_t)codes[o++] << 8;
			y[k * plane + i] = mn + (float)q * step;
		}
	}
}

/* ---- one setup ---- */

struct result {
	double enc_bytes, base_bytes, stored_frac, bytes_frac;
	double enc, dec, pack, zc, zd, unpack, benc, bdec; /* seconds per image, medians */
};

static void die(const char *what, long ret)
{
	fprintf(stderr, "%s: %s\n", what, rtci_strerror((int)ret));
	exit(1);
}

static void run_setup(const struct geometry *g, uint32_t c, uint32_t L, int level, int runs,
		      struct rtci_codec *codec, ZSTD_CCtx *cctx, ZSTD_DCtx *dctx, struct result *r)
{
	struct rtci_codec_desc d = { c, L, C_PART, g->out_hw, g->out_hw };
	size_t plane = (size_t)g->out_hw * g->out_hw, n = c * plane, N = g->images;
	size_t plen = (size_t)rtci_codec_packed_size(c, L, g->out_hw, g->out_hw);
	size_t fcap = (size_t)rtci_codec_max_encoded_size(c, L, g->out_hw, g->out_hw);
	size_t blen = n * (L > 255 ? 2 : 1), bcap = ZSTD_compressBound(blen);
	size_t zcap = ZSTD_compressBound(plen);
	uint8_t *packed = xmalloc(N * plen), *frames = xmalloc(N * fcap), *z = xmalloc(N * zcap);
	uint8_t *bcodes = xmalloc(N * blen), *bz = xmalloc(N * bcap), *scratch = xmalloc(blen);
	float *side = xmalloc(N * 2 * c * sizeof(float)), *out = xmalloc(n * sizeof(float));
	size_t *flen = xmalloc(N * sizeof(size_t)), *zlen = xmalloc(N * sizeof(size_t));
	size_t *bzlen = xmalloc(N * sizeof(size_t));
	double t[8][MAX_RUNS];
	const float *x = g->tensors;
	size_t stride = (size_t)C_PART * plane;

	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	for (int run = 0; run < runs; run++) {
		double t0 = rtci_mono_s();
		for (size_t i = 0; i < N; i++) {
			long ret = rtci_codec_encode(codec, &d, x + i * stride, frames + i * fcap, fcap);
			if (ret < 0)
				die("encode", ret);
			flen[i] = (size_t)ret;
		}
		double t1 = rtci_mono_s();
		for (size_t i = 0; i < N; i++) {
			int ret = rtci_codec_decode(codec, frames + i * fcap, flen[i], out, n, 0, NULL);
			if (ret < 0)
				die("decode", ret);
		}
		double t2 = rtci_mono_s();
		/* The same two stages one by one: codec's own work, then zstd as the codec calls it
		 * (decompression only where the frame is compressed, not stored). */
		for (size_t i = 0; i < N; i++) {
			int ret = rtci_codec_quantize_pack(&d, x + i * stride, side + i * 2 * c, packed + i * plen);
			if (ret < 0)
				die("quantize_pack", ret);
		}
		double t3 = rtci_mono_s();
		for (size_t i = 0; i < N; i++)
			zlen[i] = ZSTD_compress2(cctx, z + i * zcap, zcap, packed + i * plen, plen);
		double t4 = rtci_mono_s();
		for (size_t i = 0; i < N; i++)
			if (!ZSTD_isError(zlen[i]) && zlen[i] < plen &&
			    ZSTD_isError(ZSTD_decompressDCtx(dctx, scratch, plen, z + i * zcap, zlen[i])))
				die("zstd", 0);
		double t5 = rtci_mono_s();
		for (size_t i = 0; i < N; i++) {
			int ret = rtci_codec_unpack_dequantize(&d, side + i * 2 * c, packed + i * plen, out, 0);
			if (ret < 0)
				die("unpack_dequantize", ret);
		}
		double t6 = rtci_mono_s();
		/* Baseline. */
		for (size_t i = 0; i < N; i++) {
			base_quantize(x + i * stride, c, plane, L, side + i * 2 * c, bcodes + i * blen);
			bzlen[i] = ZSTD_compress2(cctx, bz + i * bcap, bcap, bcodes + i * blen, blen);
			if (ZSTD_isError(bzlen[i]))
				die("baseline zstd", 0);
		}
		double t7 = rtci_mono_s();
		for (size_t i = 0; i < N; i++) {
			if (ZSTD_isError(ZSTD_decompressDCtx(dctx, scratch, blen, bz + i * bcap, bzlen[i])))
				die("baseline unzstd", 0);
			base_dequantize(scratch, c, plane, L, side + i * 2 * c, out);
		}
		double t8 = rtci_mono_s();
		double per = 1.0 / (double)N;
		t[0][run] = (t1 - t0) * per;
		t[1][run] = (t2 - t1) * per;
		t[2][run] = (t3 - t2) * per;
		t[3][run] = (t4 - t3) * per;
		t[4][run] = (t5 - t4) * per;
		t[5][run] = (t6 - t5) * per;
		t[6][run] = (t7 - t6) * per;
		t[7][run] = (t8 - t7) * per;
	}
	double eb = 0, bb = 0, stored = 0, bytes = 0;
	for (size_t i = 0; i < N; i++) {
		eb += (double)flen[i];
		bb += (double)(RTCI_CODEC_HEADER_SIZE + 8 * c + bzlen[i]);
		stored += frames[i * fcap + 5] & RTCI_CODEC_F_STORED;
		bytes += (frames[i * fcap + 5] & RTCI_CODEC_F_BYTES) != 0;
	}
	r->enc_bytes = eb / (double)N;
	r->base_bytes = bb / (double)N;
	r->stored_frac = stored / (double)N;
	r->bytes_frac = bytes / (double)N;
	r->enc = bench_median(t[0], runs);
	r->dec = bench_median(t[1], runs);
	r->pack = bench_median(t[2], runs);
	r->zc = bench_median(t[3], runs);
	r->zd = bench_median(t[4], runs);
	r->unpack = bench_median(t[5], runs);
	r->benc = bench_median(t[6], runs);
	r->bdec = bench_median(t[7], runs);
	free(packed); free(frames); free(z); free(bcodes); free(bz); free(scratch);
	free(side); free(out); free(flen); free(zlen); free(bzlen);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--images PATH] [--levels L1,L2,...] [--runs N] [--n224 N] [--nfm N] [--csv PATH]\n"
		"  --levels  zstd levels to measure (default 1)\n"
		"  --runs    runs per figure; medians are reported (default 5)\n"
		"  --n224    images per run at 224x224 (default 8); --nfm at 28x28 (default 256)\n",
		argv0);
}

int main(int argc, char **argv)
{
	const char *images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
	const char *csv_path = "bench/results/codec.csv";
	char levels_arg[256] = "1";
	int runs = 5;
	uint32_t n224 = 8, nfm = 256;

	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			usage(argv[0]);
			return 2;
		}
		if (!strcmp(a, "--images")) images = v;
		else if (!strcmp(a, "--csv")) csv_path = v;
		else if (!strcmp(a, "--levels")) snprintf(levels_arg, sizeof(levels_arg), "%s", v);
		else if (!strcmp(a, "--runs")) runs = atoi(v);
		else if (!strcmp(a, "--n224")) n224 = (uint32_t)atoi(v);
		else if (!strcmp(a, "--nfm")) nfm = (uint32_t)atoi(v);
		else {
			usage(argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || n224 < 1 || nfm < 1) {
		usage(argv[0]);
		return 2;
	}
	int levels[16], nlevels = 0;
	for (char *tok = strtok(levels_arg, ","); tok && nlevels < 16; tok = strtok(NULL, ","))
		levels[nlevels++] = atoi(tok);

	struct rtci_idx idx;
	char err[512];
	uint32_t need = n224 > nfm ? n224 : nfm;
	if (rtci_idx_load(images, need, &idx, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct geometry geos[2] = {
		{ "mnv2-224", 3, 224, 112, n224, NULL },
		{ "fmnist", 1, 28, 14, nfm, NULL },
	};
	for (int gi = 0; gi < 2; gi++)
		make_tensors(&geos[gi], &idx);
	rtci_idx_free(&idx);

	FILE *csv = fopen(csv_path, "w");
	if (!csv) {
		fprintf(stderr, "%s: %s\n", csv_path, strerror(errno));
		return 1;
	}
	fprintf(csv, "geometry,level,c,L,bits,images,runs,float_bytes,raw_bytes,enc_bytes,ratio,stored_frac,bytes_frac,"
		     "enc_MBps,dec_MBps,enc_own_us,enc_zstd_us,dec_zstd_us,dec_own_us,"
		     "base_bytes,base_enc_MBps,base_dec_MBps,bytes_vs_base\n");

	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	for (int li = 0; li < nlevels; li++) {
		for (int gi = 0; gi < 2; gi++) {
			const struct geometry *g = &geos[gi];
			/* One context per geometry, sized for it, as a device or gateway would make it. */
			struct rtci_codec_config cfg = { .level = levels[li] ? levels[li] : RTCI_CODEC_DEFAULT_LEVEL,
							 .max_elements = C_PART * g->out_hw * g->out_hw };
			struct rtci_codec *codec;
			int ret = rtci_codec_create(&cfg, &codec);
			if (ret < 0)
				die("create", ret);
			int n = 0, own_enc_ok = 0, own_dec_ok = 0, size_ok = 0;
			double worst_vs_base = 0, sum_enc = 0, sum_dec = 0;
			printf("\n%s (32x%ux%u), zstd level %d, %u images, median of %d runs\n", g->name,
			       g->out_hw, g->out_hw, cfg.level, g->images, runs);
			printf("%3s %5s %9s %7s %6s %6s %8s %8s  %7s %7s %7s %7s  %9s %6s\n", "c", "L", "bytes",
			       "ratio", "stored", "bytes", "enc MB/s", "dec MB/s", "pack us", "zstd us", "unzstd", "unpack",
			       "base B", "vs base");
			for (size_t ci = 0; ci < sizeof(channel_set) / sizeof(channel_set[0]); ci++)
				for (size_t lv = 0; lv < 5; lv++) {
					uint32_t c = channel_set[ci], L = level_set[lv];
					struct result r;
					run_setup(g, c, L, cfg.level, runs, codec, cctx, dctx, &r);
					double fbytes = 4.0 * c * g->out_hw * g->out_hw;
					double enc_mbps = fbytes / r.enc / 1e6, dec_mbps = fbytes / r.dec / 1e6;
					double vs = r.enc_bytes / r.base_bytes;
					printf("%3u %5u %9.1f %7.2f %6.2f %6.2f %8.0f %8.0f  %7.1f %7.1f %7.1f %7.1f  %9.1f %6.3f\n",
					       c, L, r.enc_bytes, fbytes / r.enc_bytes, r.stored_frac, r.bytes_frac, enc_mbps, dec_mbps,
					       r.pack * 1e6, r.zc * 1e6, r.zd * 1e6, r.unpack * 1e6, r.base_bytes, vs);
					fprintf(csv, "%s,%d,%u,%u,%d,%u,%d,%.0f,%zd,%.1f,%.3f,%.3f,%.3f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,"
						     "%.1f,%.1f,%.1f,%.4f\n",
						g->name, cfg.level, c, L, rtci_codec_bits(L), g->images, runs, fbytes,
						rtci_codec_raw_size(c, L, g->out_hw, g->out_hw), r.enc_bytes,
						fbytes / r.enc_bytes, r.stored_frac, r.bytes_frac, enc_mbps, dec_mbps, r.pack * 1e6,
						r.zc * 1e6, r.zd * 1e6, r.unpack * 1e6, r.base_bytes,
						fbytes / r.benc / 1e6, fbytes / r.bdec / 1e6, vs);
					n++;
					own_enc_ok += r.pack < r.zc;
					own_dec_ok += r.unpack < r.zd;
					size_ok += r.enc_bytes <= r.base_bytes;
					worst_vs_base = vs > worst_vs_base ? vs : worst_vs_base;
					sum_enc += r.enc / (r.benc);
					sum_dec += r.dec / (r.bdec);
				}
			printf("summary %s level %d: codec frame <= baseline bytes in %d/%d setups (worst %.3fx); "
			       "own work < zstd: encode %d/%d, decode %d/%d (stored frames call no zstd on decode); "
			       "time vs baseline: encode %.2fx, decode %.2fx (mean)\n",
			       g->name, cfg.level, size_ok, n, worst_vs_base, own_enc_ok, n, own_dec_ok, n,
			       sum_enc / n, sum_dec / n);
			rtci_codec_destroy(codec);
		}
	}
	ZSTD_freeCCtx(cctx);
	ZSTD_freeDCtx(dctx);
	fclose(csv);
	for (int gi = 0; gi < 2; gi++)
		free(geos[gi].tensors);
	printf("\nwrote %s\n", csv_path);
	return 0;
}
