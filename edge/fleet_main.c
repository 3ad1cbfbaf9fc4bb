/* rtci-fleet: thousands of simulated cameras from one process.
 *
 * Devices are spread over a few threads; each thread owns one io_uring UDP uplink (one socket)
 * shared by its devices, and a min-heap of device wake-up times (next capture, next datagram
 * departure, next hello). Every device runs the same protocol state machine as rtci-edge
 * (edge/device.h) with its own virtual uplink paced by its own bandwidth trace (a file of the
 * trace folder, a seeded random start offset), fps, deadline, tenant and key.
 *
 * Payloads are encoded once at start-up from the real head and codec (a small image set x every
 * setup of the model) and replayed, so a frame costs only pacing, one MAC and the sends. Results
 * are scored against the labels of the replayed images.
 *
 * Output: a status line each second, per-device and total statistics at the end, per-device CSV,
 * per-frame CSV of the first device (--timeline) or of every device (--frames). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "common/rtci_error.h"
#include "dataplane/uplink.h"
#include "edge/device.h"
#include "edge/edge_common.h"
#include "edge/frames.h"
#include "edge/local.h"

#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define DEFAULT_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define MAX_DEVICES 10000
#define MAX_THREADS 64
#define MAX_TENANTS 16
#define MAX_TRACES 1024
#define MAX_LIST 16
#define MAX_SEEDS 8
/* Latency histogram: log-spaced bins from 0.1 ms, ratio 1.05 (about 2.5% resolution), to ~30 s. */
#define HIST_BINS 260
#define HIST_MIN_MS 0.1
#define HIST_RATIO 1.05

struct tenant {
	uint32_t id;
	uint8_t key[32];
};

struct options {
	char gw_ip[64];            /* the first seed, for messages */
	uint16_t gw_port;
	struct sockaddr_in seeds[MAX_SEEDS]; /* gateways a device starts from (and after silence) */
	uint32_t n_seeds;
	const char *local_ip;
	uint32_t devices, threads, first_device, n_images, model_id;
	struct tenant tenants[MAX_TENANTS];
	uint32_t n_tenants;
	double fps[MAX_LIST], deadline_ms[MAX_LIST];
	uint32_t n_fps, n_deadline;
	const char *model, *images, *labels, *traces, *csv, *timeline, *frames;
	double duration_s, reserve_ms, status_s, drain_ms, report_s, report_gap_ms, batch_us;
	uint64_t seed;
	int setup;
	uint16_t frag_size;
	size_t cache_mb;
};

/* One frame of a device whose timeline is written (--timeline, --frames). */
struct tl_entry {
	uint64_t seq;
	double t_ms, link_mbps, latency_ms;
	int setup;        /* -1: skipped */
	int status;       /* 0 skipped, 1 sent (no answer), 2 answered in time, 3 answered late */
};

struct fdev {
	struct rtci_dev dev;
	struct sockaddr_in to;     /* the gateway this device talks to now */
	uint32_t seed;             /* index of the seed it tries now */
	uint32_t unanswered;       /* hellos sent since the last answer */
	uint64_t session_at_us;    /* wall clock of the last accepted hello (re-homing times) */
	uint64_t rehellos_seen;
	struct tl_entry *tl;       /* NULL unless the device's frames are written */
	uint32_t tl_n, tl_cap;
	int64_t period_ns, next_capture_ns;
	uint32_t image;            /* next image of the replay set */
	uint32_t trace;            /* index into the trace list, UINT32_MAX: none */
	int64_t trace_offset_ns;
	uint64_t hits, correct_hits, ok, correct_ok, frames_sent_bytes;
	uint64_t local, local_hits, local_correct; /* answered by the local exit (in time, right) */
	uint32_t hist[HIST_BINS];
	uint32_t setups[RTCI_PROTO_MAX_SETUPS];
};

struct counters { /* for the status line; written by one thread, read by main */
	_Atomic uint64_t captured, sent, results, hits, skipped, rehellos, bytes, active;
	_Atomic uint64_t busy_answers; /* hellos answered "busy" (gateway at capacity) */
	_Atomic int64_t waiting;       /* devices waiting now to hello again after a "busy" */
	_Atomic uint64_t redirects, moves; /* sent to their home gateway; moved off a draining one */
};

struct worker {
	uint32_t index;
	pthread_t th;
	struct fleet *fl;
	struct rtci_uplink *up;
	struct fdev *devs;         /* this thread's devices: global index = local * threads + index */
	uint32_t n;
	int64_t *heap_t;
	uint32_t *heap_d;
	uint32_t heap_n;
	uint32_t lens[256];
	struct sockaddr_in to[256];
	uint32_t pending;          /* datagrams in the uplink slots */
	struct counters c;
	int rc;
};

struct fleet {
	struct options o;
	struct rtci_model *m;
	struct rtci_imageset imgs;
	uint32_t n_setups;
	uint8_t **payload;         /* [image * n_setups + setup] */
	uint32_t *payload_len;
	uint16_t *local_cls;       /* [image]: the local exit's class; NULL: the model has none */
	int64_t local_ns;          /* a local answer is ready this long after capture */
	struct rtci_ctl_trace *traces[MAX_TRACES];
	char *trace_names[MAX_TRACES];
	uint32_t n_traces;
	struct worker *w;
	int64_t t0, end_ns, stop_ns, batch_ns;
};

static volatile sig_atomic_t interrupted;
static void on_signal(int s) { (void)s; interrupted = 1; }

static int64_t now_rel(const struct fleet *f) { return rtci_edge_now_ns() - f->t0; }

/* xorshift64*: seeded, the same on every platform. */
static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static int hist_bin(double ms)
{
	if (ms <= HIST_MIN_MS)
		return 0;
	int b = 1 + (int)(log(ms / HIST_MIN_MS) / log(HIST_RATIO));
	return b >= HIST_BINS ? HIST_BINS - 1 : b;
}

/* Upper edge of a bin, ms. */
static double hist_value(int b) { return HIST_MIN_MS * pow(HIST_RATIO, b); }

static double hist_quantile(const uint32_t *h, double q)
{
	uint64_t n = 0, acc = 0;
	for (int b = 0; b < HIST_BINS; b++)
		n += h[b];
	if (!n)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < HIST_BINS; b++) {
		acc += h[b];
		if (acc >= rank)
			return hist_value(b);
	}
	return hist_value(HIST_BINS - 1);
}

/* ---- min-heap of device wake-up times ---- */

static void heap_push(struct worker *w, int64_t t, uint32_t d)
{
	uint32_t i = w->heap_n++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (w->heap_t[p] <= t)
			break;
		w->heap_t[i] = w->heap_t[p];
		w->heap_d[i] = w->heap_d[p];
		i = p;
	}
	w->heap_t[i] = t;
	w->heap_d[i] = d;
}

static uint32_t heap_pop(struct worker *w)
{
	uint32_t top = w->heap_d[0];
	int64_t t = w->heap_t[--w->heap_n];
	uint32_t d = w->heap_d[w->heap_n], i = 0;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= w->heap_n)
			break;
		if (c + 1 < w->heap_n && w->heap_t[c + 1] < w->heap_t[c])
			c++;
		if (w->heap_t[c] >= t)
			break;
		w->heap_t[i] = w->heap_t[c];
		w->heap_d[i] = w->heap_d[c];
		i = c;
	}
	if (w->heap_n) {
		w->heap_t[i] = t;
		w->heap_d[i] = d;
	}
	return top;
}

/* ---- per device ---- */

