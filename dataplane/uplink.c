#include "common/clock.h"
#include "dataplane/uplink.h"

#include "common/rtci_error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Newer than liburing 2.3's headers; the kernels we run (6.x) know them. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define TAG_ZC (1ull << 32)
#define RECV_TAG 0xfeedull
#define RECV_GROUP 0

struct rtci_uplink {
	int fd;
	uint16_t local_port;
	struct io_uring tx, rx;
	bool tx_ready, rx_ready;
	uint8_t *slots;
	uint32_t nslots, slot_size;
	size_t slots_bytes;
	uint32_t pending;          /* send CQEs (results and notifications) still to come */
	uint32_t zc_threshold;
	uint64_t zc_report;        /* IORING_SEND_ZC_REPORT_USAGE when the kernel takes it */
	bool connected;            /* peer_ip given: plain sends; else each send names its peer */
	struct msghdr *msgs;       /* unconnected: one message header per slot ... */
	struct iovec *msg_iov;
	struct sockaddr_in *msg_to;

	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *rbufs;
	uint32_t nrbufs, rbuf_size;
	bool armed;

	double rate, burst, tokens; /* token bucket, bytes */
	double last_refill;

	struct rtci_uplink_stats st;
};

static struct __kernel_timespec until(double deadline)
{
	double left = deadline - rtci_mono_s();
	if (left < 0)
		left = 0;
	struct __kernel_timespec ts = { .tv_sec = (long long)left,
					.tv_nsec = (long long)((left - (double)(long long)left) * 1e9) };
	return ts;
}

static int make_addr(const char *ip, uint16_t port, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	if (!ip) {
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

int rtci_uplink_create(const struct rtci_uplink_config *cfg, struct rtci_uplink **out)
{
	if (!cfg || !out || (cfg->peer_ip && cfg->peer_port == 0))
		return -EINVAL;
	struct rtci_uplink_config c = *cfg;
	if (!c.slots)
		c.slots = 64;
	if (!c.slot_size)
		c.slot_size = 2048;
	if (!c.recv_buffers)
		c.recv_buffers = 256;
	if (!c.recv_buffer_size)
		c.recv_buffer_size = 2048;
	if (!c.zc_threshold)
		c.zc_threshold = RTCI_UPLINK_ZC_THRESHOLD_DEFAULT;
	if (c.slots > 1024 || c.slot_size > 65507 || c.recv_buffers > 32768 ||
	    (c.recv_buffers & (c.recv_buffers - 1)) || c.recv_buffer_size > 65536)
		return -EINVAL;

	struct sockaddr_in peer, local;
	if (make_addr(c.peer_ip, c.peer_port, &peer) || make_addr(c.local_ip, c.local_port, &local))
		return -EINVAL;

	struct rtci_uplink *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	u->nslots = c.slots;
	u->slot_size = c.slot_size;
	u->zc_threshold = c.zc_threshold;
	u->zc_report = IORING_SEND_ZC_REPORT_USAGE;
	int rc;

	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		goto err_errno;
	if (c.sndbuf && setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &c.sndbuf, sizeof(c.sndbuf)) < 0)
		goto err_errno;
	if (c.rcvbuf && setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &c.rcvbuf, sizeof(c.rcvbuf)) < 0)
		goto err_errno;
	u->connected = c.peer_ip != NULL;
	if (bind(u->fd, (struct sockaddr *)&local, sizeof(local)) < 0 ||
	    (u->connected && connect(u->fd, (struct sockaddr *)&peer, sizeof(peer)) < 0))
		goto err_errno;
	if (!u->connected) {
		u->msgs = calloc(u->nslots, sizeof(*u->msgs));
		u->msg_iov = calloc(u->nslots, sizeof(*u->msg_iov));
		u->msg_to = calloc(u->nslots, sizeof(*u->msg_to));
		if (!u->msgs || !u->msg_iov || !u->msg_to) {
			rc = -ENOMEM;
			goto err;
		}
	}
	socklen_t sl = sizeof(local);
	if (getsockname(u->fd, (struct sockaddr *)&local, &sl) < 0)
		goto err_errno;
	u->local_port = ntohs(local.sin_port);

	/* send side: one ring, registered slots */
	unsigned entries = 8;
	while (entries < 2 * u->nslots)
		entries <<= 1;
	if ((rc = io_uring_queue_init(entries, &u->tx, 0)) < 0)
		goto err;
	u->tx_ready = true;
	u->slots_bytes = ((size_t)u->nslots * u->slot_size + 4095) & ~(size_t)4095;
	u->slots = aligned_alloc(4096, u->slots_bytes);
	struct iovec *iov = calloc(u->nslots, sizeof(*iov));
	if (!u->slots || !iov) {
		free(iov);
		rc = -ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < u->nslots; i++) {
		iov[i].iov_base = u->slots + (size_t)i * u->slot_size;
		iov[i].iov_len = u->slot_size;
	}
	rc = io_uring_register_buffers(&u->tx, iov, u->nslots);
	free(iov);
	if (rc < 0)
		goto err;

	/* receive side: its own ring and a provided-buffer ring for multishot recv */
	if ((rc = io_uring_queue_init(64, &u->rx, 0)) < 0)
		goto err;
	u->rx_ready = true;
	u->nrbufs = c.recv_buffers;
	u->rbuf_size = c.recv_buffer_size;
	u->br_bytes = (u->nrbufs * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		goto err_errno;
	}
	u->rbufs = malloc((size_t)u->nrbufs * u->rbuf_size);
	if (!u->rbufs) {
		rc = -ENOMEM;
		goto err;
	}
	struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)u->br,
					.ring_entries = u->nrbufs,
					.bgid = RECV_GROUP };
	if ((rc = io_uring_register_buf_ring(&u->rx, &reg, 0)) < 0)
		goto err;
	io_uring_buf_ring_init(u->br);
	int mask = io_uring_buf_ring_mask(u->nrbufs);
	for (uint32_t i = 0; i < u->nrbufs; i++)
		io_uring_buf_ring_add(u->br, u->rbufs + (size_t)i * u->rbuf_size, u->rbuf_size,
				      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->nrbufs);

	u->last_refill = rtci_mono_s();
	*out = u;
	return 0;
