/* SW-CNN model file (.rtcm): load, validate and write. docs/model-format.md is the contract.
 *
 * A model is loaded by mmap; every tensor's dtype, shape and byte range is checked against the
 * file and against the tensor list the geometry implies before any tensor is used. Errors name
 * the file and the offending tensor or field in the caller's message buffer. */
#ifndef RTCI_MODEL_H
#define RTCI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define RTCI_MODEL_MAX_ROWS 16      /* (t, c, n, s) rows of inverted-residual blocks */
#define RTCI_MODEL_MAX_IN_C 4       /* image channels */
#define RTCI_MODEL_MAX_CHANNELS 16  /* entries of the `channels` list */
#define RTCI_MODEL_MAX_LEVELS 8     /* entries of the `levels` list */
#define RTCI_MODEL_MAX_BN_SLOTS 1024
#define RTCI_MODEL_MAX_HEADER (16u << 20)
#define RTCI_MODEL_NAME_MAX 64      /* longest tensor name, with the terminating NUL */

struct rtci_geometry {
	char name[32];
	int in_c, in_h, in_w;
	float input_mean[RTCI_MODEL_MAX_IN_C];
	float input_std[RTCI_MODEL_MAX_IN_C];
	int classes;
	int stem_out, stem_kernel, stem_stride, stem_pad;
	int block1_out;
	int n_rows;
	struct { int t, c, n, s; } rows[RTCI_MODEL_MAX_ROWS];
	int last_channels;
	float bn_eps;
};

struct rtci_setup {
	int id;
	int c;              /* partition channels kept */
	int L;              /* quantizer levels - 1 */
	int bn_slot;
	int group;          /* index into the groups table, or -1 */
	double accuracy;    /* NaN when unknown */
	double payload_bytes; /* NaN when unknown */
	double raw_bytes;   /* NaN when absent */
};

/* One tensor the geometry requires, in file order. */
struct rtci_tensor_spec {
	char name[RTCI_MODEL_NAME_MAX];
	int ndim;
	int64_t shape[4];
};

struct rtci_model;

/* Fills *g with a preset ("mnv2-224" or "fmnist"). Returns 0 or -EINVAL. */
int rtci_geometry_preset(const char *name, struct rtci_geometry *g);

/* Spatial size of the partition tensor (the stem's output). */
void rtci_geometry_partition_size(const struct rtci_geometry *g, int *h, int *w);

/* Checks a geometry for sane bounds; writes the reason into err. Returns 0 or -RTCI_ERR_MODEL_GEOMETRY. */
int rtci_geometry_validate(const struct rtci_geometry *g, char *err, size_t errlen);

/* Tensors the geometry requires (with bn_slots rows of BN statistics), in file order.
 * Writes up to cap specs into out; returns the total count (may exceed cap) or a negative code. */
int rtci_geometry_tensors(const struct rtci_geometry *g, int bn_slots,
			  struct rtci_tensor_spec *out, int cap);

/* Multiply-accumulates of one image through the tail (block1 .. classifier), and through the head. */
int64_t rtci_geometry_tail_macs(const struct rtci_geometry *g);
int64_t rtci_geometry_head_macs(const struct rtci_geometry *g);

/* Loads and validates a model file (mmap, read-only). On failure *out is NULL and err (if not
 * NULL) holds "<path>: <reason>". Returns 0 or a negative code. */
int rtci_model_load(const char *path, struct rtci_model **out, char *err, size_t errlen);

/* Same, from a buffer in memory (copied); `name` is used in error messages. */
int rtci_model_load_buffer(const void *buf, size_t len, const char *name,
			   struct rtci_model **out, char *err, size_t errlen);

void rtci_model_destroy(struct rtci_model *m);

const struct rtci_geometry *rtci_model_geometry(const struct rtci_model *m);
int rtci_model_bn_slots(const struct rtci_model *m);
int rtci_model_setup_count(const struct rtci_model *m);
/* Setup by id; NULL when out of range. */
const struct rtci_setup *rtci_model_setup(const struct rtci_model *m, int id);
/* Setup id for (c, L), or -ENOENT. */
int rtci_model_find_setup(const struct rtci_model *m, int c, int L);
int rtci_model_group_count(const struct rtci_model *m);
/* Setup ids of group g; returns the count or -EINVAL. */
int rtci_model_group(const struct rtci_model *m, int g, const int **ids);
/* The `channels` and `levels` lists; return their lengths. */
int rtci_model_channels(const struct rtci_model *m, const int **list);
int rtci_model_levels(const struct rtci_model *m, const int **list);
/* Free text from the file, "" when absent. */
const char *rtci_model_provenance(const struct rtci_model *m);
/* The file's `__metadata__.rtci` document (JSON text, docs/model-format.md): what the
 * controller's setup table is read from (control/model_table.h), so that this reader is the only
 * one of the file. */
const char *rtci_model_metadata(const struct rtci_model *m);

/* Data of a validated tensor (little-endian F32, shape as in the spec), or NULL when absent. */
const float *rtci_model_tensor(const struct rtci_model *m, const char *name, int *ndim,
			       int64_t shape[4]);
/* The int8 calibration (docs/model-format.md: tensor `int8.act_scale`, [setups, points], and the
 * `int8` metadata block). Returns 0 with the scales (row = setup id) and the point count,
 * -ENOENT when the file has neither, -RTCI_ERR_MODEL_TENSOR when they disagree or the tensor has
 * the wrong shape. Values are not checked here (the engine refuses bad ones at create). */
int rtci_model_int8(const struct rtci_model *m, const float **act_scale, int *points);

/* Bytes of the file mapping. */
size_t rtci_model_file_size(const struct rtci_model *m);

/* The device's local exit (docs/model-format.md, `local_exit` and the `exit.*` tensors): conv 3x3
 * (stem_out -> width, stride 2) + BN + ReLU6, conv 3x3 (width -> width, stride 2) + BN + ReLU6,
 * global average pool, linear (width -> classes). Its input is the partition tensor with every
 * channel, computed with the BN slot of `input_setup`. */
#define RTCI_EXIT_MAX_WIDTH 1024
struct rtci_local_exit {
	int width;          /* channels of both convolutions */
	int input_setup;    /* the setup with every channel and the most levels */
	double accuracy;    /* top-1 on the test set, as the file states */
	double ms;          /* time on the device, as the file states */
};

/* The model's local exit, validated at load; NULL when the file has no `local_exit` block. */
const struct rtci_local_exit *rtci_model_local_exit(const struct rtci_model *m);

/* Writes a model with deterministic random weights for geometry g: He-initialised convolutions,
 * γ≈1, β≈0, per-slot running statistics with mild jitter (so activations stay in range), the
 * default setup space (channels 1..8,16,32 × levels 65535,255,15,3,1, one BN slot per setup) and
 * three groups. Returns 0 or a negative code with the reason in err. */
int rtci_model_synth(const struct rtci_geometry *g, uint64_t seed, const char *path,
		     char *err, size_t errlen);

/* Same with another setup space (channels x levels, one BN slot per setup). */
int rtci_model_synth_space(const struct rtci_geometry *g, uint64_t seed, const int *channels, int nc,
			   const int *levels, int nl, const char *path, char *err, size_t errlen);

#endif
