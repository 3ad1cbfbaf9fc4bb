/* rtci-edge: one real camera. Reads frames (Fashion-MNIST IDX or a folder of PGM images), runs
 * the head of the model on oneDNN for the current setup, encodes the partition tensor, and
 * uploads it to the gateway over io_uring UDP (registered buffers; zero-copy above a size
 * threshold); receives results and rate-switch commands with a multishot receive. At the end it
 * prints per-frame latency percentiles, the deadline-hit rate, the setups used and the accuracy
 * against the labels. With a model that has a local exit, the exit runs on every frame after its
 * upload is handed to the uplink and answers frames whose result misses the deadline, and the
 * gateway may choose "answer locally" (setup RTCI_SETUP_LOCAL, docs/edge.md).
 *
 * One thread, one event loop: capture when the next frame is due, send datagrams when the
 * (optionally trace-paced) uplink lets them leave, and listen for the gateway in between. A slow
 * uplink never delays capture: a frame that can no longer leave in time is skipped and
 * counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rtci_error.h"
#include "dataplane/uplink.h"
#include "edge/device.h"
#include "edge/edge_common.h"
#include "edge/frames.h"
#include "edge/local.h"

#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define DEFAULT_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define MAX_FRAMES (10u * 1000u * 1000u)

struct options {
	char gw_ip[64];
	uint16_t gw_port;
	const char *local_ip;
	uint32_t tenant, device, model_id;
	uint8_t tenant_key[32];
	int have_key;
	const char *model, *images, *labels, *csv, *trace;
	double fps, deadline_ms, reserve_ms, duration_s, trace_offset_s, drain_ms, report_s;
	double report_gap_ms;
	uint32_t frames, zc_threshold;
	int setup;
	uint16_t frag_size;
	int quiet;
};

enum rec_status { REC_SKIPPED = 0, REC_SENT, REC_RESULT };
#define SKIP_LOCAL_MODE RTCI_DEV_SKIP_MAX /* not uploaded: the gateway chose local answers */

struct frame_rec {
	uint64_t seq;
	int64_t capture_ns, latency_ns;
	int64_t ready_ns; /* head + encode done: what the gateway's control.head_us stands for */
	uint32_t image;
	int16_t label, setup;
	uint16_t cls;
	uint8_t status, skip, gw_status, hit;
	float score;
	/* the local exit's answer, when it answered the frame (no server result in time) */
	uint8_t local, local_hit;
	uint16_t local_cls;
	int64_t local_latency_ns;
};

