/* rtci-sim: trace-driven simulation of policies x traces x deadlines x frame rates x setup tables.
 * Each device runs on its own trace from a seeded random offset. Writes per-run and summary CSV
 * (and per-frame CSV on request) and prints a summary table per configuration. */
#include "common/hash.h"
#include "control/control.h"
#include "control/model_table.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LIST 256
#define MAX_TRACES 4096
#define MAX_POL 80

struct polspec {
	char name[32];
	int oracle;
	struct rtci_ctl_policy_cfg cfg;
};

struct acc {
	unsigned runs;
	double rt, hit, deliv, sw, bytes, bound, local;
};

static struct {
	char *traces[MAX_LIST], *setups[MAX_LIST], *policies, *frames_traces;
	unsigned ntraces_arg, nsetups;
	double fps[MAX_LIST], deadline_ms[MAX_LIST];
	unsigned nfps, ndl;
	double duration_s;
	unsigned runs;
	uint64_t seed;
	const char *summary_csv, *runs_csv, *frames_csv, *runs_from;
	struct rtci_ctl_model model;
	enum rtci_ctl_est_kind est;
	unsigned window;
	double report_ms, report_gap_ms;
	int admit;
	int decide;
	unsigned plan_steps;
	int quiet;
	int spinn_threshold_set;
	int no_local_exit;
	double spinn_threshold;
} opt;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtci-sim --traces PATH[,PATH..] --setups FILE[,FILE..] [options]\n"
		"  --traces LIST        trace files or folders (mahimahi .up or norway cooked)\n"
		"  --setups LIST        setup tables (JSON) or model files (.rtcm)\n"
		"  --fps LIST           frame rates (default 10)\n"
		"  --deadline-ms LIST   deadlines (default 200)\n"
		"  --policies LIST      mpc,fastmpc,rate,bba,spinn,clio,fixed,fixed:ID,oracle\n"
		"                       (default: all; 'fixed' = every setup)\n"
		"  --duration-s S       simulated seconds per device (default 300)\n"
		"  --runs N             devices per trace, each at its own offset (default 1)\n"
		"  --seed N             seed for offsets and SPINN exits (default 1)\n"
		"  --summary-csv F      per configuration and policy\n"
		"  --runs-csv F         per device run and policy\n"
		"  --frames-csv F       per frame (with --frames-traces NAMES to restrict)\n"
		"  --runs-from F        instead of --runs: one run per row of an rtci-fleet devices\n"
		"                       CSV, on that device's trace (by file name) and start offset\n"
		"  --head-ms --prop-ms --gw-queue-ms --tail-ms --horizon --switch-penalty\n"
		"  --fixed-switch-penalty  MPC: the penalty as set, not scaled by the recent\n"
		"                       prediction error\n"
		"  --min-gain A         frontier: a larger setup must gain A in accuracy (0.002)\n"
		"  --frag-overhead B --frame-overhead B\n"
		"                       link bytes beyond the payload per fragment (of --frag-bytes,\n"
		"                       1400) and per frame, for device and controller alike (0, 0;\n"
		"                       rtci-edge and the gateway: 76 and 16)\n"
		"  --estimator robust|harmonic|ewma  --window K   (MPC: robust, K = 8)\n"
		"  --report-ms MS       device reports to the controller (default 1000, as rtci-edge;\n"
		"                       0: none)  --report-gap-ms MS  report on a drop after (100)\n"
		"  --admit finish|start device admits a frame if its last byte (rtci-edge) or its\n"
		"                       first byte can leave within the send window (default finish)\n"
		"  --decide gateway|capture  when policies decide: as the gateway (on arrivals, for a\n"
		"                       frame a few ahead, through its commands; default) or for every\n"
		"                       frame at its capture\n"
		"  --plan-steps N       gateway decisions: setups a command carries, 1..8 (8: the\n"
		"                       MPC's plan, as the gateway; 1: its first step only)\n"
		"  --spinn-threshold T  SPINN runs the table's measured point of exit threshold T\n"
		"                       (default: the threshold the table's spinn block chose)\n"
		"  --no-local-exit      run the tables as if the model had no local exit (to compare)\n"
		"  --quiet\n");
}

