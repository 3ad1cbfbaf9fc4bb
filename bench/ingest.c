/* Gateway ingest path: DPDK port (net_pcap replaying a capture) against a kernel UDP socket
 * (recvmmsg on loopback), both feeding the same per-datagram work.
 *
 *   rtci-bench-ingest gen --devices N --frame-bytes B -o FILE.pcap
 *       a capture of valid traffic: one authenticated frame per device (tenant 1, keys derived
 *       from the tenant key), fragments of 64 devices interleaved, to 10.99.0.1:47000
 *   rtci-bench-ingest dpdk --pcap FILE --devices N --seconds S [--lcores K]
 *       EAL + net_pcap (infinite_rx) -> rtci_port_rx -> ingest; with K RX lcores (default 1)
 *       the port has K RX queues, each replaying the whole capture, and each lcore has its own
 *       reassembly table over the one shared device table, as in the gateway
 *   rtci-bench-ingest info
 *       which Poly1305 implementation verifies the frames (libcrypto or libsodium)
 *   rtci-bench-ingest kernel --pcap FILE --devices N --seconds S
 *       a sender thread replays the capture's payloads with sendmmsg to 127.0.0.1; the
 *       measured thread receives with recvmmsg (32 per call) -> ingest
 *
 * ingest = rtci_proto_decode, tenant and device lookup in the gateway's table, reassembly with
 * the device key (MAC verified when a frame completes), release. The replay window is left out:
 * the capture loops, so every pass after the first would be dropped by it.
 * Prints one CSV line: mode,fragments,seconds,fragments_per_s,gbit_s,cycles_per_fragment,frames,
 * lcores,gbit_per_cpu_s (fragments and bytes of all lcores together; cycles = the measuring
 * threads' CPU time x the TSC rate, and gbit_per_cpu_s = payload bits per second of that CPU
 * time, so time descheduled by other load on the machine does not count). */
#include "bench_util.h"
#include "gateway/gw.h"

#include "dataplane/poly1305.h"
#include "dataplane/reassembly.h"

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define GW_IP 0x0a630001u /* 10.99.0.1 */
#define GW_PORT 47000
static const uint8_t gw_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x63, 0x01 };
static const uint8_t tenant_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

/* ---- capture ---- */

struct pcap_rec {
	uint32_t ts_sec, ts_usec, caplen, len;
};

static int gen(int devices, int frame_bytes, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return 1;
	uint32_t gh[6] = { 0xa1b2c3d4u, 0x00040002u, 0, 0, 65535, 1 };
	fwrite(gh, 4, 6, f);
	uint8_t *frame = malloc((size_t)frame_bytes);
	for (int i = 0; i < frame_bytes; i++)
		frame[i] = (uint8_t)(i * 131 + 7);
	enum { GROUP = 64, MAXF = 64 };
	static uint8_t dg[GROUP][MAXF][RTCI_PROTO_MAX_DATAGRAM];
	static size_t dlen[GROUP][MAXF];
	long nfr[GROUP];
	uint8_t pkt[RTCI_PROTO_MAX_DATAGRAM + 64];
	long written = 0;
	for (int base = 1; base <= devices; base += GROUP) {
		int n = devices - base + 1 < GROUP ? devices - base + 1 : GROUP;
		long most = 0;
		for (int k = 0; k < n; k++) {
			uint32_t dev = (uint32_t)(base + k);
			uint8_t key[32];
			rtci_auth_derive_device_key(tenant_key, 1, dev, key);
			frame[0] = (uint8_t)dev; /* frames differ per device */
			struct rtci_proto_frame_info info = { .tenant_id = 1, .device_id = dev,
							      .seq = 1, .setup_id = 0,
							      .capture_us = 1 };
			struct rtci_proto_datagram out[MAXF];
			for (int i = 0; i < MAXF; i++)
				out[i] = (struct rtci_proto_datagram){ dg[k][i], sizeof(dg[k][i]), 0 };
			nfr[k] = rtci_proto_fragment(&info, frame, (size_t)frame_bytes,
						     RTCI_PROTO_DEFAULT_FRAG, key, out, MAXF);
			if (nfr[k] < 0) {
				fprintf(stderr, "fragment: %s\n", rtci_strerror((int)nfr[k]));
				return 1;
			}
			for (long i = 0; i < nfr[k]; i++)
				dlen[k][i] = out[i].len;
			most = nfr[k] > most ? nfr[k] : most;
		}
		for (long i = 0; i < most; i++) /* fragment i of every device of the group */
			for (int k = 0; k < n; k++) {
				if (i >= nfr[k])
					continue;
				uint32_t dev = (uint32_t)(base + k);
				uint8_t smac[6] = { 0x02, 0x01, 0, (uint8_t)(dev >> 16), (uint8_t)(dev >> 8),
						    (uint8_t)dev };
				struct rtci_port_peer to = { .ip = GW_IP, .port = GW_PORT };
				memcpy(to.mac, gw_mac, 6);
				int len = rtci_port_build_udp(pkt, sizeof(pkt), smac, 0x0a640000u + dev,
							      (uint16_t)(40000 + dev % 20000), &to,
							      dg[k][i], dlen[k][i]);
				struct pcap_rec r = { 0, 0, (uint32_t)len, (uint32_t)len };
				fwrite(&r, sizeof(r), 1, f);
				fwrite(pkt, 1, (size_t)len, f);
				written++;
			}
	}
	free(frame);
	fclose(f);
	fprintf(stderr, "wrote %ld datagrams of %d devices to %s\n", written, devices, path);
	return 0;
}