struct edge {
	struct options o;
	struct rtci_dev dev;
	struct rtci_uplink *up;
	struct frame_rec *rec;
	uint32_t nrec;
	int64_t t0;
	uint64_t commands_logged;
	/* a redirect or move names another gateway: the uplink is replaced after the receive */
	uint32_t goto_ipv4;
	uint16_t goto_port;
	uint64_t rehellos_seen;   /* after silence the device starts again from --gateway */
	bool away;                /* talking to another gateway than --gateway */
	struct rtci_local *local; /* the model's local exit, NULL: none */
	/* what the frames are made of */
	struct rtci_model *m;
	struct rtci_imageset imgs;
	struct rtci_encoder *enc;
	struct rtci_ctl_trace *trace;
	float *input;
	uint8_t *payloads;        /* one buffer per queue place, plus one */
	size_t fcap;
	uint32_t pbuf;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_rel(const struct edge *e) { return rtci_edge_now_ns() - e->t0; }

/* (Re)opens the uplink to a gateway: --gateway at start and after silence, or where a
 * redirect or a move sends the device. */
static int connect_to(struct edge *e, const char *ip, uint16_t port)
{
	struct rtci_uplink_config uc = {
		.peer_ip = ip, .peer_port = port, .local_ip = e->o.local_ip, .slots = 64,
		.slot_size = 2048, .recv_buffers = 256, .recv_buffer_size = 2048,
		.zc_threshold = e->o.zc_threshold,
	};
	struct rtci_uplink *up;
	int rc = rtci_uplink_create(&uc, &up);
	if (rc < 0) {
		fprintf(stderr, "rtci-edge: uplink to %s:%u: %s\n", ip, port, rtci_strerror(rc));
		return rc;
	}
	rtci_uplink_destroy(e->up);
	e->up = up;
	return 0;
}

/* After a receive: follow a redirect or move, or go back to --gateway after silence. */
static void follow(struct edge *e)
{
	if (e->goto_ipv4) {
		struct in_addr a = { htonl(e->goto_ipv4) };
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		if (!e->o.quiet)
			fprintf(stderr, "rtci-edge: to gateway %s:%u\n", ip, e->goto_port);
		if (connect_to(e, ip, e->goto_port) == 0)
			e->away = true;
		e->goto_ipv4 = 0;
	} else if (e->dev.st.rehellos != e->rehellos_seen) {
		e->rehellos_seen = e->dev.st.rehellos;
		if (e->away && connect_to(e, e->o.gw_ip, e->o.gw_port) == 0)
			e->away = false;
	}
}

/* The local exit on a frame, after its upload (if any) was handed to the uplink: an uploaded
 * frame keeps the answer for the case its result misses the deadline; any other frame is
 * answered now. */
static void run_local(struct edge *e, struct frame_rec *r, const float *input)
{
	uint16_t cls;
	float score;
	if (!e->local || rtci_local_run(e->local, input, &cls, &score) < 0)
		return;
	int64_t ready = now_rel(e);
	if (r->status == REC_SENT) {
		rtci_dev_local_answer(&e->dev, r->seq, cls, ready);
		return;
	}
	r->local = 1;
	r->local_cls = cls;
	r->local_latency_ns = ready - r->capture_ns;
	r->local_hit = (uint8_t)rtci_dev_local_only(&e->dev, r->capture_ns, ready);
}

/* Frames whose deadline passed without an in-time result take the local exit's answer. */
static void expire_local(struct edge *e)
{
	struct rtci_dev_event ev;
	while (rtci_dev_expire(&e->dev, now_rel(e), &ev) == RTCI_DEV_EV_LOCAL) {
		if (ev.user >= e->nrec)
			continue;
		struct frame_rec *r = &e->rec[ev.user];
		r->local = 1;
		r->local_cls = ev.result.class_id;
		r->local_latency_ns = ev.latency_ns;
		r->local_hit = (uint8_t)ev.hit;
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rtci-edge --gateway IP:PORT --tenant ID --device ID --key HEX --model FILE\n"
		"                 [--images IDX|DIR] [--labels IDX] [--fps F] [--deadline-ms D]\n"
		"                 [--frames N | --duration S] [--setup ID] [--trace FILE]\n"
		"                 [--trace-offset-s S] [--csv FILE] [--model-id N] [--frag-size B]\n"
		"                 [--reserve-ms R] [--zc-threshold B] [--local-ip IP] [--drain-ms MS]\n"
		"                 [--report-s S] [--report-gap-ms MS] [--quiet]\n"
		"  --key is the tenant key (64 hex characters); the device key is derived from it.\n"
		"  --images: Fashion-MNIST IDX (.gz) or a folder of PGM images (label = leading digits\n"
		"  of the file name before '_'). --trace: mahimahi or norway bandwidth trace that paces\n"
		"  the uplink (frames that cannot leave by their deadline are skipped).\n"
		"  --report-gap-ms: after a skipped frame, report as soon as this long has passed since\n"
		"  the last report (default 100; 0: only every --report-s).\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	enum { O_GW = 256, O_TENANT, O_DEVICE, O_KEY, O_MODEL, O_IMAGES, O_LABELS, O_FPS,
	       O_DEADLINE, O_FRAMES, O_DURATION, O_SETUP, O_TRACE, O_TRACE_OFF, O_CSV, O_MODEL_ID,
	       O_FRAG, O_RESERVE, O_ZC, O_LOCAL, O_DRAIN, O_QUIET, O_HELP, O_REPORT, O_REPORT_GAP };
	static const struct option lo[] = {
		{ "gateway", 1, 0, O_GW }, { "tenant", 1, 0, O_TENANT }, { "device", 1, 0, O_DEVICE },
		{ "key", 1, 0, O_KEY }, { "model", 1, 0, O_MODEL }, { "images", 1, 0, O_IMAGES },
		{ "labels", 1, 0, O_LABELS }, { "fps", 1, 0, O_FPS }, { "deadline-ms", 1, 0, O_DEADLINE },
		{ "frames", 1, 0, O_FRAMES }, { "duration", 1, 0, O_DURATION }, { "setup", 1, 0, O_SETUP },
		{ "trace", 1, 0, O_TRACE }, { "trace-offset-s", 1, 0, O_TRACE_OFF }, { "csv", 1, 0, O_CSV },
		{ "model-id", 1, 0, O_MODEL_ID }, { "frag-size", 1, 0, O_FRAG },
		{ "reserve-ms", 1, 0, O_RESERVE }, { "zc-threshold", 1, 0, O_ZC },
		{ "local-ip", 1, 0, O_LOCAL }, { "drain-ms", 1, 0, O_DRAIN }, { "quiet", 0, 0, O_QUIET },
		{ "report-s", 1, 0, O_REPORT }, { "report-gap-ms", 1, 0, O_REPORT_GAP },
		{ "help", 0, 0, O_HELP }, { 0, 0, 0, 0 },
	};
	int c, have_gw = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_GW:
			if (rtci_edge_parse_hostport(optarg, o->gw_ip, sizeof(o->gw_ip), &o->gw_port)) {
				fprintf(stderr, "rtci-edge: --gateway: expected IPv4:PORT, got '%s'\n", optarg);
				return -EINVAL;
			}
			have_gw = 1;
			break;
		case O_TENANT: o->tenant = (uint32_t)strtoul(optarg, NULL, 0); break;
		case O_DEVICE: o->device = (uint32_t)strtoul(optarg, NULL, 0); break;
		case O_KEY:
			if (rtci_edge_parse_key(optarg, o->tenant_key)) {
				fprintf(stderr, "rtci-edge: --key: expected 64 hex characters\n");
				return -EINVAL;
			}
			o->have_key = 1;
			break;
		case O_MODEL: o->model = optarg; break;
		case O_IMAGES: o->images = optarg; break;
		case O_LABELS: o->labels = optarg; break;
		case O_FPS: o->fps = strtod(optarg, NULL); break;
		case O_DEADLINE: o->deadline_ms = strtod(optarg, NULL); break;
		case O_FRAMES: o->frames = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_DURATION: o->duration_s = strtod(optarg, NULL); break;
		case O_SETUP: o->setup = atoi(optarg); break;
		case O_TRACE: o->trace = optarg; break;
		case O_TRACE_OFF: o->trace_offset_s = strtod(optarg, NULL); break;
		case O_CSV: o->csv = optarg; break;
		case O_MODEL_ID: o->model_id = (uint32_t)strtoul(optarg, NULL, 0); break;
		case O_FRAG: o->frag_size = (uint16_t)strtoul(optarg, NULL, 10); break;
		case O_RESERVE: o->reserve_ms = strtod(optarg, NULL); break;
		case O_ZC: o->zc_threshold = (uint32_t)strtoul(optarg, NULL, 10); break;
		case O_LOCAL: o->local_ip = optarg; break;
		case O_DRAIN: o->drain_ms = strtod(optarg, NULL); break;
		case O_QUIET: o->quiet = 1; break;
		case O_REPORT: o->report_s = strtod(optarg, NULL); break;
		case O_REPORT_GAP: o->report_gap_ms = strtod(optarg, NULL); break;
		default: usage(); return -EINVAL;
		}
	}
	if (!have_gw || !o->have_key || !o->model || o->tenant == 0) {
		usage();
		fprintf(stderr, "rtci-edge: --gateway, --tenant (> 0), --key and --model are required\n");
		return -EINVAL;
	}
	if (!(o->fps > 0 && o->fps <= 1000) || !(o->deadline_ms > 0) || !(o->reserve_ms >= 0) ||
	    o->reserve_ms >= o->deadline_ms || o->frag_size < 64 || o->frag_size > RTCI_PROTO_MAX_FRAG ||
	    o->duration_s < 0) {
		fprintf(stderr, "rtci-edge: need 0 < fps <= 1000, deadline > reserve >= 0, frag-size in "
			"[64, %d]\n", RTCI_PROTO_MAX_FRAG);
		return -EINVAL;
	}
	if (o->frames == 0 && o->duration_s == 0)
		o->frames = 100;
	if (o->frames == 0) {
		double n = ceil(o->duration_s * o->fps);
		o->frames = n > MAX_FRAMES ? MAX_FRAMES : (uint32_t)n;
	}
	if (o->frames > MAX_FRAMES) {
		fprintf(stderr, "rtci-edge: at most %u frames\n", MAX_FRAMES);
		return -EINVAL;
	}
	return 0;
}

