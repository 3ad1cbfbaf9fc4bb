#include "gateway/config.h"

#include "common/rtci_error.h"

#include <arpa/inet.h>
#include <cyaml/cyaml.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define PATH_LEN 256
#define MAX_INDEX 200000 /* key/entry positions remembered per file; bounds memory */

/* ------------------------------------------------------------------------------------------ */
/* Line index: "field path" -> line, from libyaml's event marks. libcyaml's own messages name a
 * mapping but not always the offending key's line, and semantic checks run on loaded structs,
 * so both look lines up here. Paths look like "port.udp_port" or "tenants[1].devices[0].id". */

struct line_index {
	char **path;
	char **value;    /* the scalar's text for a scalar value, else NULL */
	uint32_t *line;
	uint32_t n, cap;
};

static void index_free(struct line_index *ix)
{
	for (uint32_t i = 0; i < ix->n; i++) {
		free(ix->path[i]);
		free(ix->value[i]);
	}
	free(ix->path);
	free(ix->value);
	free(ix->line);
	memset(ix, 0, sizeof(*ix));
}

static int index_add(struct line_index *ix, const char *path, uint32_t line)
{
	if (ix->n == MAX_INDEX)
		return 0; /* huge file: later fields fall back to cyaml's line or none */
	if (ix->n == ix->cap) {
		uint32_t cap = ix->cap ? ix->cap * 2 : 64;
		char **p = realloc(ix->path, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		ix->path = p;
		char **v = realloc(ix->value, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ix->value = v;
		uint32_t *l = realloc(ix->line, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		ix->line = l;
		ix->cap = cap;
	}
	ix->path[ix->n] = strdup(path);
	ix->value[ix->n] = NULL;
	if (!ix->path[ix->n])
		return -ENOMEM;
	ix->line[ix->n++] = line;
	return 0;
}

/* Remembers the scalar text of the entry last added for path (type checks need it). */
static int index_set_value(struct line_index *ix, const char *path, const char *value)
{
	if (ix->n == 0 || strcmp(ix->path[ix->n - 1], path) != 0)
		return 0;
	free(ix->value[ix->n - 1]);
	ix->value[ix->n - 1] = strdup(value);
	return ix->value[ix->n - 1] ? 0 : -ENOMEM;
}

static uint32_t index_line(const struct line_index *ix, const char *path)
{
	for (uint32_t i = 0; i < ix->n; i++)
		if (strcmp(ix->path[i], path) == 0)
			return ix->line[i];
	return 0;
}

struct frame {
	int is_map;
	int expect_key;
	uint32_t index;
	size_t base_len;
};

static void path_set(char *path, size_t base_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path + base_len, PATH_LEN - base_len, fmt, ap);
	va_end(ap);
}

/* Builds the index; on a YAML syntax error fills *line, *col, msg and the path reached. */
static int index_build(FILE *f, struct line_index *ix, uint32_t *err_line, char *msg,
		       size_t msg_len, char *err_path)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct frame stack[64];
	int depth = 0, rc = 0, done = 0;
	char path[PATH_LEN] = "";

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			*err_line = (uint32_t)parser.problem_mark.line + 1;
			snprintf(msg, msg_len, "YAML syntax error: %s%s%s",
				 parser.problem ? parser.problem : "unknown",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			snprintf(err_path, PATH_LEN, "%s", path[0] ? path : "(document)");
			rc = -RTCI_ERR_CONFIG_SYNTAX;
			break;
		}
		uint32_t line = (uint32_t)ev.start_mark.line + 1;
		struct frame *top = depth ? &stack[depth - 1] : NULL;
		int is_value = 0;

		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (top && top->is_map && top->expect_key) {
				if (ev.type == YAML_SCALAR_EVENT) {
					path_set(path, top->base_len, "%s%s", top->base_len ? "." : "",
						 (const char *)ev.data.scalar.value);
					if ((rc = index_add(ix, path, line)) < 0)
						done = 1;
				}
				top->expect_key = 0;
				break;
			}
			if (top && !top->is_map) {
				path_set(path, top->base_len, "[%u]", top->index++);
				if ((rc = index_add(ix, path, line)) < 0)
					done = 1;
			}
			is_value = 1;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth)
				depth--;
			top = depth ? &stack[depth - 1] : NULL;
			if (top) {
				path[top->base_len] = '\0';
				if (top->is_map)
					top->expect_key = 1;
			}
			break;
		default:
			break;
		}
		if (is_value) {
			if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
				if (depth == (int)(sizeof(stack) / sizeof(stack[0]))) {
					*err_line = line;
					snprintf(msg, msg_len, "nesting deeper than %d levels", depth);
					snprintf(err_path, PATH_LEN, "%s", path);
					rc = -RTCI_ERR_CONFIG_SYNTAX;
					done = 1;
				} else {
					stack[depth++] = (struct frame){
						.is_map = ev.type == YAML_MAPPING_START_EVENT,
						.expect_key = 1,
						.base_len = strlen(path),
					};
				}
			} else if (top) {
				if (ev.type == YAML_SCALAR_EVENT &&
				    (rc = index_set_value(ix, path, (const char *)ev.data.scalar.value)) < 0)
					done = 1;
				path[top->base_len] = '\0';
				if (top->is_map)
					top->expect_key = 1;
			}
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* libcyaml reports schema errors through its log callback: a message, then "Backtrace:" and
 * one line per enclosing node, innermost first. Capture them to name the field. */

struct cyaml_capture {
	char first[256];
	int have_first;
	char trace[16][256];
	int ntrace;
	int in_trace;
};

static void cyaml_log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cyaml_capture *c = ctx;
	char line[256];

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(line, sizeof(line), fmt, args);
	line[strcspn(line, "\n")] = '\0';
	const char *s = line;
	if (strncmp(s, "Load: ", 6) == 0)
		s += 6;
	if (strcmp(s, "Backtrace:") == 0) {
		c->in_trace = 1;
		return;
	}
	if (c->in_trace) {
		if (c->ntrace < 16) {
			while (*s == ' ')
				s++;
			snprintf(c->trace[c->ntrace++], sizeof(c->trace[0]), "%s", s);
		}
		return;
	}
	if (!c->have_first) {
		snprintf(c->first, sizeof(c->first), "%s", s);
		c->have_first = 1;
	}
}

