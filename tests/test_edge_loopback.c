/* rtci-edge and rtci-fleet on loopback against edge-test-responder, a test fixture that plays
 * the gateway (hello-ack, reassembly, authentication, decode, tail, results, one rate-switch
 * command per device). No root needed.
 *
 * Checks: the classes and scores that come back are those of the same image run in this
 * process through head -> codec -> tail; a rate switch takes effect exactly from the frame the
 * command names; rtci-edge survives a gateway restart; rtci-fleet's statistics add up. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edge/frames.h"
#include "edge/local.h"
#include "inference/codec.h"
#include "inference/engine.h"
#include "inference/model.h"

extern char **environ;

#define KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

static char dir[256], model[300];

static const char *prog(const char *env)
{
	const char *p = getenv(env);
	cr_assert_not_null(p, "%s not set (run through meson test)", env);
	return p;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rtci-edge-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(model, sizeof(model), "%s/model.rtcm", dir);
	struct rtci_geometry g;
	char err[256];
	cr_assert_eq(rtci_geometry_preset("fmnist", &g), 0);
	cr_assert_eq(rtci_model_synth(&g, 11, model, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

/* Starts argv with stdout and stderr into out_path. */
static pid_t spawn(char *const argv[], const char *out_path)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Starts the responder; returns its pid and port. port_in 0: any port. */
static pid_t start_responder(int port_in, int *port, const char *tag, const char *extra1,
			     const char *extra2)
{
	char pf[300], log[300], out[300], ps[16];
	snprintf(pf, sizeof(pf), "%s/port-%s", dir, tag);
	snprintf(log, sizeof(log), "%s/responder.log", dir);
	snprintf(out, sizeof(out), "%s/responder-%s.out", dir, tag);
	snprintf(ps, sizeof(ps), "%d", port_in);
	char *argv[] = { (char *)prog("RTCI_RESPONDER"), "--tenant", "7", "--key", KEY, "--model", model,
			 "--port", ps, "--port-file", pf, "--log", log, "--switch-after", "5",
			 "--switch-setup", (char *)extra1, "--switch-ahead", (char *)extra2, NULL };
	pid_t pid = spawn(argv, out);
	for (int i = 0; i < 600; i++) {
		FILE *f = fopen(pf, "r");
		if (f) {
			cr_assert_eq(fscanf(f, "%d", port), 1);
			fclose(f);
			return pid;
		}
		msleep(20);
	}
	kill(pid, SIGTERM);
	cr_assert_fail("the responder did not start");
	return -1;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	cr_assert_eq(wait_exit(pid), 0);
}

struct row {
	unsigned long long seq;
	int image, label, setup, cls, result;
	double latency, capture, score;
};

static int read_edge_csv(const char *path, struct row *rows, int cap)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	char line[512];
	int n = 0;
	cr_assert_not_null(fgets(line, sizeof(line), f));
	while (n < cap && fgets(line, sizeof(line), f)) {
		struct row *r = &rows[n];
		char status[32];
		memset(r, 0, sizeof(*r));
		/* frame,seq,image,label,setup,status,class,gw_status,latency_ms,hit,capture_ms,score */
		char *tok[12];
		int k = 0;
		for (char *p = line, *s; k < 12 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		cr_assert_geq(k, 11);
		r->seq = strtoull(tok[1], NULL, 10);
		r->image = atoi(tok[2]);
		r->label = atoi(tok[3]);
		r->setup = atoi(tok[4]);
		snprintf(status, sizeof(status), "%s", tok[5]);
		r->result = strcmp(status, "result") == 0;
		r->cls = r->result ? atoi(tok[6]) : -1;
		r->latency = r->result ? atof(tok[8]) : -1;
		r->capture = atof(tok[10]);
		r->score = r->result && k > 11 ? atof(tok[11]) : 0;
		n++;
	}
	fclose(f);
	return n;
}

TestSuite(edge_loopback, .init = setup, .fini = teardown, .timeout = 240);

