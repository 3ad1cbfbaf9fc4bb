/* Writes valid seed inputs for fuzz_wire_decode (one datagram of every type, fragments of a
 * frame) and fuzz_reassembly (operation sequences that complete frames in several orders)
 * into <dir>/fuzz_wire_decode/ and <dir>/fuzz_reassembly/.
 *   seed_wire DIR */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dataplane/auth.h"
#include "dataplane/protocol.h"

static int write_file(const char *dir, const char *sub, const char *name, const uint8_t *p,
		      size_t n)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

static int wire(const char *dir, const char *name, const uint8_t *p, long n)
{
	if (n < 0) {
		fprintf(stderr, "seed_wire: encoding %s failed: %ld\n", name, n);
		return -1;
	}
	return write_file(dir, "fuzz_wire_decode", name, p, (size_t)n);
}

/* One reassembly operation (see fuzz_reassembly.c). */
static void op(uint8_t *o, unsigned action, unsigned flags, unsigned dev, unsigned seq,
	       unsigned count, unsigned fs, unsigned last, unsigned index, unsigned dt)
{
	o[0] = (uint8_t)(action << 5 | flags);
	o[1] = (uint8_t)dev;
	o[2] = (uint8_t)seq;
	o[3] = (uint8_t)(count - 1);
	o[4] = (uint8_t)(fs - 1);
	o[5] = (uint8_t)(last - 1);
	o[6] = (uint8_t)index;
	o[7] = (uint8_t)dt;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	if (rtci_auth_init() < 0)
		return 1;

	static const uint8_t key[32] = { 7 };
	struct rtci_proto_frame_info info = { .tenant_id = 1, .device_id = 42, .seq = 1000,
					      .setup_id = 3, .backlog_bytes = 2800,
					      .capture_us = 1700000000000000ull };
	uint8_t buf[RTCI_PROTO_MAX_DATAGRAM];
	int bad = 0;

	struct rtci_proto_result res = { .class_id = 5, .status = RTCI_PROTO_RES_OK, .topk_count = 2,
					 .score = 0.9f, .queue_us = 120, .inference_us = 3100,
					 .total_us = 3400, .topk = { { 5, 0.9f }, { 8, 0.05f } } };
	bad |= wire(dir, "result", buf, rtci_proto_encode_result(buf, sizeof(buf), &info, &res, key));
	struct rtci_proto_command cmd = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 7,
					  .apply_from_seq = 1010 };
	bad |= wire(dir, "command", buf, rtci_proto_encode_command(buf, sizeof(buf), &info, &cmd, key));
	struct rtci_proto_command plan = { .kind = RTCI_PROTO_CMD_PLAN, .count = 4,
					   .apply_from_seq = 1010, .plan = { 48, 48, 17, 2 } };
	bad |= wire(dir, "command_plan", buf,
		    rtci_proto_encode_command(buf, sizeof(buf), &info, &plan, key));
	struct rtci_proto_hello hello = { .model_id = 1, .fps_milli = 30000, .deadline_us = 100000,
					  .max_frag_size = 1400, .n_setups = 3,
					  .setups = { 0, 7, 49 } };
	bad |= wire(dir, "hello", buf, rtci_proto_encode_hello(buf, sizeof(buf), &info, &hello, key));
	struct rtci_proto_hello_ack ack = { .status = RTCI_PROTO_HELLO_ACCEPTED,
					    .initial_setup_id = 7, .max_frag_size = 1400,
					    .min_frame_seq = 1000 };
	bad |= wire(dir, "hello_ack", buf,
		    rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &ack, key));
	hello.ack_ext = true;
	bad |= wire(dir, "hello_ext", buf, rtci_proto_encode_hello(buf, sizeof(buf), &info, &hello, key));
	ack.max_frame_len = 33074; /* extended ack, to a hello with F_ACK_EXT */
	bad |= wire(dir, "hello_ack_ext", buf,
		    rtci_proto_encode_hello_ack(buf, sizeof(buf), &info, &ack, key));
	struct rtci_proto_report rep = { .bytes_sent = 1 << 20, .frames_sent = 30,
					 .frames_dropped = 1, .send_rate_bps = 8000000,
					 .backlog_bytes = 2800, .interval_us = 1000000 };
	bad |= wire(dir, "report", buf, rtci_proto_encode_report(buf, sizeof(buf), &info, &rep, key));

	uint8_t frame[3000], dbuf[3][RTCI_PROTO_MAX_DATAGRAM];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 5);
	struct rtci_proto_datagram dg[3];
	for (int i = 0; i < 3; i++)
		dg[i] = (struct rtci_proto_datagram){ dbuf[i], sizeof(dbuf[i]), 0 };
	long n = rtci_proto_fragment(&info, frame, sizeof(frame), 1400, key, dg, 3);
	for (long i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "fragment_%ld", i);
		bad |= wire(dir, name, dg[i].buf, (long)dg[i].len);
	}
	if (n != 3)
		bad = 1;

	/* Reassembly: a 5-fragment frame in order, reversed, shuffled with duplicates,
	 * several devices interleaved with releases and expiry, corrupted and refused ones. */
	uint8_t ops[64 * 8];
	size_t k = 0;
	for (unsigned i = 0; i < 5; i++)
		op(ops + 8 * k++, 0, 4, 1, 1, 5, 40, 17, i, 1);
	op(ops + 8 * k++, 5, 0, 0, 0, 1, 1, 1, 0, 0);
	bad |= write_file(dir, "fuzz_reassembly", "in_order", ops, 8 * k);
	k = 0;
	for (unsigned i = 5; i-- > 0;)
		op(ops + 8 * k++, 0, 0, 2, 3, 5, 40, 40, i, 1);
	bad |= write_file(dir, "fuzz_reassembly", "reverse_no_key", ops, 8 * k);
	k = 0;
	const unsigned order[] = { 2, 0, 2, 4, 1, 3, 3 };
	for (unsigned i = 0; i < 7; i++)
		op(ops + 8 * k++, 1, 4, 3, 4, 5, 100, 3, order[i], 2);
	bad |= write_file(dir, "fuzz_reassembly", "shuffled_dups", ops, 8 * k);
	k = 0;
	for (unsigned i = 0; i < 4; i++)
		for (unsigned d = 0; d < 4; d++)
			op(ops + 8 * k++, 2, 4 | (d & 1), d, 5 + d, 4, 64, 10, i, 3);
	op(ops + 8 * k++, 5, 0, 0, 0, 1, 1, 1, 0, 0);
	op(ops + 8 * k++, 6, 0, 0, 0, 1, 1, 1, 0, 200);
	bad |= write_file(dir, "fuzz_reassembly", "interleaved", ops, 8 * k);
	k = 0;
	op(ops + 8 * k++, 0, 4 | 8, 1, 2, 2, 20, 5, 0, 1);  /* corrupted payload */
	op(ops + 8 * k++, 0, 4, 1, 2, 2, 20, 5, 0, 1);      /* genuine: conflict */
	op(ops + 8 * k++, 0, 4 | 16, 1, 2, 2, 20, 5, 1, 1); /* bad tag: MAC fails */
	op(ops + 8 * k++, 0, 4 | 3, 1, 2, 1, 20, 5, 0, 1);  /* refused tenant */
	for (unsigned s = 0; s < 4; s++)                      /* in-flight bound */
		op(ops + 8 * k++, 0, 4 | 1, 5, s, 3, 200, 100, 0, 1);
	bad |= write_file(dir, "fuzz_reassembly", "drops", ops, 8 * k);

	return bad ? 1 : 0;
}