static unsigned split(char *s, char **out, unsigned cap)
{
	unsigned n = 0;
	for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

static int parse_doubles(const char *arg, double *out, unsigned *n)
{
	char *copy = strdup(arg), *items[MAX_LIST];
	if (!copy)
		return -1;
	unsigned k = split(copy, items, MAX_LIST);
	for (unsigned i = 0; i < k; i++) {
		char *e;
		out[i] = strtod(items[i], &e);
		if (*e || !(out[i] > 0)) {
			free(copy);
			return -1;
		}
	}
	*n = k;
	free(copy);
	return k ? 0 : -1;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands folders into their regular files (sorted), skipping README files. */
static int collect_traces(char **paths, unsigned n, char **out, unsigned *nout)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st)) {
			fprintf(stderr, "rtci-sim: %s: %s\n", paths[i], strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (k < MAX_TRACES)
				out[k++] = strdup(paths[i]);
			continue;
		}
		DIR *d = opendir(paths[i]);
		if (!d) {
			fprintf(stderr, "rtci-sim: %s: %s\n", paths[i], strerror(errno));
			return -1;
		}
		unsigned first = k;
		struct dirent *de;
		while ((de = readdir(d)) && k < MAX_TRACES) {
			if (de->d_name[0] == '.' || !strncmp(de->d_name, "README", 6))
				continue;
			char buf[4096];
			snprintf(buf, sizeof(buf), "%s/%s", paths[i], de->d_name);
			if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) {
				/* one level of sub-folders (the shared layout) */
				char *sub = buf;
				unsigned got = 0;
				if (collect_traces(&sub, 1, out + k, &got))
					return -1;
				k += got;
				continue;
			}
			if (S_ISREG(st.st_mode))
				out[k++] = strdup(buf);
		}
		closedir(d);
		qsort(out + first, k - first, sizeof(char *), cmpstr);
	}
	*nout = k;
	return 0;
}

static int parse_policies(const char *arg, const struct rtci_ctl_table *tab, struct polspec *ps,
			  unsigned *n)
{
	char *copy = strdup(arg), *items[MAX_LIST];
	if (!copy)
		return -1;
	unsigned k = split(copy, items, MAX_LIST), m = 0;
	struct rtci_ctl_policy_cfg base = { .estimator = opt.est, .est_window = opt.window };
	for (unsigned i = 0; i < k && m < MAX_POL; i++) {
		struct polspec p = { .cfg = base };
		snprintf(p.name, sizeof(p.name), "%s", items[i]);
		if (!strcmp(items[i], "mpc"))
			p.cfg.kind = RTCI_CTL_MPC;
		else if (!strcmp(items[i], "fastmpc"))
			p.cfg.kind = RTCI_CTL_FASTMPC;
		else if (!strcmp(items[i], "rate")) {
			p.cfg.kind = RTCI_CTL_RATE;
			p.cfg.estimator = rtci_ctl_policy_estimator(p.cfg.kind);
		} else if (!strcmp(items[i], "bba"))
			p.cfg.kind = RTCI_CTL_BBA;
		else if (!strcmp(items[i], "spinn")) {
			p.cfg.kind = RTCI_CTL_SPINN;
			p.cfg.estimator = rtci_ctl_policy_estimator(p.cfg.kind);
		} else if (!strcmp(items[i], "clio"))
			p.cfg.kind = RTCI_CTL_CLIO;
		else if (!strcmp(items[i], "oracle"))
			p.oracle = 1;
		else if (!strcmp(items[i], "fixed")) {
			for (unsigned s = 0; s < tab->n && m < MAX_POL; s++) {
				struct polspec q = { .cfg = base };
				q.cfg.kind = RTCI_CTL_FIXED;
				q.cfg.fixed_setup = s;
				snprintf(q.name, sizeof(q.name), "fixed:%u", s);
				ps[m++] = q;
			}
			continue;
		} else if (!strncmp(items[i], "fixed:", 6)) {
			char *e;
			unsigned long s = strtoul(items[i] + 6, &e, 10);
			if (*e || s >= tab->n) {
				fprintf(stderr, "rtci-sim: %s: no such setup\n", items[i]);
				free(copy);
				return -1;
			}
			p.cfg.kind = RTCI_CTL_FIXED;
			p.cfg.fixed_setup = (unsigned)s;
		} else {
			fprintf(stderr, "rtci-sim: unknown policy %s\n", items[i]);
			free(copy);
			return -1;
		}
		ps[m++] = p;
	}
	free(copy);
	*n = m;
	return 0;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Where SPINN's and CLIO's parameters come from: the table's measured blocks or defaults. */
static void print_baselines(const struct rtci_ctl_table *t)
{
	printf("%s: spinn %s (threshold %g: coverage %.4f, exit accuracy %.4f, rest factor %.4f, "
	       "exit %g ms); clio L %u, %s",
	       t->name, t->spinn.measured ? "measured" : "default", t->spinn.threshold,
	       t->spinn.coverage, t->spinn.exit_accuracy, t->spinn.rest_factor, t->spinn.exit_ms,
	       t->clio.L, t->clio.nwidths ? "measured per-width accuracy" : "setup-table accuracy");
	if (t->local.present)
		printf("; local exit %.4f in %g ms", t->local.accuracy, t->local.ms);
	printf("\n");
}

/* One device run: a trace, a run index (seeds) and the start offset into the trace. */
struct simrun {
	unsigned ti, run;
	int64_t off;
};

static int name_listed(const char *name, const char *list)
{
	if (!list)
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)); p++)
		if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
	return 0;
}

