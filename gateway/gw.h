/* Internal header of the rtci-gateway daemon: the state shared by its parts.
 *
 *   main.c         command line, start-up, signals, summary, reload, drain, teardown
 *   tenants.c      tenant/device tables built from the tenants file, device keys, reload hand-over
 *   control_glue.c per-device rate control (estimator + MPC), setup tables, rate-switch commands
 *   admit.c        capacity, admitted load, hello admission, idle release, giving way by share
 *   cluster.c      membership and tenants in etcd, placement of devices, drain
 *   pipeline.c     RX lcore loop (ingest, reassembly, decode, batcher) and worker loop (tail)
 *
 * Lcore layout: each RX lcore owns one RX/TX queue pair, its reassembly table, codec, batcher,
 * frame-slot pool and a "done" ring; workers take released batches from one shared work ring,
 * run the tail and encode the results, and hand the batch back on the RX lcore's done ring; the
 * RX lcore sends the results on its own TX queue. Device state is written only by the RX lcore
 * that received the device's traffic (the port keeps a flow on one queue). */
#ifndef RTCI_GATEWAY_GW_H
#define RTCI_GATEWAY_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster/placement.h"
#include "control/control.h"
#include "dataplane/auth.h"
#include "dataplane/port.h"
#include "dataplane/protocol.h"
#include "gateway/admission.h"
#include "gateway/batcher.h"
#include "gateway/config.h"
#include "gateway/costmodel.h"
#include "gateway/metrics.h"
#include "inference/engine.h"
#include "inference/model.h"

struct rte_ring;
struct rtci_reasm;
struct rtci_codec;

#define GW_MAX_RX 16
#define GW_MAX_WORKERS 16
#define GW_TENANT_SLOTS 256       /* tenant ids seen over the process lifetime (metrics, batcher) */
#define GW_TOPK 5
#define GW_CLUSTER_MAX_MEMBERS 64
#define GW_SLOT_MEMORY (256u << 20) /* decoded-tensor pool budget per RX lcore */
#define GW_RESULT_MAX (RTCI_PROTO_HDR_LEN + RTCI_PROTO_RESULT_LEN + \
		       RTCI_PROTO_MAX_TOPK * RTCI_PROTO_TOPK_ENTRY_LEN + RTCI_PROTO_TAG_LEN)

/* Drop reasons of the ingest path, counted per tenant (rtci_ingest_drops_total). */
enum gw_drop {
	GW_DROP_MALFORMED = 0,  /* rtci_proto_decode failed */
	GW_DROP_DIRECTION,      /* a gateway-to-device message type */
	GW_DROP_UNKNOWN_TENANT,
	GW_DROP_UNKNOWN_DEVICE,
	GW_DROP_BAD_MAC,
	GW_DROP_REPLAYED,
	GW_DROP_STALE,
	GW_DROP_QUOTA_DEVICES,
	GW_DROP_QUOTA_FRAMES,   /* tenant frames/s token bucket */
	GW_DROP_QUOTA_BYTES,    /* tenant reassembly bytes / frames */
	GW_DROP_REASSEMBLY,     /* other reassembly rejections (duplicate, conflict, table full...) */
	GW_DROP_DECODE,         /* payload did not decode for the frame's setup */
	GW_DROP_NO_HELLO_MODEL, /* hello for a model the gateway does not serve */
	GW_DROP_OVERLOAD,       /* no free frame slot / work ring full */
	GW_DROP_LATE,           /* cannot finish by its deadline given the work ahead (before decode) */
	GW_DROP_NOT_ADMITTED,   /* frame of a device without admission while the gateway is full */
	GW_DROP_EXPIRED,        /* unfinished frame: its fragments did not all arrive within the TTL */
	GW_DROP_EVICTED,        /* unfinished frame: a newer frame of the device took its place */
	GW_DROP_CLOCK,          /* capture time far ahead of the device's learned clock */
	GW_DROP_COUNT
};
const char *gw_drop_name(enum gw_drop d);

/* Why a hello was refused (rtci_hellos_refused_total). */
enum gw_refuse {
	GW_REFUSE_BUSY = 0,     /* admission: gateway at capacity, tenant at or above its share */
	GW_REFUSE_QUOTA,        /* tenant's device quota */
	GW_REFUSE_MODEL,        /* model the gateway does not serve */
	GW_REFUSE_COUNT
};
const char *gw_refuse_name(enum gw_refuse r);

struct gw_model {
	char name[RTCI_CONFIG_NAME_MAX];
	struct rtci_model *model;
	const struct rtci_geometry *geo;
	int setups, groups;
	int queue_base;           /* batcher queues queue_base .. queue_base + groups (last: no group) */
	int pc, ph, pw;           /* partition tensor C x H x W */
	uint32_t floats;          /* pc * ph * pw */
	uint32_t max_frame;       /* largest encoded frame of any setup */
	struct rtci_ctl_table table;
	struct rtci_cost cost;    /* one worker's time per batch size (workers keep it current) */
	int s_infer;              /* rtci_inference_seconds{model} */
	int s_capacity;           /* rtci_capacity_fps{model} */
};

