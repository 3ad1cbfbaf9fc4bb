/* rtci-codec-demo: the device-to-gateway path of one frame stream, in one process.
 *
 * Real Fashion-MNIST images go through a partition layer (a fixed random 3x3 stride-2 filter bank
 * of 32 filters + ReLU6, so the tensor has the partition layer's shape and statistics), are
 * encoded under every compression setup, split into authenticated datagrams, and sent over a
 * simulated channel that shuffles, duplicates and loses datagrams. The receiving side decodes
 * and validates each datagram, reassembles frames, verifies their MACs, decodes the features and
 * checks the reconstruction error against the quantizer's bound. One table row per setup. */
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idx.h"
#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "dataplane/reassembly.h"
#include "inference/codec.h"

#define PART_C 32
#define MAX_FRAGS 64

static const uint32_t channel_set[] = { 1, 2, 3, 4, 5, 6, 7, 8, 16, 32 };
static const uint32_t level_set[] = { 65535, 255, 15, 3, 1 };

struct options {
	const char *images;
	uint32_t frames;     /* frames per setup */
	uint32_t devices;
	double loss;         /* probability a datagram is lost */
	double dup;          /* probability a datagram is sent twice */
	uint32_t window;     /* frames whose datagrams are shuffled together */
	uint16_t frag_size;
	uint64_t seed;
};

/* xorshift64*: small, seedable, identical on every platform. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}
static double rng_uniform(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

/* The partition layer's shape: conv 3x3, stride 2, pad 1, 32 filters, ReLU6, on the image
 * normalized as the fmnist model expects. */
static void partition_tensor(const uint8_t *img, uint32_t rows, uint32_t cols, const float *w,
			     float *out, uint32_t oh, uint32_t ow)
{
	for (uint32_t k = 0; k < PART_C; k++)
		for (uint32_t y = 0; y < oh; y++)
			for (uint32_t x = 0; x < ow; x++) {
				float acc = 0.0f;
				for (int dy = -1; dy <= 1; dy++)
					for (int dx = -1; dx <= 1; dx++) {
						int iy = (int)(2 * y) + dy, ix = (int)(2 * x) + dx;
						if (iy < 0 || ix < 0 || iy >= (int)rows || ix >= (int)cols)
							continue;
						float v = ((float)img[iy * (int)cols + ix] / 255.0f - 0.2860f) / 0.3530f;
						acc += v * w[k * 9 + (dy + 1) * 3 + (dx + 1)];
					}
				out[(k * oh + y) * ow + x] = fminf(fmaxf(acc, 0.0f), 6.0f);
			}
}

struct datagram {
	uint8_t buf[RTCI_PROTO_MAX_DATAGRAM];
	size_t len;
};

struct setup_result {
	uint64_t frames_sent, frames_ok, wire_bytes, datagrams;
	double max_err_over_bound; /* max |x - x^| / ((max - min) / 2L + float rounding) */
	double max_err;
};

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--images IDX] [--frames N] [--devices N] [--loss P] [--dup P]\n"
		"          [--window N] [--frag-size BYTES] [--seed N]\n", prog);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "images", required_argument, NULL, 'i' }, { "frames", required_argument, NULL, 'n' },
		{ "devices", required_argument, NULL, 'd' }, { "loss", required_argument, NULL, 'l' },
		{ "dup", required_argument, NULL, 'u' }, { "window", required_argument, NULL, 'w' },
		{ "frag-size", required_argument, NULL, 'f' }, { "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': o->images = optarg; break;
		case 'n': o->frames = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'd': o->devices = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'l': o->loss = strtod(optarg, NULL); break;
		case 'u': o->dup = strtod(optarg, NULL); break;
		case 'w': o->window = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'f': o->frag_size = (uint16_t)strtoul(optarg, NULL, 10); break;
		case 's': o->seed = strtoull(optarg, NULL, 10); break;
		default: usage(argv[0]); return -EINVAL;
		}
	}
	if (o->frames == 0 || o->devices == 0 || o->window == 0 || o->loss < 0 || o->loss >= 1 ||
	    o->dup < 0 || o->dup >= 1 || o->frag_size < 64 || o->frag_size > RTCI_PROTO_MAX_FRAG) {
		fprintf(stderr, "%s: frames, devices and window must be >= 1, loss and dup in [0, 1), "
			"frag-size in [64, %d]\n", argv[0], RTCI_PROTO_MAX_FRAG);
		return -EINVAL;
	}
	return 0;
}