static void flush(struct worker *w)
{
	if (!w->pending)
		return;
	rtci_uplink_send_slots_to(w->up, w->lens, w->to, w->pending, 1000); /* failures counted */
	w->pending = 0;
}

static uint8_t *slot(struct worker *w)
{
	if (w->pending == rtci_uplink_slot_count(w->up) || w->pending == 256)
		flush(w);
	return rtci_uplink_slot(w->up, w->pending);
}

static void queue_dgram(struct worker *w, const struct fdev *d, long n)
{
	w->to[w->pending] = d->to;
	w->lens[w->pending++] = (uint32_t)n;
}

/* Seeds in turn: the device's own first, then the next ones when hellos go unanswered. */
static void use_seed(const struct fleet *f, struct fdev *d, uint32_t seed)
{
	d->seed = seed % f->o.n_seeds;
	d->to = f->o.seeds[d->seed];
	d->unanswered = 0;
}

/* Before a hello: after silence a device starts again from its seed; a seed that answered
 * nothing to three hellos is passed over. */
static void choose_gateway(const struct fleet *f, struct fdev *d)
{
	if (d->dev.st.rehellos != d->rehellos_seen) {
		d->rehellos_seen = d->dev.st.rehellos;
		use_seed(f, d, d->seed);
	} else if (d->unanswered >= 3) {
		use_seed(f, d, d->seed + 1);
	}
	d->unanswered++;
}

/* A frame with no server answer to come (not uploaded): the local exit answers it. */
static void local_only(const struct fleet *f, struct fdev *d, int64_t now, uint32_t img)
{
	if (!f->local_cls)
		return;
	int ok = rtci_dev_local_only(&d->dev, now, now + f->local_ns);
	d->local++;
	d->local_hits += (uint64_t)ok;
	d->local_correct += (uint64_t)(ok && f->local_cls[img] == f->imgs.labels[img]);
}

/* Frames whose deadline passed without an in-time result take the local exit's answer. */
static void expire_local(const struct fleet *f, struct fdev *d, int64_t now)
{
	struct rtci_dev_event ev;
	while (rtci_dev_expire(&d->dev, now, &ev) == RTCI_DEV_EV_LOCAL) {
		d->local++;
		d->local_hits += (uint64_t)ev.hit;
		d->local_correct += (uint64_t)(ev.hit && ev.user < f->imgs.count &&
					       ev.result.class_id == f->imgs.labels[ev.user]);
	}
}

static int64_t dev_wake(const struct fleet *f, const struct fdev *d)
{
	int64_t t = d->next_capture_ns;
	if (rtci_dev_next_expiry(&d->dev) < t)
		t = rtci_dev_next_expiry(&d->dev);
	int64_t dep = rtci_dev_next_departure(&d->dev);
	if (dep < t)
		t = dep;
	int64_t rep = rtci_dev_next_report(&d->dev);
	if (rep < t && rep < f->stop_ns)
		t = rep;
	int64_t h = rtci_dev_next_hello(&d->dev);
	if (h < t)
		t = h < 0 ? 0 : h;
	return t;
}

static void dev_service(struct worker *w, struct fdev *d, int64_t now)
{
	struct fleet *f = w->fl;
	if (rtci_dev_hello_due(&d->dev, now)) {
		choose_gateway(f, d);
		uint8_t *s = slot(w);
		long n = rtci_dev_hello(&d->dev, now, s, rtci_uplink_slot_size(w->up));
		if (n > 0)
			queue_dgram(w, d, n);
	}
	if (now >= f->stop_ns)
		d->next_capture_ns = INT64_MAX; /* capture is over: only sends and answers remain */
	if (rtci_dev_report_due(&d->dev, now) && now < f->stop_ns) {
		uint8_t *s = slot(w);
		long n = rtci_dev_report(&d->dev, now, s, rtci_uplink_slot_size(w->up));
		if (n > 0)
			queue_dgram(w, d, n);
	}
	if (now >= d->next_capture_ns && now < f->stop_ns) {
		uint64_t seq;
		atomic_fetch_add_explicit(&w->c.captured, 1, memory_order_relaxed);
		int setup = rtci_dev_frame_begin(&d->dev, now, &seq);
		uint32_t img = d->image;
		d->image = (d->image + 1) % f->imgs.count;
		struct tl_entry *te = NULL;
		if (d->tl && d->tl_n < d->tl_cap) {
			te = &d->tl[d->tl_n++];
			/* the link's capacity over the second around the capture */
			double bps = rtci_pacer_rate(&d->dev.pacer, now - 500000000LL, now + 500000000LL);
			*te = (struct tl_entry){ .seq = setup >= 0 ? seq : 0, .t_ms = (double)now / 1e6,
						 .link_mbps = bps * 8 / 1e6, .latency_ms = -1, .setup = -1 };
		}
		if (setup == RTCI_SETUP_LOCAL) {
			local_only(f, d, now, img); /* the gateway chose local answers */
		} else if (setup >= 0 && (uint32_t)setup < f->n_setups) {
			size_t k = (size_t)img * f->n_setups + (size_t)setup;
			if (rtci_dev_frame_queue(&d->dev, now, seq, (uint16_t)setup, now, f->payload[k],
						 f->payload_len[k], img) == 0) {
				d->setups[setup]++;
				if (te) {
					te->setup = setup;
					te->status = 1;
				}
				/* the exit runs after the upload is handed off (precomputed per image) */
				if (f->local_cls)
					rtci_dev_local_answer(&d->dev, seq, f->local_cls[img], now + f->local_ns);
			} else {
				atomic_fetch_add_explicit(&w->c.skipped, 1, memory_order_relaxed);
				local_only(f, d, now, img);
			}
		} else {
			if (setup >= 0)
				rtci_dev_frame_failed(&d->dev);
			atomic_fetch_add_explicit(&w->c.skipped, 1, memory_order_relaxed);
			local_only(f, d, now, img);
		}
		d->next_capture_ns += d->period_ns;
		if (d->next_capture_ns < now - d->period_ns)
			d->next_capture_ns = now; /* a stalled thread does not burst */
	}
	expire_local(f, d, now);
	for (;;) {
		uint8_t *s = slot(w);
		uint64_t before = d->dev.st.frames_sent;
		long n = rtci_dev_next_datagram(&d->dev, now, s, rtci_uplink_slot_size(w->up));
		if (n <= 0)
			break;
		queue_dgram(w, d, n);
		atomic_fetch_add_explicit(&w->c.bytes, (uint64_t)n, memory_order_relaxed);
		if (d->dev.st.frames_sent != before)
			atomic_fetch_add_explicit(&w->c.sent, 1, memory_order_relaxed);
	}
}

