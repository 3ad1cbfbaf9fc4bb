/* The gateway as a member of a cluster on etcd (docs/operations.md §8).
 *
 * Keys under cluster.prefix:
 *   members/<id>  this gateway's record (JSON: address, port, capacity, load, state), under a
 *                 lease it keeps alive; it disappears lease_ttl_s after the gateway dies
 *   tenants       the tenants file's YAML, shared by every gateway
 * A thread of its own keeps the lease, refreshes the record every second and holds two watches
 * (members, tenants). The packet path never calls etcd: RX lcores read the membership from a
 * seqlock-protected copy, and the main lcore applies new tenants as SIGHUP does. When etcd is
 * unreachable the gateway keeps the last membership and tenants it saw, says so in
 * rtci_cluster_etcd_up and its log, and registers again once etcd is back. */
#include "gateway/gw.h"
#include "gateway/admit.h"
#include "gateway/cluster.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cluster/etcd.h"

#define ETCD_TIMEOUT_MS 1000
#define REFRESH_US 1000000

struct gw_cluster {
	struct gw *gw;
	struct rtci_etcd *etcd;
	struct rtci_etcd_watch *wmembers, *wtenants;
	char members_prefix[160], tenants_key[160], self_key[256];
	int64_t lease;
	double weight;            /* placement weight: the capacity at start, then fixed, so that
				     the estimate's noise never moves devices */
	pthread_t th;
	_Atomic bool stop;
	_Atomic bool etcd_up;
	_Atomic bool kick;        /* write the record now (draining) */
	/* membership as the watch sees it (cluster thread and watch thread, under mu) */
	pthread_mutex_t mu;
	struct rtci_member all[GW_CLUSTER_MAX_MEMBERS];
	char state[GW_CLUSTER_MAX_MEMBERS][16];
	uint32_t nall;
	/* what RX lcores read: a copy behind a sequence lock */
	_Atomic uint32_t seq;
	struct rtci_member pub[GW_CLUSTER_MAX_MEMBERS];
	uint32_t npub;
	_Atomic uint64_t generation;
	_Atomic uint64_t set_generation; /* members joined, left or changed state */
	/* tenants text from etcd, waiting for the main lcore */
	char *pending_tenants;
};

#define logf_(...) rtci_log("rtci-gateway: cluster", __VA_ARGS__)

/* ---- membership ---- */

/* Copies the watch's view to the RX lcores' copy (the writer side of the seqlock). */
static void publish(struct gw_cluster *c)
{
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_acq_rel); /* odd: being written */
	c->npub = c->nall;
	memcpy(c->pub, c->all, c->nall * sizeof(c->all[0]));
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_acq_rel);
	atomic_fetch_add(&c->generation, 1);
}

static int member_from_json(const char *id, const uint8_t *text, size_t len, struct rtci_member *m,
			    char state[16])
{
	json_t *j = json_loadb((const char *)text, len, 0, NULL);
	if (!j)
		return -RTCI_ERR_ETCD_PROTOCOL;
	const char *ip = json_string_value(json_object_get(j, "ipv4"));
	const char *st = json_string_value(json_object_get(j, "state"));
	struct in_addr a;
	int rc = 0;
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	if (!ip || inet_pton(AF_INET, ip, &a) != 1 || !st) {
		rc = -RTCI_ERR_ETCD_PROTOCOL;
	} else {
		m->ipv4 = ntohl(a.s_addr);
		m->port = (uint16_t)json_integer_value(json_object_get(j, "port"));
		double cap = json_number_value(json_object_get(j, "capacity_fps"));
		double load = json_number_value(json_object_get(j, "load_fps"));
		double w = json_number_value(json_object_get(j, "weight"));
		m->weight = w > 0 ? w : 1;
		snprintf(state, 16, "%s", st);
		/* a full member takes no new devices: placement skips it, moving only its keys */
		m->eligible = strcmp(st, "active") == 0 && (cap <= 0 || load < cap);
		m->id_hash = rtci_place_id_hash(m->id);
	}
	json_decref(j);
	return rc;
}

static void member_set(struct gw_cluster *c, const char *id, const uint8_t *v, size_t len)
{
	struct rtci_member m;
	char st[16];
	if (member_from_json(id, v, len, &m, st) < 0)
		return;
	uint32_t i = 0;
	while (i < c->nall && strcmp(c->all[i].id, id) != 0)
		i++;
	if (i == c->nall) {
		if (c->nall == GW_CLUSTER_MAX_MEMBERS)
			return;
		c->nall++;
		atomic_fetch_add(&c->set_generation, 1);
	} else if (strcmp(c->state[i], st) != 0) {
		atomic_fetch_add(&c->set_generation, 1);
	}
	c->all[i] = m;
	memcpy(c->state[i], st, 16);
}

