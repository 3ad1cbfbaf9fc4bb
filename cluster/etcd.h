/* Client of etcd's v3 API through its JSON gateway (HTTP/1.1 + JSON; libcurl, jansson).
 *
 * Only what a cluster of gateways needs: leases (grant, keep alive, revoke), put (optionally
 * under a lease), get and delete by key or prefix, and a watch on a prefix, read as a streaming
 * request on a thread of its own. Keys are strings, values byte strings (base64 on the wire).
 * Endpoints are tried in turn until one answers. Every call has a timeout and returns 0 or a
 * negative code (-RTCI_ERR_ETCD_UNREACHABLE, -RTCI_ERR_ETCD_PROTOCOL, -ENOENT, -ENOMEM, ...);
 * none of this is used on the packet path. One client is used by one thread at a time; a
 * watch has its own connection. */
#ifndef RTCI_CLUSTER_ETCD_H
#define RTCI_CLUSTER_ETCD_H

#include <stddef.h>
#include <stdint.h>

#define RTCI_ETCD_MAX_ENDPOINTS 8

struct rtci_etcd;
struct rtci_etcd_watch;

struct rtci_etcd_kv {
	char *key;                /* NUL-terminated */
	uint8_t *value;           /* NUL-terminated too (not counted in len), for text values */
	size_t len;
	int64_t mod_revision;
	int64_t lease;            /* 0: none */
};

/* endpoints: comma-separated base URLs, e.g. "http://10.0.0.1:2379,http://10.0.0.2:2379". */
int rtci_etcd_create(const char *endpoints, uint32_t timeout_ms, struct rtci_etcd **out);
void rtci_etcd_destroy(struct rtci_etcd *e);

int rtci_etcd_lease_grant(struct rtci_etcd *e, uint32_t ttl_s, int64_t *lease);
/* Refreshes the lease; -ENOENT when it has expired (a new one must be granted). */
int rtci_etcd_lease_keepalive(struct rtci_etcd *e, int64_t lease);
int rtci_etcd_lease_revoke(struct rtci_etcd *e, int64_t lease);

/* lease 0: the key lives until deleted. */
int rtci_etcd_put(struct rtci_etcd *e, const char *key, const void *value, size_t len,
		  int64_t lease);
/* Every key starting with prefix (prefix "" = all keys), sorted by key; *revision (may be NULL)
 * gets the store's revision, from which a watch sees every later change. Free with
 * rtci_etcd_kvs_free. */
int rtci_etcd_get_prefix(struct rtci_etcd *e, const char *prefix, struct rtci_etcd_kv **kvs,
			 size_t *n, int64_t *revision);
void rtci_etcd_kvs_free(struct rtci_etcd_kv *kvs, size_t n);
/* Deletes the key, or with prefix != 0 every key starting with it. */
int rtci_etcd_delete(struct rtci_etcd *e, const char *key, int prefix);

enum rtci_etcd_event { RTCI_ETCD_PUT = 0, RTCI_ETCD_DELETE = 1 };
/* Called on the watch's thread for each change, in order. */
typedef void (*rtci_etcd_watch_fn)(void *user, enum rtci_etcd_event type,
				   const struct rtci_etcd_kv *kv);
/* Called on the watch's thread when the stream ends or cannot be opened (err < 0) before the
 * watch retries (every retry_ms, from the revision after the last event seen). */
typedef void (*rtci_etcd_watch_err_fn)(void *user, int err);

/* Watches every key starting with prefix from start_revision (0: from now). */
int rtci_etcd_watch_start(const char *endpoints, const char *prefix, int64_t start_revision,
			  uint32_t retry_ms, rtci_etcd_watch_fn fn, rtci_etcd_watch_err_fn on_err,
			  void *user, struct rtci_etcd_watch **out);
void rtci_etcd_watch_stop(struct rtci_etcd_watch *w);

#endif
