/* rtci-gateway: the DPDK gateway daemon.
 *
 *   rtci-gateway --config FILE [--final-metrics FILE]
 *   rtci-gateway --check-config FILE
 *
 * Starts the EAL and the port from the gateway file, loads the models and the tenants file,
 * launches the RX and worker lcores (gateway/pipeline.c) and stays on the main lcore for
 * signals, the periodic summary and reloads. SIGHUP reloads the tenants file; SIGTERM or SIGINT
 * drains (stop RX, finish frames in flight, send their results) and exits 0. --check-config
 * checks the files (gateway/check.c) and exits without starting anything.
 * docs/operations.md describes the command line, the signals, the lcores and the metrics. */
#include "gateway/gw.h"
#include "common/clock.h"
#include "gateway/admit.h"
#include "gateway/check.h"
#include "gateway/cluster.h"
#include "gateway/pmd_stats.h"
#include "common/log.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_ring.h>


#define ERRLEN 1024

#define logf_(...) rtci_log("rtci-gateway", __VA_ARGS__)

static int register_model_series(struct gw *gw)
{
	struct rtci_metrics *m = gw->metrics;
	static const double bs[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };
	static const double qt[] = { 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1 };
	static const double it[] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5 };
	int fb = rtci_metrics_family(m, "rtci_batch_size", "frames per inference batch",
				     RTCI_METRIC_HISTOGRAM, bs, 9, RTCI_METRICS_SUMMARY);
	int fq = rtci_metrics_family(m, "rtci_queue_time_seconds", "time from submit to inference",
				     RTCI_METRIC_HISTOGRAM, qt, 10, RTCI_METRICS_SUMMARY);
	int fd = rtci_metrics_family(m, "rtci_queue_depth", "frames waiting in the batcher",
				     RTCI_METRIC_GAUGE, NULL, 0, 0);
	int fi = rtci_metrics_family(m, "rtci_inference_seconds", "batch inference time",
				     RTCI_METRIC_HISTOGRAM, it, 10, 0);
	gw->s_reloads = rtci_metrics_family(m, "rtci_reloads_total", "tenants file reloads",
					    RTCI_METRIC_COUNTER, NULL, 0, 0);
	if (fb < 0 || fq < 0 || fd < 0 || fi < 0 || gw->s_reloads < 0)
		return -RTCI_ERR_METRICS_FULL;
	int fr = gw->s_reloads;
	const char *rn[] = { "result" }, *rv[] = { "ok" }, *rf[] = { "failed" };
	gw->s_reloads = rtci_metrics_series(m, fr, 1, rn, rv);
	gw->s_reloads_failed = rtci_metrics_series(m, fr, 1, rn, rf);
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		struct gw_model *md = &gw->models[k];
		const char *mn[] = { "model" }, *mv[] = { md->name };
		if ((md->s_infer = rtci_metrics_series(m, fi, 1, mn, mv)) < 0)
			return md->s_infer;
		for (int g = 0; g <= md->groups; g++) {
			char gs[16];
			if (g < md->groups)
				snprintf(gs, sizeof(gs), "%d", g);
			else
				snprintf(gs, sizeof(gs), "none");
			const char *n[] = { "model", "group" }, *v[] = { md->name, gs };
			int q = md->queue_base + g;
			if ((gw->s_batch[q] = rtci_metrics_series(m, fb, 2, n, v)) < 0 ||
			    (gw->s_qtime[q] = rtci_metrics_series(m, fq, 2, n, v)) < 0 ||
			    (gw->s_qdepth[q] = rtci_metrics_series(m, fd, 2, n, v)) < 0)
				return -RTCI_ERR_METRICS_FULL;
		}
	}
	return 0;
}

static void summary(struct gw *gw, const char *what)
{
	char line[2048];
	if (rtci_metrics_summary(gw->metrics, line, sizeof(line)) >= 0)
		logf_("%s %s", what, line);
}

static int write_metrics(struct gw *gw, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int rc = rtci_metrics_render(gw->metrics, &text, &len);
	if (rc < 0)
		return rc;
	FILE *f = fopen(path, "w");
	if (!f) {
		free(text);
		return -errno;
	}
	size_t w = fwrite(text, 1, len, f);
	rc = fclose(f) == 0 && w == len ? 0 : -EIO;
	free(text);
	return rc;
}

