/* Port layer cost per packet on net_ring (TX queue loops back into RX queue, no NIC, no root):
 *   rx-baseline  rte_eth_rx_burst + free (what any DPDK application pays)
 *   rx           rtci_port_rx: validation, software IPv4/UDP checksums, neighbor learning
 *   tx           rtci_port_send_peer + rtci_port_flush: header build, checksums, TX burst
 * for a small and an MTU-sized datagram. Only the measured calls are timed (TSC); injecting
 * and draining frames is outside the timed region. Medians of several runs, ratio against the
 * baseline of the same run, CSV under bench/results/. */
#include "common/rtci_error.h"
#include "dataplane/port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include "bench_util.h"

#define BURST 32

static const uint8_t GW_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t DEV_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define GW_IP 0x0a4d0001u
#define DEV_IP 0x0a4d0002u

static struct rtci_port *port;
static struct rte_mempool *pool;
static uint16_t pid;

static void inject(const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m[BURST];
	if (rte_pktmbuf_alloc_bulk(pool, m, BURST) != 0) {
		fprintf(stderr, "inject pool empty\n");
		exit(1);
	}
	for (int i = 0; i < BURST; i++) {
		memcpy(rte_pktmbuf_mtod(m[i], uint8_t *), frame, len);
		m[i]->data_len = m[i]->pkt_len = (uint32_t)len;
	}
	uint16_t n = rte_eth_tx_burst(pid, 0, m, BURST);
	if (n < BURST)
		rte_pktmbuf_free_bulk(m + n, BURST - n);
}

static void drain(void)
{
	struct rte_mbuf *m[BURST];
	uint16_t n;
	while ((n = rte_eth_rx_burst(pid, 0, m, BURST)) > 0)
		rte_pktmbuf_free_bulk(m, n);
}

/* ns per packet for one run of `bursts` bursts */
static double run(int mode, const uint8_t *frame, size_t len, size_t payload, int bursts)
{
	uint64_t cycles = 0, packets = 0;
	struct rtci_port_dgram d[BURST];
	struct rte_mbuf *m[BURST];
	struct rtci_port_peer to = { .ip = DEV_IP, .port = 40000 };
	memcpy(to.mac, DEV_MAC, 6);
	for (int b = 0; b < bursts; b++) {
		if (mode < 2) {
			inject(frame, len);
			uint64_t t0 = rte_rdtsc_precise();
			uint16_t n;
			if (mode == 0) {
				n = rte_eth_rx_burst(pid, 0, m, BURST);
				rte_pktmbuf_free_bulk(m, n);
			} else {
				n = rtci_port_rx(port, 0, d, BURST);
				rtci_port_release(d, n);
			}
			cycles += rte_rdtsc_precise() - t0;
			packets += n;
		} else {
			struct rtci_port_stats s0, s1;
			rtci_port_stats(port, 0, &s0);
			uint64_t t0 = rte_rdtsc_precise();
			for (int i = 0; i < BURST; i++)
				rtci_port_send_peer(port, 0, &to, frame + RTCI_PORT_HDR_LEN, payload);
			rtci_port_flush(port, 0); /* the 32nd send already flushed a full buffer */
			cycles += rte_rdtsc_precise() - t0;
			rtci_port_stats(port, 0, &s1);
			packets += s1.tx_packets - s0.tx_packets;
			drain();
		}
	}
	return packets ? (double)cycles * 1e9 / (double)rte_get_tsc_hz() / (double)packets : 0;
}

