/* TEST FIXTURE, not the gateway: a minimal stand-in for rtci-gateway on loopback, for the edge
 * tools' integration tests. Plain UDP socket, one thread. It answers hellos, reassembles and
 * authenticates frames (dataplane/reassembly), decodes them (inference/codec), runs the tail
 * (inference/engine, batch 1) and sends results; told to, it sends each device one rate-switch
 * command after N frames. Like a gateway that has just restarted, it drops the frames of a
 * device until that device has said hello. Every frame it answers is logged (device, seq, setup, class), so a
 * test can check what the device sent against what it received.
 *
 *   edge-test-responder --tenant ID --key HEX --model FILE [--port P] [--port-file F]
 *       [--log FILE] [--switch-after N --switch-setup S [--switch-ahead K]] [--min-seq S]
 *       [--ack-only 1]
 *
 * --ack-only answers hellos and only counts fragments (no reassembly, no inference): a sink
 * that keeps devices in session, for measuring the device side alone (bench/fleet).
 *
 * Runs until SIGTERM/SIGINT; prints one summary line then. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/rtci_error.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "dataplane/reassembly.h"
#include "inference/codec.h"
#include "inference/engine.h"
#include "inference/model.h"

#define MAX_DEV 16384 /* device table, indexed by device id modulo */