static void on_datagram(void *user, const uint8_t *data, size_t len)
{
	struct worker *w = user;
	struct fleet *f = w->fl;
	struct rtci_proto_msg m;
	if (rtci_proto_decode(data, len, &m) < 0)
		return;
	/* device index: tenants own consecutive blocks of device ids */
	uint32_t per = (f->o.devices + f->o.n_tenants - 1) / f->o.n_tenants, g = UINT32_MAX;
	for (uint32_t t = 0; t < f->o.n_tenants; t++)
		if (f->o.tenants[t].id == m.hdr.tenant_id && m.hdr.device_id >= f->o.first_device &&
		    m.hdr.device_id - f->o.first_device < per)
			g = t * per + (m.hdr.device_id - f->o.first_device);
	if (g >= f->o.devices || g % f->o.threads != w->index)
		return;
	struct fdev *d = &w->devs[g / f->o.threads];
	struct rtci_dev_event ev;
	int64_t now = now_rel(f);
	bool was_busy = d->dev.state == RTCI_DEV_BUSY;
	int kind = rtci_dev_handle(&d->dev, data, len, now, &ev);
	if (was_busy != (d->dev.state == RTCI_DEV_BUSY))
		atomic_fetch_add_explicit(&w->c.waiting, was_busy ? -1 : 1, memory_order_relaxed);
	if (kind == RTCI_DEV_EV_BUSY)
		atomic_fetch_add_explicit(&w->c.busy_answers, 1, memory_order_relaxed);
	if (kind == RTCI_DEV_EV_HELLO_ACK || kind == RTCI_DEV_EV_BUSY || kind == RTCI_DEV_EV_REJECTED)
		d->unanswered = 0;
	if (kind == RTCI_DEV_EV_REDIRECT || kind == RTCI_DEV_EV_MOVE) {
		/* its home gateway, or where a draining one sends it: hello there next */
		d->to.sin_addr.s_addr = htonl(ev.to_ipv4);
		d->to.sin_port = htons(ev.to_port);
		d->unanswered = 0;
		atomic_fetch_add_explicit(kind == RTCI_DEV_EV_MOVE ? &w->c.moves : &w->c.redirects, 1,
					  memory_order_relaxed);
	}
	if (kind == RTCI_DEV_EV_RESULT) {
		atomic_fetch_add_explicit(&w->c.results, 1, memory_order_relaxed);
		if (ev.result.status != RTCI_PROTO_RES_OK)
			return;
		int label = ev.user < f->imgs.count ? f->imgs.labels[ev.user] : -1;
		int correct = label >= 0 && ev.result.class_id == (uint16_t)label;
		d->ok++;
		d->correct_ok += (uint64_t)correct;
		d->hist[hist_bin((double)ev.latency_ns / 1e6)]++;
		for (uint32_t k = d->tl_n; d->tl && k > 0 && k + 256 > d->tl_n; k--)
			if (d->tl[k - 1].seq == ev.seq && d->tl[k - 1].status == 1) {
				d->tl[k - 1].latency_ms = (double)ev.latency_ns / 1e6;
				d->tl[k - 1].status = ev.hit ? 2 : 3;
				break;
			}
		if (ev.hit) {
			d->hits++;
			d->correct_hits += (uint64_t)correct;
			atomic_fetch_add_explicit(&w->c.hits, 1, memory_order_relaxed);
		}
	} else if (kind == RTCI_DEV_EV_HELLO_ACK) {
		d->session_at_us = rtci_real_us();
		if (d->dev.st.hello_acks == 1)
			atomic_fetch_add_explicit(&w->c.active, 1, memory_order_relaxed);
	}
}

static void sleep_until(const struct fleet *f, int64_t t)
{
	int64_t d = t - now_rel(f);
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)(d / 1000000000), (long)(d % 1000000000) };
	nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fleet *f = w->fl;
	for (uint32_t i = 0; i < w->n; i++)
		heap_push(w, dev_wake(f, &w->devs[i]), i);
	uint64_t rehellos_seen = 0;
	for (;;) {
		int64_t now = now_rel(f);
		if (now >= f->end_ns || interrupted)
			break;
		/* events due within the batch window are served together, each at its own time:
		 * fewer system calls, datagrams leave at most batch_ns early */
		int64_t horizon = now + f->batch_ns;
		while (w->heap_n && w->heap_t[0] <= horizon) {
			int64_t te = w->heap_t[0];
			uint32_t i = heap_pop(w);
			struct fdev *d = &w->devs[i];
			uint64_t rh = d->dev.st.rehellos;
			int64_t ts = te > now ? te : now;
			dev_service(w, d, ts);
			if (d->dev.st.rehellos != rh)
				rehellos_seen += d->dev.st.rehellos - rh;
			int64_t t = dev_wake(f, d);
			if (t >= f->stop_ns && rtci_dev_next_departure(&d->dev) == INT64_MAX)
				t = d->dev.state == RTCI_DEV_ACTIVE ? INT64_MAX : t;
			if (t != INT64_MAX)
				heap_push(w, t <= ts ? ts + 1 : t, i);
		}
		flush(w);
		atomic_store_explicit(&w->c.rehellos, rehellos_seen, memory_order_relaxed);
		now = now_rel(f);
		int64_t wake = w->heap_n ? w->heap_t[0] : f->end_ns;
		if (wake > f->end_ns)
			wake = f->end_ns;
		int timeout_ms = wake <= now ? 0 : (int)((wake - now) / 1000000);
		if (timeout_ms > 50)
			timeout_ms = 50;
		/* delivers everything ready once something arrived; the receive timeout counts
		 * whole ms, so a shorter wait is a sleep after taking what is there (no spinning) */
		rtci_uplink_recv(w->up, on_datagram, w, timeout_ms);
		if (timeout_ms == 0 && wake > now)
			sleep_until(f, wake);
	}
	return NULL;
}

/* ---- set-up ---- */

/* "IP:PORT[,IP:PORT...]": the seed gateways; the first is also named in messages. */
static int parse_seeds(const char *arg, struct options *o)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", arg);
	o->n_seeds = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char ip[64];
		uint16_t port;
		if (o->n_seeds == MAX_SEEDS || rtci_edge_parse_hostport(tok, ip, sizeof(ip), &port))
			return -EINVAL;
		struct sockaddr_in *a = &o->seeds[o->n_seeds++];
		memset(a, 0, sizeof(*a));
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
			return -EINVAL;
		if (o->n_seeds == 1) {
			snprintf(o->gw_ip, sizeof(o->gw_ip), "%s", ip);
			o->gw_port = port;
		}
	}
	return o->n_seeds ? 0 : -EINVAL;
}