static void on_datagram(void *user, const uint8_t *data, size_t len)
{
	struct edge *e = user;
	struct rtci_dev_event ev;
	int64_t now = now_rel(e);
	switch (rtci_dev_handle(&e->dev, data, len, now, &ev)) {
	case RTCI_DEV_EV_RESULT: {
		if (ev.user >= e->nrec)
			break;
		struct frame_rec *r = &e->rec[ev.user];
		r->status = REC_RESULT;
		r->gw_status = ev.result.status;
		r->cls = ev.result.class_id;
		r->score = ev.result.score;
		r->latency_ns = ev.latency_ns;
		r->hit = (uint8_t)ev.hit;
		break;
	}
	case RTCI_DEV_EV_COMMAND:
		if (!e->o.quiet) {
			/* a plan's steps too: frame plan.from + i uses step i, the last held */
			char steps[8 * RTCI_PROTO_MAX_PLAN] = "";
			for (uint32_t i = 0, o = 0; i < e->dev.plan.n && o < sizeof(steps); i++)
				o += (uint32_t)snprintf(steps + o, sizeof(steps) - o, "%s%u", i ? "," : "",
							e->dev.plan.setup[i]);
			fprintf(stderr, "rtci-edge: command %llu: setup %u from frame %llu (next frame %llu)"
				" plan %llu: %s\n", (unsigned long long)ev.seq, ev.setup,
				(unsigned long long)ev.apply_from, (unsigned long long)e->dev.next_seq,
				(unsigned long long)e->dev.plan.from, steps);
		}
		break;
	case RTCI_DEV_EV_HELLO_ACK:
		if (!e->o.quiet)
			fprintf(stderr, "rtci-edge: session established, setup %u, next frame %llu\n",
				e->dev.setup, (unsigned long long)e->dev.next_seq);
		break;
	case RTCI_DEV_EV_REJECTED:
		fprintf(stderr, "rtci-edge: the gateway rejected the hello\n");
		break;
	case RTCI_DEV_EV_REDIRECT:
	case RTCI_DEV_EV_MOVE:
		e->goto_ipv4 = ev.to_ipv4;
		e->goto_port = ev.to_port;
		break;
	case RTCI_DEV_EV_BUSY:
		fprintf(stderr, "rtci-edge: the gateway is at capacity; hello again in %.1f s\n",
			(double)ev.retry_ns / 1e9);
		break;
	default:
		break;
	}
}

