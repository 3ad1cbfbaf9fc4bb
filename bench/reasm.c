/* rtci-bench-reasm: gateway ingest cost per fragment on one core.
 *
 * Per datagram: rtci_proto_decode -> per-device state lookup -> replay pre-check ->
 * rtci_reasm_insert (with the device key: the table verifies the completed frame's MAC);
 * per completed frame: replay accept -> release. Three MAC modes per configuration: none
 * (baseline), table (key passed to the table), caller (rtci_auth_verify after completion). Traffic: frames of 10-60 KB (uniform) from D devices, fragmented into
 * 1,400-byte fragments by rtci_proto_fragment; K frames at a time are interleaved fragment by
 * fragment (K = min(D, --concurrent), default 512); devices take turns in a fixed random
 * order, so per-device state (key, replay window) is spread over all D devices.
 * Only the receive side is timed (the generator runs between timed batches, like a NIC
 * filling an RX ring), in thread CPU time (CLOCK_THREAD_CPUTIME_ID) so that time spent
 * descheduled on a shared machine does not count; cycles = CPU seconds x the TSC rate
 * measured at start (reference cycles at the nominal clock). Each configuration runs --runs times; medians are reported, and the
 * same traffic without MAC verification is measured as the baseline.
 *
 *   rtci-bench-reasm [--devices N[,N...]] [--frames F] [--runs R] [--concurrent K]
 *                    [--csv FILE] [--primitives]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include <sodium.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/poly1305.h"
#include "dataplane/protocol.h"
#include "dataplane/reassembly.h"
#include "bench_util.h"

#define FRAG 1400
#define MIN_FRAME (10 * 1000)
#define MAX_FRAME (60 * 1000)
#define MAX_FRAGS ((MAX_FRAME + FRAG - 1) / FRAG)
#define MAX_K 4096
static uint32_t concurrent = 512;
#define TENANTS 16

/* MAC modes: none (baseline), verified by the table (key passed to rtci_reasm_insert), or by
 * the caller with rtci_auth_verify on the completed frame. */
enum { MAC_NONE, MAC_TABLE, MAC_CALLER, MAC_MODES };
static const char *const mac_names[MAC_MODES] = { "none", "table", "caller" };

struct device {
	uint8_t key[32];
	uint64_t next_seq;
	struct rtci_auth_replay win;
};

struct dgram {
	uint8_t *p;
	uint32_t len;
};

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int quota(void *ctx, uint32_t tenant, struct rtci_reasm_quota *q)
{
	(void)ctx;
	if (tenant >= TENANTS)
		return -1;
	q->max_frames = 1u << 20;
	q->max_bytes = 1ull << 40;
	return 0;
}

struct run_result {
	double seconds; /* thread CPU time in the timed sections */
	uint64_t fragments, bytes, frames_ok, frames_bad, drops;
};

/* Static so the big buffers are allocated once. */
static uint8_t *batch_mem;     /* MAX_K * MAX_FRAGS datagrams */
static struct dgram *order;
static uint16_t lens[MAX_K][MAX_FRAGS];
static uint8_t *content;       /* frame bytes are taken from here */
#define CONTENT_LEN (4u << 20)

static double hz; /* TSC rate: converts CPU seconds to reference cycles */
/* Devices take turns in a random order (a fixed permutation, continued across runs), so
 * per-device state is touched all over the device table and no device has two frames in
 * one batch when K <= D. */
static uint32_t *perm, next_dev;

static int run_once(struct device *devs, uint32_t ndev, uint64_t frames, int mac,
		    struct run_result *res)
{
	uint32_t k = ndev < concurrent ? ndev : concurrent;
	struct rtci_reasm_config cfg = {
		.max_frames = 2 * k, .arena_bytes = (size_t)2 * k * 64 * 1024,
		.max_frame_len = MAX_FRAME, .max_inflight_per_device = 4,
		.max_tenants = TENANTS, .ttl = 100 * 1000000ull, .quota = quota,
	};
	struct rtci_reasm *t = NULL;
	int err = rtci_reasm_create(&cfg, &t);
	if (err < 0) {
		fprintf(stderr, "reasm create: %s\n", rtci_strerror(err));
		return err;
	}
	memset(res, 0, sizeof(*res));
	for (uint32_t d = 0; d < ndev; d++)
		rtci_auth_replay_init(&devs[d].win);

