#include "dataplane/port.h"

#include "common/rtci_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define RX_BURST 32
#define TX_BUFFER 32
#define NEIGHBOR_PROBES 8

static const char *const drop_names[RTCI_PORT_DROP_COUNT] = {
	[RTCI_PORT_DROP_RUNT] = "runt",
	[RTCI_PORT_DROP_MULTISEG] = "multiseg",
	[RTCI_PORT_DROP_DST_MAC] = "dst_mac",
	[RTCI_PORT_DROP_ETHERTYPE] = "ethertype",
	[RTCI_PORT_DROP_ARP_OTHER] = "arp_other",
	[RTCI_PORT_DROP_IP_HEADER] = "ip_header",
	[RTCI_PORT_DROP_IP_CHECKSUM] = "ip_checksum",
	[RTCI_PORT_DROP_FRAGMENT] = "ip_fragment",
	[RTCI_PORT_DROP_DST_IP] = "dst_ip",
	[RTCI_PORT_DROP_PROTO] = "ip_proto",
	[RTCI_PORT_DROP_UDP_LENGTH] = "udp_length",
	[RTCI_PORT_DROP_UDP_CHECKSUM] = "udp_checksum",
	[RTCI_PORT_DROP_DST_PORT] = "dst_port",
	[RTCI_PORT_DROP_NO_NEIGHBOR] = "no_neighbor",
	[RTCI_PORT_DROP_NO_MBUF] = "no_mbuf",
	[RTCI_PORT_DROP_TX_FULL] = "tx_full",
	[RTCI_PORT_DROP_TOO_LONG] = "too_long",
};

