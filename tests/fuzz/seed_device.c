/* Writes seed inputs for fuzz_device into <dir>/fuzz_device/: records that send frames and
 * answer them with results, rate-switch commands (also replayed), a stray hello-ack, and a
 * silence long enough for a re-hello. Keys and sequences match the harness (tenant 7 with key
 * 07 00 .., device 42, frames from 1000).
 *   seed_device DIR */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dataplane/auth.h"
#include "dataplane/protocol.h"

static uint8_t rec[8192];
static size_t rec_len;
static uint8_t key[32];

static void add(uint8_t flags, const uint8_t *p, long n)
{
	if (n < 0 || rec_len + 3 + (size_t)n > sizeof(rec))
		return;
	rec[rec_len++] = flags;
	rec[rec_len++] = (uint8_t)n;
	rec[rec_len++] = (uint8_t)(n >> 8);
	memcpy(rec + rec_len, p, (size_t)n);
	rec_len += (size_t)n;
}

static int save(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/fuzz_device", dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/fuzz_device/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(rec, 1, rec_len, f) != rec_len)
		return -1;
	rec_len = 0;
	return fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 2 || rtci_auth_init())
		return 2;
	const uint8_t tenant_key[32] = { 7 };
	rtci_auth_derive_device_key(tenant_key, 7, 42, key);
	uint8_t b[512];
	struct rtci_proto_frame_info info = { .tenant_id = 7, .device_id = 42 };

	for (uint64_t s = 1000; s < 1004; s++) {
		struct rtci_proto_result r = { .class_id = (uint16_t)s, .score = 0.5f, .topk_count = 1 };
		info.seq = s;
		add(2, b, rtci_proto_encode_result(b, sizeof(b), &info, &r, key));
	}
	int rc = save(argv[1], "results");

	struct rtci_proto_command c = { .kind = RTCI_PROTO_CMD_RATE_SWITCH, .new_setup_id = 5,
					.apply_from_seq = 1002 };
	info.seq = 1;
	long n = rtci_proto_encode_command(b, sizeof(b), &info, &c, key);
	add(2, b, n);
	add(2, b, n); /* replayed */
	c.new_setup_id = 9;
	c.apply_from_seq = 900;
	info.seq = 2;
	add(3, b, rtci_proto_encode_command(b, sizeof(b), &info, &c, key));
	struct rtci_proto_command pl = { .kind = RTCI_PROTO_CMD_PLAN, .count = 3,
					 .apply_from_seq = 1003, .plan = { 9, 5, 0 } };
	info.seq = 3;
	add(3, b, rtci_proto_encode_command(b, sizeof(b), &info, &pl, key));
	rc |= save(argv[1], "commands");

	struct rtci_proto_hello_ack a = { .initial_setup_id = 5, .max_frag_size = 200,
					  .min_frame_seq = 5000 };
	info.seq = 77;
	add(2, b, rtci_proto_encode_hello_ack(b, sizeof(b), &info, &a, key));
	add(6, b, 0);
	a.max_frame_len = 2000; /* extended ack: frames above it are refused */
	add(7, b, rtci_proto_encode_hello_ack(b, sizeof(b), &info, &a, key));
	rc |= save(argv[1], "session");
	if (rc)
		fprintf(stderr, "seed_device: cannot write seeds under %s\n", argv[1]);
	return rc ? 1 : 0;
}