err_errno:
	rc = -errno;
err:
	rtci_uplink_destroy(u);
	return rc;
}

void rtci_uplink_destroy(struct rtci_uplink *u)
{
	if (!u)
		return;
	if (u->rx_ready)
		io_uring_queue_exit(&u->rx);
	if (u->tx_ready)
		io_uring_queue_exit(&u->tx);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->rbufs);
	free(u->slots);
	free(u->msgs);
	free(u->msg_iov);
	free(u->msg_to);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

int rtci_uplink_fd(const struct rtci_uplink *u) { return u ? u->fd : -1; }
uint16_t rtci_uplink_local_port(const struct rtci_uplink *u) { return u ? u->local_port : 0; }
uint32_t rtci_uplink_slot_count(const struct rtci_uplink *u) { return u ? u->nslots : 0; }
uint32_t rtci_uplink_slot_size(const struct rtci_uplink *u) { return u ? u->slot_size : 0; }

uint8_t *rtci_uplink_slot(struct rtci_uplink *u, uint32_t slot)
{
	return u && slot < u->nslots ? u->slots + (size_t)slot * u->slot_size : NULL;
}

void rtci_uplink_set_rate(struct rtci_uplink *u, double bytes_per_s, uint32_t burst_bytes)
{
	if (!u)
		return;
	u->rate = bytes_per_s > 0 ? bytes_per_s : 0;
	u->burst = burst_bytes;
	if (u->tokens > u->burst)
		u->tokens = u->burst;
	u->last_refill = rtci_mono_s();
}

void rtci_uplink_set_zc_threshold(struct rtci_uplink *u, uint32_t bytes)
{
	if (u)
		u->zc_threshold = bytes;
}

void rtci_uplink_stats(const struct rtci_uplink *u, struct rtci_uplink_stats *out)
{
	if (u && out)
		*out = u->st;
}

/* Handles one send-ring completion; returns 1 when it completed a send of this round. */
static int reap_send(struct rtci_uplink *u, struct io_uring_cqe *cqe)
{
	int done = 0;
	u->pending--;
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
			u->st.zc_copied++;
	} else {
		if (cqe->res == -EINVAL && (cqe->user_data & TAG_ZC) && u->zc_report) {
			/* kernel without usage reports: drop the flag from now on */
			u->zc_report = 0;
		}
		if (cqe->res < 0) {
			u->st.send_errors++;
		} else {
			u->st.sent++;
			u->st.sent_bytes += (uint64_t)cqe->res;
			if (cqe->user_data & TAG_ZC)
				u->st.sent_zc++;
			done = 1;
		}
		if (cqe->flags & IORING_CQE_F_MORE)
			u->pending++; /* the notification follows: slot busy until then */
	}
	io_uring_cqe_seen(&u->tx, cqe);
	return done;
}

