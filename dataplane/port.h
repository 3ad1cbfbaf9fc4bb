/* DPDK port layer of the gateway: EAL start-up, one ethdev with N RX/TX queues (RSS when the
 * port has it), mbuf pool, RX/TX bursts, ARP replies for the gateway's IPv4 address, IPv4/UDP
 * validation and reply construction, a neighbor table per RX queue learned from received
 * packets, and a counter for every drop reason.
 *
 * Threading: queue q (RX q and TX q, with its neighbor table and counters) belongs to one lcore
 * at a time. A thread replying on another TX queue passes the peer (MAC, IP, port) it kept from
 * the received datagram to rtci_port_send_peer().
 *
 * rtci_port_parse() and rtci_port_build_udp() work on plain byte buffers without the EAL, so they
 * are unit-tested and fuzzed on their own. */
#ifndef RTCI_DATAPLANE_PORT_H
#define RTCI_DATAPLANE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_mbuf;

#define RTCI_PORT_ANY 0xffff   /* port_id: the first available ethdev */
#define RTCI_PORT_HDR_LEN 42   /* Ethernet 14 + IPv4 20 + UDP 8 */
#define RTCI_PORT_MAX_PAYLOAD 1472 /* 1500-byte IP MTU; larger data is fragmented by the protocol */

enum rtci_port_drop {
	RTCI_PORT_DROP_RUNT = 0,     /* shorter than its headers */
	RTCI_PORT_DROP_MULTISEG,     /* chained mbuf (jumbo frame) */
	RTCI_PORT_DROP_DST_MAC,      /* unicast to another MAC */
	RTCI_PORT_DROP_ETHERTYPE,    /* neither IPv4 nor ARP */
	RTCI_PORT_DROP_ARP_OTHER,    /* ARP not asking for the gateway's address */
	RTCI_PORT_DROP_IP_HEADER,    /* version, IHL, total length inconsistent */
	RTCI_PORT_DROP_IP_CHECKSUM,
	RTCI_PORT_DROP_FRAGMENT,     /* IP fragment: the wire protocol never fragments at IP level */
	RTCI_PORT_DROP_DST_IP,       /* not addressed to the gateway */
	RTCI_PORT_DROP_PROTO,        /* not UDP */
	RTCI_PORT_DROP_UDP_LENGTH,
	RTCI_PORT_DROP_UDP_CHECKSUM,
	RTCI_PORT_DROP_DST_PORT,     /* UDP to another port */
	RTCI_PORT_DROP_NO_NEIGHBOR,  /* reply to an IP whose MAC is unknown */
	RTCI_PORT_DROP_NO_MBUF,      /* pool empty when building a reply */
	RTCI_PORT_DROP_TX_FULL,      /* TX queue did not take the packet */
	RTCI_PORT_DROP_TOO_LONG,     /* UDP payload over RTCI_PORT_MAX_PAYLOAD (whole or cut short) */
	RTCI_PORT_DROP_COUNT
};

struct rtci_port_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t rx_datagrams;       /* valid UDP datagrams handed to the caller */
	uint64_t arp_replies;
	uint64_t tx_packets, tx_bytes;
	uint64_t drops[RTCI_PORT_DROP_COUNT];
};

/* What the PMD itself counts, below the gateway's parser: packets the NIC or the kernel ring
 * dropped before the gateway saw them (rte_eth_stats). */
#define RTCI_PORT_PMD_QUEUES 16
struct rtci_port_pmd_stats {
	uint64_t imissed;            /* RX ring full: dropped by the hardware / kernel ring */
	uint64_t ierrors;            /* erroneous packets received */
	uint64_t rx_nombuf;          /* RX mbuf allocation failures */
	uint64_t oerrors;            /* failed transmissions */
	uint64_t q_ipackets[RTCI_PORT_PMD_QUEUES], q_errors[RTCI_PORT_PMD_QUEUES];
};

struct rtci_port_config {
	uint16_t port_id;            /* ethdev id or RTCI_PORT_ANY */
	uint16_t rx_queues, tx_queues;
	uint16_t rx_descriptors, tx_descriptors;
	uint32_t mbufs, mbuf_cache;
	uint32_t ipv4;               /* gateway address, host byte order */
	uint8_t mac[6];
	bool mac_set;                /* false: the port's own MAC */
	uint16_t udp_port;           /* host byte order */
	uint32_t neighbors;          /* neighbor entries per RX queue (rounded up to a power of 2) */
};

/* The sender of a datagram, enough to reply to it from any lcore. */
struct rtci_port_peer {
	uint8_t mac[6];
	uint32_t ip;                 /* host byte order */
	uint16_t port;               /* host byte order */
};

/* A valid UDP datagram to the gateway's address and port. The mbuf stays the caller's until
 * rtci_port_release(); payload points into it. */
