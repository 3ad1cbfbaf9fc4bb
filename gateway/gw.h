/* The rtci-gateway daemon's shared state (struct gw) and the headers of its parts:
 *
 *   main.c         command line, start-up, signals, summary, reload, drain, teardown
 *   tenants.h      tenant/device tables built from the tenants file, device keys, reload hand-over
 *   models.h       the models served: files, batcher queues, controller tables, cost
 *   pipeline.h     RX lcore loop (pipeline.c: ingest, reassembly, decode, batcher) and worker
 *                  loop (worker.c: tail, results)
 *   control_glue.h per-device rate control (clock, estimator + MPC), rate-switch commands
 *   admit.h        capacity, admitted load, hello admission, idle release, giving way by share
 *   cluster.h      membership and tenants in etcd, placement of devices, drain
 *   check.h        --check-config and the lcore layout rules
 *   pmd_stats.h    the port driver's counters as metrics
 *   drops.h        drop and refusal reasons;  limits.h  sizes fixed at build time
 *
 * Names: functions of these daemon parts start with gw_; modules with a public face of their
 * own (batcher.h, config.h, metrics.h, costmodel.h, admission.h) with rtci_.
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

#include "dataplane/port.h"
#include "gateway/config.h"
#include "gateway/limits.h"
#include "gateway/metrics.h"
#include "gateway/models.h"
#include "gateway/pipeline.h"
#include "gateway/tenants.h"

struct gw_cluster;

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

#endif
