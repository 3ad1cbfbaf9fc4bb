/* Small helpers shared by rtci-edge and rtci-fleet: clock, option parsing, percentiles. */
#ifndef RTCI_EDGE_COMMON_H
#define RTCI_EDGE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

/* The monotonic clock as the devices count time: signed nanoseconds. */
static inline int64_t rtci_edge_now_ns(void)
{
	return (int64_t)rtci_mono_ns();
}
/* "a.b.c.d:port" -> ip (static buffer of cap bytes) and port. 0 or -EINVAL. */
int rtci_edge_parse_hostport(const char *s, char *ip, size_t cap, uint16_t *port);
/* 64 hex characters -> 32 bytes. 0 or -EINVAL. */
int rtci_edge_parse_key(const char *hex, uint8_t key[32]);
/* Sorts v (n values) in place and returns the q-quantile (0..1), nearest rank; 0 if n == 0. */
double rtci_edge_quantile(double *v, size_t n, double q);

#endif
