/* Checks of the integration-test programs (not Criterion: they run inside network namespaces
 * next to a real gateway): FAIL() reports and remembers, the program exits with `failed`. */
#ifndef RTCI_IT_CHECK_H
#define RTCI_IT_CHECK_H

#include <stdio.h>

static int failed;

#define FAIL(...)                                                                                 \
	do {                                                                                      \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                                            \
		fputc('\n', stderr);                                                              \
		failed = 1;                                                                       \
	} while (0)

#endif