/* A refused reload is counted too: an operator must see that the tenants in force are not the
 * ones on disk (or in etcd). */
static void reload_failed(struct gw *gw, const char *err)
{
	rtci_metrics_add(gw->metrics, 0, gw->s_reloads_failed, 1);
	logf_("reload failed, tenants kept: %s", err);
}

/* SIGHUP (the tenants file) or etcd (a copy of its text): load the tenants, publish the new
 * table, wait until every RX lcore switched. */
static void reload(struct gw *gw, const char *path, uint64_t *generation)
{
	char err[ERRLEN] = "";
	struct rtci_tenants_config *tc = NULL;
	int rc = rtci_config_load_tenants(path, &tc, err, sizeof(err));
	if (rc < 0) {
		reload_failed(gw, err);
		return;
	}
	struct gw_table *nt = NULL;
	if ((rc = gw_table_build(gw, tc, *generation + 1, &nt, err, sizeof(err))) < 0) {
		rtci_config_free_tenants(tc);
		reload_failed(gw, err);
		return;
	}
	(*generation)++;
	struct gw_table *old = atomic_exchange(&gw->table, nt);
	/* grace period: each RX lcore acknowledges at a burst boundary after its hand-over */
	for (;;) {
		uint32_t seen = 0;
		for (uint32_t i = 0; i < gw->nrx; i++)
			if (atomic_load(&gw->rx[i].seen_generation) == nt->generation)
				seen++;
		if (seen == gw->nrx)
			break;
		usleep(100);
	}
	gw_table_free(gw, old);
	rtci_metrics_add(gw->metrics, 0, gw->s_reloads, 1);
	logf_("reload ok: %u tenants from %s", nt->ntenants, path);
}

/* Tenants from etcd go through the same reader as the file (one reader per format). */
static void reload_text(struct gw *gw, const char *text, uint64_t *generation)
{
	char path[] = "/tmp/rtci-tenants-etcd-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		reload_failed(gw, strerror(errno));
		return;
	}
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	if (ok)
		reload(gw, path, generation);
	else
		reload_failed(gw, "cannot write a copy of the tenants from etcd");
	unlink(path);
}

#define DRAIN_MIN_US 1000000   /* moves reach the devices, their frames in flight come in */
#define DRAIN_MAX_US 10000000

/* Main lcore's periodic work; false when a drain has finished and the gateway should stop. */
static bool tick(struct gw *gw, uint64_t *generation, uint64_t drain_since)
{
	gw_admit_publish(gw);
	gw_pmd_publish(gw);
	char *text = gw_cluster_take_tenants(gw);
	if (text) {
		reload_text(gw, text, generation);
		free(text);
	}
	if (!drain_since)
		return true;
	if (!gw->cluster)
		return false; /* stand-alone: nowhere to move devices to, so a plain stop */
	uint64_t t = rtci_mono_us() - drain_since;
	return t < DRAIN_MIN_US || (atomic_load(&gw->adm_load) > 0 && t < DRAIN_MAX_US);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rtci-gateway --config FILE [--final-metrics FILE]\n"
		   "       rtci-gateway --check-config FILE\n"
		   "  --config FILE         gateway file (docs/operations.md)\n"
		   "  --check-config FILE   check the gateway file, its models and tenants file,\n"
		   "                        print a summary and exit (0: valid); starts nothing\n"
		   "  --final-metrics FILE  write the metrics in Prometheus text format there at exit\n"
		   "signals: SIGHUP reloads the tenants file; SIGTERM/SIGINT drain and exit; SIGUSR1 "
		   "moves every device to another gateway of the cluster, then exits\n");
}

struct args {
	const char *config, *final_metrics, *check;
};

/* 0: run, 1: done (help printed), -1: usage error. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'k' },
		{ "final-metrics", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	*a = (struct args){ 0 };
	while ((o = getopt_long(argc, argv, "c:f:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': a->config = optarg; break;
		case 'k': a->check = optarg; break;
		case 'f': a->final_metrics = optarg; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc || !a->config == !a->check || (a->check && a->final_metrics)) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* The signals the main lcore handles, blocked before any thread starts so that only its
 * signalfd sees them. */
static int signals_fd(void)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	return signalfd(-1, &sigs, SFD_CLOEXEC);
}