const char *rtci_port_drop_name(enum rtci_port_drop d)
{
	return (unsigned)d < RTCI_PORT_DROP_COUNT ? drop_names[d] : "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing and building on plain buffers (no EAL). */

/* RFC 1071 sum of len bytes plus sum, folded to 16 bits (0 only when everything is 0). The
 * same value as rte_raw_cksum(), which in DPDK 22.11 adds 2 bytes per step and was the largest
 * cost of the ingest path (docs/operations.md §6.8): 32-bit words go into 64-bit lanes,
 * which cannot overflow for any frame, and 2^16 == 1 (mod 0xffff) makes the wider words sum to
 * the same result as 16-bit ones. */
static uint16_t sum_fold(const uint8_t *p, size_t len, uint64_t sum)
{
#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128();
	__m128i a = zero, b = zero;
	for (; len >= 32; len -= 32, p += 32) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
		a = _mm_add_epi64(a, _mm_add_epi64(_mm_unpacklo_epi32(x, zero),
						   _mm_unpackhi_epi32(x, zero)));
		b = _mm_add_epi64(b, _mm_add_epi64(_mm_unpacklo_epi32(y, zero),
						   _mm_unpackhi_epi32(y, zero)));
	}
	uint64_t lanes[2];
	_mm_storeu_si128((__m128i *)(void *)lanes, _mm_add_epi64(a, b));
	sum += lanes[0] + lanes[1];
#endif
	for (; len >= 4; len -= 4, p += 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		sum += w;
	}
	if (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		sum += w;
		p += 2;
		len -= 2;
	}
	if (len) { /* the odd byte, as the first byte of a zero-padded 16-bit word */
		uint16_t w = 0;
		memcpy(&w, p, 1);
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static enum rtci_port_verdict dropped(struct rtci_port_parsed *out, enum rtci_port_drop why)
{
	out->drop = why;
	return RTCI_PORT_DROPPED;
}

enum rtci_port_verdict rtci_port_parse(const uint8_t *frame, uint32_t len, const uint8_t my_mac[6],
				       uint32_t my_ip, uint16_t my_port, unsigned ck_flags,
				       struct rtci_port_parsed *out)
{
	memset(out, 0, sizeof(*out));
	if (len < sizeof(struct rte_ether_hdr))
		return dropped(out, RTCI_PORT_DROP_RUNT);
	struct rte_ether_hdr eth; /* copied: a frame may start at any address */
	memcpy(&eth, frame, sizeof(eth));
	if (!rte_is_broadcast_ether_addr(&eth.dst_addr) &&
	    memcmp(eth.dst_addr.addr_bytes, my_mac, RTE_ETHER_ADDR_LEN) != 0)
		return dropped(out, RTCI_PORT_DROP_DST_MAC);
	memcpy(out->from.mac, eth.src_addr.addr_bytes, RTE_ETHER_ADDR_LEN);
	uint16_t type = rte_be_to_cpu_16(eth.ether_type);
	const uint8_t *l3 = frame + sizeof(eth);
	uint32_t l3_len = len - (uint32_t)sizeof(eth);

	if (type == RTE_ETHER_TYPE_ARP) {
		if (l3_len < sizeof(struct rte_arp_hdr))
			return dropped(out, RTCI_PORT_DROP_RUNT);
		struct rte_arp_hdr arp;
		memcpy(&arp, l3, sizeof(arp)); /* may be unaligned */
		if (rte_be_to_cpu_16(arp.arp_hardware) != RTE_ARP_HRD_ETHER ||
		    rte_be_to_cpu_16(arp.arp_protocol) != RTE_ETHER_TYPE_IPV4 ||
		    arp.arp_hlen != RTE_ETHER_ADDR_LEN || arp.arp_plen != 4)
			return dropped(out, RTCI_PORT_DROP_ARP_OTHER);
		uint16_t op = rte_be_to_cpu_16(arp.arp_opcode);
		uint32_t sip = rte_be_to_cpu_32(arp.arp_data.arp_sip);
		memcpy(out->from.mac, arp.arp_data.arp_sha.addr_bytes, RTE_ETHER_ADDR_LEN);
		out->from.ip = sip;
		if (rte_is_multicast_ether_addr(&arp.arp_data.arp_sha) || sip == 0)
			return dropped(out, RTCI_PORT_DROP_ARP_OTHER);
		if (op == RTE_ARP_OP_REQUEST && rte_be_to_cpu_32(arp.arp_data.arp_tip) == my_ip)
			return RTCI_PORT_ARP_REQUEST;
		if (op == RTE_ARP_OP_REQUEST || op == RTE_ARP_OP_REPLY)
			return RTCI_PORT_ARP_LEARN;
		return dropped(out, RTCI_PORT_DROP_ARP_OTHER);
	}
	if (type != RTE_ETHER_TYPE_IPV4)
		return dropped(out, RTCI_PORT_DROP_ETHERTYPE);
	if (l3_len < sizeof(struct rte_ipv4_hdr))
		return dropped(out, RTCI_PORT_DROP_RUNT);

	/* DPDK's header helpers read fields in place: copy the header to an aligned buffer. */
	union {
		struct rte_ipv4_hdr h;
		uint8_t b[60];
	} ip;
	memcpy(&ip, l3, sizeof(ip.h));
	if ((ip.h.version_ihl >> 4) != 4)
		return dropped(out, RTCI_PORT_DROP_IP_HEADER);
	uint32_t ihl = (uint32_t)(ip.h.version_ihl & 0xf) * 4;
	if (ihl < sizeof(struct rte_ipv4_hdr))
		return dropped(out, RTCI_PORT_DROP_IP_HEADER);
	if (l3_len < ihl)
		return dropped(out, RTCI_PORT_DROP_RUNT);
	memcpy(&ip, l3, ihl);
	uint32_t total = rte_be_to_cpu_16(ip.h.total_length);
	/* one limit for every PMD: a datagram longer than the largest the gateway accepts is
	 * dropped as such, whether it arrived whole or cut to the PMD's frame size */
	if (total >= ihl + sizeof(struct rte_udp_hdr) &&
	    total - ihl - sizeof(struct rte_udp_hdr) > RTCI_PORT_MAX_PAYLOAD)
		return dropped(out, RTCI_PORT_DROP_TOO_LONG);
	/* frames shorter than 60 bytes arrive padded, so total may be below l3_len */
	if (total < ihl || total > l3_len)
		return dropped(out, RTCI_PORT_DROP_IP_HEADER);
	if (ck_flags & RTCI_PORT_CK_IP_BAD)
		return dropped(out, RTCI_PORT_DROP_IP_CHECKSUM);
	if (!(ck_flags & RTCI_PORT_CK_IP_GOOD) && sum_fold(ip.b, ihl, 0) != 0xffff)
		return dropped(out, RTCI_PORT_DROP_IP_CHECKSUM);
	uint16_t frag = rte_be_to_cpu_16(ip.h.fragment_offset);
	if ((frag & RTE_IPV4_HDR_MF_FLAG) || (frag & RTE_IPV4_HDR_OFFSET_MASK))
		return dropped(out, RTCI_PORT_DROP_FRAGMENT);
	uint32_t src = rte_be_to_cpu_32(ip.h.src_addr);
	if (src == 0 || (src >> 28) >= 14 || (src >> 24) == 127) /* never reply to those */
		return dropped(out, RTCI_PORT_DROP_IP_HEADER);
	if (rte_be_to_cpu_32(ip.h.dst_addr) != my_ip)
		return dropped(out, RTCI_PORT_DROP_DST_IP);
	if (ip.h.next_proto_id != IPPROTO_UDP)
		return dropped(out, RTCI_PORT_DROP_PROTO);
	if (total - ihl < sizeof(struct rte_udp_hdr))
		return dropped(out, RTCI_PORT_DROP_UDP_LENGTH);
	const uint8_t *l4 = l3 + ihl;
	struct rte_udp_hdr udp;
	memcpy(&udp, l4, sizeof(udp));
	uint32_t ulen = rte_be_to_cpu_16(udp.dgram_len);
	if (ulen != total - ihl)
		return dropped(out, RTCI_PORT_DROP_UDP_LENGTH);
	if (rte_be_to_cpu_16(udp.dst_port) != my_port)
		return dropped(out, RTCI_PORT_DROP_DST_PORT);
	if (udp.dgram_cksum != 0) { /* zero: sender computed none (allowed for UDP over IPv4) */
		if (ck_flags & RTCI_PORT_CK_L4_BAD)
			return dropped(out, RTCI_PORT_DROP_UDP_CHECKSUM);
		/* in place: DPDK's IPv4/UDP header structs are packed, so any alignment works */
		if (!(ck_flags & RTCI_PORT_CK_L4_GOOD) &&
		    sum_fold(l4, ulen, rte_ipv4_phdr_cksum(&ip.h, 0)) != 0xffff)
			return dropped(out, RTCI_PORT_DROP_UDP_CHECKSUM);
	}
	out->from.ip = src;
	out->from.port = rte_be_to_cpu_16(udp.src_port);
	out->payload_off = (uint32_t)sizeof(eth) + ihl + (uint32_t)sizeof(udp);
	out->payload_len = (uint16_t)(ulen - sizeof(udp));
	return RTCI_PORT_UDP;
}

int rtci_port_build_udp(uint8_t *buf, size_t room, const uint8_t src_mac[6], uint32_t src_ip,
			uint16_t src_port, const struct rtci_port_peer *to, const void *payload,
			size_t len)
{
	if (!buf || !to || (len && !payload))
		return -EINVAL;
	if (len > RTCI_PORT_MAX_PAYLOAD || RTCI_PORT_HDR_LEN + len > room)
		return -EMSGSIZE;
	struct rte_ether_hdr eth;
	memcpy(eth.dst_addr.addr_bytes, to->mac, RTE_ETHER_ADDR_LEN);
	memcpy(eth.src_addr.addr_bytes, src_mac, RTE_ETHER_ADDR_LEN);
	eth.ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

	struct rte_ipv4_hdr ip = {
		.version_ihl = RTE_IPV4_VHL_DEF,
		.total_length = rte_cpu_to_be_16((uint16_t)(sizeof(ip) + sizeof(struct rte_udp_hdr) + len)),
		.fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG),
		.time_to_live = 64,
		.next_proto_id = IPPROTO_UDP,
		.src_addr = rte_cpu_to_be_32(src_ip),
		.dst_addr = rte_cpu_to_be_32(to->ip),
	};
	ip.hdr_checksum = rte_ipv4_cksum(&ip);

	uint8_t *l4 = buf + sizeof(eth) + sizeof(ip);
	struct rte_udp_hdr udp = {
		.src_port = rte_cpu_to_be_16(src_port),
		.dst_port = rte_cpu_to_be_16(to->port),
		.dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(udp) + len)),
	};
	memcpy(buf, &eth, sizeof(eth));
	memcpy(buf + sizeof(eth), &ip, sizeof(ip));
	memcpy(l4, &udp, sizeof(udp));
	if (len)
		memcpy(l4 + sizeof(udp), payload, len);
	/* over the pseudo-header, UDP header and payload; DPDK sends a zero sum as 0xffff */
	struct rte_udp_hdr *u = (struct rte_udp_hdr *)l4;
	u->dgram_cksum = rte_ipv4_udptcp_cksum((const struct rte_ipv4_hdr *)(buf + sizeof(eth)), l4);
	return (int)(RTCI_PORT_HDR_LEN + len);
}

