/* Frame source of an edge device: images (Fashion-MNIST IDX files or a folder of PGM images),
 * their model input, and the device's half of the network (head on oneDNN, then the feature
 * codec) that turns an image into a frame payload for a compression setup.
 *
 * Images are 8-bit gray; for a model with a larger or 3-channel input each image is resized
 * (nearest neighbour) and copied to every channel, as `rtci-model run` does. PGM files (binary
 * P5 or text P2, maxval <= 255) take their label from the file name when it starts with digits
 * and '_' (e.g. "3_0042.pgm"); otherwise the label is unknown (-1). PNG is not read (it would
 * need another library; convert with any image tool to PGM). */
#ifndef RTCI_EDGE_FRAMES_H
#define RTCI_EDGE_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "inference/model.h"

struct rtci_imageset {
	uint32_t count, rows, cols;
	uint8_t *px;      /* count x rows x cols */
	int16_t *labels;  /* count; -1: unknown */
};

/* IDX images (+ labels, may be NULL), at most max items (0: all). err names file and reason. */
int rtci_frames_load_idx(const char *images, const char *labels, uint32_t max,
			 struct rtci_imageset *out, char *err, size_t errlen);
/* Every *.pgm in dir, sorted by name; all must share one size. At most max (0: all). */
int rtci_frames_load_pgm_dir(const char *dir, uint32_t max, struct rtci_imageset *out, char *err,
			     size_t errlen);
/* A file or a folder: a folder is read as PGM images, a file as IDX. */
int rtci_frames_load(const char *images, const char *labels, uint32_t max,
		     struct rtci_imageset *out, char *err, size_t errlen);
void rtci_frames_free(struct rtci_imageset *s);

/* Model input of image i (in_c x in_h x in_w floats, pixel / 255). */
void rtci_frames_input(const struct rtci_geometry *g, const struct rtci_imageset *s, uint32_t i,
		       float *out);

/* Head + codec for one image at a time. Not thread-safe: one per thread. */
struct rtci_encoder;
int rtci_encoder_create(const struct rtci_model *m, struct rtci_encoder **out);
void rtci_encoder_destroy(struct rtci_encoder *e);
/* Largest payload of any setup of the model (bytes). */
size_t rtci_encoder_max_frame(const struct rtci_encoder *e);
/* Input floats of one image. */
size_t rtci_encoder_input_floats(const struct rtci_encoder *e);
/* Runs the head for setup_id on one model input and encodes the partition tensor into dst.
 * Returns the payload length or a negative code. */
ssize_t rtci_encoder_run(struct rtci_encoder *e, const float *input, int setup_id, uint8_t *dst,
			 size_t cap);

#endif