/* Metrics series of one tenant slot (registered once per tenant id, kept across reloads). */
struct gw_tenant_series {
	uint32_t id;
	bool used;
	int frames_in, frames_done, in_time, ingest_frames, commands, hellos, hellos_off_pace, latency;
	int devices;
	int batch_drop[RTCI_BATCHER_DROP_COUNT + 1]; /* + overload */
	int drop[GW_DROP_COUNT];
	int *setup;               /* per model, per setup: rtci_setup_frames_total */
	int refused[GW_REFUSE_COUNT];
	int preempted, expired, adm_load, adm_share;
	int redirects, moves;     /* hellos sent to their home gateway; devices moved away */
};

struct gw_device {
	uint32_t id;
	uint32_t tenant_slot;
	uint8_t key[RTCI_AUTH_KEY_LEN];
	uint16_t owner;           /* RX index that activated it */
	uint16_t model;
	bool peer_set, offset_set, seq_base_set;
	struct rtci_port_peer peer;
	struct rtci_auth_replay replay;
	int64_t clock_offset_us;  /* gateway_us - device_us, smallest seen (see operations.md) */
	uint8_t clock_off_runs;   /* frames in a row more than a deadline off that clock */
	uint64_t seq_base;        /* controller sequences are relative to this */
	uint16_t setup;           /* setup of the newest frame */
	struct rtci_ctl_device ctl;
	struct rtci_ctl_cmd cmd;  /* what the device was told (its sequence numbers commands) */
	bool rep_set;             /* a report arrived; rep_* hold the newest */
	uint64_t rep_seq;         /* reports carry their own increasing sequence */
	uint32_t rep_dropped;     /* the device's cumulative drop count then */
	uint64_t last_frame_seq;  /* newest frame observed (valid once seq_base_set) */
	_Atomic uint64_t adm_load; /* admitted load, milli-frames/s; 0: not admitted */
	uint64_t adm_since_us;    /* when admitted: the newest devices give way first */
	uint64_t last_us;         /* last authenticated message (admission idle release) */
	uint32_t moved_ipv4;      /* told to move there (0: not moved) ... */
	uint16_t moved_port;
	uint64_t moved_us;        /* ... when last told */
};

struct gw_listed {
	uint32_t id;
	bool key_set;
	uint8_t key[RTCI_AUTH_KEY_LEN];
};

struct gw_tenant {
	const struct rtci_config_tenant *cfg;
	uint32_t id, slot;
	uint32_t deadline_us;
	struct gw_listed *listed;  /* sorted by id */
	uint32_t nlisted;
	struct gw_device *pool;
	uint32_t pool_size;
	_Atomic uint32_t pool_used;
	struct rtci_ctl_policy **policy; /* per model */
	struct { double tokens; uint64_t last_us; } bucket[GW_MAX_RX];
	_Atomic uint64_t adm_load; /* sum of its devices' admitted loads */
};

struct gw_hslot {
	_Atomic uint64_t key;     /* tenant_id << 32 | device_id; 0 = empty */
	struct gw_device *_Atomic dev;
};

struct gw_table {
	uint64_t generation;
	struct rtci_tenants_config *cfg;
	uint32_t ntenants;
	struct gw_tenant *tenants; /* sorted by id */
	uint32_t hmask;
	struct gw_hslot *hash;
	struct rtci_adm_tenant *adm; /* per tenant: the admission's view, under gw->adm_lock */
};

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

struct gw;

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

struct gw {
	struct rtci_gateway_config *cfg;
	struct rtci_port *port;
	struct rtci_metrics *metrics;
	uint32_t nmodels;
	struct gw_model *models;
	uint32_t nqueues;
	uint16_t *queue_model;
	int *s_batch, *s_qtime, *s_qdepth; /* per queue */
	uint32_t nrx, nworkers;
	struct gw_rx rx[GW_MAX_RX];
	struct gw_worker workers[GW_MAX_WORKERS];
	struct rte_ring *work;
	/* Batches handed to workers and not finished, and their estimated run time: RX lcores
	 * hand over at most 3 per worker, so frames wait in the batcher (EDF, deadline drops), not
	 * in a ring, and the wait for a worker is known. */
	_Atomic uint32_t batches_inflight;
	_Atomic uint64_t inflight_work_us;
	pthread_mutex_t adm_lock;          /* admission decisions, giving way, table hand-over */
	_Atomic uint64_t adm_load;         /* admitted load over all tenants, milli-frames/s */
	int s_adm_capacity, s_adm_load;
	struct gw_cluster *cluster;        /* NULL: stand-alone */
	_Atomic bool draining;             /* SIGUSR1: move every device away, then exit */
	int s_members, s_etcd_up;
	int s_pmd[4], s_pmd_rx[RTCI_PORT_PMD_QUEUES], s_pmd_err[RTCI_PORT_PMD_QUEUES];
	_Atomic(struct gw_table *) table;  /* newest table; RX lcores pick it up between bursts */
	struct gw_tenant_series tseries[GW_TENANT_SLOTS];
	uint32_t ntslots;
	_Atomic bool stop_rx;              /* SIGTERM: stop receiving, drain */
	_Atomic uint32_t rx_done;          /* RX lcores finished draining */
	uint32_t max_frame;
	int s_reloads, s_reloads_failed; /* rtci_reloads_total{result="ok"|"failed"} */
};