	static struct rtci_proto_datagram dg[MAX_FRAGS];
	uint64_t done = 0, now = 0;
	long nfr[MAX_K];

	while (done < frames) {
		/* Generate K frames from the next K devices, fragment them, interleave. */
		uint32_t kk = (uint32_t)(frames - done < k ? frames - done : k);
		size_t n = 0;
		long maxn = 0;
		for (uint32_t i = 0; i < kk; i++) {
			uint32_t d = perm[next_dev];
			next_dev = (next_dev + 1) % ndev;
			size_t len = MIN_FRAME + rng() % (MAX_FRAME - MIN_FRAME + 1);
			size_t off = rng() % (CONTENT_LEN - len);
			struct rtci_proto_frame_info info = {
				.tenant_id = d % TENANTS, .device_id = d, .seq = devs[d].next_seq++,
				.setup_id = 3, .capture_us = now / 1000,
			};
			for (long j = 0; j < MAX_FRAGS; j++)
				dg[j] = (struct rtci_proto_datagram){
					batch_mem + ((size_t)i * MAX_FRAGS + (size_t)j) * RTCI_PROTO_MAX_DATAGRAM,
					RTCI_PROTO_MAX_DATAGRAM, 0 };
			nfr[i] = rtci_proto_fragment(&info, content + off, len, FRAG, devs[d].key, dg,
						     MAX_FRAGS);
			if (nfr[i] < 0)
				return (int)nfr[i];
			if (nfr[i] > maxn)
				maxn = nfr[i];
			for (long j = 0; j < nfr[i]; j++)
				lens[i][j] = (uint16_t)dg[j].len;
		}
		for (long j = 0; j < maxn; j++)
			for (uint32_t i = 0; i < kk; i++)
				if (j < nfr[i]) {
					uint8_t *p = batch_mem +
						     ((size_t)i * MAX_FRAGS + (size_t)j) * RTCI_PROTO_MAX_DATAGRAM;
					order[n++] = (struct dgram){ p, lens[i][j] };
				}

		/* Timed: the receive path. */
		double t0 = rtci_thread_cpu_s();
		for (size_t i = 0; i < n; i++) {
			struct rtci_proto_msg m;
			struct rtci_reasm_frame *f;

			res->bytes += order[i].len;
			if (rtci_proto_decode(order[i].p, order[i].len, &m) < 0 ||
			    m.hdr.device_id >= ndev || m.hdr.tenant_id != m.hdr.device_id % TENANTS) {
				res->drops++;
				continue;
			}
			struct device *dv = &devs[m.hdr.device_id];
			if (rtci_auth_replay_check(&dv->win, m.hdr.seq) < 0) {
				res->drops++;
				continue;
			}
			int r = rtci_reasm_insert(t, &m, mac == MAC_TABLE ? dv->key : NULL, now, &f);
			if (r < 0) {
				res->drops++;
				continue;
			}
			if (r == 1) {
				if (mac != MAC_CALLER ||
				    rtci_auth_verify(dv->key, &f->hdr, f->data, f->len, f->tag) == 0) {
					rtci_auth_replay_accept(&dv->win, f->hdr.seq);
					res->frames_ok++;
				} else {
					res->frames_bad++;
				}
				rtci_reasm_release(t, f);
			}
		}
		res->seconds += rtci_thread_cpu_s() - t0;
		res->fragments += n;
		done += kk;
		now += 1000000; /* 1 ms per batch */
	}
	rtci_reasm_destroy(t);
	return 0;
}

/* Raw MAC speeds over one 64 KB buffer (thread CPU time), for the choice documented in
 * docs/protocol.md. "poly1305-1400" feeds the same bytes in 1,400-byte pieces, as the
 * reassembly table does; "aes256gcm-gmac" authenticates the buffer as associated data.
 * "rtci_poly1305" is the gateway's one-shot tag (poly1305.h: libcrypto when built with it);
 * the "-4k" rows cover the same bytes as 16 messages of 4 KB (bench/ingest's frames). */