/* Options into opt; 0: run, 1: help printed, -1: usage error (printed). */
static int parse_args(int argc, char **argv, char **trace_arg, char **setup_arg)
{
	rtci_ctl_model_default(&opt.model);
	opt.duration_s = 300;
	opt.runs = 1;
	opt.seed = 1;
	opt.est = RTCI_CTL_EST_ROBUST;
	opt.window = 8;
	opt.report_ms = 1000;
	opt.report_gap_ms = 100;
	opt.admit = RTCI_CTL_ADMIT_FINISH;
	opt.decide = RTCI_CTL_DECIDE_GATEWAY;
	opt.policies = "mpc,fastmpc,rate,bba,spinn,clio,fixed,oracle";
	opt.fps[0] = 10;
	opt.nfps = 1;
	opt.deadline_ms[0] = 200;
	opt.ndl = 1;
	static struct option lo[] = {
		{ "traces", 1, 0, 't' },    { "setups", 1, 0, 's' },     { "fps", 1, 0, 'f' },
		{ "deadline-ms", 1, 0, 'd' }, { "policies", 1, 0, 'p' }, { "duration-s", 1, 0, 'D' },
		{ "runs", 1, 0, 'r' },      { "seed", 1, 0, 'S' },       { "summary-csv", 1, 0, 1 },
		{ "runs-csv", 1, 0, 2 },    { "frames-csv", 1, 0, 3 },   { "frames-traces", 1, 0, 4 },
		{ "head-ms", 1, 0, 5 },     { "prop-ms", 1, 0, 6 },      { "gw-queue-ms", 1, 0, 7 },
		{ "tail-ms", 1, 0, 8 },     { "horizon", 1, 0, 9 },      { "switch-penalty", 1, 0, 10 },
		{ "estimator", 1, 0, 11 },  { "window", 1, 0, 12 },      { "quiet", 0, 0, 'q' },
		{ "report-ms", 1, 0, 13 },  { "report-gap-ms", 1, 0, 14 }, { "admit", 1, 0, 15 },
		{ "decide", 1, 0, 22 },     { "plan-steps", 1, 0, 23 },
		{ "min-gain", 1, 0, 16 },   { "frag-overhead", 1, 0, 17 },
		{ "frame-overhead", 1, 0, 18 }, { "frag-bytes", 1, 0, 19 },
		{ "runs-from", 1, 0, 20 },  { "fixed-switch-penalty", 0, 0, 21 },
		{ "spinn-threshold", 1, 0, 24 }, { "no-local-exit", 0, 0, 25 },
		{ "help", 0, 0, 'h' },      { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case 't': *trace_arg = optarg; break;
		case 's': *setup_arg = optarg; break;
		case 'f':
			if (parse_doubles(optarg, opt.fps, &opt.nfps))
				goto bad;
			break;
		case 'd':
			if (parse_doubles(optarg, opt.deadline_ms, &opt.ndl))
				goto bad;
			break;
		case 'p': opt.policies = optarg; break;
		case 'D': opt.duration_s = atof(optarg); break;
		case 'r': opt.runs = (unsigned)atoi(optarg); break;
		case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
		case 1: opt.summary_csv = optarg; break;
		case 2: opt.runs_csv = optarg; break;
		case 3: opt.frames_csv = optarg; break;
		case 4: opt.frames_traces = optarg; break;
		case 5: opt.model.head_ns = llround(atof(optarg) * 1e6); break;
		case 6: opt.model.prop_ns = llround(atof(optarg) * 1e6); break;
		case 7: opt.model.gw_queue_ns = llround(atof(optarg) * 1e6); break;
		case 8: opt.model.tail_ns = llround(atof(optarg) * 1e6); break;
		case 9: opt.model.horizon = (unsigned)atoi(optarg); break;
		case 10: opt.model.switch_penalty = atof(optarg); break;
		case 16: opt.model.min_gain = atof(optarg); break;
		case 17: opt.model.frag_overhead = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 18: opt.model.frame_overhead = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 19: opt.model.frag_bytes = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 20: opt.runs_from = optarg; break;
		case 21: opt.model.fixed_switch_penalty = 1; break;
		case 25: opt.no_local_exit = 1; break;
		case 24: {
			char *e;
			opt.spinn_threshold = strtod(optarg, &e);
			if (*e || !isfinite(opt.spinn_threshold))
				goto bad;
			opt.spinn_threshold_set = 1;
			break;
		}
		case 23:
			opt.plan_steps = (unsigned)atoi(optarg);
			if (opt.plan_steps < 1 || opt.plan_steps > RTCI_CTL_MAX_PLAN)
				goto bad;
			break;
		case 22:
			if (!strcmp(optarg, "gateway"))
				opt.decide = RTCI_CTL_DECIDE_GATEWAY;
			else if (!strcmp(optarg, "capture"))
				opt.decide = RTCI_CTL_DECIDE_CAPTURE;
			else
				goto bad;
			break;
		case 11:
			if (!strcmp(optarg, "robust"))
				opt.est = RTCI_CTL_EST_ROBUST;
			else if (!strcmp(optarg, "harmonic"))
				opt.est = RTCI_CTL_EST_HARMONIC;
			else if (!strcmp(optarg, "ewma"))
				opt.est = RTCI_CTL_EST_EWMA;
			else
				goto bad;
			break;
		case 12: opt.window = (unsigned)atoi(optarg); break;
		case 13: opt.report_ms = atof(optarg); break;
		case 14: opt.report_gap_ms = atof(optarg); break;
		case 15:
			if (!strcmp(optarg, "finish"))
				opt.admit = RTCI_CTL_ADMIT_FINISH;
			else if (!strcmp(optarg, "start"))
				opt.admit = RTCI_CTL_ADMIT_START;
			else
				goto bad;
			break;
		case 'q': opt.quiet = 1; break;
		case 'h': usage(stdout); return 1;
		default: goto bad;
		}
	}
	if (!*trace_arg || !*setup_arg || opt.duration_s <= 0 || opt.runs < 1 || opt.window < 1 ||
	    opt.window > RTCI_CTL_EST_WINDOW || !(opt.report_ms >= 0) || !(opt.report_gap_ms >= 0) ||
	    opt.model.frag_bytes < 1 || opt.model.frag_bytes > 65535 ||
	    opt.model.frag_overhead > 65535 || opt.model.frame_overhead > 65535)
		goto bad;
	return 0;
bad:
	usage(stderr);
	return -1;
}

