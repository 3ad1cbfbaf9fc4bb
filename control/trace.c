/* Bandwidth traces as a piecewise-linear cumulative capacity C(t) over one period, looping.
 * Queries are a binary search over the breakpoints: O(log n). */
#include "control/trace.h"
#include "control/ctl_io.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_MAX_LINES (8u << 20)
#define TRACE_MAX_FILE (64u << 20)
#define MAHIMAHI_PACKET 1500.0

struct rtci_ctl_trace {
	char name[96];
	size_t n;      /* points: t[0] = 0 ... t[n-1] = period */
	int64_t *t;
	double *cum;
	int64_t period;
	double total;
};

static struct rtci_ctl_trace *trace_alloc(const char *name, size_t cap)
{
	struct rtci_ctl_trace *tr = calloc(1, sizeof(*tr));
	if (!tr)
		return NULL;
	tr->t = malloc(cap * sizeof(*tr->t));
	tr->cum = malloc(cap * sizeof(*tr->cum));
	if (!tr->t || !tr->cum) {
		rtci_ctl_trace_destroy(tr);
		return NULL;
	}
	snprintf(tr->name, sizeof(tr->name), "%s", name ? name : "trace");
	tr->t[0] = 0;
	tr->cum[0] = 0;
	tr->n = 1;
	return tr;
}

static void push(struct rtci_ctl_trace *tr, int64_t t, double cum)
{
	if (t == tr->t[tr->n - 1]) { /* zero-length step: keep the larger total */
		tr->cum[tr->n - 1] = cum;
		return;
	}
	tr->t[tr->n] = t;
	tr->cum[tr->n] = cum;
	tr->n++;
}

static int finish_build(struct rtci_ctl_trace *tr)
{
	tr->period = tr->t[tr->n - 1];
	tr->total = tr->cum[tr->n - 1];
	if (tr->period <= 0 || !(tr->total > 0))
		return -RTCI_ERR_CTL_TRACE_EMPTY;
	return 0;
}

void rtci_ctl_trace_destroy(struct rtci_ctl_trace *t)
{
	if (!t)
		return;
	free(t->t);
	free(t->cum);
	free(t);
}

/* Splits buf into lines; calls fn with a NUL-terminated, trimmed copy of each non-blank line. */
struct line_iter {
	const char *p, *end;
	unsigned lineno;
	char line[256];
};

/* Returns 1 with a line, 0 at the end, negative when a line is too long. */
static int next_line(struct line_iter *it)
{
	while (it->p < it->end) {
		const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
		const char *e = nl ? nl : it->end;
		const char *s = it->p;
		it->p = nl ? nl + 1 : it->end;
		it->lineno++;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e)
			continue;
		if ((size_t)(e - s) >= sizeof(it->line))
			return -1;
		memcpy(it->line, s, (size_t)(e - s));
		it->line[e - s] = 0;
		return 1;
	}
	return 0;
}

static unsigned count_fields(const char *s)
{
	unsigned n = 0;
	while (*s) {
		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		n++;
		while (*s && !isspace((unsigned char)*s))
			s++;
	}
	return n;
}

static size_t count_lines(const char *buf, size_t len)
{
	size_t n = 1;
	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))); p++)
		n++;
	return n;
}