/* ---- the measured work ---- */

struct ingest {
	struct gw *gw;
	struct gw_table *table;
	struct rtci_reasm *reasm;
	uint64_t fragments, bytes, frames, errors;
	uint64_t now;
};

static void ingest_one(struct ingest *in, const uint8_t *p, size_t len)
{
	struct rtci_proto_msg msg;
	in->fragments++;
	in->bytes += len;
	if (rtci_proto_decode(p, len, &msg) < 0) {
		in->errors++;
		return;
	}
	struct gw_tenant *tn = gw_table_tenant(in->table, msg.hdr.tenant_id);
	struct gw_device *d = tn ? gw_table_device(in->table, tn->id, msg.hdr.device_id) : NULL;
	if (!d) {
		in->errors++;
		return;
	}
	struct rtci_reasm_frame *fr;
	int rc = rtci_reasm_insert(in->reasm, &msg, d->key, in->now++, &fr);
	if (rc == 1) {
		in->frames++;
		rtci_reasm_release(in->reasm, fr);
	} else if (rc < 0) {
		in->errors++;
	}
}

/* The gateway's device table with every device of the capture active (shared by all lcores). */
static int setup_table(struct ingest *in, int devices)
{
	static struct gw g;
	static struct rtci_gateway_config cfg;
	static struct gw_model md;
	cfg.control.policy = RTCI_POLICY_FIXED;
	cfg.control.horizon = 1;
	g.cfg = &cfg;
	g.nrx = 1;
	/* the controller needs a setup table; one setup is enough here */
	md.table.n = 1;
	md.table.s[0] = (struct rtci_ctl_setup){ .c = 1, .bits = 8, .L = 255, .accuracy = 0.5,
						 .bytes = 1000 };
	g.nmodels = 1;
	g.models = &md;
	struct rtci_metrics_limits lim = { .slots = 2, .series = 4096, .cells = 16384 };
	if (rtci_auth_init() < 0 || rtci_metrics_create(&lim, &g.metrics) < 0)
		return -1;
	g.rx[0].mslot = 1;
	struct rtci_tenants_config *tc = calloc(1, sizeof(*tc));
	struct rtci_config_tenant *t = calloc(1, sizeof(*t));
	tc->count = 1;
	tc->tenants = t;
	t->id = 1;
	snprintf(t->name, sizeof(t->name), "bench");
	memcpy(t->key, tenant_key, 32);
	t->deadline_ms = 100;
	t->fps = 10;
	t->weight = 1;
	t->quota.devices = (uint32_t)devices;
	t->quota.frames_per_s = 10000000;
	t->quota.reassembly_bytes = 1ull << 30;
	t->derive = true;
	t->derive_first = 1;
	t->derive_last = (uint32_t)devices;
	char err[256];
	if (gw_table_build(&g, tc, 1, &in->table, err, sizeof(err)) < 0) {
		fprintf(stderr, "table: %s\n", err);
		return -1;
	}
	struct gw_tenant *tn = gw_table_tenant(in->table, 1);
	for (int d = 1; d <= devices; d++) {
		uint8_t key[32];
		gw_tenant_device_key(tn, (uint32_t)d, key);
		gw_table_activate(&g, in->table, tn, (uint32_t)d, key, 0);
	}
	in->gw = &g;
	return 0;
}

