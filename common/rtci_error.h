/* Error codes shared by every module.
 *
 * Functions return 0 (or a non-negative count) on success and a negative code on failure:
 * either a negated errno value (-EINVAL, -ENOMEM, ...) or a negated project code below.
 * rtci_strerror() names both. Each module owns one range so codes never collide. */
#ifndef RTCI_ERROR_H
#define RTCI_ERROR_H

enum rtci_error_code {
	RTCI_ERR_FIRST = 1000,

	/* common: 1000-1099 */
	RTCI_ERR_INTERNAL = 1000,

	/* codec (inference/codec): 1100-1199 */
	RTCI_ERR_CODEC_FIRST = 1100,

	/* wire protocol (dataplane/protocol, auth): 1200-1299 */
	RTCI_ERR_PROTO_FIRST = 1200,

	/* reassembly (dataplane/reassembly): 1300-1399 */
	RTCI_ERR_REASM_FIRST = 1300,

	/* model file (inference/model): 1400-1499 */
	RTCI_ERR_MODEL_FIRST = 1400,

	/* inference engine (inference/engine): 1500-1599 */
	RTCI_ERR_ENGINE_FIRST = 1500,

	/* control (control/): 1600-1699 */
	RTCI_ERR_CONTROL_FIRST = 1600,

	/* gateway (gateway/): 1700-1799 */
	RTCI_ERR_GATEWAY_FIRST = 1700,
	RTCI_ERR_CONFIG_SYNTAX = 1700,      /* YAML syntax or schema error in a config file */
	RTCI_ERR_CONFIG_INVALID = 1701,     /* value out of range, duplicate, bad format */
	RTCI_ERR_BATCH_QUEUE_FULL = 1702,   /* batcher queue at capacity, frame not accepted */
	RTCI_ERR_BATCH_TENANT_BOUND = 1703, /* tenant at its bound in a batcher queue */
	RTCI_ERR_BATCH_DEADLINE = 1704,     /* frame cannot meet its deadline */
	RTCI_ERR_METRICS_FULL = 1705,       /* metrics registry at capacity */
	RTCI_ERR_PORT_EAL = 1706,           /* DPDK EAL initialisation failed */
	RTCI_ERR_PORT_SETUP = 1707,         /* DPDK port configuration failed */
	RTCI_ERR_PORT_NO_NEIGHBOR = 1708,   /* no MAC known for a reply's destination */

	/* edge (edge/): 1800-1899 */
	RTCI_ERR_EDGE_FIRST = 1800,
	RTCI_ERR_UPLINK_TIMEOUT = 1800,     /* uplink operation did not complete in time */
	RTCI_ERR_UPLINK_TOO_BIG = 1801,     /* datagram larger than an uplink buffer */

	RTCI_ERR_LAST = 1999
};

/* Human-readable name of an error code; accepts the negative value a function returned.
 * Never returns NULL. */
const char *rtci_strerror(int err);

/* True when a return value is an error. */
static inline int rtci_is_error(long ret) { return ret < 0; }

#endif