/* What one invocation works on: the traces, the device runs over them, the CSV outputs. */
struct sim {
	char *tpaths[MAX_TRACES];
	struct rtci_ctl_trace *traces[MAX_TRACES];
	unsigned ntr;
	struct simrun *runs;
	unsigned nruns;
	FILE *fs, *fr, *ff;
	struct rtci_ctl_policy *pol[MAX_POL];
	struct rtci_ctl_frame_out *fo;
};

static int load_traces(struct sim *S, char *trace_arg)
{
	char err[512];
	char *targs[MAX_LIST];
	unsigned nt = split(trace_arg, targs, MAX_LIST);
	if (collect_traces(targs, nt, S->tpaths, &S->ntr))
		return -1;
	if (!S->ntr) {
		fprintf(stderr, "rtci-sim: no trace files\n");
		return -1;
	}
	for (unsigned i = 0; i < S->ntr; i++) {
		int rc = rtci_ctl_trace_load_file(S->tpaths[i], RTCI_CTL_TRACE_AUTO, &S->traces[i],
						  err, sizeof(err));
		if (rc) {
			fprintf(stderr, "rtci-sim: %s (%s)\n", err, rtci_strerror(rc));
			return -1;
		}
	}
	return 0;
}

/* The seed of a run: the same for every policy, table and operating point. */
static uint64_t run_hash(const char *trace_name, unsigned run)
{
	return rtci_mix64(opt.seed ^ fnv(trace_name) ^ rtci_mix64(run + 1));
}

