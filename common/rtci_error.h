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
	RTCI_ERR_IDX_FORMAT = 1001,

	/* codec (inference/codec): 1100-1199 */
	RTCI_ERR_CODEC_FIRST = 1100,
	RTCI_ERR_CODEC_LEVELS = 1101,
	RTCI_ERR_CODEC_SHAPE = 1102,
	RTCI_ERR_CODEC_NONFINITE = 1103,
	RTCI_ERR_CODEC_RANGE = 1104,
	RTCI_ERR_CODEC_NOSPACE = 1105,
	RTCI_ERR_CODEC_TRUNCATED = 1106,
	RTCI_ERR_CODEC_MAGIC = 1107,
	RTCI_ERR_CODEC_VERSION = 1108,
	RTCI_ERR_CODEC_HEADER = 1109,
	RTCI_ERR_CODEC_TOO_LARGE = 1110,
	RTCI_ERR_CODEC_TRAILING = 1111,
	RTCI_ERR_CODEC_SIDE_INFO = 1112,
	RTCI_ERR_CODEC_ZSTD = 1113,
	RTCI_ERR_CODEC_CONTENT_SIZE = 1114,
	RTCI_ERR_CODEC_PADDING = 1115,
	RTCI_ERR_CODEC_COMPRESS = 1116,
	RTCI_ERR_CODEC_CODE_RANGE = 1117,

	/* wire protocol (dataplane/protocol, auth): 1200-1299 */
	RTCI_ERR_PROTO_FIRST = 1200,
	RTCI_ERR_PROTO_TRUNCATED = 1200,    /* shorter than the header it announces */
	RTCI_ERR_PROTO_BAD_MAGIC = 1201,
	RTCI_ERR_PROTO_BAD_VERSION = 1202,
	RTCI_ERR_PROTO_BAD_TYPE = 1203,
	RTCI_ERR_PROTO_BAD_HDR_LEN = 1204,  /* header length < 48, not a multiple of 4 */
	RTCI_ERR_PROTO_TAG_FLAG = 1205,     /* tag flag set/clear where the rules say otherwise */
	RTCI_ERR_PROTO_FRAG_COUNT = 1206,   /* fragment count 0 (or != 1 for non-fragments) */
	RTCI_ERR_PROTO_FRAG_INDEX = 1207,   /* fragment index >= count (or != 0 for non-fragments) */
	RTCI_ERR_PROTO_FRAG_SIZE = 1208,    /* fragment size 0 / nonzero for non-fragments */
	RTCI_ERR_PROTO_FRAME_LEN = 1209,    /* frame length 0 or inconsistent with count x size */
	RTCI_ERR_PROTO_PAYLOAD_LEN = 1210,  /* fragment payload length wrong for its index */
	RTCI_ERR_PROTO_BODY_LEN = 1211,     /* message body length wrong for its type */
	RTCI_ERR_PROTO_BAD_STATUS = 1212,   /* unknown result / hello-ack status */
	RTCI_ERR_PROTO_BAD_TOPK = 1213,     /* top-k count above the maximum */
	RTCI_ERR_PROTO_BAD_COMMAND = 1214,  /* unknown command kind */
	RTCI_ERR_PROTO_BAD_SETUPS = 1215,   /* hello lists too many setups */
	RTCI_ERR_PROTO_RESERVED = 1216,     /* reserved body field not zero */

	/* frame authentication (dataplane/auth): 1250-1299 */
	RTCI_ERR_AUTH_INIT = 1250,          /* libsodium failed to initialise */
	RTCI_ERR_AUTH_BAD_MAC = 1251,       /* tag does not verify */
	RTCI_ERR_AUTH_NO_TAG = 1252,        /* message carries no tag */
	RTCI_ERR_AUTH_REPLAYED = 1253,      /* sequence already accepted */
	RTCI_ERR_AUTH_STALE = 1254,         /* sequence older than the replay window */

	/* reassembly (dataplane/reassembly): 1300-1399 */
	RTCI_ERR_REASM_FIRST = 1300,
	RTCI_ERR_REASM_DUPLICATE = 1300,    /* fragment already received (ignored) */
	RTCI_ERR_REASM_CONFLICT = 1301,     /* duplicate fragment with different bytes */
	RTCI_ERR_REASM_MISMATCH = 1302,     /* frame fields differ from earlier fragments */
	RTCI_ERR_REASM_TOO_BIG = 1303,      /* frame larger than the configured maximum */
	RTCI_ERR_REASM_TABLE_FULL = 1304,   /* no free frame entry */
	RTCI_ERR_REASM_ARENA_FULL = 1305,   /* no buffer space */
	RTCI_ERR_REASM_TENANT_ENTRIES = 1306, /* tenant's frame quota reached */
	RTCI_ERR_REASM_TENANT_BYTES = 1307, /* tenant's byte quota reached */
	RTCI_ERR_REASM_UNKNOWN_TENANT = 1308, /* quota callback refused the tenant */
	RTCI_ERR_REASM_OLDER_THAN_INFLIGHT = 1309, /* device at its in-flight bound, frame older */
	RTCI_ERR_REASM_NOT_FRAGMENT = 1310, /* message is not a fragment */
	RTCI_ERR_REASM_TENANT_TABLE_FULL = 1311, /* too many tenants with frames in flight */

	/* model file (inference/model): 1400-1499 */
	RTCI_ERR_MODEL_FIRST = 1400,
	RTCI_ERR_MODEL_FORMAT = 1400,    /* not a model file: length prefix, JSON header, metadata */
	RTCI_ERR_MODEL_VERSION = 1401,   /* format_version this reader does not know */
	RTCI_ERR_MODEL_GEOMETRY = 1402,  /* geometry out of bounds */
	RTCI_ERR_MODEL_TENSOR = 1403,    /* tensor missing, wrong dtype/shape, out of range, overlapping */
	RTCI_ERR_MODEL_SETUPS = 1404,    /* channels/levels/bn_slots/setups table inconsistent */
	RTCI_ERR_MODEL_GROUPS = 1405,    /* groups table inconsistent with the setups */

	/* inference engine (inference/engine): 1500-1599 */
	RTCI_ERR_ENGINE_FIRST = 1500,
	RTCI_ERR_ENGINE_DNNL = 1500,     /* a oneDNN call failed */
	RTCI_ERR_ENGINE_SETUP = 1501,    /* setup id unknown to the model */
	RTCI_ERR_ENGINE_BATCH = 1502,    /* batch size outside 1..max_batch */
	RTCI_ERR_ENGINE_UNCALIBRATED = 1503, /* int8 asked of a model without an int8 block */
	RTCI_ERR_ENGINE_CALIBRATION = 1504,  /* int8 block present but unusable (scales, shape) */

	/* control (control/): 1600-1699 */
	RTCI_ERR_CONTROL_FIRST = 1600,
	RTCI_ERR_CTL_TRACE_SYNTAX = 1600, /* malformed trace line */
	RTCI_ERR_CTL_TRACE_EMPTY = 1601,  /* trace with no capacity */
	RTCI_ERR_CTL_TABLE = 1602,        /* invalid setup table or model metadata */
	RTCI_ERR_CTL_TOO_LARGE = 1603,    /* input above the configured limit */
	RTCI_ERR_CTL_FLEET = 1604,        /* invalid fleet devices file */

	/* gateway (gateway/): 1700-1799 */
	RTCI_ERR_GATEWAY_FIRST = 1700,
	RTCI_ERR_CONFIG_SYNTAX = 1700,      /* YAML syntax or schema error in a config file */
	RTCI_ERR_CONFIG_INVALID = 1701,     /* value out of range, duplicate, bad format */
	RTCI_ERR_BATCH_QUEUE_FULL = 1702,   /* batcher queue at capacity, frame not accepted */
	RTCI_ERR_BATCH_TENANT_BOUND = 1703, /* tenant at its bound in a batcher queue */
	RTCI_ERR_BATCH_DEADLINE = 1704,     /* frame cannot meet its deadline */
	RTCI_ERR_METRICS_FULL = 1705,       /* metrics registry at capacity */
	RTCI_ERR_GATEWAY_LCORES = 1709,     /* lcore layout unusable (role missing, lcore not enabled) */
	RTCI_ERR_GATEWAY_MODEL = 1710,      /* model unusable by the gateway (geometry, setups) */

	/* edge (edge/): 1800-1899 */
	RTCI_ERR_EDGE_FIRST = 1800,

	/* cluster (cluster/): 1900-1949 */
	RTCI_ERR_CLUSTER_FIRST = 1900,
	RTCI_ERR_ETCD_UNREACHABLE = 1900,   /* no etcd endpoint answered in time */
	RTCI_ERR_ETCD_PROTOCOL = 1901,      /* etcd's answer was not the JSON expected */
	RTCI_ERR_ETCD_REFUSED = 1902,       /* etcd answered with an error */

	/* packet transport (dataplane/port, dataplane/uplink): 1950-1999 */
	RTCI_ERR_TRANSPORT_FIRST = 1950,
	RTCI_ERR_PORT_EAL = 1950,           /* DPDK EAL initialisation failed */
	RTCI_ERR_PORT_SETUP = 1951,         /* DPDK port configuration failed */
	RTCI_ERR_PORT_NO_NEIGHBOR = 1952,   /* no MAC known for a reply's destination */
	RTCI_ERR_UPLINK_TIMEOUT = 1960,     /* uplink operation did not complete in time */
	RTCI_ERR_UPLINK_TOO_BIG = 1961,     /* datagram larger than an uplink buffer */

	RTCI_ERR_LAST = 1999
};

/* Human-readable name of an error code; accepts the negative value a function returned.
 * Never returns NULL. */
const char *rtci_strerror(int err);

/* True when a return value is an error. */
static inline int rtci_is_error(long ret) { return ret < 0; }

#endif