static int wait_pending(struct rtci_uplink *u, double deadline, int *done)
{
	while (u->pending) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = until(deadline);
		int rc = io_uring_wait_cqe_timeout(&u->tx, &cqe, &ts);
		if (rc == -ETIME)
			return -RTCI_ERR_UPLINK_TIMEOUT;
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
		int d = reap_send(u, cqe);
		if (done)
			*done += d;
	}
	return 0;
}

/* Token bucket; may submit what is prepared and sleep. */
static int pace(struct rtci_uplink *u, uint32_t len, double deadline)
{
	if (u->rate <= 0)
		return 0;
	double t = rtci_mono_s();
	u->tokens += (t - u->last_refill) * u->rate;
	if (u->tokens > u->burst)
		u->tokens = u->burst;
	u->last_refill = t;
	if (u->tokens < 0) {
		/* a deficit from the previous datagram: wait until it is paid back */
		double wait = -u->tokens / u->rate;
		if (t + wait > deadline)
			return -RTCI_ERR_UPLINK_TIMEOUT;
		io_uring_submit(&u->tx);
		u->st.paced_waits++;
		struct timespec ts = { .tv_sec = (time_t)wait,
				       .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		t = rtci_mono_s();
		u->tokens += (t - u->last_refill) * u->rate;
		u->last_refill = t;
	}
	u->tokens -= len; /* may go negative: the next datagram pays */
	return 0;
}

/* Queues slot i: a plain send on a connected socket, a sendmsg to to[i] on another. */
static void prep_slot(struct rtci_uplink *u, struct io_uring_sqe *sqe, uint32_t i, uint32_t len,
		      const struct sockaddr_in *to)
{
	uint8_t *buf = u->slots + (size_t)i * u->slot_size;
	if (to) {
		u->msg_to[i] = *to;
		u->msg_iov[i] = (struct iovec){ buf, len };
		u->msgs[i] = (struct msghdr){ .msg_name = &u->msg_to[i],
					      .msg_namelen = sizeof(u->msg_to[i]),
					      .msg_iov = &u->msg_iov[i], .msg_iovlen = 1 };
		io_uring_prep_sendmsg(sqe, u->fd, &u->msgs[i], 0);
		sqe->user_data = i;
	} else if (len >= u->zc_threshold) {
		io_uring_prep_send_zc_fixed(sqe, u->fd, buf, len, 0, (unsigned)u->zc_report, i);
		sqe->user_data = i | TAG_ZC;
	} else {
		io_uring_prep_send(sqe, u->fd, buf, len, 0);
		sqe->user_data = i;
	}
}

static int send_round(struct rtci_uplink *u, const uint32_t *len,
		      const struct sockaddr_in *to, uint32_t n, int timeout_ms)
{
	if (!u || (n && !len) || n > u->nslots || timeout_ms < 0 || (!to) != u->connected)
		return -EINVAL;
	double deadline = rtci_mono_s() + timeout_ms / 1000.0;
	int rc = wait_pending(u, deadline, NULL); /* slots of a timed-out round */
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < n; i++)
		if (len[i] > u->slot_size)
			return -RTCI_ERR_UPLINK_TOO_BIG;

	int done = 0;
	for (uint32_t i = 0; i < n; i++) {
		if ((rc = pace(u, len[i], deadline)) < 0)
			break;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->tx);
		if (!sqe) {
			io_uring_submit(&u->tx);
			sqe = io_uring_get_sqe(&u->tx);
			if (!sqe) {
				rc = -EBUSY;
				break;
			}
		}
		prep_slot(u, sqe, i, len[i], to ? &to[i] : NULL);
		u->pending++;
	}
	int sub = io_uring_submit(&u->tx);
	if (sub < 0 && rc == 0)
		rc = sub;
	int wrc = wait_pending(u, deadline, &done);
	if (rc < 0)
		return rc;
	if (wrc < 0)
		return wrc;
	return done;
}