Test(edge_loopback, results_match_in_process_pipeline_and_switch_applies_from_named_frame)
{
	int port;
	pid_t rp = start_responder(0, &port, "a", "12", "3");
	char gw[64], csv[300], out[300];
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	snprintf(csv, sizeof(csv), "%s/edge.csv", dir);
	snprintf(out, sizeof(out), "%s/edge.out", dir);
	char *argv[] = { (char *)prog("RTCI_EDGE"), "--gateway", gw, "--tenant", "7", "--device", "42",
			 "--key", KEY, "--model", model, "--frames", "24", "--fps", "40",
			 "--deadline-ms", "2000", "--setup", "7", "--csv", csv, NULL };
	cr_assert_eq(wait_exit(spawn(argv, out)), 0);
	stop(rp);

	struct row rows[64];
	int n = read_edge_csv(csv, rows, 64);
	cr_assert_eq(n, 24);

	/* the command the responder sent: "command,device,cmdseq,setup,apply_from,0" */
	char lpath[300], line[256];
	snprintf(lpath, sizeof(lpath), "%s/responder.log", dir);
	FILE *lf = fopen(lpath, "r");
	cr_assert_not_null(lf);
	unsigned long long apply_from = 0;
	int nframes_logged = 0;
	while (fgets(line, sizeof(line), lf)) {
		unsigned dev, s;
		unsigned long long a, b;
		if (sscanf(line, "command,%u,%llu,%u,%llu", &dev, &a, &s, &b) == 4)
			apply_from = b;
		else if (sscanf(line, "frame,%u,%llu,%u", &dev, &a, &s) == 3) {
			/* the frame arrived with the setup the device says it used */
			for (int i = 0; i < n; i++)
				if (rows[i].seq == a)
					cr_assert_eq(rows[i].setup, (int)s, "frame %llu", a);
			nframes_logged++;
		}
	}
	fclose(lf);
	cr_assert_neq(apply_from, 0, "no command was sent");

	/* Expected classes: the same images through head -> codec -> tail in this process. */
	char err[256];
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(model, &m, err, sizeof(err)), 0, "%s", err);
	struct rtci_imageset imgs;
	cr_assert_eq(rtci_frames_load(IMAGES, LABELS, 64, &imgs, err, sizeof(err)), 0, "%s", err);
	struct rtci_encoder *enc;
	cr_assert_eq(rtci_encoder_create(m, &enc), 0);
	struct rtci_engine_config ecfg = { .threads = 1, .max_batch = 1 };
	struct rtci_tail *tail;
	cr_assert_eq(rtci_tail_create(m, &ecfg, &tail), 0);
	struct rtci_codec *codec;
	cr_assert_eq(rtci_codec_create(NULL, &codec), 0);
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	size_t psz = (size_t)g->stem_out * ph * pw;
	float *in = malloc(rtci_encoder_input_floats(enc) * sizeof(float));
	float *wide = malloc(psz * sizeof(float)), logits[16];
	uint8_t *frame = malloc(rtci_encoder_max_frame(enc));

	int results = 0, before = 0, after = 0;
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		if (!r->result)
			continue;
		results++;
		cr_assert_eq(r->label, imgs.labels[r->image]);
		/* the switch: the old setup strictly before the named frame, the new one from it */
		if (r->seq < apply_from) {
			cr_assert_eq(r->setup, 7, "frame %llu before %llu", r->seq, apply_from);
			before++;
		} else {
			cr_assert_eq(r->setup, 12, "frame %llu from %llu", r->seq, apply_from);
			after++;
		}
		rtci_frames_input(g, &imgs, (uint32_t)r->image, in);
		ssize_t len = rtci_encoder_run(enc, in, r->setup, frame, rtci_encoder_max_frame(enc));
		cr_assert_gt(len, 0);
		cr_assert_eq(rtci_codec_decode(codec, frame, (size_t)len, wide, psz,
					       (uint32_t)g->stem_out, NULL), 0);
		int setup = r->setup, idx;
		float val;
		cr_assert_eq(rtci_tail_run(tail, 1, wide, &setup, logits), 0);
		rtci_topk(logits, g->classes, 1, &idx, &val);
		double sum = 0;
		for (int k = 0; k < g->classes; k++)
			sum += exp((double)(logits[k] - val));
		cr_assert_eq(r->cls, idx, "frame %d image %d: class %d, expected %d", i, r->image, r->cls, idx);
		cr_assert_float_eq(r->score, 1.0 / sum, 1e-5, "frame %d: score %g, expected %g", i,
				   r->score, 1.0 / sum);
		cr_assert_geq(r->latency, 0.0);
	}
	/* only the frame(s) before the hello-ack go unsent */
	cr_assert_geq(results, 20);
	cr_assert_eq(results, nframes_logged);
	cr_assert_gt(before, 0);
	cr_assert_gt(after, 0);
	free(in);
	free(wide);
	free(frame);
	rtci_codec_destroy(codec);
	rtci_tail_destroy(tail);
	rtci_encoder_destroy(enc);
	rtci_frames_free(&imgs);
	rtci_model_destroy(m);
}

