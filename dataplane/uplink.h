/* UDP uplink of an edge device on io_uring (no DPDK).
 *
 * Send: datagrams go out from registered buffers ("slots", io_uring_register_buffers). Below
 * zc_threshold bytes a slot is sent with IORING_OP_SEND (the kernels tested, up to 6.18, reject
 * IORING_RECVSEND_FIXED_BUF on plain SEND with EINVAL, so that path reads the slot's memory as a
 * plain buffer); from zc_threshold up with IORING_OP_SEND_ZC on the fixed buffer index, and the
 * slot is reused only after the kernel's notification completion. bench/uplink measures where
 * zero-copy starts to pay.
 * Receive: multishot recv into a provided buffer ring; each datagram goes to a callback and its
 * buffer straight back to the ring.
 * Pacing: an optional token bucket (bytes/s + burst) that the caller retunes at any time, e.g.
 * from a bandwidth trace. Every call takes a timeout and returns -RTCI_ERR_UPLINK_TIMEOUT rather
 * than blocking indefinitely.
 *
 * Send and receive use separate rings, so one thread may send while another receives; each
 * direction is used by one thread at a time. */
#ifndef RTCI_DATAPLANE_UPLINK_H
#define RTCI_DATAPLANE_UPLINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct rtci_uplink_config {
	const char *peer_ip;        /* IPv4 of the gateway; NULL: no fixed peer, every send names
				       its own (rtci_uplink_send_slots_to), replies from anyone */
	uint16_t peer_port;
	const char *local_ip;       /* NULL: any */
	uint16_t local_port;        /* 0: ephemeral */
	uint32_t slots;             /* send buffers in flight, default 64 */
	uint32_t slot_size;         /* bytes per send buffer, default 2048, at most 65507 */
	uint32_t recv_buffers;      /* provided buffers, power of 2, default 256 */
	uint32_t recv_buffer_size;  /* default 2048; longer datagrams are truncated and counted */
	uint32_t zc_threshold;      /* bytes; UINT32_MAX: never zero-copy; 0: default */
	uint32_t sndbuf, rcvbuf;    /* socket buffer sizes, 0: system default */
};

/* Default zero-copy threshold (bytes): above the largest UDP payload, i.e. off, because on
 * loopback and veth the kernel copies SEND_ZC sends anyway and they cost more than plain sends
 * (figures in docs/operations.md). Lower it only for a NIC path where bench/uplink --peer shows
 * zero-copy winning. */
#define RTCI_UPLINK_ZC_THRESHOLD_DEFAULT 65536u

struct rtci_uplink_stats {
	uint64_t sent, sent_bytes;
	uint64_t sent_zc;           /* sends that went through SEND_ZC */
	uint64_t zc_copied;         /* ... of which the kernel copied anyway (e.g. loopback) */
	uint64_t send_errors;       /* failed sends (e.g. ECONNREFUSED from an ICMP error) */
	uint64_t paced_waits;       /* times the token bucket made a send wait */
	uint64_t received, received_bytes;
	uint64_t recv_truncated;    /* datagrams that filled a whole buffer */
	uint64_t recv_rearmed;      /* multishot recv re-armed (ring ran dry, or kernel ended it) */
};

typedef void (*rtci_uplink_recv_fn)(void *user, const uint8_t *data, size_t len);

struct rtci_uplink;

/* Returns 0 or -EINVAL, -ENOMEM, -errno from socket/bind/connect or io_uring setup. */
int rtci_uplink_create(const struct rtci_uplink_config *cfg, struct rtci_uplink **out);
void rtci_uplink_destroy(struct rtci_uplink *u);
int rtci_uplink_fd(const struct rtci_uplink *u);
/* Local port actually bound (host order). */
uint16_t rtci_uplink_local_port(const struct rtci_uplink *u);

/* Send buffers the caller may fill in place before rtci_uplink_send_slots(). */
uint32_t rtci_uplink_slot_count(const struct rtci_uplink *u);
uint32_t rtci_uplink_slot_size(const struct rtci_uplink *u);
uint8_t *rtci_uplink_slot(struct rtci_uplink *u, uint32_t slot);

/* Sends slots 0..n-1 with the given lengths (n <= slot count) and waits until every slot is
 * reusable again. Returns the number of datagrams the kernel accepted (failed sends are counted,
 * not fatal), -RTCI_ERR_UPLINK_TIMEOUT when the time ran out first (slots still in flight are
 * waited for by the next call), or another negative code. */
int rtci_uplink_send_slots(struct rtci_uplink *u, const uint32_t *len, uint32_t n,
			   int timeout_ms);
/* The same on an uplink without a fixed peer: slot i goes to to[i] (a device of a cluster talks
 * to the gateway that placement gave it). -EINVAL on an uplink with a fixed peer. */
struct sockaddr_in;
int rtci_uplink_send_slots_to(struct rtci_uplink *u, const uint32_t *len,
			      const struct sockaddr_in *to, uint32_t n, int timeout_ms);
/* Copies each datagram into a slot and sends them in rounds of at most slot count. */
int rtci_uplink_send(struct rtci_uplink *u, const struct iovec *dgrams, uint32_t n,
		     int timeout_ms);

/* Delivers received datagrams to fn until at least one arrived and no more are ready, or the
 * timeout passed. Returns the number delivered (0 on timeout) or a negative code, e.g.
 * -ECONNREFUSED when the peer's host answered with ICMP port unreachable (the next call listens
 * again). */
int rtci_uplink_recv(struct rtci_uplink *u, rtci_uplink_recv_fn fn, void *user, int timeout_ms);

/* Token bucket: at most bytes_per_s on average with bursts up to burst_bytes (0 rate: no
 * pacing). Counts IP payload bytes (the datagrams). Takes effect at once. */
void rtci_uplink_set_rate(struct rtci_uplink *u, double bytes_per_s, uint32_t burst_bytes);
void rtci_uplink_set_zc_threshold(struct rtci_uplink *u, uint32_t bytes);

void rtci_uplink_stats(const struct rtci_uplink *u, struct rtci_uplink_stats *out);

#endif