/* Everything one run holds: the inputs, the codec, the keys and the receiving side. */
struct demo {
	struct options o;
	struct rtci_idx images;
	uint32_t oh, ow;
	size_t plane, tensor_floats;
	float *tensors, *decoded;
	struct rtci_codec *codec;
	uint8_t *frame;
	size_t frame_cap;
	uint32_t tenant;
	uint8_t (*keys)[RTCI_AUTH_KEY_LEN];
	struct rtci_auth_replay *replay;
	struct rtci_reasm_config rcfg;
	struct rtci_reasm *reasm;
	struct datagram *dgrams;
	struct datagram **order;
	uint32_t *frame_image;
	struct setup_result results[50];
	uint64_t now, seq, lost, duplicated, bad_decode, replayed;
};

/* Images, their partition tensors under fixed random filters (He-scaled for 9 inputs), codec. */
static int load_inputs(struct demo *d)
{
	char err[512];
	int ret = rtci_idx_load(d->o.images, d->o.frames, &d->images, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "rtci-codec-demo: %s\n(install the images: apt-get install dataset-fashion-mnist)\n", err);
		return -1;
	}
	d->oh = (d->images.rows - 1) / 2 + 1;
	d->ow = (d->images.cols - 1) / 2 + 1;
	d->plane = (size_t)d->oh * d->ow;
	d->tensor_floats = PART_C * d->plane;
	float filters[PART_C * 9];
	for (int i = 0; i < PART_C * 9; i++)
		filters[i] = (float)((rng_uniform() * 2.0 - 1.0) * sqrt(6.0 / 9.0));
	d->tensors = malloc(d->images.count * d->tensor_floats * sizeof(float));
	d->decoded = malloc(d->tensor_floats * sizeof(float));
	if (!d->tensors || !d->decoded)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->images.count; i++)
		partition_tensor(rtci_idx_item(&d->images, i), d->images.rows, d->images.cols, filters,
				 d->tensors + i * d->tensor_floats, d->oh, d->ow);
	struct rtci_codec_config ccfg = { .max_elements = (uint32_t)d->tensor_floats };
	if ((ret = rtci_codec_create(&ccfg, &d->codec)) < 0) {
		fprintf(stderr, "rtci-codec-demo: codec: %s\n", rtci_strerror(ret));
		return -1;
	}
	d->frame_cap = (size_t)rtci_codec_max_encoded_size(PART_C, 65535, d->oh, d->ow);
	d->frame = malloc(d->frame_cap);
	return d->frame ? 0 : -ENOMEM;
}

/* One tenant with device keys derived as the gateway does, the replay windows, reassembly and
 * the datagram buffers of one window of frames (with room for duplicates). */