static int summary_value(const char *path, const char *key, unsigned long long *v)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char line[1024];
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, key);
		if (p && sscanf(p + strlen(key), " %llu", v) == 1) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

Test(edge_loopback, survives_a_gateway_restart)
{
	int port, port2;
	pid_t rp = start_responder(0, &port, "a", "3", "2");
	char gw[64], csv[300], out[300], ps[16];
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	snprintf(csv, sizeof(csv), "%s/edge.csv", dir);
	snprintf(out, sizeof(out), "%s/edge.out", dir);
	/* 6 s at 20 fps; silence after 1 s triggers the re-hello */
	char *argv[] = { (char *)prog("RTCI_EDGE"), "--gateway", gw, "--tenant", "7", "--device", "43",
			 "--key", KEY, "--model", model, "--frames", "120", "--fps", "20",
			 "--deadline-ms", "200", "--csv", csv, NULL };
	pid_t ep = spawn(argv, out);
	msleep(1500);
	stop(rp);
	msleep(500);
	snprintf(ps, sizeof(ps), "%d", port);
	rp = start_responder(port, &port2, "b", "3", "2");
	cr_assert_eq(port2, port);
	cr_assert_eq(wait_exit(ep), 0);
	stop(rp);

	unsigned long long rehellos = 0, acks = 0;
	cr_assert(summary_value(out, "re-hellos", &rehellos));
	cr_assert(summary_value(out, "acks", &acks));
	cr_assert_geq(rehellos, 1);
	cr_assert_geq(acks, 2);
	/* the second gateway answered: results for frames captured after it started */
	struct row rows[128];
	int n = read_edge_csv(csv, rows, 128);
	cr_assert_eq(n, 120);
	int late_results = 0;
	for (int i = 100; i < 120; i++)
		late_results += rows[i].result;
	cr_assert_geq(late_results, 15, "only %d of the last 20 frames answered", late_results);
	char b_out[300];
	snprintf(b_out, sizeof(b_out), "%s/responder-b.out", dir);
	unsigned long long b_frames = 0;
	cr_assert(summary_value(b_out, "frames", &b_frames));
	cr_assert_gt(b_frames, 0);
}

