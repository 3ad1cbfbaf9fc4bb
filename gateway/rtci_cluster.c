/* rtci-cluster: the cluster of gateways as etcd holds it.
 *
 *   rtci-cluster --etcd URLS [--prefix /rtci/] status
 *   rtci-cluster --etcd URLS [--prefix /rtci/] targets [--job NAME]
 *   rtci-cluster --etcd URLS [--prefix /rtci/] put-tenants FILE
 *   rtci-cluster --etcd URLS [--prefix /rtci/] home TENANT DEVICE
 *
 * status: members with address, state, admitted load and capacity. targets: Prometheus file_sd
 * JSON of the members' metrics endpoints (write it where file_sd_configs looks). put-tenants:
 * checks a tenants file with the gateway's own reader, then stores it for every gateway to load.
 * home: the member that placement gives a device now. docs/operations.md §8. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cluster/etcd.h"
#include "cluster/placement.h"
#include "common/rtci_error.h"
#include "gateway/config.h"

#define MAX_MEMBERS 64

struct member {
	struct rtci_member m;
	char ip[16], state[16], metrics[64];
	double capacity, load;
};

static int load_members(struct rtci_etcd *e, const char *prefix, struct member *out, int *n)
{
	char key[256];
	snprintf(key, sizeof(key), "%smembers/", prefix);
	struct rtci_etcd_kv *kv;
	size_t cnt;
	int rc = rtci_etcd_get_prefix(e, key, &kv, &cnt, NULL);
	if (rc < 0)
		return rc;
	*n = 0;
	for (size_t i = 0; i < cnt && *n < MAX_MEMBERS; i++) {
		json_t *j = json_loadb((const char *)kv[i].value, kv[i].len, 0, NULL);
		struct member *m = &out[*n];
		memset(m, 0, sizeof(*m));
		const char *ip = j ? json_string_value(json_object_get(j, "ipv4")) : NULL;
		const char *st = j ? json_string_value(json_object_get(j, "state")) : NULL;
		const char *mx = j ? json_string_value(json_object_get(j, "metrics")) : NULL;
		struct in_addr a;
		if (ip && st && inet_pton(AF_INET, ip, &a) == 1) {
			snprintf(m->m.id, sizeof(m->m.id), "%s", kv[i].key + strlen(key));
			snprintf(m->ip, sizeof(m->ip), "%s", ip);
			snprintf(m->state, sizeof(m->state), "%s", st);
			snprintf(m->metrics, sizeof(m->metrics), "%s", mx ? mx : "");
			m->capacity = json_number_value(json_object_get(j, "capacity_fps"));
			m->load = json_number_value(json_object_get(j, "load_fps"));
			m->m.ipv4 = ntohl(a.s_addr);
			m->m.port = (uint16_t)json_integer_value(json_object_get(j, "port"));
			double w = json_number_value(json_object_get(j, "weight"));
			m->m.weight = w > 0 ? w : 1;
			m->m.eligible = strcmp(st, "active") == 0 && (m->capacity <= 0 ||
								      m->load < m->capacity);
			m->m.id_hash = rtci_place_id_hash(m->m.id);
			(*n)++;
		} else {
			fprintf(stderr, "rtci-cluster: %s: not a member record, skipped\n", kv[i].key);
		}
		json_decref(j);
	}
	rtci_etcd_kvs_free(kv, cnt);
	return 0;
}

static int cmd_status(struct member *m, int n)
{
	double cap = 0, load = 0;
	printf("%-20s %-21s %-9s %12s %12s %6s\n", "member", "address", "state", "load_fps",
	       "capacity_fps", "use");
	for (int i = 0; i < n; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "%s:%u", m[i].ip, m[i].m.port);
		printf("%-20s %-21s %-9s %12.0f %12.0f %5.0f%%\n", m[i].m.id, addr, m[i].state,
		       m[i].load, m[i].capacity, m[i].capacity > 0 ? 100 * m[i].load / m[i].capacity : 0);
		cap += m[i].capacity;
		load += m[i].load;
	}
	printf("%d members, load %.0f of %.0f frames/s\n", n, load, cap);
	return 0;
}

static int cmd_targets(struct member *m, int n, const char *job)
{
	json_t *targets = json_array();
	for (int i = 0; i < n; i++)
		if (m[i].metrics[0] && strstr(m[i].metrics, ":0") == NULL)
			json_array_append_new(targets, json_string(m[i].metrics));
	json_t *doc = json_pack("[{s:o,s:{s:s}}]", "targets", targets, "labels", "job", job);
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	if (!text)
		return 1;
	printf("%s\n", text);
	free(text);
	return 0;
}

static int cmd_put_tenants(struct rtci_etcd *e, const char *prefix, const char *file)
{
	char err[RTCI_CONFIG_ERR_MAX] = "";
	struct rtci_tenants_config *tc = NULL;
	if (rtci_config_load_tenants(file, &tc, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtci-cluster: %s\n", err);
		return 1;
	}
	unsigned count = tc->count;
	rtci_config_free_tenants(tc);
	FILE *f = fopen(file, "rb");
	if (!f)
		return 1;
	static char text[16 << 20];
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	int big = !feof(f);
	fclose(f);
	if (big) {
		fprintf(stderr, "rtci-cluster: %s: larger than 16 MB\n", file);
		return 1;
	}
	char key[256];
	snprintf(key, sizeof(key), "%stenants", prefix);
	int rc = rtci_etcd_put(e, key, text, len, 0);
	if (rc < 0) {
		fprintf(stderr, "rtci-cluster: put %s: %s\n", key, rtci_strerror(rc));
		return 1;
	}
	printf("%u tenants from %s stored at %s\n", count, file, key);
	return 0;
}

static int cmd_home(struct member *m, int n, const char *tenant, const char *device)
{
	struct rtci_member v[MAX_MEMBERS];
	for (int i = 0; i < n; i++)
		v[i] = m[i].m;
	int h = rtci_place(v, (size_t)n, rtci_place_key((uint32_t)strtoul(tenant, NULL, 10),
							(uint32_t)strtoul(device, NULL, 10)));
	if (h < 0) {
		printf("no eligible member\n");
		return 1;
	}
	printf("%s %s:%u\n", m[h].m.id, m[h].ip, m[h].m.port);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rtci-cluster --etcd URLS [--prefix /rtci/] status | targets [--job NAME] "
		   "| put-tenants FILE | home TENANT DEVICE\n");
}

int main(int argc, char **argv)
{
	const char *etcd = NULL, *prefix = "/rtci/", *job = "rtci-gateway";
	static const struct option opts[] = {
		{ "etcd", required_argument, NULL, 'e' }, { "prefix", required_argument, NULL, 'p' },
		{ "job", required_argument, NULL, 'j' },  { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "e:p:j:h", opts, NULL)) != -1) {
		switch (o) {
		case 'e': etcd = optarg; break;
		case 'p': prefix = optarg; break;
		case 'j': job = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!etcd || optind >= argc || sodium_init() < 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	struct rtci_etcd *e;
	if (rtci_etcd_create(etcd, 2000, &e) < 0) {
		fprintf(stderr, "rtci-cluster: --etcd %s: not a list of URLs\n", etcd);
		return 2;
	}
	int status = 2;
	if (strcmp(cmd, "put-tenants") == 0 && optind + 2 == argc) {
		status = cmd_put_tenants(e, prefix, argv[optind + 1]);
	} else {
		static struct member m[MAX_MEMBERS];
		int n = 0, rc = load_members(e, prefix, m, &n);
		if (rc < 0) {
			fprintf(stderr, "rtci-cluster: %s: %s\n", etcd, rtci_strerror(rc));
			status = 1;
		} else if (strcmp(cmd, "status") == 0 && optind + 1 == argc) {
			status = cmd_status(m, n);
		} else if (strcmp(cmd, "targets") == 0 && optind + 1 == argc) {
			status = cmd_targets(m, n, job);
		} else if (strcmp(cmd, "home") == 0 && optind + 3 == argc) {
			status = cmd_home(m, n, argv[optind + 1], argv[optind + 2]);
		} else {
			usage(stderr);
		}
	}
	rtci_etcd_destroy(e);
	return status;
}
