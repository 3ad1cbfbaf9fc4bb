/* Admission of devices against the gateway's capacity (gateway/admission.h has the rules).
 *
 * The capacity comes from the cost model of the first model's tail (frames/s one worker infers
 * at its best batch size, times the workers) unless admission.capacity_fps sets it, less
 * admission.headroom_pct. A device's load is its tenant's fps, scaled by its model's per-frame
 * cost against the first model's. Decisions, giving way and table hand-over run under
 * gw->adm_lock (hellos are rare next to frames); the frame path only reads one atomic per
 * device. */
#include "gateway/gw.h"
#include "gateway/admit.h"
#include "gateway/cluster.h"

#include <stdio.h>

int gw_admit_register_series(struct gw *gw)
{
	struct rtci_metrics *m = gw->metrics;
	int fc = rtci_metrics_family(m, "rtci_capacity_fps",
				     "frames/s the workers can infer in time at the best batch size "
				     "(cost model), per model", RTCI_METRIC_GAUGE, NULL, 0, 0);
	int fa = rtci_metrics_family(m, "rtci_admission_capacity_fps",
				     "capacity the admission fills, less headroom (frames/s of the "
				     "first model)", RTCI_METRIC_GAUGE, NULL, 0, RTCI_METRICS_SUMMARY);
	int fl = rtci_metrics_family(m, "rtci_admission_load_fps",
				     "load admitted over all tenants (frames/s of the first model)",
				     RTCI_METRIC_GAUGE, NULL, 0, RTCI_METRICS_SUMMARY);
	if (fc < 0 || fa < 0 || fl < 0)
		return -RTCI_ERR_METRICS_FULL;
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		const char *n[] = { "model" }, *v[] = { gw->models[k].name };
		if ((gw->models[k].s_capacity = rtci_metrics_series(m, fc, 1, n, v)) < 0)
			return gw->models[k].s_capacity;
	}
	if ((gw->s_adm_capacity = rtci_metrics_series(m, fa, 0, NULL, NULL)) < 0 ||
	    (gw->s_adm_load = rtci_metrics_series(m, fl, 0, NULL, NULL)) < 0)
		return -RTCI_ERR_METRICS_FULL;
	int fm = rtci_metrics_family(m, "rtci_cluster_members", "gateways in the membership seen",
				     RTCI_METRIC_GAUGE, NULL, 0, RTCI_METRICS_SUMMARY);
	int fe = rtci_metrics_family(m, "rtci_cluster_etcd_up",
				     "1 while etcd answers (0: serving with the last membership)",
				     RTCI_METRIC_GAUGE, NULL, 0, 0);
	if (fm < 0 || fe < 0 || (gw->s_members = rtci_metrics_series(m, fm, 0, NULL, NULL)) < 0 ||
	    (gw->s_etcd_up = rtci_metrics_series(m, fe, 0, NULL, NULL)) < 0)
		return -RTCI_ERR_METRICS_FULL;
	return 0;
}

static double model_fps(const struct gw *gw, uint32_t k)
{
	double us = rtci_cost_frame_us(&gw->models[k].cost, NULL);
	return us > 0 ? gw->nworkers * 1e6 / us : 0;
}

uint64_t gw_admit_capacity(const struct gw *gw)
{
	const struct rtci_gateway_config *c = gw->cfg;
	double fps = c->admission.capacity_fps ? c->admission.capacity_fps : model_fps(gw, 0);
	return (uint64_t)(fps * 1000.0 * (100 - c->admission.headroom_pct) / 100.0);
}

uint64_t gw_admit_device_load(const struct gw *gw, const struct gw_tenant *tn, uint16_t model)
{
	double ratio = 1;
	if (model > 0 && model < gw->nmodels) {
		double c0 = rtci_cost_frame_us(&gw->models[0].cost, NULL);
		double cm = rtci_cost_frame_us(&gw->models[model].cost, NULL);
		if (c0 > 0 && cm > 0)
			ratio = cm / c0;
	}
	uint64_t x = (uint64_t)(tn->cfg->fps * 1000.0 * ratio);
	return x ? x : 1;
}

static void take(struct gw *gw, struct gw_tenant *tn, struct gw_device *d, uint64_t x, uint64_t now)
{
	atomic_store(&d->adm_load, x);
	d->adm_since_us = now;
	atomic_fetch_add(&tn->adm_load, x);
	atomic_fetch_add(&gw->adm_load, x);
}

void gw_admit_release(struct gw *gw, struct gw_tenant *tn, struct gw_device *d)
{
	uint64_t x = atomic_exchange(&d->adm_load, 0);
	if (x) {
		atomic_fetch_sub(&tn->adm_load, x);
		atomic_fetch_sub(&gw->adm_load, x);
	}
}

/* The table's per-tenant view for the rules: loads now, weights, reservations, shares. */
static void view(struct gw_table *t, uint64_t cap)
{
	for (uint32_t i = 0; i < t->ntenants; i++) {
		const struct gw_tenant *tn = &t->tenants[i];
		t->adm[i] = (struct rtci_adm_tenant){
			.weight = tn->cfg->weight,
			.reserved = (uint64_t)tn->cfg->reserved_fps * 1000,
			.load = atomic_load(&tn->adm_load),
		};
	}
	rtci_adm_shares(cap, t->adm, t->ntenants);
}

/* The newest admitted device of tenant v gives way; false when it has none. Its owner drops
 * its frames from now on (not admitted) and the device, hearing nothing, says hello again. */