int main(int argc, char **argv)
{
	const char *csv_path = NULL;
	int runs = 5, bursts = 20000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--csv") && i + 1 < argc)
			csv_path = argv[++i];
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bursts") && i + 1 < argc)
			bursts = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--csv FILE] [--runs N] [--bursts N]\n", argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 101)
		runs = 5;

	char prefix[64];
	snprintf(prefix, sizeof(prefix), "rtci-bench-port-%ld", (long)getpid());
	char *eal[] = { "rtci-bench-port", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
			"--no-shconf", "--file-prefix", prefix, "--vdev", "net_ring0",
			"--log-level", "lib.eal:error", "--no-telemetry", NULL };
	int rc = rtci_port_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal);
	if (rc < 0) {
		fprintf(stderr, "EAL: %s\n", rtci_strerror(rc));
		return 1;
	}
	struct rtci_port_config cfg = {
		.port_id = RTCI_PORT_ANY, .rx_queues = 1, .tx_queues = 1, .rx_descriptors = 1024,
		.tx_descriptors = 1024, .mbufs = 4095, .mbuf_cache = 64, .ipv4 = GW_IP,
		.mac_set = true, .udp_port = 47000, .neighbors = 1024,
	};
	memcpy(cfg.mac, GW_MAC, 6);
	if ((rc = rtci_port_create(&cfg, &port)) < 0) {
		fprintf(stderr, "port: %s\n", rtci_strerror(rc));
		return 1;
	}
	pid = rtci_port_id(port);
	pool = rte_pktmbuf_pool_create("bench_inject", 4095, 64, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (!pool)
		return 1;

	FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
	if (csv)
		fprintf(csv, "payload,run,mode,ns_per_packet\n");
	static const char *const names[] = { "rx-baseline", "rx", "tx" };
	static const size_t payloads[] = { 64, RTCI_PORT_MAX_PAYLOAD };
	static uint8_t frame[RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD], data[RTCI_PORT_MAX_PAYLOAD];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	printf("%8s %14s %14s %10s %14s %10s\n", "payload", "baseline ns", "rx ns", "rx/base",
	       "tx ns", "rx Mpps");
	for (size_t p = 0; p < sizeof(payloads) / sizeof(payloads[0]); p++) {
		struct rtci_port_peer gw = { .ip = GW_IP, .port = 47000 };
		memcpy(gw.mac, GW_MAC, 6);
		int len = rtci_port_build_udp(frame, sizeof(frame), DEV_MAC, DEV_IP, 40000, &gw, data,
					      payloads[p]);
		double v[3][101];
		run(1, frame, (size_t)len, payloads[p], 1000); /* warm-up, learns the neighbor */
		for (int r = 0; r < runs; r++)
			for (int mode = 0; mode < 3; mode++) {
				v[mode][r] = run(mode, frame, (size_t)len, payloads[p], bursts);
				if (csv)
					fprintf(csv, "%zu,%d,%s,%.2f\n", payloads[p], r, names[mode],
						v[mode][r]);
			}
		double med[3];
		for (int mode = 0; mode < 3; mode++) {
			qsort(v[mode], (size_t)runs, sizeof(double), bench_cmp_double);
			med[mode] = runs % 2 ? v[mode][runs / 2]
					     : (v[mode][runs / 2 - 1] + v[mode][runs / 2]) / 2;
		}
		printf("%8zu %14.1f %14.1f %10.2f %14.1f %10.2f\n", payloads[p], med[0], med[1],
		       med[1] / med[0], med[2], 1e3 / med[1]);
	}
	struct rtci_port_stats st;
	rtci_port_stats(port, RTCI_PORT_ANY, &st);
	printf("medians of %d runs x %d bursts of %d; datagrams %lu, drops: ", runs, bursts, BURST,
	       (unsigned long)st.rx_datagrams);
	unsigned long drops = 0;
	for (int i = 0; i < RTCI_PORT_DROP_COUNT; i++)
		drops += st.drops[i];
	printf("%lu\n", drops);
	if (csv)
		fclose(csv);
	rtci_port_destroy(port);
	rte_mempool_free(pool);
	rtci_port_eal_cleanup();
	char dir[256];
	snprintf(dir, sizeof(dir), "rm -rf /var/run/dpdk/%s", prefix);
	if (getuid() == 0 && system(dir) != 0)
		fprintf(stderr, "could not remove /var/run/dpdk/%s\n", prefix);
	return 0;
}
