/* The lcores' loops: RX in pipeline.c (ingest, reassembly, decode, batcher, results), workers in
 * worker.c (tail inference), and the frames and batches that travel between them. */
#ifndef RTCI_GATEWAY_PIPELINE_H
#define RTCI_GATEWAY_PIPELINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/auth.h"
#include "dataplane/port.h"
#include "gateway/batcher.h"
#include "gateway/drops.h"
#include "gateway/limits.h"
#include "inference/engine.h"

struct gw;
struct gw_table;
struct rte_ring;
struct rtci_reasm;
struct rtci_codec;

struct gw_frame {
	float *x;
	uint32_t tenant_slot, tenant_id, device_id;
	uint16_t model, setup, queue, rx;
	uint64_t seq;
	uint8_t key[RTCI_AUTH_KEY_LEN];
	struct rtci_port_peer peer;
	uint64_t first_us, complete_us, enqueue_us, deadline_us, capture_gw_us;
	uint64_t due_us;          /* capture + the tenant's deadline: a result after it is late */
	uint8_t out[GW_RESULT_MAX];
	uint16_t out_len;
};

struct gw_batch {
	uint16_t rx, queue;
	uint32_t n;
	uint64_t release_us;
	uint64_t est_us;          /* estimated run time, counted in gw->inflight_work_us */
	struct gw_frame *f[RTCI_BATCHER_MAX_BATCH];
};

struct gw_rx {
	struct gw *gw;
	uint16_t index, queue;
	unsigned lcore;
	uint32_t mslot;
	struct gw_table *table;   /* the table this lcore works with */
	struct rtci_reasm *reasm;
	struct rtci_codec *codec;
	struct rtci_batcher *batcher;
	float *slot_mem;
	struct gw_frame *slots;
	struct gw_frame **free;
	uint32_t nslots, nfree;
	struct gw_batch *batches;
	struct gw_batch **bfree;
	uint32_t nbatches, nbfree;
	struct rte_ring *done;
	uint32_t outstanding;     /* batches at workers */
	uint64_t busy_ns, total_ns;
	int s_busy;
	int s_reasm_inflight, s_reasm_bytes;
	int s_port[8];
	int s_port_drop[RTCI_PORT_DROP_COUNT];
	int s_reasm_drop[16];
	int s_unknown_drop[GW_DROP_COUNT]; /* tenant="none" */
	uint64_t last_house_us, last_expire_us;
	uint64_t members_seen;    /* membership generation of the last placement scan */
	bool draining_seen;
	_Atomic uint64_t seen_generation;
	_Atomic bool finished;
};

struct gw_worker {
	struct gw *gw;
	uint16_t index;
	unsigned lcore;
	uint32_t mslot;
	struct rtci_tail **tails;  /* per model */
	float *input, *logits;
	int *setup_ids;
	uint64_t busy_ns, total_ns;
	int s_busy;
	int rc;
};

int gw_rx_init(struct gw *gw, struct gw_rx *rx, char *err, size_t errlen);
void gw_rx_fini(struct gw_rx *rx);
int gw_rx_main(void *arg);
int gw_worker_init(struct gw *gw, struct gw_worker *w, char *err, size_t errlen);
void gw_worker_fini(struct gw_worker *w);
int gw_worker_main(void *arg);
/* Runs one batch: tail inference, softmax, top-k, result datagram into each frame's slot. */
void gw_worker_run_batch(struct gw_worker *w, struct gw_batch *b);

#endif