Test(edge_loopback, fleet_of_20_devices_statistics_add_up)
{
	int port;
	pid_t rp = start_responder(0, &port, "a", "3", "2");
	char gw[64], csv[300], out[300], tenant[128], frames[300];
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	snprintf(csv, sizeof(csv), "%s/fleet.csv", dir);
	snprintf(out, sizeof(out), "%s/fleet.out", dir);
	snprintf(frames, sizeof(frames), "%s/frames.csv", dir);
	snprintf(tenant, sizeof(tenant), "7:%s", KEY);
	const char *traces = getenv("RTCI_TRACES");
	char *argv[] = { (char *)prog("RTCI_FLEET"), "--gateway", gw, "--tenant", tenant, "--model", model,
			 "--devices", "20", "--threads", "2", "--duration", "3", "--fps", "10,5",
			 "--deadline-ms", "1000", "--n-images", "16", "--csv", csv, "--setup", "20",
			 "--frames", frames, traces ? "--traces" : NULL, (char *)traces, NULL };
	cr_assert_eq(wait_exit(spawn(argv, out)), 0);
	stop(rp);

	FILE *f = fopen(csv, "r");
	cr_assert_not_null(f);
	char line[1024];
	cr_assert_not_null(fgets(line, sizeof(line), f));
	unsigned long long tot_sent = 0, tot_results = 0, tot_cap = 0, tot_in_time = 0;
	int rows = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok[32];
		int k = 0;
		for (char *p = line, *s; k < 32 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		cr_assert_geq(k, 25);
		unsigned long long cap = strtoull(tok[6], NULL, 10), sent = strtoull(tok[7], NULL, 10),
			late = strtoull(tok[8], NULL, 10), queue = strtoull(tok[9], NULL, 10),
			nos = strtoull(tok[10], NULL, 10), res = strtoull(tok[11], NULL, 10),
			ok = strtoull(tok[12], NULL, 10), in_time = strtoull(tok[13], NULL, 10),
			switches = strtoull(tok[21], NULL, 10);
		/* every captured frame was sent or skipped for one reason */
		cr_assert_eq(cap, sent + late + queue + nos, "device %s", tok[1]);
		cr_assert_leq(res, sent);
		cr_assert_leq(ok, res);
		cr_assert_leq(in_time, ok);
		cr_assert_gt(res, 0, "device %s got no result", tok[1]);
		/* the setup distribution covers every frame sent */
		unsigned long long by_setup = 0;
		for (char *p = tok[24], *e; *p; p = *e ? e + 1 : e) {
			char *colon = strchr(p, ':');
			cr_assert_not_null(colon, "setups column '%s'", tok[24]);
			by_setup += strtoull(colon + 1, &e, 10);
		}
		cr_assert_eq(by_setup, sent, "device %s", tok[1]);
		/* each device obeyed its one rate-switch command */
		cr_assert_eq(switches, 1, "device %s", tok[1]);
		cr_assert(strcmp(tok[20], "3") == 0 || strcmp(tok[20], "20") == 0,
			  "device %s mostly used setup %s", tok[1], tok[20]);
		tot_cap += cap;
		tot_sent += sent;
		tot_results += res;
		tot_in_time += in_time;
		rows++;
	}
	fclose(f);
	cr_assert_eq(rows, 20);
	/* the responder answered every frame the fleet says it sent, and each answer arrived */
	char r_out[300];
	snprintf(r_out, sizeof(r_out), "%s/responder-a.out", dir);
	unsigned long long r_frames = 0, fleet_cap = 0, fleet_hits = 0;
	cr_assert(summary_value(r_out, "frames", &r_frames));
	cr_assert_eq(r_frames, tot_sent);
	/* every device reports about once a second; nothing it sent failed authentication */
	unsigned long long r_reports = 0, r_dropped = 1;
	cr_assert(summary_value(r_out, "reports", &r_reports));
	cr_assert_geq(r_reports, 20);
	cr_assert(summary_value(r_out, "dropped", &r_dropped));
	cr_assert_eq(r_dropped, 0);
	cr_assert_eq(tot_results, tot_sent);
	/* the totals printed are the sums of the per-device rows */
	cr_assert(summary_value(out, "captured", &fleet_cap));
	cr_assert_eq(fleet_cap, tot_cap);
	cr_assert(summary_value(out, "delivered by deadline", &fleet_hits));
	cr_assert_eq(fleet_hits, tot_in_time);
	/* 3 s at 10 and 5 fps: about 10 x 30 + 10 x 15 frames */
	cr_assert(tot_cap >= 400 && tot_cap <= 460, "%llu", tot_cap);

	/* --frames: one row per captured frame of every device, statuses as counted */
	f = fopen(frames, "r");
	cr_assert_not_null(f);
	unsigned long long fr_rows = 0, fr_in_time = 0;
	bool seen[20] = { false };
	int comments = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#') {
			comments++;
			continue;
		}
		if (strncmp(line, "device,", 7) == 0)
			continue;
		unsigned dev = (unsigned)strtoul(line, NULL, 10);
		cr_assert_lt(dev, 20u, "%s", line);
		seen[dev] = true;
		fr_rows++;
		fr_in_time += strstr(line, ",in_time,") != NULL;
	}
	fclose(f);
	cr_assert_eq(comments, 20);
	for (int k = 0; k < 20; k++)
		cr_assert(seen[k], "no frames of device %d", k);
	cr_assert_eq(fr_rows, tot_cap);
	cr_assert_eq(fr_in_time, tot_in_time);
}

