#include "gateway/config.h"
#include "common/rtci_error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char path_buf[1024];

static const char *data(const char *name)
{
	const char *dir = getenv("RTCI_TEST_DATA");
	snprintf(path_buf, sizeof(path_buf), "%s/config/%s", dir ? dir : "tests/data", name);
	return path_buf;
}

static const char *example(const char *name)
{
	const char *dir = getenv("RTCI_CONFIGS");
	snprintf(path_buf, sizeof(path_buf), "%s/%s", dir ? dir : "configs", name);
	return path_buf;
}

Test(config, example_gateway_file)
{
	struct rtci_gateway_config *c = NULL;
	char err[RTCI_CONFIG_ERR_MAX];
	int rc = rtci_config_load_gateway(example("gateway.yaml"), &c, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_str_eq(c->port.vdev, "net_af_packet0,iface=veth-gw,qpairs=1");
	cr_expect_eq(c->port.rx_queues, 1);
	cr_expect_eq(c->port.mbufs, 16383);
	cr_expect_eq(c->port.ipv4, (10u << 24) | (77u << 16) | 1u);
	cr_expect_eq(c->port.udp_port, 47000);
	cr_expect_not(c->port.mac_set);
	cr_expect_eq(c->lcores.rx_count, 1);
	cr_expect_eq(c->lcores.rx[0], 1);
	cr_expect_eq(c->lcores.worker_count, 2);
	cr_expect_eq(c->lcores.workers[1], 3);
	cr_expect_eq(c->model_count, 2);
	cr_expect_str_eq(c->models[1].name, "fmnist");
	cr_expect(strstr(c->models[1].path, "configs/../models/fmnist.rtcim") != NULL, "%s",
		  c->models[1].path);
	cr_expect_eq(c->batching.max_batch, 8);
	cr_expect_eq(c->batching.max_wait_us, 2000);
	cr_expect_eq(c->batching.queue_capacity, 1024);
	cr_expect_eq(c->control.policy, RTCI_POLICY_MPC);
	cr_expect_eq(c->control.horizon, 5);
	cr_expect_eq(c->control.head_us, 5000);
	cr_expect_eq(c->control.rtt_us, 30000);
	cr_expect_eq(c->control.min_gain_per_10k, 20);
	cr_expect_eq(c->batching.deadline_margin_pct, 10);
	cr_expect(c->admission.enabled);
	cr_expect_eq(c->admission.headroom_pct, 20);
	cr_expect_eq(c->admission.capacity_fps, 0);
	cr_expect_eq(c->admission.idle_timeout_ms, 5000);
	cr_expect_eq(c->admission.retry_after_ms, 2000);
	cr_expect_str_eq(c->metrics.listen, "127.0.0.1");
	cr_expect_eq(c->metrics.port, 9464);
	cr_expect(strstr(c->tenants_file, "configs/tenants.yaml") != NULL);
	/* EAL argv: name, args, file prefix, vdev */
	cr_assert_eq(c->eal_argc, 9);
	cr_expect_str_eq(c->eal_argv[0], "rtci-gateway");
	cr_expect_str_eq(c->eal_argv[1], "--no-huge");
	cr_expect_str_eq(c->eal_argv[3], "1024");
	cr_expect_str_eq(c->eal_argv[5], "--file-prefix");
	cr_expect_str_eq(c->eal_argv[6], "rtci-gw");
	cr_expect_str_eq(c->eal_argv[7], "--vdev");
	cr_expect_str_eq(c->eal_argv[8], "net_af_packet0,iface=veth-gw,qpairs=1");
	cr_expect_null(c->eal_argv[9]);
	rtci_config_free_gateway(c);
}

Test(config, example_tenants_file)
{
	struct rtci_tenants_config *t = NULL;
	char err[RTCI_CONFIG_ERR_MAX];
	int rc = rtci_config_load_tenants(example("tenants.yaml"), &t, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(t->count, 2);
	const struct rtci_config_tenant *a = rtci_config_find_tenant(t, 1);
	cr_assert_not_null(a);
	cr_expect_str_eq(a->name, "city-traffic");
	cr_expect_eq(a->key[0], 0x5f);
	cr_expect_eq(a->key[31], 0xc4);
	cr_expect_eq(a->deadline_ms, 100);
	cr_expect_eq(a->fps, 10);
	cr_expect_eq(a->weight, 2);
	cr_expect_eq(a->policy, RTCI_POLICY_MPC);
	cr_expect_eq(a->quota.devices, 5000);
	cr_expect_eq(a->quota.frames_per_s, 50000);
	cr_expect_eq(a->quota.reassembly_bytes, 268435456ull);
	cr_expect(a->derive);
	cr_expect_eq(a->derive_first, 1000);
	cr_expect_eq(a->derive_last, 4999);
	cr_assert_eq(a->device_count, 2);
	cr_expect(a->devices[0].key_set);
	cr_expect_eq(a->devices[0].key[1], 0x11);
	cr_expect_not(a->devices[1].key_set);

	const struct rtci_config_device *d;
	cr_expect(rtci_config_tenant_has_device(a, 1, &d));
	cr_expect_eq(d, &a->devices[0]);
	cr_expect(rtci_config_tenant_has_device(a, 4999, &d));
	cr_expect_null(d);
	cr_expect_not(rtci_config_tenant_has_device(a, 5000, &d));
	cr_expect_not(rtci_config_tenant_has_device(a, 3, &d));

	const struct rtci_config_tenant *b = rtci_config_find_tenant(t, 2);
	cr_assert_not_null(b);
	cr_expect_eq(b->policy, RTCI_POLICY_FIXED);
	cr_expect_eq(b->weight, 1, "default weight");
	cr_expect_eq(b->reserved_fps, 0, "no reservation: a share by weight");
	cr_expect_eq(b->quota.reassembly_bytes, 64ull << 20, "default reassembly quota");
	cr_expect_null(rtci_config_find_tenant(t, 3));
	rtci_config_free_tenants(t);
}

Test(config, defaults_for_optional_sections)
{
	struct rtci_gateway_config *c = NULL;
	char err[RTCI_CONFIG_ERR_MAX];
	cr_assert_eq(rtci_config_load_gateway(data("gw-minimal.yaml"), &c, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(c->port.rx_queues, 1);
	cr_expect_eq(c->port.tx_queues, 1);
	cr_expect_eq(c->port.udp_port, 47000);
	cr_expect_eq(c->batching.max_batch, 8);
	cr_expect_eq(c->control.policy, RTCI_POLICY_MPC);
	cr_expect_eq(c->control.head_us, 5000);
	cr_expect_eq(c->control.rtt_us, 20000);
	cr_expect_eq(c->control.min_gain_per_10k, 20);
	cr_expect_eq(c->batching.deadline_margin_pct, 10);
	cr_expect(c->admission.enabled, "admission is on unless turned off");
	cr_expect_eq(c->admission.headroom_pct, 20);
	cr_expect_eq(c->admission.capacity_fps, 0, "measured");
	cr_expect_eq(c->admission.idle_timeout_ms, 5000);
	cr_expect_eq(c->admission.retry_after_ms, 2000);
	cr_expect(c->metrics.enabled);
	cr_expect_str_eq(c->metrics.listen, "127.0.0.1");
	cr_expect_str_eq(c->tenants_file, "/etc/rtci/tenants.yaml", "absolute path kept");
	cr_expect(strncmp(c->file_prefix, "rtci-gw-", 8) == 0);
	/* default EAL arguments for a machine without hugepages or a spare NIC */
	cr_assert_eq(c->eal_argc, 7);
	cr_expect_str_eq(c->eal_argv[1], "--no-huge");
	cr_expect_str_eq(c->eal_argv[4], "--no-pci");
	cr_expect_str_eq(c->eal_argv[5], "--file-prefix");
	rtci_config_free_gateway(c);
}

/* Every rejected file must name the file, the line and the field. */
static void expect_rejected(int gateway, const char *name, int code, unsigned line,
			    const char *field, const char *reason_part)
{
	char err[RTCI_CONFIG_ERR_MAX] = "";
	int rc;
	const char *p = data(name);
	char file[1024];
	snprintf(file, sizeof(file), "%s", p);
	if (gateway) {
		struct rtci_gateway_config *c = NULL;
		rc = rtci_config_load_gateway(file, &c, err, sizeof(err));
		cr_expect_null(c);
	} else {
		struct rtci_tenants_config *t = NULL;
		rc = rtci_config_load_tenants(file, &t, err, sizeof(err));
		cr_expect_null(t);
	}
	cr_expect_eq(rc, -code, "%s: rc %d (%s), message: %s", name, rc, rtci_strerror(rc), err);
	char prefix[1100];
	snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
	cr_expect(strncmp(err, prefix, strlen(prefix)) == 0, "%s: expected prefix '%s' in '%s'", name,
		  prefix, err);
	cr_expect(strstr(err, field) != NULL, "%s: field '%s' missing in '%s'", name, field, err);
	if (reason_part)
		cr_expect(strstr(err, reason_part) != NULL, "%s: '%s' missing in '%s'", name,
			  reason_part, err);
}

Test(config, syntax_error)
{
	expect_rejected(1, "gw-syntax.yaml", RTCI_ERR_CONFIG_SYNTAX, 4, "port.udp_port", "syntax");
}

Test(config, unknown_field)
{
	expect_rejected(1, "gw-unknown.yaml", RTCI_ERR_CONFIG_SYNTAX, 4, "port.rx_queue",
			"Unexpected key");
	expect_rejected(0, "tn-unknown.yaml", RTCI_ERR_CONFIG_SYNTAX, 8, "tenants[0].quotas.device",
			"Unexpected key");
}

Test(config, missing_required_field)
{
	expect_rejected(1, "gw-missing.yaml", RTCI_ERR_CONFIG_SYNTAX, 1, "port.ipv4", "Missing");
	expect_rejected(0, "tn-missing.yaml", RTCI_ERR_CONFIG_SYNTAX, 7, "tenants[1].key", "Missing");
}

Test(config, out_of_range)
{
	expect_rejected(1, "gw-range.yaml", RTCI_ERR_CONFIG_INVALID, 7, "batching.max_batch",
			"out of range");
	expect_rejected(0, "tn-range.yaml", RTCI_ERR_CONFIG_INVALID, 5, "tenants[0].deadline_ms",
			"out of range");
	expect_rejected(1, "gw-rtt-range.yaml", RTCI_ERR_CONFIG_INVALID, 8, "control.rtt_us",
			"out of range");
	expect_rejected(1, "gw-min-gain-range.yaml", RTCI_ERR_CONFIG_INVALID, 7,
			"control.min_gain_per_10k", "out of range");
	expect_rejected(1, "gw-headroom-range.yaml", RTCI_ERR_CONFIG_INVALID, 8,
			"admission.headroom_pct", "out of range");
	expect_rejected(0, "tn-reserved.yaml", RTCI_ERR_CONFIG_INVALID, 7, "tenants[0].reserved_fps",
			"out of range");
	expect_rejected(1, "gw-notuint.yaml", RTCI_ERR_CONFIG_SYNTAX, 3, "port.udp_port", "-5");
	expect_rejected(0, "tn-zeroid.yaml", RTCI_ERR_CONFIG_INVALID, 2, "tenants[0].id",
			"out of range");
}

Test(config, bad_formats)
{
	expect_rejected(0, "tn-badkey.yaml", RTCI_ERR_CONFIG_INVALID, 9, "tenants[1].key", "hex");
	expect_rejected(0, "tn-shortkey.yaml", RTCI_ERR_CONFIG_INVALID, 4, "tenants[0].key", "64");
	expect_rejected(1, "gw-badip.yaml", RTCI_ERR_CONFIG_INVALID, 2, "port.ipv4", "IPv4");
	expect_rejected(0, "tn-policy.yaml", RTCI_ERR_CONFIG_INVALID, 7, "tenants[0].policy",
			"greedy");
}

Test(config, duplicates)
{
	expect_rejected(0, "tn-duptenant.yaml", RTCI_ERR_CONFIG_INVALID, 7, "tenants[1].id",
			"duplicate tenant id 7");
	expect_rejected(0, "tn-dupdevice.yaml", RTCI_ERR_CONFIG_INVALID, 10,
			"tenants[0].devices[2].id", "duplicate device id 5");
	expect_rejected(0, "tn-overlap.yaml", RTCI_ERR_CONFIG_INVALID, 9, "tenants[0].devices[0].id",
			"derive range");
	expect_rejected(1, "gw-lcore-dup.yaml", RTCI_ERR_CONFIG_INVALID, 6, "lcores.workers[1]",
			"two roles");
}

Test(config, model_precision)
{
	struct rtci_gateway_config *c = NULL;
	char err[RTCI_CONFIG_ERR_MAX];
	cr_assert_eq(rtci_config_load_gateway(data("gw-precision.yaml"), &c, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(c->model_count, 4);
	cr_expect_eq(c->models[0].precision, RTCI_PRECISION_AUTO, "auto unless given");
	cr_expect_eq(c->models[1].precision, RTCI_PRECISION_INT8);
	cr_expect_eq(c->models[2].precision, RTCI_PRECISION_FP32);
	cr_expect_eq(c->models[3].precision, RTCI_PRECISION_AUTO);
	rtci_config_free_gateway(c);
	expect_rejected(1, "gw-badprecision.yaml", RTCI_ERR_CONFIG_INVALID, 6, "models[0].precision",
			"'int4' is not one of fp32, int8, auto");
}

/* libcyaml alone takes 47000.9 as 47000 and any unknown word as true. */
Test(config, wrong_scalar_types)
{
	expect_rejected(1, "gw-float-port.yaml", RTCI_ERR_CONFIG_SYNTAX, 3, "port.udp_port",
			"'47000.9' is not an integer");
	expect_rejected(1, "gw-float-batch.yaml", RTCI_ERR_CONFIG_SYNTAX, 8, "batching.max_batch",
			"not an integer");
	expect_rejected(1, "gw-lcore-float.yaml", RTCI_ERR_CONFIG_SYNTAX, 7, "lcores.rx[1]",
			"not an integer");
	expect_rejected(0, "tn-float-fps.yaml", RTCI_ERR_CONFIG_SYNTAX, 6, "tenants[0].fps",
			"'10.5' is not an integer");
	expect_rejected(1, "gw-bool-maybe.yaml", RTCI_ERR_CONFIG_SYNTAX, 7, "metrics.enabled",
			"'maybe' is not a boolean");
	expect_rejected(1, "gw-bool-nope.yaml", RTCI_ERR_CONFIG_SYNTAX, 7, "admission.enabled",
			"not a boolean");
}

Test(config, yaml_core_integers_and_booleans)
{
	char err[RTCI_CONFIG_ERR_MAX] = "";
	struct rtci_gateway_config *c = NULL;
	int rc = rtci_config_load_gateway(data("gw-types-ok.yaml"), &c, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(c->port.udp_port, 0xb798);
	cr_expect_not(c->metrics.enabled);
	cr_expect(c->admission.enabled);
	rtci_config_free_gateway(c);
}

Test(config, empty_files)
{
	expect_rejected(1, "empty.yaml", RTCI_ERR_CONFIG_SYNTAX, 1, "(document)", "empty");
	expect_rejected(0, "comment-only.yaml", RTCI_ERR_CONFIG_SYNTAX, 1, "(document)", "empty");
}

Test(config, missing_file)
{
	char err[RTCI_CONFIG_ERR_MAX];
	struct rtci_gateway_config *c = NULL;
	cr_expect_eq(rtci_config_load_gateway(data("no-such-file.yaml"), &c, err, sizeof(err)),
		     -ENOENT);
	cr_expect(strstr(err, "no-such-file.yaml") != NULL);
}
