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
	{ RTCI_ERR_IDX_FORMAT, "malformed IDX file" },

	/* codec */
	{ RTCI_ERR_CODEC_LEVELS, "codec: unsupported quantization level count L" },
	{ RTCI_ERR_CODEC_SHAPE, "codec: channel count or tensor shape out of range" },
	{ RTCI_ERR_CODEC_NONFINITE, "codec: NaN or infinity in the input tensor" },
	{ RTCI_ERR_CODEC_RANGE, "codec: channel value range overflows float32" },
	{ RTCI_ERR_CODEC_NOSPACE, "codec: output buffer too small" },
	{ RTCI_ERR_CODEC_TRUNCATED, "codec: frame truncated" },
	{ RTCI_ERR_CODEC_MAGIC, "codec: bad frame magic" },
	{ RTCI_ERR_CODEC_VERSION, "codec: unsupported frame format version" },
	{ RTCI_ERR_CODEC_HEADER, "codec: frame header field out of range" },
	{ RTCI_ERR_CODEC_TOO_LARGE, "codec: frame larger than the decoder allows" },
	{ RTCI_ERR_CODEC_TRAILING, "codec: bytes after the frame payload" },
	{ RTCI_ERR_CODEC_SIDE_INFO, "codec: invalid per-channel min/max side info" },
	{ RTCI_ERR_CODEC_ZSTD, "codec: malformed zstd frame" },
	{ RTCI_ERR_CODEC_CONTENT_SIZE, "codec: zstd content size does not match the header" },
	{ RTCI_ERR_CODEC_PADDING, "codec: nonzero padding bits after the last code" },
	{ RTCI_ERR_CODEC_COMPRESS, "codec: zstd compression failed" },
	{ RTCI_ERR_CODEC_CODE_RANGE, "codec: a code above L" },

	/* wire protocol */
	{ RTCI_ERR_PROTO_TRUNCATED, "datagram truncated" },
	{ RTCI_ERR_PROTO_BAD_MAGIC, "bad magic" },
	{ RTCI_ERR_PROTO_BAD_VERSION, "unsupported protocol version" },
	{ RTCI_ERR_PROTO_BAD_TYPE, "unknown message type" },
	{ RTCI_ERR_PROTO_BAD_HDR_LEN, "bad header length" },
	{ RTCI_ERR_PROTO_TAG_FLAG, "tag flag inconsistent with message" },
	{ RTCI_ERR_PROTO_FRAG_COUNT, "bad fragment count" },
	{ RTCI_ERR_PROTO_FRAG_INDEX, "fragment index out of range" },
	{ RTCI_ERR_PROTO_FRAG_SIZE, "bad fragment size" },
	{ RTCI_ERR_PROTO_FRAME_LEN, "frame length inconsistent with fragments" },
	{ RTCI_ERR_PROTO_PAYLOAD_LEN, "fragment payload length wrong" },
	{ RTCI_ERR_PROTO_BODY_LEN, "message body length wrong" },
	{ RTCI_ERR_PROTO_BAD_STATUS, "unknown status" },
	{ RTCI_ERR_PROTO_BAD_TOPK, "too many top-k entries" },
	{ RTCI_ERR_PROTO_BAD_COMMAND, "unknown command" },
	{ RTCI_ERR_PROTO_BAD_SETUPS, "too many setups" },
	{ RTCI_ERR_PROTO_RESERVED, "reserved field not zero" },
	{ RTCI_ERR_AUTH_INIT, "libsodium initialisation failed" },
	{ RTCI_ERR_AUTH_BAD_MAC, "authentication tag mismatch" },
	{ RTCI_ERR_AUTH_NO_TAG, "message not authenticated" },
	{ RTCI_ERR_AUTH_REPLAYED, "replayed sequence" },
	{ RTCI_ERR_AUTH_STALE, "sequence older than replay window" },

	/* reassembly */
	{ RTCI_ERR_REASM_DUPLICATE, "duplicate fragment" },
	{ RTCI_ERR_REASM_CONFLICT, "conflicting duplicate fragment" },
	{ RTCI_ERR_REASM_MISMATCH, "fragment disagrees with its frame" },
	{ RTCI_ERR_REASM_TOO_BIG, "frame too large" },
	{ RTCI_ERR_REASM_TABLE_FULL, "reassembly table full" },
	{ RTCI_ERR_REASM_ARENA_FULL, "reassembly buffer space exhausted" },
	{ RTCI_ERR_REASM_TENANT_ENTRIES, "tenant frame quota reached" },
	{ RTCI_ERR_REASM_TENANT_BYTES, "tenant byte quota reached" },
	{ RTCI_ERR_REASM_UNKNOWN_TENANT, "tenant refused" },
	{ RTCI_ERR_REASM_OLDER_THAN_INFLIGHT, "frame older than device's frames in flight" },
	{ RTCI_ERR_REASM_NOT_FRAGMENT, "not a fragment" },
	{ RTCI_ERR_REASM_TENANT_TABLE_FULL, "too many tenants in reassembly" },

	/* model file */
	{ RTCI_ERR_MODEL_FORMAT, "model file: malformed" },
	{ RTCI_ERR_MODEL_VERSION, "model file: unsupported format version" },
	{ RTCI_ERR_MODEL_GEOMETRY, "model file: invalid geometry" },
	{ RTCI_ERR_MODEL_TENSOR, "model file: invalid or missing tensor" },
	{ RTCI_ERR_MODEL_SETUPS, "model file: invalid setups table" },
	{ RTCI_ERR_MODEL_GROUPS, "model file: invalid groups table" },

	/* inference engine */
	{ RTCI_ERR_ENGINE_DNNL, "inference engine: oneDNN call failed" },
	{ RTCI_ERR_ENGINE_SETUP, "inference engine: unknown setup" },
	{ RTCI_ERR_ENGINE_BATCH, "inference engine: batch size out of range" },
	{ RTCI_ERR_ENGINE_UNCALIBRATED,
	  "inference engine: model has no int8 calibration: run python3 -m training calibrate" },
	{ RTCI_ERR_ENGINE_CALIBRATION,
	  "inference engine: int8 calibration unusable (act_scale shape, or a scale not finite and > 0)" },

	/* control */
	{ RTCI_ERR_CTL_TRACE_SYNTAX, "malformed bandwidth trace" },
	{ RTCI_ERR_CTL_TRACE_EMPTY, "bandwidth trace carries no data" },
	{ RTCI_ERR_CTL_TABLE, "invalid setup table" },
	{ RTCI_ERR_CTL_TOO_LARGE, "input larger than the allowed limit" },
	{ RTCI_ERR_CTL_FLEET, "invalid fleet devices file" },

	/* gateway */
	{ RTCI_ERR_CONFIG_SYNTAX, "config file: syntax or schema error" },
	{ RTCI_ERR_CONFIG_INVALID, "config file: invalid value" },
	{ RTCI_ERR_BATCH_QUEUE_FULL, "batcher: queue full" },
	{ RTCI_ERR_BATCH_TENANT_BOUND, "batcher: tenant at its queue bound" },
	{ RTCI_ERR_BATCH_DEADLINE, "batcher: deadline cannot be met" },
	{ RTCI_ERR_METRICS_FULL, "metrics: registry full" },
	{ RTCI_ERR_GATEWAY_LCORES, "gateway: lcore layout unusable" },
	{ RTCI_ERR_GATEWAY_MODEL, "gateway: model unusable" },

	/* cluster */
	{ RTCI_ERR_ETCD_UNREACHABLE, "etcd: no endpoint answered" },
	{ RTCI_ERR_ETCD_PROTOCOL, "etcd: unexpected answer" },
	{ RTCI_ERR_ETCD_REFUSED, "etcd: request refused" },

	/* packet transport */
	{ RTCI_ERR_PORT_EAL, "port: DPDK EAL initialisation failed" },
	{ RTCI_ERR_PORT_SETUP, "port: DPDK port setup failed" },
	{ RTCI_ERR_PORT_NO_NEIGHBOR, "port: destination MAC unknown" },
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