/* Sends every datagram that is due, in rounds of the uplink's slots. */
static void pump(struct edge *e)
{
	uint32_t n = 0, nslots = rtci_uplink_slot_count(e->up), sz = rtci_uplink_slot_size(e->up);
	uint32_t lens[256];
	if (nslots > 256)
		nslots = 256;
	for (;;) {
		long len = rtci_dev_next_datagram(&e->dev, now_rel(e), rtci_uplink_slot(e->up, n), sz);
		if (len > 0)
			lens[n++] = (uint32_t)len;
		if (n && (len <= 0 || n == nslots)) {
			int rc = rtci_uplink_send_slots(e->up, lens, n, 1000);
			if (rc < 0 && rc != -ECONNREFUSED && !e->o.quiet)
				fprintf(stderr, "rtci-edge: send: %s\n", rtci_strerror(rc));
			n = 0;
		}
		if (len <= 0)
			break;
	}
}

static void send_control(struct edge *e, int report)
{
	uint8_t *slot = rtci_uplink_slot(e->up, 0);
	long n = report ? rtci_dev_report(&e->dev, now_rel(e), slot, rtci_uplink_slot_size(e->up))
			: rtci_dev_hello(&e->dev, now_rel(e), slot, rtci_uplink_slot_size(e->up));
	if (n > 0) {
		uint32_t len = (uint32_t)n;
		rtci_uplink_send_slots(e->up, &len, 1, 1000);
	}
}