/* One lcore's reassembly table, sized as gateway/pipeline.c sizes it. */
static int setup_reasm(struct ingest *in)
{
	struct rtci_reasm_config rc = { .max_frames = 4096, .arena_bytes = 64u << 20,
					.max_frame_len = 1u << 20, .max_inflight_per_device = 4,
					.max_tenants = 16, .ttl = UINT64_MAX / 4 };
	int e = rtci_reasm_create(&rc, &in->reasm);
	if (e < 0)
		fprintf(stderr, "reassembly table: %s\n", rtci_strerror(e));
	return e;
}

static int setup_ingest(struct ingest *in, int devices)
{
	return setup_table(in, devices) < 0 ? -1 : setup_reasm(in);
}

static void teardown_table(struct ingest *in)
{
	gw_table_free(in->gw, in->table); /* and the tenants config it owns */
	for (uint32_t s = 0; s < in->gw->ntslots; s++)
		free(in->gw->tseries[s].setup);
	rtci_metrics_destroy(in->gw->metrics);
}

static void teardown_ingest(struct ingest *in)
{
	rtci_reasm_destroy(in->reasm);
	teardown_table(in);
}

static void report(const char *mode, const struct ingest *in, double secs, double cpu, double hz,
		   int lcores)
{
	printf("%s,%lu,%.3f,%.0f,%.3f,%.0f,%lu,%d,%.3f\n", mode, (unsigned long)in->fragments, secs,
	       (double)in->fragments / secs, (double)in->bytes * 8 / secs / 1e9,
	       cpu * hz / (double)in->fragments, (unsigned long)in->frames, lcores,
	       (double)in->bytes * 8 / cpu / 1e9);
	if (in->errors)
		fprintf(stderr, "%s: %lu datagrams rejected\n", mode, (unsigned long)in->errors);
}

/* ---- DPDK ---- */

enum { MAX_LCORES = 8 };

/* One RX lcore: its queue, its reassembly table, its counters. */
struct lane {
	struct ingest in;
	struct rtci_port *port;
	uint16_t queue;
	double seconds; /* to measure */
	double wall, cpu; /* measured */
};

static void lane_burst(struct lane *l, struct rtci_port_dgram *d)
{
	uint16_t n = rtci_port_rx(l->port, l->queue, d, 32);
	for (uint16_t i = 0; i < n; i++)
		gw_table_prefetch_slot(l->in.table, d[i].payload, d[i].len);
	for (uint16_t i = 0; i < n; i++)
		gw_table_prefetch_device(l->in.table, d[i].payload, d[i].len);
	for (uint16_t i = 0; i < n; i++)
		ingest_one(&l->in, d[i].payload, d[i].len);
	rtci_port_release(d, n);
}

static int lane_main(void *arg)
{
	struct lane *l = arg;
	struct rtci_port_dgram d[32];
	/* warm-up pass, then the measurement */
	double t0 = rtci_mono_s();
	while (rtci_mono_s() - t0 < 0.3)
		lane_burst(l, d);
	l->in.fragments = l->in.bytes = l->in.frames = l->in.errors = 0;
	t0 = rtci_mono_s();
	double c0 = rtci_thread_cpu_s(), t1;
	do {
		for (int k = 0; k < 64; k++)
			lane_burst(l, d);
		t1 = rtci_mono_s();
	} while (t1 - t0 < l->seconds);
	l->wall = t1 - t0;
	l->cpu = rtci_thread_cpu_s() - c0;
	return 0;
}

static int start_eal(const char *pcap, int lcores)
{
	char vdev[4096], prefix[64], cores[16];
	int o = snprintf(vdev, sizeof(vdev), "net_pcap0,infinite_rx=1");
	for (int q = 0; q < lcores; q++) /* one RX queue per rx_pcap */
		o += snprintf(vdev + o, sizeof(vdev) - (size_t)o, ",rx_pcap=%s", pcap);
	if (o >= (int)sizeof(vdev))
		return -ENAMETOOLONG;
	snprintf(cores, sizeof(cores), "0-%d", lcores - 1);
	snprintf(prefix, sizeof(prefix), "rtci-bench-ingest-%d", (int)getpid());
	char *eal[] = { "rtci-bench-ingest", "-l", cores, "--no-huge", "-m", "2048", "--no-pci",
			"--no-shconf", "--no-telemetry", "--file-prefix", prefix, "--vdev", vdev,
			"--log-level", "lib.eal:warning", NULL };
	return rtci_port_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal);
}