void rtci_port_arp_reply_inplace(uint8_t *frame, const uint8_t my_mac[6], uint32_t my_ip)
{
	struct rte_arp_hdr arp;
	memcpy(&arp, frame + sizeof(struct rte_ether_hdr), sizeof(arp));
	/* destination, then source MAC: the first 12 bytes of the Ethernet header */
	memcpy(frame, arp.arp_data.arp_sha.addr_bytes, RTE_ETHER_ADDR_LEN);
	memcpy(frame + RTE_ETHER_ADDR_LEN, my_mac, RTE_ETHER_ADDR_LEN);
	arp.arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	arp.arp_data.arp_tha = arp.arp_data.arp_sha;
	arp.arp_data.arp_tip = arp.arp_data.arp_sip;
	memcpy(arp.arp_data.arp_sha.addr_bytes, my_mac, RTE_ETHER_ADDR_LEN);
	arp.arp_data.arp_sip = rte_cpu_to_be_32(my_ip);
	memcpy(frame + sizeof(struct rte_ether_hdr), &arp, sizeof(arp));
}

/* ------------------------------------------------------------------------------------------ */
/* The port. */

struct neighbor {
	uint32_t ip; /* 0: free */
	uint8_t mac[6];
};

struct queue {
	struct rtci_port_stats st;
	struct neighbor *nb;
	uint32_t nb_mask;
	struct rte_mbuf *tx[TX_BUFFER];
	uint16_t ntx;
} __rte_cache_aligned;