static void summary(struct edge *e, const struct rtci_model *m)
{
	const struct rtci_dev_stats *st = &e->dev.st;
	double *lat = malloc((e->nrec + 1) * sizeof(double));
	double *ready = malloc((e->nrec + 1) * sizeof(double));
	size_t nready = 0;
	uint64_t setups[RTCI_PROTO_MAX_SETUPS] = { 0 };
	uint64_t n_ok = 0, hits = 0, labelled = 0, labelled_ok = 0, correct = 0, rt_correct = 0;
	uint64_t sent = 0, answered = 0, local = 0, local_hits = 0, local_correct = 0;
	size_t nl = 0;
	for (uint32_t i = 0; i < e->nrec; i++) {
		const struct frame_rec *r = &e->rec[i];
		if (r->label >= 0)
			labelled++;
		if (r->local) {
			bool ok = r->local_hit && r->label >= 0 && r->local_cls == (uint16_t)r->label;
			local++;
			local_hits += r->local_hit;
			local_correct += ok;
			rt_correct += ok;
		}
		if (ready && r->setup >= 0)
			ready[nready++] = (double)r->ready_ns / 1e6;
		if (r->status == REC_SKIPPED)
			continue;
		sent++;
		if (r->setup >= 0 && r->setup < RTCI_PROTO_MAX_SETUPS)
			setups[r->setup]++;
		if (r->status != REC_RESULT)
			continue;
		answered++;
		if (r->gw_status != RTCI_PROTO_RES_OK)
			continue;
		n_ok++;
		if (lat)
			lat[nl++] = (double)r->latency_ns / 1e6;
		hits += r->hit;
		if (r->label >= 0) {
			labelled_ok++;
			correct += r->cls == (uint16_t)r->label;
			rt_correct += r->hit && r->cls == (uint16_t)r->label;
		}
	}
	printf("rtci-edge: tenant %u device %u -> %s:%u, %.1f fps, deadline %.0f ms%s%s\n",
	       e->o.tenant, e->o.device, e->o.gw_ip, e->o.gw_port, e->o.fps, e->o.deadline_ms,
	       e->o.trace ? ", uplink paced by " : "", e->o.trace ? e->o.trace : "");
	printf("frames: captured %u, sent %llu, not sent %llu (local mode %llu, no session %llu, "
	       "queue full %llu, late %llu, encode %llu)\n", e->nrec, (unsigned long long)sent,
	       (unsigned long long)(e->nrec - sent), (unsigned long long)st->local_frames,
	       (unsigned long long)st->skipped[RTCI_DEV_SKIP_NO_SESSION],
	       (unsigned long long)st->skipped[RTCI_DEV_SKIP_QUEUE_FULL],
	       (unsigned long long)st->skipped[RTCI_DEV_SKIP_LATE],
	       (unsigned long long)st->skipped[RTCI_DEV_SKIP_ENCODE]);
	printf("results: %llu (ok %llu, dropped by the gateway %llu, late %llu), no answer %llu\n",
	       (unsigned long long)answered, (unsigned long long)n_ok,
	       (unsigned long long)(answered - n_ok), (unsigned long long)st->results_late,
	       (unsigned long long)(sent - answered));
	printf("deadline-hit rate: %.4f (%llu of %u captured frames)\n",
	       e->nrec ? (double)hits / e->nrec : 0.0, (unsigned long long)hits, e->nrec);
	if (e->local)
		printf("answered locally: %llu (in time %llu, correct %llu: accuracy %.4f); local-mode "
		       "frames %llu, probes %llu\n", (unsigned long long)local,
		       (unsigned long long)local_hits, (unsigned long long)local_correct,
		       local_hits ? (double)local_correct / (double)local_hits : 0.0,
		       (unsigned long long)st->local_frames, (unsigned long long)st->probes);
	if (nl) {
		double p50 = rtci_edge_quantile(lat, nl, 0.50), p90 = rtci_edge_quantile(lat, nl, 0.90);
		double p99 = rtci_edge_quantile(lat, nl, 0.99), mx = lat[nl - 1];
		printf("latency ms (capture -> result): p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", p50,
		       p90, p99, mx);
	}
	if (nready)
		printf("head + encode ms: p50 %.2f  p99 %.2f  (the gateway's control.head_us)\n",
		       rtci_edge_quantile(ready, nready, 0.50), rtci_edge_quantile(ready, nready, 0.99));
	free(ready);
	if (labelled)
		printf("accuracy: real-time %.4f (correct and in time / captured), delivered %.4f "
		       "(correct / %llu answered)\n", (double)rt_correct / (double)labelled,
		       labelled_ok ? (double)correct / (double)labelled_ok : 0.0,
		       (unsigned long long)labelled_ok);
	printf("setups used (frames sent):");
	for (int s = 0; s < RTCI_PROTO_MAX_SETUPS; s++)
		if (setups[s]) {
			const struct rtci_setup *su = rtci_model_setup(m, s);
			printf(" %d(c%d,L%d)=%llu", s, su ? su->c : 0, su ? su->L : 0,
			       (unsigned long long)setups[s]);
		}
	printf("\nsession: hellos %llu, acks %llu, re-hellos %llu; commands %llu, switches %llu; "
	       "reports %llu\n",
	       (unsigned long long)st->hellos_sent, (unsigned long long)st->hello_acks,
	       (unsigned long long)st->rehellos, (unsigned long long)st->commands,
	       (unsigned long long)st->switches, (unsigned long long)st->reports_sent);
	struct rtci_uplink_stats us;
	rtci_uplink_stats(e->up, &us);
	printf("uplink: %llu datagrams, %llu bytes, zero-copy %llu, send errors %llu, received %llu "
	       "(invalid %llu, bad MAC %llu)\n", (unsigned long long)us.sent,
	       (unsigned long long)us.sent_bytes, (unsigned long long)us.sent_zc,
	       (unsigned long long)us.send_errors, (unsigned long long)us.received,
	       (unsigned long long)st->rx_invalid, (unsigned long long)st->rx_bad_mac);
	free(lat);
}

