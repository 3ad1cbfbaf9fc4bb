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

	/* reassembly (dataplane/reassembly): 1300-1399 */
	RTCI_ERR_REASM_FIRST = 1300,

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

	/* control (control/): 1600-1699 */
	RTCI_ERR_CONTROL_FIRST = 1600,

	/* gateway (gateway/): 1700-1799 */
	RTCI_ERR_GATEWAY_FIRST = 1700,

	/* edge (edge/): 1800-1899 */
	RTCI_ERR_EDGE_FIRST = 1800,

	RTCI_ERR_LAST = 1999
};

/* Human-readable name of an error code; accepts the negative value a function returned.
 * Never returns NULL. */
const char *rtci_strerror(int err);

/* True when a return value is an error. */
static inline int rtci_is_error(long ret) { return ret < 0; }

#endif