static int setup_link(struct demo *d)
{
	int ret;
	uint8_t tenant_key[RTCI_AUTH_KEY_LEN];
	for (int i = 0; i < RTCI_AUTH_KEY_LEN; i++)
		tenant_key[i] = (uint8_t)rng_next();
	d->tenant = 1;
	d->keys = malloc(d->o.devices * sizeof(*d->keys));
	d->replay = calloc(d->o.devices, sizeof(*d->replay));
	if (!d->keys || !d->replay)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->o.devices; i++)
		rtci_auth_derive_device_key(tenant_key, d->tenant, i, d->keys[i]);
	d->rcfg = (struct rtci_reasm_config){
		.max_frames = 4 * d->o.window, .arena_bytes = 8u << 20,
		.max_frame_len = (uint32_t)d->frame_cap,
		.max_inflight_per_device = (uint16_t)(d->o.window < 64 ? d->o.window : 64),
		.max_tenants = 4, .ttl = 1000000,
	};
	if ((ret = rtci_reasm_create(&d->rcfg, &d->reasm)) < 0) {
		fprintf(stderr, "rtci-codec-demo: reassembly: %s\n", rtci_strerror(ret));
		return -1;
	}
	const size_t max_dgrams = (size_t)d->o.window * MAX_FRAGS * 2;
	d->dgrams = malloc(max_dgrams * sizeof(*d->dgrams));
	d->order = malloc(max_dgrams * sizeof(*d->order));
	d->frame_image = malloc(d->o.window * sizeof(uint32_t));
	return d->dgrams && d->order && d->frame_image ? 0 : -ENOMEM;
}

/* Device side: encode, fragment and authenticate frames first..first+n-1; returns the number
 * of datagrams made, or -1. */
static long send_frames(struct demo *d, int s, const struct rtci_codec_desc *desc, uint32_t first,
			uint32_t n)
{
	struct rtci_proto_datagram out[MAX_FRAGS];
	struct setup_result *r = &d->results[s];
	size_t nd = 0;
	for (uint32_t f = 0; f < n; f++) {
		uint32_t img = first + f;
		ssize_t len = rtci_codec_encode(d->codec, desc, d->tensors + img * d->tensor_floats,
						d->frame, d->frame_cap);
		if (len < 0) {
			fprintf(stderr, "encode: %s\n", rtci_strerror((int)len));
			return -1;
		}
		struct rtci_proto_frame_info info = { .tenant_id = d->tenant,
			.device_id = img % d->o.devices, .seq = d->seq, .setup_id = (uint16_t)s,
			.capture_us = d->now };
		d->frame_image[d->seq % d->o.window] = img;
		d->seq++;
		for (int k = 0; k < MAX_FRAGS; k++)
			out[k] = (struct rtci_proto_datagram){ .buf = d->dgrams[nd + (size_t)k].buf,
				.cap = sizeof(d->dgrams[0].buf) };
		long m = rtci_proto_fragment(&info, d->frame, (size_t)len, d->o.frag_size,
					     d->keys[info.device_id], out, MAX_FRAGS);
		if (m < 0) {
			fprintf(stderr, "fragment: %s\n", rtci_strerror((int)m));
			return -1;
		}
		r->frames_sent++;
		for (long k = 0; k < m; k++) {
			r->wire_bytes += out[k].len;
			r->datagrams++;
			d->dgrams[nd + (size_t)k].len = out[k].len;
		}
		nd += (size_t)m;
	}
	return (long)nd;
}

/* The channel: loses, duplicates, then shuffles the datagrams into d->order; returns how many. */
static size_t channel(struct demo *d, size_t nd)
{
	size_t no = 0;
	for (size_t k = 0; k < nd; k++) {
		if (rng_uniform() < d->o.loss) {
			d->lost++;
			continue;
		}
		d->order[no++] = &d->dgrams[k];
		if (rng_uniform() < d->o.dup) {
			d->order[no++] = &d->dgrams[k];
			d->duplicated++;
		}
	}
	for (size_t k = no; k > 1; k--) {
		size_t j = rng_next() % k;
		struct datagram *t = d->order[k - 1];
		d->order[k - 1] = d->order[j];
		d->order[j] = t;
	}
	return no;
}

/* Worst reconstruction error of image img's kept channels, absolute and against the
 * quantizer's bound plus the rounding of float32 arithmetic (a few ulps of the channel's
 * largest magnitude). */