static int run_dpdk(const char *pcap, int devices, double seconds, int lcores)
{
	static struct lane lane[MAX_LCORES];
	if (setup_table(&lane[0].in, devices) < 0)
		return 1;
	int rc = start_eal(pcap, lcores);
	if (rc < 0) {
		fprintf(stderr, "EAL: %s\n", rtci_strerror(rc));
		return 1;
	}
	struct rtci_port_config pc = { .port_id = RTCI_PORT_ANY, .rx_queues = (uint16_t)lcores,
				       .tx_queues = (uint16_t)lcores, .rx_descriptors = 1024,
				       .tx_descriptors = 512, .mbufs = 65535, .mbuf_cache = 256,
				       .ipv4 = GW_IP, .mac_set = true, .udp_port = GW_PORT,
				       .neighbors = 65536 };
	memcpy(pc.mac, gw_mac, 6);
	struct rtci_port *p = NULL;
	if ((rc = rtci_port_create(&pc, &p)) < 0) {
		fprintf(stderr, "port: %s\n", rtci_strerror(rc));
		return 1;
	}
	double hz = bench_tsc_hz();
	for (int q = 0; q < lcores; q++) {
		lane[q].in.gw = lane[0].in.gw;
		lane[q].in.table = lane[0].in.table;
		lane[q].port = p;
		lane[q].queue = (uint16_t)q;
		lane[q].seconds = seconds;
		if (setup_reasm(&lane[q].in) < 0)
			return 1;
	}
	unsigned lc, q = 1;
	RTE_LCORE_FOREACH_WORKER(lc)
		if (q < (unsigned)lcores)
			rte_eal_remote_launch(lane_main, &lane[q++], lc);
	lane_main(&lane[0]);
	rte_eal_mp_wait_lcore();
	struct ingest sum = { 0 };
	double wall = 0, cpu = 0;
	for (int i = 0; i < lcores; i++) {
		sum.fragments += lane[i].in.fragments;
		sum.bytes += lane[i].in.bytes;
		sum.frames += lane[i].in.frames;
		sum.errors += lane[i].in.errors;
		wall = lane[i].wall > wall ? lane[i].wall : wall;
		cpu += lane[i].cpu;
	}
	report(lcores == 1 ? "dpdk_pcap" : "dpdk_pcap_multi", &sum, wall, cpu, hz, lcores);
	struct rtci_port_stats st;
	rtci_port_stats(p, RTCI_PORT_ANY, &st);
	uint64_t drops = 0;
	for (int i = 0; i < RTCI_PORT_DROP_COUNT; i++)
		drops += st.drops[i];
	if (drops)
		fprintf(stderr, "dpdk: %lu packets dropped by the port\n", (unsigned long)drops);
	rtci_port_destroy(p);
	char rundir[PATH_MAX];
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	rtci_port_eal_cleanup();
	rmdir(rundir); /* the EAL leaves its (empty, with --no-shconf) runtime directory behind */
	for (int i = 0; i < lcores; i++)
		rtci_reasm_destroy(lane[i].in.reasm);
	teardown_table(&lane[0].in);
	return 0;
}

/* ---- kernel UDP ---- */

struct payloads {
	uint8_t **p;
	uint16_t *len;
	size_t n;
};

static int load_payloads(const char *pcap, struct payloads *pl)
{
	FILE *f = fopen(pcap, "rb");
	if (!f)
		return -1;
	uint32_t gh[6];
	if (fread(gh, 4, 6, f) != 6)
		return -1;
	size_t cap = 1024;
	pl->p = malloc(cap * sizeof(*pl->p));
	pl->len = malloc(cap * sizeof(*pl->len));
	struct pcap_rec r;
	uint8_t pkt[2048];
	while (fread(&r, sizeof(r), 1, f) == 1 && r.caplen <= sizeof(pkt) &&
	       fread(pkt, 1, r.caplen, f) == r.caplen) {
		if (r.caplen <= RTCI_PORT_HDR_LEN)
			continue;
		if (pl->n == cap) {
			cap *= 2;
			pl->p = realloc(pl->p, cap * sizeof(*pl->p));
			pl->len = realloc(pl->len, cap * sizeof(*pl->len));
		}
		size_t n = r.caplen - RTCI_PORT_HDR_LEN;
		pl->p[pl->n] = malloc(n);
		memcpy(pl->p[pl->n], pkt + RTCI_PORT_HDR_LEN, n);
		pl->len[pl->n++] = (uint16_t)n;
	}
	fclose(f);
	return 0;
}

