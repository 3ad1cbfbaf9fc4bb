/* Gateway configuration: the gateway file (EAL, port, lcores, models, batching, control, metrics)
 * and the tenants file (tenants, keys, quotas, devices), read with libcyaml against a schema and
 * then checked (ranges, duplicates, formats). The tenants file is separate so that SIGHUP can
 * reload it without restarting the port.
 *
 * Every error message has the form "<file>:<line>: <field>: <reason>", e.g.
 * "configs/tenants.yaml:14: tenants[1].key: must be 64 hex characters (32 bytes)".
 * docs/operations.md is the reference for every field. */
#ifndef RTCI_GATEWAY_CONFIG_H
#define RTCI_GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inference/engine.h"

#define RTCI_CONFIG_MAX_LCORES 64    /* per role */
#define RTCI_CONFIG_LCORE_LIMIT 128  /* lcore ids are below this (DPDK's RTE_MAX_LCORE) */
#define RTCI_CONFIG_NAME_MAX 64      /* names, including the terminating NUL */
#define RTCI_CONFIG_PATH_MAX 1024
#define RTCI_CONFIG_KEY_BYTES 32
#define RTCI_CONFIG_ERR_MAX 512      /* enough room for any error message */

enum rtci_config_policy {
	RTCI_POLICY_DEFAULT = 0, /* tenants only: use the gateway's control.policy */
	RTCI_POLICY_MPC,
	RTCI_POLICY_FIXED,
	RTCI_POLICY_RATE,
};

struct rtci_config_model {
	char name[RTCI_CONFIG_NAME_MAX];
	char path[RTCI_CONFIG_PATH_MAX]; /* resolved against the config file's folder */
	uint32_t line;                   /* line of models[i].file in the gateway file */
	enum rtci_tail_precision precision;   /* models[i].precision: fp32, int8 or auto (default) */
};

struct rtci_gateway_config {
	char source[RTCI_CONFIG_PATH_MAX];

	/* EAL argument vector ready for rte_eal_init(): argv[0] is "rtci-gateway", then eal.args,
	 * "--file-prefix <prefix>" and "--vdev <port.vdev>" when set. NULL-terminated. */
	int eal_argc;
	char **eal_argv;
	char file_prefix[RTCI_CONFIG_NAME_MAX];

	struct {
		char vdev[256];            /* empty: first probed port */
		uint16_t rx_queues, tx_queues;
		uint16_t rx_descriptors, tx_descriptors;
		uint32_t mbufs, mbuf_cache;
		uint32_t ipv4;             /* host byte order */
		uint8_t mac[6];
		bool mac_set;              /* false: the port's own MAC */
		uint16_t udp_port;
		uint32_t neighbors;        /* neighbor table entries per RX queue */
	} port;

	struct {
		uint32_t main;
		uint32_t rx_count, worker_count;
		uint32_t rx[RTCI_CONFIG_MAX_LCORES];
		uint32_t workers[RTCI_CONFIG_MAX_LCORES];
	} lcores;

	uint32_t model_count;
	struct rtci_config_model *models;

	struct {
		uint32_t max_batch;
		uint32_t max_wait_us;
		uint32_t queue_capacity;
		uint32_t deadline_margin_pct;   /* of the deadline, kept for the way back and errors */
	} batching;

	struct {
		enum rtci_config_policy policy; /* never RTCI_POLICY_DEFAULT here */
		uint32_t horizon;
		uint32_t fixed_setup;           /* setup id used by the fixed policy */
		uint32_t head_us;               /* device: capture until the frame is ready to send */
		uint32_t rtt_us;                /* device <-> gateway round trip */
		uint32_t min_gain_per_10k;      /* frontier: a larger setup must answer this many more
						 * of 10,000 frames correctly (20: 0.002) */
	} control;