struct rtci_port {
	uint16_t id;
	struct rtci_port_config cfg;
	struct rte_mempool *pool;
	uint8_t mac[6];
	bool rss;
	bool rx_ck_offload;
	uint16_t nq;
	struct queue *q;
	bool started;
};

static bool eal_ready;

int rtci_port_eal_init(int argc, char **argv)
{
	if (eal_ready)
		return 0;
	if (argc < 1 || !argv)
		return -EINVAL;
	/* rte_eal_init() reorders its argument vector: give it a copy of the pointers */
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, argv, (size_t)argc * sizeof(*copy));
	int rc = rte_eal_init(argc, copy);
	free(copy);
	if (rc < 0)
		return -RTCI_ERR_PORT_EAL;
	eal_ready = true;
	return 0;
}

void rtci_port_eal_cleanup(void)
{
	if (eal_ready) {
		rte_eal_cleanup();
		eal_ready = false;
	}
}

static uint32_t hash_ip(uint32_t ip)
{
	return (ip * 2654435761u) ^ (ip >> 16);
}

static void learn(struct queue *q, const struct rtci_port_peer *from)
{
	uint32_t h = hash_ip(from->ip);
	for (uint32_t i = 0; i < NEIGHBOR_PROBES; i++) {
		struct neighbor *n = &q->nb[(h + i) & q->nb_mask];
		if (n->ip == from->ip && memcmp(n->mac, from->mac, 6) == 0)
			return; /* known: leave the line clean */
		if (n->ip == from->ip || n->ip == 0) {
			n->ip = from->ip;
			memcpy(n->mac, from->mac, 6);
			return;
		}
	}
	/* table crowded: the newest sender replaces the entry at its home slot */
	struct neighbor *n = &q->nb[h & q->nb_mask];
	n->ip = from->ip;
	memcpy(n->mac, from->mac, 6);
}