static int parse_list(const char *s, double *out, uint32_t *n)
{
	*n = 0;
	char *end;
	while (*s && *n < MAX_LIST) {
		double v = strtod(s, &end);
		if (end == s || !(v > 0))
			return -EINVAL;
		out[(*n)++] = v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -EINVAL;
	}
	return *n ? 0 : -EINVAL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rtci-fleet --gateway IP:PORT --tenant ID:KEYHEX [--tenant ...] --model FILE\n"
		"                  [--devices N] [--threads T] [--first-device ID] [--traces DIR|FILE]\n"
		"                  [--fps F[,F...]] [--deadline-ms D[,D...]] [--duration S] [--seed N]\n"
		"                  [--images IDX] [--labels IDX] [--n-images N] [--setup ID] [--csv FILE]\n"
		"                  [--model-id N] [--frag-size B] [--reserve-ms R] [--local-ip IP]\n"
		"                  [--status-s S] [--cache-mb MB] [--timeline FILE] [--frames FILE]\n"
		"                  [--report-s S] [--report-gap-ms MS] [--batch-us US]\n"
		"  Devices of tenant t get ids first-device.. in a block of devices/tenants; each\n"
		"  device key is derived from its tenant key. Lists (fps, deadline) are used round robin.\n"
		"  --timeline: per-frame CSV of the first device (link rate, setup, latency).\n"
		"  --frames: the same for every device, one file (column device: its index).\n"
		"  --report-s: seconds between a device's reports (default 1; 0: none).\n"
		"  --report-gap-ms: after a skipped frame, report as soon as this long has passed since\n"
		"  the last report (default 100; 0: only every --report-s).\n"
		"  --batch-us: events due within this window are served together (default 500).\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	enum { O_GW = 256, O_TENANT, O_MODEL, O_DEVICES, O_THREADS, O_FIRST, O_TRACES, O_FPS,
	       O_DEADLINE, O_DURATION, O_SEED, O_IMAGES, O_LABELS, O_NIMG, O_SETUP, O_CSV, O_MODEL_ID,
	       O_FRAG, O_RESERVE, O_LOCAL, O_STATUS, O_CACHE, O_DRAIN, O_TIMELINE, O_REPORT, O_BATCH,
	       O_REPORT_GAP, O_FRAMES };
	static const struct option lo[] = {
		{ "gateway", 1, 0, O_GW }, { "tenant", 1, 0, O_TENANT }, { "model", 1, 0, O_MODEL },
		{ "devices", 1, 0, O_DEVICES }, { "threads", 1, 0, O_THREADS },
		{ "first-device", 1, 0, O_FIRST }, { "traces", 1, 0, O_TRACES }, { "fps", 1, 0, O_FPS },
		{ "deadline-ms", 1, 0, O_DEADLINE }, { "duration", 1, 0, O_DURATION },
		{ "seed", 1, 0, O_SEED }, { "images", 1, 0, O_IMAGES }, { "labels", 1, 0, O_LABELS },
		{ "n-images", 1, 0, O_NIMG }, { "setup", 1, 0, O_SETUP }, { "csv", 1, 0, O_CSV },
		{ "model-id", 1, 0, O_MODEL_ID }, { "frag-size", 1, 0, O_FRAG },
		{ "reserve-ms", 1, 0, O_RESERVE }, { "local-ip", 1, 0, O_LOCAL },
		{ "status-s", 1, 0, O_STATUS }, { "cache-mb", 1, 0, O_CACHE }, { "drain-ms", 1, 0, O_DRAIN },
		{ "timeline", 1, 0, O_TIMELINE }, { "frames", 1, 0, O_FRAMES },
		{ "report-s", 1, 0, O_REPORT },
		{ "report-gap-ms", 1, 0, O_REPORT_GAP },
		{ "batch-us", 1, 0, O_BATCH },
		{ 0, 0, 0, 0 },
	};
	int c, have_gw = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_GW:
			if (parse_seeds(optarg, o)) {
				fprintf(stderr, "rtci-fleet: --gateway: expected IPv4:PORT[,IPv4:PORT...] "
					"(at most %d)\n", MAX_SEEDS);
				return -EINVAL;
			}
			have_gw = 1;
			break;
		case O_TENANT: {
			const char *colon = strchr(optarg, ':');
			struct tenant *t = &o->tenants[o->n_tenants];
			if (o->n_tenants == MAX_TENANTS || !colon ||
			    (t->id = (uint32_t)strtoul(optarg, NULL, 0)) == 0 ||
			    rtci_edge_parse_key(colon + 1, t->key)) {
				fprintf(stderr, "rtci-fleet: --tenant: expected ID:KEYHEX (64 hex), at most %d\n",
					MAX_TENANTS);
				return -EINVAL;
			}
			o->n_tenants++;
			break;
		}
		case O_MODEL: o->model = optarg; break;
		case O_DEVICES: o->devices = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_THREADS: o->threads = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_FIRST: o->first_device = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_TRACES: o->traces = optarg; break;
		case O_FPS:
			if (parse_list(optarg, o->fps, &o->n_fps)) {
				fprintf(stderr, "rtci-fleet: --fps: positive numbers, comma separated\n");
				return -EINVAL;
			}
			break;
		case O_DEADLINE:
			if (parse_list(optarg, o->deadline_ms, &o->n_deadline)) {
				fprintf(stderr, "rtci-fleet: --deadline-ms: positive numbers, comma separated\n");
				return -EINVAL;
			}
			break;
		case O_DURATION: o->duration_s = strtod(optarg, NULL); break;
		case O_SEED: o->seed = strtoull(optarg, NULL, 0); break;
		case O_IMAGES: o->images = optarg; break;
		case O_LABELS: o->labels = optarg; break;
		case O_NIMG: o->n_images = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_SETUP: o->setup = atoi(optarg); break;
		case O_CSV: o->csv = optarg; break;
		case O_MODEL_ID: o->model_id = (uint32_t)strtoul(optarg, NULL, 0); break;
		case O_FRAG: o->frag_size = (uint16_t)strtoul(optarg, NULL, 10); break;
		case O_RESERVE: o->reserve_ms = strtod(optarg, NULL); break;
		case O_LOCAL: o->local_ip = optarg; break;
		case O_STATUS: o->status_s = strtod(optarg, NULL); break;
		case O_CACHE: o->cache_mb = strtoul(optarg, NULL, 10); break;
		case O_DRAIN: o->drain_ms = strtod(optarg, NULL); break;
		case O_TIMELINE: o->timeline = optarg; break;
		case O_FRAMES: o->frames = optarg; break;
		case O_REPORT: o->report_s = strtod(optarg, NULL); break;
		case O_REPORT_GAP: o->report_gap_ms = strtod(optarg, NULL); break;
		case O_BATCH: o->batch_us = strtod(optarg, NULL); break;
		default: usage(); return -EINVAL;
		}
	}
	if (!have_gw || !o->n_tenants || !o->model) {
		usage();
		fprintf(stderr, "rtci-fleet: --gateway, --tenant and --model are required\n");
		return -EINVAL;
	}
	if (o->devices == 0 || o->devices > MAX_DEVICES || o->threads == 0 || o->threads > MAX_THREADS ||
	    o->n_images == 0 || !(o->duration_s > 0) || o->frag_size < 64 ||
	    o->frag_size > RTCI_PROTO_MAX_FRAG || o->reserve_ms < 0) {
		fprintf(stderr, "rtci-fleet: need 1..%d devices, 1..%d threads, n-images >= 1, duration > 0,"
			" frag-size in [64, %d]\n", MAX_DEVICES, MAX_THREADS, RTCI_PROTO_MAX_FRAG);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < o->n_deadline; i++)
		if (o->reserve_ms >= o->deadline_ms[i]) {
			fprintf(stderr, "rtci-fleet: every deadline must exceed --reserve-ms\n");
			return -EINVAL;
		}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_traces(struct fleet *f)
{
	const char *p = f->o.traces;
	char err[512];
	struct stat sb;
	if (!p)
		return 0;
	if (stat(p, &sb) < 0) {
		fprintf(stderr, "rtci-fleet: %s: %s\n", p, strerror(errno));
		return -errno;
	}
	char *names[MAX_TRACES];
	uint32_t n = 0;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(p);
		struct dirent *e;
		while (d && (e = readdir(d)) && n < MAX_TRACES) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", p, e->d_name);
			if (e->d_name[0] == '.' || strstr(e->d_name, "README") || stat(path, &sb) < 0 ||
			    !S_ISREG(sb.st_mode))
				continue;
			names[n++] = strdup(path);
		}
		if (d)
			closedir(d);
		qsort(names, n, sizeof(*names), cmp_str);
	} else {
		names[n++] = strdup(p);
	}
	for (uint32_t i = 0; i < n; i++) {
		int rc = rtci_ctl_trace_load_file(names[i], RTCI_CTL_TRACE_AUTO, &f->traces[f->n_traces],
						  err, sizeof(err));
		if (rc) {
			fprintf(stderr, "rtci-fleet: skipping trace %s\n", err);
			free(names[i]);
			continue;
		}
		f->trace_names[f->n_traces++] = names[i];
	}
	if (!f->n_traces) {
		fprintf(stderr, "rtci-fleet: no usable trace in %s\n", p);
		return -ENOENT;
	}
	return 0;
}

/* The local exit's answer per replayed image, on oneDNN once at start (every device replays
 * the same images); each answer counts as ready local_exit.ms (the file's measured time of the
 * exit's head pass and exit head) after its frame's capture. */