static int write_csv(const struct edge *e)
{
	FILE *f = fopen(e->o.csv, "w");
	if (!f) {
		fprintf(stderr, "rtci-edge: %s: %s\n", e->o.csv, strerror(errno));
		return -errno;
	}
	fprintf(f, "frame,seq,image,label,setup,status,class,gw_status,latency_ms,hit,capture_ms,score,"
		"local_class,local_latency_ms,local_hit\n");
	static const char *const status[] = { "skipped", "sent", "result" };
	for (uint32_t i = 0; i < e->nrec; i++) {
		const struct frame_rec *r = &e->rec[i];
		const char *st = r->status != REC_SKIPPED ? status[r->status]
				 : r->skip == SKIP_LOCAL_MODE ? "local_mode" : rtci_dev_skip_name(r->skip);
		fprintf(f, "%u,%llu,%u,%d,%d,%s,", i, (unsigned long long)r->seq, r->image, r->label,
			r->setup, st);
		if (r->status == REC_RESULT)
			fprintf(f, "%u,%u,%.3f,%u,", r->cls, r->gw_status, (double)r->latency_ns / 1e6, r->hit);
		else
			fprintf(f, ",,,0,");
		fprintf(f, "%.3f,", (double)r->capture_ns / 1e6);
		if (r->status == REC_RESULT)
			fprintf(f, "%.9g", (double)r->score);
		if (r->local)
			fprintf(f, ",%u,%.3f,%u\n", r->local_cls, (double)r->local_latency_ns / 1e6,
				r->local_hit);
		else
			fprintf(f, ",,,\n");
	}
	return fclose(f) == 0 ? 0 : -EIO;
}

static void set_defaults(struct options *o)
{
	o->images = DEFAULT_IMAGES;
	o->labels = DEFAULT_LABELS;
	o->fps = 10;
	o->deadline_ms = 100;
	o->reserve_ms = 5;
	o->frag_size = RTCI_PROTO_DEFAULT_FRAG;
	o->drain_ms = -1;
	o->report_s = 1;
	o->report_gap_ms = 100;
	o->zc_threshold = RTCI_UPLINK_ZC_THRESHOLD_DEFAULT;
}

/* The model, the images, the head and codec, the trace. */
static int load_inputs(struct edge *e)
{
	struct options *o = &e->o;
	char err[512];
	int rc = rtci_model_load(o->model, &e->m, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rtci-edge: %s\n", err);
		return -1;
	}
	if (!rtci_model_setup(e->m, o->setup)) {
		fprintf(stderr, "rtci-edge: --setup %d: the model has setups 0..%d\n", o->setup,
			rtci_model_setup_count(e->m) - 1);
		return -1;
	}
	/* labels only make sense next to IDX images; a PGM folder names its own */
	if ((rc = rtci_frames_load(o->images, o->labels, 0, &e->imgs, err, sizeof(err)))) {
		fprintf(stderr, "rtci-edge: %s\n", err);
		return -1;
	}
	if ((rc = rtci_encoder_create(e->m, &e->enc))) {
		fprintf(stderr, "rtci-edge: head/codec: %s\n", rtci_strerror(rc));
		return -1;
	}
	if (o->trace && (rc = rtci_ctl_trace_load_file(o->trace, RTCI_CTL_TRACE_AUTO, &e->trace, err,
							 sizeof(err)))) {
		fprintf(stderr, "rtci-edge: %s\n", err);
		return -1;
	}
	return 0;
}