/* A dead link (nothing listens): with the shipped model's local exit every frame is still
 * answered in time, each with the class the exit computes for its image. */
Test(edge_loopback, local_exit_answers_every_frame_when_the_link_is_dead)
{
	const char *root = prog("RTCI_SOURCE_ROOT");
	char shipped[512], csv[300], out[300];
	snprintf(shipped, sizeof(shipped), "%s/models/fmnist-swcnn.rtcm", root);
	snprintf(csv, sizeof(csv), "%s/edge.csv", dir);
	snprintf(out, sizeof(out), "%s/edge.out", dir);
	/* a port nobody listens on: bind one, note it, close it */
	int port;
	pid_t rp = start_responder(0, &port, "a", "12", "3");
	stop(rp);
	char gw[64];
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	char *argv[] = { (char *)prog("RTCI_EDGE"), "--gateway", gw, "--tenant", "7", "--device", "42",
			 "--key", KEY, "--model", shipped, "--frames", "16", "--fps", "40",
			 "--deadline-ms", "200", "--drain-ms", "300", "--csv", csv, NULL };
	cr_assert_eq(wait_exit(spawn(argv, out)), 0);

	char err[256];
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(shipped, &m, err, sizeof(err)), 0, "%s", err);
	struct rtci_local *l;
	cr_assert_eq(rtci_local_create(m, &l), 0);
	struct rtci_imageset imgs;
	cr_assert_eq(rtci_frames_load(IMAGES, LABELS, 64, &imgs, err, sizeof(err)), 0, "%s", err);
	float in[28 * 28];
	FILE *f = fopen(csv, "r");
	cr_assert_not_null(f);
	char line[512];
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert(strstr(line, "local_class,local_latency_ms,local_hit"), "%s", line);
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok[16];
		int k = 0;
		for (char *p = line, *s; k < 16 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		cr_assert_geq(k, 15, "%d columns", k);
		cr_assert_str_eq(tok[5], "no_session");
		int image = atoi(tok[2]);
		uint16_t cls;
		float score;
		rtci_frames_input(rtci_model_geometry(m), &imgs, (uint32_t)image, in);
		cr_assert_eq(rtci_local_run(l, in, &cls, &score), 0);
		cr_assert_eq(atoi(tok[12]), cls, "frame %d: local class %s, exit %u", n, tok[12], cls);
		cr_assert_eq(atoi(tok[14]), 1, "frame %d answered in time", n);
		cr_assert_lt(atof(tok[13]), 200.0);
		n++;
	}
	fclose(f);
	cr_assert_eq(n, 16);
	rtci_frames_free(&imgs);
	rtci_local_destroy(l);
	rtci_model_destroy(m);
}

/* rtci-fleet on a dead link: every captured frame is answered locally in time, and the
 * per-device CSV and the summary count them. */
