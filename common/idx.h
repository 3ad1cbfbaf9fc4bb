/* IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
 *
 * Images: magic 0x00000803, dims (count, rows, cols), u8 pixels. Labels: magic 0x00000801, dims
 * (count), u8 labels. Used by the demo, the edge client, benchmarks and `rtci-model run`. */
#ifndef RTCI_IDX_H
#define RTCI_IDX_H

#include <stddef.h>
#include <stdint.h>

struct rtci_idx {
	uint32_t count;  /* items */
	uint32_t rows;   /* 1 for label files */
	uint32_t cols;   /* 1 for label files */
	uint8_t *data;   /* count * rows * cols bytes, owned */
};

/* Loads at most max_items items (0 = all). Returns 0 or a negative code; on failure err names the
 * file and the reason. Files over 1 GiB of payload are refused. */
int rtci_idx_load(const char *path, uint32_t max_items, struct rtci_idx *out, char *err, size_t errlen);

void rtci_idx_free(struct rtci_idx *idx);

/* Pixel item i as a pointer into data (rows * cols bytes). */
static inline const uint8_t *rtci_idx_item(const struct rtci_idx *idx, uint32_t i)
{
	return idx->data + (size_t)i * idx->rows * idx->cols;
}

#endif