/* The device: every setup of the model (the first is the initial one), its local exit. */
static int setup_device(struct edge *e)
{
	struct options *o = &e->o;
	struct rtci_dev_config dc = {
		.tenant_id = o->tenant, .device_id = o->device, .model_id = o->model_id,
		.fps_milli = (uint32_t)lround(o->fps * 1000), .deadline_ns = (int64_t)(o->deadline_ms * 1e6),
		.reserve_ns = (int64_t)(o->reserve_ms * 1e6), .frag_size = o->frag_size,
		.report_ns = o->report_s > 0 ? (int64_t)(o->report_s * 1e9) : -1,
		.report_gap_ns = o->report_gap_ms > 0 ? (int64_t)(o->report_gap_ms * 1e6) : -1,
	};
	rtci_auth_derive_device_key(o->tenant_key, o->tenant, o->device, dc.key);
	int rc;
	if ((rc = rtci_local_create(e->m, &e->local)) < 0 && rc != -ENOENT) {
		fprintf(stderr, "rtci-edge: local exit: %s\n", rtci_strerror(rc));
		return -1;
	}
	dc.local_exit = e->local != NULL;
	dc.probe_setup = (uint16_t)rtci_local_probe_setup(e->m);
	dc.probe_keeps_local = dc.local_exit && rtci_local_probe_keeps_local(e->m);
	int ns = rtci_model_setup_count(e->m);
	dc.setups[dc.n_setups++] = (uint16_t)o->setup;
	for (int s = 0; s < ns && dc.n_setups < RTCI_PROTO_MAX_SETUPS; s++)
		if (s != o->setup)
			dc.setups[dc.n_setups++] = (uint16_t)s;
	e->t0 = rtci_edge_now_ns();
	if ((rc = rtci_dev_init(&e->dev, &dc, 0, rtci_real_us(), e->trace,
				(int64_t)(o->trace_offset_s * 1e9)))) {
		fprintf(stderr, "rtci-edge: device: %s\n", rtci_strerror(rc));
		return -1;
	}
	if (connect_to(e, o->gw_ip, o->gw_port) < 0)
		return -1;
	e->rec = calloc(o->frames, sizeof(*e->rec));
	e->input = malloc(rtci_encoder_input_floats(e->enc) * sizeof(float));
	/* payloads stay put until their frame has left */
	e->fcap = rtci_encoder_max_frame(e->enc);
	e->payloads = malloc((RTCI_DEV_QUEUE + 1) * e->fcap);
	if (!e->rec || !e->input || !e->payloads) {
		fprintf(stderr, "rtci-edge: out of memory\n");
		return -1;
	}
	return 0;
}

/* Captures, encodes and queues one frame (or answers it locally), then runs the local exit. */
static void capture(struct edge *e, int64_t now)
{
	struct frame_rec *r = &e->rec[e->nrec];
	uint32_t img = e->nrec % e->imgs.count;
	*r = (struct frame_rec){ .capture_ns = now, .image = img, .label = e->imgs.labels[img],
				 .setup = -1 };
	uint64_t seq = 0;
	int setup = rtci_dev_frame_begin(&e->dev, now, &seq);
	rtci_frames_input(rtci_model_geometry(e->m), &e->imgs, img, e->input);
	if (setup == RTCI_SETUP_LOCAL) {
		r->seq = seq; /* answered locally, nothing uploaded */
		r->skip = SKIP_LOCAL_MODE;
	} else if (setup >= 0) {
		uint8_t *buf = e->payloads + (size_t)e->pbuf * e->fcap;
		ssize_t len = rtci_encoder_run(e->enc, e->input, setup, buf, e->fcap);
		r->ready_ns = now_rel(e) - now;
		r->seq = seq;
		r->setup = (int16_t)setup;
		int rc;
		if (len < 0) {
			rtci_dev_frame_failed(&e->dev);
			r->skip = RTCI_DEV_SKIP_ENCODE;
		} else if ((rc = rtci_dev_frame_queue(&e->dev, now_rel(e), seq, (uint16_t)setup, now, buf,
						      (uint32_t)len, e->nrec)) == 0) {
			r->status = REC_SENT;
			e->pbuf = (e->pbuf + 1) % (RTCI_DEV_QUEUE + 1);
		} else {
			r->skip = rc == -ETIME ? RTCI_DEV_SKIP_LATE : RTCI_DEV_SKIP_ENCODE;
		}
	} else {
		r->skip = setup == -ENOBUFS ? RTCI_DEV_SKIP_QUEUE_FULL : RTCI_DEV_SKIP_NO_SESSION;
	}
	run_local(e, r, e->input);
	e->nrec++;
}