static void member_del(struct gw_cluster *c, const char *id)
{
	for (uint32_t i = 0; i < c->nall; i++)
		if (strcmp(c->all[i].id, id) == 0) {
			c->all[i] = c->all[c->nall - 1];
			memcpy(c->state[i], c->state[c->nall - 1], 16);
			c->nall--;
			atomic_fetch_add(&c->set_generation, 1);
			return;
		}
}

static void on_member(void *user, enum rtci_etcd_event type, const struct rtci_etcd_kv *kv)
{
	struct gw_cluster *c = user;
	const char *id = kv->key + strlen(c->members_prefix);
	pthread_mutex_lock(&c->mu);
	uint32_t before = c->nall;
	if (type == RTCI_ETCD_PUT)
		member_set(c, id, kv->value, kv->len);
	else
		member_del(c, id);
	publish(c);
	pthread_mutex_unlock(&c->mu);
	if (c->nall != before)
		logf_("%u members (%s %s)", c->nall, type == RTCI_ETCD_PUT ? "joined:" : "left:", id);
}

static void on_watch_error(void *user, int err)
{
	struct gw_cluster *c = user;
	if (atomic_exchange(&c->etcd_up, false))
		logf_("etcd unreachable (%s): serving with the last membership and tenants",
		      rtci_strerror(err));
}

/* ---- tenants ---- */

static void on_tenants(void *user, enum rtci_etcd_event type, const struct rtci_etcd_kv *kv)
{
	struct gw_cluster *c = user;
	if (type != RTCI_ETCD_PUT || strcmp(kv->key, c->tenants_key) != 0)
		return;
	char *text = strdup((const char *)kv->value);
	pthread_mutex_lock(&c->mu);
	free(c->pending_tenants);
	c->pending_tenants = text;
	pthread_mutex_unlock(&c->mu);
}

/* ---- this gateway's record ---- */

static int put_self(struct gw_cluster *c)
{
	struct gw *gw = c->gw;
	char ip[INET_ADDRSTRLEN], metrics[64];
	struct in_addr a = { htonl(gw->cfg->cluster.address) };
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(metrics, sizeof(metrics), "%s:%u", ip, rtci_metrics_port(gw->metrics));
	double cap = (double)gw_admit_capacity(gw) / 1000.0;
	if (!(c->weight > 0))
		c->weight = cap > 0 ? cap : 1;
	json_t *j = json_pack("{s:s,s:s,s:i,s:f,s:f,s:f,s:s,s:s}", "id", gw->cfg->cluster.id, "ipv4",
			      ip, "port", (int)gw->cfg->port.udp_port, "weight", c->weight,
			      "capacity_fps", cap, "load_fps",
			      (double)atomic_load(&gw->adm_load) / 1000.0, "state",
			      atomic_load(&gw->draining) ? "draining" : "active", "metrics", metrics);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	int rc = rtci_etcd_put(c->etcd, c->self_key, text, strlen(text), c->lease);
	free(text);
	return rc;
}

/* Lease and record; on any failure the next round tries again. */
static int keep_registered(struct gw_cluster *c)
{
	int rc = c->lease ? rtci_etcd_lease_keepalive(c->etcd, c->lease) : -ENOENT;
	if (rc == -ENOENT) {
		c->lease = 0;
		if ((rc = rtci_etcd_lease_grant(c->etcd, c->gw->cfg->cluster.lease_ttl_s, &c->lease)) < 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	return put_self(c);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000L };
	nanosleep(&ts, NULL);
}

static void *cluster_main(void *arg)
{
	struct gw_cluster *c = arg;
	uint64_t period = (uint64_t)c->gw->cfg->cluster.lease_ttl_s * 1000000 / 3;
	if (period > REFRESH_US)
		period = REFRESH_US;
	while (!atomic_load(&c->stop)) {
		int rc = keep_registered(c);
		bool up = rc == 0;
		if (atomic_exchange(&c->etcd_up, up) != up)
			logf_(up ? "registered in etcd as %s" : "etcd unreachable (%s): serving with the "
			      "last membership and tenants", up ? c->gw->cfg->cluster.id : rtci_strerror(rc));
		for (uint64_t t = 0; t < period && !atomic_load(&c->stop) && !atomic_load(&c->kick);
		     t += 50000)
			sleep_us(50000);
		atomic_store(&c->kick, false);
	}
	return NULL;
}

/* ---- interface ---- */

int gw_cluster_start(struct gw *gw, char *err, size_t errlen)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	if (!cfg->cluster.enabled)
		return 0;
	struct gw_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->gw = gw;
	pthread_mutex_init(&c->mu, NULL);
	snprintf(c->members_prefix, sizeof(c->members_prefix), "%smembers/", cfg->cluster.prefix);
	snprintf(c->tenants_key, sizeof(c->tenants_key), "%stenants", cfg->cluster.prefix);
	snprintf(c->self_key, sizeof(c->self_key), "%s%s", c->members_prefix, cfg->cluster.id);
	int rc = rtci_etcd_create(cfg->cluster.etcd, ETCD_TIMEOUT_MS, &c->etcd);
	if (rc < 0) {
		snprintf(err, errlen, "cluster.etcd: %s", rtci_strerror(rc));
		free(c);
		return rc;
	}
	gw->cluster = c;
	/* what is there now, then every change after it; etcd down: the watches retry */
	int64_t rev = 0;
	struct rtci_etcd_kv *kv;
	size_t n;
	if (rtci_etcd_get_prefix(c->etcd, c->members_prefix, &kv, &n, &rev) == 0) {
		for (size_t i = 0; i < n; i++)
			on_member(c, RTCI_ETCD_PUT, &kv[i]);
		rtci_etcd_kvs_free(kv, n);
		if (rtci_etcd_get_prefix(c->etcd, c->tenants_key, &kv, &n, NULL) == 0) {
			for (size_t i = 0; i < n; i++)
				on_tenants(c, RTCI_ETCD_PUT, &kv[i]);
			rtci_etcd_kvs_free(kv, n);
		}
	}
	if ((rc = rtci_etcd_watch_start(cfg->cluster.etcd, c->members_prefix, rev ? rev + 1 : 0, 500,
					on_member, on_watch_error, c, &c->wmembers)) < 0 ||
	    (rc = rtci_etcd_watch_start(cfg->cluster.etcd, c->tenants_key, rev ? rev + 1 : 0, 500,
					on_tenants, on_watch_error, c, &c->wtenants)) < 0 ||
	    pthread_create(&c->th, NULL, cluster_main, c) != 0) {
		snprintf(err, errlen, "cluster: cannot start its threads");
		return rc < 0 ? rc : -ENOMEM;
	}
	return 0;
}