static int build_local(struct fleet *f, float *in)
{
	struct rtci_local *l;
	int rc = rtci_local_create(f->m, &l);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	f->local_cls = calloc(f->imgs.count, sizeof(*f->local_cls));
	rc = f->local_cls ? 0 : -ENOMEM;
	uint32_t correct = 0;
	for (uint32_t i = 0; rc == 0 && i < f->imgs.count; i++) {
		float score;
		rtci_frames_input(rtci_model_geometry(f->m), &f->imgs, i, in);
		rc = rtci_local_run(l, in, &f->local_cls[i], &score);
		correct += f->local_cls[i] == f->imgs.labels[i];
	}
	rtci_local_destroy(l);
	f->local_ns = (int64_t)llround(rtci_model_local_exit(f->m)->ms * 1e6);
	if (rc == 0)
		fprintf(stderr, "rtci-fleet: local exit on %u images: accuracy %.4f, ready %.3f ms after "
			"capture\n", f->imgs.count, (double)correct / f->imgs.count, f->local_ns / 1e6);
	return rc;
}

static int build_cache(struct fleet *f)
{
	struct rtci_encoder *enc;
	int rc = rtci_encoder_create(f->m, &enc);
	if (rc)
		return rc;
	size_t n = (size_t)f->imgs.count * f->n_setups, total = 0;
	f->payload = calloc(n, sizeof(*f->payload));
	f->payload_len = calloc(n, sizeof(*f->payload_len));
	float *in = malloc(rtci_encoder_input_floats(enc) * sizeof(float));
	size_t cap = rtci_encoder_max_frame(enc);
	uint8_t *tmp = malloc(cap);
	if (!f->payload || !f->payload_len || !in || !tmp)
		rc = -ENOMEM;
	for (uint32_t i = 0; rc == 0 && i < f->imgs.count; i++) {
		rtci_frames_input(rtci_model_geometry(f->m), &f->imgs, i, in);
		for (uint32_t s = 0; rc == 0 && s < f->n_setups; s++) {
			ssize_t len = rtci_encoder_run(enc, in, (int)s, tmp, cap);
			if (len < 0) {
				rc = (int)len;
				break;
			}
			total += (size_t)len;
			if (total > f->o.cache_mb << 20) {
				fprintf(stderr, "rtci-fleet: payload cache above %zu MB: use fewer --n-images "
					"or a larger --cache-mb\n", f->o.cache_mb);
				rc = -E2BIG;
				break;
			}
			size_t k = (size_t)i * f->n_setups + s;
			if (!(f->payload[k] = malloc((size_t)len))) {
				rc = -ENOMEM;
				break;
			}
			memcpy(f->payload[k], tmp, (size_t)len);
			f->payload_len[k] = (uint32_t)len;
		}
	}
	free(tmp);
	rtci_encoder_destroy(enc);
	if (rc == 0)
		fprintf(stderr, "rtci-fleet: %u images x %u setups encoded once (%.1f MB)\n", f->imgs.count,
			f->n_setups, (double)total / 1e6);
	if (rc == 0)
		rc = build_local(f, in);
	free(in);
	return rc;
}

static void print_status(struct fleet *f, int64_t now, uint64_t *last_bytes, int64_t *last_t)
{
	uint64_t cap = 0, sent = 0, res = 0, hits = 0, skip = 0, rh = 0, bytes = 0, act = 0, busy = 0;
	int64_t waiting = 0;
	for (uint32_t t = 0; t < f->o.threads; t++) {
		struct counters *c = &f->w[t].c;
		busy += atomic_load_explicit(&c->busy_answers, memory_order_relaxed);
		waiting += atomic_load_explicit(&c->waiting, memory_order_relaxed);
		cap += atomic_load_explicit(&c->captured, memory_order_relaxed);
		sent += atomic_load_explicit(&c->sent, memory_order_relaxed);
		res += atomic_load_explicit(&c->results, memory_order_relaxed);
		hits += atomic_load_explicit(&c->hits, memory_order_relaxed);
		skip += atomic_load_explicit(&c->skipped, memory_order_relaxed);
		rh += atomic_load_explicit(&c->rehellos, memory_order_relaxed);
		bytes += atomic_load_explicit(&c->bytes, memory_order_relaxed);
		act += atomic_load_explicit(&c->active, memory_order_relaxed);
	}
	double dt = (double)(now - *last_t) / 1e9;
	printf("t=%5.1fs devices %llu/%u in session  frames %llu  sent %llu  skipped %llu  results %llu"
	       "  in time %.1f%%  re-hellos %llu  busy %llu (waiting %lld)  uplink %.2f Mbit/s\n",
	       (double)now / 1e9, (unsigned long long)act, f->o.devices, (unsigned long long)cap,
	       (unsigned long long)sent, (unsigned long long)skip, (unsigned long long)res,
	       cap ? 100.0 * (double)hits / (double)cap : 0.0, (unsigned long long)rh,
	       (unsigned long long)busy, (long long)waiting,
	       dt > 0 ? (double)(bytes - *last_bytes) * 8 / dt / 1e6 : 0.0);
	fflush(stdout);
	*last_bytes = bytes;
	*last_t = now;
}

static struct fdev *device_at(struct fleet *f, uint32_t g)
{
	return &f->w[g % f->o.threads].devs[g / f->o.threads];
}

/* Fleet-wide sums of the per-device counters, for the summary. */
struct fleet_totals {
	uint64_t cap, sent, hits, rt_correct, ok, correct_ok, results;
	uint64_t skip[RTCI_DEV_SKIP_MAX], rehellos, switches, commands;
	uint64_t setups[RTCI_PROTO_MAX_SETUPS], bytes, in_session;
	uint64_t busy, busy_devices, waiting, admitted_after_busy, refused;
	uint64_t redirects, moves, local, local_hits, local_correct, local_frames, probes;
	uint32_t hist[HIST_BINS];
};

static void totals_add(struct fleet_totals *t, const struct fdev *d)
{
	const struct rtci_dev_stats *st = &d->dev.st;
	t->cap += st->captured;
	t->sent += st->frames_sent;
	t->hits += d->hits;
	t->rt_correct += d->correct_hits + d->local_correct;
	t->local += d->local;
	t->local_hits += d->local_hits;
	t->local_correct += d->local_correct;
	t->local_frames += st->local_frames;
	t->probes += st->probes;
	t->ok += d->ok;
	t->correct_ok += d->correct_ok;
	t->results += st->results;
	t->rehellos += st->rehellos;
	t->switches += st->switches;
	t->commands += st->commands;
	t->bytes += st->bytes_sent;
	t->in_session += st->hello_acks > 0;
	t->busy += st->busy;
	t->redirects += st->redirects;
	t->moves += st->moves;
	t->busy_devices += st->busy > 0;
	t->waiting += d->dev.state == RTCI_DEV_BUSY;
	t->admitted_after_busy += st->busy > 0 && st->hello_acks > 0;
	t->refused += st->rejected > 0;
	for (int k = 0; k < RTCI_DEV_SKIP_MAX; k++)
		t->skip[k] += st->skipped[k];
	for (uint32_t s = 0; s < RTCI_PROTO_MAX_SETUPS; s++)
		t->setups[s] += d->setups[s];
	for (int b = 0; b < HIST_BINS; b++)
		t->hist[b] += d->hist[b];
}