/* Every uploaded frame answered by the gateway (the local exit's answers do not wait). */
static bool all_answered(const struct edge *e)
{
	for (uint32_t i = 0; i < e->nrec; i++)
		if (e->rec[i].status == REC_SENT && !e->rec[i].local)
			return false;
	return true;
}

/* The earliest of the next capture, departure, hello, report, expiry and the drain's end. */
static int64_t next_wake(const struct edge *e, int64_t next_capture, int64_t drain_until)
{
	int64_t wake = drain_until;
	if (e->nrec < e->o.frames && next_capture < wake)
		wake = next_capture;
	int64_t t[] = { rtci_dev_next_departure(&e->dev), rtci_dev_next_hello(&e->dev),
			rtci_dev_next_report(&e->dev), rtci_dev_next_expiry(&e->dev) };
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i] < wake)
			wake = t[i];
	return wake;
}

/* Captures --frames frames at --fps, sends, receives and follows the gateway until every frame
 * is answered or the drain time is over. */
static void run(struct edge *e)
{
	const struct options *o = &e->o;
	const int64_t period = (int64_t)(1e9 / o->fps);
	int64_t next_capture = 0, drain_until = INT64_MAX;
	for (;;) {
		int64_t now = now_rel(e);
		if (stop && drain_until == INT64_MAX)
			drain_until = now;
		if (rtci_dev_hello_due(&e->dev, now))
			send_control(e, 0);
		if (rtci_dev_report_due(&e->dev, now))
			send_control(e, 1);
		if (e->nrec < o->frames && now >= next_capture && drain_until == INT64_MAX) {
			capture(e, now);
			/* capture keeps its own clock; ticks the loop could not serve are not
			 * made up in a burst */
			next_capture += period;
			if (next_capture < now - period)
				next_capture = now;
			if (e->nrec == o->frames)
				drain_until = now + (int64_t)(o->drain_ms * 1e6);
		}
		pump(e);
		expire_local(e);
		now = now_rel(e);
		if (now >= drain_until)
			break;
		/* all sent: stop as soon as every frame is answered */
		if (drain_until != INT64_MAX && e->dev.q_len == 0 && all_answered(e))
			break;
		int64_t wake = next_wake(e, next_capture, drain_until);
		int timeout_ms = wake <= now ? 0 : (int)((wake - now) / 1000000);
		if (timeout_ms > 100)
			timeout_ms = 100; /* re-check the silence timer and signals */
		/* -ECONNREFUSED while the gateway is down: keep going */
		(void)rtci_uplink_recv(e->up, on_datagram, e, timeout_ms);
		follow(e);
		/* the receive timeout counts whole ms: a shorter wait is a sleep, not a spin */
		if (timeout_ms == 0 && wake > now_rel(e)) {
			int64_t d = wake - now_rel(e);
			struct timespec ts = { (time_t)(d / 1000000000), (long)(d % 1000000000) };
			nanosleep(&ts, NULL);
		}
	}
}

static void edge_free(struct edge *e)
{
	if (e->up)
		rtci_uplink_destroy(e->up);
	rtci_local_destroy(e->local);
	free(e->payloads);
	free(e->input);
	free(e->rec);
	rtci_ctl_trace_destroy(e->trace);
	if (e->enc)
		rtci_encoder_destroy(e->enc);
	rtci_frames_free(&e->imgs);
	if (e->m)
		rtci_model_destroy(e->m);
}

int main(int argc, char **argv)
{
	static struct edge e;
	struct options *o = &e.o;
	set_defaults(o);
	if (parse(argc, argv, o))
		return 2;
	if (o->drain_ms < 0)
		o->drain_ms = 2 * o->deadline_ms + 200;
	if (rtci_auth_init()) {
		fprintf(stderr, "rtci-edge: libsodium failed to initialise\n");
		return 1;
	}
	if (load_inputs(&e) || setup_device(&e)) {
		edge_free(&e);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	run(&e);
	summary(&e, e.m);
	if (o->csv && write_csv(&e) == 0 && !o->quiet)
		fprintf(stderr, "rtci-edge: per-frame records in %s\n", o->csv);
	edge_free(&e);
	return 0;
}
