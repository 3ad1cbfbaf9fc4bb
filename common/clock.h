/* Clocks: one place for the monotonic and wall clocks every program reads. Inline so that the
 * packet loops pay no call. */
#ifndef RTCI_CLOCK_H
#define RTCI_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds (durations, deadlines, pacing). */
static inline uint64_t rtci_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rtci_mono_us(void)
{
	return rtci_mono_ns() / 1000u;
}

/* Monotonic time in seconds, for benchmarks and timeouts written in seconds. */
static inline double rtci_mono_s(void)
{
	return (double)rtci_mono_ns() * 1e-9;
}

/* CPU time of the calling thread in seconds: on a shared machine, time spent descheduled does
 * not count. */
static inline double rtci_thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall-clock time in microseconds since the epoch (capture stamps on the wire). */
static inline uint64_t rtci_real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
