/* Policies: the MPC (exact branch-and-bound solver and table-driven fast path), rate-based,
 * buffer-based, fixed, and the setup choices of the SPINN-like and CLIO-like baselines, plus the
 * per-device controller state the gateway keeps. */
#include "control/policy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct rtci_ctl_device) <= 512, "controller state must fit 512 bytes");

#define MAX_H 8
_Static_assert(MAX_H <= RTCI_CTL_MAX_PLAN, "a plan of the longest horizon fits a command");
/* Fast-path bins: bandwidth log-spaced over the range where the choice depends on it (see
 * fast_range), uplink excess (queue drain time beyond the head time) linear over [0, W]. Each
 * cell holds the exact solver's whole plan. */
#define FAST_NBW 160
#define FAST_NE 64
/* fallback_setup: at most this many times the smallest setup's link bytes. rtci-sim: 1.5 to 3
 * give the same figures (docs/control.md §3). */
#define FALLBACK_BYTES_FACTOR 2.0

struct rtci_ctl_policy {
	struct rtci_ctl_table table;
	struct rtci_ctl_model m;
	struct rtci_ctl_policy_cfg cfg;
	double T, head, post, W; /* seconds */
	unsigned nf;            /* frontier, ascending bytes, strictly ascending accuracy */
	uint8_t fid[RTCI_CTL_MAX_SETUPS];
	int8_t fidx[RTCI_CTL_MAX_SETUPS]; /* setup id -> frontier index or -1 */
	unsigned nh;            /* concave hull of (0, skip_credit) and the frontier */
	double hx[RTCI_CTL_MAX_SETUPS + 1], hy[RTCI_CTL_MAX_SETUPS + 1];
	uint8_t clio_setup;
	bool local;             /* the table's local exit answers in time: LOCAL is an action */
	double skip_credit;     /* credit of a frame without a server answer in time */
	double lambda;          /* the switch penalty priced for this table (see miss_scale) */
	uint8_t fallback;       /* sent when no setup is predicted to make its deadline */
	uint8_t no_upload;      /* what a plan step that uploads nothing becomes (see choose) */
	double lb[RTCI_CTL_MAX_SETUPS]; /* setup id -> link bytes of a frame (model overheads) */
	uint8_t *fast;          /* [FAST_NBW][FAST_NE][nf + 1][horizon]: plans */
	double fast_lbw_lo, fast_lbw_scale;
};

void rtci_ctl_model_default(struct rtci_ctl_model *m)
{
	*m = (struct rtci_ctl_model){
		.fps = 10,
		.deadline_ns = 200000000,
		.head_ns = 5000000,
		.prop_ns = 20000000,
		.gw_queue_ns = 2000000,
		.tail_ns = 8000000,
		.switch_penalty = 0.02,
		/* 20 of 10,000 test images: smaller gains are within the noise of the table's
		 * accuracies and not worth the bytes (a larger frame misses more often) */
		.min_gain = 0.002,
		.horizon = 5,
		.frag_bytes = 1400,
		.bw_floor = 125000,
	};
}

/* Link bytes of a frame of `payload` bytes sent in fragments of `frag` payload bytes. */
static double link_bytes(const struct rtci_ctl_model *m, double payload, double frag)
{
	if (!(payload > 0))
		return 0;
	double frags = frag > 0 ? ceil(payload / frag) : 1;
	return payload + frags * m->frag_overhead + m->frame_overhead;
}

double rtci_ctl_link_bytes(const struct rtci_ctl_model *m, double payload)
{
	return link_bytes(m, payload, m->frag_bytes);
}

enum rtci_ctl_est_kind rtci_ctl_policy_estimator(enum rtci_ctl_kind kind)
{
	return kind == RTCI_CTL_RATE || kind == RTCI_CTL_SPINN ? RTCI_CTL_EST_HARMONIC
							       : RTCI_CTL_EST_ROBUST;
}

static int cmp_by_bytes(const void *a, const void *b, void *ctx)
{
	const struct rtci_ctl_table *t = ctx;
	const struct rtci_ctl_setup *x = &t->s[*(const uint8_t *)a], *y = &t->s[*(const uint8_t *)b];
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? -1 : 1;
	if (x->accuracy != y->accuracy)
		return x->accuracy > y->accuracy ? -1 : 1;
	return *(const uint8_t *)a - *(const uint8_t *)b;
}