/* clock: CLOCK_MONOTONIC in microseconds / nanoseconds */
uint64_t gw_now_us(void);
uint64_t gw_now_ns(void);

/* tenants.c */
int gw_tenants_register_series(struct gw *gw, const struct rtci_tenants_config *cfg);
int gw_table_build(struct gw *gw, struct rtci_tenants_config *cfg, uint64_t generation,
		   struct gw_table **out, char *err, size_t errlen);
void gw_table_free(struct gw *gw, struct gw_table *t);
struct gw_tenant *gw_table_tenant(const struct gw_table *t, uint32_t id);
/* Active device, or NULL. */
struct gw_device *gw_table_device(const struct gw_table *t, uint32_t tenant_id, uint32_t device_id);
/* Key of a device of the tenant (active or not): 0, or -ENOENT when the device is not the tenant's. */
int gw_tenant_device_key(const struct gw_tenant *t, uint32_t device_id, uint8_t key[32]);
/* Takes a device state from the tenant's pool (device quota): the device, or NULL (quota). */
struct gw_device *gw_table_activate(struct gw *gw, struct gw_table *t, struct gw_tenant *tn,
				    uint32_t device_id, const uint8_t key[32], uint16_t owner);
/* Moves the state of the devices owned by RX lcore `owner` from old to new (same tenant, device
 * and key). Run by that RX lcore. */
void gw_table_handover(struct gw *gw, struct gw_table *old, struct gw_table *nw, uint16_t owner);
/* Calls fn for every device state that RX lcore `owner` activated (run by that lcore). */
void gw_table_each_owned(struct gw_table *t, uint16_t owner,
			 void (*fn)(void *ctx, struct gw_tenant *tn, struct gw_device *d), void *ctx);

/* Capture times against a device's learned clock (control_glue.c). */
enum gw_clock {
	GW_CLOCK_OK = 0,  /* mapped; never later than the frame's arrival */
	GW_CLOCK_LATE,    /* more than a deadline before its arrival: late by its own account */
	GW_CLOCK_AHEAD,   /* more than a deadline ahead of the learned clock: not believed */
};
#define GW_CLOCK_RELEARN 4 /* frames in a row off the clock after which it is learned again */
/* Maps a frame's capture time (device clock) to the gateway's: learns the device's clock offset
 * (smallest arrival minus capture seen) and sets *capture_gw. A capture more than deadline_us
 * off that clock is not mapped (LATE or AHEAD) unless it is the GW_CLOCK_RELEARN-th such frame
 * in a row: then the device's clock changed and is learned again from this frame. */
enum gw_clock gw_clock_map(struct gw_device *d, uint64_t capture_us, uint64_t arrival_us,
			   uint32_t deadline_us, uint64_t *capture_gw);
/* Learns the clock from a hello's send time: only as a first guess or within a deadline. */
void gw_clock_hello(struct gw_device *d, uint64_t send_us, uint64_t arrival_us, uint32_t deadline_us);

/* control_glue.c */
int gw_ctl_table_from_model(const struct rtci_model *m, struct rtci_ctl_table *t, char *err,
			    size_t errlen);
int gw_ctl_policies_create(struct gw *gw, struct gw_tenant *tn, char *err, size_t errlen);
void gw_ctl_policies_destroy(struct gw *gw, struct gw_tenant *tn);
void gw_ctl_device_init(struct gw_device *d, const struct gw_tenant *tn);
/* Setup a device starts with (hello-ack). */
uint16_t gw_ctl_initial_setup(struct gw_device *d, const struct gw_tenant *tn);
/* A controller decision as a setup id on the wire (RTCI_CTL_LOCAL: RTCI_SETUP_LOCAL). */
uint16_t gw_ctl_wire_setup(unsigned decision);
/* Feeds a completed frame to the device's controller and decides; writes a rate-switch command
 * datagram into buf and returns its length when one is due, 0 when none, or a negative code. */
