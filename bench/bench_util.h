/* Small helpers shared by the bench programs: medians of repeated runs and comma lists. */
#ifndef RTCI_BENCH_UTIL_H
#define RTCI_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "common/clock.h"

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v in place and returns its median (mean of the middle two for even n). */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "32,8,1" -> {32, 8, 1}; at most cap values; returns how many. */
static inline int bench_parse_int_list(const char *s, int *out, int cap)
{
	int n = 0;
	while (s && *s && n < cap) {
		out[n++] = atoi(s);
		const char *c = strchr(s, ',');
		s = c ? c + 1 : NULL;
	}
	return n;
}

/* TSC ticks per second, measured over 50 ms against the monotonic clock (cycles per item). */
static inline double bench_tsc_hz(void)
{
	double t0 = rtci_mono_s();
	uint64_t c0 = __rdtsc();
	while (rtci_mono_s() - t0 < 0.05)
		;
	return (double)(__rdtsc() - c0) / (rtci_mono_s() - t0);
}

#endif