/* The device runs: the rows of --runs-from, or every trace from --runs seeded offsets. */
static int plan_runs(struct sim *S)
{
	if (opt.runs_from) {
		char err[512];
		const char *names[MAX_TRACES];
		for (unsigned i = 0; i < S->ntr; i++)
			names[i] = rtci_ctl_trace_name(S->traces[i]);
		struct rtci_ctl_fleet_run *fleet = NULL;
		int rc = rtci_ctl_fleet_load_file(opt.runs_from, names, S->ntr, &fleet, &S->nruns,
						  err, sizeof(err));
		if (rc) {
			fprintf(stderr, "rtci-sim: %s (%s)\n", err, rtci_strerror(rc));
			return -1;
		}
		S->runs = calloc(S->nruns, sizeof(*S->runs));
		for (unsigned i = 0; S->runs && i < S->nruns; i++) {
			int64_t period = rtci_ctl_trace_period_ns(S->traces[fleet[i].trace]);
			S->runs[i] = (struct simrun){
				.ti = fleet[i].trace, .run = i,
				.off = llround(fleet[i].offset_s * 1e9) % (period > 0 ? period : 1),
			};
		}
		free(fleet);
		return S->runs ? 0 : -1;
	}
	S->runs = calloc((size_t)S->ntr * opt.runs, sizeof(*S->runs));
	if (!S->runs)
		return -1;
	for (unsigned ti = 0; ti < S->ntr; ti++)
		for (unsigned run = 0; run < opt.runs; run++) {
			uint64_t h = run_hash(rtci_ctl_trace_name(S->traces[ti]), run);
			S->runs[S->nruns++] = (struct simrun){
				.ti = ti, .run = run,
				.off = (int64_t)(h % (uint64_t)rtci_ctl_trace_period_ns(S->traces[ti])),
			};
		}
	return 0;
}

static int open_outputs(struct sim *S)
{
	S->fs = opt.summary_csv ? fopen(opt.summary_csv, "w") : NULL;
	S->fr = opt.runs_csv ? fopen(opt.runs_csv, "w") : NULL;
	S->ff = opt.frames_csv ? fopen(opt.frames_csv, "w") : NULL;
	if ((opt.summary_csv && !S->fs) || (opt.runs_csv && !S->fr) || (opt.frames_csv && !S->ff)) {
		fprintf(stderr, "rtci-sim: cannot write output: %s\n", strerror(errno));
		return -1;
	}
	if (S->fs)
		fprintf(S->fs, "table,fps,deadline_ms,policy,runs,rt_accuracy,hit_rate,delivered_accuracy,"
			       "switches_per_min,mbytes_sent,share_of_oracle,answered_locally\n");
	if (S->fr)
		fprintf(S->fr, "table,fps,deadline_ms,trace,run,offset_s,policy,frames,rt_accuracy,hit_rate,"
			       "delivered_accuracy,switches_per_min,bytes_sent,oracle_bound,answered_locally,"
			       "link_mbps\n");
	if (S->ff)
		fprintf(S->ff, "table,fps,deadline_ms,trace,run,policy,frame,t_s,link_mbps,setup,c,bits,"
			       "bytes,latency_ms,hit,exited,credit,local\n");
	return 0;
}

