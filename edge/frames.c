/* Frame source: images, model input, head + codec. See frames.h. */
#include "edge/frames.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/idx.h"
#include "common/rtci_error.h"
#include "inference/codec.h"
#include "inference/engine.h"

#define PGM_MAX_DIM 4096
#define PGM_MAX_FILES 100000

int rtci_frames_load_idx(const char *images, const char *labels, uint32_t max,
			 struct rtci_imageset *out, char *err, size_t errlen)
{
	struct rtci_idx im, lb = { 0 };
	memset(out, 0, sizeof(*out));
	int rc = rtci_idx_load(images, max, &im, err, errlen);
	if (rc < 0)
		return rc;
	if (labels && (rc = rtci_idx_load(labels, max, &lb, err, errlen)) < 0) {
		rtci_idx_free(&im);
		return rc;
	}
	if (labels && lb.count < im.count) {
		snprintf(err, errlen, "%s: %u labels for %u images", labels, lb.count, im.count);
		rtci_idx_free(&im);
		rtci_idx_free(&lb);
		return -RTCI_ERR_IDX_FORMAT;
	}
	out->count = im.count;
	out->rows = im.rows;
	out->cols = im.cols;
	out->px = im.data;
	out->labels = malloc(im.count * sizeof(*out->labels) + 1);
	if (!out->labels) {
		rtci_idx_free(&im);
		rtci_idx_free(&lb);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < im.count; i++)
		out->labels[i] = labels ? (int16_t)lb.data[i] : -1;
	rtci_idx_free(&lb);
	return 0;
}

/* Next PGM header token; skips whitespace and comments. */
static int pgm_token(FILE *f, unsigned long *v)
{
	int c;
	for (;;) {
		c = fgetc(f);
		if (c == '#') {
			while (c != '\n' && c != EOF)
				c = fgetc(f);
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			break;
		}
	}
	if (c < '0' || c > '9')
		return -1;
	unsigned long x = 0;
	while (c >= '0' && c <= '9') {
		x = x * 10 + (unsigned long)(c - '0');
		if (x > 1000000)
			return -1;
		c = fgetc(f);
	}
	*v = x;
	return 0; /* the single whitespace after the token is consumed */
}

/* Reads one PGM; *px is malloc'd. */
static int pgm_read(const char *path, uint32_t *rows, uint32_t *cols, uint8_t **px, char *err,
		    size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	char magic[2];
	unsigned long w, h, maxval;
	int rc = -RTCI_ERR_IDX_FORMAT;
	*px = NULL;
	if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '2')) {
		snprintf(err, errlen, "%s: not a PGM file (P5 or P2)", path);
		goto out;
	}
	if (pgm_token(f, &w) || pgm_token(f, &h) || pgm_token(f, &maxval) || w == 0 || h == 0 ||
	    w > PGM_MAX_DIM || h > PGM_MAX_DIM || maxval == 0 || maxval > 255) {
		snprintf(err, errlen, "%s: bad PGM header (size up to %d, maxval 1..255)", path,
			 PGM_MAX_DIM);
		goto out;
	}
	*px = malloc(w * h);
	if (!*px) {
		rc = -ENOMEM;
		goto out;
	}
	if (magic[1] == '5') {
		if (fread(*px, 1, w * h, f) != w * h) {
			snprintf(err, errlen, "%s: truncated pixel data", path);
			goto out;
		}
	} else {
		for (unsigned long i = 0; i < w * h; i++) {
			unsigned long v;
			if (pgm_token(f, &v) || v > maxval) {
				snprintf(err, errlen, "%s: bad pixel %lu", path, i);
				goto out;
			}
			(*px)[i] = (uint8_t)v;
		}
	}
	if (maxval != 255)
		for (unsigned long i = 0; i < w * h; i++)
			(*px)[i] = (uint8_t)(((*px)[i] * 255u + maxval / 2) / maxval);
	*rows = (uint32_t)h;
	*cols = (uint32_t)w;
	rc = 0;