static void primitives(FILE *csv)
{
	static uint8_t buf[65536];
	uint8_t key[32] = { 1 }, tag[64], nonce[12] = { 0 };
	const int reps = 2000;
	const char *names[] = { "poly1305", "poly1305-1400", "blake2b-keyed", "hmac-sha256",
				"hmac-sha512256", "aes256gcm-gmac", "rtci_poly1305", "poly1305-4k",
				"rtci_poly1305-4k" };
	const int nalg = (int)(sizeof(names) / sizeof(names[0]));
	crypto_aead_aes256gcm_state gcm;
	int have_gcm = crypto_aead_aes256gcm_is_available();

	if (have_gcm)
		crypto_aead_aes256gcm_beforenm(&gcm, key);
	randombytes_buf(buf, sizeof(buf));
	printf("rtci_poly1305: %s\n", rtci_poly1305_backend());
	for (int alg = 0; alg < nalg; alg++) {
		double v[5];
		if (alg == 5 && !have_gcm) {
			printf("primitive %-15s not available on this CPU\n", names[alg]);
			continue;
		}
		for (int r = 0; r < 5; r++) {
			double t0 = rtci_thread_cpu_s();
			for (int i = 0; i < reps; i++) {
				crypto_onetimeauth_state st;
				unsigned long long ml;

				buf[0] = (uint8_t)i;
				switch (alg) {
				case 0: crypto_onetimeauth(tag, buf, sizeof(buf), key); break;
				case 1:
					crypto_onetimeauth_init(&st, key);
					for (size_t o = 0; o < sizeof(buf); o += 1400)
						crypto_onetimeauth_update(&st, buf + o,
							sizeof(buf) - o < 1400 ? sizeof(buf) - o : 1400);
					crypto_onetimeauth_final(&st, tag);
					break;
				case 2: crypto_generichash(tag, 16, buf, sizeof(buf), key, 32); break;
				case 3: crypto_auth_hmacsha256(tag, buf, sizeof(buf), key); break;
				case 4: crypto_auth_hmacsha512256(tag, buf, sizeof(buf), key); break;
				case 6: rtci_poly1305(key, buf, 48, buf + 48, sizeof(buf) - 48, tag); break;
				case 7:
					for (size_t o = 0; o < sizeof(buf); o += 4096)
						crypto_onetimeauth(tag, buf + o, 4096, key);
					break;
				case 8:
					for (size_t o = 0; o < sizeof(buf); o += 4096)
						rtci_poly1305(key, buf + o, 48, buf + o + 48, 4096 - 48, tag);
					break;
				default:
					crypto_aead_aes256gcm_encrypt_detached_afternm(tag + 32, tag, &ml, NULL, 0,
						buf, sizeof(buf), NULL, nonce, &gcm);
					break;
				}
			}
			v[r] = (double)reps * sizeof(buf) / (rtci_thread_cpu_s() - t0) / 1e9;
		}
		double m = bench_median(v, 5);
		printf("primitive %-15s %6.2f GB/s = %5.2f cycles/byte (median of 5, 64 KB)\n",
		       names[alg], m, hz / (m * 1e9));
		if (csv)
			fprintf(csv, "primitive,%s,0,0,%s,-1,0,0,0,%.3f\n", names[alg], names[alg],
				m * 8);
	}
}