static int parse_mahimahi(const char *buf, size_t len, const char *name, struct rtci_ctl_trace **out,
			  char *err, size_t err_len)
{
	size_t lines = count_lines(buf, len);
	if (lines > TRACE_MAX_LINES) {
		rtci_ctl_set_err(err, err_len, "%s: more than %u lines", name, TRACE_MAX_LINES);
		return -RTCI_ERR_CTL_TOO_LARGE;
	}
	long long *ts = malloc(lines * sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	struct line_iter it = { .p = buf, .end = buf + len };
	size_t n = 0;
	int r;
	long long prev = -1;
	while ((r = next_line(&it)) > 0) {
		char *endp;
		errno = 0;
		long long v = strtoll(it.line, &endp, 10);
		if (endp == it.line || *endp || errno) {
			rtci_ctl_set_err(err, err_len, "%s:%u: expected one integer timestamp in ms, got \"%.40s\"",
				name, it.lineno, it.line);
			free(ts);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		if (v < 0 || v > 1000LL * 86400 * 365) {
			rtci_ctl_set_err(err, err_len, "%s:%u: timestamp %lld out of range", name, it.lineno, v);
			free(ts);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		if (v < prev) {
			rtci_ctl_set_err(err, err_len, "%s:%u: timestamp %lld goes back (previous %lld)", name,
				it.lineno, v, prev);
			free(ts);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		prev = v;
		ts[n++] = v;
	}
	if (r < 0) {
		rtci_ctl_set_err(err, err_len, "%s:%u: line too long", name, it.lineno);
		free(ts);
		return -RTCI_ERR_CTL_TRACE_SYNTAX;
	}
	if (n == 0) {
		rtci_ctl_set_err(err, err_len, "%s: no delivery opportunities", name);
		free(ts);
		return -RTCI_ERR_CTL_TRACE_EMPTY;
	}
	/* A slice of a longer recording starts at its first opportunity: shift it so that one
	 * delivers in the first millisecond (0, 1], instead of reading the time before it as part
	 * of the link (docs/control.md §8). */
	if (ts[0] > 1) {
		long long base = ts[0] - 1;
		for (size_t j = 0; j < n; j++)
			ts[j] -= base;
	}
	/* Opportunity at ms m delivers during (m-1, m]; the trace repeats every P = last ms, so an
	 * opportunity at 0 is one at P of the previous loop. */
	long long P = ts[n - 1] > 0 ? ts[n - 1] : 1;
	struct rtci_ctl_trace *tr = trace_alloc(name, 2 * n + 2);
	if (!tr) {
		free(ts);
		return -ENOMEM;
	}
	size_t zeros = 0;
	while (zeros < n && ts[zeros] == 0)
		zeros++;
	double cum = 0;
	size_t i = zeros;
	while (i < n) {
		long long m = ts[i];
		size_t k = 0;
		while (i < n && ts[i] == m) {
			k++;
			i++;
		}
		if (m == P)
			k += zeros;
		push(tr, (int64_t)(m - 1) * 1000000, cum);
		cum += (double)k * MAHIMAHI_PACKET;
		push(tr, (int64_t)m * 1000000, cum);
	}
	if (zeros == n) { /* only zeros: P = 1 ms */
		cum = (double)zeros * MAHIMAHI_PACKET;
		push(tr, 1000000, cum);
	}
	free(ts);
	int rc = finish_build(tr);
	if (rc) {
		rtci_ctl_set_err(err, err_len, "%s: trace carries no data", name);
		rtci_ctl_trace_destroy(tr);
		return rc;
	}
	*out = tr;
	return 0;
}

static int parse_norway(const char *buf, size_t len, const char *name, struct rtci_ctl_trace **out,
			char *err, size_t err_len)
{
	size_t lines = count_lines(buf, len);
	if (lines > TRACE_MAX_LINES) {
		rtci_ctl_set_err(err, err_len, "%s: more than %u lines", name, TRACE_MAX_LINES);
		return -RTCI_ERR_CTL_TOO_LARGE;
	}
	struct rtci_ctl_trace *tr = trace_alloc(name, lines + 2);
	if (!tr)
		return -ENOMEM;
	struct line_iter it = { .p = buf, .end = buf + len };
	int r;
	double prev_t = 0, base = 0;
	double cum = 0;
	unsigned rows = 0;
	while ((r = next_line(&it)) > 0) {
		char *e1, *e2;
		errno = 0;
		double t = strtod(it.line, &e1);
		double mbps = e1 != it.line ? strtod(e1, &e2) : 0;
		if (e1 == it.line || e2 == e1 || errno || count_fields(it.line) != 2 ||
		    !isspace((unsigned char)*e1)) {
			rtci_ctl_set_err(err, err_len,
				"%s:%u: expected \"<time s> <Mbit/s>\", got \"%.40s\"", name, it.lineno,
				it.line);
			rtci_ctl_trace_destroy(tr);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		if (!isfinite(t) || t < 0 || t > 86400.0 * 365) {
			rtci_ctl_set_err(err, err_len, "%s:%u: time %.6g out of range", name, it.lineno, t);
			rtci_ctl_trace_destroy(tr);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		if (!isfinite(mbps) || mbps < 0 || mbps > 1e6) {
			rtci_ctl_set_err(err, err_len, "%s:%u: rate %.6g Mbit/s out of range", name, it.lineno,
				mbps);
			rtci_ctl_trace_destroy(tr);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		/* A slice of a longer recording: its first time is time 0. The first row's rate is
		 * over an interval before the slice, as a row at time 0 is (docs/control.md §8). */
		if (!rows)
			prev_t = base = t;
		if (t < prev_t) {
			rtci_ctl_set_err(err, err_len, "%s:%u: time %.6g goes back (previous %.6g)", name,
				it.lineno, t, prev_t);
			rtci_ctl_trace_destroy(tr);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
		/* The rate holds over the interval that ends at t. */
		int64_t tn = llround((t - base) * 1e9);
		cum += mbps * 1e6 / 8.0 * (t - prev_t);
		push(tr, tn, cum);
		prev_t = t;
		rows++;
	}
	if (r < 0) {
		rtci_ctl_set_err(err, err_len, "%s:%u: line too long", name, it.lineno);
		rtci_ctl_trace_destroy(tr);
		return -RTCI_ERR_CTL_TRACE_SYNTAX;
	}
	int rc = rows ? finish_build(tr) : -RTCI_ERR_CTL_TRACE_EMPTY;
	if (rc) {
		rtci_ctl_set_err(err, err_len, "%s: trace carries no data (needs positive duration and rate)",
			name);
		rtci_ctl_trace_destroy(tr);
		return rc;
	}
	*out = tr;
	return 0;
}

int rtci_ctl_trace_parse(const char *buf, size_t len, const char *name,
			 enum rtci_ctl_trace_format fmt, struct rtci_ctl_trace **out, char *err,
			 size_t err_len)
{
	if (!buf || !out)
		return -EINVAL;
	if (!name)
		name = "trace";
	if (len > TRACE_MAX_FILE) {
		rtci_ctl_set_err(err, err_len, "%s: larger than %u bytes", name, TRACE_MAX_FILE);
		return -RTCI_ERR_CTL_TOO_LARGE;
	}
	if (memchr(buf, 0, len)) {
		rtci_ctl_set_err(err, err_len, "%s: contains a NUL byte (binary file?)", name);
		return -RTCI_ERR_CTL_TRACE_SYNTAX;
	}
	if (fmt == RTCI_CTL_TRACE_AUTO) {
		struct line_iter it = { .p = buf, .end = buf + len };
		int r = next_line(&it);
		if (r <= 0) {
			rtci_ctl_set_err(err, err_len, r < 0 ? "%s:%u: line too long" : "%s: empty trace", name,
				it.lineno);
			return r < 0 ? -RTCI_ERR_CTL_TRACE_SYNTAX : -RTCI_ERR_CTL_TRACE_EMPTY;
		}
		unsigned f = count_fields(it.line);
		if (f == 1)
			fmt = RTCI_CTL_TRACE_MAHIMAHI;
		else if (f == 2)
			fmt = RTCI_CTL_TRACE_NORWAY;
		else {
			rtci_ctl_set_err(err, err_len,
				"%s:%u: %u columns: expected 1 (mahimahi ms) or 2 (time s, Mbit/s)", name,
				it.lineno, f);
			return -RTCI_ERR_CTL_TRACE_SYNTAX;
		}
	}
	if (fmt == RTCI_CTL_TRACE_MAHIMAHI)
		return parse_mahimahi(buf, len, name, out, err, err_len);
	if (fmt == RTCI_CTL_TRACE_NORWAY)
		return parse_norway(buf, len, name, out, err, err_len);
	return -EINVAL;
}

int rtci_ctl_trace_load_file(const char *path, enum rtci_ctl_trace_format fmt,
			     struct rtci_ctl_trace **out, char *err, size_t err_len)
{
	char *buf;
	size_t len;
	int rc = rtci_ctl_read_file(path, TRACE_MAX_FILE, &buf, &len, err, err_len);
	if (rc)
		return rc;
	const char *base = strrchr(path, '/');
	rc = rtci_ctl_trace_parse(buf, len, base ? base + 1 : path, fmt, out, err, err_len);
	free(buf);
	return rc;
}

int rtci_ctl_trace_steps(const int64_t *dur_ns, const double *bps, size_t n,
			 struct rtci_ctl_trace **out)
{
	if (!dur_ns || !bps || !n || !out || n > TRACE_MAX_LINES)
		return -EINVAL;
	struct rtci_ctl_trace *tr = trace_alloc("steps", n + 1);
	if (!tr)
		return -ENOMEM;
	int64_t t = 0;
	double cum = 0;
	for (size_t i = 0; i < n; i++) {
		if (dur_ns[i] <= 0 || !(bps[i] >= 0) || !isfinite(bps[i])) {
			rtci_ctl_trace_destroy(tr);
			return -EINVAL;
		}
		t += dur_ns[i];
		cum += bps[i] * (double)dur_ns[i] * 1e-9;
		push(tr, t, cum);
	}
	int rc = finish_build(tr);
	if (rc) {
		rtci_ctl_trace_destroy(tr);
		return rc;
	}
	*out = tr;
	return 0;
}

int rtci_ctl_trace_constant(double bytes_per_s, int64_t period_ns, struct rtci_ctl_trace **out)
{
	int rc = rtci_ctl_trace_steps(&period_ns, &bytes_per_s, 1, out);
	if (rc == 0)
		snprintf((*out)->name, sizeof((*out)->name), "const-%.0fBps", bytes_per_s);
	return rc;
}

const char *rtci_ctl_trace_name(const struct rtci_ctl_trace *t) { return t->name; }
int64_t rtci_ctl_trace_period_ns(const struct rtci_ctl_trace *t) { return t->period; }
double rtci_ctl_trace_period_bytes(const struct rtci_ctl_trace *t) { return t->total; }

/* Index i of the segment [t[i], t[i+1]) holding r (0 <= r < period). */
static size_t seg_of_time(const struct rtci_ctl_trace *tr, int64_t r)
{
	size_t lo = 0, hi = tr->n - 1; /* t[lo] <= r < t[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tr->t[mid] <= r)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

double rtci_ctl_trace_cum(const struct rtci_ctl_trace *tr, int64_t t)
{
	int64_t k = floor_div(t, tr->period);
	int64_t r = t - k * tr->period;
	size_t i = seg_of_time(tr, r);
	double frac = (double)(r - tr->t[i]) / (double)(tr->t[i + 1] - tr->t[i]);
	return (double)k * tr->total + tr->cum[i] + frac * (tr->cum[i + 1] - tr->cum[i]);
}

double rtci_ctl_trace_bytes(const struct rtci_ctl_trace *tr, int64_t t0, int64_t t1)
{
	if (t1 <= t0)
		return 0;
	return rtci_ctl_trace_cum(tr, t1) - rtci_ctl_trace_cum(tr, t0);
}

int64_t rtci_ctl_trace_finish(const struct rtci_ctl_trace *tr, int64_t t, double bytes)
{
	if (!(bytes > 0))
		return t;
	double target = rtci_ctl_trace_cum(tr, t) + bytes;
	double kf = floor(target / tr->total);
	double rem = target - kf * tr->total;
	if (rem <= tr->total * 1e-12 && kf > 0) {
		kf -= 1;
		rem = tr->total;
	}
	/* first i with cum[i] >= rem, i >= 1 */
	size_t lo = 0, hi = tr->n - 1;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tr->cum[mid] >= rem)
			hi = mid;
		else
			lo = mid;
	}
	size_t i = hi;
	double c0 = tr->cum[i - 1], c1 = tr->cum[i];
	double frac = c1 > c0 ? (rem - c0) / (c1 - c0) : 1.0;
	if (frac < 0)
		frac = 0;
	double within = (double)tr->t[i - 1] + frac * (double)(tr->t[i] - tr->t[i - 1]);
	/* A trace of almost no capacity puts the finish centuries away: saturate instead of
	 * overflowing (RTCI_CTL_TRACE_NEVER, far beyond any deadline yet safe to add to). */
	if (kf * (double)tr->period + within >= (double)RTCI_CTL_TRACE_NEVER)
		return t > RTCI_CTL_TRACE_NEVER ? t : RTCI_CTL_TRACE_NEVER;
	int64_t res = (int64_t)kf * tr->period + (int64_t)ceil(within - 1e-6);
	return res < t ? t : res;
}
