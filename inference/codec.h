/* Feature codec: the partition-layer tensor of one image <-> bytes.
 *
 * A compression setup (c, L) keeps the first c channels of a C x H x W float32 tensor
 * (channel-major) and quantizes each kept channel to L + 1 levels, L in {65535, 255, 15, 3, 1}
 * (bits = 16, 8, 4, 2, 1), with the channel's own min and max of this image as side info.
 *
 * Quantizer (float32 arithmetic, exactly these operations in this order, so that PyTorch
 * reproduces it bit for bit; see rtci_codec_quantize_ref):
 *
 *     min, max = smallest and largest element of the channel
 *     range    = max - min
 *     encode:  q = 0                                          if range == 0
 *              t = (x - min) / range * (float)L               otherwise
 *              q = (uint32)floorf(t + 0.5f), clamped to [0, L]
 *     decode:  x^ = min + (float)q * (range / (float)L)
 *
 * (range / (float)L) is one float32 division per channel; the product and the sum are two separate
 * float32 operations, never fused. When range == 0 every element decodes to min. For any x in the
 * channel |x - x^| <= range / (2L) up to float32 rounding.
 *
 * Frame layout (every multi-byte field little-endian; offsets in bytes):
 *
 *     0   4   magic 'R' 'T' 'C' 'F'
 *     4   1   format version (RTCI_CODEC_VERSION = 1)
 *     5   1   flags: bit 0 RTCI_CODEC_F_STORED (payload is the packed codes as is, no zstd);
 *             bit 1 RTCI_CODEC_F_BYTES (the zstd frame holds the codes one per byte, only for
 *             bits < 8, never with STORED); other bits zero
 *     6   1   bits per code: 16, 8, 4, 2 or 1; must equal ceil(log2(L + 1))
 *     7   1   reserved, zero
 *     8   2   L (65535, 255, 15, 3 or 1)
 *     10  2   c, kept channels (1 <= c <= C)
 *     12  2   C, channels of the whole partition tensor (1 <= C <= RTCI_CODEC_MAX_CHANNELS)
 *     14  2   H (1 <= H <= RTCI_CODEC_MAX_DIM)
 *     16  2   W (1 <= W <= RTCI_CODEC_MAX_DIM)
 *     18  2   reserved, zero
 *     20  4   packed_len = ceil(c * H * W * bits / 8), the size of the packed codes
 *     24  4   payload_len, bytes after the side info
 *     28  8c  side info: for each kept channel k, f32 min then f32 max (finite, min <= max,
 *             max - min finite)
 *     28+8c   payload, payload_len bytes, one of:
 *             - one zstd frame whose declared content size is packed_len, holding the packed
 *               codes (payload_len < packed_len);
 *             - with RTCI_CODEC_F_BYTES, one zstd frame whose declared content size is c * H * W,
 *               holding the codes one per byte in the same order, each <= L
 *               (payload_len < packed_len);
 *             - with RTCI_CODEC_F_STORED, the packed codes themselves (payload_len == packed_len).
 *             Nothing follows the payload.
 *
 * Packed codes: the c * H * W codes in channel-major order (channel, row, column) form one bit
 * stream, `bits` bits per code, with no padding between channels. Codes fill each byte from the
 * least significant bit up (the first code of a byte sits in its lowest bits); 16-bit codes are
 * little-endian. Unused high bits of the last byte are zero.
 *
 * The encoder stores the codes uncompressed when zstd would not make them smaller, so an encoded
 * frame is never larger than rtci_codec_max_encoded_size(). On small frames of narrow codes
 * (bits < 8, c * H * W <= RTCI_CODEC_BYTES_MAX_CODES) it also compresses the codes one per byte
 * and sends whichever is smaller: zstd's literal coding can do better on 16 byte values than on
 * 256 when the input is only a few hundred bytes. A decoder needs no outside context:
 * every length is checked against the header, the decompressed size against the header, a hard
 * cap (RTCI_CODEC_MAX_ELEMENTS) and the context's capacity, before anything is decompressed. */
#ifndef RTCI_CODEC_H
#define RTCI_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RTCI_CODEC_VERSION 1
#define RTCI_CODEC_HEADER_SIZE 28
#define RTCI_CODEC_SIDE_INFO_PER_CHANNEL 8
#define RTCI_CODEC_F_STORED 0x01u
#define RTCI_CODEC_F_BYTES 0x02u
/* Largest c * H * W for which the encoder also tries the one-code-per-byte payload. */
#define RTCI_CODEC_BYTES_MAX_CODES 8192u
#define RTCI_CODEC_MAX_CHANNELS 1024
#define RTCI_CODEC_MAX_DIM 4096
/* Hard cap on c * H * W whatever a context allows: 16 Mi codes (32 MiB packed at 16 bits). */
#define RTCI_CODEC_MAX_ELEMENTS (16u << 20)
/* zstd level when the config says 0: fastest regular level; bench/codec measures the others. */
#define RTCI_CODEC_DEFAULT_LEVEL 1
/* Capacity when the config says 0: the 224x224 partition tensor, 32 x 112 x 112. */
#define RTCI_CODEC_DEFAULT_MAX_ELEMENTS (32u * 112u * 112u)

