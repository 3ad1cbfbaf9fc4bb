/* Integration test program for the DPDK port layer and the io_uring uplink, run by
 * tests/netns.sh in two network namespaces joined by a veth:
 *
 *   port_uplink gateway <iface> <gw-ip> <udp-port> <file-prefix> <ready-file> <timeout-s>
 *     DPDK on net_af_packet over <iface>: answers ARP, echoes every datagram back through the
 *     neighbor table, stops at the datagram "STOP" and checks its own drop counters.
 *   port_uplink device <iface> <gw-ip> <udp-port>
 *     Sends datagrams of many sizes with the uplink (plain and zero-copy sends), checks that the
 *     echoes carry the same payload and correct checksums (seen raw on the veth), then injects
 *     malformed frames and sends "STOP".
 *
 * Exit status 0 on success, 1 on failure. */
#include "common/clock.h"
#include "common/rtci_error.h"
#include "dataplane/port.h"
#include "dataplane/uplink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "it_check.h"

static uint32_t parse_ip(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "bad IPv4 address %s\n", s);
		exit(2);
	}
	return ntohl(a.s_addr);
}

/* ---------------------------------------------------------------------------------------- */

static int run_gateway(char **argv)
{
	const char *iface = argv[0], *prefix = argv[3], *ready = argv[4];
	uint32_t ip = parse_ip(argv[1]);
	uint16_t port = (uint16_t)atoi(argv[2]);
	double deadline = rtci_mono_s() + atof(argv[5]);

	/* one lcore: the first CPU this process may run on */
	cpu_set_t cpus;
	int cpu = 0;
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &cpus))
			cpu++;
	char lcore[16], vdev[128];
	snprintf(lcore, sizeof(lcore), "%d", cpu);
	snprintf(vdev, sizeof(vdev), "net_af_packet0,iface=%s,qpairs=2", iface);
	char *eal[] = { "port_uplink", "-l", lcore, "--no-huge", "-m", "256", "--no-pci",
			"--no-shconf", "--file-prefix", (char *)prefix, "--vdev", vdev,
			"--log-level", "lib.eal:warning", NULL };
	int rc = rtci_port_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal);
	if (rc < 0) {
		fprintf(stderr, "EAL: %s\n", rtci_strerror(rc));
		return 1;
	}
	struct rtci_port_config cfg = {
		.port_id = RTCI_PORT_ANY, .rx_queues = 2, .tx_queues = 2, .rx_descriptors = 512,
		.tx_descriptors = 512, .mbufs = 4095, .mbuf_cache = 64, .ipv4 = ip, .udp_port = port,
		.neighbors = 64,
	};
	struct rtci_port *p = NULL;
	if ((rc = rtci_port_create(&cfg, &p)) < 0) {
		fprintf(stderr, "port: %s\n", rtci_strerror(rc));
		rtci_port_eal_cleanup();
		return 1;
	}
	FILE *f = fopen(ready, "w");
	if (f) {
		fputs("ready\n", f);
		fclose(f);
	}

	struct rtci_port_dgram d[32];
	uint64_t echoed = 0;
	int stop = 0;
	/* two queue pairs: the kernel spreads flows over them (af_packet fanout by hash) */
	uint64_t per_queue[2] = { 0, 0 };
	while (!stop && rtci_mono_s() < deadline) {
		uint16_t got = 0;
		for (uint16_t q = 0; q < 2; q++) {
			uint16_t n = rtci_port_rx(p, q, d, 32);
			got += n;
			for (uint16_t i = 0; i < n; i++) {
				if (d[i].len == 4 && memcmp(d[i].payload, "STOP", 4) == 0)
					stop = 1;
				/* on the same queue, through the neighbor table this datagram taught */
				rc = rtci_port_send(p, q, d[i].from.ip, d[i].from.port, d[i].payload,
						    d[i].len);
				if (rc < 0)
					FAIL("echo to %08x: %s", d[i].from.ip, rtci_strerror(rc));
				else
					echoed++;
			}
			per_queue[q] += n;
			rtci_port_release(d, n);
			rtci_port_flush(p, q);
		}
		if (got == 0)
			usleep(100);
	}
	printf("gateway: datagrams per RX queue %lu, %lu\n", (unsigned long)per_queue[0],
	       (unsigned long)per_queue[1]);
	if (!stop)
		FAIL("no STOP datagram before the timeout");

	struct rtci_port_stats st;
	rtci_port_stats(p, RTCI_PORT_ANY, &st);
	printf("gateway: rx %lu packets, %lu datagrams, echoed %lu, tx %lu, arp replies %lu\n",
	       (unsigned long)st.rx_packets, (unsigned long)st.rx_datagrams, (unsigned long)echoed,
	       (unsigned long)st.tx_packets, (unsigned long)st.arp_replies);
	for (int i = 0; i < RTCI_PORT_DROP_COUNT; i++)
		if (st.drops[i])
			printf("gateway: drop %s %lu\n", rtci_port_drop_name((enum rtci_port_drop)i),
			       (unsigned long)st.drops[i]);
	if (st.arp_replies < 1)
		FAIL("no ARP request answered");
	/* the device injects exactly one frame of each of these kinds */
	if (st.drops[RTCI_PORT_DROP_UDP_CHECKSUM] != 1)
		FAIL("udp_checksum drops %lu, expected 1",
		     (unsigned long)st.drops[RTCI_PORT_DROP_UDP_CHECKSUM]);
	/* No IP fragment case here: net_af_packet joins a fanout group with
	 * PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles fragments before the PMD sees them
	 * (a lone fragment never arrives). test_port covers the fragment check itself. */
	if (st.drops[RTCI_PORT_DROP_DST_IP] != 1)
		FAIL("dst_ip drops %lu, expected 1", (unsigned long)st.drops[RTCI_PORT_DROP_DST_IP]);
	if (st.drops[RTCI_PORT_DROP_IP_CHECKSUM] != 1)
		FAIL("ip_checksum drops %lu, expected 1",
		     (unsigned long)st.drops[RTCI_PORT_DROP_IP_CHECKSUM]);
	if (st.drops[RTCI_PORT_DROP_IP_HEADER] < 2)
		FAIL("ip_header drops %lu, expected 2",
		     (unsigned long)st.drops[RTCI_PORT_DROP_IP_HEADER]);
	if (st.drops[RTCI_PORT_DROP_DST_PORT] != 1)
		FAIL("dst_port drops %lu, expected 1", (unsigned long)st.drops[RTCI_PORT_DROP_DST_PORT]);
	if (st.drops[RTCI_PORT_DROP_PROTO] < 1)
		FAIL("ip_proto drops %lu, expected >= 1", (unsigned long)st.drops[RTCI_PORT_DROP_PROTO]);
	if (echoed != st.rx_datagrams || st.tx_packets < echoed + st.arp_replies)
		FAIL("echoed %lu of %lu datagrams, sent %lu packets", (unsigned long)echoed,
		     (unsigned long)st.rx_datagrams, (unsigned long)st.tx_packets);
	rtci_port_destroy(p);
	rtci_port_eal_cleanup();
	return failed;
}

