#include "gateway/metrics.h"

#include "common/rtci_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128
#define LABEL_MAX_LEN 512

struct family {
	char name[NAME_MAX_LEN];
	char *help;
	enum rtci_metric_type type;
	double buckets[RTCI_METRICS_MAX_BUCKETS];
	uint32_t nbuckets;
	unsigned flags;
};

struct series {
	uint32_t family;
	uint32_t cell;       /* first cell */
	char labels[LABEL_MAX_LEN]; /* rendered 'a="x",b="y"' (escaped) */
};

struct rtci_metrics {
	struct rtci_metrics_limits lim;
	pthread_mutex_t lock;          /* registration only */
	struct family *fam;
	_Atomic uint32_t nfam;
	struct series *ser;
	_Atomic uint32_t nser;
	uint32_t ncells;
	_Atomic uint64_t **slot;       /* [slot][cell], each slot its own cache-aligned block */
	struct MHD_Daemon *httpd;
	uint16_t bound_port;
};

static uint64_t d2u(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double u2d(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

int rtci_metrics_create(const struct rtci_metrics_limits *lim, struct rtci_metrics **out)
{
	if (!lim || !out || lim->slots == 0 || lim->slots > 1024)
		return -EINVAL;
	struct rtci_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->lim = *lim;
	if (!m->lim.families)
		m->lim.families = 128;
	if (!m->lim.series)
		m->lim.series = 4096;
	if (!m->lim.cells)
		m->lim.cells = 65536;
	pthread_mutex_init(&m->lock, NULL);
	m->fam = calloc(m->lim.families, sizeof(*m->fam));
	m->ser = calloc(m->lim.series, sizeof(*m->ser));
	m->slot = calloc(m->lim.slots, sizeof(*m->slot));
	if (!m->fam || !m->ser || !m->slot)
		goto nomem;
	size_t bytes = ((size_t)m->lim.cells * sizeof(uint64_t) + 63) & ~(size_t)63;
	for (uint32_t s = 0; s < m->lim.slots; s++) {
		m->slot[s] = aligned_alloc(64, bytes);
		if (!m->slot[s])
			goto nomem;
		memset((void *)m->slot[s], 0, bytes);
	}
	*out = m;
	return 0;
nomem:
	rtci_metrics_destroy(m);
	return -ENOMEM;
}

void rtci_metrics_destroy(struct rtci_metrics *m)
{
	if (!m)
		return;
	rtci_metrics_stop(m);
	if (m->slot)
		for (uint32_t s = 0; s < m->lim.slots; s++)
			free((void *)m->slot[s]);
	free(m->slot);
	if (m->fam)
		for (uint32_t i = 0; i < m->nfam; i++)
			free(m->fam[i].help);
	free(m->fam);
	free(m->ser);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool valid_name(const char *s, bool label)
{
	if (!s || !*s || strlen(s) >= NAME_MAX_LEN)
		return false;
	for (const char *p = s; *p; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			     (!label && *p == ':');
		if (!alpha && !(p != s && *p >= '0' && *p <= '9'))
			return false;
	}
	return !(label && s[0] == '_' && s[1] == '_'); /* __ is reserved */
}

int rtci_metrics_family(struct rtci_metrics *m, const char *name, const char *help,
			enum rtci_metric_type type, const double *buckets, uint32_t nbuckets,
			unsigned flags)
{
	if (!m || !valid_name(name, false) || type > RTCI_METRIC_HISTOGRAM)
		return -EINVAL;
	if (type == RTCI_METRIC_HISTOGRAM) {
		if (!buckets || nbuckets == 0 || nbuckets > RTCI_METRICS_MAX_BUCKETS)
			return -EINVAL;
		for (uint32_t i = 0; i < nbuckets; i++)
			if (isnan(buckets[i]) || (i && !(buckets[i] > buckets[i - 1])))
				return -EINVAL;
	}
	pthread_mutex_lock(&m->lock);
	int rc;
	for (uint32_t i = 0; i < m->nfam; i++) {
		if (strcmp(m->fam[i].name, name) == 0) {
			rc = m->fam[i].type == type ? (int)i : -EEXIST;
			goto out;
		}
	}
	if (m->nfam == m->lim.families) {
		rc = -RTCI_ERR_METRICS_FULL;
		goto out;
	}
	struct family *f = &m->fam[m->nfam];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->help = strdup(help ? help : "");
	if (!f->help) {
		rc = -ENOMEM;
		goto out;
	}
	f->type = type;
	f->flags = flags;
	if (type == RTCI_METRIC_HISTOGRAM) {
		memcpy(f->buckets, buckets, nbuckets * sizeof(double));
		f->nbuckets = nbuckets;
	}
	rc = (int)m->nfam;
	atomic_store_explicit(&m->nfam, m->nfam + 1, memory_order_release);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Label value escaping per the text format: backslash, double quote and newline. */
static size_t escape(char *dst, size_t room, const char *src, bool quotes)
{
	size_t n = 0;
	for (; *src; src++) {
		const char *rep = NULL;
		char one[2] = { *src, 0 };
		if (*src == '\\')
			rep = "\\\\";
		else if (*src == '\n')
			rep = "\\n";
		else if (*src == '"' && quotes)
			rep = "\\\"";
		else
			rep = one;
		size_t l = strlen(rep);
		if (n + l >= room)
			return room; /* signals overflow */
		memcpy(dst + n, rep, l);
		n += l;
	}
	dst[n] = '\0';
	return n;
}

int rtci_metrics_series(struct rtci_metrics *m, int family, uint32_t nlabels,
			const char *const *names, const char *const *values)
{
	char labels[LABEL_MAX_LEN];
	size_t n = 0;

	if (!m || family < 0 || (uint32_t)family >= m->nfam || nlabels > RTCI_METRICS_MAX_LABELS ||
	    (nlabels && (!names || !values)))
		return -EINVAL;
	labels[0] = '\0';
	for (uint32_t i = 0; i < nlabels; i++) {
		if (!valid_name(names[i], true) || !values[i] || strcmp(names[i], "le") == 0)
			return -EINVAL;
		int w = snprintf(labels + n, sizeof(labels) - n, "%s%s=\"", i ? "," : "", names[i]);
		if (w < 0 || (size_t)w >= sizeof(labels) - n)
			return -EINVAL;
		n += (size_t)w;
		size_t e = escape(labels + n, sizeof(labels) - n - 1, values[i], true);
		if (e >= sizeof(labels) - n - 1)
			return -EINVAL;
		n += e;
		labels[n++] = '"';
		labels[n] = '\0';
	}

	pthread_mutex_lock(&m->lock);
	int rc;
	for (uint32_t i = 0; i < m->nser; i++) {
		if (m->ser[i].family == (uint32_t)family && strcmp(m->ser[i].labels, labels) == 0) {
			rc = (int)i;
			goto out;
		}
	}
	const struct family *f = &m->fam[family];
	uint32_t cells = f->type == RTCI_METRIC_HISTOGRAM ? f->nbuckets + 2 : 1;
	if (m->nser == m->lim.series || m->ncells + cells > m->lim.cells) {
		rc = -RTCI_ERR_METRICS_FULL;
		goto out;
	}
	struct series *s = &m->ser[m->nser];
	s->family = (uint32_t)family;
	s->cell = m->ncells;
	memcpy(s->labels, labels, n + 1);
	m->ncells += cells;
	rc = (int)m->nser;
	atomic_store_explicit(&m->nser, m->nser + 1, memory_order_release);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static inline _Atomic uint64_t *cell(struct rtci_metrics *m, uint32_t slot, int series,
				      uint32_t off)
{
	return &m->slot[slot][m->ser[series].cell + off];
}

static inline bool ok(const struct rtci_metrics *m, uint32_t slot, int series)
{
	return m && slot < m->lim.slots && series >= 0 &&
	       (uint32_t)series < atomic_load_explicit(&m->nser, memory_order_acquire);
}

/* Each slot has a single writer, so a relaxed load + store is an exact read-modify-write. */
void rtci_metrics_add(struct rtci_metrics *m, uint32_t slot, int series, uint64_t delta)
{
	if (!ok(m, slot, series))
		return;
	_Atomic uint64_t *c = cell(m, slot, series, 0);
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
			      memory_order_relaxed);
}

void rtci_metrics_set_total(struct rtci_metrics *m, uint32_t slot, int series, uint64_t total)
{
	if (!ok(m, slot, series) || m->fam[m->ser[series].family].type != RTCI_METRIC_COUNTER)
		return;
	atomic_store_explicit(cell(m, slot, series, 0), total, memory_order_relaxed);
}

void rtci_metrics_gauge_set(struct rtci_metrics *m, uint32_t slot, int series, double value)
{
	if (!ok(m, slot, series))
		return;
	atomic_store_explicit(cell(m, slot, series, 0), d2u(value), memory_order_relaxed);
}

void rtci_metrics_gauge_add(struct rtci_metrics *m, uint32_t slot, int series, double delta)
{
	if (!ok(m, slot, series))
		return;
	_Atomic uint64_t *c = cell(m, slot, series, 0);
	double v = u2d(atomic_load_explicit(c, memory_order_relaxed)) + delta;
	atomic_store_explicit(c, d2u(v), memory_order_relaxed);
}

void rtci_metrics_observe(struct rtci_metrics *m, uint32_t slot, int series, double value)
{
	if (!ok(m, slot, series))
		return;
	const struct family *f = &m->fam[m->ser[series].family];
	if (f->type != RTCI_METRIC_HISTOGRAM)
		return;
	uint32_t b = 0;
	while (b < f->nbuckets && value > f->buckets[b])
		b++;
	/* cells: [0, nbuckets) per-bucket counts (non-cumulative), nbuckets: sum, nbuckets+1: count */
	if (b < f->nbuckets) {
		_Atomic uint64_t *c = cell(m, slot, series, b);
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	_Atomic uint64_t *sum = cell(m, slot, series, f->nbuckets);
	atomic_store_explicit(sum, d2u(u2d(atomic_load_explicit(sum, memory_order_relaxed)) + value),
			      memory_order_relaxed);
	_Atomic uint64_t *cnt = cell(m, slot, series, f->nbuckets + 1);
	atomic_store_explicit(cnt, atomic_load_explicit(cnt, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static uint64_t sum_u(const struct rtci_metrics *m, const struct series *s, uint32_t off)
{
	uint64_t t = 0;
	for (uint32_t i = 0; i < m->lim.slots; i++)
		t += atomic_load_explicit(&m->slot[i][s->cell + off], memory_order_relaxed);
	return t;
}

static double sum_d(const struct rtci_metrics *m, const struct series *s, uint32_t off)
{
	double t = 0;
	for (uint32_t i = 0; i < m->lim.slots; i++)
		t += u2d(atomic_load_explicit(&m->slot[i][s->cell + off], memory_order_relaxed));
	return t;
}

double rtci_metrics_value(const struct rtci_metrics *m, int series)
{
	if (!m || series < 0 || (uint32_t)series >= atomic_load_explicit(&m->nser, memory_order_acquire))
		return NAN;
	const struct series *s = &m->ser[series];
	const struct family *f = &m->fam[s->family];
	switch (f->type) {
	case RTCI_METRIC_COUNTER:
		return (double)sum_u(m, s, 0);
	case RTCI_METRIC_GAUGE:
		return sum_d(m, s, 0);
	default:
		return (double)sum_u(m, s, f->nbuckets + 1);
	}
}

/* Growing output buffer for a scrape (not a hot path). */
struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->err)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static const char *fmt_double(char *buf, size_t len, double v)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	snprintf(buf, len, "%.17g", v);
	return buf;
}

static const char *type_name(enum rtci_metric_type t)
{
	return t == RTCI_METRIC_COUNTER ? "counter" : t == RTCI_METRIC_GAUGE ? "gauge" : "histogram";
}

int rtci_metrics_render(const struct rtci_metrics *m, char **out, size_t *len)
{
	if (!m || !out)
		return -EINVAL;
	struct sbuf b = { .cap = 4096 };
	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	b.p[0] = '\0';
	uint32_t nfam = atomic_load_explicit(&m->nfam, memory_order_acquire);
	uint32_t nser = atomic_load_explicit(&m->nser, memory_order_acquire);
	char num[64], help[1024];

	for (uint32_t fi = 0; fi < nfam; fi++) {
		const struct family *f = &m->fam[fi];
		escape(help, sizeof(help), f->help, false);
		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, help, f->name,
			  type_name(f->type));
		for (uint32_t si = 0; si < nser; si++) {
			const struct series *s = &m->ser[si];
			if (s->family != fi)
				continue;
			const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
			if (f->type == RTCI_METRIC_COUNTER) {
				sb_printf(&b, "%s%s%s%s %" PRIu64 "\n", f->name, open, s->labels, close,
					  sum_u(m, s, 0));
			} else if (f->type == RTCI_METRIC_GAUGE) {
				sb_printf(&b, "%s%s%s%s %s\n", f->name, open, s->labels, close,
					  fmt_double(num, sizeof(num), sum_d(m, s, 0)));
			} else {
				const char *sep = s->labels[0] ? "," : "";
				uint64_t cum = 0;
				for (uint32_t k = 0; k < f->nbuckets; k++) {
					cum += sum_u(m, s, k);
					sb_printf(&b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name,
						  s->labels, sep,
						  fmt_double(num, sizeof(num), f->buckets[k]), cum);
				}
				uint64_t count = sum_u(m, s, f->nbuckets + 1);
				/* a scrape can race an observe; keep +Inf >= every bucket */
				if (count < cum)
					count = cum;
				sb_printf(&b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", f->name,
					  s->labels, sep, count);
				sb_printf(&b, "%s_sum%s%s%s %s\n", f->name, open, s->labels, close,
					  fmt_double(num, sizeof(num), sum_d(m, s, f->nbuckets)));
				sb_printf(&b, "%s_count%s%s%s %" PRIu64 "\n", f->name, open, s->labels,
					  close, count);
			}
		}
	}
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	if (len)
		*len = b.len;
	return 0;
}

int rtci_metrics_summary(const struct rtci_metrics *m, char *buf, size_t len)
{
	if (!m || !buf || len == 0)
		return -EINVAL;
	uint32_t nfam = atomic_load_explicit(&m->nfam, memory_order_acquire);
	uint32_t nser = atomic_load_explicit(&m->nser, memory_order_acquire);
	size_t n = 0;
	char num[64];

	buf[0] = '\0';
	for (uint32_t fi = 0; fi < nfam; fi++) {
		const struct family *f = &m->fam[fi];
		if (!(f->flags & RTCI_METRICS_SUMMARY))
			continue;
		double total = 0, sum = 0;
		for (uint32_t si = 0; si < nser; si++) {
			const struct series *s = &m->ser[si];
			if (s->family != fi)
				continue;
			total += rtci_metrics_value(m, (int)si);
			if (f->type == RTCI_METRIC_HISTOGRAM)
				sum += sum_d(m, s, f->nbuckets);
		}
		int w;
		if (f->type == RTCI_METRIC_HISTOGRAM)
			w = snprintf(buf + n, len - n, "%s%s_count=%.0f %s_avg=%.4g", n ? " " : "",
				     f->name, total, f->name, total > 0 ? sum / total : 0.0);
		else if (f->type == RTCI_METRIC_COUNTER)
			w = snprintf(buf + n, len - n, "%s%s=%.0f", n ? " " : "", f->name, total);
		else
			w = snprintf(buf + n, len - n, "%s%s=%s", n ? " " : "", f->name,
				     fmt_double(num, sizeof(num), total));
		if (w < 0)
			return -EINVAL;
		if ((size_t)w >= len - n) {
			n = len - 1;
			break;
		}
		n += (size_t)w;
	}
	return (int)n;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct rtci_metrics *m = cls;
	struct MHD_Response *resp;
	unsigned status;
	(void)version;
	(void)upload_data;
	(void)con_cls;

	if (*upload_data_size) {
		*upload_data_size = 0; /* ignore request bodies */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "only GET\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") == 0) {
		char *text = NULL;
		size_t len = 0;
		if (rtci_metrics_render(m, &text, &len) < 0)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(text);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type",
					"text/plain; version=0.0.4; charset=utf-8");
		status = MHD_HTTP_OK;
	} else {
		static const char msg[] = "not found: metrics are at /metrics\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	}
	if (!resp)
		return MHD_NO;
	enum MHD_Result r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

int rtci_metrics_serve(struct rtci_metrics *m, const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (!m || m->httpd)
		return -EINVAL;
	if (inet_pton(AF_INET, addr ? addr : "127.0.0.1", &sin.sin_addr) != 1)
		return -EINVAL;
	m->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, port, NULL, NULL,
				    handle, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_END);
	if (!m->httpd)
		return -EADDRNOTAVAIL;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_BIND_PORT);
	m->bound_port = info ? info->port : port;
	return 0;
}

uint16_t rtci_metrics_port(const struct rtci_metrics *m)
{
	return m && m->httpd ? m->bound_port : 0;
}

void rtci_metrics_stop(struct rtci_metrics *m)
{
	if (m && m->httpd) {
		MHD_stop_daemon(m->httpd);
		m->httpd = NULL;
		m->bound_port = 0;
	}
}