static void check_error(struct demo *d, const struct rtci_codec_desc *desc, uint32_t img,
			struct setup_result *r)
{
	const float *x = d->tensors + img * d->tensor_floats;
	size_t plane = d->plane;
	for (uint32_t ch = 0; ch < desc->c; ch++) {
		float mn = INFINITY, mx = -INFINITY;
		for (size_t e = 0; e < plane; e++) {
			mn = fminf(mn, x[ch * plane + e]);
			mx = fmaxf(mx, x[ch * plane + e]);
		}
		double bound = (double)(mx - mn) / (2.0 * desc->levels) +
			       4.0 * FLT_EPSILON * fmax(fabs((double)mn), fabs((double)mx));
		for (size_t e = 0; e < plane; e++) {
			double dv = fabs((double)x[ch * plane + e] - d->decoded[ch * plane + e]);
			if (dv > r->max_err)
				r->max_err = dv;
			if (bound > 0 && dv / bound > r->max_err_over_bound)
				r->max_err_over_bound = dv / bound;
		}
	}
}

/* Gateway side: validate, reassemble, authenticate, decode, check. */
static void receive(struct demo *d, const struct rtci_codec_desc *desc, struct setup_result *r,
		    size_t no)
{
	for (size_t k = 0; k < no; k++) {
		struct rtci_proto_msg msg;
		struct rtci_reasm_frame *done;
		d->now += 10;
		if (rtci_proto_decode(d->order[k]->buf, d->order[k]->len, &msg) < 0 ||
		    msg.hdr.tenant_id != d->tenant || msg.hdr.device_id >= d->o.devices)
			continue;
		/* A late duplicate of a frame already delivered is dropped before reassembly; the
		 * window is advanced only by authenticated frames. */
		struct rtci_auth_replay *win = &d->replay[msg.hdr.device_id];
		if (rtci_auth_replay_check(win, msg.hdr.seq) < 0) {
			d->replayed++;
			continue;
		}
		if (rtci_reasm_insert(d->reasm, &msg, d->keys[msg.hdr.device_id], d->now, &done) != 1)
			continue;
		if (rtci_auth_replay_accept(win, done->hdr.seq) < 0) {
			rtci_reasm_release(d->reasm, done);
			d->replayed++;
			continue;
		}
		struct rtci_codec_desc got;
		int ret = rtci_codec_decode(d->codec, done->data, done->len, d->decoded,
					    d->tensor_floats, PART_C, &got);
		uint32_t img = d->frame_image[done->hdr.seq % d->o.window];
		rtci_reasm_release(d->reasm, done);
		if (ret < 0) {
			d->bad_decode++;
			continue;
		}
		r->frames_ok++;
		check_error(d, desc, img, r);
	}
}

/* Every setup, window by window: a window of frames is in flight at once. */
static int run_setups(struct demo *d)
{
	for (int s = 0; s < 50; s++) {
		struct rtci_codec_desc desc = { .c = channel_set[s / 5], .levels = level_set[s % 5],
			.channels = PART_C, .height = d->oh, .width = d->ow };
		for (uint32_t first = 0; first < d->images.count; first += d->o.window) {
			uint32_t left = d->images.count - first;
			long nd = send_frames(d, s, &desc, first, left < d->o.window ? left : d->o.window);
			if (nd < 0)
				return -1;
			receive(d, &desc, &d->results[s], channel(d, (size_t)nd));
			rtci_reasm_expire(d->reasm, d->now + d->rcfg.ttl + 1);
		}
	}
	return 0;
}