void gw_cluster_stop(struct gw *gw)
{
	struct gw_cluster *c = gw->cluster;
	if (!c)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->th, NULL);
	rtci_etcd_watch_stop(c->wmembers);
	rtci_etcd_watch_stop(c->wtenants);
	/* leave at once rather than after the lease's TTL */
	if (c->lease)
		rtci_etcd_lease_revoke(c->etcd, c->lease);
	rtci_etcd_destroy(c->etcd);
	free(c->pending_tenants);
	free(c);
	gw->cluster = NULL;
}

bool gw_cluster_etcd_up(const struct gw *gw)
{
	return gw->cluster && atomic_load(&gw->cluster->etcd_up);
}

uint64_t gw_cluster_generation(const struct gw *gw)
{
	return gw->cluster ? atomic_load(&gw->cluster->set_generation) : 0;
}

uint32_t gw_cluster_members(const struct gw *gw, struct rtci_member *out)
{
	const struct gw_cluster *c = gw->cluster;
	if (!c)
		return 0;
	for (;;) {
		uint32_t s0 = atomic_load_explicit(&c->seq, memory_order_acquire);
		if (s0 & 1)
			continue;
		uint32_t n = c->npub;
		memcpy(out, c->pub, n * sizeof(*out));
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->seq, memory_order_relaxed) == s0)
			return n;
	}
}

int gw_cluster_home(const struct gw *gw, uint32_t tenant, uint32_t device, bool skip_self,
		    uint32_t *ipv4, uint16_t *port)
{
	struct rtci_member m[GW_CLUSTER_MAX_MEMBERS + 1];
	uint32_t n = gw_cluster_members(gw, m);
	if (n == 0)
		return 1; /* no membership known (yet): this gateway serves */
	int self = -1;
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(m[i].id, gw->cfg->cluster.id) == 0)
			self = (int)i;
	if (self < 0) {
		/* not in the view (etcd lost its lease a moment ago): still a member, or the devices
		 * it holds would all look placed elsewhere */
		self = (int)n++;
		memset(&m[self], 0, sizeof(m[self]));
		snprintf(m[self].id, sizeof(m[self].id), "%s", gw->cfg->cluster.id);
		m[self].id_hash = rtci_place_id_hash(m[self].id);
		m[self].weight = gw->cluster->weight > 0 ? gw->cluster->weight : 1;
		m[self].eligible = true;
	}
	if (skip_self)
		m[self].eligible = false;
	int h = rtci_place(m, n, rtci_place_key(tenant, device));
	if (h < 0)
		return -1;
	if (h == self)
		return 1;
	*ipv4 = m[h].ipv4;
	*port = m[h].port;
	return 0;
}

char *gw_cluster_take_tenants(struct gw *gw)
{
	struct gw_cluster *c = gw->cluster;
	if (!c)
		return NULL;
	pthread_mutex_lock(&c->mu);
	char *t = c->pending_tenants;
	c->pending_tenants = NULL;
	pthread_mutex_unlock(&c->mu);
	return t;
}

void gw_cluster_refresh(struct gw *gw)
{
	/* the record carries the draining state: the cluster thread writes it now */
	if (gw->cluster)
		atomic_store(&gw->cluster->kick, true);
}
