/* Decodes arbitrary bytes as a codec frame: any input must give 0 or a codec error code, never a
 * crash, an overrun or an unbounded allocation. A tensor that decoded is encoded and decoded
 * again, which must succeed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rtci_error.h"
#include "inference/codec.h"

#define MAX_ELEMENTS (32u * 112u * 112u)

static struct rtci_codec *codec;
static float *out, *again;
static uint8_t *frame;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!codec) {
		struct rtci_codec_config cfg = { .max_elements = MAX_ELEMENTS };
		if (rtci_codec_create(&cfg, &codec) != 0)
			abort();
		out = malloc(MAX_ELEMENTS * sizeof(float));
		again = malloc(MAX_ELEMENTS * sizeof(float));
		frame = malloc(MAX_ELEMENTS * 2 + 16384);
		if (!out || !again || !frame)
			abort();
	}

	struct rtci_codec_desc d;
	int parsed = rtci_codec_parse(data, size, &d);
	int ret = rtci_codec_decode(codec, data, size, out, MAX_ELEMENTS, 0, &d);
	if (ret > 0 || (ret < 0 && (-ret < RTCI_ERR_CODEC_FIRST || -ret >= RTCI_ERR_PROTO_FIRST)))
		abort(); /* only codec codes come out of a decoder */
	if (ret != 0) {
		if (parsed == 0 && ret != -RTCI_ERR_CODEC_TOO_LARGE && ret != -RTCI_ERR_CODEC_SIDE_INFO &&
		    ret != -RTCI_ERR_CODEC_ZSTD && ret != -RTCI_ERR_CODEC_CONTENT_SIZE &&
		    ret != -RTCI_ERR_CODEC_PADDING && ret != -RTCI_ERR_CODEC_CODE_RANGE)
			abort(); /* parse accepted what decode refused for a header reason */
		return 0;
	}
	if (parsed != 0)
		abort();

	ssize_t len = rtci_codec_encode(codec, &d, out, frame, MAX_ELEMENTS * 2 + 16384);
	if (len < 0)
		return 0; /* e.g. min + L * step rounded past FLT_MAX */
	if (rtci_codec_decode(codec, frame, (size_t)len, again, MAX_ELEMENTS, 0, NULL) != 0)
		abort();
	return 0;
}
