/* io_uring uplink over loopback against a plain UDP echo socket. */
#include "dataplane/uplink.h"
#include "common/clock.h"
#include "common/rtci_error.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct echo {
	int fd;
	uint16_t port;
	pthread_t th;
	atomic_int stop;
	atomic_int count;
};

static void *echo_main(void *p)
{
	struct echo *e = p;
	static __thread uint8_t buf[65536];
	while (!atomic_load(&e->stop)) {
		struct pollfd pfd = { .fd = e->fd, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(e->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			continue;
		atomic_fetch_add(&e->count, 1);
		sendto(e->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static void echo_start(struct echo *e)
{
	memset(e, 0, sizeof(*e));
	e->fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(e->fd, 0);
	int big = 4 << 20;
	setsockopt(e->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(bind(e->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(e->fd, (struct sockaddr *)&a, &l);
	e->port = ntohs(a.sin_port);
	pthread_create(&e->th, NULL, echo_main, e);
}

static void echo_stop(struct echo *e)
{
	atomic_store(&e->stop, 1);
	pthread_join(e->th, NULL);
	close(e->fd);
}

struct got {
	int n;
	size_t len[256];
	uint8_t first[256];
	uint8_t last[256];
	int content_ok;
};

static void on_dgram(void *user, const uint8_t *d, size_t len)
{
	struct got *g = user;
	if (g->n < 256) {
		g->len[g->n] = len;
		g->first[g->n] = len ? d[0] : 0;
		g->last[g->n] = len ? d[len - 1] : 0;
		/* every byte of datagram k is k + position */
		for (size_t i = 0; i < len; i++)
			if (d[i] != (uint8_t)(d[0] + i))
				g->content_ok = 0;
	}
	g->n++;
}

static struct rtci_uplink *connect_to(uint16_t port, uint32_t zc_threshold, uint32_t slot_size)
{
	struct rtci_uplink_config c = {
		.peer_ip = "127.0.0.1", .peer_port = port, .slots = 16, .slot_size = slot_size,
		.recv_buffers = 64, .recv_buffer_size = 65536, .zc_threshold = zc_threshold,
		.rcvbuf = 4 << 20,
	};
	struct rtci_uplink *u = NULL;
	int rc = rtci_uplink_create(&c, &u);
	cr_assert_eq(rc, 0, "create: %s", rtci_strerror(rc));
	return u;
}

static void roundtrip(uint32_t zc_threshold, size_t size, int count)
{
	struct echo e;
	echo_start(&e);
	struct rtci_uplink *u = connect_to(e.port, zc_threshold, 65507);
	cr_assert_neq(rtci_uplink_local_port(u), 0);

	struct iovec iov[40];
	uint8_t *bufs = malloc(size * (size_t)count);
	for (int k = 0; k < count; k++) {
		for (size_t i = 0; i < size; i++)
			bufs[(size_t)k * size + i] = (uint8_t)(k * 3 + i);
		iov[k].iov_base = bufs + (size_t)k * size;
		iov[k].iov_len = size;
	}
	int sent = rtci_uplink_send(u, iov, (uint32_t)count, 5000);
	cr_assert_eq(sent, count, "sent %d: %s", sent, sent < 0 ? rtci_strerror(sent) : "");

	struct got g = { .content_ok = 1 };
	for (int tries = 0; tries < 50 && g.n < count; tries++) {
		int r = rtci_uplink_recv(u, on_dgram, &g, 200);
		cr_assert_geq(r, 0, "recv: %s", rtci_strerror(r));
	}
	cr_expect_eq(g.n, count);
	cr_expect(g.content_ok, "payload bytes changed");
	for (int k = 0; k < g.n && k < count; k++)
		cr_expect_eq(g.len[k], size);

	struct rtci_uplink_stats st;
	rtci_uplink_stats(u, &st);
	cr_expect_eq(st.sent, (uint64_t)count);
	cr_expect_eq(st.sent_bytes, (uint64_t)count * size);
	cr_expect_eq(st.received, (uint64_t)count);
	if (size >= zc_threshold)
		cr_expect_eq(st.sent_zc, (uint64_t)count, "zero-copy path used");
	else
		cr_expect_eq(st.sent_zc, 0);
	cr_expect_eq(st.send_errors, 0);
	rtci_uplink_destroy(u);
	free(bufs);
	echo_stop(&e);
}

Test(uplink, plain_send_roundtrip) { roundtrip(UINT32_MAX, 1200, 40); }
Test(uplink, zero_copy_send_roundtrip) { roundtrip(1024, 30000, 40); }
Test(uplink, small_datagrams_roundtrip) { roundtrip(RTCI_UPLINK_ZC_THRESHOLD_DEFAULT, 1, 20); }

Test(uplink, recv_times_out_without_traffic)
{
	struct echo e;
	echo_start(&e);
	struct rtci_uplink *u = connect_to(e.port, 0, 2048);
	struct got g = { .content_ok = 1 };
	cr_expect_eq(rtci_uplink_recv(u, on_dgram, &g, 50), 0);
	cr_expect_eq(g.n, 0);
	rtci_uplink_destroy(u);
	echo_stop(&e);
}

Test(uplink, rejects_oversize_and_bad_config)
{
	struct echo e;
	echo_start(&e);
	struct rtci_uplink *u = connect_to(e.port, 0, 2048);
	uint8_t big[4096] = { 0 };
	struct iovec iov = { big, sizeof(big) };
	cr_expect_eq(rtci_uplink_send(u, &iov, 1, 100), -RTCI_ERR_UPLINK_TOO_BIG);
	rtci_uplink_destroy(u);
	echo_stop(&e);

	struct rtci_uplink_config c = { .peer_ip = "not-an-ip", .peer_port = 1 };
	struct rtci_uplink *v = NULL;
	cr_expect_eq(rtci_uplink_create(&c, &v), -EINVAL);
	c.peer_ip = "127.0.0.1";
	c.recv_buffers = 100; /* not a power of 2 */
	cr_expect_eq(rtci_uplink_create(&c, &v), -EINVAL);
}

/* Pacing: 20 datagrams of 1000 bytes at 100 kB/s with a 1000-byte burst need >= 0.19 s and
 * make the bucket wait; the time limit is generous on purpose (the check is "paced at all"). */
Test(uplink, token_bucket_paces_and_times_out)
{
	struct echo e;
	echo_start(&e);
	struct rtci_uplink *u = connect_to(e.port, UINT32_MAX, 2048);
	rtci_uplink_set_rate(u, 100000.0, 1000);
	uint8_t buf[20][1000];
	struct iovec iov[20];
	for (int i = 0; i < 20; i++)
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
	double t0 = rtci_mono_s();
	cr_assert_eq(rtci_uplink_send(u, iov, 20, 5000), 20);
	double el = rtci_mono_s() - t0;
	cr_expect_geq(el, 0.18, "20 kB at 100 kB/s took %.3f s", el);
	struct rtci_uplink_stats st;
	rtci_uplink_stats(u, &st);
	cr_expect_geq(st.paced_waits, 18);

	/* a rate too low for the timeout: the call returns instead of blocking */
	rtci_uplink_set_rate(u, 1000.0, 1000);
	int rc = rtci_uplink_send(u, iov, 20, 100);
	cr_expect_eq(rc, -RTCI_ERR_UPLINK_TIMEOUT);

	rtci_uplink_set_rate(u, 0, 0); /* unpaced again */
	cr_expect_eq(rtci_uplink_send(u, iov, 20, 5000), 20);
	rtci_uplink_destroy(u);
	echo_stop(&e);
}

/* Nobody listens on the peer port: the ICMP error reaches the caller instead of a silent spin. */
Test(uplink, refused_peer_reported)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd); /* the port is now closed */
	struct rtci_uplink *u = connect_to(ntohs(a.sin_port), 0, 2048);
	struct got g = { .content_ok = 1 };
	cr_expect_eq(rtci_uplink_recv(u, on_dgram, &g, 10), 0, "armed, nothing yet");
	uint8_t b[16] = { 0 };
	struct iovec iov = { b, sizeof(b) };
	cr_expect_eq(rtci_uplink_send(u, &iov, 1, 1000), 1);
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++)
		rc = rtci_uplink_recv(u, on_dgram, &g, 100);
	cr_expect_eq(rc, -ECONNREFUSED, "got %d (%s)", rc, rtci_strerror(rc));
	cr_expect_eq(g.n, 0);
	rtci_uplink_destroy(u);
}
