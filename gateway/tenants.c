/* Tenant and device tables of the gateway, built from a tenants file.
 *
 * A table is immutable once published except for device activation: a device takes a state
 * from its tenant's preallocated pool (sized by quotas.devices) the first time it authenticates,
 * and is entered in a lock-free open-addressing hash (insert by compare-and-swap). On SIGHUP a
 * new table is built next to the old one; each RX lcore hands its devices over at a burst
 * boundary (gw_table_handover) and the main lcore frees the old table once every RX lcore has
 * switched. */
#include "gateway/gw.h"
#include "common/clock.h"
#include "gateway/control_glue.h"
#include "common/hash.h"

#include "dataplane/header.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hkey(uint32_t tenant, uint32_t device)
{
	return (uint64_t)tenant << 32 | device;
}

static uint32_t hmix(uint64_t k)
{
	return (uint32_t)(rtci_mix64(k) >> 32);
}

static int cmp_listed(const void *a, const void *b)
{
	const struct gw_listed *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_tenant(const void *a, const void *b)
{
	const struct gw_tenant *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Metric series of a tenant id, registered the first time the id appears. */
static int tenant_slot(struct gw *gw, uint32_t id, char *err, size_t errlen)
{
	for (uint32_t s = 0; s < gw->ntslots; s++)
		if (gw->tseries[s].id == id)
			return (int)s;
	if (gw->ntslots >= GW_TENANT_SLOTS) {
		snprintf(err, errlen, "more than %d tenant ids over the gateway's lifetime",
			 GW_TENANT_SLOTS);
		return -RTCI_ERR_CONFIG_INVALID;
	}
	uint32_t s = gw->ntslots;
	struct gw_tenant_series *ts = &gw->tseries[s];
	struct rtci_metrics *m = gw->metrics;
	char tid[16];
	snprintf(tid, sizeof(tid), "%u", id);
	const char *tn[] = { "tenant" }, *tv[] = { tid };
	const char *trn[] = { "tenant", "reason" };
	int f;
#define SERIES1(field, name, help, type, buckets, nb, flags)                                      \
	do {                                                                                      \
		f = rtci_metrics_family(m, name, help, type, buckets, nb, flags);                 \
		ts->field = f < 0 ? f : rtci_metrics_series(m, f, 1, tn, tv);                      \
		if (ts->field < 0)                                                                \
			goto fail;                                                                \
	} while (0)
	static const double lat_b[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5 };
	SERIES1(frames_in, "rtci_frames_total", "frames submitted to the batcher",
		RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	SERIES1(frames_done, "rtci_frames_inferred_total", "frames released in batches and answered",
		RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	SERIES1(in_time, "rtci_frames_in_time_total",
		"frames answered by their deadline (capture + the tenant's deadline_ms, gateway clock)",
		RTCI_METRIC_COUNTER, NULL, 0, 0);
	SERIES1(ingest_frames, "rtci_ingest_frames_total",
		"frames reassembled, authenticated and accepted by the replay window",
		RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	SERIES1(commands, "rtci_commands_total", "rate-switch commands sent", RTCI_METRIC_COUNTER,
		NULL, 0, RTCI_METRICS_SUMMARY);
	SERIES1(hellos, "rtci_hellos_total", "authenticated hellos answered", RTCI_METRIC_COUNTER,
		NULL, 0, 0);
	SERIES1(hellos_off_pace, "rtci_hellos_off_pace_total",
		"accepted hellos announcing another fps or deadline than the tenant's (the controller "
		"plans with the tenant's)", RTCI_METRIC_COUNTER, NULL, 0, 0);
	SERIES1(latency, "rtci_frame_latency_seconds",
		"capture (device clock mapped to the gateway's) to result sent",
		RTCI_METRIC_HISTOGRAM, lat_b, sizeof(lat_b) / sizeof(lat_b[0]), RTCI_METRICS_SUMMARY);
	SERIES1(devices, "rtci_devices_active", "devices holding a state (device quota used)",
		RTCI_METRIC_GAUGE, NULL, 0, 0);
	SERIES1(preempted, "rtci_admission_preempted_total",
		"admitted devices that gave way to a tenant within its share", RTCI_METRIC_COUNTER,
		NULL, 0, 0);
	SERIES1(expired, "rtci_admission_expired_total",
		"admissions released after admission.idle_timeout_ms without a message",
		RTCI_METRIC_COUNTER, NULL, 0, 0);
	SERIES1(adm_load, "rtci_admission_tenant_load_fps",
		"load admitted for the tenant (frames/s of the first model)", RTCI_METRIC_GAUGE, NULL,
		0, 0);
	SERIES1(adm_share, "rtci_admission_tenant_share_fps",
		"load guaranteed to the tenant (reserved_fps, or its weight's part of the capacity)",
		RTCI_METRIC_GAUGE, NULL, 0, 0);
	SERIES1(redirects, "rtci_cluster_redirects_total",
		"hellos answered with the address of the device's home gateway", RTCI_METRIC_COUNTER,
		NULL, 0, 0);
	SERIES1(moves, "rtci_cluster_moves_total",
		"devices told to move to another gateway (membership change, drain)",
		RTCI_METRIC_COUNTER, NULL, 0, 0);
#undef SERIES1
	f = rtci_metrics_family(m, "rtci_hellos_refused_total", "hellos refused, by tenant and reason",
				RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	for (int r = 0; r < GW_REFUSE_COUNT; r++) {
		const char *v[] = { tid, gw_refuse_name((enum gw_refuse)r) };
		if (f < 0 || (ts->refused[r] = rtci_metrics_series(m, f, 2, trn, v)) < 0)
			goto fail;
	}
	f = rtci_metrics_family(m, "rtci_frame_drops_total",
				"frames dropped by the batcher or for lack of a slot, by reason",
				RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	static const char *const bnames[] = { "deadline", "queue_full", "tenant_bound", "evicted",
					      "overload" };
	for (int r = 0; r <= RTCI_BATCHER_DROP_COUNT; r++) {
		const char *v[] = { tid, bnames[r] };
		if (f < 0 || (ts->batch_drop[r] = rtci_metrics_series(m, f, 2, trn, v)) < 0)
			goto fail;
	}
	f = rtci_metrics_family(m, "rtci_ingest_drops_total",
				"datagrams or frames dropped on ingest, by tenant and reason",
				RTCI_METRIC_COUNTER, NULL, 0, RTCI_METRICS_SUMMARY);
	for (int r = 0; r < GW_DROP_COUNT; r++) {
		const char *v[] = { tid, gw_drop_name((enum gw_drop)r) };
		if (f < 0 || (ts->drop[r] = rtci_metrics_series(m, f, 2, trn, v)) < 0)
			goto fail;
	}
	uint32_t total = 0;
	for (uint32_t k = 0; k < gw->nmodels; k++)
		total += (uint32_t)gw->models[k].setups;
	ts->setup = calloc(total ? total : 1, sizeof(int));
	if (!ts->setup)
		return -ENOMEM;
	f = rtci_metrics_family(m, "rtci_setup_frames_total", "frames by compression setup",
				RTCI_METRIC_COUNTER, NULL, 0, 0);
	const char *sn[] = { "tenant", "model", "setup" };
	uint32_t i = 0;
	for (uint32_t k = 0; k < gw->nmodels; k++)
		for (int s2 = 0; s2 < gw->models[k].setups; s2++, i++) {
			char sid[16];
			snprintf(sid, sizeof(sid), "%d", s2);
			const char *v[] = { tid, gw->models[k].name, sid };
			if (f < 0 || (ts->setup[i] = rtci_metrics_series(m, f, 3, sn, v)) < 0)
				goto fail;
		}
	ts->id = id;
	ts->used = true;
	gw->ntslots++;
	return (int)s;
fail:
	snprintf(err, errlen, "registering metrics of tenant %u: %s", id, rtci_strerror(f));
	return f < 0 ? f : -RTCI_ERR_METRICS_FULL;
}

int gw_table_build(struct gw *gw, struct rtci_tenants_config *cfg, uint64_t generation,
		   struct gw_table **out, char *err, size_t errlen)
{
	struct gw_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->generation = generation;
	t->cfg = cfg;
	t->ntenants = cfg->count;
	t->tenants = calloc(cfg->count ? cfg->count : 1, sizeof(*t->tenants));
	t->adm = calloc(cfg->count ? cfg->count : 1, sizeof(*t->adm));
	if (!t->tenants || !t->adm) {
		free(t->tenants);
		free(t->adm);
		free(t);
		return -ENOMEM;
	}
	uint64_t states = 0;
	int rc = 0;
	for (uint32_t i = 0; i < cfg->count; i++) {
		const struct rtci_config_tenant *c = &cfg->tenants[i];
		struct gw_tenant *tn = &t->tenants[i];
		tn->cfg = c;
		tn->id = c->id;
		tn->deadline_us = c->deadline_ms * 1000u;
		int s = tenant_slot(gw, c->id, err, errlen);
		if (s < 0) {
			rc = s;
			goto fail;
		}
		tn->slot = (uint32_t)s;
		tn->nlisted = c->device_count;
		tn->listed = calloc(c->device_count ? c->device_count : 1, sizeof(*tn->listed));
		if (!tn->listed) {
			rc = -ENOMEM;
			goto fail;
		}
		for (uint32_t d = 0; d < c->device_count; d++) {
			tn->listed[d].id = c->devices[d].id;
			tn->listed[d].key_set = c->devices[d].key_set;
			memcpy(tn->listed[d].key, c->devices[d].key, RTCI_AUTH_KEY_LEN);
		}
		qsort(tn->listed, tn->nlisted, sizeof(*tn->listed), cmp_listed);
		uint64_t possible = c->device_count;
		if (c->derive)
			possible += (uint64_t)c->derive_last - c->derive_first + 1;
		tn->pool_size = (uint32_t)(possible < c->quota.devices ? possible : c->quota.devices);
		tn->pool = calloc(tn->pool_size ? tn->pool_size : 1, sizeof(*tn->pool));
		if (!tn->pool) {
			rc = -ENOMEM;
			goto fail;
		}
		states += tn->pool_size;
		if ((rc = gw_ctl_policies_create(gw, tn, err, errlen)) < 0)
			goto fail;
		uint64_t now = rtci_mono_us();
		for (int r = 0; r < GW_MAX_RX; r++) {
			tn->bucket[r].tokens = (double)c->quota.frames_per_s / gw->nrx;
			tn->bucket[r].last_us = now;
		}
	}
	qsort(t->tenants, t->ntenants, sizeof(*t->tenants), cmp_tenant);
	uint64_t cap = 16;
	while (cap < 2 * states)
		cap <<= 1;
	t->hmask = (uint32_t)(cap - 1);
	t->hash = calloc(cap, sizeof(*t->hash));
	if (!t->hash) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	t->cfg = NULL; /* the caller still owns cfg */
	gw_table_free(gw, t);
	return rc;
}

void gw_table_free(struct gw *gw, struct gw_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->ntenants; i++) {
		gw_ctl_policies_destroy(gw, &t->tenants[i]);
		free(t->tenants[i].listed);
		free(t->tenants[i].pool);
	}
	free(t->tenants);
	free(t->adm);
	free(t->hash);
	rtci_config_free_tenants(t->cfg);
	free(t);
}

struct gw_tenant *gw_table_tenant(const struct gw_table *t, uint32_t id)
{
	uint32_t lo = 0, hi = t->ntenants;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (t->tenants[mid].id == id)
			return &t->tenants[mid];
		if (t->tenants[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct gw_device *gw_table_device(const struct gw_table *t, uint32_t tenant_id, uint32_t device_id)
{
	uint64_t k = hkey(tenant_id, device_id);
	for (uint32_t i = hmix(k) & t->hmask, n = 0; n <= t->hmask; i = (i + 1) & t->hmask, n++) {
		uint64_t have = atomic_load_explicit(&t->hash[i].key, memory_order_acquire);
		if (have == 0)
			return NULL;
		if (have == k)
			return atomic_load_explicit(&t->hash[i].dev, memory_order_acquire);
	}
	return NULL;
}

void gw_table_prefetch_slot(const struct gw_table *t, const uint8_t *payload, size_t len)
{
	uint32_t ten, dev;
	if (rtci_header_peek_ids(payload, len, &ten, &dev))
		__builtin_prefetch(&t->hash[hmix(hkey(ten, dev)) & t->hmask]);
}

void gw_table_prefetch_device(const struct gw_table *t, const uint8_t *payload, size_t len)
{
	uint32_t ten, dev;
	if (!rtci_header_peek_ids(payload, len, &ten, &dev))
		return;
	const struct gw_device *d = gw_table_device(t, ten, dev);
	if (d) {
		__builtin_prefetch(d->key);
		__builtin_prefetch(&d->replay);
	}
}

int gw_tenant_device_key(const struct gw_tenant *t, uint32_t device_id, uint8_t key[32])
{
	uint32_t lo = 0, hi = t->nlisted;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (t->listed[mid].id == device_id) {
			if (t->listed[mid].key_set) {
				memcpy(key, t->listed[mid].key, 32);
				return 0;
			}
			return rtci_auth_derive_device_key(t->cfg->key, t->id, device_id, key);
		}
		if (t->listed[mid].id < device_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (t->cfg->derive && device_id >= t->cfg->derive_first && device_id <= t->cfg->derive_last)
		return rtci_auth_derive_device_key(t->cfg->key, t->id, device_id, key);
	return -ENOENT;
}

static struct gw_device *insert(struct gw_table *t, uint32_t tenant_id, struct gw_device *d)
{
	uint64_t k = hkey(tenant_id, d->id);
	for (uint32_t i = hmix(k) & t->hmask, n = 0; n <= t->hmask; i = (i + 1) & t->hmask, n++) {
		uint64_t expect = 0;
		if (atomic_compare_exchange_strong(&t->hash[i].key, &expect, k)) {
			atomic_store_explicit(&t->hash[i].dev, d, memory_order_release);
			return d;
		}
		if (expect == k) /* activated by someone else meanwhile */
			return atomic_load_explicit(&t->hash[i].dev, memory_order_acquire);
	}
	return NULL;
}

struct gw_device *gw_table_activate(struct gw *gw, struct gw_table *t, struct gw_tenant *tn,
				    uint32_t device_id, const uint8_t key[32], uint16_t owner)
{
	uint32_t i = atomic_fetch_add(&tn->pool_used, 1);
	if (i >= tn->pool_size) {
		atomic_fetch_sub(&tn->pool_used, 1);
		return NULL;
	}
	struct gw_device *d = &tn->pool[i];
	memset(d, 0, sizeof(*d));
	d->id = device_id;
	d->tenant_slot = tn->slot;
	d->owner = owner;
	memcpy(d->key, key, RTCI_AUTH_KEY_LEN);
	rtci_auth_replay_init(&d->replay);
	gw_ctl_device_init(d, tn);
	struct gw_device *r = insert(t, tn->id, d);
	if (r != d) {
		/* another lcore activated the device first (or the hash is full): this state stays
		 * unused until the next reload */
		d->owner = UINT16_MAX;
		return r;
	}
	rtci_metrics_gauge_add(gw->metrics, gw->rx[owner].mslot, gw->tseries[tn->slot].devices, 1);
	return d;
}

void gw_table_handover(struct gw *gw, struct gw_table *old, struct gw_table *nw, uint16_t owner)
{
	/* admitted loads move with their devices; those of devices left behind are released */
	pthread_mutex_lock(&gw->adm_lock);
	for (uint32_t i = 0; i < old->ntenants; i++) {
		struct gw_tenant *ot = &old->tenants[i];
		struct gw_tenant *ntn = gw_table_tenant(nw, ot->id);
		uint32_t used = atomic_load(&ot->pool_used);
		if (used > ot->pool_size)
			used = ot->pool_size;
		for (uint32_t k = 0; k < used; k++) {
			struct gw_device *od = &ot->pool[k];
			if (od->owner != owner)
				continue;
			rtci_metrics_gauge_add(gw->metrics, gw->rx[owner].mslot,
					       gw->tseries[ot->slot].devices, -1);
			uint8_t key[32];
			/* a device stays when it is still the tenant's and its key did not change */
			struct gw_device *nd = NULL;
			if (ntn && gw_tenant_device_key(ntn, od->id, key) == 0 &&
			    memcmp(key, od->key, 32) == 0)
				nd = gw_table_activate(gw, nw, ntn, od->id, key, owner);
			uint64_t load = atomic_exchange(&od->adm_load, 0);
			if (!nd) {
				atomic_fetch_sub(&gw->adm_load, load);
				continue;
			}
			struct rtci_ctl_device ctl = nd->ctl; /* fresh, under the new policy */
			*nd = *od;
			nd->tenant_slot = ntn->slot;
			atomic_store(&nd->adm_load, load);
			atomic_fetch_add(&ntn->adm_load, load);
			if (ntn->cfg->policy != ot->cfg->policy || ntn->cfg->fps != ot->cfg->fps ||
			    ntn->cfg->deadline_ms != ot->cfg->deadline_ms)
				nd->ctl = ctl;
		}
	}
	pthread_mutex_unlock(&gw->adm_lock);
}

void gw_table_each_owned(struct gw_table *t, uint16_t owner,
			 void (*fn)(void *ctx, struct gw_tenant *tn, struct gw_device *d), void *ctx)
{
	for (uint32_t i = 0; i < t->ntenants; i++) {
		struct gw_tenant *tn = &t->tenants[i];
		uint32_t used = atomic_load(&tn->pool_used);
		if (used > tn->pool_size)
			used = tn->pool_size;
		for (uint32_t k = 0; k < used; k++)
			if (tn->pool[k].owner == owner)
				fn(ctx, tn, &tn->pool[k]);
	}
}