static bool give_way(struct gw *gw, uint32_t mslot, struct gw_tenant *v)
{
	struct gw_device *newest = NULL;
	uint32_t used = atomic_load(&v->pool_used);
	if (used > v->pool_size)
		used = v->pool_size;
	for (uint32_t k = 0; k < used; k++) {
		struct gw_device *d = &v->pool[k];
		if (d->owner == UINT16_MAX || !atomic_load(&d->adm_load))
			continue;
		if (!newest || d->adm_since_us > newest->adm_since_us)
			newest = d;
	}
	if (!newest)
		return false;
	gw_admit_release(gw, v, newest);
	rtci_metrics_add(gw->metrics, mslot, gw->tseries[v->slot].preempted, 1);
	return true;
}

bool gw_admit(struct gw_rx *rx, struct gw_tenant *tn, struct gw_device *d, uint64_t now)
{
	struct gw *gw = rx->gw;
	if (!gw->cfg->admission.enabled || atomic_load(&d->adm_load))
		return true;
	uint64_t x = gw_admit_device_load(gw, tn, d->model), cap = gw_admit_capacity(gw);
	struct gw_table *t = rx->table;
	uint32_t ti = (uint32_t)(tn - t->tenants);
	pthread_mutex_lock(&gw->adm_lock);
	view(t, cap);
	enum rtci_adm_verdict v = rtci_adm_decide(cap, atomic_load(&gw->adm_load), &t->adm[ti], x);
	while (v == RTCI_ADM_PREEMPT && atomic_load(&gw->adm_load) + x > cap) {
		uint32_t vi = rtci_adm_victim(t->adm, t->ntenants, ti);
		if (vi == UINT32_MAX)
			break; /* shares round down: the last few may exceed the capacity a little */
		if (!give_way(gw, rx->mslot, &t->tenants[vi]))
			t->adm[vi].load = 0; /* nothing left to take from it */
		else
			t->adm[vi].load = atomic_load(&t->tenants[vi].adm_load);
	}
	if (v != RTCI_ADM_BUSY)
		take(gw, tn, d, x, now);
	pthread_mutex_unlock(&gw->adm_lock);
	return v != RTCI_ADM_BUSY;
}

struct expire_ctx {
	struct gw_rx *rx;
	uint64_t now, idle;
};

static void expire_one(void *arg, struct gw_tenant *tn, struct gw_device *d)
{
	struct expire_ctx *x = arg;
	struct gw *gw = x->rx->gw;
	if (!atomic_load(&d->adm_load) || x->now - d->last_us < x->idle)
		return;
	pthread_mutex_lock(&gw->adm_lock);
	gw_admit_release(gw, tn, d);
	pthread_mutex_unlock(&gw->adm_lock);
	rtci_metrics_add(gw->metrics, x->rx->mslot, gw->tseries[tn->slot].expired, 1);
}

void gw_admit_expire(struct gw_rx *rx, uint64_t now)
{
	struct expire_ctx x = { rx, now, (uint64_t)rx->gw->cfg->admission.idle_timeout_ms * 1000 };
	gw_table_each_owned(rx->table, rx->index, expire_one, &x);
}

void gw_admit_publish(struct gw *gw)
{
	struct rtci_metrics *m = gw->metrics;
	for (uint32_t k = 0; k < gw->nmodels; k++)
		rtci_metrics_gauge_set(m, 0, gw->models[k].s_capacity, model_fps(gw, k));
	uint64_t cap = gw_admit_capacity(gw);
	rtci_metrics_gauge_set(m, 0, gw->s_adm_capacity, (double)cap / 1000.0);
	rtci_metrics_gauge_set(m, 0, gw->s_adm_load, (double)atomic_load(&gw->adm_load) / 1000.0);
	if (gw->cluster) {
		struct rtci_member mm[GW_CLUSTER_MAX_MEMBERS];
		rtci_metrics_gauge_set(m, 0, gw->s_members, gw_cluster_members(gw, mm));
		rtci_metrics_gauge_set(m, 0, gw->s_etcd_up, gw_cluster_etcd_up(gw));
	}
	struct gw_table *t = atomic_load(&gw->table);
	pthread_mutex_lock(&gw->adm_lock);
	view(t, cap);
	for (uint32_t i = 0; i < t->ntenants; i++) {
		const struct gw_tenant_series *ts = &gw->tseries[t->tenants[i].slot];
		rtci_metrics_gauge_set(m, 0, ts->adm_load, (double)t->adm[i].load / 1000.0);
		rtci_metrics_gauge_set(m, 0, ts->adm_share, (double)t->adm[i].share / 1000.0);
	}
	pthread_mutex_unlock(&gw->adm_lock);
}

void gw_admit_shed(struct gw *gw)
{
	if (!gw->cfg->admission.enabled)
		return;
	uint64_t cap = gw_admit_capacity(gw);
	if (atomic_load(&gw->adm_load) <= cap + cap / 20)
		return;
	struct gw_table *t = atomic_load(&gw->table);
	pthread_mutex_lock(&gw->adm_lock);
	view(t, cap);
	while (atomic_load(&gw->adm_load) > cap) {
		uint32_t vi = rtci_adm_victim(t->adm, t->ntenants, UINT32_MAX);
		if (vi == UINT32_MAX)
			break;
		if (!give_way(gw, 0, &t->tenants[vi]))
			t->adm[vi].load = 0;
		else
			t->adm[vi].load = atomic_load(&t->tenants[vi].adm_load);
	}
	pthread_mutex_unlock(&gw->adm_lock);
}