static FILE *open_device_csv(const struct fleet *f)
{
	FILE *csv = NULL;
	if (f->o.csv && !(csv = fopen(f->o.csv, "w")))
		fprintf(stderr, "rtci-fleet: %s: %s\n", f->o.csv, strerror(errno));
	if (csv)
		fprintf(csv, "tenant,device,trace,trace_offset_s,fps,deadline_ms,captured,sent,"
			"skipped_late,skipped_queue,skipped_no_session,results,results_ok,in_time,"
			"hit_rate,rt_accuracy,delivered_accuracy,p50_ms,p99_ms,mean_payload_bytes,"
			"top_setup,switches,rehellos,state,setups,busy_answers,first_answer_ms,gateway,"
			"redirects,moves,session_at_s,answered_local,local_in_time,local_accuracy,"
			"local_mode_frames,probes\n");
	return csv;
}

/* One device's row of the per-device CSV (columns as in open_device_csv). */
static void write_device_row(FILE *csv, const struct fleet *f, const struct fdev *d)
{
	const struct rtci_dev_stats *st = &d->dev.st;
	uint32_t top = 0;
	uint64_t frames_with_setup = 0, payload = 0;
	for (uint32_t s = 0; s < RTCI_PROTO_MAX_SETUPS; s++) {
		frames_with_setup += d->setups[s];
		if (d->setups[s] > d->setups[top])
			top = s;
		if (s < f->n_setups && d->setups[s])
			payload += (uint64_t)d->setups[s] * f->payload_len[s]; /* image 0 as size proxy */
	}
	fprintf(csv, "%u,%u,%s,%.3f,%.3f,%.1f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%.4f,%.4f,"
		"%.4f,%.2f,%.2f,%.0f,%u,%llu,%llu,%s,",
		d->dev.cfg.tenant_id, d->dev.cfg.device_id,
		d->trace == UINT32_MAX ? "" : f->trace_names[d->trace],
		(double)d->trace_offset_ns / 1e9, (double)d->dev.cfg.fps_milli / 1000.0,
		(double)d->dev.cfg.deadline_ns / 1e6, (unsigned long long)st->captured,
		(unsigned long long)st->frames_sent,
		(unsigned long long)st->skipped[RTCI_DEV_SKIP_LATE],
		(unsigned long long)st->skipped[RTCI_DEV_SKIP_QUEUE_FULL],
		(unsigned long long)st->skipped[RTCI_DEV_SKIP_NO_SESSION],
		(unsigned long long)st->results, (unsigned long long)d->ok,
		(unsigned long long)d->hits,
		st->captured ? (double)d->hits / (double)st->captured : 0.0,
		st->captured ? (double)(d->correct_hits + d->local_correct) /
			       (double)st->captured : 0.0,
		d->ok ? (double)d->correct_ok / (double)d->ok : 0.0,
		hist_quantile(d->hist, 0.5), hist_quantile(d->hist, 0.99),
		frames_with_setup ? (double)payload / (double)frames_with_setup : 0.0, top,
		(unsigned long long)st->switches, (unsigned long long)st->rehellos,
		rtci_dev_state_name(d->dev.state));
	/* frames sent per setup, "id:frames" separated by ';' */
	const char *sep = "";
	for (uint32_t s = 0; s < RTCI_PROTO_MAX_SETUPS; s++)
		if (d->setups[s]) {
			fprintf(csv, "%s%u:%u", sep, s, d->setups[s]);
			sep = ";";
		}
	char gw[INET_ADDRSTRLEN] = "";
	inet_ntop(AF_INET, &d->to.sin_addr, gw, sizeof(gw));
	fprintf(csv, ",%llu,%.3f,%s:%u,%llu,%llu,%.3f,%llu,%llu,%.4f,%llu,%llu\n",
		(unsigned long long)st->busy,
		d->dev.first_answer_ns >= 0 ? (double)d->dev.first_answer_ns / 1e6 : -1.0,
		gw, ntohs(d->to.sin_port), (unsigned long long)st->redirects,
		(unsigned long long)st->moves, (double)d->session_at_us / 1e6,
		(unsigned long long)d->local, (unsigned long long)d->local_hits,
		d->local_hits ? (double)d->local_correct / (double)d->local_hits : 0.0,
		(unsigned long long)st->local_frames, (unsigned long long)st->probes);
}

static void print_frames(const struct fleet *f, const struct fleet_totals *t)
{
	printf("rtci-fleet summary: %u devices (%llu in session), %u threads, %.1f s, traces: %s\n",
	       f->o.devices, (unsigned long long)t->in_session, f->o.threads, f->o.duration_s,
	       f->o.traces ? f->o.traces : "none (unlimited uplink)");
	printf("frames: captured %llu, sent %llu, skipped: late %llu, queue full %llu, no session %llu\n",
	       (unsigned long long)t->cap, (unsigned long long)t->sent,
	       (unsigned long long)t->skip[RTCI_DEV_SKIP_LATE],
	       (unsigned long long)t->skip[RTCI_DEV_SKIP_QUEUE_FULL],
	       (unsigned long long)t->skip[RTCI_DEV_SKIP_NO_SESSION]);
	printf("results: %llu (ok %llu), delivered by deadline %llu: deadline-hit rate %.4f\n",
	       (unsigned long long)t->results, (unsigned long long)t->ok, (unsigned long long)t->hits,
	       t->cap ? (double)t->hits / (double)t->cap : 0.0);
	if (f->local_cls)
		printf("answered locally: %llu (in time %llu, correct %llu: accuracy %.4f); local-mode "
		       "frames %llu, probes %llu\n", (unsigned long long)t->local,
		       (unsigned long long)t->local_hits, (unsigned long long)t->local_correct,
		       t->local_hits ? (double)t->local_correct / (double)t->local_hits : 0.0,
		       (unsigned long long)t->local_frames, (unsigned long long)t->probes);
	printf("accuracy: real-time %.4f (correct and in time, server or local / captured), delivered "
	       "%.4f (correct / answered by the server)\n",
	       t->cap ? (double)t->rt_correct / (double)t->cap : 0.0,
	       t->ok ? (double)t->correct_ok / (double)t->ok : 0.0);
	printf("latency ms (capture -> result, answered frames): p50 %.2f  p99 %.2f\n",
	       hist_quantile(t->hist, 0.5), hist_quantile(t->hist, 0.99));
}

static void print_sessions(const struct fleet *f, const struct fleet_totals *t)
{
	printf("setup distribution (frames sent):");
	for (uint32_t s = 0; s < RTCI_PROTO_MAX_SETUPS; s++)
		if (t->setups[s]) {
			const struct rtci_setup *su = rtci_model_setup(f->m, (int)s);
			printf(" %u(c%d,L%d)=%.1f%%", s, su ? su->c : 0, su ? su->L : 0,
			       100.0 * (double)t->setups[s] / (double)(t->sent ? t->sent : 1));
		}
	printf("\nsession: re-hellos %llu, commands %llu, setup switches %llu; uplink %.1f MB sent\n",
	       (unsigned long long)t->rehellos, (unsigned long long)t->commands,
	       (unsigned long long)t->switches, (double)t->bytes / 1e6);
	printf("cluster: redirects %llu, moves %llu\n", (unsigned long long)t->redirects,
	       (unsigned long long)t->moves);
	printf("admission: busy answers %llu to %llu devices, %llu of them admitted later, %llu still "
	       "waiting at the end; refused (quota or model) %llu\n", (unsigned long long)t->busy,
	       (unsigned long long)t->busy_devices, (unsigned long long)t->admitted_after_busy,
	       (unsigned long long)t->waiting, (unsigned long long)t->refused);
}