struct devstate {
	uint32_t id;
	uint8_t used, switched, session;
	uint64_t frames, cmd_seq, last_seq;
	struct rtci_auth_replay win;
};

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int parse_key(const char *hex, uint8_t key[32])
{
	if (strlen(hex) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		key[i] = (uint8_t)v;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t tenant = 0, switch_after = 0, switch_ahead = 3, ack_only = 0;
	int switch_setup = -1, port = 0;
	uint64_t min_seq = 0;
	uint8_t tkey[32];
	int have_key = 0;
	const char *model = NULL, *port_file = NULL, *log_path = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--tenant")) tenant = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--key")) have_key = parse_key(v, tkey) == 0;
		else if (!strcmp(a, "--model")) model = v;
		else if (!strcmp(a, "--port")) port = atoi(v);
		else if (!strcmp(a, "--port-file")) port_file = v;
		else if (!strcmp(a, "--log")) log_path = v;
		else if (!strcmp(a, "--switch-after")) switch_after = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--switch-setup")) switch_setup = atoi(v);
		else if (!strcmp(a, "--switch-ahead")) switch_ahead = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--min-seq")) min_seq = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--ack-only")) ack_only = (uint32_t)atoi(v);
		else {
			fprintf(stderr, "edge-test-responder: unknown option %s\n", a);
			return 2;
		}
	}
	if (!tenant || !have_key || !model) {
		fprintf(stderr, "edge-test-responder: --tenant, --key and --model are required\n");
		return 2;
	}
	if (rtci_auth_init())
		return 1;
	char err[512];
	struct rtci_model *m;
	if (rtci_model_load(model, &m, err, sizeof(err))) {
		fprintf(stderr, "edge-test-responder: %s\n", err);
		return 1;
	}
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	const size_t psz = (size_t)g->stem_out * ph * pw;
	struct rtci_engine_config ecfg = { .threads = 1, .max_batch = 1 };
	struct rtci_tail *tail;
	struct rtci_codec *codec;
	struct rtci_codec_config ccfg = { .max_elements = (uint32_t)psz };
	if (rtci_tail_create(m, &ecfg, &tail) || rtci_codec_create(&ccfg, &codec))
		return 1;
	float *wide = malloc(psz * sizeof(float)), *logits = malloc((size_t)g->classes * sizeof(float));
	struct devstate *devs = calloc(MAX_DEV, sizeof(*devs));
	struct rtci_reasm_config rc = { .max_frames = 4096, .arena_bytes = 64u << 20,
		.max_frame_len = (uint32_t)rtci_codec_max_encoded_size((uint32_t)g->stem_out, 65535,
								       (uint32_t)ph, (uint32_t)pw),
		.max_inflight_per_device = 8, .max_tenants = 4, .ttl = 2000000 };
	struct rtci_reasm *reasm = NULL;
	if (!wide || !logits || !devs || rtci_reasm_create(&rc, &reasm) < 0)
		return 1;

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int one = 1, big = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("edge-test-responder: bind");
		return 1;
	}
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	/* before the port file: a test may stop the responder as soon as that file appears */
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (port_file) {
		char tmp[1024];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f)
			return 1;
		fprintf(f, "%u\n", ntohs(a.sin_port));
		fclose(f);
		rename(tmp, port_file); /* appears complete or not at all */
	}
	FILE *log = log_path ? fopen(log_path, "a") : NULL;

	uint64_t n_hello = 0, n_frames = 0, n_bad = 0, n_cmd = 0, n_reports = 0, n_frags = 0;
	uint8_t buf[2048], out[512];
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			continue;
		struct rtci_proto_msg msg;
		if (rtci_proto_decode(buf, (size_t)n, &msg) < 0 || msg.hdr.tenant_id != tenant) {
			n_bad++;
			continue;
		}
		uint8_t dkey[32];
		rtci_auth_derive_device_key(tkey, tenant, msg.hdr.device_id, dkey);
		struct devstate *d = &devs[msg.hdr.device_id % MAX_DEV];
		if (!d->used || d->id != msg.hdr.device_id) {
			memset(d, 0, sizeof(*d));
			d->used = 1;
			d->id = msg.hdr.device_id;
			rtci_auth_replay_init(&d->win);
		}
		struct rtci_proto_frame_info info = { .tenant_id = tenant, .device_id = d->id,
						      .seq = msg.hdr.seq };
		if (msg.hdr.type == RTCI_PROTO_HELLO) {
			if (rtci_auth_verify_msg(dkey, &msg) < 0) {
				n_bad++;
				continue;
			}
			struct rtci_proto_hello_ack ack = { .status = RTCI_PROTO_HELLO_ACCEPTED,
				.initial_setup_id = msg.hdr.setup_id, .max_frag_size = RTCI_PROTO_MAX_FRAG,
				.min_frame_seq = min_seq };
			long l = rtci_proto_encode_hello_ack(out, sizeof(out), &info, &ack, dkey);
			if (l > 0)
				sendto(fd, out, (size_t)l, 0, (struct sockaddr *)&from, fl);
			n_hello++;
			d->session = 1;
			continue;
		}
		if (ack_only && msg.hdr.type != RTCI_PROTO_HELLO) {
			n_frags += msg.hdr.type == RTCI_PROTO_FRAGMENT;
			continue;
		}
		if (msg.hdr.type == RTCI_PROTO_REPORT) {
			if (rtci_auth_verify_msg(dkey, &msg) < 0)
				n_bad++;
			else
				n_reports++;
			continue;
		}
		/* like a restarted gateway: frames of devices that have not said hello are dropped */
		if (msg.hdr.type != RTCI_PROTO_FRAGMENT || !d->session ||
		    rtci_auth_replay_check(&d->win, msg.hdr.seq) < 0) {
			n_bad++;
			continue;
		}
		uint64_t t_arr = rtci_mono_us();
		struct rtci_reasm_frame *f;
		int r = rtci_reasm_insert(reasm, &msg, dkey, t_arr, &f);
		if (r != 1) {
			if (r < 0)
				n_bad++;
			continue;
		}
		rtci_auth_replay_accept(&d->win, f->hdr.seq);
		struct rtci_proto_result res = { .status = RTCI_PROTO_RES_OK };
		int setup = f->hdr.setup_id;
		uint64_t seq = f->hdr.seq;
		if (rtci_codec_decode(codec, f->data, f->len, wide, psz, (uint32_t)g->stem_out, NULL) < 0 ||
		    !rtci_model_setup(m, setup)) {
			res.status = RTCI_PROTO_RES_DECODE_ERROR;
		} else {
			uint64_t t0 = rtci_mono_us();
			if (rtci_tail_run(tail, 1, wide, &setup, logits) < 0) {
				res.status = RTCI_PROTO_RES_DECODE_ERROR;
			} else {
				int idx[1];
				float val[1];
				rtci_topk(logits, g->classes, 1, idx, val);
				double sum = 0;
				for (int k = 0; k < g->classes; k++)
					sum += exp((double)(logits[k] - val[0]));
				res.class_id = (uint16_t)idx[0];
				res.score = (float)(1.0 / sum);
			}
			res.inference_us = (uint32_t)(rtci_mono_us() - t0);
		}
		rtci_reasm_release(reasm, f);
		res.total_us = (uint32_t)(rtci_mono_us() - f->first_time);
		info.seq = seq;
		info.setup_id = (uint16_t)setup;
		long l = rtci_proto_encode_result(out, sizeof(out), &info, &res, dkey);
		if (l > 0)
			sendto(fd, out, (size_t)l, 0, (struct sockaddr *)&from, fl);
		n_frames++;
		d->frames++;
		d->last_seq = seq;
		if (log)
			fprintf(log, "frame,%u,%llu,%d,%u,%u\n", d->id, (unsigned long long)seq, setup,
				res.class_id, res.status);
		if (switch_setup >= 0 && !d->switched && d->frames >= switch_after) {
			struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH,
				.new_setup_id = (uint16_t)switch_setup, .apply_from_seq = seq + switch_ahead };
			info.seq = ++d->cmd_seq;
			l = rtci_proto_encode_command(out, sizeof(out), &info, &c, dkey);
			if (l > 0) {
				/* twice: the device must apply it once */
				sendto(fd, out, (size_t)l, 0, (struct sockaddr *)&from, fl);
				sendto(fd, out, (size_t)l, 0, (struct sockaddr *)&from, fl);
			}
			d->switched = 1;
			n_cmd++;
			if (log)
				fprintf(log, "command,%u,%llu,%d,%llu,0\n", d->id, (unsigned long long)info.seq,
					switch_setup, (unsigned long long)c.apply_from_seq);
		}
		if (log)
			fflush(log);
	}
	printf("edge-test-responder: hellos %llu, frames %llu, commands %llu, reports %llu, "
	       "dropped %llu, fragments counted %llu\n", (unsigned long long)n_hello,
	       (unsigned long long)n_frames, (unsigned long long)n_cmd, (unsigned long long)n_reports,
	       (unsigned long long)n_bad, (unsigned long long)n_frags);
	if (log)
		fclose(log);
	close(fd);
	rtci_reasm_destroy(reasm);
	rtci_tail_destroy(tail);
	rtci_codec_destroy(codec);
	rtci_model_destroy(m);
	free(wide);
	free(logits);
	free(devs);
	return 0;
}
