/* etcd v3 JSON gateway client: see etcd.h. libcurl carries the requests, jansson builds and
 * reads the JSON, libsodium does the base64 of keys and values. */
#include "cluster/etcd.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "common/rtci_error.h"

#define MAX_ANSWER (16u << 20) /* a range answer larger than this is refused */
#define URL_MAX 256

struct endpoints {
	char url[RTCI_ETCD_MAX_ENDPOINTS][URL_MAX];
	int n;
};

struct rtci_etcd {
	struct endpoints ep;
	int current;              /* the endpoint that answered last */
	uint32_t timeout_ms;
	CURL *curl;
};

struct buf {
	char *p;
	size_t len, cap;
	bool too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int parse_endpoints(const char *list, struct endpoints *ep)
{
	ep->n = 0;
	const char *s = list;
	while (s && *s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len == 0 || len >= URL_MAX || ep->n == RTCI_ETCD_MAX_ENDPOINTS)
			return -EINVAL;
		memcpy(ep->url[ep->n], s, len);
		ep->url[ep->n][len] = 0;
		while (len > 1 && ep->url[ep->n][len - 1] == '/')
			ep->url[ep->n][--len] = 0;
		ep->n++;
		s = end ? end + 1 : NULL;
	}
	return ep->n ? 0 : -EINVAL;
}