int rtci_port_neighbor(const struct rtci_port *p, uint16_t queue, uint32_t ip, uint8_t mac[6])
{
	if (!p || queue >= p->cfg.rx_queues || ip == 0)
		return -EINVAL;
	const struct queue *q = &p->q[queue];
	uint32_t h = hash_ip(ip);
	for (uint32_t i = 0; i < NEIGHBOR_PROBES; i++) {
		const struct neighbor *n = &q->nb[(h + i) & q->nb_mask];
		if (n->ip == ip) {
			memcpy(mac, n->mac, 6);
			return 0;
		}
		if (n->ip == 0)
			break;
	}
	return -ENOENT;
}

int rtci_port_create(const struct rtci_port_config *cfg, struct rtci_port **out)
{
	if (!cfg || !out || cfg->rx_queues == 0 || cfg->tx_queues < cfg->rx_queues ||
	    cfg->mbufs == 0 || cfg->ipv4 == 0 || !eal_ready)
		return -EINVAL;
	uint16_t pid = cfg->port_id;
	if (pid == RTCI_PORT_ANY) {
		uint16_t first = RTE_MAX_ETHPORTS;
		RTE_ETH_FOREACH_DEV(pid) {
			first = pid;
			break;
		}
		if (first == RTE_MAX_ETHPORTS)
			return -ENODEV;
		pid = first;
	}
	if (!rte_eth_dev_is_valid_port(pid))
		return -ENODEV;

	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(pid, &info) != 0)
		return -RTCI_ERR_PORT_SETUP;
	if (cfg->rx_queues > info.max_rx_queues || cfg->tx_queues > info.max_tx_queues) {
		RTE_LOG(ERR, USER1, "port %u (%s): %u/%u queues asked, %u/%u available\n", pid,
			info.driver_name, cfg->rx_queues, cfg->tx_queues, info.max_rx_queues,
			info.max_tx_queues);
		return -EINVAL;
	}

	struct rtci_port *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->id = pid;
	p->cfg = *cfg;
	p->nq = cfg->tx_queues;
	p->q = rte_zmalloc("rtci_port_q", sizeof(*p->q) * p->nq, RTE_CACHE_LINE_SIZE);
	if (!p->q) {
		free(p);
		return -ENOMEM;
	}
	uint32_t nb = 16;
	while (nb < cfg->neighbors && nb < (1u << 24))
		nb <<= 1;
	for (uint16_t i = 0; i < p->nq; i++) {
		p->q[i].nb = calloc(nb, sizeof(struct neighbor));
		p->q[i].nb_mask = nb - 1;
		if (!p->q[i].nb)
			goto nomem;
	}

	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (cfg->rx_queues > 1 && info.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		p->rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
	}
	const uint64_t ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if ((info.rx_offload_capa & ck) == ck) {
		conf.rxmode.offloads |= ck;
		p->rx_ck_offload = true;
	}
	int rc = rte_eth_dev_configure(pid, cfg->rx_queues, cfg->tx_queues, &conf);
	if (rc < 0)
		goto setup;
	uint16_t nrx = cfg->rx_descriptors ? cfg->rx_descriptors : 1024;
	uint16_t ntx = cfg->tx_descriptors ? cfg->tx_descriptors : 1024;
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx)) < 0)
		goto setup;
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "rtci_pool_p%u", pid);
	int socket = rte_eth_dev_socket_id(pid);
	if (socket < 0)
		socket = (int)rte_socket_id();
	p->pool = rte_pktmbuf_pool_create(name, cfg->mbufs, cfg->mbuf_cache, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!p->pool) {
		RTE_LOG(ERR, USER1, "port %u: mbuf pool of %u: %s\n", pid, cfg->mbufs,
			rte_strerror(rte_errno));
		rtci_port_destroy(p);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < cfg->rx_queues; i++)
		if ((rc = rte_eth_rx_queue_setup(pid, i, nrx, (unsigned)socket, NULL, p->pool)) < 0)
			goto setup;
	for (uint16_t i = 0; i < cfg->tx_queues; i++)
		if ((rc = rte_eth_tx_queue_setup(pid, i, ntx, (unsigned)socket, NULL)) < 0)
			goto setup;
	if ((rc = rte_eth_dev_start(pid)) < 0)
		goto setup;
	p->started = true;
	struct rte_ether_addr mac;
	if ((rc = rte_eth_macaddr_get(pid, &mac)) < 0)
		goto setup;
	memcpy(p->mac, mac.addr_bytes, 6);
	if (cfg->mac_set) {
		/* answer for a MAC the port does not own: receive everything, filter in software */
		memcpy(p->mac, cfg->mac, 6);
		rte_eth_promiscuous_enable(pid);
	}
	*out = p;
	return 0;