/* One frame's setup and shape. */
struct rtci_codec_desc {
	uint32_t c;        /* kept channels, 1..channels */
	uint32_t levels;   /* L: 65535, 255, 15, 3 or 1 */
	uint32_t channels; /* C: channels of the whole partition tensor */
	uint32_t height;   /* H */
	uint32_t width;    /* W */
};

struct rtci_codec_config {
	int level;             /* zstd level (negative = faster); 0 = RTCI_CODEC_DEFAULT_LEVEL */
	uint32_t max_elements; /* largest c * H * W encoded or decoded; 0 = the default */
	bool checksum;         /* zstd frames carry a content checksum (4 bytes) */
	bool packed_only;      /* never try the one-code-per-byte payload (saves a zstd call) */
};

/* Reusable codec state: zstd compression and decompression contexts plus scratch sized for
 * max_elements. Encode and decode do not allocate. Not thread-safe: one per thread. */
struct rtci_codec;

/* Bits per code for L (16, 8, 4, 2 or 1), or -RTCI_ERR_CODEC_LEVELS. */
int rtci_codec_bits(uint32_t levels);

/* ceil(c * h * w * bits / 8): bytes of packed codes. Negative code when L or the shape is out of
 * range (-RTCI_ERR_CODEC_LEVELS, -RTCI_ERR_CODEC_SHAPE). */
ssize_t rtci_codec_packed_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width);

/* Exact raw size of a setup: packed codes + 8 * c bytes of side info (the `raw_bytes` of
 * docs/model-format.md). */
ssize_t rtci_codec_raw_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width);

/* Largest frame rtci_codec_encode() can write for this setup: header + raw size. */
ssize_t rtci_codec_max_encoded_size(uint32_t c, uint32_t levels, uint32_t height, uint32_t width);

/* Checks a descriptor (L supported, 1 <= c <= channels <= RTCI_CODEC_MAX_CHANNELS,
 * 1 <= H, W <= RTCI_CODEC_MAX_DIM, c * H * W <= RTCI_CODEC_MAX_ELEMENTS). 0 or a negative code. */
int rtci_codec_desc_check(const struct rtci_codec_desc *d);

/* Creates a context; cfg may be NULL for the defaults. 0, -EINVAL (bad level or capacity),
 * -ENOMEM. */
int rtci_codec_create(const struct rtci_codec_config *cfg, struct rtci_codec **out);
void rtci_codec_destroy(struct rtci_codec *codec);

/* Encodes channels 0..c-1 of x (at least c * H * W floats, channel-major; channels c..C-1 are
 * not read) into dst. Returns the frame length or a negative code: -RTCI_ERR_CODEC_NONFINITE
 * (NaN/Inf in a kept channel), -RTCI_ERR_CODEC_RANGE (max - min overflows), -RTCI_ERR_CODEC_NOSPACE
 * (cap too small; cap >= rtci_codec_max_encoded_size() always suffices),
 * -RTCI_ERR_CODEC_TOO_LARGE (over the context's capacity), descriptor errors. */
ssize_t rtci_codec_encode(struct rtci_codec *codec, const struct rtci_codec_desc *d, const float *x,
			  void *dst, size_t cap);

/* Reads and validates the header and lengths of a frame (no decompression, no context):
 * fills *d and returns 0, or a negative code. */
int rtci_codec_parse(const void *src, size_t len, struct rtci_codec_desc *d);

/* Decodes a frame into dst as out_channels x H x W floats: channels 0..c-1 from the frame,
 * channels c..out_channels-1 zero (so a narrower setup joins a batch of a wider one).
 * out_channels == 0 means c. dst_floats is dst's capacity in floats. Fills *d when d is not NULL.
 * Returns 0 or a negative code; every way a frame can be malformed has its own code. */
int rtci_codec_decode(struct rtci_codec *codec, const void *src, size_t len, float *dst,
		      size_t dst_floats, uint32_t out_channels, struct rtci_codec_desc *d);

/* The codec's own work, without zstd; encode and decode run exactly these around the zstd call.
 * quantize_pack scans channels 0..c-1 of x, writes side[2k] = min, side[2k + 1] = max for each
 * kept channel k and the packed codes (rtci_codec_packed_size() bytes) to packed.
 * unpack_dequantize is its inverse into out_channels x H x W floats (0 = c; zero-filled beyond c);
 * it trusts side (decode validates it) and rejects nonzero padding bits. 0 or a negative code. */
int rtci_codec_quantize_pack(const struct rtci_codec_desc *d, const float *x, float *side,
			     uint8_t *packed);
int rtci_codec_unpack_dequantize(const struct rtci_codec_desc *d, const float *side,
				 const uint8_t *packed, float *dst, uint32_t out_channels);

/* Reference quantizer: quantizes and dequantizes x (channels x plane floats, channel-major) in
 * place, per channel, with exactly the codec's arithmetic; afterwards x holds what the decoder
 * would output. 0, -RTCI_ERR_CODEC_LEVELS, -RTCI_ERR_CODEC_NONFINITE, -RTCI_ERR_CODEC_RANGE or
 * -EINVAL; x is left unchanged on error. */
int rtci_codec_quantize_ref(float *x, size_t channels, size_t plane, uint32_t levels);

#endif