/* Turns the captured backtrace into a field path and a line. */
static void cyaml_describe(const struct cyaml_capture *c, const struct line_index *ix,
			   char *path, uint32_t *line)
{
	int missing = strncmp(c->first, "Missing required mapping field: ", 32) == 0;
	int unexpected = strncmp(c->first, "Unexpected key: ", 16) == 0;
	int skip = 0;
	size_t len = 0;

	path[0] = '\0';
	*line = 0;
	/* For a missing field, the innermost entry is the mapping's last key read, not a parent. */
	if (missing && c->ntrace > 0 && strncmp(c->trace[0], "in mapping field '", 18) == 0)
		skip = 1;
	for (int i = c->ntrace - 1; i >= skip; i--) {
		const char *t = c->trace[i];
		char name[96];
		unsigned n;
		if (sscanf(t, "in mapping field '%95[^']'", name) == 1)
			len += (size_t)snprintf(path + len, PATH_LEN - len, "%s%s", len ? "." : "", name);
		else if (sscanf(t, "in sequence entry '%u'", &n) == 1 && n > 0)
			len += (size_t)snprintf(path + len, PATH_LEN - len, "[%u]", n - 1);
		if (len >= PATH_LEN)
			len = PATH_LEN - 1;
		const char *l = strstr(t, "(line: ");
		if (l && *line == 0 && i == skip)
			*line = (uint32_t)strtoul(l + 7, NULL, 10);
	}
	if (missing || unexpected) {
		const char *key = c->first + (missing ? 32 : 16);
		uint32_t parent = index_line(ix, path);
		snprintf(path + len, PATH_LEN - len, "%s%s", len ? "." : "", key);
		uint32_t exact = index_line(ix, path);
		if (exact)
			*line = exact;
		else if (parent)
			*line = parent;
	} else {
		uint32_t exact = index_line(ix, path);
		if (exact)
			*line = exact;
	}
	if (*line == 0)
		*line = 1;
	if (!path[0])
		snprintf(path, PATH_LEN, "(document)");
}

/* ------------------------------------------------------------------------------------------ */
/* File schemas. Optional numbers are pointers so that "absent" differs from 0. */

struct y_eal {
	char **args;
	unsigned args_count;
	char *file_prefix;
};

struct y_port {
	char *vdev;
	unsigned *rx_queues, *tx_queues, *rx_descriptors, *tx_descriptors;
	unsigned *mbufs, *mbuf_cache, *udp_port, *neighbors;
	char *ipv4;
	char *mac;
};

struct y_lcores {
	unsigned *main;
	unsigned *rx;
	unsigned rx_count;
	unsigned *workers;
	unsigned workers_count;
};

struct y_model {
	char *name;
	char *file;
	char *precision;
};

struct y_batching {
	unsigned *max_batch, *max_wait_us, *queue_capacity, *deadline_margin_pct;
};

struct y_control {
	char *policy;
	unsigned *horizon, *fixed_setup, *head_us, *rtt_us, *min_gain_per_10k;
};

struct y_admission {
	int *enabled;
	unsigned *headroom_pct, *capacity_fps, *idle_timeout_ms, *retry_after_ms;
};

struct y_cluster {
	char *etcd, *id, *address, *prefix;
	unsigned *lease_ttl_s;
};

struct y_metrics {
	int *enabled;
	char *listen;
	unsigned *port, *summary_interval_s;
};

struct y_gateway {
	struct y_eal *eal;
	struct y_port *port;
	struct y_lcores *lcores;
	struct y_model *models;
	unsigned models_count;
	struct y_batching *batching;
	struct y_control *control;
	struct y_admission *admission;
	struct y_cluster *cluster;
	struct y_metrics *metrics;
	char *tenants_file;
};

#define OPT CYAML_FLAG_OPTIONAL
#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)
#define STR(key, flags, type, member) \
	CYAML_FIELD_STRING_PTR(key, (flags) | CYAML_FLAG_POINTER, type, member, 0, 1023)

static const cyaml_schema_value_t string_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 1023),
};
static const cyaml_schema_value_t uint_entry = {
	CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, unsigned),
};

