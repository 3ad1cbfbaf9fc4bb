/* Bandwidth traces (trace.c) and fleet files (fleet.c): the links a simulation or a paced
 * device runs on. Pure C; only the *_load_file wrappers touch files (docs/control.md §8).
 *
 * Units: time in nanoseconds (int64_t), sizes in bytes, bandwidth in bytes per second (double). */
#ifndef RTCI_CONTROL_TRACE_H
#define RTCI_CONTROL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rtci_error.h"

/* ---------------------------------------------------------------------------------------------
 * Traces: capacity of a link over time, looping at the end. */

struct rtci_ctl_trace; /* opaque */

enum rtci_ctl_trace_format {
	RTCI_CTL_TRACE_AUTO = 0,   /* by content: one column = mahimahi, two = norway */
	RTCI_CTL_TRACE_MAHIMAHI,   /* one ms timestamp per 1500-byte delivery opportunity */
	RTCI_CTL_TRACE_NORWAY,     /* "time_s Mbit/s" per line, rate over the interval ending there */
};

/* Parses a trace held in memory. `name` is used in messages. On failure returns a negative code
 * and, when err/err_len are given, writes "name:line: reason" there. */
int rtci_ctl_trace_parse(const char *buf, size_t len, const char *name,
			 enum rtci_ctl_trace_format fmt, struct rtci_ctl_trace **out,
			 char *err, size_t err_len);
/* Reads a file (at most 64 MiB) and parses it; the format comes from the content. */
int rtci_ctl_trace_load_file(const char *path, enum rtci_ctl_trace_format fmt,
			     struct rtci_ctl_trace **out, char *err, size_t err_len);
/* A link of constant rate (tests, synthetic runs). period_ns > 0, bytes_per_s > 0. */
int rtci_ctl_trace_constant(double bytes_per_s, int64_t period_ns, struct rtci_ctl_trace **out);
/* Piecewise-constant rates: segment i lasts dur_ns[i] at bps[i] bytes/s (n >= 1). */
int rtci_ctl_trace_steps(const int64_t *dur_ns, const double *bps, size_t n,
			 struct rtci_ctl_trace **out);
void rtci_ctl_trace_destroy(struct rtci_ctl_trace *t);

const char *rtci_ctl_trace_name(const struct rtci_ctl_trace *t);
int64_t rtci_ctl_trace_period_ns(const struct rtci_ctl_trace *t);
/* Bytes the link carries per period; mean rate = bytes / period. */
double rtci_ctl_trace_period_bytes(const struct rtci_ctl_trace *t);
/* Cumulative capacity from time 0 to t (t >= 0), looping. */
double rtci_ctl_trace_cum(const struct rtci_ctl_trace *t, int64_t t_ns);
/* Bytes the link can carry in [t0, t1]. */
double rtci_ctl_trace_bytes(const struct rtci_ctl_trace *t, int64_t t0_ns, int64_t t1_ns);
/* Earliest time at which `bytes` finish when sending starts at t_ns. O(log n). */
int64_t rtci_ctl_trace_finish(const struct rtci_ctl_trace *t, int64_t t_ns, double bytes);
/* What rtci_ctl_trace_finish returns when the bytes would take longer than ~73 years. */
#define RTCI_CTL_TRACE_NEVER (INT64_MAX / 4)
/* ---------------------------------------------------------------------------------------------
 * Fleet files: the trace and start offset each device of a live fleet ran on (rtci-fleet's
 * devices CSV), so a simulation can run that very fleet. */

struct rtci_ctl_fleet_run {
	unsigned trace;  /* index into the trace names given to the parser */
	double offset_s; /* start offset into the trace, 0..1e9 s */
};
#define RTCI_CTL_FLEET_MAX_RUNS 100000
#define RTCI_CTL_FLEET_MAX_LINE 8192

/* Parses a CSV (no quoting) whose header names the columns trace and trace_offset_s: one run per
 * row, the trace matched by its file name (after the last '/') among names[0..nnames). Empty
 * lines are skipped. On success *out (malloc'd, free() it) holds *nruns >= 1 runs. On failure
 * returns a negative code and, when err/err_len are given, writes "name:line: reason" there. */
int rtci_ctl_fleet_parse(const char *buf, size_t len, const char *name, const char *const *names,
			 unsigned nnames, struct rtci_ctl_fleet_run **out, unsigned *nruns,
			 char *err, size_t err_len);
/* Reads a file (at most 64 MiB) and parses it. */
int rtci_ctl_fleet_load_file(const char *path, const char *const *names, unsigned nnames,
			     struct rtci_ctl_fleet_run **out, unsigned *nruns, char *err,
			     size_t err_len);

#endif