	struct {
		bool enabled;                   /* refuse hellos beyond capacity (docs/operations.md) */
		uint32_t headroom_pct;          /* share of the capacity kept free */
		uint32_t capacity_fps;          /* 0: from the measured cost of the tail */
		uint32_t idle_timeout_ms;       /* a silent device's admission is released then */
		uint32_t retry_after_ms;        /* what a busy hello-ack tells the device */
	} admission;

	struct {
		bool enabled;                   /* cluster.etcd set: membership and tenants in etcd */
		char etcd[1024];                /* endpoints, comma-separated URLs */
		char id[64];                    /* member id, unique in the cluster */
		uint32_t address;               /* where devices reach this gateway (host order) */
		uint32_t lease_ttl_s;           /* a dead gateway leaves the membership after this */
		char prefix[128];               /* keys live under it, e.g. /rtci/ */
	} cluster;

	struct {
		bool enabled;
		char listen[64];                /* IPv4 address, default 127.0.0.1 */
		uint16_t port;
		uint32_t summary_interval_s;    /* one-line summary on stdout, 0: off */
	} metrics;

	char tenants_file[RTCI_CONFIG_PATH_MAX]; /* resolved against the config file's folder */
};

struct rtci_config_device {
	uint32_t id;
	bool key_set;                       /* false: key derived from the tenant key */
	uint8_t key[RTCI_CONFIG_KEY_BYTES];
};

struct rtci_config_tenant {
	uint32_t id;
	char name[RTCI_CONFIG_NAME_MAX];
	uint8_t key[RTCI_CONFIG_KEY_BYTES];
	uint32_t deadline_ms;
	uint32_t fps;
	uint32_t weight;                    /* share of batcher queues and capacity under overload */
	uint32_t reserved_fps;              /* guaranteed admitted load, frames/s; 0: by weight */
	enum rtci_config_policy policy;
	struct {
		uint32_t devices;
		uint32_t frames_per_s;
		uint64_t reassembly_bytes;
	} quota;
	uint32_t device_count;              /* devices listed explicitly */
	struct rtci_config_device *devices;
	bool derive;                        /* also every id in [derive_first, derive_last] */
	uint32_t derive_first, derive_last;
};

struct rtci_tenants_config {
	char source[RTCI_CONFIG_PATH_MAX];
	uint32_t count;
	struct rtci_config_tenant *tenants;
};

/* Loads and checks a gateway file. On failure returns -RTCI_ERR_CONFIG_SYNTAX (YAML or schema),
 * -RTCI_ERR_CONFIG_INVALID (values) or a negated errno (file unreadable, -ENOMEM), and writes a
 * message "<file>:<line>: <field>: <reason>" into err (may be NULL). */
int rtci_config_load_gateway(const char *path, struct rtci_gateway_config **out, char *err,
			     size_t err_len);
void rtci_config_free_gateway(struct rtci_gateway_config *cfg);

/* Same for a tenants file. A failed reload leaves the caller's current tenants untouched. */
int rtci_config_load_tenants(const char *path, struct rtci_tenants_config **out, char *err,
			     size_t err_len);
void rtci_config_free_tenants(struct rtci_tenants_config *t);

/* Lookups; NULL when absent. */
const struct rtci_config_tenant *rtci_config_find_tenant(const struct rtci_tenants_config *t,
							 uint32_t id);
/* True when device id belongs to the tenant (listed or in the derive range); *dev is the listed
 * entry or NULL for a derived one. */
bool rtci_config_tenant_has_device(const struct rtci_config_tenant *t, uint32_t id,
				   const struct rtci_config_device **dev);

/* Writes "<gateway file>:<line>: models[<k>].file: <reason>" for an error found in model k's
 * file after loading (the model file is read by the caller). */
void rtci_config_model_error(const struct rtci_gateway_config *cfg, uint32_t k, const char *reason,
			     char *err, size_t err_len);

const char *rtci_config_policy_name(enum rtci_config_policy p);

#endif