/* Every lcore of the gateway file must be an enabled worker lcore of the EAL. */
static int check_eal_lcores(const struct gw *gw)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	for (uint32_t i = 0; i < gw->nrx + gw->nworkers; i++) {
		unsigned lc = i < gw->nrx ? cfg->lcores.rx[i] : cfg->lcores.workers[i - gw->nrx];
		if (!rte_lcore_is_enabled(lc) || lc == rte_get_main_lcore()) {
			fprintf(stderr,
				"rtci-gateway: lcore %u is not an enabled worker lcore of the EAL "
				"(main lcore %u); list it in eal.args (-l / --lcores): %s\n",
				lc, rte_get_main_lcore(), rtci_strerror(-RTCI_ERR_GATEWAY_LCORES));
			return -1;
		}
	}
	return 0;
}

static int open_port(struct gw *gw)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	struct rtci_port_config pc = {
		.port_id = RTCI_PORT_ANY, .rx_queues = cfg->port.rx_queues,
		.tx_queues = cfg->port.tx_queues, .rx_descriptors = cfg->port.rx_descriptors,
		.tx_descriptors = cfg->port.tx_descriptors, .mbufs = cfg->port.mbufs,
		.mbuf_cache = cfg->port.mbuf_cache, .ipv4 = cfg->port.ipv4,
		.mac_set = cfg->port.mac_set, .udp_port = cfg->port.udp_port,
		.neighbors = cfg->port.neighbors,
	};
	memcpy(pc.mac, cfg->port.mac, 6);
	int rc = rtci_port_create(&pc, &gw->port);
	if (rc < 0)
		fprintf(stderr, "rtci-gateway: port: %s\n", rtci_strerror(rc));
	return rc;
}

/* RX and worker state, and the ring that carries batches between them. */
static int init_lcores(struct gw *gw)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	char err[ERRLEN];
	uint32_t batches = 0;
	for (uint32_t i = 0; i < gw->nrx; i++) {
		struct gw_rx *rx = &gw->rx[i];
		rx->index = (uint16_t)i;
		rx->queue = (uint16_t)i;
		rx->lcore = cfg->lcores.rx[i];
		rx->mslot = 1 + i;
		if (gw_rx_init(gw, rx, err, sizeof(err)) < 0) {
			fprintf(stderr, "rtci-gateway: RX lcore %u: %s\n", rx->lcore, err);
			return -1;
		}
		batches += rx->nbatches;
	}
	for (uint32_t i = 0; i < gw->nworkers; i++) {
		struct gw_worker *w = &gw->workers[i];
		w->index = (uint16_t)i;
		w->lcore = cfg->lcores.workers[i];
		w->mslot = 1 + gw->nrx + i;
		if (gw_worker_init(gw, w, err, sizeof(err)) < 0) {
			fprintf(stderr, "rtci-gateway: worker lcore %u: %s\n", w->lcore, err);
			return -1;
		}
	}
	uint32_t cap = 2;
	while (cap <= batches)
		cap <<= 1;
	gw->work = rte_ring_create("rtci_work", cap, (int)rte_socket_id(), 0);
	if (!gw->work) {
		fprintf(stderr, "rtci-gateway: work ring: cannot create\n");
		return -1;
	}
	return 0;
}