int main(int argc, char **argv)
{
	uint32_t devlist[8] = { 1000, 100000 };
	int ndl = 2, runs = 5, prim = 0;
	uint64_t frames = 20000;
	const char *csv_path = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--devices") && i + 1 < argc) {
			ndl = 0;
			for (char *s = strtok(argv[++i], ","); s && ndl < 8; s = strtok(NULL, ","))
				devlist[ndl++] = (uint32_t)strtoul(s, NULL, 10);
		} else if (!strcmp(argv[i], "--frames") && i + 1 < argc) {
			frames = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
			csv_path = argv[++i];
		} else if (!strcmp(argv[i], "--concurrent") && i + 1 < argc) {
			concurrent = (uint32_t)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--primitives")) {
			prim = 1;
		} else {
			fprintf(stderr, "usage: %s [--devices N[,N...]] [--frames F] [--runs R] "
					"[--concurrent K] [--csv FILE] [--primitives]\n", argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 100 || frames == 0 || concurrent < 1 || concurrent > MAX_K) {
		fprintf(stderr, "bad --runs, --frames or --concurrent\n");
		return 2;
	}
	if (rtci_auth_init() < 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	FILE *csv = NULL;
	if (csv_path) {
		csv = fopen(csv_path, "w");
		if (!csv) {
			perror(csv_path);
			return 1;
		}
		fprintf(csv, "kind,config,devices,frames_interleaved,mac,run,fragments,"
			     "cycles_per_fragment,mpps,gbit_s\n");
	}
	hz = bench_tsc_hz();
	if (prim)
		primitives(csv);

	batch_mem = malloc((size_t)concurrent * MAX_FRAGS * RTCI_PROTO_MAX_DATAGRAM);
	order = malloc((size_t)concurrent * MAX_FRAGS * sizeof(*order));
	content = malloc(CONTENT_LEN);
	if (!batch_mem || !order || !content)
		return 1;
	randombytes_buf(content, CONTENT_LEN);
	printf("TSC %.3f GHz; %" PRIu64 " frames of %d-%d bytes per run, %d-byte fragments, "
	       "%d runs\n", hz / 1e9, frames, MIN_FRAME, MAX_FRAME, FRAG, runs);

	uint8_t tenant_keys[TENANTS][32];
	for (int i = 0; i < TENANTS; i++)
		randombytes_buf(tenant_keys[i], 32);

	for (int di = 0; di < ndl; di++) {
		uint32_t ndev = devlist[di];
		if (ndev == 0)
			continue;
		struct device *devs = calloc(ndev, sizeof(*devs));
		if (!devs)
			return 1;
		free(perm);
		perm = malloc(ndev * sizeof(*perm));
		if (!perm)
			return 1;
		next_dev = 0;
		for (uint32_t d = 0; d < ndev; d++)
			perm[d] = d;
		for (uint32_t d = ndev - 1; d > 0; d--) {
			uint32_t j = (uint32_t)(rng() % (d + 1)), x = perm[d];
			perm[d] = perm[j];
			perm[j] = x;
		}
		for (uint32_t d = 0; d < ndev; d++) {
			rtci_auth_derive_device_key(tenant_keys[d % TENANTS], d % TENANTS, d,
						    devs[d].key);
			devs[d].next_seq = 1;
		}
		double gb[MAC_MODES][100], cpf[MAC_MODES][100], mpps[MAC_MODES][100];
		uint32_t k = ndev < concurrent ? ndev : concurrent;
		/* Modes alternate run by run so drift in machine load hits all alike. */
		for (int r = 0; r < runs; r++)
			for (int mac = 0; mac < MAC_MODES; mac++) {
				struct run_result res;
				int e = run_once(devs, ndev, frames, mac, &res);
				if (e < 0) {
					fprintf(stderr, "run failed: %s\n", rtci_strerror(e));
					return 1;
				}
				if (res.frames_ok != frames || res.frames_bad || res.drops) {
					fprintf(stderr, "unexpected: ok %" PRIu64 " bad %" PRIu64
							" drops %" PRIu64 "\n",
						res.frames_ok, res.frames_bad, res.drops);
					return 1;
				}
				gb[mac][r] = (double)res.bytes * 8 / res.seconds / 1e9;
				cpf[mac][r] = res.seconds * hz / (double)res.fragments;
				mpps[mac][r] = (double)res.fragments / res.seconds / 1e6;
				if (csv)
					fprintf(csv, "run,ingest,%u,%u,%s,%d,%" PRIu64 ",%.1f,%.3f,%.3f\n",
						ndev, k, mac_names[mac], r, res.fragments, cpf[mac][r],
						mpps[mac][r], gb[mac][r]);
			}
		double mg[MAC_MODES], mc[MAC_MODES], mm[MAC_MODES];
		for (int mac = 0; mac < MAC_MODES; mac++) {
			mg[mac] = bench_median(gb[mac], runs);
			mc[mac] = bench_median(cpf[mac], runs);
			mm[mac] = bench_median(mpps[mac], runs);
			if (csv)
				fprintf(csv, "median,ingest,%u,%u,%s,-1,0,%.1f,%.3f,%.3f\n", ndev, k,
					mac_names[mac], mc[mac], mm[mac], mg[mac]);
		}
		for (int mac = 0; mac < MAC_MODES; mac++)
			printf("devices %6u frames-interleaved %4u MAC %-6s %7.1f cycles/fragment "
			       "%6.3f Mpps %6.2f Gbit/s  (x%.2f of no-MAC)\n",
			       ndev, k, mac_names[mac], mc[mac], mm[mac], mg[mac], mg[mac] / mg[0]);
		free(devs);
	}
	if (csv)
		fclose(csv);
	free(batch_mem);
	free(order);
	free(content);
	return 0;
}