/* A table with --no-local-exit and --spinn-threshold applied; 0, 1 (error) or 2 (usage). */
static int load_table(const char *path, struct rtci_ctl_table *tab)
{
	char err[512];
	if (rtci_ctl_table_load_any(path, tab, err, sizeof(err))) {
		fprintf(stderr, "rtci-sim: %s\n", err);
		return 1;
	}
	if (opt.no_local_exit)
		tab->local.present = false; /* the device has no exit head: as before it */
	if (opt.spinn_threshold_set && rtci_ctl_table_spinn_select(tab, opt.spinn_threshold)) {
		fprintf(stderr, "rtci-sim: %s: no measured SPINN point at threshold %g (", path,
			opt.spinn_threshold);
		for (unsigned i = 0; i < tab->spinn.npoints; i++)
			fprintf(stderr, "%s%g", i ? ", " : "", tab->spinn.points[i].threshold);
		fprintf(stderr, ")\n");
		return 2;
	}
	if (!opt.quiet)
		print_baselines(tab);
	return 0;
}

/* One operating point: the table, the model (fps, deadline) and the policies to run. */
struct point {
	const struct rtci_ctl_table *tab;
	const struct rtci_ctl_model *m;
	double deadline_ms;
	const struct polspec *ps;
	unsigned np;
	int oracle_i;     /* index of the oracle in ps, or -1 */
	unsigned frames;
	struct acc ac[MAX_POL];
	double bound_sum;
	unsigned bound_n;
};

static void write_frames(struct sim *S, const struct point *P, const char *tn, unsigned run,
			 const char *policy, int64_t off)
{
	const struct rtci_ctl_table *tab = P->tab;
	for (unsigned k = 0; k < P->frames; k++) {
		const struct rtci_ctl_frame_out *o = &S->fo[k];
		int s = o->setup == RTCI_CTL_SKIP ? -1 : o->setup;
		fprintf(S->ff, "%s,%g,%g,%s,%u,%s,%u,%.4f,%.4f,%d,%u,%u,%.0f,%.3f,%u,%u,%.4f,%u\n",
			tab->name, P->m->fps, P->deadline_ms, tn, run, policy, k,
			(double)(o->capture_ns - off) * 1e-9, o->link_bps * 8e-6, s,
			s >= 0 ? tab->s[s].c : 0, s >= 0 ? tab->s[s].bits : 0, o->bytes, o->latency_ms,
			o->hit, o->exited, o->credit, o->local);
	}
}