int rtci_etcd_create(const char *endpoints, uint32_t timeout_ms, struct rtci_etcd **out)
{
	if (!endpoints || !out || sodium_init() < 0)
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	struct rtci_etcd *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int rc = parse_endpoints(endpoints, &e->ep);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->timeout_ms = timeout_ms ? timeout_ms : 2000;
	if (!(e->curl = curl_easy_init())) {
		free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void rtci_etcd_destroy(struct rtci_etcd *e)
{
	if (!e)
		return;
	curl_easy_cleanup(e->curl);
	free(e);
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
	struct buf *b = user;
	size_t len = size * n;
	if (b->len + len + 1 > MAX_ANSWER) {
		b->too_big = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

/* POSTs body to path on the endpoints in turn; *answer gets the parsed JSON of a 200 answer. */
static int call(struct rtci_etcd *e, const char *path, json_t *body, json_t **answer)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		return -ENOMEM;
	int rc = -RTCI_ERR_ETCD_UNREACHABLE;
	for (int k = 0; k < e->ep.n; k++) {
		int i = (e->current + k) % e->ep.n;
		char url[URL_MAX + 64];
		snprintf(url, sizeof(url), "%s%s", e->ep.url[i], path);
		struct buf b = { 0 };
		curl_easy_reset(e->curl);
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
		CURLcode cc = curl_easy_perform(e->curl);
		long status = 0;
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK && !b.too_big) {
			free(b.p);
			continue; /* next endpoint */
		}
		e->current = i;
		json_t *j = b.p ? json_loadb(b.p, b.len, 0, NULL) : NULL;
		free(b.p);
		if (b.too_big || !j || !json_is_object(j)) {
			json_decref(j);
			rc = -RTCI_ERR_ETCD_PROTOCOL;
		} else if (status != 200 || json_object_get(j, "error")) {
			json_decref(j);
			rc = -RTCI_ERR_ETCD_REFUSED;
		} else {
			*answer = j;
			rc = 0;
		}
		break;
	}
	free(text);
	return rc;
}

static json_t *b64(const void *p, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(cap);
	if (!s)
		return NULL;
	sodium_bin2base64(s, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* Decodes a base64 JSON string into a new NUL-terminated buffer. */
static int unb64(const json_t *j, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(j);
	if (!s) {
		*out = calloc(1, 1);
		*len = 0;
		return *out ? 0 : -ENOMEM;
	}
	size_t n = strlen(s);
	uint8_t *p = malloc(n + 1);
	if (!p)
		return -ENOMEM;
	if (sodium_base642bin(p, n, s, n, NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(p);
		return -RTCI_ERR_ETCD_PROTOCOL;
	}
	p[*len] = 0;
	*out = p;
	return 0;
}

/* etcd encodes 64-bit integers as JSON strings. */
static int64_t i64(const json_t *j)
{
	if (json_is_integer(j))
		return json_integer_value(j);
	const char *s = json_string_value(j);
	return s ? strtoll(s, NULL, 10) : 0;
}

static json_t *i64json(int64_t v)
{
	char s[32];
	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_string(s);
}

int rtci_etcd_lease_grant(struct rtci_etcd *e, uint32_t ttl_s, int64_t *lease)
{
	json_t *a = NULL;
	int rc = call(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), &a);
	if (rc < 0)
		return rc;
	*lease = i64(json_object_get(a, "ID"));
	json_decref(a);
	return *lease ? 0 : -RTCI_ERR_ETCD_PROTOCOL;
}

int rtci_etcd_lease_keepalive(struct rtci_etcd *e, int64_t lease)
{
	json_t *a = NULL;
	int rc = call(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", i64json(lease)), &a);
	if (rc < 0)
		return rc;
	/* an expired lease comes back without a TTL (or with 0) */
	json_t *r = json_object_get(a, "result");
	int64_t ttl = r ? i64(json_object_get(r, "TTL")) : 0;
	json_decref(a);
	return ttl > 0 ? 0 : -ENOENT;
}

int rtci_etcd_lease_revoke(struct rtci_etcd *e, int64_t lease)
{
	json_t *a = NULL;
	int rc = call(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", i64json(lease)), &a);
	json_decref(a);
	return rc;
}

int rtci_etcd_put(struct rtci_etcd *e, const char *key, const void *value, size_t len,
		  int64_t lease)
{
	json_t *body = json_pack("{s:o,s:o}", "key", b64(key, strlen(key)), "value", b64(value, len));
	if (!body)
		return -ENOMEM;
	if (lease)
		json_object_set_new(body, "lease", i64json(lease));
	json_t *a = NULL;
	int rc = call(e, "/v3/kv/put", body, &a);
	json_decref(a);
	return rc;
}

/* The smallest key above every key starting with prefix ("\0" for the empty prefix: all). */
static size_t range_end(const char *prefix, char *end, size_t cap)
{
	size_t n = strlen(prefix);
	if (n == 0 || n >= cap) {
		end[0] = 0;
		return 1;
	}
	memcpy(end, prefix, n);
	while (n > 0 && (uint8_t)end[n - 1] == 0xff)
		n--;
	if (n == 0) {
		end[0] = 0;
		return 1;
	}
	end[n - 1]++;
	return n;
}

static json_t *range_body(const char *prefix)
{
	char end[1024];
	size_t n = range_end(prefix, end, sizeof(end));
	return json_pack("{s:o,s:o}", "key", b64(prefix[0] ? prefix : "\0", prefix[0] ? strlen(prefix) : 1),
			 "range_end", b64(end, n));
}

static int kv_from_json(const json_t *j, struct rtci_etcd_kv *kv)
{
	uint8_t *k = NULL;
	size_t klen;
	int rc = unb64(json_object_get(j, "key"), &k, &klen);
	if (rc < 0)
		return rc;
	kv->key = (char *)k;
	if ((rc = unb64(json_object_get(j, "value"), &kv->value, &kv->len)) < 0) {
		free(k);
		return rc;
	}
	kv->mod_revision = i64(json_object_get(j, "mod_revision"));
	kv->lease = i64(json_object_get(j, "lease"));
	return 0;
}

int rtci_etcd_get_prefix(struct rtci_etcd *e, const char *prefix, struct rtci_etcd_kv **kvs,
			 size_t *n, int64_t *revision)
{
	*kvs = NULL;
	*n = 0;
	json_t *a = NULL;
	int rc = call(e, "/v3/kv/range", range_body(prefix), &a);
	if (rc < 0)
		return rc;
	if (revision)
		*revision = i64(json_object_get(json_object_get(a, "header"), "revision"));
	json_t *arr = json_object_get(a, "kvs");
	size_t cnt = json_is_array(arr) ? json_array_size(arr) : 0;
	struct rtci_etcd_kv *v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v) {
		json_decref(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++)
		if ((rc = kv_from_json(json_array_get(arr, i), &v[i])) < 0) {
			rtci_etcd_kvs_free(v, i);
			json_decref(a);
			return rc;
		}
	json_decref(a);
	*kvs = v;
	*n = cnt;
	return 0;
}

void rtci_etcd_kvs_free(struct rtci_etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; kvs && i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].value);
	}
	free(kvs);
}

int rtci_etcd_delete(struct rtci_etcd *e, const char *key, int prefix)
{
	json_t *body = prefix ? range_body(key) : json_pack("{s:o}", "key", b64(key, strlen(key)));
	json_t *a = NULL;
	int rc = call(e, "/v3/kv/deleterange", body, &a);
	json_decref(a);
	return rc;
}

/* ---- watch ---- */

struct rtci_etcd_watch {
	struct endpoints ep;
	char prefix[1024];
	int64_t next_revision;    /* where a retry resumes */
	uint32_t retry_ms;
	rtci_etcd_watch_fn fn;
	rtci_etcd_watch_err_fn on_err;
	void *user;
	pthread_t th;
	_Atomic bool stop;
	struct buf pending;       /* stream bytes not yet parsed */
};

/* One message of the stream: {"result": {"header": ..., "events": [...], "created": ...}}. */
static void watch_message(struct rtci_etcd_watch *w, json_t *m)
{
	json_t *r = json_object_get(m, "result");
	json_t *ev = r ? json_object_get(r, "events") : NULL;
	for (size_t i = 0; json_is_array(ev) && i < json_array_size(ev); i++) {
		json_t *x = json_array_get(ev, i);
		const char *type = json_string_value(json_object_get(x, "type"));
		struct rtci_etcd_kv kv;
		if (kv_from_json(json_object_get(x, "kv"), &kv) < 0)
			continue;
		if (kv.mod_revision >= w->next_revision)
			w->next_revision = kv.mod_revision + 1;
		w->fn(w->user, type && strcmp(type, "DELETE") == 0 ? RTCI_ETCD_DELETE : RTCI_ETCD_PUT,
		      &kv);
		free(kv.key);
		free(kv.value);
	}
}

static size_t watch_data(char *data, size_t size, size_t n, void *user)
{
	struct rtci_etcd_watch *w = user;
	if (atomic_load(&w->stop))
		return 0; /* ends the transfer */
	size_t len = size * n;
	if (collect(data, 1, len, &w->pending) != len)
		return 0;
	/* the gateway streams one JSON object per message: parse every complete one */
	size_t off = 0;
	for (;;) {
		while (off < w->pending.len && (w->pending.p[off] == '\n' || w->pending.p[off] == ' ' ||
						w->pending.p[off] == '\r'))
			off++;
		if (off >= w->pending.len)
			break;
		json_error_t err;
		json_t *m = json_loadb(w->pending.p + off, w->pending.len - off,
				       JSON_DISABLE_EOF_CHECK, &err);
		if (!m)
			break; /* incomplete: wait for more */
		off += (size_t)err.position;
		watch_message(w, m);
		json_decref(m);
	}
	memmove(w->pending.p, w->pending.p + off, w->pending.len - off);
	w->pending.len -= off;
	return len;
}

static int watch_progress(void *user, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&((struct rtci_etcd_watch *)user)->stop) ? 1 : 0;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *watch_main(void *arg)
{
	struct rtci_etcd_watch *w = arg;
	CURL *c = curl_easy_init();
	for (int i = 0; c && !atomic_load(&w->stop); i = (i + 1) % w->ep.n) {
		char url[URL_MAX + 16];
		snprintf(url, sizeof(url), "%s/v3/watch", w->ep.url[i]);
		json_t *cr = range_body(w->prefix);
		if (w->next_revision)
			json_object_set_new(cr, "start_revision", i64json(w->next_revision));
		json_t *req = json_pack("{s:o}", "create_request", cr);
		char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
		json_decref(req);
		w->pending.len = 0;
		curl_easy_reset(c);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch_data);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, watch_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
		/* a silent connection to a dead endpoint is noticed by TCP keepalive */
		curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 2L);
		curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 1L);
		CURLcode cc = curl_easy_perform(c);
		free(text);
		if (atomic_load(&w->stop))
			break;
		if (w->on_err)
			w->on_err(w->user, cc == CURLE_OK ? -RTCI_ERR_ETCD_PROTOCOL
							   : -RTCI_ERR_ETCD_UNREACHABLE);
		for (uint32_t t = 0; t < w->retry_ms && !atomic_load(&w->stop); t += 50)
			sleep_ms(50);
	}
	curl_easy_cleanup(c);
	return NULL;
}

int rtci_etcd_watch_start(const char *endpoints, const char *prefix, int64_t start_revision,
			  uint32_t retry_ms, rtci_etcd_watch_fn fn, rtci_etcd_watch_err_fn on_err,
			  void *user, struct rtci_etcd_watch **out)
{
	if (!endpoints || !prefix || !fn || !out || strlen(prefix) >= sizeof(((struct rtci_etcd_watch *)0)->prefix))
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	struct rtci_etcd_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	int rc = parse_endpoints(endpoints, &w->ep);
	if (rc < 0) {
		free(w);
		return rc;
	}
	snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
	w->next_revision = start_revision;
	w->retry_ms = retry_ms ? retry_ms : 500;
	w->fn = fn;
	w->on_err = on_err;
	w->user = user;
	if (pthread_create(&w->th, NULL, watch_main, w) != 0) {
		free(w);
		return -ENOMEM;
	}
	*out = w;
	return 0;
}

void rtci_etcd_watch_stop(struct rtci_etcd_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
	free(w->pending.p);
	free(w);
}