/* ---------------------------------------------------------------------------------------- */

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

struct seen {
	int n;
	int bad;
	uint32_t expect_len[512];
	uint8_t expect_seed[512];
};

static void on_echo(void *user, const uint8_t *data, size_t len)
{
	struct seen *s = user;
	/* datagram k: byte 0 = k & 0xff, byte 1 = k >> 8, then seed + i */
	if (len < 2) {
		s->bad++;
		return;
	}
	unsigned k = data[0] | (unsigned)data[1] << 8;
	if (k >= 512 || s->expect_len[k] != len) {
		s->bad++;
		return;
	}
	for (size_t i = 2; i < len; i++)
		if (data[i] != (uint8_t)(s->expect_seed[k] + i)) {
			s->bad++;
			return;
		}
	s->n++;
}

static int raw_socket(const char *iface, int *ifindex)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	/* room for every echo until they are checked */
	int big = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	*ifindex = (int)if_nametoindex(iface);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = *ifindex };
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Reads what the raw socket captured: counts frames from the gateway with valid checksums. */
static void check_captured(int fd, uint32_t gw_ip, uint8_t gw_mac[6], int *good, int *bad)
{
	uint8_t f[2048];
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, f, sizeof(f), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (from.sll_pkttype == PACKET_OUTGOING || n < 42 || f[12] != 0x08 || f[13] != 0)
			continue;
		const uint8_t *ip = f + 14;
		uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | ip[14] << 8 | ip[15];
		if (src != gw_ip || ip[9] != 17)
			continue;
		memcpy(gw_mac, f + 6, 6);
		size_t ihl = (size_t)(ip[0] & 0xf) * 4;
		const uint8_t *u = ip + ihl;
		size_t ulen = (size_t)(u[4] << 8 | u[5]);
		uint32_t ph = sum16(ip + 12, 8, 0) + 17 + (uint32_t)ulen;
		int ok = sum16(ip, ihl, 0) == 0xffff && (u[6] | u[7]) != 0 && sum16(u, ulen, ph) == 0xffff;
		if (ok)
			(*good)++;
		else
			(*bad)++;
	}
}

static int send_raw(int fd, int ifindex, const uint8_t *frame, size_t len)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
	memcpy(to.sll_addr, frame, 6);
	return sendto(fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len ? 0
											     : -errno;
}