Test(edge_loopback, fleet_counts_local_answers_when_the_link_is_dead)
{
	const char *root = prog("RTCI_SOURCE_ROOT");
	char shipped[512], csv[300], out[300], tenant[128], gw[64];
	snprintf(shipped, sizeof(shipped), "%s/models/fmnist-swcnn.rtcm", root);
	snprintf(csv, sizeof(csv), "%s/fleet.csv", dir);
	snprintf(out, sizeof(out), "%s/fleet.out", dir);
	snprintf(tenant, sizeof(tenant), "7:%s", KEY);
	int port;
	stop(start_responder(0, &port, "a", "3", "2")); /* a port nobody listens on now */
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	char *argv[] = { (char *)prog("RTCI_FLEET"), "--gateway", gw, "--tenant", tenant, "--model",
			 shipped, "--devices", "4", "--threads", "1", "--duration", "2", "--fps", "10",
			 "--deadline-ms", "100", "--n-images", "40", "--csv", csv, NULL };
	cr_assert_eq(wait_exit(spawn(argv, out)), 0);
	FILE *f = fopen(csv, "r");
	cr_assert_not_null(f);
	char line[1024];
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_assert(strstr(line, "answered_local,local_in_time,local_accuracy,local_mode_frames,probes"));
	unsigned long long tot = 0;
	int rows = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok[40];
		int k = 0;
		for (char *p = line, *s; k < 40 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		cr_assert_geq(k, 36);
		unsigned long long cap = strtoull(tok[6], NULL, 10);
		cr_assert_gt(cap, 0);
		cr_assert_eq(strtoull(tok[31], NULL, 10), cap, "device %s: all answered locally", tok[1]);
		cr_assert_eq(strtoull(tok[32], NULL, 10), cap, "device %s: all in time", tok[1]);
		double acc = atof(tok[33]);
		cr_assert(acc > 0.5 && acc <= 1.0, "device %s: local accuracy %g", tok[1], acc);
		cr_assert_float_eq(atof(tok[15]), acc, 1e-4, "real-time accuracy is the local one");
		tot += cap;
		rows++;
	}
	fclose(f);
	cr_assert_eq(rows, 4);
	unsigned long long local = 0;
	cr_assert(summary_value(out, "answered locally:", &local));
	cr_assert_eq(local, tot);
}

/* A rate switch to setup 0xFFFF: rtci-edge answers locally from the named frame on and uploads
 * only probes, with the smallest setup, on entering and then at least 500 ms apart. */
Test(edge_loopback, local_mode_sends_only_probes_500_ms_apart)
{
	const char *root = prog("RTCI_SOURCE_ROOT");
	char shipped[512], csv[300], out[300], gw[64];
	snprintf(shipped, sizeof(shipped), "%s/models/fmnist-swcnn.rtcm", root);
	snprintf(csv, sizeof(csv), "%s/edge.csv", dir);
	snprintf(out, sizeof(out), "%s/edge.out", dir);
	int port;
	pid_t rp = start_responder(0, &port, "a", "65535", "3");
	snprintf(gw, sizeof(gw), "127.0.0.1:%d", port);
	char *argv[] = { (char *)prog("RTCI_EDGE"), "--gateway", gw, "--tenant", "7", "--device", "42",
			 "--key", KEY, "--model", shipped, "--frames", "64", "--fps", "40",
			 "--deadline-ms", "500", "--setup", "7", "--csv", csv, NULL };
	cr_assert_eq(wait_exit(spawn(argv, out)), 0);
	stop(rp);
	char err[256];
	struct rtci_model *m;
	cr_assert_eq(rtci_model_load(shipped, &m, err, sizeof(err)), 0, "%s", err);
	int probe = rtci_local_probe_setup(m);
	rtci_model_destroy(m);

	FILE *f = fopen(csv, "r");
	cr_assert_not_null(f);
	char line[512];
	cr_assert_not_null(fgets(line, sizeof(line), f));
	int local = 0, probes = 0, in_mode = 0;
	double last_probe = -1e9;
	while (fgets(line, sizeof(line), f)) {
		char *tok[16];
		int k = 0;
		for (char *p = line, *s; k < 16 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		cr_assert_geq(k, 15);
		double capture = atof(tok[10]);
		if (!strcmp(tok[5], "local_mode")) {
			in_mode = 1;
			local++;
			cr_assert_eq(atoi(tok[14]), 1, "frame %s answered locally in time", tok[0]);
			cr_assert_lt(capture - last_probe, 500.0, "frame %s: a probe was due", tok[0]);
		} else if (in_mode || (strcmp(tok[4], "7") && strcmp(tok[5], "no_session"))) {
			/* after the switch only probes go out */
			in_mode = 1;
			cr_assert_eq(atoi(tok[4]), probe, "frame %s: setup %s", tok[0], tok[4]);
			cr_assert_geq(capture - last_probe, 500.0, "frame %s", tok[0]);
			last_probe = capture;
			probes++;
		}
	}
	fclose(f);
	cr_assert_geq(probes, 2, "%d probes", probes);
	cr_assert_geq(local, 40, "%d local frames", local);
}