/* Publishes the first tenant table (which takes tc) to every RX lcore. */
static int publish_table(struct gw *gw, struct rtci_tenants_config **tc)
{
	char err[ERRLEN];
	struct gw_table *table = NULL;
	if (gw_table_build(gw, *tc, 1, &table, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtci-gateway: %s: %s\n", gw->cfg->tenants_file, err);
		return -1;
	}
	*tc = NULL; /* the table owns it */
	atomic_store(&gw->table, table);
	for (uint32_t i = 0; i < gw->nrx; i++) {
		gw->rx[i].table = table;
		atomic_store(&gw->rx[i].seen_generation, 1);
	}
	return 0;
}

/* Everything up to the lcores' launch: models, tenants, EAL, metrics, port, lcores, table,
 * the metrics endpoint and the cluster. *eal says whether the EAL needs cleaning up. */
static int start(struct gw *gw, bool *eal)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	struct rtci_tenants_config *tc = NULL;
	char err[ERRLEN];
	int rc;
	gw->nrx = cfg->lcores.rx_count;
	gw->nworkers = cfg->lcores.worker_count;
	if (gw_check_lcores(cfg, err, sizeof(err)) < 0 || gw_models_load(gw, err, sizeof(err)) < 0 ||
	    rtci_config_load_tenants(cfg->tenants_file, &tc, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtci-gateway: %s\n", err);
		return -1;
	}
	if ((rc = rtci_port_eal_init(cfg->eal_argc, cfg->eal_argv)) < 0) {
		fprintf(stderr, "rtci-gateway: %s\n", rtci_strerror(rc));
		rtci_config_free_tenants(tc);
		return -1;
	}
	*eal = true;
	struct rtci_metrics_limits lim = { .slots = 1 + gw->nrx + gw->nworkers, .families = 128,
					   .series = 32768, .cells = 262144 };
	if (check_eal_lcores(gw) < 0)
		goto fail;
	if ((rc = rtci_metrics_create(&lim, &gw->metrics)) < 0 ||
	    (rc = register_model_series(gw)) < 0 || (rc = gw_admit_register_series(gw)) < 0 ||
	    (rc = gw_pmd_register_series(gw)) < 0) {
		fprintf(stderr, "rtci-gateway: metrics: %s\n", rtci_strerror(rc));
		goto fail;
	}
	if (open_port(gw) < 0 || init_lcores(gw) < 0 || publish_table(gw, &tc) < 0)
		goto fail;
	if (cfg->metrics.enabled &&
	    (rc = rtci_metrics_serve(gw->metrics, cfg->metrics.listen, cfg->metrics.port)) < 0) {
		fprintf(stderr, "rtci-gateway: metrics endpoint %s:%u: %s\n", cfg->metrics.listen,
			cfg->metrics.port, rtci_strerror(rc));
		return -1;
	}
	if (gw_cluster_start(gw, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtci-gateway: %s\n", err);
		return -1;
	}
	return 0;
fail:
	rtci_config_free_tenants(tc);
	return -1;
}

static void launch(struct gw *gw)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	for (uint32_t i = 0; i < gw->nrx; i++)
		rte_eal_remote_launch(gw_rx_main, &gw->rx[i], gw->rx[i].lcore);
	for (uint32_t i = 0; i < gw->nworkers; i++)
		rte_eal_remote_launch(gw_worker_main, &gw->workers[i], gw->workers[i].lcore);
	uint8_t mac[6];
	rtci_port_mac(gw->port, mac);
	logf_("running: %u models, %u tenants, %u RX lcores, %u workers, port %02x:%02x:%02x:%02x:%02x:%02x "
	      "udp %u, metrics port %u",
	      gw->nmodels, atomic_load(&gw->table)->ntenants, gw->nrx, gw->nworkers, mac[0], mac[1],
	      mac[2], mac[3], mac[4], mac[5], cfg->port.udp_port, rtci_metrics_port(gw->metrics));
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		uint32_t best_n;
		double us = rtci_cost_frame_us(&gw->models[k].cost, &best_n);
		struct rtci_tail_stats ts = { 0 };
		if (gw->nworkers && gw->workers[0].tails && gw->workers[0].tails[k])
			rtci_tail_stats(gw->workers[0].tails[k], &ts);
		logf_("model %s: tail %.1f us/frame at batch %u, %.0f frames/s on %u workers (precision %s: "
		      "%d of %d convolutions int8)",
		      gw->models[k].name, us, best_n, us > 0 ? gw->nworkers * 1e6 / us : 0.0,
		      gw->nworkers, rtci_precision_name(ts.precision), ts.int8_layers, ts.layers);
	}
	if (cfg->admission.enabled)
		logf_("admission: capacity %.0f frames/s (%s, %u%% headroom)",
		      (double)gw_admit_capacity(gw) / 1000.0,
		      cfg->admission.capacity_fps ? "configured" : "measured",
		      cfg->admission.headroom_pct);
	else
		logf_("admission: off");
}