/* The per-device CSV (when asked for) and the fleet summary on stdout. */
static void report(struct fleet *f)
{
	static struct fleet_totals t;
	memset(&t, 0, sizeof(t));
	FILE *csv = open_device_csv(f);
	for (uint32_t g = 0; g < f->o.devices; g++) {
		const struct fdev *d = device_at(f, g);
		totals_add(&t, d);
		if (csv)
			write_device_row(csv, f, d);
	}
	if (csv && fclose(csv) == 0)
		fprintf(stderr, "rtci-fleet: per-device statistics in %s\n", f->o.csv);
	print_frames(f, &t);
	print_sessions(f, &t);
}

static const char *const tl_status[] = { "skipped", "sent", "in_time", "late" };

/* One CSV row per frame of device d, each prefixed with `prefix`. */
static void write_frames_of(FILE *out, const struct fleet *f, const struct fdev *d,
			    const char *prefix)
{
	for (uint32_t k = 0; k < d->tl_n; k++) {
		const struct tl_entry *e = &d->tl[k];
		const struct rtci_setup *su = e->setup >= 0 ? rtci_model_setup(f->m, e->setup) : NULL;
		int bits = su ? (int)ceil(log2((double)su->L + 1)) : 0;
		fprintf(out, "%s%.3f,%.4f,%d,%d,%d,%s,", prefix, e->t_ms / 1e3, e->link_mbps,
			e->setup, su ? su->c : 0, bits, tl_status[e->status]);
		if (e->latency_ms >= 0)
			fprintf(out, "%.3f\n", e->latency_ms);
		else
			fprintf(out, "\n");
	}
}

static void write_timeline(struct fleet *f)
{
	struct fdev *d = device_at(f, 0);
	FILE *out = fopen(f->o.timeline, "w");
	if (!out) {
		fprintf(stderr, "rtci-fleet: %s: %s\n", f->o.timeline, strerror(errno));
		return;
	}
	fprintf(out, "# tenant %u device %u trace %s offset %.3f s deadline %.1f ms\n",
		d->dev.cfg.tenant_id, d->dev.cfg.device_id,
		d->trace == UINT32_MAX ? "none" : f->trace_names[d->trace],
		(double)d->trace_offset_ns / 1e9, (double)d->dev.cfg.deadline_ns / 1e6);
	fprintf(out, "t_s,link_mbps,setup,c,bits,status,latency_ms\n");
	write_frames_of(out, f, d, "");
	if (fclose(out) == 0)
		fprintf(stderr, "rtci-fleet: timeline of device %u in %s\n", d->dev.cfg.device_id,
			f->o.timeline);
}

/* Every device's frames; the devices' tenant, id, trace and deadline in comment lines first. */
static void write_frames(struct fleet *f)
{
	FILE *out = fopen(f->o.frames, "w");
	if (!out) {
		fprintf(stderr, "rtci-fleet: %s: %s\n", f->o.frames, strerror(errno));
		return;
	}
	for (uint32_t g = 0; g < f->o.devices; g++) {
		const struct fdev *d = device_at(f, g);
		fprintf(out, "# device %u: tenant %u device %u trace %s offset %.3f s deadline %.1f ms\n",
			g, d->dev.cfg.tenant_id, d->dev.cfg.device_id,
			d->trace == UINT32_MAX ? "none" : f->trace_names[d->trace],
			(double)d->trace_offset_ns / 1e9, (double)d->dev.cfg.deadline_ns / 1e6);
	}
	fprintf(out, "device,t_s,link_mbps,setup,c,bits,status,latency_ms\n");
	for (uint32_t g = 0; g < f->o.devices; g++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "%u,", g);
		write_frames_of(out, f, device_at(f, g), prefix);
	}
	if (fclose(out) == 0)
		fprintf(stderr, "rtci-fleet: frames of %u devices in %s\n", f->o.devices, f->o.frames);
}

static void set_defaults(struct options *o)
{
	o->devices = 20;
	o->threads = 2;
	o->first_device = 1000;
	o->n_images = 64;
	o->fps[0] = 10;
	o->n_fps = 1;
	o->deadline_ms[0] = 100;
	o->n_deadline = 1;
	o->images = DEFAULT_IMAGES;
	o->labels = DEFAULT_LABELS;
	o->duration_s = 10;
	o->reserve_ms = 5;
	o->status_s = 1;
	o->seed = 1;
	o->frag_size = RTCI_PROTO_DEFAULT_FRAG;
	o->cache_mb = 512;
	o->drain_ms = -1;
	o->report_s = 1;
	o->report_gap_ms = 100;
	o->batch_us = 500;
}

/* The model, the images, the traces and the encoded payloads of every image and setup. */
static int load_inputs(struct fleet *f)
{
	struct options *o = &f->o;
	char err[512];
	int rc;
	if ((rc = rtci_model_load(o->model, &f->m, err, sizeof(err)))) {
		fprintf(stderr, "rtci-fleet: %s\n", err);
		return -1;
	}
	f->n_setups = (uint32_t)rtci_model_setup_count(f->m);
	if (f->n_setups > RTCI_PROTO_MAX_SETUPS)
		f->n_setups = RTCI_PROTO_MAX_SETUPS;
	if (o->setup < 0 || (uint32_t)o->setup >= f->n_setups) {
		fprintf(stderr, "rtci-fleet: --setup %d: the model has setups 0..%u\n", o->setup,
			f->n_setups - 1);
		return -1;
	}
	if ((rc = rtci_frames_load(o->images, o->labels, o->n_images, &f->imgs, err, sizeof(err)))) {
		fprintf(stderr, "rtci-fleet: %s\n", err);
		return -1;
	}
	return load_traces(f) || build_cache(f) ? -1 : 0;
}