/* Every policy on one device run, the oracle first so every row carries its bound. */
static int run_device(struct sim *S, struct point *P, const struct simrun *sr)
{
	const char *tn = rtci_ctl_trace_name(S->traces[sr->ti]);
	struct rtci_ctl_sim_cfg sc = {
		.trace = S->traces[sr->ti], .table = P->tab, .model = P->m,
		.offset_ns = sr->off, .frames = P->frames, .seed = rtci_mix64(run_hash(tn, sr->run)),
		.report_ns = llround(opt.report_ms * 1e6),
		.report_gap_ns = llround(opt.report_gap_ms * 1e6),
		.admit = opt.admit, .decide = opt.decide, .plan_steps = opt.plan_steps,
	};
	double bound = -1;
	int want_frames = S->ff && name_listed(tn, opt.frames_traces);
	/* the link's mean capacity over the run: what accuracy is plotted against */
	double span_s = P->frames / P->m->fps;
	double link_mbps = rtci_ctl_trace_bytes(sc.trace, sr->off, sr->off + llround(span_s * 1e9)) *
			   8e-6 / span_s;
	for (unsigned pi = 0; pi < P->np; pi++) {
		int oi = P->oracle_i;
		unsigned p = oi < 0 ? pi : pi == 0 ? (unsigned)oi : pi <= (unsigned)oi ? pi - 1 : pi;
		const struct polspec *ps = &P->ps[p];
		struct rtci_ctl_sim_result r;
		sc.policy = S->pol[p];
		int rc = ps->oracle ? rtci_ctl_oracle_run(&sc, S->fo, &r)
				    : rtci_ctl_sim_run(&sc, S->fo, &r);
		if (rc) {
			fprintf(stderr, "rtci-sim: %s on %s: %s\n", ps->name, tn, rtci_strerror(rc));
			return -1;
		}
		if (ps->oracle) {
			bound = r.bound;
			P->bound_sum += r.bound;
			P->bound_n++;
		}
		struct acc *a = &P->ac[p];
		a->runs++;
		a->rt += r.rt_accuracy;
		a->hit += r.hit_rate;
		a->deliv += r.delivered_accuracy;
		a->sw += r.switches_per_min;
		a->bytes += r.bytes_sent;
		a->local += r.local_rate;
		if (S->fr)
			fprintf(S->fr, "%s,%g,%g,%s,%u,%.3f,%s,%u,%.6f,%.6f,%.6f,%.3f,%.0f,%.6f,%.6f,%.4f\n",
				P->tab->name, P->m->fps, P->deadline_ms, tn, sr->run,
				(double)sr->off * 1e-9, ps->name, r.frames, r.rt_accuracy, r.hit_rate,
				r.delivered_accuracy, r.switches_per_min, r.bytes_sent,
				ps->oracle ? r.bound : bound, r.local_rate, link_mbps);
		if (want_frames && strncmp(ps->name, "fixed", 5))
			write_frames(S, P, tn, sr->run, ps->name, sr->off);
	}
	return 0;
}

/* The summary rows of one operating point, printed and in the summary CSV. */
static void report_point(struct sim *S, const struct point *P)
{
	const struct polspec *ps = P->ps;
	double ob = P->bound_n ? P->bound_sum / P->bound_n : 0;
	/* best fixed setup in hindsight, for the printed table */
	int best_fixed = -1;
	for (unsigned p = 0; p < P->np; p++)
		if (ps[p].cfg.kind == RTCI_CTL_FIXED && !ps[p].oracle &&
		    (best_fixed < 0 || P->ac[p].rt > P->ac[best_fixed].rt))
			best_fixed = (int)p;
	if (!opt.quiet) {
		if (opt.runs_from)
			printf("\n== table %s, %g fps, deadline %g ms: %u devices of %s, %u frames each ==\n",
			       P->tab->name, P->m->fps, P->deadline_ms, S->nruns, opt.runs_from, P->frames);
		else
			printf("\n== table %s, %g fps, deadline %g ms: %u traces x %u runs, %u frames each ==\n",
			       P->tab->name, P->m->fps, P->deadline_ms, S->ntr, opt.runs, P->frames);
		printf("%-14s %9s %8s %9s %8s %10s %9s %7s\n", "policy", "rt-acc", "hit", "deliv-acc",
		       "sw/min", "MB/run", "of-oracle", "local");
	}
	for (unsigned p = 0; p < P->np; p++) {
		const struct acc *a = &P->ac[p];
		double n = a->runs ? a->runs : 1;
		double share = ob > 0 ? a->rt / n / ob : 0;
		if (S->fs)
			fprintf(S->fs, "%s,%g,%g,%s,%u,%.6f,%.6f,%.6f,%.3f,%.3f,%.6f,%.6f\n", P->tab->name,
				P->m->fps, P->deadline_ms, ps[p].name, a->runs, a->rt / n, a->hit / n,
				a->deliv / n, a->sw / n, a->bytes / n * 1e-6, share, a->local / n);
		int show = ps[p].cfg.kind != RTCI_CTL_FIXED || ps[p].oracle || (int)p == best_fixed;
		if (!opt.quiet && show)
			printf("%-14s %9.4f %8.4f %9.4f %8.2f %10.2f %9.4f %7.4f%s\n", ps[p].name,
			       a->rt / n, a->hit / n, a->deliv / n, a->sw / n, a->bytes / n * 1e-6, share,
			       a->local / n, (int)p == best_fixed ? "  (best fixed)" : "");
	}
	if (!opt.quiet && P->oracle_i >= 0)
		printf("%-14s %9.4f  (DP upper bound; oracle row = its plan replayed)\n", "oracle-bound",
		       ob);
}