/* One signal: SIGHUP reloads, SIGUSR1 starts moving devices away; false: stop (SIGTERM, SIGINT). */
static bool on_signal(struct gw *gw, unsigned signo, uint64_t *generation, uint64_t *drain_since)
{
	if (signo == SIGHUP) {
		reload(gw, gw->cfg->tenants_file, generation);
		return true;
	}
	if (signo == SIGUSR1) {
		if (!*drain_since) {
			logf_("signal %u: draining: moving devices, then exiting", signo);
			atomic_store(&gw->draining, true);
			gw_cluster_refresh(gw);
			*drain_since = rtci_mono_us();
		}
		return true;
	}
	logf_("signal %u: draining", signo);
	return false;
}

/* The main lcore's loop: signals, reloads, shedding and the periodic summary. */
static void serve(struct gw *gw, int sfd)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	uint64_t generation = 1;
	uint64_t next_summary = rtci_mono_us() + (uint64_t)cfg->metrics.summary_interval_s * 1000000;
	uint64_t next_shed = rtci_mono_us() + 1000000, drain_since = 0;
	for (;;) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		if (poll(&p, 1, 200) > 0) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (!on_signal(gw, si.ssi_signo, &generation, &drain_since))
					return;
				continue;
			}
		}
		if (!tick(gw, &generation, drain_since)) {
			logf_("drained: every device moved");
			return;
		}
		if (rtci_mono_us() >= next_shed) {
			gw_admit_shed(gw);
			next_shed = rtci_mono_us() + 1000000;
		}
		if (cfg->metrics.summary_interval_s && rtci_mono_us() >= next_summary) {
			summary(gw, "summary");
			next_summary += (uint64_t)cfg->metrics.summary_interval_s * 1000000;
		}
	}
}

/* Stops RX, lets the workers finish, and reports; the exit status. */
static int finish(struct gw *gw, const char *final_metrics)
{
	int status = 0, rc;
	atomic_store(&gw->stop_rx, true);
	rte_eal_mp_wait_lcore();
	for (uint32_t i = 0; i < gw->nworkers; i++)
		if (gw->workers[i].rc < 0) {
			logf_("worker %u: inference failed: %s", i, rtci_strerror(gw->workers[i].rc));
			status = 1;
		}
	summary(gw, "final");
	if (final_metrics && (rc = write_metrics(gw, final_metrics)) < 0) {
		logf_("writing %s: %s", final_metrics, rtci_strerror(rc));
		status = 1;
	}
	return status;
}

/* Frees whatever start() got to; safe on a partly started gateway. */
static void teardown(struct gw *gw, bool eal)
{
	gw_cluster_stop(gw);
	rtci_metrics_stop(gw->metrics);
	gw_table_free(gw, atomic_load(&gw->table));
	for (uint32_t i = 0; i < gw->nworkers && i < GW_MAX_WORKERS; i++)
		if (gw->workers[i].gw)
			gw_worker_fini(&gw->workers[i]);
	for (uint32_t i = 0; i < gw->nrx && i < GW_MAX_RX; i++)
		if (gw->rx[i].gw)
			gw_rx_fini(&gw->rx[i]);
	if (gw->work)
		rte_ring_free(gw->work);
	if (gw->port)
		rtci_port_destroy(gw->port);
	for (uint32_t s = 0; s < gw->ntslots; s++)
		free(gw->tseries[s].setup);
	rtci_metrics_destroy(gw->metrics);
	gw_models_free(gw);
	if (eal)
		rtci_port_eal_cleanup();
	rtci_config_free_gateway(gw->cfg);
}

int main(int argc, char **argv)
{
	struct args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc > 0 ? 0 : 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (a.check)
		return gw_check_config(a.check, stdout, stderr);

	static struct gw gwst;
	struct gw *gw = &gwst;
	pthread_mutex_init(&gw->adm_lock, NULL);
	char err[ERRLEN] = "";
	if (rtci_config_load_gateway(a.config, &gw->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtci-gateway: %s\n", err);
		return 1;
	}
	int status = 1;
	bool eal = false;
	int sfd = signals_fd();
	if (sfd < 0 || rtci_auth_init() < 0)
		fprintf(stderr, "rtci-gateway: signalfd or libsodium initialisation failed\n");
	else if (start(gw, &eal) == 0) {
		launch(gw);
		serve(gw, sfd);
		status = finish(gw, a.final_metrics);
	}
	teardown(gw, eal);
	if (sfd >= 0)
		close(sfd);
	if (status == 0)
		logf_("stopped");
	return status;
}
