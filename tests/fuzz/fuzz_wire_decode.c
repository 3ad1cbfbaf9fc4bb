/* libFuzzer: rtci_proto_decode on arbitrary bytes. Whatever decodes must describe bytes
 * inside the input and re-encode to the same bytes; authentication must not crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/auth.h"
#include "dataplane/protocol.h"

static const uint8_t key[32] = { 7 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtci_proto_msg m;
	static uint8_t out[70000];

	/* A private copy so ASan sees reads past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (rtci_proto_decode(buf, size, &m) != 0) {
		free(buf);
		return 0;
	}
	if (m.body < buf || m.body + m.body_len > buf + size)
		abort();
	if (m.tag && (m.tag < m.body + m.body_len || m.tag + RTCI_PROTO_TAG_LEN != buf + size))
		abort();

	struct rtci_proto_frame_info info = {
		.tenant_id = m.hdr.tenant_id, .device_id = m.hdr.device_id, .seq = m.hdr.seq,
		.setup_id = m.hdr.setup_id, .backlog_bytes = m.hdr.backlog_bytes,
		.capture_us = m.hdr.capture_us,
	};
	long n = -1;
	switch (m.hdr.type) {
	case RTCI_PROTO_FRAGMENT:
		n = rtci_proto_encode_fragment(out, sizeof(out), &info, m.hdr.frag_index,
					       m.hdr.frag_count, m.hdr.frag_size, m.hdr.frame_len,
					       m.body, m.body_len, m.tag);
		break;
	case RTCI_PROTO_RESULT:
		n = rtci_proto_encode_result(out, sizeof(out), &info, &m.u.result, key);
		break;
	case RTCI_PROTO_COMMAND:
		n = rtci_proto_encode_command(out, sizeof(out), &info, &m.u.command, key);
		break;
	case RTCI_PROTO_HELLO:
		n = rtci_proto_encode_hello(out, sizeof(out), &info, &m.u.hello, key);
		break;
	case RTCI_PROTO_HELLO_ACK:
		n = rtci_proto_encode_hello_ack(out, sizeof(out), &info, &m.u.hello_ack, key);
		break;
	case RTCI_PROTO_REPORT:
		n = rtci_proto_encode_report(out, sizeof(out), &info, &m.u.report, key);
		break;
	default:
		abort();
	}
	if (n < 0)
		abort();
	/* Same bytes up to the tag, when the input used the v1 header and no unknown flags
	 * (float fields re-encode bit-exactly, NaN payloads included). */
	if (m.hdr.hdr_len == RTCI_PROTO_HDR_LEN && (m.hdr.flags & ~RTCI_PROTO_F_TAG) == 0) {
		size_t cmp = size - (m.tag ? RTCI_PROTO_TAG_LEN : 0);
		if ((size_t)n != size || memcmp(out, buf, cmp) != 0)
			abort();
	}
	if (m.hdr.type != RTCI_PROTO_FRAGMENT) {
		struct rtci_proto_msg m2;
		if (rtci_proto_decode(out, (size_t)n, &m2) != 0 || rtci_auth_verify_msg(key, &m2) != 0)
			abort();
		(void)rtci_auth_verify_msg(key, &m);
	}
	free(buf);
	return 0;
}
