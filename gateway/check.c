/* rtci-gateway --check-config: everything start-up checks before it touches DPDK (gateway file,
 * lcore layout, model files and their controller tables, tenants file and each tenant's
 * controllers), then a summary an operator can compare with what they meant. No EAL, no port,
 * no metrics endpoint: it runs anywhere, also next to a running gateway before a reload. */
#include "gateway/gw.h"
#include "gateway/check.h"
#include "gateway/control_glue.h"

#include <stdlib.h>

int gw_check_lcores(const struct rtci_gateway_config *cfg, char *err, size_t errlen)
{
	uint32_t nrx = cfg->lcores.rx_count, nw = cfg->lcores.worker_count;
	if (nrx < 1 || nw < 1 || nrx > GW_MAX_RX || nw > GW_MAX_WORKERS ||
	    nrx != cfg->port.rx_queues) {
		snprintf(err, errlen,
			 "%s: lcores: need 1..%d RX lcores, one per port.rx_queues (%u), and 1..%d "
			 "workers (have %u RX, %u workers)",
			 cfg->source, GW_MAX_RX, cfg->port.rx_queues, GW_MAX_WORKERS, nrx, nw);
		return -RTCI_ERR_CONFIG_INVALID;
	}
	return 0;
}

static void print_lcores(FILE *out, const char *what, const uint32_t *ids, uint32_t n)
{
	fprintf(out, ", %s [", what);
	for (uint32_t i = 0; i < n; i++)
		fprintf(out, "%s%u", i ? " " : "", ids[i]);
	fputc(']', out);
}

/* Builds the tenant's controllers for every model, as a table build does, and drops them. */
static int check_tenant(struct gw *gw, const struct rtci_config_tenant *c, char *err, size_t errlen)
{
	struct gw_tenant tn = { .cfg = c, .id = c->id };
	int rc = gw_ctl_policies_create(gw, &tn, err, errlen);
	gw_ctl_policies_destroy(gw, &tn);
	return rc;
}

static void summary(const struct gw *gw, const struct rtci_tenants_config *tc, FILE *out)
{
	const struct rtci_gateway_config *cfg = gw->cfg;
	char ip[16];
	uint32_t a = cfg->port.ipv4;
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	fprintf(out, "port: %s, %s udp %u, %u RX queues\n",
		cfg->port.vdev[0] ? cfg->port.vdev : "first probed port", ip, cfg->port.udp_port,
		cfg->port.rx_queues);
	fprintf(out, "lcores: main %u", cfg->lcores.main);
	print_lcores(out, "rx", cfg->lcores.rx, cfg->lcores.rx_count);
	print_lcores(out, "workers", cfg->lcores.workers, cfg->lcores.worker_count);
	fputc('\n', out);
	for (uint32_t k = 0; k < gw->nmodels; k++) {
		const struct gw_model *m = &gw->models[k];
		fprintf(out, "model %u %s: %s, geometry %s, %d classes, %d setups, %d groups, "
			     "largest frame %u bytes\n",
			k, m->name, cfg->models[k].path, m->geo->name, m->geo->classes, m->setups,
			m->groups, m->max_frame);
	}
	uint64_t devices = 0, reserved = 0;
	for (uint32_t i = 0; i < tc->count; i++) {
		const struct rtci_config_tenant *t = &tc->tenants[i];
		uint64_t n = t->device_count;
		if (t->derive)
			n += (uint64_t)t->derive_last - t->derive_first + 1;
		devices += n;
		reserved += t->reserved_fps;
		enum rtci_config_policy p = t->policy ? t->policy : cfg->control.policy;
		fprintf(out, "tenant %u %s: %llu devices (%u listed", t->id, t->name,
			(unsigned long long)n, t->device_count);
		if (t->derive)
			fprintf(out, ", derived %u..%u", t->derive_first, t->derive_last);
		fprintf(out, "), quota %u active, %u fps, deadline %u ms, policy %s, weight %u, "
			     "reserved %u fps\n",
			t->quota.devices, t->fps, t->deadline_ms, rtci_config_policy_name(p), t->weight,
			t->reserved_fps);
	}
	fprintf(out, "tenants: %u in %s, %llu devices\n", tc->count, tc->source,
		(unsigned long long)devices);
	if (!cfg->admission.enabled)
		fprintf(out, "capacity: admission off (every hello within quota is accepted)\n");
	else if (cfg->admission.capacity_fps)
		fprintf(out, "capacity: %u frames/s configured (admission.capacity_fps), %u%% headroom: "
			     "admits %.0f frames/s; reserved %llu\n",
			cfg->admission.capacity_fps, cfg->admission.headroom_pct,
			cfg->admission.capacity_fps * (100.0 - cfg->admission.headroom_pct) / 100.0,
			(unsigned long long)reserved);
	else
		fprintf(out, "capacity: measured at start-up (tail of model %s on %u workers), %u%% "
			     "headroom; reserved %llu frames/s\n",
			gw->models[0].name, cfg->lcores.worker_count, cfg->admission.headroom_pct,
			(unsigned long long)reserved);
	if (cfg->metrics.enabled)
		fprintf(out, "metrics: http://%s:%u/metrics\n", cfg->metrics.listen, cfg->metrics.port);
	else
		fprintf(out, "metrics: off\n");
	if (cfg->cluster.enabled) {
		a = cfg->cluster.address;
		snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			 a & 255);
		fprintf(out, "cluster: member %s at %s, etcd %s, prefix %s (the tenants in etcd replace "
			     "the file's once read)\n",
			cfg->cluster.id, ip, cfg->cluster.etcd, cfg->cluster.prefix);
	} else {
		fprintf(out, "cluster: off\n");
	}
}

int gw_check_config(const char *path, FILE *out, FILE *errf)
{
	static struct gw gwst; /* large (per-lcore state); only cfg and models are used here */
	struct gw *gw = &gwst;
	struct rtci_tenants_config *tc = NULL;
	char err[RTCI_CONFIG_PATH_MAX + 600] = ""; /* tenants file: reason */
	int status = 1;
	int rc = rtci_config_load_gateway(path, &gw->cfg, err, sizeof(err));
	if (rc < 0)
		goto out;
	if ((rc = gw_check_lcores(gw->cfg, err, sizeof(err))) < 0)
		goto out;
	gw->nrx = gw->cfg->lcores.rx_count;
	gw->nworkers = gw->cfg->lcores.worker_count;
	if ((rc = gw_models_load(gw, err, sizeof(err))) < 0)
		goto out;
	if ((rc = rtci_config_load_tenants(gw->cfg->tenants_file, &tc, err, sizeof(err))) < 0)
		goto out;
	for (uint32_t i = 0; i < tc->count; i++) {
		char terr[512];
		if ((rc = check_tenant(gw, &tc->tenants[i], terr, sizeof(terr))) < 0) {
			snprintf(err, sizeof(err), "%s: %s", gw->cfg->tenants_file, terr);
			goto out;
		}
	}
	fprintf(out, "rtci-gateway: %s: ok\n", path);
	summary(gw, tc, out);
	status = 0;
out:
	if (status)
		fprintf(errf, "rtci-gateway: %s\n", err[0] ? err : rtci_strerror(rc));
	gw_models_free(gw);
	rtci_config_free_tenants(tc);
	rtci_config_free_gateway(gw->cfg);
	return status;
}
