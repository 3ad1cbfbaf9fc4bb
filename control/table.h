/* Setup tables (table.c): each compression setup's payload size and accuracy, and the
 * measured parameters of the baselines and of the device's local exit. Pure C; only the
 * *_load_file wrappers touch files (docs/control.md §5).
 *
 * Units: time in nanoseconds (int64_t), sizes in bytes, bandwidth in bytes per second (double). */
#ifndef RTCI_CONTROL_TABLE_H
#define RTCI_CONTROL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rtci_error.h"

/* ---------------------------------------------------------------------------------------------
 * Setup tables: each compression setup's payload size and accuracy. */

#define RTCI_CTL_MAX_SETUPS 64
#define RTCI_CTL_SKIP 255 /* decision: skip the frame at the device */
/* Decision: answer the frame with the device's local exit, upload nothing (a table with a
 * local_exit block only; on the wire setup id 0xFFFF, RTCI_SETUP_LOCAL). While on it the device
 * still uploads a probe with the smallest setup every RTCI_CTL_PROBE_NS (docs/control.md §4). */
#define RTCI_CTL_LOCAL 254
#define RTCI_CTL_PROBE_NS 500000000

struct rtci_ctl_setup {
	uint16_t c;      /* kept channels */
	uint16_t bits;   /* 16/8/4/2/1 */
	uint32_t L;      /* quantization levels - 1 */
	double accuracy; /* 0..1 */
	double bytes;    /* payload per frame */
};

/* Parameters of the SPINN-like and CLIO-like baselines and of the device's local exit
 * (docs/control.md §4, §5): the model file's or the table's "spinn", "clio" and "local_exit"
 * blocks, defaults where they are absent. */
#define RTCI_CTL_SPINN_MAX_POINTS 32
struct rtci_ctl_spinn_point {
	double threshold;     /* exit confidence threshold */
	double coverage;      /* share of frames whose exit confidence >= threshold */
	double exit_accuracy; /* accuracy of the exit on those frames */
	double rest_factor;   /* accuracy of an uploaded frame = setup accuracy x rest_factor */
};
struct rtci_ctl_spinn {
	/* the operating point the simulator runs (one of points[]) */
	double coverage, exit_accuracy, rest_factor;
	double exit_ms;        /* exit branch time on the device, added to head time */
	double threshold;
	unsigned npoints;      /* measured threshold -> point table, thresholds ascending */
	struct rtci_ctl_spinn_point points[RTCI_CTL_SPINN_MAX_POINTS];
	bool measured;         /* from a "spinn" block, not the defaults */
};
#define RTCI_CTL_CLIO_MAX_WIDTHS 16
struct rtci_ctl_clio {
	uint32_t L; /* quantization of the progressive slices */
	/* CLIO's own server model per width (channels c ascending); nwidths 0: credit the setup
	 * table's accuracy of (c, L) */
	unsigned nwidths;
	struct {
		uint16_t c;
		double accuracy, bytes; /* bytes: payload of the c-channel prefix */
	} widths[RTCI_CTL_CLIO_MAX_WIDTHS];
};
/* The device's own exit head, answering a frame locally (docs/control.md §4). */
struct rtci_ctl_local_exit {
	bool present;
	double accuracy; /* top-1 of the exit head */
	double ms;       /* its time on the device after the head */
};

struct rtci_ctl_table {
	char name[64];
	unsigned n;
	struct rtci_ctl_setup s[RTCI_CTL_MAX_SETUPS];
	struct rtci_ctl_spinn spinn;
	struct rtci_ctl_clio clio;
	struct rtci_ctl_local_exit local;
};

/* Parses a setup table: a JSON file (docs/control.md §5) or a model's `__metadata__.rtci`
 * document (docs/model-format.md), the same setups and blocks. A model file itself is refused:
 * its one reader is inference/model.c, and control/model_table.h joins the two. Setups with
 * unknown accuracy or payload are rejected. */
int rtci_ctl_table_parse(const void *buf, size_t len, const char *name,
			 struct rtci_ctl_table *out, char *err, size_t err_len);
int rtci_ctl_table_load_file(const char *path, struct rtci_ctl_table *out, char *err,
			     size_t err_len);
/* True when the bytes start like a model file (safetensors: a u64 length, then '{'). */
bool rtci_ctl_looks_like_model(const void *buf, size_t len);
/* Setup id of (c, L) or a negative code. */
int rtci_ctl_table_find(const struct rtci_ctl_table *t, unsigned c, uint32_t L);
/* Makes SPINN's measured point of this threshold (within 1e-6) its operating point; -ENOENT
 * when there is none. */
int rtci_ctl_table_spinn_select(struct rtci_ctl_table *t, double threshold);

#endif
