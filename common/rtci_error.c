#include "common/rtci_error.h"

#include <stdlib.h>
#include <string.h>

/* One row per project code; modules add theirs in their own section. */
static const struct {
	int code;
	const char *text;
} error_names[] = {
	/* common */
	{ RTCI_ERR_INTERNAL, "internal error" },

	/* codec */

	/* wire protocol */

	/* reassembly */

	/* model file */

	/* inference engine */

	/* control */

	/* gateway */
	{ RTCI_ERR_CONFIG_SYNTAX, "config file: syntax or schema error" },
	{ RTCI_ERR_CONFIG_INVALID, "config file: invalid value" },
	{ RTCI_ERR_BATCH_QUEUE_FULL, "batcher: queue full" },
	{ RTCI_ERR_BATCH_TENANT_BOUND, "batcher: tenant at its queue bound" },
	{ RTCI_ERR_BATCH_DEADLINE, "batcher: deadline cannot be met" },
	{ RTCI_ERR_METRICS_FULL, "metrics: registry full" },
	{ RTCI_ERR_PORT_EAL, "port: DPDK EAL initialisation failed" },
	{ RTCI_ERR_PORT_SETUP, "port: DPDK port setup failed" },
	{ RTCI_ERR_PORT_NO_NEIGHBOR, "port: destination MAC unknown" },

	/* edge */
	{ RTCI_ERR_UPLINK_TIMEOUT, "uplink: timed out" },
	{ RTCI_ERR_UPLINK_TOO_BIG, "uplink: datagram larger than buffer" },
};

const char *rtci_strerror(int err)
{
	int code = abs(err);

	if (code >= RTCI_ERR_FIRST && code <= RTCI_ERR_LAST) {
		for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
			if (error_names[i].code == code)
				return error_names[i].text;
		return "unknown project error";
	}
	if (code == 0)
		return "success";
	return strerror(code);
}
