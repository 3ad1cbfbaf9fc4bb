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

	/* reassembly */

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

	/* control */

	/* gateway */

	/* edge */
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
