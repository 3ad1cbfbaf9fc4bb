#include "gateway/metrics.h"
#include "common/rtci_error.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct rtci_metrics *make(uint32_t slots)
{
	struct rtci_metrics_limits lim = { .slots = slots };
	struct rtci_metrics *m = NULL;
	cr_assert_eq(rtci_metrics_create(&lim, &m), 0);
	return m;
}

/* Raw HTTP/1.0 GET; returns the whole response (headers + body), malloc'd. */
static char *http_get(uint16_t port, const char *req)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* Value of the exposition line whose name+labels part equals key exactly. */
static double find_value(const char *body, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
			return strtod(p + kl + 1, NULL);
	}
	return NAN;
}

struct worker_arg {
	struct rtci_metrics *m;
	uint32_t slot;
	int counter, hist;
};

static void *worker(void *p)
{
	struct worker_arg *w = p;
	for (int i = 0; i < 100000; i++)
		rtci_metrics_add(w->m, w->slot, w->counter, 1);
	for (int i = 0; i < 1000; i++)
		rtci_metrics_observe(w->m, w->slot, w->hist, (double)(i % 10));
	return NULL;
}

Test(metrics, endpoint_serves_summed_slots)
{
	struct rtci_metrics *m = make(4);
	int fc = rtci_metrics_family(m, "rtci_frames_total", "Frames received.", RTCI_METRIC_COUNTER,
				     NULL, 0, RTCI_METRICS_SUMMARY);
	int fd = rtci_metrics_family(m, "rtci_drops_total", "Drops by reason.", RTCI_METRIC_COUNTER,
				     NULL, 0, RTCI_METRICS_SUMMARY);
	int fg = rtci_metrics_family(m, "rtci_queue_depth", "Frames queued.", RTCI_METRIC_GAUGE, NULL,
				     0, 0);
	double bounds[] = { 1, 5, 8 };
	int fh = rtci_metrics_family(m, "rtci_batch_size", "Batch sizes.", RTCI_METRIC_HISTOGRAM,
				     bounds, 3, RTCI_METRICS_SUMMARY);
	cr_assert(fc >= 0 && fd >= 0 && fg >= 0 && fh >= 0);

	const char *tn[] = { "tenant" }, *tv[] = { "acme" };
	int frames = rtci_metrics_series(m, fc, 1, tn, tv);
	const char *dn[] = { "tenant", "reason" };
	const char *dv1[] = { "acme", "bad_checksum" }, *dv2[] = { "acme", "deadline" };
	int d1 = rtci_metrics_series(m, fd, 2, dn, dv1), d2 = rtci_metrics_series(m, fd, 2, dn, dv2);
	const char *ln[] = { "lcore" }, *lv[] = { "2" };
	int depth = rtci_metrics_series(m, fg, 1, ln, lv);
	int hist = rtci_metrics_series(m, fh, 0, NULL, NULL);
	cr_assert(frames >= 0 && d1 >= 0 && d2 >= 0 && depth >= 0 && hist >= 0);
	cr_expect_eq(rtci_metrics_series(m, fd, 2, dn, dv1), d1, "same labels, same series");

	pthread_t th[4];
	struct worker_arg wa[4];
	for (uint32_t i = 0; i < 4; i++) {
		wa[i] = (struct worker_arg){ m, i, frames, hist };
		pthread_create(&th[i], NULL, worker, &wa[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	rtci_metrics_add(m, 1, d1, 3);
	rtci_metrics_set_total(m, 2, d2, 2);
	rtci_metrics_set_total(m, 2, d2, 4); /* a running total kept elsewhere, copied in */
	rtci_metrics_set_total(m, 2, depth, 99); /* not a counter: ignored */
	rtci_metrics_gauge_set(m, 3, depth, 17.5);

	cr_assert_eq(rtci_metrics_serve(m, "127.0.0.1", 0), 0);
	uint16_t port = rtci_metrics_port(m);
	cr_assert_neq(port, 0);

	char *resp = http_get(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
	cr_assert(strncmp(resp, "HTTP/1.0 200", 12) == 0 || strncmp(resp, "HTTP/1.1 200", 12) == 0,
		  "%.60s", resp);
	cr_expect(strstr(resp, "text/plain; version=0.0.4") != NULL);
	char *body = strstr(resp, "\r\n\r\n");
	cr_assert_not_null(body);
	body += 4;
	cr_expect(strstr(body, "# HELP rtci_frames_total Frames received.\n") != NULL);
	cr_expect(strstr(body, "# TYPE rtci_frames_total counter\n") != NULL);
	cr_expect(strstr(body, "# TYPE rtci_batch_size histogram\n") != NULL);
	cr_expect_eq(find_value(body, "rtci_frames_total{tenant=\"acme\"}"), 400000.0);
	cr_expect_eq(find_value(body, "rtci_drops_total{tenant=\"acme\",reason=\"bad_checksum\"}"), 3);
	cr_expect_eq(find_value(body, "rtci_drops_total{tenant=\"acme\",reason=\"deadline\"}"), 4);
	cr_expect_eq(find_value(body, "rtci_queue_depth{lcore=\"2\"}"), 17.5);
	/* 4 threads x 1000 observations of 0..9: <=1: 0,1 (800); <=5: +2..5 (2400); <=8: 3600 */
	cr_expect_eq(find_value(body, "rtci_batch_size_bucket{le=\"1\"}"), 800);
	cr_expect_eq(find_value(body, "rtci_batch_size_bucket{le=\"5\"}"), 2400);
	cr_expect_eq(find_value(body, "rtci_batch_size_bucket{le=\"8\"}"), 3600);
	cr_expect_eq(find_value(body, "rtci_batch_size_bucket{le=\"+Inf\"}"), 4000);
	cr_expect_eq(find_value(body, "rtci_batch_size_count"), 4000);
	cr_expect_eq(find_value(body, "rtci_batch_size_sum"), 4 * 100 * 45.0);
	free(resp);

	resp = http_get(port, "GET /nothing HTTP/1.0\r\n\r\n");
	cr_expect(strstr(resp, " 404 ") != NULL, "%.60s", resp);
	free(resp);

	char line[512];
	int n = rtci_metrics_summary(m, line, sizeof(line));
	cr_assert_gt(n, 0);
	cr_expect_str_eq(line, "rtci_frames_total=400000 rtci_drops_total=7 "
			       "rtci_batch_size_count=4000 rtci_batch_size_avg=4.5");
	cr_expect_null(strchr(line, '\n'));
	rtci_metrics_destroy(m);
}

Test(metrics, label_values_escaped)
{
	struct rtci_metrics *m = make(1);
	int f = rtci_metrics_family(m, "rtci_x_total", "Help with \\ and\nnewline.",
				    RTCI_METRIC_COUNTER, NULL, 0, 0);
	const char *n[] = { "tenant" }, *v[] = { "a\"b\\c\nd" };
	int s = rtci_metrics_series(m, f, 1, n, v);
	cr_assert_geq(s, 0);
	rtci_metrics_add(m, 0, s, 2);
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(rtci_metrics_render(m, &text, &len), 0);
	cr_expect_eq(strlen(text), len);
	cr_expect(strstr(text, "# HELP rtci_x_total Help with \\\\ and\\nnewline.\n") != NULL, "%s",
		  text);
	cr_expect(strstr(text, "rtci_x_total{tenant=\"a\\\"b\\\\c\\nd\"} 2\n") != NULL, "%s", text);
	free(text);
	rtci_metrics_destroy(m);
}

Test(metrics, rejects_bad_registrations)
{
	struct rtci_metrics_limits lim = { .slots = 1, .families = 2, .series = 2 };
	struct rtci_metrics *m = NULL;
	cr_assert_eq(rtci_metrics_create(&lim, &m), 0);
	double bad[] = { 5, 1 };
	cr_expect_eq(rtci_metrics_family(m, "9bad", "", RTCI_METRIC_COUNTER, NULL, 0, 0), -EINVAL);
	cr_expect_eq(rtci_metrics_family(m, "h", "", RTCI_METRIC_HISTOGRAM, bad, 2, 0), -EINVAL);
	int a = rtci_metrics_family(m, "a", "", RTCI_METRIC_COUNTER, NULL, 0, 0);
	cr_expect_eq(rtci_metrics_family(m, "a", "", RTCI_METRIC_GAUGE, NULL, 0, 0), -EEXIST);
	cr_expect_eq(rtci_metrics_family(m, "a", "", RTCI_METRIC_COUNTER, NULL, 0, 0), a);
	cr_expect_geq(rtci_metrics_family(m, "b", "", RTCI_METRIC_GAUGE, NULL, 0, 0), 0);
	cr_expect_eq(rtci_metrics_family(m, "c", "", RTCI_METRIC_GAUGE, NULL, 0, 0),
		     -RTCI_ERR_METRICS_FULL);
	const char *n[] = { "le" }, *v[] = { "1" };
	cr_expect_eq(rtci_metrics_series(m, a, 1, n, v), -EINVAL, "le is reserved");
	const char *n2[] = { "x" }, *v1[] = { "1" }, *v2[] = { "2" }, *v3[] = { "3" };
	cr_expect_geq(rtci_metrics_series(m, a, 1, n2, v1), 0);
	cr_expect_geq(rtci_metrics_series(m, a, 1, n2, v2), 0);
	cr_expect_eq(rtci_metrics_series(m, a, 1, n2, v3), -RTCI_ERR_METRICS_FULL);
	/* out-of-range updates are ignored, not crashes */
	rtci_metrics_add(m, 5, 0, 1);
	rtci_metrics_add(m, 0, 99, 1);
	cr_expect_eq(rtci_metrics_value(m, 0), 0);
	rtci_metrics_destroy(m);
}

struct churn {
	struct rtci_metrics *m;
	uint32_t slot;
	int series, hist;
	atomic_int *stop;
};

static void *churn_main(void *p)
{
	struct churn *c = p;
	/* at least one update each, even when the scrapes are over before this thread first runs
	 * (a loaded machine) */
	do {
		rtci_metrics_add(c->m, c->slot, c->series, 1);
		rtci_metrics_observe(c->m, c->slot, c->hist, 3.0);
	} while (!atomic_load(c->stop));
	return NULL;
}

/* Scrapes while two slots update: every scrape parses, counters never go backwards and each
 * histogram's +Inf bucket never falls below its finite buckets. */
Test(metrics, scrape_during_updates)
{
	struct rtci_metrics *m = make(2);
	int f = rtci_metrics_family(m, "rtci_live_total", "", RTCI_METRIC_COUNTER, NULL, 0, 0);
	double b[] = { 1, 10 };
	int h = rtci_metrics_family(m, "rtci_live_hist", "", RTCI_METRIC_HISTOGRAM, b, 2, 0);
	int s = rtci_metrics_series(m, f, 0, NULL, NULL);
	int hs = rtci_metrics_series(m, h, 0, NULL, NULL);
	cr_assert(s >= 0 && hs >= 0);
	cr_assert_eq(rtci_metrics_serve(m, "127.0.0.1", 0), 0);
	atomic_int stop = 0;
	pthread_t th[2];
	struct churn c[2];
	for (uint32_t i = 0; i < 2; i++) {
		c[i] = (struct churn){ m, i, s, hs, &stop };
		pthread_create(&th[i], NULL, churn_main, &c[i]);
	}
	double last = 0;
	for (int i = 0; i < 20; i++) {
		char *resp = http_get(rtci_metrics_port(m), "GET /metrics HTTP/1.0\r\n\r\n");
		char *body = strstr(resp, "\r\n\r\n");
		cr_assert_not_null(body);
		double v = find_value(body, "rtci_live_total");
		double inf = find_value(body, "rtci_live_hist_bucket{le=\"+Inf\"}");
		double le10 = find_value(body, "rtci_live_hist_bucket{le=\"10\"}");
		cr_assert(!isnan(v) && !isnan(inf) && !isnan(le10));
		cr_expect_geq(v, last);
		cr_expect_geq(inf, le10);
		last = v;
		free(resp);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_expect_gt(rtci_metrics_value(m, s), 0);
	cr_expect_eq(rtci_metrics_value(m, s), rtci_metrics_value(m, hs));
	rtci_metrics_destroy(m);
}
