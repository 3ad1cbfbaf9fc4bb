/* Loads arbitrary bytes as a gateway file and as a tenants file: any input gives 0 or an error
 * with a "<file>:<line>: <field>: <reason>" message, never a crash, a leak or a hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	int fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64], err[RTCI_CONFIG_ERR_MAX];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	struct rtci_gateway_config *g = NULL;
	int rc = rtci_config_load_gateway(path, &g, err, sizeof(err));
	if (rc == 0)
		rtci_config_free_gateway(g);
	else if (strncmp(err, path, strlen(path)) != 0 && rc != -12 /* ENOMEM */)
		abort();

	struct rtci_tenants_config *t = NULL;
	rc = rtci_config_load_tenants(path, &t, err, sizeof(err));
	if (rc == 0)
		rtci_config_free_tenants(t);
	else if (strncmp(err, path, strlen(path)) != 0 && rc != -12)
		abort();
	close(fd);
	return 0;
}