static void fix_ip(uint8_t *ip)
{
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~sum16(ip, (size_t)(ip[0] & 0xf) * 4, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
}

static int run_device(char **argv)
{
	const char *iface = argv[0];
	uint32_t gw_ip = parse_ip(argv[1]);
	uint16_t port = (uint16_t)atoi(argv[2]);

	int ifindex = 0;
	int raw = raw_socket(iface, &ifindex);
	if (raw < 0) {
		fprintf(stderr, "raw socket on %s: %s\n", iface, strerror(-raw));
		return 1;
	}
	struct rtci_uplink_config c = {
		.peer_ip = argv[1], .peer_port = port, .slots = 32, .slot_size = 1472,
		.recv_buffers = 512, .recv_buffer_size = 2048, .zc_threshold = 1024,
		.rcvbuf = 1 << 20,
	};
	struct rtci_uplink *u = NULL;
	int rc = rtci_uplink_create(&c, &u);
	if (rc < 0) {
		fprintf(stderr, "uplink: %s\n", rtci_strerror(rc));
		return 1;
	}

	/* 300 datagrams, sizes 2..1472 (plain below 1024 bytes, zero-copy from there) */
	static uint8_t bufs[300][1472];
	static struct seen seen;
	struct iovec iov[300];
	const int total = 300;
	for (int k = 0; k < total; k++) {
		size_t len = 2 + (size_t)(k * 4927) % 1471;
		bufs[k][0] = (uint8_t)k;
		bufs[k][1] = (uint8_t)(k >> 8);
		seen.expect_seed[k] = (uint8_t)(k * 13);
		for (size_t i = 2; i < len; i++)
			bufs[k][i] = (uint8_t)(seen.expect_seed[k] + i);
		seen.expect_len[k] = (uint32_t)len;
		iov[k] = (struct iovec){ bufs[k], len };
	}
	/* in rounds the echo path can absorb; the first one also waits for ARP */
	for (int off = 0; off < total; off += 20) {
		int want = seen.n + 20;
		rc = rtci_uplink_send(u, iov + off, 20, 5000);
		if (rc != 20)
			FAIL("uplink send: %d (%s)", rc, rc < 0 ? rtci_strerror(rc) : "short");
		double until = rtci_mono_s() + 5;
		while (seen.n < want && rtci_mono_s() < until)
			if ((rc = rtci_uplink_recv(u, on_echo, &seen, 200)) < 0) {
				FAIL("uplink recv: %s", rtci_strerror(rc));
				break;
			}
	}
	struct rtci_uplink_stats st;
	rtci_uplink_stats(u, &st);
	printf("device: sent %lu (%lu zero-copy), echoes %d good %d bad\n", (unsigned long)st.sent,
	       (unsigned long)st.sent_zc, seen.n, seen.bad);
	if (seen.n != total || seen.bad)
		FAIL("%d of %d echoes intact, %d corrupted", seen.n, total, seen.bad);
	if (st.sent_zc == 0)
		FAIL("no zero-copy sends");

	uint8_t gw_mac[6] = { 0 };
	int good = 0, bad = 0;
	check_captured(raw, gw_ip, gw_mac, &good, &bad);
	printf("device: captured %d gateway frames with valid checksums, %d invalid\n", good, bad);
	if (good < total || bad)
		FAIL("gateway frames: %d valid, %d invalid", good, bad);

	/* malformed frames, one of each kind, built from a valid one */
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	getsockname(rtci_uplink_fd(u), (struct sockaddr *)&me, &ml);
	uint32_t my_ip = ntohl(me.sin_addr.s_addr);
	uint8_t my_mac[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct rtci_port_peer gw = { .ip = gw_ip, .port = port };
	memcpy(gw.mac, gw_mac, 6);
	uint8_t good_frame[128], f[128];
	int len = rtci_port_build_udp(good_frame, sizeof(good_frame), my_mac, my_ip, 40000, &gw,
				      "malformed", 9);
	uint8_t *ip = f + 14, *udp = f + 34;
	struct {
		const char *what;
		int kind;
	} cases[] = { { "udp checksum", 0 }, { "dst ip", 1 }, { "ihl", 2 }, { "total length", 3 },
		      { "ip checksum", 4 }, { "tcp", 5 }, { "dst port", 6 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(f, good_frame, (size_t)len);
		switch (cases[i].kind) {
		case 0: f[len - 1] ^= 0x55; break;
		case 1: ip[19] ^= 0x80; fix_ip(ip); break;
		case 2: ip[0] = 0x43; fix_ip(ip); break;
		case 3: ip[2] = 0x05; fix_ip(ip); break;
		case 4: ip[8] ^= 0x0f; break;
		case 5: ip[9] = 6; fix_ip(ip); break;
		case 6: udp[2] ^= 0x01; break;
		}
		if ((rc = send_raw(raw, ifindex, f, (size_t)len)) < 0)
			FAIL("raw send (%s): %s", cases[i].what, strerror(-rc));
	}

	struct iovec stop = { "STOP", 4 };
	if (rtci_uplink_send(u, &stop, 1, 2000) != 1)
		FAIL("STOP not sent");
	rtci_uplink_destroy(u);
	close(raw);
	return failed;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 8 && strcmp(argv[1], "gateway") == 0)
		return run_gateway(argv + 2);
	if (argc == 5 && strcmp(argv[1], "device") == 0)
		return run_device(argv + 2);
	fprintf(stderr,
		"usage: %s gateway <iface> <gw-ip> <port> <file-prefix> <ready-file> <timeout-s>\n"
		"       %s device <iface> <gw-ip> <port>\n",
		argv[0], argv[0]);
	return 2;
}
