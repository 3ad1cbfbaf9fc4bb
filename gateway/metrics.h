/* Metrics registry and Prometheus text endpoint (exposition format 0.0.4, libmicrohttpd).
 *
 * A family is a metric name with help text and a type; a series is a family plus label values
 * (tenant, reason, lcore, ...). Every series has one cell per update slot: each lcore or thread
 * that updates metrics owns a slot and writes only its own cells (relaxed atomics, no locks, no
 * shared cache lines between slots), and a scrape sums the slots. Register series at start-up or
 * on reload (a mutex guards registration only); updates never allocate.
 *
 * Counters are uint64 totals. Gauges are doubles: the exported value is the sum over slots, so a
 * gauge owned by one thread is set from that thread's slot. Histograms have fixed upper bounds. */
#ifndef RTCI_GATEWAY_METRICS_H
#define RTCI_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum rtci_metric_type {
	RTCI_METRIC_COUNTER,
	RTCI_METRIC_GAUGE,
	RTCI_METRIC_HISTOGRAM,
};

#define RTCI_METRICS_MAX_LABELS 4
#define RTCI_METRICS_MAX_BUCKETS 32

/* Family flag: include this family in the one-line summary. */
#define RTCI_METRICS_SUMMARY 1u

struct rtci_metrics_limits {
	uint32_t slots;       /* update slots (lcores/threads), >= 1 */
	uint32_t families;    /* default 128 */
	uint32_t series;      /* default 4096 */
	uint32_t cells;       /* default 65536: one per counter/gauge, buckets + 2 per histogram */
};

struct rtci_metrics;

int rtci_metrics_create(const struct rtci_metrics_limits *lim, struct rtci_metrics **out);
/* Stops the endpoint if running. */
void rtci_metrics_destroy(struct rtci_metrics *m);

/* Registers a family; returns its id (>= 0) or -EINVAL (bad name, bucket bounds not increasing),
 * -EEXIST (name taken with another type), -RTCI_ERR_METRICS_FULL. buckets: upper bounds for
 * histograms (NULL otherwise). Registering the same name and type again returns the same id. */
int rtci_metrics_family(struct rtci_metrics *m, const char *name, const char *help,
			enum rtci_metric_type type, const double *buckets, uint32_t nbuckets,
			unsigned flags);

/* Registers (or finds) the series of a family with these label names and values; returns the
 * series id (>= 0) or a negative code. Values may contain any bytes; they are escaped on output. */
int rtci_metrics_series(struct rtci_metrics *m, int family, uint32_t nlabels,
			const char *const *names, const char *const *values);

/* Updates from slot `slot` (the caller's lcore/thread index). Out-of-range ids are ignored. */
void rtci_metrics_add(struct rtci_metrics *m, uint32_t slot, int series, uint64_t delta);
/* Sets a counter's cell in this slot to a running total the slot's owner keeps elsewhere (e.g.
 * rtci_port_stats of the queue the lcore owns); the total must never decrease. */
void rtci_metrics_set_total(struct rtci_metrics *m, uint32_t slot, int series, uint64_t total);
void rtci_metrics_gauge_set(struct rtci_metrics *m, uint32_t slot, int series, double value);
void rtci_metrics_gauge_add(struct rtci_metrics *m, uint32_t slot, int series, double delta);
void rtci_metrics_observe(struct rtci_metrics *m, uint32_t slot, int series, double value);

/* Sum over slots: a counter's total, a gauge's value, a histogram's observation count. */
double rtci_metrics_value(const struct rtci_metrics *m, int series);

/* The whole registry in Prometheus text format 0.0.4; *out is malloc'd, NUL-terminated. */
int rtci_metrics_render(const struct rtci_metrics *m, char **out, size_t *len);

/* One line "name=value name=value ..." over the families flagged RTCI_METRICS_SUMMARY, each
 * summed over its series (histograms: name_count and name_avg). Returns the length written
 * (truncated to fit, always NUL-terminated) or a negative code. */
int rtci_metrics_summary(const struct rtci_metrics *m, char *buf, size_t len);

/* Serves GET /metrics on addr:port (IPv4; port 0 picks a free one) from a thread of its own. */
int rtci_metrics_serve(struct rtci_metrics *m, const char *addr, uint16_t port);
/* Port actually bound (useful with port 0), 0 when not serving. */
uint16_t rtci_metrics_port(const struct rtci_metrics *m);
void rtci_metrics_stop(struct rtci_metrics *m);

#endif