/* The table and the totals; returns whether every frame decoded within the bound. */
static int report(struct demo *d)
{
	printf("setup   c  bits  wire B/frame  ratio vs f32  max |x-x^|  err/bound  frames recovered\n");
	uint64_t sent = 0, ok = 0;
	int bound_ok = 1;
	for (int s = 0; s < 50; s++) {
		const struct setup_result *r = &d->results[s];
		double per_frame = (double)r->wire_bytes / (double)r->frames_sent;
		double float_bytes = (double)d->tensor_floats * sizeof(float);
		printf("%5d %3u %5d %13.1f %13.1f %11.5f %10.3f %8llu / %llu\n", s, channel_set[s / 5],
		       rtci_codec_bits(level_set[s % 5]), per_frame, float_bytes / per_frame, r->max_err,
		       r->max_err_over_bound, (unsigned long long)r->frames_ok,
		       (unsigned long long)r->frames_sent);
		sent += r->frames_sent;
		ok += r->frames_ok;
		bound_ok &= r->max_err_over_bound <= 1.0;
	}
	struct rtci_reasm_stats st;
	rtci_reasm_stats(d->reasm, &st);
	printf("\nratio vs f32: bytes of the full %dx%ux%u float32 tensor / bytes on the wire (headers and MACs included)\n"
	       "err/bound: worst |x - x^| relative to the quantizer's bound (max - min) / 2L plus float32 rounding; must be <= 1\n\n",
	       PART_C, d->oh, d->ow);
	printf("datagrams lost %llu, duplicated %llu; dropped as replays of delivered frames %llu;\n"
	       "reassembly: duplicates dropped %llu, frames expired %llu, bad MAC %llu; decode errors %llu\n",
	       (unsigned long long)d->lost, (unsigned long long)d->duplicated,
	       (unsigned long long)d->replayed,
	       (unsigned long long)st.drops[RTCI_REASM_DROP_DUPLICATE],
	       (unsigned long long)st.frames_expired, (unsigned long long)st.frames_bad_mac,
	       (unsigned long long)d->bad_decode);
	printf("frames recovered: %llu of %llu (%.1f%%)%s\n", (unsigned long long)ok,
	       (unsigned long long)sent, 100.0 * (double)ok / (double)sent,
	       bound_ok ? "; every recovered frame authenticated and decoded within the bound" : "");
	return bound_ok;
}

static void demo_free(struct demo *d)
{
	if (d->reasm)
		rtci_reasm_destroy(d->reasm);
	if (d->codec)
		rtci_codec_destroy(d->codec);
	free(d->frame_image);
	free(d->order);
	free(d->dgrams);
	free(d->keys);
	free(d->replay);
	free(d->frame);
	free(d->decoded);
	free(d->tensors);
	rtci_idx_free(&d->images);
}

int main(int argc, char **argv)
{
	static struct demo d = { .o = {
		.images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
		.frames = 200, .devices = 8, .loss = 0.01, .dup = 0.05, .window = 16,
		.frag_size = RTCI_PROTO_DEFAULT_FRAG, .seed = 1,
	} };
	if (parse_options(argc, argv, &d.o) != 0)
		return 2;
	rng_state = d.o.seed * 0x9E3779B97F4A7C15ULL + 1;
	if (rtci_auth_init() != 0) {
		fprintf(stderr, "rtci-codec-demo: libsodium failed to initialise\n");
		return 1;
	}
	int rc = load_inputs(&d);
	if (rc == 0)
		rc = setup_link(&d);
	if (rc == -ENOMEM)
		fprintf(stderr, "rtci-codec-demo: out of memory\n");
	if (rc == 0) {
		printf("rtci-codec-demo: %u Fashion-MNIST images -> partition tensor %dx%ux%u, %u devices,\n"
		       "  channel: %.1f%% loss, %.1f%% duplicates, shuffled across %u frames, %u-byte fragments\n\n",
		       d.images.count, PART_C, d.oh, d.ow, d.o.devices, d.o.loss * 100, d.o.dup * 100,
		       d.o.window, d.o.frag_size);
		rc = run_setups(&d);
	}
	int bound_ok = rc == 0 && report(&d);
	demo_free(&d);
	if (rc < 0)
		return 1;
	if (!bound_ok) {
		fprintf(stderr, "rtci-codec-demo: reconstruction error above the quantizer's bound\n");
		return 1;
	}
	return 0;
}
