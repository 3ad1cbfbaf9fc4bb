/* Helpers shared by rtci-edge and rtci-fleet: see edge_common.h. */
#include "edge/edge_common.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rtci_edge_parse_hostport(const char *s, char *ip, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= cap)
		return -EINVAL;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || p == 0 || p > 65535)
		return -EINVAL;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int rtci_edge_parse_key(const char *hex, uint8_t key[32])
{
	if (strlen(hex) != 64)
		return -EINVAL;
	for (int i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return -EINVAL;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		key[i] = (uint8_t)v;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double rtci_edge_quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), cmp_double);
	size_t k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}