/* The threads' state and uplinks; devices are spread over them. */
static int make_workers(struct fleet *f)
{
	struct options *o = &f->o;
	int rc;
	f->w = calloc(o->threads, sizeof(*f->w));
	if (!f->w)
		return -1;
	for (uint32_t t = 0; t < o->threads; t++) {
		struct worker *w = &f->w[t];
		w->index = t;
		w->fl = f;
		w->n = (o->devices - t + o->threads - 1) / o->threads;
		w->devs = calloc(w->n, sizeof(*w->devs));
		w->heap_t = malloc(w->n * sizeof(*w->heap_t));
		w->heap_d = malloc(w->n * sizeof(*w->heap_d));
		struct rtci_uplink_config uc = {
			.local_ip = o->local_ip, /* no fixed peer: each device has its gateway */
			.slots = 256, .slot_size = 2048, .recv_buffers = 4096, .recv_buffer_size = 2048,
			.sndbuf = 4u << 20, .rcvbuf = 8u << 20,
		};
		if (!w->devs || !w->heap_t || !w->heap_d) {
			fprintf(stderr, "rtci-fleet: out of memory\n");
			return -1;
		}
		if ((rc = rtci_uplink_create(&uc, &w->up))) {
			fprintf(stderr, "rtci-fleet: uplink to %s:%u: %s\n", o->gw_ip, o->gw_port,
				rtci_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* Devices: tenant blocks of consecutive ids; per device trace, offset, fps, deadline. */
static int make_devices(struct fleet *f)
{
	struct options *o = &f->o;
	uint64_t seed = o->seed * 0x9E3779B97F4A7C15ULL + 1;
	uint32_t per = (o->devices + o->n_tenants - 1) / o->n_tenants;
	int rc;
	f->t0 = rtci_edge_now_ns();
	uint64_t seq_base = rtci_real_us();
	int probe = rtci_local_probe_setup(f->m);
	bool keep_local = rtci_local_probe_keeps_local(f->m);
	for (uint32_t g = 0; g < o->devices; g++) {
		struct fdev *d = device_at(f, g);
		const struct tenant *tn = &o->tenants[g / per];
		double fps = o->fps[g % o->n_fps], dl = o->deadline_ms[g % o->n_deadline];
		struct rtci_dev_config dc = {
			.tenant_id = tn->id, .device_id = o->first_device + g % per, .model_id = o->model_id,
			.fps_milli = (uint32_t)lround(fps * 1000), .deadline_ns = (int64_t)(dl * 1e6),
			.reserve_ns = (int64_t)(o->reserve_ms * 1e6), .frag_size = o->frag_size,
			/* spread the hellos of a restart over the retry time */
			.hello_retry_ns = 400000000LL + (int64_t)(rng(&seed) % 200000000ULL),
			.report_ns = o->report_s > 0 ? (int64_t)(o->report_s * 1e9) : -1,
			.report_gap_ns = o->report_gap_ms > 0 ? (int64_t)(o->report_gap_ms * 1e6) : -1,
		};
		rtci_auth_derive_device_key(tn->key, tn->id, dc.device_id, dc.key);
		dc.local_exit = f->local_cls != NULL;
		dc.probe_setup = (uint16_t)probe;
		dc.probe_keeps_local = dc.local_exit && keep_local;
		dc.setups[dc.n_setups++] = (uint16_t)o->setup;
		for (uint32_t s = 0; s < f->n_setups; s++)
			if ((int)s != o->setup)
				dc.setups[dc.n_setups++] = (uint16_t)s;
		const struct rtci_ctl_trace *tr = NULL;
		d->trace = UINT32_MAX;
		if (f->n_traces) {
			d->trace = (uint32_t)(rng(&seed) % f->n_traces);
			tr = f->traces[d->trace];
			d->trace_offset_ns = (int64_t)(rng(&seed) % (uint64_t)rtci_ctl_trace_period_ns(tr));
		}
		d->period_ns = (int64_t)(1e9 / fps);
		/* captures spread over one period so the fleet does not fire in lockstep */
		d->next_capture_ns = (int64_t)(rng(&seed) % (uint64_t)d->period_ns);
		d->image = (uint32_t)(rng(&seed) % f->imgs.count);
		if ((rc = rtci_dev_init(&d->dev, &dc, 0, seq_base, tr, d->trace_offset_ns))) {
			fprintf(stderr, "rtci-fleet: device %u: %s\n", dc.device_id, rtci_strerror(rc));
			return -1;
		}
		use_seed(f, d, g); /* devices spread over the seeds */
		/* reports spread over their interval too */
		if (o->report_s > 0)
			d->dev.last_report_ns = -(int64_t)(rng(&seed) % (uint64_t)(o->report_s * 1e9 + 1));
	}
	return 0;
}

/* Per-frame records for --timeline (the first device) or --frames (every device). */
static int alloc_timelines(struct fleet *f)
{
	struct options *o = &f->o;
	for (uint32_t g = 0; g < o->devices && (o->timeline || o->frames); g++) {
		if (g > 0 && !o->frames)
			break;
		struct fdev *d = device_at(f, g);
		d->tl_cap = (uint32_t)(o->duration_s * 1e9 / (double)d->period_ns) + 16;
		if (!(d->tl = calloc(d->tl_cap, sizeof(*d->tl)))) {
			fprintf(stderr, "rtci-fleet: out of memory (--frames: %u frames per device)\n",
				d->tl_cap);
			return -1;
		}
	}
	return 0;
}

/* Runs the fleet for the duration and the drain: the threads, the status lines; the CPU time
 * of the run itself (start-up encoding excluded), or -1. */
static double run(struct fleet *f)
{
	struct options *o = &f->o;
	f->t0 = rtci_edge_now_ns();
	f->stop_ns = (int64_t)(o->duration_s * 1e9);
	f->batch_ns = o->batch_us > 0 ? (int64_t)(o->batch_us * 1e3) : 0;
	f->end_ns = f->stop_ns + (int64_t)(o->drain_ms * 1e6);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "rtci-fleet: %u devices on %u threads -> %s:%u for %.1f s\n", o->devices,
		o->threads, o->gw_ip, o->gw_port, o->duration_s);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	for (uint32_t t = 0; t < o->threads; t++)
		if (pthread_create(&f->w[t].th, NULL, worker_main, &f->w[t])) {
			fprintf(stderr, "rtci-fleet: cannot start threads\n");
			return -1;
		}
	uint64_t last_bytes = 0;
	int64_t last_t = 0, next_status = (int64_t)(o->status_s * 1e9);
	while (!interrupted) {
		int64_t now = now_rel(f);
		if (now >= f->end_ns)
			break;
		if (o->status_s > 0 && now >= next_status) {
			print_status(f, now, &last_bytes, &last_t);
			next_status += (int64_t)(o->status_s * 1e9);
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	for (uint32_t t = 0; t < o->threads; t++)
		pthread_join(f->w[t].th, NULL);
	getrusage(RUSAGE_SELF, &ru1);
	return (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
			ru0.ru_stime.tv_sec) +
	       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
			ru0.ru_stime.tv_usec) * 1e-6;
}

/* The cost of a simulated device. */
static void print_cpu(struct fleet *f, double cpu)
{
	struct options *o = &f->o;
	uint64_t frames = 0, dgrams = 0;
	for (uint32_t g = 0; g < o->devices; g++) {
		frames += device_at(f, g)->dev.st.frames_sent;
		dgrams += device_at(f, g)->dev.st.datagrams_sent;
	}
	printf("cpu: %.2f s (user + sys) for %llu frames, %llu datagrams: %.1f us per frame, "
	       "%.2f us per datagram\n", cpu, (unsigned long long)frames, (unsigned long long)dgrams,
	       frames ? cpu * 1e6 / (double)frames : 0.0, dgrams ? cpu * 1e6 / (double)dgrams : 0.0);
}

static void fleet_free(struct fleet *f)
{
	struct options *o = &f->o;
	for (uint32_t t = 0; t < o->threads; t++) {
		rtci_uplink_destroy(f->w[t].up);
		for (uint32_t i = 0; i < f->w[t].n; i++)
			free(f->w[t].devs[i].tl);
		free(f->w[t].devs);
		free(f->w[t].heap_t);
		free(f->w[t].heap_d);
	}
	free(f->w);
	for (size_t k = 0; k < (size_t)f->imgs.count * f->n_setups; k++)
		free(f->payload[k]);
	free(f->payload);
	free(f->payload_len);
	free(f->local_cls);
	for (uint32_t i = 0; i < f->n_traces; i++) {
		rtci_ctl_trace_destroy(f->traces[i]);
		free(f->trace_names[i]);
	}
	rtci_frames_free(&f->imgs);
	rtci_model_destroy(f->m);
}

int main(int argc, char **argv)
{
	static struct fleet F;
	struct fleet *f = &F;
	struct options *o = &f->o;
	set_defaults(o);
	if (parse(argc, argv, o))
		return 2;
	if (o->threads > o->devices)
		o->threads = o->devices;
	if (rtci_auth_init() || load_inputs(f))
		return 1;
	double max_deadline = 0;
	for (uint32_t i = 0; i < o->n_deadline; i++)
		max_deadline = fmax(max_deadline, o->deadline_ms[i]);
	if (o->drain_ms < 0)
		o->drain_ms = 2 * max_deadline + 200;

	if (make_workers(f) || make_devices(f) || alloc_timelines(f))
		return 1;
	double cpu = run(f);
	if (cpu < 0)
		return 1;
	report(f);
	print_cpu(f, cpu);
	if (o->timeline)
		write_timeline(f);
	if (o->frames)
		write_frames(f);
	fleet_free(f);
	return interrupted ? 130 : 0;
}