/* Insertion sort with a context (n <= 64). */
static void sort_ids(uint8_t *ids, unsigned n, const struct rtci_ctl_table *t)
{
	for (unsigned i = 1; i < n; i++) {
		uint8_t v = ids[i];
		unsigned j = i;
		while (j > 0 && cmp_by_bytes(&ids[j - 1], &v, (void *)t) > 0) {
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = v;
	}
}

static void build_frontier(struct rtci_ctl_policy *p)
{
	const struct rtci_ctl_table *t = &p->table;
	uint8_t ids[RTCI_CTL_MAX_SETUPS];
	for (unsigned i = 0; i < t->n; i++)
		ids[i] = (uint8_t)i;
	sort_ids(ids, t->n, t);
	double best = -1;
	p->nf = 0;
	memset(p->fidx, -1, sizeof(p->fidx));
	for (unsigned i = 0; i < t->n; i++) {
		const struct rtci_ctl_setup *s = &t->s[ids[i]];
		/* not dominated by a smaller one that is at most min_gain less accurate */
		if (p->nf == 0 || s->accuracy > best + p->m.min_gain) {
			p->fidx[ids[i]] = (int8_t)p->nf;
			p->fid[p->nf++] = ids[i];
			best = s->accuracy;
		}
	}
	/* Upper concave hull through (0, credit of no upload): bounds credit per byte for the
	 * solver; setups no better than no upload are left out, so it never decreases. */
	p->nh = 0;
	p->hx[p->nh] = 0;
	p->hy[p->nh++] = p->skip_credit;
	for (unsigned i = 0; i < p->nf; i++) {
		double x = p->lb[p->fid[i]], y = t->s[p->fid[i]].accuracy;
		if (y <= p->skip_credit)
			continue;
		while (p->nh >= 2) {
			double x1 = p->hx[p->nh - 2], y1 = p->hy[p->nh - 2];
			double x2 = p->hx[p->nh - 1], y2 = p->hy[p->nh - 1];
			/* drop the middle point when it lies on or under the chord */
			if ((y2 - y1) * (x - x1) <= (y - y1) * (x2 - x1))
				p->nh--;
			else
				break;
		}
		p->hx[p->nh] = x;
		p->hy[p->nh++] = y;
	}
}

static double hull_at(const struct rtci_ctl_policy *p, double x)
{
	if (x <= 0)
		return p->hy[0];
	for (unsigned i = 1; i < p->nh; i++)
		if (x <= p->hx[i])
			return p->hy[i - 1] +
			       (p->hy[i] - p->hy[i - 1]) * (x - p->hx[i - 1]) / (p->hx[i] - p->hx[i - 1]);
	return p->hy[p->nh - 1];
}

/* ------------------------------------------------------------------------------------------ */
/* Exact solver: depth-first branch and bound over frontier setups (plus the previous setup,
 * which may be kept without a switch) and skip. Sending a frame that misses is never better
 * than skipping it (same credit, more backlog, no fewer switches), so only on-time sends are
 * branched on. */

struct solve_ctx {
	const struct rtci_ctl_policy *p;
	unsigned H, nc;
	double e_end; /* terminal constraint: excess after the horizon at most this */
	double tx[RTCI_CTL_MAX_SETUPS + 1];
	double acc[RTCI_CTL_MAX_SETUPS + 1];
	uint8_t id[RTCI_CTL_MAX_SETUPS + 1];
	double bw, lambda;
	double best;
	uint8_t plan[MAX_H], best_plan[MAX_H];
};

static double bound_rest(const struct solve_ctx *c, unsigned j, double e)
{
	const struct rtci_ctl_policy *p = c->p;
	unsigned m = c->H - j;
	/* bytes until the last frame's send deadline, and until the queue must be back to e_end
	 * at the end of the horizon (terminal constraint) */
	double t_dl = (double)(m - 1) * p->T + p->W - e;
	double t_end = (double)m * p->T + c->e_end - e;
	double budget = (t_dl < t_end ? t_dl : t_end) * c->bw;
	if (budget <= 0)
		return (double)m * p->skip_credit;
	double one = p->W * c->bw;
	double per = budget / m;
	return (double)m * hull_at(p, per < one ? per : one);
}

static void dfs(struct solve_ctx *c, unsigned j, double e, unsigned prev, double val)
{
	const struct rtci_ctl_policy *p = c->p;
	if (j == c->H) {
		if (e <= c->e_end && val > c->best + 1e-12) {
			c->best = val;
			memcpy(c->best_plan, c->plan, c->H);
		}
		return;
	}
	if (val + bound_rest(c, j, e) <= c->best + 1e-12)
		return;
	double room = p->W - e;
	/* largest feasible first: good incumbents early */
	for (int i = (int)c->nc - 1; i >= 0; i--) {
		if (c->tx[i] > room)
			continue;
		double v = val + c->acc[i];
		if (prev != RTCI_CTL_SKIP && c->id[i] != prev)
			v -= c->lambda;
		double e2 = e + c->tx[i] - p->T;
		c->plan[j] = c->id[i];
		dfs(c, j + 1, e2 > 0 ? e2 : 0, c->id[i], v);
	}
	double e2 = e - p->T;
	c->plan[j] = RTCI_CTL_SKIP;
	dfs(c, j + 1, e2 > 0 ? e2 : 0, prev, val + p->skip_credit);
}

static double excess0(const struct rtci_ctl_policy *p, double bw, double backlog)
{
	double e = backlog / bw - p->head;
	return e > 0 ? e : 0;
}

static int solve_e(const struct rtci_ctl_policy *p, double bw, double e0, unsigned prev,
		   double lambda, uint8_t *plan, double *value)
{
	struct solve_ctx c;
	c.p = p;
	c.H = p->m.horizon;
	c.bw = bw;
	c.lambda = lambda;
	c.nc = 0;
	c.e_end = e0 + 1e-12;
	int prev_in = prev != RTCI_CTL_SKIP && prev < p->table.n && p->fidx[prev] < 0;
	for (unsigned i = 0; i < p->nf; i++) {
		const struct rtci_ctl_setup *s = &p->table.s[p->fid[i]];
		if (prev_in && p->table.s[prev].bytes < s->bytes) {
			c.id[c.nc] = (uint8_t)prev;
			c.tx[c.nc] = p->lb[prev] / bw;
			c.acc[c.nc++] = p->table.s[prev].accuracy;
			prev_in = 0;
		}
		c.id[c.nc] = p->fid[i];
		c.tx[c.nc] = p->lb[p->fid[i]] / bw;
		c.acc[c.nc++] = s->accuracy;
	}
	if (prev_in) {
		c.id[c.nc] = (uint8_t)prev;
		c.tx[c.nc] = p->lb[prev] / bw;
		c.acc[c.nc++] = p->table.s[prev].accuracy;
	}
	/* incumbent: skip everything */
	c.best = 0;
	memset(c.best_plan, RTCI_CTL_SKIP, sizeof(c.best_plan));
	c.best -= 1e-9; /* so that a plan of value 0 is recorded too */
	dfs(&c, 0, e0, prev, 0);
	if (plan)
		memcpy(plan, c.best_plan, c.H);
	if (value)
		*value = c.best < 0 ? 0 : c.best;
	return c.best_plan[0];
}

static double clamp_bw(const struct rtci_ctl_policy *p, double bw)
{
	return bw > 0 && isfinite(bw) ? bw : p->m.bw_floor;
}

int rtci_ctl_solve_exact(const struct rtci_ctl_policy *p, double bw, double backlog, unsigned prev,
			 uint8_t *plan, double *value)
{
	bw = clamp_bw(p, bw);
	return solve_e(p, bw, excess0(p, bw, backlog > 0 ? backlog : 0), prev, p->lambda, plan,
		       value);
}

static unsigned prev_slot(const struct rtci_ctl_policy *p, unsigned prev)
{
	if (prev == RTCI_CTL_SKIP || prev >= p->table.n || p->fidx[prev] < 0)
		return p->nf;
	return (unsigned)p->fidx[prev];
}

/* The plan stored for the cell of (bw, backlog, prev). */
static const uint8_t *fast_plan(const struct rtci_ctl_policy *p, double bw, double backlog,
				unsigned prev)
{
	bw = clamp_bw(p, bw);
	double e = excess0(p, bw, backlog > 0 ? backlog : 0);
	double lb = (log(bw) - p->fast_lbw_lo) * p->fast_lbw_scale;
	int ib = lb <= 0 ? 0 : lb >= FAST_NBW - 1 ? FAST_NBW - 1 : (int)lb;
	double le = e / p->W * FAST_NE;
	int ie = le >= FAST_NE - 1 ? FAST_NE - 1 : (int)le;
	size_t cell = ((size_t)ib * FAST_NE + (size_t)ie) * (p->nf + 1) + prev_slot(p, prev);
	return p->fast + cell * p->m.horizon;
}

int rtci_ctl_solve_fast(const struct rtci_ctl_policy *p, double bw, double backlog, unsigned prev)
{
	return fast_plan(p, bw, backlog, prev)[0];
}

double rtci_ctl_plan_value(const struct rtci_ctl_policy *p, double bw, double backlog,
			   unsigned prev, const uint8_t *plan, unsigned h)
{
	bw = clamp_bw(p, bw);
	double e = excess0(p, bw, backlog > 0 ? backlog : 0);
	double val = 0;
	for (unsigned j = 0; j < h; j++) {
		unsigned s = plan[j];
		double end = e; /* queue excess after this frame, relative to its ready time */
		double credit = p->skip_credit; /* unless a server answer arrives in time */
		if (s != RTCI_CTL_SKIP && s < p->table.n) {
			if (prev != RTCI_CTL_SKIP && s != prev)
				val -= p->lambda;
			prev = s;
			if (e < p->W) { /* otherwise the device drops it before sending */
				double tx = p->lb[s] / bw;
				end = e + tx;
				if (end <= p->W)
					credit = p->table.s[s].accuracy;
			}
		}
		val += credit;
		e = end - p->T > 0 ? end - p->T : 0;
	}
	/* terminal constraint: a plan may not leave a longer queue than it found */
	if (e > excess0(p, bw, backlog > 0 ? backlog : 0) + 1e-12)
		return -INFINITY;
	return val;
}

int64_t rtci_ctl_frame_latency(const struct rtci_ctl_model *m, double backlog, double bytes,
			       double bw)
{
	double head = (double)m->head_ns * 1e-9;
	double wait = backlog / bw - head;
	if (wait < 0)
		wait = 0;
	double s = head + wait + bytes / bw;
	return llround(s * 1e9) + m->prop_ns + m->gw_queue_ns + m->tail_ns;
}

/* What to send when no setup is predicted to make its deadline (the plan skips, or nothing fits
 * the rate budget): a bet that the link comes back. A prediction that low comes from a stalled
 * link (drop reports) or from frames of one or two datagrams, whose samples time the wait for the
 * link more than its rate (§2 of docs/control.md); it cannot tell 150 bytes from 300. So the bet
 * is the most accurate frontier setup within twice the smallest one's link bytes and within one
 * datagram: on a link that delivers whole packets it costs the same one packet, on a fluid link at
 * most twice the smallest frame's time. On the Fashion-MNIST table that is (2 ch, 4 bit) at 0.905
 * instead of (1 ch, 1 bit) at 0.83; a table whose smallest frame needs more than one datagram
 * (mnv2-224) keeps its smallest setup. rtci-sim, docs/control.md §3. */
static uint8_t fallback_setup(const struct rtci_ctl_policy *p)
{
	double limit = FALLBACK_BYTES_FACTOR * p->lb[p->fid[0]];
	double datagram = p->m.frag_bytes + p->m.frag_overhead;
	if (limit > datagram)
		limit = datagram;
	uint8_t best = p->fid[0];
	for (unsigned i = 1; i < p->nf; i++)
		if (p->lb[p->fid[i]] <= limit)
			best = p->fid[i];
	return best;
}

/* What the MPCs decide for a frame their plan uploads nothing for. The device drops a frame
 * itself when its own, exactly known queue cannot get it out by the deadline, so the fallback
 * costs nothing unless it makes it; and a late or dropped frame still gets the local exit's
 * answer. So the fallback is sent whenever it is more accurate than the local answer, and
 * "answer locally" (no upload, probes only) is decided only where it is not. rtci-sim with the
 * Fashion-MNIST model (docs/control.md §4): hit rate 0.989 -> 0.994 at 30 fps / 100 ms. */
static uint8_t no_upload_action(const struct rtci_ctl_policy *p)
{
	if (p->local && !(p->table.s[p->fallback].accuracy > p->skip_credit))
		return RTCI_CTL_LOCAL;
	return p->fallback;
}

/* The switch penalty prices the risk a switch takes: a larger frame that then misses. A miss
 * still earns the local exit's answer where there is one, so it costs only what the frame would
 * have added above that answer, not all of its accuracy: the penalty is scaled by that share of
 * the top frontier setup's accuracy (1 without a local exit, so mnv2-224 is unchanged). With the
 * Fashion-MNIST model (0.9235 top, 0.8923 local) that is 0.034, and the MPC then follows the link
 * where the full penalty held a smaller setup: ./scripts/demo on all 10,000 test images,
 * real-time accuracy 0.9216 -> 0.9222 (docs/control.md §3). */
static double miss_scale(const struct rtci_ctl_policy *p)
{
	double top = p->table.s[p->fid[p->nf - 1]].accuracy;
	if (!(top > p->skip_credit))
		return 0;
	return (top - p->skip_credit) / top;
}

/* The bandwidths between which the solver's choice can change, for this table and operating
 * point: below half of what the smallest frontier frame needs to make its send window alone
 * every plan skips; above 16 times what the largest needs to leave within min(T, W) the
 * largest is sent at any excess the table covers. A fixed range (1 kB/s to 250 MB/s) spent
 * most bins where nothing changes. */
static void fast_range(const struct rtci_ctl_policy *p, double *lo, double *hi)
{
	double tmin = p->T < p->W ? p->T : p->W;
	*lo = 0.5 * p->lb[p->fid[0]] / p->W;
	*hi = 16.0 * p->lb[p->fid[p->nf - 1]] / tmin;
	if (!(*hi > *lo * 4))
		*hi = *lo * 4;
}

static int build_fast(struct rtci_ctl_policy *p)
{
	size_t slots = p->nf + 1, H = p->m.horizon;
	p->fast = malloc((size_t)FAST_NBW * FAST_NE * slots * H);
	if (!p->fast)
		return -ENOMEM;
	double lo, hi;
	fast_range(p, &lo, &hi);
	p->fast_lbw_lo = log(lo);
	p->fast_lbw_scale = FAST_NBW / (log(hi) - log(lo));
	for (int ib = 0; ib < FAST_NBW; ib++) {
		double bw = exp(p->fast_lbw_lo + (ib + 0.5) / p->fast_lbw_scale);
		for (int ie = 0; ie < FAST_NE; ie++) {
			double e = (ie + 0.5) * p->W / FAST_NE;
			for (size_t ps = 0; ps < slots; ps++) {
				unsigned prev = ps < p->nf ? p->fid[ps] : RTCI_CTL_SKIP;
				size_t cell = ((size_t)ib * FAST_NE + (size_t)ie) * slots + ps;
				solve_e(p, bw, e, prev, p->lambda, p->fast + cell * H, NULL);
			}
		}
	}
	return 0;
}

int rtci_ctl_policy_create(const struct rtci_ctl_table *table, const struct rtci_ctl_model *m,
			   const struct rtci_ctl_policy_cfg *cfg, struct rtci_ctl_policy **out)
{
	if (!table || !m || !cfg || !out || table->n == 0 || table->n > RTCI_CTL_MAX_SETUPS)
		return -EINVAL;
	if (!(m->fps > 0) || m->fps > 1000 || m->deadline_ns <= 0 || m->head_ns < 0 ||
	    m->prop_ns < 0 || m->gw_queue_ns < 0 || m->tail_ns < 0 || m->horizon < 1 ||
	    m->horizon > MAX_H || !(m->switch_penalty >= 0) || !(m->min_gain >= 0) ||
	    !(m->min_gain < 1) || !(m->bw_floor > 0))
		return -EINVAL;
	if (cfg->kind == RTCI_CTL_FIXED && cfg->fixed_setup >= table->n)
		return -EINVAL;
	struct rtci_ctl_policy *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->table = *table;
	p->m = *m;
	p->cfg = *cfg;
	if (!p->cfg.est_window)
		p->cfg.est_window = 8;
	p->T = 1.0 / m->fps;
	p->head = (double)m->head_ns * 1e-9;
	p->post = (double)(m->prop_ns + m->gw_queue_ns + m->tail_ns) * 1e-9;
	p->W = (double)m->deadline_ns * 1e-9 - p->head - p->post;
	if (p->W <= 0) {
		free(p);
		return -EINVAL;
	}
	for (unsigned i = 0; i < table->n; i++)
		p->lb[i] = rtci_ctl_link_bytes(m, table->s[i].bytes);
	/* The local exit: every frame without a server answer in time gets its answer, if that is
	 * ready by the deadline; the MPCs may then choose it outright. */
	if (table->local.present &&
	    m->head_ns + llround(table->local.ms * 1e6) <= m->deadline_ns) {
		p->skip_credit = table->local.accuracy;
		p->local = cfg->kind == RTCI_CTL_MPC || cfg->kind == RTCI_CTL_FASTMPC;
	}
	build_frontier(p);
	p->lambda = m->switch_penalty * miss_scale(p);
	p->fallback = fallback_setup(p);
	p->no_upload = no_upload_action(p);
	unsigned cmax = 0;
	for (unsigned i = 0; i < table->n; i++)
		if (table->s[i].L == table->clio.L && table->s[i].c > cmax) {
			cmax = table->s[i].c;
			p->clio_setup = (uint8_t)i;
		}
	if (cfg->kind == RTCI_CTL_CLIO && !cmax && !table->clio.nwidths) {
		free(p);
		return -EINVAL;
	}
	if (cfg->kind == RTCI_CTL_FASTMPC) {
		int rc = build_fast(p);
		if (rc) {
			free(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

void rtci_ctl_policy_destroy(struct rtci_ctl_policy *p)
{
	if (!p)
		return;
	free(p->fast);
	free(p);
}

const struct rtci_ctl_table *rtci_ctl_policy_table(const struct rtci_ctl_policy *p)
{
	return &p->table;
}
const struct rtci_ctl_model *rtci_ctl_policy_model(const struct rtci_ctl_policy *p) { return &p->m; }
enum rtci_ctl_kind rtci_ctl_policy_kind(const struct rtci_ctl_policy *p) { return p->cfg.kind; }

unsigned rtci_ctl_policy_fallback(const struct rtci_ctl_policy *p) { return p->fallback; }

unsigned rtci_ctl_policy_frontier(const struct rtci_ctl_policy *p, uint8_t *ids, unsigned cap)
{
	for (unsigned i = 0; i < p->nf && i < cap; i++)
		ids[i] = p->fid[i];
	return p->nf;
}

size_t rtci_ctl_policy_table_bytes(const struct rtci_ctl_policy *p)
{
	return p->fast ? (size_t)FAST_NBW * FAST_NE * (p->nf + 1) * p->m.horizon : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-device state */

void rtci_ctl_device_init(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p)
{
	memset(d, 0, sizeof(*d));
	rtci_ctl_est_init(&d->est, p->cfg.est_window);
	d->prev_setup = RTCI_CTL_SKIP;
}

void rtci_ctl_observe_frame(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
			    const struct rtci_ctl_obs *o)
{
	/* Throughput while the frame was on the link. A frame of several fragments: the bytes
	 * after the first fragment over the first-to-last fragment span (the link's rate while it
	 * was busy with this frame). A frame of one or two fragments has no usable span; with its
	 * capture time known it was on the link from the later of its ready time and the previous
	 * frame's departure until its last byte left: the whole frame over that time. Bytes are
	 * counted as the link carried them (the model's overheads included), as traces and the
	 * solver count them. */
	int64_t done = o->last_arrival_ns - p->m.prop_ns / 2;
	double frag = o->frag_bytes ? o->frag_bytes : p->m.frag_bytes;
	int64_t span = o->last_arrival_ns - o->first_arrival_ns;
	double link = link_bytes(&p->m, o->bytes, frag);
	double after_first = link - frag - p->m.frag_overhead;
	if ((double)o->bytes >= 3 * frag && span > 0) {
		rtci_ctl_est_add(&d->est, after_first / ((double)span * 1e-9));
	} else if (o->capture_ns) {
		int64_t start = o->capture_ns + p->m.head_ns;
		if (d->observed_any && d->last_done_ns > start)
			start = d->last_done_ns;
		if (done > start)
			rtci_ctl_est_add(&d->est, link / ((double)(done - start) * 1e-9));
	} else if ((double)o->bytes > frag && span > 0) {
		rtci_ctl_est_add(&d->est, after_first / ((double)span * 1e-9));
	}
	d->last_done_ns = done;
	d->bw_cap = 0; /* a frame got through: its sample replaces a drop report's bound */
	/* The report describes the device queue when the last byte left, one way earlier. */
	d->anchor_ns = o->last_arrival_ns - p->m.prop_ns / 2;
	d->anchor_backlog = o->device_backlog_bytes;
	d->last_seq = o->seq;
	d->observed_any = 1;
	while (d->npend && (int32_t)(o->seq - d->pend[d->pend_head].seq) >= 0) {
		d->pend_head = (uint8_t)((d->pend_head + 1) % RTCI_CTL_PENDING);
		d->npend--;
	}
}

void rtci_ctl_observe_report(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
			     const struct rtci_ctl_report *r)
{
	/* The device drops a frame when the bytes queued ahead of it plus its own cannot leave
	 * within the send window: the link is below (backlog + bytes) / W. Until a frame gets
	 * through, the prediction is held under half that bound (a multiplicative decrease: each
	 * further drop report halves it again). A bound in the estimator's window instead, as a
	 * sample, lingered after the link came back and lost 1.4 points at 30 fps (rtci-sim). */
	if (r->frames_dropped && r->setup < p->table.n && p->W > 0) {
		double bound = (p->lb[r->setup] + r->backlog_bytes) / p->W;
		double cap = RTCI_CTL_DROP_BACKOFF * bound;
		if (!(d->bw_cap > 0) || cap < d->bw_cap)
			d->bw_cap = (float)cap;
	}
	/* the report is the device's newest word on its queue */
	int64_t left = r->arrival_ns - p->m.prop_ns / 2;
	if (!d->observed_any || left > d->anchor_ns) {
		d->anchor_ns = left;
		d->anchor_backlog = r->backlog_bytes;
		d->observed_any = 1;
	}
}

double rtci_ctl_predicted_bw(const struct rtci_ctl_device *d, const struct rtci_ctl_policy *p)
{
	double bw = rtci_ctl_est_get(&d->est, p->cfg.estimator);
	if (d->bw_cap > 0 && (!(bw > 0) || bw > d->bw_cap))
		bw = d->bw_cap;
	return bw > 0 ? bw : p->m.bw_floor;
}
double rtci_ctl_backlog_estimate(const struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
				 int64_t now, double bw)
{
	(void)p;
	double q = 0;
	int64_t t = 0;
	int have_t = 0;
	if (d->observed_any) {
		q = d->anchor_backlog;
		t = d->anchor_ns;
		have_t = 1;
	}
	for (unsigned i = 0; i < d->npend; i++) {
		unsigned k = (d->pend_head + i) % RTCI_CTL_PENDING;
		int64_t r = d->pend[k].ready_ns;
		if (have_t && r <= t)
			continue; /* already counted in the device's report */
		if (have_t) {
			q -= bw * (double)(r - t) * 1e-9;
			if (q < 0)
				q = 0;
		}
		t = r;
		have_t = 1;
		q += d->pend[k].bytes;
	}
	if (have_t && now > t) {
		q -= bw * (double)(now - t) * 1e-9;
		if (q < 0)
			q = 0;
	}
	return q;
}

static int rate_choice(const struct rtci_ctl_policy *p, double bw)
{
	double budget = bw * p->T;
	int best = p->fallback;
	for (unsigned i = 0; i < p->nf; i++)
		if (p->lb[p->fid[i]] <= budget)
			best = p->fid[i];
	return best;
}

/* BBA-like: no bandwidth estimate, only the device's latest backlog report, in frames of the
 * current setup. Reservoir (under half a frame queued): step up one frontier setup, but only once
 * a frame sent after the last change has been observed; cushion exceeded (over 1.5 frames): step
 * down by log2 of the occupancy at once; otherwise hold. A drop report with no frame since steps
 * down one setup per decision: the device drops what cannot leave in time instead of queueing
 * it, so on a link too slow for the current setup the queue never fills (rtci-sim with mnv2-224
 * at 10 fps, 200 ms: 0.007 without this rule, 0.61 with it). */
static int bba_choice(const struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
		      uint32_t seq)
{
	(void)seq;
	int cur = d->prev_setup >= p->table.n ? 0 : p->fidx[d->prev_setup];
	if (cur < 0)
		cur = 0;
	if (!d->observed_any)
		return p->fid[cur];
	double x = d->anchor_backlog / p->lb[p->fid[cur]];
	if (d->bw_cap > 0) {
		cur = cur > 0 ? cur - 1 : 0;
	} else if (x > 1.5) {
		int down = (int)ceil(log2(x));
		cur = cur - down < 0 ? 0 : cur - down;
	} else if (x < 0.5 && (int32_t)(d->last_seq - d->switch_seq) >= 0 && cur + 1 < (int)p->nf) {
		cur++;
	}
	return p->fid[cur];
}

static void pend_push(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		      int64_t capture_ns, unsigned setup)
{
	double lb = setup < p->table.n ? p->lb[setup] : 0; /* the local exit uploads nothing */
	double bytes = lb < RTCI_CTL_PEND_MAX_BYTES ? lb : RTCI_CTL_PEND_MAX_BYTES;
	if (d->npend == RTCI_CTL_PENDING) { /* oldest is long sent; forget it */
		d->pend_head = (uint8_t)((d->pend_head + 1) % RTCI_CTL_PENDING);
		d->npend--;
	}
	unsigned k = (d->pend_head + d->npend) % RTCI_CTL_PENDING;
	d->pend[k].ready_ns = capture_ns + p->m.head_ns;
	d->pend[k].seq = seq;
	d->pend[k].bytes = (uint32_t)bytes;
	d->pend[k].setup = (uint8_t)setup;
	d->npend++;
}

/* The setup of the frame before `seq` as the controller expects it: its pending entry, or the
 * last one committed. The switch penalty counts changes against it. */
static unsigned prev_setup_before(const struct rtci_ctl_device *d, uint32_t seq)
{
	for (unsigned i = d->npend; i-- > 0;) {
		unsigned k = (d->pend_head + i) % RTCI_CTL_PENDING;
		if ((int32_t)(d->pend[k].seq - seq) < 0)
			return d->pend[k].setup;
	}
	return d->prev_setup;
}

/* The frames the device will have queued before frame `seq`: a frame decided again (the gateway
 * decides a few frames ahead, by how late the last arrival was) replaces its earlier entry, and
 * so do the frames after it; frames between the last one accounted for and `seq` were not
 * decided but are captured all the same, with the setup the device is on. */
static void account_frames_before(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p,
				  uint32_t seq, int64_t capture_ns)
{
	while (d->npend) {
		unsigned last = (d->pend_head + d->npend - 1) % RTCI_CTL_PENDING;
		if ((int32_t)(d->pend[last].seq - seq) < 0)
			break;
		d->npend--;
	}
	if (capture_ns && d->prev_setup < p->table.n) {
		uint32_t from = seq;
		if (d->npend)
			from = d->pend[(d->pend_head + d->npend - 1) % RTCI_CTL_PENDING].seq + 1;
		else if (d->observed_any)
			from = d->last_seq + 1;
		/* at most a ring's worth, and none that rtci_ctl_choose would forget at once */
		uint32_t back = (uint32_t)((double)p->m.deadline_ns * 2e-9 / p->T);
		if (back > RTCI_CTL_PENDING - 1)
			back = RTCI_CTL_PENDING - 1;
		if ((int32_t)(seq - from) > (int32_t)back)
			from = seq - back;
		unsigned hold = prev_setup_before(d, seq);
		for (uint32_t j = from; (int32_t)(seq - j) > 0; j++)
			pend_push(d, p, j, capture_ns - llround((double)(seq - j) * p->T * 1e9), hold);
	}
}

int rtci_ctl_choose(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		    int64_t capture_ns, uint8_t *plan, unsigned *plan_len)
{
	uint8_t steps[MAX_H];
	unsigned nsteps = 1;
	/* A decided frame not heard of two deadlines after it was ready was dropped by the device
	 * or is hopelessly late: stop counting it as in flight. */
	while (d->npend && d->pend[d->pend_head].ready_ns < capture_ns - 2 * p->m.deadline_ns) {
		d->pend_head = (uint8_t)((d->pend_head + 1) % RTCI_CTL_PENDING);
		d->npend--;
	}
	account_frames_before(d, p, seq, capture_ns);
	unsigned prev = prev_setup_before(d, seq);
	if (prev == RTCI_CTL_LOCAL) /* no setup to hold: leaving the local exit is no switch */
		prev = RTCI_CTL_SKIP;
	double bw = rtci_ctl_predicted_bw(d, p);
	int s;
	switch (p->cfg.kind) {
	case RTCI_CTL_MPC: {
		/* The switch penalty is hysteresis against measurement noise. Half of it stays; the
		 * other half is scaled by the recent relative prediction error (0..1). On a link the
		 * estimator predicts well, frames may then alternate between neighbouring setups
		 * and so use capacity that one setup leaves idle; on a noisy one the full penalty
		 * holds the setup. rtci-sim, docs/control.md §3. */
		double lambda = p->lambda;
		if (!p->m.fixed_switch_penalty)
			lambda *= 0.5 + 0.5 * rtci_ctl_est_max_error(&d->est) / RTCI_CTL_ROBUST_MAX_ERROR;
		bw = clamp_bw(p, bw);
		double q = rtci_ctl_backlog_estimate(d, p, capture_ns, bw);
		s = solve_e(p, bw, excess0(p, bw, q), prev, lambda, steps, NULL);
		nsteps = p->m.horizon;
		break;
	}
	case RTCI_CTL_FASTMPC: {
		/* the stored plan, as the exact MPC's: the gateway sends plans (§6) */
		const uint8_t *fp = fast_plan(p, bw, rtci_ctl_backlog_estimate(d, p, capture_ns, bw),
					      prev);
		memcpy(steps, fp, p->m.horizon);
		s = steps[0];
		nsteps = p->m.horizon;
		break;
	}
	case RTCI_CTL_RATE:
	case RTCI_CTL_SPINN:
		s = rate_choice(p, bw);
		break;
	case RTCI_CTL_BBA:
		s = bba_choice(d, p, seq);
		break;
	case RTCI_CTL_FIXED:
		s = (int)p->cfg.fixed_setup;
		break;
	case RTCI_CTL_CLIO:
		s = p->clio_setup;
		break;
	default:
		return -EINVAL;
	}
	/* A plan that skips this frame sends the fallback setup instead (see fallback_setup), or
	 * with a local exit more accurate than the fallback, answers locally (no_upload_action).
	 * The protocol has no "skip". rtci-sim, docs/control.md §3: sending the smallest setup
	 * rather than skipping was +0.7 to +0.9 points at 30 fps with mnv2-224 payloads. */
	unsigned no_upload = p->no_upload;
	if (s == RTCI_CTL_SKIP)
		s = (int)no_upload;
	steps[0] = (uint8_t)s;
	if (plan && plan_len) {
		for (unsigned i = 0; i < nsteps; i++)
			plan[i] = steps[i] == RTCI_CTL_SKIP ? (uint8_t)no_upload : steps[i];
		*plan_len = nsteps;
	}
	return s;
}

void rtci_ctl_commit(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		     int64_t capture_ns, const uint8_t *setups, unsigned n)
{
	if (!n || n > RTCI_CTL_PENDING)
		return;
	for (unsigned i = 0; i < n; i++)
		if (setups[i] >= p->table.n && !(p->local && setups[i] == RTCI_CTL_LOCAL))
			return;
	account_frames_before(d, p, seq, capture_ns);
	int64_t T = llround(p->T * 1e9);
	for (unsigned i = 0; i < n; i++) {
		uint16_t prev = prev_setup_before(d, seq + i);
		pend_push(d, p, seq + i, capture_ns ? capture_ns + (int64_t)i * T : 0, setups[i]);
		if (prev != setups[i])
			d->switch_seq = seq + i;
		d->prev_setup = setups[i];
	}
}

int rtci_ctl_decide(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, uint32_t seq,
		    int64_t capture_ns)
{
	int s = rtci_ctl_choose(d, p, seq, capture_ns, NULL, NULL);
	if (s >= 0) {
		uint8_t one = (uint8_t)s;
		rtci_ctl_commit(d, p, seq, capture_ns, &one, 1);
	}
	return s;
}
