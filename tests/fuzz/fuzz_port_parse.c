/* Parses arbitrary bytes as an Ethernet frame arriving at the gateway's port: any input gives a
 * verdict with a valid drop reason, never a crash or a read past the frame. An ARP request is
 * answered in place; an accepted datagram is rebuilt and must parse to the same payload. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/port.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
#define IP 0x0a4d0001u
#define PORT 47000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 9216)
		return 0;
	/* first byte: checksum-offload flags; then the frame, in a buffer of its exact size */
	unsigned ck = data[0] & 0x0f;
	size_t len = size - 1;
	uint8_t *f = malloc(len ? len : 1);
	if (!f)
		abort();
	memcpy(f, data + 1, len);
	struct rtci_port_parsed r;
	enum rtci_port_verdict v = rtci_port_parse(f, (uint32_t)len, MAC, IP, PORT, ck, &r);
	switch (v) {
	case RTCI_PORT_UDP: {
		if (r.payload_off + r.payload_len > len)
			abort();
		if (r.payload_len <= RTCI_PORT_MAX_PAYLOAD && r.from.ip != 0) {
			uint8_t out[RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD];
			struct rtci_port_peer to = { .ip = IP, .port = PORT };
			memcpy(to.mac, MAC, 6);
			int n = rtci_port_build_udp(out, sizeof(out), r.from.mac, r.from.ip, r.from.port,
						    &to, f + r.payload_off, r.payload_len);
			struct rtci_port_parsed r2;
			if (n < 0 || rtci_port_parse(out, (uint32_t)n, MAC, IP, PORT, 0, &r2) != RTCI_PORT_UDP ||
			    r2.payload_len != r.payload_len ||
			    memcmp(out + r2.payload_off, f + r.payload_off, r.payload_len) != 0)
				abort();
		}
		break;
	}
	case RTCI_PORT_ARP_REQUEST:
		if (len < 42)
			abort();
		rtci_port_arp_reply_inplace(f, MAC, IP);
		break;
	case RTCI_PORT_ARP_LEARN:
		break;
	case RTCI_PORT_DROPPED:
		if ((unsigned)r.drop >= RTCI_PORT_DROP_COUNT)
			abort();
		break;
	default:
		abort();
	}
	free(f);
	return 0;
}