int rtci_uplink_send_slots(struct rtci_uplink *u, const uint32_t *len, uint32_t n,
			   int timeout_ms)
{
	return send_round(u, len, NULL, n, timeout_ms);
}

int rtci_uplink_send_slots_to(struct rtci_uplink *u, const uint32_t *len,
			      const struct sockaddr_in *to, uint32_t n, int timeout_ms)
{
	return to ? send_round(u, len, to, n, timeout_ms) : -EINVAL;
}

int rtci_uplink_send(struct rtci_uplink *u, const struct iovec *dgrams, uint32_t n, int timeout_ms)
{
	if (!u || (n && !dgrams) || timeout_ms < 0)
		return -EINVAL;
	double deadline = rtci_mono_s() + timeout_ms / 1000.0;
	uint32_t lens[1024];
	int total = 0;
	for (uint32_t i = 0; i < n; i++)
		if (dgrams[i].iov_len > u->slot_size)
			return -RTCI_ERR_UPLINK_TOO_BIG;
	for (uint32_t off = 0; off < n;) {
		uint32_t k = n - off < u->nslots ? n - off : u->nslots;
		/* the slots are free only once the previous round completed */
		int rc = wait_pending(u, deadline, NULL);
		if (rc < 0)
			return rc;
		for (uint32_t i = 0; i < k; i++) {
			memcpy(u->slots + (size_t)i * u->slot_size, dgrams[off + i].iov_base,
			       dgrams[off + i].iov_len);
			lens[i] = (uint32_t)dgrams[off + i].iov_len;
		}
		double left_ms = (deadline - rtci_mono_s()) * 1000.0;
		rc = rtci_uplink_send_slots(u, lens, k, left_ms > 0 ? (int)left_ms : 0);
		if (rc < 0)
			return rc;
		total += rc;
		off += k;
	}
	return total;
}

static int arm_recv(struct rtci_uplink *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->rx);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, u->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RECV_GROUP;
	sqe->user_data = RECV_TAG;
	int rc = io_uring_submit(&u->rx);
	if (rc < 0)
		return rc;
	u->armed = true;
	return 0;
}

int rtci_uplink_recv(struct rtci_uplink *u, rtci_uplink_recv_fn fn, void *user, int timeout_ms)
{
	if (!u || !fn || timeout_ms < 0)
		return -EINVAL;
	double deadline = rtci_mono_s() + timeout_ms / 1000.0;
	int delivered = 0;
	int mask = io_uring_buf_ring_mask(u->nrbufs);

	for (;;) {
		if (!u->armed) {
			int rc = arm_recv(u);
			if (rc < 0)
				return delivered ? delivered : rc;
		}
		struct io_uring_cqe *cqe;
		int rc;
		if (delivered == 0) {
			struct __kernel_timespec ts = until(deadline);
			rc = io_uring_wait_cqe_timeout(&u->rx, &cqe, &ts);
			if (rc == -ETIME)
				return 0;
			if (rc == -EINTR)
				continue;
		} else {
			rc = io_uring_peek_cqe(&u->rx, &cqe);
			if (rc == -EAGAIN)
				return delivered;
		}
		if (rc < 0)
			return delivered ? delivered : rc;

		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			u->armed = false; /* multishot ended (error or no buffer): re-arm */
			u->st.recv_rearmed++;
		}
		if (cqe->res >= 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			uint8_t *data = u->rbufs + (size_t)bid * u->rbuf_size;
			size_t len = (size_t)cqe->res;
			if (len == u->rbuf_size)
				u->st.recv_truncated++;
			u->st.received++;
			u->st.received_bytes += len;
			io_uring_cqe_seen(&u->rx, cqe);
			fn(user, data, len);
			io_uring_buf_ring_add(u->br, data, u->rbuf_size, (unsigned short)bid, mask, 0);
			io_uring_buf_ring_advance(u->br, 1);
			delivered++;
		} else {
			int res = cqe->res;
			io_uring_cqe_seen(&u->rx, cqe);
			/* a socket error (e.g. -ECONNREFUSED after an ICMP port unreachable) goes to
			 * the caller rather than spinning; -ENOBUFS only means the ring ran dry */
			if (res < 0 && res != -ENOBUFS)
				return delivered ? delivered : res;
			if (delivered == 0 && rtci_mono_s() >= deadline)
				return 0;
		}
	}
}