setup:
	RTE_LOG(ERR, USER1, "port %u (%s): setup failed: %s\n", pid, info.driver_name,
		rte_strerror(-rc));
	rtci_port_destroy(p);
	return -RTCI_ERR_PORT_SETUP;
nomem:
	rtci_port_destroy(p);
	return -ENOMEM;
}

void rtci_port_destroy(struct rtci_port *p)
{
	if (!p)
		return;
	if (p->started) {
		for (uint16_t i = 0; i < p->nq; i++)
			rtci_port_flush(p, i);
		rte_eth_dev_stop(p->id);
	}
	rte_eth_dev_close(p->id);
	if (p->q)
		for (uint16_t i = 0; i < p->nq; i++)
			free(p->q[i].nb);
	rte_free(p->q);
	rte_mempool_free(p->pool);
	free(p);
}

uint16_t rtci_port_id(const struct rtci_port *p) { return p ? p->id : RTCI_PORT_ANY; }
void rtci_port_mac(const struct rtci_port *p, uint8_t mac[6]) { memcpy(mac, p->mac, 6); }
bool rtci_port_has_rss(const struct rtci_port *p) { return p && p->rss; }

int rtci_port_flush(struct rtci_port *p, uint16_t queue)
{
	if (!p || queue >= p->cfg.tx_queues)
		return -EINVAL;
	struct queue *q = &p->q[queue];
	if (q->ntx == 0)
		return 0;
	uint64_t bytes[TX_BUFFER];
	for (uint16_t i = 0; i < q->ntx; i++)
		bytes[i] = q->tx[i]->pkt_len;
	uint16_t sent = rte_eth_tx_burst(p->id, queue, q->tx, q->ntx);
	for (uint16_t i = 0; i < sent; i++)
		q->st.tx_bytes += bytes[i];
	q->st.tx_packets += sent;
	if (sent < q->ntx) {
		q->st.drops[RTCI_PORT_DROP_TX_FULL] += q->ntx - sent;
		rte_pktmbuf_free_bulk(&q->tx[sent], q->ntx - sent);
	}
	q->ntx = 0;
	return sent;
}