struct sender {
	struct payloads *pl;
	uint16_t port;
	volatile int stop;
};

static void *send_loop(void *arg)
{
	struct sender *s = arg;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(s->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
		return NULL;
	struct mmsghdr m[32];
	struct iovec iov[32];
	size_t i = 0;
	while (!s->stop) {
		for (int k = 0; k < 32; k++, i = (i + 1) % s->pl->n) {
			iov[k] = (struct iovec){ s->pl->p[i], s->pl->len[i] };
			m[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
		}
		if (sendmmsg(fd, m, 32, 0) < 0)
			usleep(10);
	}
	close(fd);
	return NULL;
}

static int run_kernel(const char *pcap, int devices, double seconds)
{
	struct ingest in = { 0 };
	struct payloads pl = { 0 };
	if (setup_ingest(&in, devices) < 0 || load_payloads(pcap, &pl) < 0 || pl.n == 0)
		return 1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int big = 32 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return 1;
	struct timeval tv = { 0, 100000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sender s = { .pl = &pl, .port = ntohs(a.sin_port) };
	pthread_t th;
	pthread_create(&th, NULL, send_loop, &s);
	double hz = bench_tsc_hz();
	static uint8_t bufs[32][2048];
	struct mmsghdr m[32];
	struct iovec iov[32];
	for (int k = 0; k < 32; k++)
		iov[k] = (struct iovec){ bufs[k], sizeof(bufs[k]) };
	double t0 = rtci_mono_s(), c0 = 0, t1;
	bool measuring = false;
	for (;;) {
		for (int k = 0; k < 32; k++)
			m[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k], .msg_iovlen = 1 } };
		int n = recvmmsg(fd, m, 32, 0, NULL);
		for (int k = 0; k < n; k++) /* the same hints as the DPDK path */
			gw_table_prefetch_slot(in.table, bufs[k], m[k].msg_len);
		for (int k = 0; k < n; k++)
			gw_table_prefetch_device(in.table, bufs[k], m[k].msg_len);
		for (int k = 0; k < n; k++)
			ingest_one(&in, bufs[k], m[k].msg_len);
		t1 = rtci_mono_s();
		if (!measuring && t1 - t0 >= 0.3) { /* warm-up done */
			measuring = true;
			in.fragments = in.bytes = in.frames = in.errors = 0;
			t0 = t1;
			c0 = rtci_thread_cpu_s();
		} else if (measuring && t1 - t0 >= seconds) {
			break;
		}
	}
	report("kernel_recvmmsg", &in, t1 - t0, rtci_thread_cpu_s() - c0, hz, 1);
	s.stop = 1;
	pthread_join(th, NULL);
	close(fd);
	teardown_ingest(&in);
	for (size_t i = 0; i < pl.n; i++)
		free(pl.p[i]);
	free(pl.p);
	free(pl.len);
	return 0;
}

int main(int argc, char **argv)
{
	const char *pcap = NULL, *outp = NULL;
	int devices = 10000, frame_bytes = 4096;
	double seconds = 2;
	int lcores = 1;
	if (argc == 2 && !strcmp(argv[1], "info")) {
		printf("Poly1305: %s\n", rtci_poly1305_backend());
		return 0;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s gen|dpdk|kernel|info [--pcap FILE] [-o FILE] [--devices N] "
				"[--frame-bytes B] [--seconds S] [--lcores K]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--pcap") && i + 1 < argc) pcap = argv[++i];
		else if (!strcmp(argv[i], "-o") && i + 1 < argc) outp = argv[++i];
		else if (!strcmp(argv[i], "--devices") && i + 1 < argc) devices = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--frame-bytes") && i + 1 < argc) frame_bytes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--lcores") && i + 1 < argc) lcores = atoi(argv[++i]);
		else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (devices < 1 || frame_bytes < 1 || lcores < 1 || lcores > MAX_LCORES)
		return 2;
	if (!strcmp(argv[1], "gen") && outp)
		return gen(devices, frame_bytes, outp);
	if (!strcmp(argv[1], "dpdk") && pcap)
		return run_dpdk(pcap, devices, seconds, lcores);
	if (!strcmp(argv[1], "kernel") && pcap)
		return run_kernel(pcap, devices, seconds);
	fprintf(stderr, "missing --pcap or -o\n");
	return 2;
}