long gw_ctl_on_frame(struct gw_device *d, const struct gw_tenant *tn, const struct rtci_proto_hdr *h,
		     uint32_t frame_len, uint64_t first_us, uint64_t complete_us, uint64_t now_us,
		     uint8_t *buf, size_t cap);
/* Feeds an authenticated device report (its drops since the previous one, its queue) to the
 * controller and decides; a command as for gw_ctl_on_frame. A device dropping every frame sends
 * no frame, so reports are the gateway's only news of it. Returns -RTCI_ERR_AUTH_REPLAYED for a
 * report not newer than the last one. */
long gw_ctl_on_report(struct gw_device *d, const struct gw_tenant *tn,
		      const struct rtci_proto_hdr *h, const struct rtci_proto_report *r,
		      uint64_t now_us, uint8_t *buf, size_t cap);

/* admit.c (loads in milli-frames/s of the first model) */
int gw_admit_register_series(struct gw *gw);
/* Capacity less headroom: admission.capacity_fps, or workers / per-frame cost of model 0. */
uint64_t gw_admit_capacity(const struct gw *gw);
/* Load of one device of the tenant running the model. */
uint64_t gw_admit_device_load(const struct gw *gw, const struct gw_tenant *tn, uint16_t model);
/* Admits the device unless the gateway is full and its tenant at or above its share (devices of
 * tenants above their share give way to a tenant within its share). True when admitted (now or
 * before, or admission is off). */
bool gw_admit(struct gw_rx *rx, struct gw_tenant *tn, struct gw_device *d, uint64_t now);
void gw_admit_release(struct gw *gw, struct gw_tenant *tn, struct gw_device *d);
/* Releases the admission of this RX lcore's devices silent for admission.idle_timeout_ms. */
void gw_admit_expire(struct gw_rx *rx, uint64_t now);
/* Main lcore: capacity and loads into their gauges. */
void gw_admit_publish(struct gw *gw);
/* Main lcore: when the capacity fell more than 5% below the admitted load (the tail got slower),
 * the newest devices of the tenants furthest above their share give way until it fits. */
void gw_admit_shed(struct gw *gw);

/* pmd_stats.c: the PMD's counters (imissed, ierrors, rx_nombuf, oerrors, per queue) */
int gw_pmd_register_series(struct gw *gw);
void gw_pmd_publish(struct gw *gw);

/* cluster.c (all no-ops without cluster.etcd) */
struct gw_cluster;
int gw_cluster_start(struct gw *gw, char *err, size_t errlen);
void gw_cluster_stop(struct gw *gw);
bool gw_cluster_etcd_up(const struct gw *gw);
/* Bumped when members join, leave or change state (not on load updates). */
uint64_t gw_cluster_generation(const struct gw *gw);
/* Copy of the membership (at most GW_CLUSTER_MAX_MEMBERS); 0 without a cluster. */
uint32_t gw_cluster_members(const struct gw *gw, struct rtci_member *out);
/* The device's home: 1 this gateway (or no membership known), 0 another (its address in
 * *ipv4, *port), -1 no eligible member. skip_self: as if this gateway were not eligible. */
int gw_cluster_home(const struct gw *gw, uint32_t tenant, uint32_t device, bool skip_self,
		    uint32_t *ipv4, uint16_t *port);
/* Tenants YAML that arrived from etcd since the last call (caller frees), or NULL. */
char *gw_cluster_take_tenants(struct gw *gw);
/* Writes this gateway's record soon (its state changed). */
void gw_cluster_refresh(struct gw *gw);

/* models.c: loads every model of the gateway file (files, batcher queues, controller tables). */
int gw_models_load(struct gw *gw, char *err, size_t errlen);
/* Frees what gw_models_load made (models, queue tables, series ids). */
void gw_models_free(struct gw *gw);

/* check.c */
/* One RX lcore per port.rx_queues, 1..GW_MAX_RX of them and 1..GW_MAX_WORKERS workers. */
int gw_check_lcores(const struct rtci_gateway_config *cfg, char *err, size_t errlen);
/* rtci-gateway --check-config: loads and checks the gateway file, its models and its tenants
 * file as start-up does, without the EAL or the port; prints a summary on out and the errors on
 * errf. Returns the exit status (0 ok, 1 invalid). */
int gw_check_config(const char *path, FILE *out, FILE *errf);

/* pipeline.c */
int gw_rx_init(struct gw *gw, struct gw_rx *rx, char *err, size_t errlen);
void gw_rx_fini(struct gw_rx *rx);
int gw_rx_main(void *arg);
int gw_worker_init(struct gw *gw, struct gw_worker *w, char *err, size_t errlen);
void gw_worker_fini(struct gw_worker *w);
int gw_worker_main(void *arg);
/* Runs one batch: tail inference, softmax, top-k, result datagram into each frame's slot. */
void gw_worker_run_batch(struct gw_worker *w, struct gw_batch *b);

#endif