out:
	if (rc) {
		free(*px);
		*px = NULL;
	}
	fclose(f);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rtci_frames_load_pgm_dir(const char *dir, uint32_t max, struct rtci_imageset *out, char *err,
			     size_t errlen)
{
	memset(out, 0, sizeof(*out));
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".pgm") != 0)
			continue;
		if (n == PGM_MAX_FILES)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n == 0) {
		snprintf(err, errlen, "%s: no .pgm files", dir);
		rc = -ENOENT;
	}
	size_t found = n; /* every name is freed below, also those past max */
	if (rc == 0) {
		qsort(names, n, sizeof(*names), cmp_str);
		if (max && n > max)
			n = max;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char path[4096];
		uint32_t r = 0, c = 0;
		uint8_t *px = NULL;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((rc = pgm_read(path, &r, &c, &px, err, errlen)) < 0)
			break;
		if (i == 0) {
			out->rows = r;
			out->cols = c;
			out->px = malloc(n * r * c);
			out->labels = malloc(n * sizeof(*out->labels));
			if (!out->px || !out->labels) {
				free(px);
				rc = -ENOMEM;
				break;
			}
		} else if (r != out->rows || c != out->cols) {
			snprintf(err, errlen, "%s: %ux%u, the first image is %ux%u", path, c, r,
				 out->cols, out->rows);
			free(px);
			rc = -RTCI_ERR_IDX_FORMAT;
			break;
		}
		memcpy(out->px + i * r * c, px, (size_t)r * c);
		free(px);
		char *end;
		long lab = strtol(names[i], &end, 10);
		out->labels[i] = (end != names[i] && *end == '_' && lab >= 0 && lab < 32768) ? (int16_t)lab : -1;
		out->count = (uint32_t)(i + 1);
	}
	for (size_t i = 0; i < found; i++)
		free(names[i]);
	free(names);
	if (rc)
		rtci_frames_free(out);
	return rc;
}

int rtci_frames_load(const char *images, const char *labels, uint32_t max,
		     struct rtci_imageset *out, char *err, size_t errlen)
{
	struct stat sb;
	if (stat(images, &sb) == 0 && S_ISDIR(sb.st_mode))
		return rtci_frames_load_pgm_dir(images, max, out, err, errlen);
	return rtci_frames_load_idx(images, labels, max, out, err, errlen);
}

void rtci_frames_free(struct rtci_imageset *s)
{
	free(s->px);
	free(s->labels);
	memset(s, 0, sizeof(*s));
}

void rtci_frames_input(const struct rtci_geometry *g, const struct rtci_imageset *s, uint32_t i,
		       float *out)
{
	const uint8_t *px = s->px + (size_t)i * s->rows * s->cols;
	for (int y = 0; y < g->in_h; y++)
		for (int x = 0; x < g->in_w; x++) {
			uint32_t sy = (uint32_t)((uint64_t)y * s->rows / (uint64_t)g->in_h);
			uint32_t sx = (uint32_t)((uint64_t)x * s->cols / (uint64_t)g->in_w);
			float v = px[(size_t)sy * s->cols + sx] / 255.0f;
			for (int c = 0; c < g->in_c; c++)
				out[((size_t)c * g->in_h + y) * g->in_w + x] = v;
		}
}

struct rtci_encoder {
	const struct rtci_model *m;
	struct rtci_head *head;
	struct rtci_codec *codec;
	float *part;
	size_t max_frame, input_floats;
	uint32_t C, H, W;
};

int rtci_encoder_create(const struct rtci_model *m, struct rtci_encoder **out)
{
	struct rtci_encoder *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	e->m = m;
	e->C = (uint32_t)g->stem_out;
	e->H = (uint32_t)ph;
	e->W = (uint32_t)pw;
	e->input_floats = (size_t)g->in_c * g->in_h * g->in_w;
	struct rtci_engine_config ecfg = { .threads = 1, .max_batch = 1 };
	int rc = rtci_head_create(m, &ecfg, &e->head);
	struct rtci_codec_config ccfg = { .max_elements = e->C * e->H * e->W };
	if (rc == 0)
		rc = rtci_codec_create(&ccfg, &e->codec);
	if (rc == 0 && !(e->part = malloc((size_t)e->C * e->H * e->W * sizeof(float))))
		rc = -ENOMEM;
	if (rc) {
		rtci_encoder_destroy(e);
		return rc;
	}
	ssize_t mx = rtci_codec_max_encoded_size(e->C, 65535, e->H, e->W);
	e->max_frame = mx > 0 ? (size_t)mx : 0;
	*out = e;
	return 0;
}

void rtci_encoder_destroy(struct rtci_encoder *e)
{
	if (!e)
		return;
	rtci_head_destroy(e->head);
	rtci_codec_destroy(e->codec);
	free(e->part);
	free(e);
}

size_t rtci_encoder_max_frame(const struct rtci_encoder *e) { return e->max_frame; }
size_t rtci_encoder_input_floats(const struct rtci_encoder *e) { return e->input_floats; }

ssize_t rtci_encoder_run(struct rtci_encoder *e, const float *input, int setup_id, uint8_t *dst,
			 size_t cap)
{
	const struct rtci_setup *s = rtci_model_setup(e->m, setup_id);
	if (!s)
		return -RTCI_ERR_ENGINE_SETUP;
	int rc = rtci_head_run(e->head, setup_id, 1, input, e->part);
	if (rc < 0)
		return rc;
	struct rtci_codec_desc d = { .c = (uint32_t)s->c, .levels = (uint32_t)s->L, .channels = e->C,
				     .height = e->H, .width = e->W };
	return rtci_codec_encode(e->codec, &d, e->part, dst, cap);
}