static void tx_enqueue(struct rtci_port *p, uint16_t queue, struct rte_mbuf *m)
{
	struct queue *q = &p->q[queue];
	q->tx[q->ntx++] = m;
	if (q->ntx == TX_BUFFER)
		rtci_port_flush(p, queue);
}

static unsigned ck_flags(const struct rtci_port *p, const struct rte_mbuf *m)
{
	if (!p->rx_ck_offload)
		return 0;
	uint64_t ipf = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	return (ipf == RTE_MBUF_F_RX_IP_CKSUM_GOOD ? RTCI_PORT_CK_IP_GOOD : 0) |
	       (ipf == RTE_MBUF_F_RX_IP_CKSUM_BAD ? RTCI_PORT_CK_IP_BAD : 0) |
	       (l4f == RTE_MBUF_F_RX_L4_CKSUM_GOOD ? RTCI_PORT_CK_L4_GOOD : 0) |
	       (l4f == RTE_MBUF_F_RX_L4_CKSUM_BAD ? RTCI_PORT_CK_L4_BAD : 0);
}

/* Parses a burst; prefetches each sender's neighbor slot so that learning it in the second
 * pass does not wait for memory once per packet (the table is far larger than the caches). */
static void parse_burst(struct rtci_port *p, struct queue *q, struct rte_mbuf **pk, uint16_t n,
			enum rtci_port_verdict *v, struct rtci_port_parsed *r)
{
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pk[i];
		if (i + 2 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pk[i + 2], void *));
		q->st.rx_packets++;
		q->st.rx_bytes += m->pkt_len;
		if (m->nb_segs > 1) {
			v[i] = RTCI_PORT_DROPPED;
			r[i].drop = RTCI_PORT_DROP_MULTISEG;
			continue;
		}
		v[i] = rtci_port_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, p->mac,
				       p->cfg.ipv4, p->cfg.udp_port, ck_flags(p, m), &r[i]);
		if (v[i] != RTCI_PORT_DROPPED)
			rte_prefetch0(&q->nb[hash_ip(r[i].from.ip) & q->nb_mask]);
	}
}

uint16_t rtci_port_rx(struct rtci_port *p, uint16_t queue, struct rtci_port_dgram *out,
		      uint16_t max)
{
	if (!p || queue >= p->cfg.rx_queues || !out || max == 0)
		return 0;
	struct queue *q = &p->q[queue];
	struct rte_mbuf *pk[RX_BURST];
	enum rtci_port_verdict v[RX_BURST];
	struct rtci_port_parsed r[RX_BURST];
	uint16_t n = rte_eth_rx_burst(p->id, queue, pk, max < RX_BURST ? max : RX_BURST);
	uint16_t k = 0;
	bool replied = false;

	parse_burst(p, q, pk, n, v, r);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pk[i];
		uint8_t *data = rte_pktmbuf_mtod(m, uint8_t *);
		switch (v[i]) {
		case RTCI_PORT_UDP:
			learn(q, &r[i].from);
			out[k] = (struct rtci_port_dgram){
				.mbuf = m,
				.payload = data + r[i].payload_off,
				.len = r[i].payload_len,
				.queue = queue,
				.from = r[i].from,
			};
			k++;
			q->st.rx_datagrams++;
			break;
		case RTCI_PORT_ARP_REQUEST:
			learn(q, &r[i].from);
			rtci_port_arp_reply_inplace(data, p->mac, p->cfg.ipv4);
			m->data_len = m->pkt_len = RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr);
			m->ol_flags = 0;
			q->st.arp_replies++;
			tx_enqueue(p, queue, m);
			replied = true;
			break;
		case RTCI_PORT_ARP_LEARN:
			learn(q, &r[i].from);
			q->st.drops[RTCI_PORT_DROP_ARP_OTHER]++;
			rte_pktmbuf_free(m);
			break;
		default:
			q->st.drops[r[i].drop]++;
			rte_pktmbuf_free(m);
			break;
		}
	}
	if (replied)
		rtci_port_flush(p, queue);
	return k;
}

