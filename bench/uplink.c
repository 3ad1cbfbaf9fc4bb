/* Uplink send cost per datagram size: IORING_OP_SEND from registered buffers (baseline) against
 * IORING_OP_SEND_ZC on the same fixed buffers, over loopback to a sink socket. Several runs per
 * point; medians and the ratio zc/plain (below 1: zero-copy is faster) are printed and written
 * as CSV, with the share of zero-copy sends the kernel copied anyway (always on loopback and
 * veth). The smallest size from which zero-copy wins at every larger size is the threshold to
 * configure; --peer measures another path (e.g. a NIC) instead of loopback. */
#include "common/clock.h"
#include "common/rtci_error.h"
#include "dataplane/uplink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_util.h"

/* ns per datagram for one run of `rounds` batches of `batch` datagrams of `size` bytes. */
static const char *peer_ip = "127.0.0.1";
static double copied_share; /* of the last zero-copy run: sends the kernel copied anyway */

static double run(uint16_t sink_port, uint32_t size, uint32_t zc_threshold, int rounds,
		  uint32_t batch)
{
	struct rtci_uplink_config c = {
		.peer_ip = peer_ip, .peer_port = sink_port, .slots = batch, .slot_size = size,
		.recv_buffers = 16, .recv_buffer_size = 64, .zc_threshold = zc_threshold,
		.sndbuf = 8 << 20,
	};
	struct rtci_uplink *u = NULL;
	int rc = rtci_uplink_create(&c, &u);
	if (rc < 0) {
		fprintf(stderr, "uplink: %s\n", rtci_strerror(rc));
		exit(1);
	}
	uint32_t *lens = calloc(batch, sizeof(*lens));
	for (uint32_t i = 0; i < batch; i++) {
		lens[i] = size;
		memset(rtci_uplink_slot(u, i), (int)i, size);
	}
	rtci_uplink_send_slots(u, lens, batch, 1000); /* warm-up */
	double t0 = rtci_mono_s();
	long sent = 0;
	for (int r = 0; r < rounds; r++) {
		rc = rtci_uplink_send_slots(u, lens, batch, 5000);
		if (rc < 0) {
			fprintf(stderr, "send: %s\n", rtci_strerror(rc));
			exit(1);
		}
		sent += rc;
	}
	double el = rtci_mono_s() - t0;
	struct rtci_uplink_stats st;
	rtci_uplink_stats(u, &st);
	if (zc_threshold <= size && st.sent_zc == 0) {
		fprintf(stderr, "zero-copy path not taken at %u bytes\n", size);
		exit(1);
	}
	if (st.sent_zc)
		copied_share = (double)st.zc_copied / (double)st.sent_zc;
	rtci_uplink_destroy(u);
	free(lens);
	return sent ? el * 1e9 / (double)sent : 0;
}

int main(int argc, char **argv)
{
	const char *csv_path = NULL;
	int runs = 5;
	double seconds_per_point = 0.1;
	uint16_t peer_port = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--csv") && i + 1 < argc)
			csv_path = argv[++i];
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds_per_point = atof(argv[++i]);
		else if (!strcmp(argv[i], "--peer") && i + 2 < argc) {
			peer_ip = argv[++i];
			peer_port = (uint16_t)atoi(argv[++i]);
		}
		else {
			fprintf(stderr, "usage: %s [--csv FILE] [--runs N] [--seconds S] [--peer IP PORT]\n", argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > 101)
		runs = 5;

	/* a sink nobody reads: the kernel drops at its full receive queue, after the send cost */
	int sink = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	bind(sink, (struct sockaddr *)&a, sizeof(a));
	socklen_t al = sizeof(a);
	getsockname(sink, (struct sockaddr *)&a, &al);
	uint16_t port = peer_port ? peer_port : ntohs(a.sin_port);

	FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
	if (csv)
		fprintf(csv, "size,run,mode,ns_per_datagram\n");
	static const uint32_t sizes[] = { 64, 256, 1024, 1472, 4096, 8192, 16384, 32768, 65000 };
	const uint32_t batch = 32;
	printf("peer %s:%u\n%8s %14s %14s %10s %12s %10s\n", peer_ip, port, "bytes", "send ns/dgram",
	       "zc ns/dgram", "zc/send", "send GB/s", "zc copied");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double plain[101], zc[101];
		/* rounds sized from a probe so each point takes about seconds_per_point */
		double probe = run(port, sizes[s], UINT32_MAX, 20, batch);
		int rounds = (int)(seconds_per_point * 1e9 / (probe * batch));
		if (rounds < 20)
			rounds = 20;
		for (int r = 0; r < runs; r++) {
			/* alternate the order so drift hits both modes alike */
			if (r % 2) {
				zc[r] = run(port, sizes[s], 1, rounds, batch);
				plain[r] = run(port, sizes[s], UINT32_MAX, rounds, batch);
			} else {
				plain[r] = run(port, sizes[s], UINT32_MAX, rounds, batch);
				zc[r] = run(port, sizes[s], 1, rounds, batch);
			}
			if (csv) {
				fprintf(csv, "%u,%d,send,%.1f\n", sizes[s], r, plain[r]);
				fprintf(csv, "%u,%d,send_zc,%.1f\n", sizes[s], r, zc[r]);
			}
		}
		double mp = bench_median(plain, runs), mz = bench_median(zc, runs);
		printf("%8u %14.0f %14.0f %10.2f %12.2f %9.0f%%\n", sizes[s], mp, mz, mz / mp,
		       sizes[s] / mp, 100 * copied_share);
	}
	if (csv)
		fclose(csv);
	close(sink);
	printf("medians of %d runs, %u datagrams per batch; zc/send < 1 means zero-copy is faster\n",
	       runs, batch);
	return 0;
}
