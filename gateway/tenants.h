/* Tenant and device tables (tenants.c): built from a tenants file, device keys, activation of a
 * device state from its tenant's pool, and the hand-over of device states on reload. */
#ifndef RTCI_GATEWAY_TENANTS_H
#define RTCI_GATEWAY_TENANTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/policy.h"
#include "dataplane/auth.h"
#include "dataplane/port.h"
#include "gateway/admission.h"
#include "gateway/batcher.h"
#include "gateway/config.h"
#include "gateway/drops.h"
#include "gateway/limits.h"

struct gw;

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

/* tenants.c */
int gw_tenants_register_series(struct gw *gw, const struct rtci_tenants_config *cfg);
int gw_table_build(struct gw *gw, struct rtci_tenants_config *cfg, uint64_t generation,
		   struct gw_table **out, char *err, size_t errlen);
void gw_table_free(struct gw *gw, struct gw_table *t);
struct gw_tenant *gw_table_tenant(const struct gw_table *t, uint32_t id);
/* Active device, or NULL. */
struct gw_device *gw_table_device(const struct gw_table *t, uint32_t tenant_id, uint32_t device_id);
/* Hints for a burst of received datagrams, given before they are handled, because the device
 * table is far larger than the caches: _slot starts loading the hash slot of the datagram's
 * device, _device (once the slot is in cache) the device's key and replay window. They change
 * nothing, validate nothing and cannot fail. */
void gw_table_prefetch_slot(const struct gw_table *t, const uint8_t *payload, size_t len);
void gw_table_prefetch_device(const struct gw_table *t, const uint8_t *payload, size_t len);
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

#endif