/* Every device run at one operating point under every policy. */
static int run_point(struct sim *S, struct point *P)
{
	int rc = 0;
	for (unsigned p = 0; p < P->np; p++) {
		if (P->ps[p].oracle) {
			P->oracle_i = (int)p;
			continue;
		}
		if ((rc = rtci_ctl_policy_create(P->tab, P->m, &P->ps[p].cfg, &S->pol[p]))) {
			fprintf(stderr, "rtci-sim: policy %s: %s\n", P->ps[p].name, rtci_strerror(rc));
			return -1;
		}
	}
	S->fo = malloc(P->frames * sizeof(*S->fo));
	if (!S->fo)
		return -1;
	for (unsigned ri = 0; ri < S->nruns && rc == 0; ri++)
		rc = run_device(S, P, &S->runs[ri]);
	free(S->fo);
	S->fo = NULL;
	if (rc == 0)
		report_point(S, P);
	for (unsigned p = 0; p < P->np; p++) {
		rtci_ctl_policy_destroy(S->pol[p]);
		S->pol[p] = NULL;
	}
	return rc;
}

/* Every operating point of one table; 0, 1 (error) or 2 (usage). */
static int run_table(struct sim *S, const char *path)
{
	static struct rtci_ctl_table tab;
	int rc = load_table(path, &tab);
	if (rc)
		return rc;
	static struct polspec ps[MAX_POL];
	unsigned np = 0;
	if (parse_policies(opt.policies, &tab, ps, &np))
		return 2;
	for (unsigned fi = 0; fi < opt.nfps; fi++)
		for (unsigned di = 0; di < opt.ndl; di++) {
			struct rtci_ctl_model m = opt.model;
			m.fps = opt.fps[fi];
			m.deadline_ns = llround(opt.deadline_ms[di] * 1e6);
			static struct point P;
			P = (struct point){ .tab = &tab, .m = &m, .deadline_ms = opt.deadline_ms[di],
					    .ps = ps, .np = np, .oracle_i = -1,
					    .frames = (unsigned)llround(opt.duration_s * m.fps) };
			if (run_point(S, &P))
				return 1;
		}
	return 0;
}

static void sim_free(struct sim *S)
{
	free(S->fo);
	free(S->runs);
	for (unsigned p = 0; p < MAX_POL; p++)
		rtci_ctl_policy_destroy(S->pol[p]);
	if (S->fs)
		fclose(S->fs);
	if (S->fr)
		fclose(S->fr);
	if (S->ff)
		fclose(S->ff);
	for (unsigned i = 0; i < S->ntr; i++) {
		rtci_ctl_trace_destroy(S->traces[i]);
		free(S->tpaths[i]);
	}
}

int main(int argc, char **argv)
{
	char *trace_arg = NULL, *setup_arg = NULL;
	int rc = parse_args(argc, argv, &trace_arg, &setup_arg);
	if (rc)
		return rc > 0 ? 0 : 2;
	static struct sim S;
	char *sargs[MAX_LIST];
	unsigned ns = split(setup_arg, sargs, MAX_LIST);
	int status = load_traces(&S, trace_arg) || plan_runs(&S) || open_outputs(&S) ? 1 : 0;
	for (unsigned si = 0; si < ns && status == 0; si++)
		status = run_table(&S, sargs[si]);
	sim_free(&S);
	return status;
}