struct rtci_port_dgram {
	struct rte_mbuf *mbuf;
	const uint8_t *payload;
	uint16_t len;
	uint16_t queue;
	struct rtci_port_peer from;
};

/* Outcome of parsing one Ethernet frame. */
enum rtci_port_verdict {
	RTCI_PORT_UDP = 0,           /* datagram for us: see rtci_port_parsed */
	RTCI_PORT_ARP_REQUEST,       /* ARP request for our address: answer it */
	RTCI_PORT_ARP_LEARN,         /* ARP reply or request for another host: learn, don't answer */
	RTCI_PORT_DROPPED,           /* see drop */
};

struct rtci_port_parsed {
	enum rtci_port_drop drop;    /* when RTCI_PORT_DROPPED */
	struct rtci_port_peer from;  /* UDP: sender; ARP: sender MAC and IP */
	uint32_t payload_off;        /* UDP only */
	uint16_t payload_len;
};

/* Checksum offload results passed to rtci_port_parse() (from mbuf ol_flags). */
#define RTCI_PORT_CK_IP_GOOD 1u
#define RTCI_PORT_CK_IP_BAD 2u
#define RTCI_PORT_CK_L4_GOOD 4u
#define RTCI_PORT_CK_L4_BAD 8u

/* Classifies a frame addressed to (my_mac, my_ip, my_port); checksums are verified in software
 * unless ck_flags says the NIC already did. */
enum rtci_port_verdict rtci_port_parse(const uint8_t *frame, uint32_t len, const uint8_t my_mac[6],
				       uint32_t my_ip, uint16_t my_port, unsigned ck_flags,
				       struct rtci_port_parsed *out);

/* Writes Ethernet + IPv4 + UDP headers and payload with correct checksums into buf. Returns
 * the frame length or -EMSGSIZE / -EINVAL. */
int rtci_port_build_udp(uint8_t *buf, size_t room, const uint8_t src_mac[6], uint32_t src_ip,
			uint16_t src_port, const struct rtci_port_peer *to, const void *payload,
			size_t len);

/* Turns an ARP request for my_ip (as classified by rtci_port_parse) into the reply, in place. */
void rtci_port_arp_reply_inplace(uint8_t *frame, const uint8_t my_mac[6], uint32_t my_ip);

const char *rtci_port_drop_name(enum rtci_port_drop d);

struct rtci_port;

/* rte_eal_init() on the argument vector (argv[0] is a program name). Once per process.
 * Returns 0 or -RTCI_ERR_PORT_EAL. */
int rtci_port_eal_init(int argc, char **argv);
void rtci_port_eal_cleanup(void);

/* Configures and starts the port. Returns 0, -EINVAL, -ENODEV, -ENOMEM or -RTCI_ERR_PORT_SETUP. */
int rtci_port_create(const struct rtci_port_config *cfg, struct rtci_port **out);
/* Stops and closes the port and frees its pool (every mbuf must be released first). */
void rtci_port_destroy(struct rtci_port *p);

uint16_t rtci_port_id(const struct rtci_port *p);
void rtci_port_mac(const struct rtci_port *p, uint8_t mac[6]);
bool rtci_port_has_rss(const struct rtci_port *p);

/* One RX burst on a queue: answers ARP, learns neighbors, counts and frees what is dropped,
 * and returns up to max valid datagrams in out. Never blocks. */
uint16_t rtci_port_rx(struct rtci_port *p, uint16_t queue, struct rtci_port_dgram *out,
		      uint16_t max);
void rtci_port_release(struct rtci_port_dgram *d, uint16_t n);

/* Queues a UDP datagram from the gateway's address/port for TX on a queue; sent when the
 * queue's buffer fills or on rtci_port_flush(). send() finds the MAC in the queue's neighbor
 * table (-RTCI_ERR_PORT_NO_NEIGHBOR, counted, when unknown). Returns 0, -EMSGSIZE, -ENOBUFS. */
int rtci_port_send(struct rtci_port *p, uint16_t queue, uint32_t dst_ip, uint16_t dst_port,
		   const void *payload, size_t len);
int rtci_port_send_peer(struct rtci_port *p, uint16_t queue, const struct rtci_port_peer *to,
			const void *payload, size_t len);
/* Sends what is buffered on a TX queue; returns the number sent. */
int rtci_port_flush(struct rtci_port *p, uint16_t queue);

/* MAC learned on an RX queue for an IP (host order); 0 or -ENOENT. */
int rtci_port_neighbor(const struct rtci_port *p, uint16_t queue, uint32_t ip, uint8_t mac[6]);

/* Counters of one queue, or (queue == RTCI_PORT_ANY) summed over all queues. */
int rtci_port_stats(const struct rtci_port *p, uint16_t queue, struct rtci_port_stats *out);
/* The PMD's own counters (rte_eth_stats_get); 0 or a negative code. */
int rtci_port_pmd_stats(const struct rtci_port *p, struct rtci_port_pmd_stats *out);

#endif