void rtci_port_release(struct rtci_port_dgram *d, uint16_t n)
{
	struct rte_mbuf *m[RX_BURST];
	uint16_t k = 0;

	for (uint16_t i = 0; d && i < n; i++) {
		if (!d[i].mbuf)
			continue;
		m[k++] = d[i].mbuf;
		d[i].mbuf = NULL;
		if (k == RX_BURST) {
			rte_pktmbuf_free_bulk(m, k);
			k = 0;
		}
	}
	if (k)
		rte_pktmbuf_free_bulk(m, k);
}

int rtci_port_send_peer(struct rtci_port *p, uint16_t queue, const struct rtci_port_peer *to,
			const void *payload, size_t len)
{
	if (!p || !to || queue >= p->cfg.tx_queues)
		return -EINVAL;
	struct queue *q = &p->q[queue];
	if (len > RTCI_PORT_MAX_PAYLOAD)
		return -EMSGSIZE;
	struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
	if (!m) {
		q->st.drops[RTCI_PORT_DROP_NO_MBUF]++;
		return -ENOBUFS;
	}
	int n = rtci_port_build_udp(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_tailroom(m), p->mac,
				    p->cfg.ipv4, p->cfg.udp_port, to, payload, len);
	if (n < 0) {
		rte_pktmbuf_free(m);
		return n;
	}
	m->data_len = m->pkt_len = (uint32_t)n;
	tx_enqueue(p, queue, m);
	return 0;
}

int rtci_port_send(struct rtci_port *p, uint16_t queue, uint32_t dst_ip, uint16_t dst_port,
		   const void *payload, size_t len)
{
	if (!p || queue >= p->cfg.tx_queues)
		return -EINVAL;
	struct rtci_port_peer to = { .ip = dst_ip, .port = dst_port };
	if (queue >= p->cfg.rx_queues || rtci_port_neighbor(p, queue, dst_ip, to.mac) < 0) {
		p->q[queue].st.drops[RTCI_PORT_DROP_NO_NEIGHBOR]++;
		return -RTCI_ERR_PORT_NO_NEIGHBOR;
	}
	return rtci_port_send_peer(p, queue, &to, payload, len);
}

int rtci_port_pmd_stats(const struct rtci_port *p, struct rtci_port_pmd_stats *out)
{
	if (!p || !out)
		return -EINVAL;
	struct rte_eth_stats es;
	int rc = rte_eth_stats_get(p->id, &es);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->imissed = es.imissed;
	out->ierrors = es.ierrors;
	out->rx_nombuf = es.rx_nombuf;
	out->oerrors = es.oerrors;
	for (int i = 0; i < RTCI_PORT_PMD_QUEUES && i < RTE_ETHDEV_QUEUE_STAT_CNTRS; i++) {
		out->q_ipackets[i] = es.q_ipackets[i];
		out->q_errors[i] = es.q_errors[i];
	}
	return 0;
}

int rtci_port_stats(const struct rtci_port *p, uint16_t queue, struct rtci_port_stats *out)
{
	if (!p || !out || (queue != RTCI_PORT_ANY && queue >= p->nq))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (uint16_t i = 0; i < p->nq; i++) {
		if (queue != RTCI_PORT_ANY && i != queue)
			continue;
		const struct rtci_port_stats *s = &p->q[i].st;
		out->rx_packets += s->rx_packets;
		out->rx_bytes += s->rx_bytes;
		out->rx_datagrams += s->rx_datagrams;
		out->arp_replies += s->arp_replies;
		out->tx_packets += s->tx_packets;
		out->tx_bytes += s->tx_bytes;
		for (int d = 0; d < RTCI_PORT_DROP_COUNT; d++)
			out->drops[d] += s->drops[d];
	}
	return 0;
}
