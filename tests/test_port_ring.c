/* DPDK port layer on net_ring (each TX queue loops back into the RX queue of the same number):
 * EAL start-up without hugepages or root, two queues, ARP replies, neighbor learning, replies
 * through the neighbor table, per-queue counters. Frames are injected with rte_eth_tx_burst. */
#include "common/rtci_error.h"
#include "dataplane/port.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

static const uint8_t GW_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t DEV_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define GW_IP 0x0a4d0001u
#define DEV_IP 0x0a4d0002u
#define GW_PORT 47000
#define DEV_PORT 40001

static struct rte_mempool *inject_pool;
static struct rtci_port *port;
static char prefix[64], runtime_dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void inject(uint16_t queue, const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(inject_pool);
	cr_assert_not_null(m);
	memcpy(rte_pktmbuf_mtod(m, uint8_t *), frame, len);
	m->data_len = m->pkt_len = (uint32_t)len;
	cr_assert_eq(rte_eth_tx_burst(rtci_port_id(port), queue, &m, 1), 1);
}

static int device_udp(uint8_t *f, size_t room, const void *payload, size_t len)
{
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	return rtci_port_build_udp(f, room, DEV_MAC, DEV_IP, DEV_PORT, &gw, payload, len);
}

Test(port_ring, queues_arp_neighbors_and_replies)
{
	snprintf(prefix, sizeof(prefix), "rtci-ring-%ld", (long)getpid());
	char *eal[] = { "test_port_ring", "-l", "0", "--no-huge", "-m", "128", "--no-pci",
			"--no-shconf", "--file-prefix", prefix, "--vdev", "net_ring0",
			"--log-level", "lib.eal:error", "--no-telemetry", NULL };
	int rc = rtci_port_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal);
	cr_assert_eq(rc, 0, "EAL: %s", rtci_strerror(rc));

	struct rtci_port_config cfg = {
		.port_id = RTCI_PORT_ANY, .rx_queues = 2, .tx_queues = 2, .rx_descriptors = 256,
		.tx_descriptors = 256, .mbufs = 1023, .mbuf_cache = 32, .ipv4 = GW_IP,
		.mac_set = true, .udp_port = GW_PORT, .neighbors = 16,
	};
	memcpy(cfg.mac, GW_MAC, 6);
	struct rtci_port_config bad = cfg;
	bad.rx_queues = 0;
	cr_expect_eq(rtci_port_create(&bad, &port), -EINVAL);
	bad = cfg;
	bad.tx_queues = 1; /* fewer TX than RX queues */
	cr_expect_eq(rtci_port_create(&bad, &port), -EINVAL);
	bad = cfg;
	bad.rx_queues = bad.tx_queues = 64; /* more than net_ring has */
	cr_expect_eq(rtci_port_create(&bad, &port), -EINVAL);

	rc = rtci_port_create(&cfg, &port);
	cr_assert_eq(rc, 0, "port: %s", rtci_strerror(rc));
	uint8_t mac[6];
	rtci_port_mac(port, mac);
	cr_expect_eq(memcmp(mac, GW_MAC, 6), 0);
	inject_pool = rte_pktmbuf_pool_create("inject", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					      (int)rte_socket_id());
	cr_assert_not_null(inject_pool);

	struct rtci_port_dgram d[8];
	struct rtci_port_stats st;
	uint8_t f[256];

	/* ARP request on queue 0: answered, and the requester learned */
	uint8_t arp[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06,
			    0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 77, 0, 2,
			    0, 0, 0, 0, 0, 0, 10, 77, 0, 1 };
	inject(0, arp, sizeof(arp));
	cr_expect_eq(rtci_port_rx(port, 0, d, 8), 0);
	rtci_port_stats(port, 0, &st);
	cr_expect_eq(st.arp_replies, 1);
	cr_expect_eq(st.tx_packets, 1);
	cr_expect_eq(rtci_port_neighbor(port, 0, DEV_IP, mac), 0);
	cr_expect_eq(memcmp(mac, DEV_MAC, 6), 0);
	cr_expect_eq(rtci_port_neighbor(port, 1, DEV_IP, mac), -ENOENT, "tables are per queue");
	/* the reply looped back: an ARP reply addressed to the device */
	struct rte_mbuf *m[4];
	uint16_t n = rte_eth_rx_burst(rtci_port_id(port), 0, m, 4);
	cr_assert_eq(n, 1);
	const uint8_t *r = rte_pktmbuf_mtod(m[0], const uint8_t *);
	cr_expect_eq(memcmp(r, DEV_MAC, 6), 0);
	cr_expect_eq(r[21], 2, "ARP reply");
	cr_expect(r[28] == 10 && r[29] == 77 && r[30] == 0 && r[31] == 1, "sender is the gateway");
	rte_pktmbuf_free(m[0]);

	/* datagram on queue 1: delivered with its sender, then echoed through the neighbor table */
	int len = device_udp(f, sizeof(f), "ping over ring", 14);
	inject(1, f, (size_t)len);
	n = rtci_port_rx(port, 1, d, 8);
	cr_assert_eq(n, 1);
	cr_expect_eq(d[0].len, 14);
	cr_expect_eq(memcmp(d[0].payload, "ping over ring", 14), 0);
	cr_expect_eq(d[0].from.ip, DEV_IP);
	cr_expect_eq(d[0].from.port, DEV_PORT);
	cr_expect_eq(d[0].queue, 1);
	cr_expect_eq(rtci_port_send(port, 1, DEV_IP, DEV_PORT, d[0].payload, d[0].len), 0);
	rtci_port_release(d, n);
	cr_expect_eq(rtci_port_flush(port, 1), 1);
	n = rte_eth_rx_burst(rtci_port_id(port), 1, m, 4);
	cr_assert_eq(n, 1);
	struct rtci_port_parsed pr;
	cr_expect_eq(rtci_port_parse(rte_pktmbuf_mtod(m[0], const uint8_t *), m[0]->data_len, DEV_MAC,
				     DEV_IP, DEV_PORT, 0, &pr),
		     RTCI_PORT_UDP, "the echo is a valid datagram to the device (%s)",
		     rtci_port_drop_name(pr.drop));
	cr_expect_eq(pr.from.ip, GW_IP);
	cr_expect_eq(pr.from.port, GW_PORT);
	cr_expect_eq(memcmp(pr.from.mac, GW_MAC, 6), 0);
	cr_expect_eq(pr.payload_len, 14);
	rte_pktmbuf_free(m[0]);

	/* no MAC known for this address: refused and counted, nothing sent */
	cr_expect_eq(rtci_port_send(port, 1, DEV_IP + 1, DEV_PORT, "x", 1),
		     -RTCI_ERR_PORT_NO_NEIGHBOR);
	cr_expect_eq(rtci_port_send_peer(port, 1, &pr.from, f, RTCI_PORT_MAX_PAYLOAD + 1), -EMSGSIZE);
	cr_expect_eq(rtci_port_send(port, 2, DEV_IP, DEV_PORT, "x", 1), -EINVAL);

	/* a corrupted datagram and one for another port: dropped with their reasons */
	len = device_udp(f, sizeof(f), "corrupt", 7);
	f[len - 1] ^= 1;
	inject(1, f, (size_t)len);
	len = device_udp(f, sizeof(f), "elsewhere", 9);
	f[36] ^= 0x10;
	inject(1, f, (size_t)len);
	cr_expect_eq(rtci_port_rx(port, 1, d, 8), 0);

	rtci_port_stats(port, 1, &st);
	cr_expect_eq(st.rx_packets, 3);
	cr_expect_eq(st.rx_datagrams, 1);
	cr_expect_eq(st.tx_packets, 1);
	cr_expect_eq(st.drops[RTCI_PORT_DROP_UDP_CHECKSUM], 1);
	cr_expect_eq(st.drops[RTCI_PORT_DROP_DST_PORT], 1);
	cr_expect_eq(st.drops[RTCI_PORT_DROP_NO_NEIGHBOR], 1);
	rtci_port_stats(port, RTCI_PORT_ANY, &st);
	cr_expect_eq(st.rx_packets, 4);
	cr_expect_eq(st.tx_packets, 2);
	cr_expect_eq(st.arp_replies, 1);

	rtci_port_destroy(port);
	rte_mempool_free(inject_pool);
	rtci_port_eal_cleanup();
	/* EAL keeps a runtime folder per file prefix */
	const char *base = getuid() == 0 ? "/var/run/dpdk" : getenv("XDG_RUNTIME_DIR");
	if (base) {
		snprintf(runtime_dir, sizeof(runtime_dir), "%s%s/%s", base, getuid() ? "/dpdk" : "",
			 prefix);
		nftw(runtime_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
}