static const cyaml_schema_field_t eal_fields[] = {
	CYAML_FIELD_SEQUENCE("args", OPT_PTR, struct y_eal, args, &string_entry, 0, 64),
	STR("file_prefix", OPT, struct y_eal, file_prefix),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t port_fields[] = {
	STR("vdev", OPT, struct y_port, vdev),
	CYAML_FIELD_UINT_PTR("rx_queues", OPT, struct y_port, rx_queues),
	CYAML_FIELD_UINT_PTR("tx_queues", OPT, struct y_port, tx_queues),
	CYAML_FIELD_UINT_PTR("rx_descriptors", OPT, struct y_port, rx_descriptors),
	CYAML_FIELD_UINT_PTR("tx_descriptors", OPT, struct y_port, tx_descriptors),
	CYAML_FIELD_UINT_PTR("mbufs", OPT, struct y_port, mbufs),
	CYAML_FIELD_UINT_PTR("mbuf_cache", OPT, struct y_port, mbuf_cache),
	STR("ipv4", 0, struct y_port, ipv4),
	STR("mac", OPT, struct y_port, mac),
	CYAML_FIELD_UINT_PTR("udp_port", OPT, struct y_port, udp_port),
	CYAML_FIELD_UINT_PTR("neighbors", OPT, struct y_port, neighbors),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t lcores_fields[] = {
	CYAML_FIELD_UINT_PTR("main", OPT, struct y_lcores, main),
	CYAML_FIELD_SEQUENCE("rx", OPT_PTR, struct y_lcores, rx, &uint_entry, 0, RTCI_CONFIG_MAX_LCORES),
	CYAML_FIELD_SEQUENCE("workers", OPT_PTR, struct y_lcores, workers, &uint_entry, 0,
			     RTCI_CONFIG_MAX_LCORES),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t model_fields[] = {
	STR("name", 0, struct y_model, name),
	STR("file", 0, struct y_model, file),
	STR("precision", OPT, struct y_model, precision),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t model_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_model, model_fields),
};

static const cyaml_schema_field_t batching_fields[] = {
	CYAML_FIELD_UINT_PTR("max_batch", OPT, struct y_batching, max_batch),
	CYAML_FIELD_UINT_PTR("max_wait_us", OPT, struct y_batching, max_wait_us),
	CYAML_FIELD_UINT_PTR("queue_capacity", OPT, struct y_batching, queue_capacity),
	CYAML_FIELD_UINT_PTR("deadline_margin_pct", OPT, struct y_batching, deadline_margin_pct),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t control_fields[] = {
	STR("policy", OPT, struct y_control, policy),
	CYAML_FIELD_UINT_PTR("horizon", OPT, struct y_control, horizon),
	CYAML_FIELD_UINT_PTR("fixed_setup", OPT, struct y_control, fixed_setup),
	CYAML_FIELD_UINT_PTR("head_us", OPT, struct y_control, head_us),
	CYAML_FIELD_UINT_PTR("rtt_us", OPT, struct y_control, rtt_us),
	CYAML_FIELD_UINT_PTR("min_gain_per_10k", OPT, struct y_control, min_gain_per_10k),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t admission_fields[] = {
	CYAML_FIELD_BOOL_PTR("enabled", OPT, struct y_admission, enabled),
	CYAML_FIELD_UINT_PTR("headroom_pct", OPT, struct y_admission, headroom_pct),
	CYAML_FIELD_UINT_PTR("capacity_fps", OPT, struct y_admission, capacity_fps),
	CYAML_FIELD_UINT_PTR("idle_timeout_ms", OPT, struct y_admission, idle_timeout_ms),
	CYAML_FIELD_UINT_PTR("retry_after_ms", OPT, struct y_admission, retry_after_ms),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t cluster_fields[] = {
	STR("etcd", OPT, struct y_cluster, etcd),
	STR("id", OPT, struct y_cluster, id),
	STR("address", OPT, struct y_cluster, address),
	STR("prefix", OPT, struct y_cluster, prefix),
	CYAML_FIELD_UINT_PTR("lease_ttl_s", OPT, struct y_cluster, lease_ttl_s),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t metrics_fields[] = {
	CYAML_FIELD_BOOL_PTR("enabled", OPT, struct y_metrics, enabled),
	STR("listen", OPT, struct y_metrics, listen),
	CYAML_FIELD_UINT_PTR("port", OPT, struct y_metrics, port),
	CYAML_FIELD_UINT_PTR("summary_interval_s", OPT, struct y_metrics, summary_interval_s),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t gateway_fields[] = {
	CYAML_FIELD_MAPPING_PTR("eal", OPT_PTR, struct y_gateway, eal, eal_fields),
	CYAML_FIELD_MAPPING_PTR("port", CYAML_FLAG_POINTER, struct y_gateway, port, port_fields),
	CYAML_FIELD_MAPPING_PTR("lcores", OPT_PTR, struct y_gateway, lcores, lcores_fields),
	CYAML_FIELD_SEQUENCE("models", CYAML_FLAG_POINTER, struct y_gateway, models, &model_entry, 1,
			     64),
	CYAML_FIELD_MAPPING_PTR("batching", OPT_PTR, struct y_gateway, batching, batching_fields),
	CYAML_FIELD_MAPPING_PTR("control", OPT_PTR, struct y_gateway, control, control_fields),
	CYAML_FIELD_MAPPING_PTR("admission", OPT_PTR, struct y_gateway, admission, admission_fields),
	CYAML_FIELD_MAPPING_PTR("cluster", OPT_PTR, struct y_gateway, cluster, cluster_fields),
	CYAML_FIELD_MAPPING_PTR("metrics", OPT_PTR, struct y_gateway, metrics, metrics_fields),
	STR("tenants_file", 0, struct y_gateway, tenants_file),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t gateway_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_gateway, gateway_fields),
};

struct y_device {
	unsigned id;
	char *key;
};

struct y_derive {
	unsigned first, last;
};

struct y_quotas {
	unsigned *devices, *frames_per_s;
	uint64_t *reassembly_bytes;
};

struct y_tenant {
	unsigned id;
	char *name;
	char *key;
	unsigned deadline_ms, fps;
	unsigned *weight, *reserved_fps;
	char *policy;
	struct y_quotas *quotas;
	struct y_device *devices;
	unsigned devices_count;
	struct y_derive *derive;
};

struct y_tenants {
	struct y_tenant *tenants;
	unsigned tenants_count;
};

static const cyaml_schema_field_t device_fields[] = {
	CYAML_FIELD_UINT("id", 0, struct y_device, id),
	STR("key", OPT, struct y_device, key),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t device_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_device, device_fields),
};

static const cyaml_schema_field_t derive_fields[] = {
	CYAML_FIELD_UINT("first", 0, struct y_derive, first),
	CYAML_FIELD_UINT("last", 0, struct y_derive, last),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t quota_fields[] = {
	CYAML_FIELD_UINT_PTR("devices", OPT, struct y_quotas, devices),
	CYAML_FIELD_UINT_PTR("frames_per_s", OPT, struct y_quotas, frames_per_s),
	CYAML_FIELD_UINT_PTR("reassembly_bytes", OPT, struct y_quotas, reassembly_bytes),
	CYAML_FIELD_END
};

#define MAX_DEVICES_LISTED 100000
#define MAX_TENANTS 4096

static const cyaml_schema_field_t tenant_fields[] = {
	CYAML_FIELD_UINT("id", 0, struct y_tenant, id),
	STR("name", 0, struct y_tenant, name),
	STR("key", 0, struct y_tenant, key),
	CYAML_FIELD_UINT("deadline_ms", 0, struct y_tenant, deadline_ms),
	CYAML_FIELD_UINT("fps", 0, struct y_tenant, fps),
	CYAML_FIELD_UINT_PTR("weight", OPT, struct y_tenant, weight),
	CYAML_FIELD_UINT_PTR("reserved_fps", OPT, struct y_tenant, reserved_fps),
	STR("policy", OPT, struct y_tenant, policy),
	CYAML_FIELD_MAPPING_PTR("quotas", OPT_PTR, struct y_tenant, quotas, quota_fields),
	CYAML_FIELD_SEQUENCE("devices", OPT_PTR, struct y_tenant, devices, &device_entry, 0,
			     MAX_DEVICES_LISTED),
	CYAML_FIELD_MAPPING_PTR("derive", OPT_PTR, struct y_tenant, derive, derive_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t tenant_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_tenant, tenant_fields),
};
static const cyaml_schema_field_t tenants_fields[] = {
	CYAML_FIELD_SEQUENCE("tenants", CYAML_FLAG_POINTER, struct y_tenants, tenants, &tenant_entry,
			     0, MAX_TENANTS),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t tenants_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_tenants, tenants_fields),
};

/* ------------------------------------------------------------------------------------------ */

struct loader {
	const char *file;
	struct line_index ix;
	char *err;
	size_t err_len;
	int failed;
};

static int fail(struct loader *l, const char *path, const char *fmt, ...)
{
	if (l->failed)
		return -RTCI_ERR_CONFIG_INVALID; /* the first error is the one reported */
	l->failed = 1;
	if (l->err && l->err_len) {
		char reason[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
		uint32_t line = index_line(&l->ix, path);
		snprintf(l->err, l->err_len, "%s:%u: %s: %s", l->file, line ? line : 1, path, reason);
	}
	return -RTCI_ERR_CONFIG_INVALID;
}

static const cyaml_config_t *cyaml_cfg(struct cyaml_capture *cap, cyaml_config_t *c)
{
	memset(c, 0, sizeof(*c));
	c->log_fn = cyaml_log_capture;
	c->log_ctx = cap;
	c->mem_fn = cyaml_mem;
	c->log_level = CYAML_LOG_ERROR;
	c->flags = CYAML_CFG_NO_ALIAS;
	return c;
}

/* The schema value a field path ("port.udp_port", "lcores.rx[0]") names, or NULL. */
static const cyaml_schema_value_t *schema_at(const cyaml_schema_value_t *v, const char *path)
{
	while (*path && v) {
		if (*path == '[') {
			if (v->type != CYAML_SEQUENCE)
				return NULL;
			path = strchr(path, ']');
			if (!path)
				return NULL;
			path++;
			v = v->sequence.entry;
			continue;
		}
		if (*path == '.')
			path++;
		size_t n = strcspn(path, ".[");
		if (v->type != CYAML_MAPPING)
			return NULL;
		const cyaml_schema_field_t *f = v->mapping.fields;
		while (f->key && (strlen(f->key) != n || strncmp(f->key, path, n) != 0))
			f++;
		if (!f->key)
			return NULL;
		v = &f->value;
		path += n;
	}
	return v;
}

/* YAML 1.2 core schema integer: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+. libcyaml itself
 * takes "47000.9" as 47000, so the text is checked before it gets there. */
static bool yaml_int(const char *s)
{
	const char *digits = "0123456789";
	if (s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		digits = s[1] == 'o' ? "01234567" : "0123456789abcdefABCDEF";
		s += 2;
	} else if (*s == '-' || *s == '+') {
		s++;
	}
	return *s && strspn(s, digits) == strlen(s);
}

/* YAML 1.2 core schema boolean; libcyaml takes anything it does not know as true. */
static bool yaml_bool(const char *s)
{
	static const char *const ok[] = { "true", "True", "TRUE", "false", "False", "FALSE" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(s, ok[i]) == 0)
			return true;
	return false;
}

/* Refuses integer and boolean fields whose text is not one (file:line: field: reason). */
static int check_scalar_types(const char *file, const struct line_index *ix,
			      const cyaml_schema_value_t *schema, char *err, size_t err_len)
{
	for (uint32_t i = 0; i < ix->n; i++) {
		const char *val = ix->value[i];
		const cyaml_schema_value_t *v = val ? schema_at(schema, ix->path[i]) : NULL;
		const char *want = NULL;
		if (v && (v->type == CYAML_UINT || v->type == CYAML_INT) && !yaml_int(val))
			want = "an integer";
		else if (v && v->type == CYAML_BOOL && !yaml_bool(val))
			want = "a boolean (true or false)";
		if (!want)
			continue;
		if (err)
			snprintf(err, err_len, "%s:%u: %s: '%.64s' is not %s", file, ix->line[i],
				 ix->path[i], val, want);
		return -RTCI_ERR_CONFIG_SYNTAX;
	}
	return 0;
}

/* Index the file, then load it with libcyaml; either step's error names file, line, field. */
static int load_yaml(struct loader *l, const cyaml_schema_value_t *schema, void **data)
{
	FILE *f = fopen(l->file, "r");
	if (!f) {
		int e = errno;
		if (l->err)
			snprintf(l->err, l->err_len, "%s:0: (file): cannot open: %s", l->file,
				 strerror(e));
		return -e;
	}
	uint32_t line = 0;
	char msg[256] = "", path[PATH_LEN] = "";
	int rc = index_build(f, &l->ix, &line, msg, sizeof(msg), path);
	fclose(f);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		if (l->err)
			snprintf(l->err, l->err_len, "%s:%u: %s: %s", l->file, line, path, msg);
		return rc;
	}
	if ((rc = check_scalar_types(l->file, &l->ix, schema, l->err, l->err_len)) < 0)
		return rc;

	struct cyaml_capture cap = { 0 };
	cyaml_config_t cc;
	cyaml_err_t ce = cyaml_load_file(l->file, cyaml_cfg(&cap, &cc), schema, (cyaml_data_t **)data,
					 NULL);
	if (ce == CYAML_OK && *data)
		return 0;
	if (ce == CYAML_OK) { /* an empty document loads as nothing */
		if (l->err)
			snprintf(l->err, l->err_len, "%s:1: (document): empty file", l->file);
		return -RTCI_ERR_CONFIG_SYNTAX;
	}
	if (ce == CYAML_ERR_OOM)
		return -ENOMEM;
	cyaml_describe(&cap, &l->ix, path, &line);
	if (l->err)
		snprintf(l->err, l->err_len, "%s:%u: %s: %s", l->file, line, path,
			 cap.have_first ? cap.first : cyaml_strerror(ce));
	return -RTCI_ERR_CONFIG_SYNTAX;
}

static int range_u32(struct loader *l, const char *path, const unsigned *v, uint32_t def,
		     uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint32_t x = v ? *v : def;
	if (x < lo || x > hi)
		return fail(l, path, "%u out of range [%u, %u]", x, lo, hi);
	*out = x;
	return 0;
}

static int parse_hex_key(const char *s, uint8_t out[RTCI_CONFIG_KEY_BYTES])
{
	if (strlen(s) != 2 * RTCI_CONFIG_KEY_BYTES)
		return -1;
	for (int i = 0; i < RTCI_CONFIG_KEY_BYTES; i++) {
		int hi = s[2 * i], lo = s[2 * i + 1];
		if (!isxdigit(hi) || !isxdigit(lo))
			return -1;
		hi = isdigit(hi) ? hi - '0' : tolower(hi) - 'a' + 10;
		lo = isdigit(lo) ? lo - '0' : tolower(lo) - 'a' + 10;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_policy(const char *s, enum rtci_config_policy *p)
{
	if (strcmp(s, "mpc") == 0)
		*p = RTCI_POLICY_MPC;
	else if (strcmp(s, "fixed") == 0)
		*p = RTCI_POLICY_FIXED;
	else if (strcmp(s, "rate") == 0)
		*p = RTCI_POLICY_RATE;
	else
		return -1;
	return 0;
}

const char *rtci_config_policy_name(enum rtci_config_policy p)
{
	switch (p) {
	case RTCI_POLICY_MPC: return "mpc";
	case RTCI_POLICY_FIXED: return "fixed";
	case RTCI_POLICY_RATE: return "rate";
	default: return "default";
	}
}

/* Resolves a relative path against the folder of the file that names it. */
static int resolve(const char *base_file, const char *p, char *out, size_t len)
{
	if (p[0] == '/' || !strchr(base_file, '/'))
		return snprintf(out, len, "%s", p) >= (int)len ? -1 : 0;
	int dir = (int)(strrchr(base_file, '/') - base_file);
	return snprintf(out, len, "%.*s/%s", dir, base_file, p) >= (int)len ? -1 : 0;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= RTCI_CONFIG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return 0;
	return 1;
}

static int add_arg(struct rtci_gateway_config *c, const char *a)
{
	char **v = realloc(c->eal_argv, (size_t)(c->eal_argc + 2) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->eal_argv = v;
	if (!(v[c->eal_argc] = strdup(a)))
		return -ENOMEM;
	v[++c->eal_argc] = NULL;
	return 0;
}

/* cluster: absent or without etcd endpoints, the gateway stands alone. */
static int convert_cluster(struct loader *l, const struct y_cluster *y,
			   struct rtci_gateway_config *c)
{
	int rc;
	c->cluster.enabled = y && y->etcd && y->etcd[0];
	snprintf(c->cluster.prefix, sizeof(c->cluster.prefix), "%s",
		 y && y->prefix ? y->prefix : "/rtci/");
	if ((rc = range_u32(l, "cluster.lease_ttl_s", y ? y->lease_ttl_s : NULL, 3, 1, 60,
			    &c->cluster.lease_ttl_s)) < 0)
		return rc;
	c->cluster.address = c->port.ipv4;
	if (!c->cluster.enabled)
		return 0;
	if (strlen(y->etcd) >= sizeof(c->cluster.etcd) || strncmp(y->etcd, "http", 4) != 0)
		return fail(l, "cluster.etcd", "'%s': comma-separated http:// URLs, under %zu characters",
			    y->etcd, sizeof(c->cluster.etcd));
	snprintf(c->cluster.etcd, sizeof(c->cluster.etcd), "%s", y->etcd);
	if (!y->id || !name_ok(y->id))
		return fail(l, "cluster.id", "required with cluster.etcd: 1-%d characters of "
			    "[A-Za-z0-9._-]", RTCI_CONFIG_NAME_MAX - 1);
	snprintf(c->cluster.id, sizeof(c->cluster.id), "%s", y->id);
	if (c->cluster.prefix[0] != '/' || strlen(c->cluster.prefix) > 100)
		return fail(l, "cluster.prefix", "'%s': must start with / (at most 100 characters)",
			    c->cluster.prefix);
	if (y->address) {
		struct in_addr a;
		if (inet_pton(AF_INET, y->address, &a) != 1)
			return fail(l, "cluster.address", "'%s' is not a dotted IPv4 address",
				    y->address);
		c->cluster.address = ntohl(a.s_addr);
	}
	return 0;
}

/* port: the DPDK port, its queues, address and UDP port */
static int convert_port(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	uint32_t v = 0;
	const struct y_port *p = y->port;
	if (p->vdev && snprintf(c->port.vdev, sizeof(c->port.vdev), "%s", p->vdev) >=
			       (int)sizeof(c->port.vdev))
		return fail(l, "port.vdev", "longer than %zu characters", sizeof(c->port.vdev) - 1);
	if ((rc = range_u32(l, "port.rx_queues", p->rx_queues, 1, 1, 64, &v)) < 0)
		return rc;
	c->port.rx_queues = (uint16_t)v;
	if ((rc = range_u32(l, "port.tx_queues", p->tx_queues, c->port.rx_queues, 1, 64, &v)) < 0)
		return rc;
	c->port.tx_queues = (uint16_t)v;
	if ((rc = range_u32(l, "port.rx_descriptors", p->rx_descriptors, 1024, 64, 16384, &v)) < 0)
		return rc;
	c->port.rx_descriptors = (uint16_t)v;
	if ((rc = range_u32(l, "port.tx_descriptors", p->tx_descriptors, 1024, 64, 16384, &v)) < 0)
		return rc;
	c->port.tx_descriptors = (uint16_t)v;
	if ((rc = range_u32(l, "port.mbufs", p->mbufs, 16383, 1023, 16777215, &c->port.mbufs)) < 0)
		return rc;
	if ((rc = range_u32(l, "port.mbuf_cache", p->mbuf_cache, 256, 0, 512,
			    &c->port.mbuf_cache)) < 0)
		return rc;
	if ((rc = range_u32(l, "port.udp_port", p->udp_port, 47000, 1, 65535, &v)) < 0)
		return rc;
	c->port.udp_port = (uint16_t)v;
	if ((rc = range_u32(l, "port.neighbors", p->neighbors, 4096, 16, 1048576,
			    &c->port.neighbors)) < 0)
		return rc;
	struct in_addr a;
	if (inet_pton(AF_INET, p->ipv4, &a) != 1)
		return fail(l, "port.ipv4", "'%s' is not a dotted IPv4 address", p->ipv4);
	c->port.ipv4 = ntohl(a.s_addr);
	if (c->port.ipv4 == 0 || (c->port.ipv4 >> 28) >= 14)
		return fail(l, "port.ipv4", "'%s' is not a unicast address", p->ipv4);
	if (p->mac) {
		unsigned m[6];
		char tail;
		if (sscanf(p->mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
			   &m[5], &tail) != 6 || strlen(p->mac) != 17)
			return fail(l, "port.mac", "'%s' is not a MAC address aa:bb:cc:dd:ee:ff", p->mac);
		if (m[0] & 1)
			return fail(l, "port.mac", "'%s' is a multicast address", p->mac);
		for (int i = 0; i < 6; i++)
			c->port.mac[i] = (uint8_t)m[i];
		c->port.mac_set = true;
	}
	return 0;
}

/* lcores: one role per lcore, no more RX lcores than RX queues */
static int convert_lcores(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	uint32_t v = 0;
	char path[PATH_LEN];
	uint8_t used[RTCI_CONFIG_LCORE_LIMIT] = { 0 };
	const struct y_lcores *lc = y->lcores;
	if ((rc = range_u32(l, "lcores.main", lc ? lc->main : NULL, 0, 0,
			    RTCI_CONFIG_LCORE_LIMIT - 1, &c->lcores.main)) < 0)
		return rc;
	used[c->lcores.main] = 1;
	for (unsigned i = 0; lc && i < lc->rx_count; i++) {
		snprintf(path, sizeof(path), "lcores.rx[%u]", i);
		if ((rc = range_u32(l, path, &lc->rx[i], 0, 0, RTCI_CONFIG_LCORE_LIMIT - 1, &v)) < 0)
			return rc;
		if (used[v]++)
			return fail(l, path, "lcore %u has two roles", v);
		c->lcores.rx[c->lcores.rx_count++] = v;
	}
	for (unsigned i = 0; lc && i < lc->workers_count; i++) {
		snprintf(path, sizeof(path), "lcores.workers[%u]", i);
		if ((rc = range_u32(l, path, &lc->workers[i], 0, 0, RTCI_CONFIG_LCORE_LIMIT - 1,
				    &v)) < 0)
			return rc;
		if (used[v]++)
			return fail(l, path, "lcore %u has two roles", v);
		c->lcores.workers[c->lcores.worker_count++] = v;
	}
	if (c->lcores.rx_count > c->port.rx_queues)
		return fail(l, "lcores.rx", "%u RX lcores but only %u RX queues", c->lcores.rx_count,
			    c->port.rx_queues);
	return 0;
}

/* The tail's precision (inference/engine.h); absent: auto. */
static int parse_precision(const char *s, enum rtci_tail_precision *p)
{
	static const struct { const char *name; enum rtci_tail_precision p; } t[] = {
		{ "auto", RTCI_PRECISION_AUTO }, { "fp32", RTCI_PRECISION_FP32 }, { "int8", RTCI_PRECISION_INT8 },
	};
	*p = RTCI_PRECISION_AUTO;
	for (size_t i = 0; s && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0) {
			*p = t[i].p;
			return 0;
		}
	return s ? -EINVAL : 0;
}

/* models: unique names, files resolved against the gateway file */
static int convert_models(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	char path[PATH_LEN];
	c->models = calloc(y->models_count, sizeof(*c->models));
	if (!c->models)
		return -ENOMEM;
	for (unsigned i = 0; i < y->models_count; i++) {
		snprintf(path, sizeof(path), "models[%u].name", i);
		if (!name_ok(y->models[i].name))
			return fail(l, path, "'%s': 1-%d characters of [A-Za-z0-9._-]",
				    y->models[i].name, RTCI_CONFIG_NAME_MAX - 1);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(c->models[j].name, y->models[i].name) == 0)
				return fail(l, path, "duplicate model name '%s'", y->models[i].name);
		snprintf(c->models[i].name, sizeof(c->models[i].name), "%s", y->models[i].name);
		snprintf(path, sizeof(path), "models[%u].file", i);
		if (!y->models[i].file[0] ||
		    resolve(l->file, y->models[i].file, c->models[i].path, sizeof(c->models[i].path)))
			return fail(l, path, "empty or too long");
		/* the file is read later (main): its errors still name this line */
		c->models[i].line = index_line(&l->ix, path);
		snprintf(path, sizeof(path), "models[%u].precision", i);
		if (parse_precision(y->models[i].precision, &c->models[i].precision))
			return fail(l, path, "'%s' is not one of fp32, int8, auto", y->models[i].precision);
		c->model_count++;
	}
	return 0;
}

/* batching */
static int convert_batching(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	const struct y_batching *b = y->batching;
	if ((rc = range_u32(l, "batching.max_batch", b ? b->max_batch : NULL, 8, 1, 256,
			    &c->batching.max_batch)) < 0)
		return rc;
	if ((rc = range_u32(l, "batching.max_wait_us", b ? b->max_wait_us : NULL, 2000, 0, 1000000,
			    &c->batching.max_wait_us)) < 0)
		return rc;
	if ((rc = range_u32(l, "batching.queue_capacity", b ? b->queue_capacity : NULL, 1024, 1,
			    1048576, &c->batching.queue_capacity)) < 0)
		return rc;
	if ((rc = range_u32(l, "batching.deadline_margin_pct", b ? b->deadline_margin_pct : NULL, 10,
			    0, 50, &c->batching.deadline_margin_pct)) < 0)
		return rc;
	if (c->batching.queue_capacity < c->batching.max_batch)
		return fail(l, "batching.queue_capacity", "%u is smaller than max_batch %u",
			    c->batching.queue_capacity, c->batching.max_batch);
	return 0;
}

/* control: the default policy and the latency model */
static int convert_control(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	const struct y_control *ct = y->control;
	c->control.policy = RTCI_POLICY_MPC;
	if (ct && ct->policy && parse_policy(ct->policy, &c->control.policy))
		return fail(l, "control.policy", "'%s' is not one of mpc, fixed, rate", ct->policy);
	if ((rc = range_u32(l, "control.horizon", ct ? ct->horizon : NULL, 5, 1, 10,
			    &c->control.horizon)) < 0)
		return rc;
	if ((rc = range_u32(l, "control.fixed_setup", ct ? ct->fixed_setup : NULL, 0, 0, 255,
			    &c->control.fixed_setup)) < 0)
		return rc;
	if ((rc = range_u32(l, "control.head_us", ct ? ct->head_us : NULL, 5000, 0, 1000000,
			    &c->control.head_us)) < 0)
		return rc;
	if ((rc = range_u32(l, "control.rtt_us", ct ? ct->rtt_us : NULL, 20000, 0, 1000000,
			    &c->control.rtt_us)) < 0)
		return rc;
	if ((rc = range_u32(l, "control.min_gain_per_10k", ct ? ct->min_gain_per_10k : NULL, 20, 0,
			    1000, &c->control.min_gain_per_10k)) < 0)
		return rc;
	return 0;
}

/* admission */
static int convert_admission(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	const struct y_admission *ad = y->admission;
	c->admission.enabled = ad && ad->enabled ? *ad->enabled != 0 : true;
	if ((rc = range_u32(l, "admission.headroom_pct", ad ? ad->headroom_pct : NULL, 20, 0, 90,
			    &c->admission.headroom_pct)) < 0)
		return rc;
	if ((rc = range_u32(l, "admission.capacity_fps", ad ? ad->capacity_fps : NULL, 0, 0,
			    10000000, &c->admission.capacity_fps)) < 0)
		return rc;
	if ((rc = range_u32(l, "admission.idle_timeout_ms", ad ? ad->idle_timeout_ms : NULL, 5000,
			    100, 3600000, &c->admission.idle_timeout_ms)) < 0)
		return rc;
	if ((rc = range_u32(l, "admission.retry_after_ms", ad ? ad->retry_after_ms : NULL, 2000, 1,
			    65535, &c->admission.retry_after_ms)) < 0)
		return rc;
	return 0;
}

/* metrics endpoint and summary interval */
static int convert_metrics(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	uint32_t v = 0;
	struct in_addr a;
	const struct y_metrics *m = y->metrics;
	c->metrics.enabled = m && m->enabled ? *m->enabled != 0 : true;
	snprintf(c->metrics.listen, sizeof(c->metrics.listen), "%s",
		 m && m->listen ? m->listen : "127.0.0.1");
	if (inet_pton(AF_INET, c->metrics.listen, &a) != 1)
		return fail(l, "metrics.listen", "'%s' is not a dotted IPv4 address",
			    c->metrics.listen);
	if ((rc = range_u32(l, "metrics.port", m ? m->port : NULL, 9464, 0, 65535, &v)) < 0)
		return rc;
	c->metrics.port = (uint16_t)v;
	if ((rc = range_u32(l, "metrics.summary_interval_s", m ? m->summary_interval_s : NULL, 10,
			    0, 3600, &c->metrics.summary_interval_s)) < 0)
		return rc;
	return 0;
}

/* EAL arguments: eal.args or the defaults, a file prefix unique per process, the vdev */
static int convert_eal(struct loader *l, const struct y_gateway *y, struct rtci_gateway_config *c)
{
	int rc;
	char path[PATH_LEN];
	const struct y_eal *e = y->eal;
	if (e && e->file_prefix) {
		if (!name_ok(e->file_prefix))
			return fail(l, "eal.file_prefix", "'%s': 1-%d characters of [A-Za-z0-9._-]",
				    e->file_prefix, RTCI_CONFIG_NAME_MAX - 1);
		snprintf(c->file_prefix, sizeof(c->file_prefix), "%s", e->file_prefix);
	} else {
		/* unique per process so several gateways and tests can run side by side */
		snprintf(c->file_prefix, sizeof(c->file_prefix), "rtci-gw-%ld", (long)getpid());
	}
	if ((rc = add_arg(c, "rtci-gateway")) < 0)
		return rc;
	static const char *const defaults[] = { "--no-huge", "-m", "1024", "--no-pci" };
	if (e && e->args) {
		for (unsigned i = 0; i < e->args_count; i++) {
			if (strcmp(e->args[i], "--file-prefix") == 0) {
				snprintf(path, sizeof(path), "eal.args[%u]", i);
				return fail(l, path, "set eal.file_prefix instead");
			}
			if ((rc = add_arg(c, e->args[i])) < 0)
				return rc;
		}
	} else {
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			if ((rc = add_arg(c, defaults[i])) < 0)
				return rc;
	}
	if ((rc = add_arg(c, "--file-prefix")) < 0 || (rc = add_arg(c, c->file_prefix)) < 0)
		return rc;
	if (c->port.vdev[0] && ((rc = add_arg(c, "--vdev")) < 0 || (rc = add_arg(c, c->port.vdev)) < 0))
		return rc;
	return 0;
}

static int convert_gateway(struct loader *l, const struct y_gateway *y,
			   struct rtci_gateway_config *c)
{
	int rc;
	snprintf(c->source, sizeof(c->source), "%s", l->file);
	if ((rc = convert_port(l, y, c)) < 0 || (rc = convert_lcores(l, y, c)) < 0 ||
	    (rc = convert_models(l, y, c)) < 0 || (rc = convert_batching(l, y, c)) < 0 ||
	    (rc = convert_control(l, y, c)) < 0 || (rc = convert_admission(l, y, c)) < 0 ||
	    (rc = convert_cluster(l, y->cluster, c)) < 0 || (rc = convert_metrics(l, y, c)) < 0)
		return rc;
	if (!y->tenants_file[0] ||
	    resolve(l->file, y->tenants_file, c->tenants_file, sizeof(c->tenants_file)))
		return fail(l, "tenants_file", "empty or too long");
	return convert_eal(l, y, c);
}

int rtci_config_load_gateway(const char *path, struct rtci_gateway_config **out, char *err,
			     size_t err_len)
{
	if (!path || !out)
		return -EINVAL;
	struct loader l = { .file = path, .err = err, .err_len = err_len };
	struct y_gateway *y = NULL;
	cyaml_config_t cc;
	struct cyaml_capture cap = { 0 };

	if (err && err_len)
		err[0] = '\0';
	int rc = load_yaml(&l, &gateway_schema, (void **)&y);
	if (rc == 0) {
		struct rtci_gateway_config *c = calloc(1, sizeof(*c));
		if (!c)
			rc = -ENOMEM;
		else if ((rc = convert_gateway(&l, y, c)) < 0)
			rtci_config_free_gateway(c);
		else
			*out = c;
		cyaml_free(cyaml_cfg(&cap, &cc), &gateway_schema, y, 0);
	}
	index_free(&l.ix);
	return rc;
}

void rtci_config_free_gateway(struct rtci_gateway_config *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->eal_argc; i++)
		free(c->eal_argv[i]);
	free(c->eal_argv);
	free(c->models);
	free(c);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int convert_tenant(struct loader *l, unsigned ti, const struct y_tenant *y,
			  struct rtci_config_tenant *t)
{
	char path[PATH_LEN];
	int rc;

#define TP(field) (snprintf(path, sizeof(path), "tenants[%u].%s", ti, field), path)
	if (y->id == 0) /* 0 is no tenant on the wire */
		return fail(l, TP("id"), "0 out of range [1, 4294967295]");
	t->id = y->id;
	if (!name_ok(y->name))
		return fail(l, TP("name"), "'%s': 1-%d characters of [A-Za-z0-9._-]", y->name,
			    RTCI_CONFIG_NAME_MAX - 1);
	snprintf(t->name, sizeof(t->name), "%s", y->name);
	if (parse_hex_key(y->key, t->key))
		return fail(l, TP("key"), "must be %d hex characters (%d bytes)",
			    2 * RTCI_CONFIG_KEY_BYTES, RTCI_CONFIG_KEY_BYTES);
	if ((rc = range_u32(l, TP("deadline_ms"), &y->deadline_ms, 0, 1, 60000, &t->deadline_ms)) < 0)
		return rc;
	if ((rc = range_u32(l, TP("fps"), &y->fps, 0, 1, 1000, &t->fps)) < 0)
		return rc;
	if ((rc = range_u32(l, TP("weight"), y->weight, 1, 1, 1000, &t->weight)) < 0)
		return rc;
	if ((rc = range_u32(l, TP("reserved_fps"), y->reserved_fps, 0, 0, 10000000,
			    &t->reserved_fps)) < 0)
		return rc;
	t->policy = RTCI_POLICY_DEFAULT;
	if (y->policy && parse_policy(y->policy, &t->policy))
		return fail(l, TP("policy"), "'%s' is not one of mpc, fixed, rate", y->policy);
	const struct y_quotas *q = y->quotas;
	if ((rc = range_u32(l, TP("quotas.devices"), q ? q->devices : NULL, 1024, 1, 1000000,
			    &t->quota.devices)) < 0)
		return rc;
	if ((rc = range_u32(l, TP("quotas.frames_per_s"), q ? q->frames_per_s : NULL, 10000, 1,
			    10000000, &t->quota.frames_per_s)) < 0)
		return rc;
	t->quota.reassembly_bytes = q && q->reassembly_bytes ? *q->reassembly_bytes : 64u << 20;
	if (t->quota.reassembly_bytes < 65536 || t->quota.reassembly_bytes > (16ull << 30))
		return fail(l, TP("quotas.reassembly_bytes"), "%" PRIu64 " out of range [65536, %llu]",
			    t->quota.reassembly_bytes, 16ull << 30);

	if (y->derive) {
		if (y->derive->first > y->derive->last)
			return fail(l, TP("derive.first"), "first %u is after last %u", y->derive->first,
				    y->derive->last);
		t->derive = true;
		t->derive_first = y->derive->first;
		t->derive_last = y->derive->last;
	}
	if (y->devices_count) {
		t->devices = calloc(y->devices_count, sizeof(*t->devices));
		uint32_t *ids = calloc(y->devices_count, sizeof(*ids));
		if (!t->devices || !ids) {
			free(ids);
			return -ENOMEM;
		}
		for (unsigned i = 0; i < y->devices_count; i++) {
			char f[64];
			struct rtci_config_device *d = &t->devices[i];
			d->id = y->devices[i].id;
			snprintf(f, sizeof(f), "devices[%u].id", i);
			if (t->derive && d->id >= t->derive_first && d->id <= t->derive_last) {
				free(ids);
				return fail(l, TP(f), "device %u is also in the derive range [%u, %u]",
					    d->id, t->derive_first, t->derive_last);
			}
			if (y->devices[i].key) {
				snprintf(f, sizeof(f), "devices[%u].key", i);
				if (parse_hex_key(y->devices[i].key, d->key)) {
					free(ids);
					return fail(l, TP(f), "must be %d hex characters (%d bytes)",
						    2 * RTCI_CONFIG_KEY_BYTES, RTCI_CONFIG_KEY_BYTES);
				}
				d->key_set = true;
			}
			ids[i] = d->id;
			t->device_count++;
		}
		qsort(ids, y->devices_count, sizeof(*ids), cmp_u32);
		for (unsigned i = 1; i < y->devices_count; i++) {
			if (ids[i] != ids[i - 1])
				continue;
			/* report the second occurrence in file order */
			unsigned seen = 0, at = 0;
			for (unsigned j = 0; j < y->devices_count; j++)
				if (y->devices[j].id == ids[i] && seen++ == 1)
					at = j;
			uint32_t dup = ids[i];
			free(ids);
			char f[64];
			snprintf(f, sizeof(f), "devices[%u].id", at);
			return fail(l, TP(f), "duplicate device id %u", dup);
		}
		free(ids);
	}
	return 0;
#undef TP
}

int rtci_config_load_tenants(const char *path, struct rtci_tenants_config **out, char *err,
			     size_t err_len)
{
	if (!path || !out)
		return -EINVAL;
	struct loader l = { .file = path, .err = err, .err_len = err_len };
	struct y_tenants *y = NULL;
	cyaml_config_t cc;
	struct cyaml_capture cap = { 0 };

	if (err && err_len)
		err[0] = '\0';
	int rc = load_yaml(&l, &tenants_schema, (void **)&y);
	if (rc == 0) {
		struct rtci_tenants_config *t = calloc(1, sizeof(*t));
		if (!t) {
			rc = -ENOMEM;
			goto done;
		}
		snprintf(t->source, sizeof(t->source), "%s", path);
		if (y->tenants_count) {
			t->tenants = calloc(y->tenants_count, sizeof(*t->tenants));
			if (!t->tenants) {
				rc = -ENOMEM;
				rtci_config_free_tenants(t);
				goto done;
			}
		}
		for (unsigned i = 0; i < y->tenants_count && rc == 0; i++) {
			rc = convert_tenant(&l, i, &y->tenants[i], &t->tenants[i]);
			t->count++;
			for (unsigned j = 0; rc == 0 && j < i; j++) {
				char p[64];
				if (t->tenants[j].id == t->tenants[i].id) {
					snprintf(p, sizeof(p), "tenants[%u].id", i);
					rc = fail(&l, p, "duplicate tenant id %u", t->tenants[i].id);
				} else if (strcmp(t->tenants[j].name, t->tenants[i].name) == 0) {
					snprintf(p, sizeof(p), "tenants[%u].name", i);
					rc = fail(&l, p, "duplicate tenant name '%s'", t->tenants[i].name);
				}
			}
		}
		if (rc < 0)
			rtci_config_free_tenants(t);
		else
			*out = t;
	done:
		cyaml_free(cyaml_cfg(&cap, &cc), &tenants_schema, y, 0);
	}
	index_free(&l.ix);
	return rc;
}

void rtci_config_free_tenants(struct rtci_tenants_config *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->count; i++)
		free(t->tenants[i].devices);
	free(t->tenants);
	free(t);
}

const struct rtci_config_tenant *rtci_config_find_tenant(const struct rtci_tenants_config *t,
							 uint32_t id)
{
	for (uint32_t i = 0; t && i < t->count; i++)
		if (t->tenants[i].id == id)
			return &t->tenants[i];
	return NULL;
}

bool rtci_config_tenant_has_device(const struct rtci_config_tenant *t, uint32_t id,
				   const struct rtci_config_device **dev)
{
	if (dev)
		*dev = NULL;
	if (!t)
		return false;
	for (uint32_t i = 0; i < t->device_count; i++) {
		if (t->devices[i].id == id) {
			if (dev)
				*dev = &t->devices[i];
			return true;
		}
	}
	return t->derive && id >= t->derive_first && id <= t->derive_last;
}

void rtci_config_model_error(const struct rtci_gateway_config *cfg, uint32_t k, const char *reason,
			     char *err, size_t err_len)
{
	uint32_t line = k < cfg->model_count && cfg->models[k].line ? cfg->models[k].line : 1;
	snprintf(err, err_len, "%s:%u: models[%u].file: %s", cfg->source, line, k, reason);
}
