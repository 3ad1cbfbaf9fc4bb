/* Packet parsing and building of the DPDK port layer, on plain buffers (no EAL needed). */
#include "dataplane/port.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

static const uint8_t GW_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t DEV_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define GW_IP 0x0a4d0001u  /* 10.77.0.1 */
#define DEV_IP 0x0a4d0002u /* 10.77.0.2 */
#define GW_PORT 47000
#define DEV_PORT 40001

/* Independent reference: RFC 1071 sum over big-endian 16-bit words. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static int ip_ok(const uint8_t *ip)
{
	return fold(sum16(ip, (size_t)(ip[0] & 0xf) * 4, 0)) == 0xffff;
}

static int udp_ok(const uint8_t *ip)
{
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	const uint8_t *u = ip + ihl;
	size_t ulen = (size_t)(u[4] << 8 | u[5]);
	uint32_t s = sum16(ip + 12, 8, 0) + 17 + (uint32_t)ulen;
	return fold(sum16(u, ulen, s)) == 0xffff;
}

static void fix_ip_checksum(uint8_t *ip)
{
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~fold(sum16(ip, (size_t)(ip[0] & 0xf) * 4, 0));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
}

/* A datagram from the device to the gateway. */
static int device_frame(uint8_t *buf, size_t room, const char *payload)
{
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	return rtci_port_build_udp(buf, room, DEV_MAC, DEV_IP, DEV_PORT, &gw, payload,
				   strlen(payload));
}

static enum rtci_port_verdict parse(const uint8_t *f, uint32_t len, unsigned ck,
				    struct rtci_port_parsed *r)
{
	return rtci_port_parse(f, len, GW_MAC, GW_IP, GW_PORT, ck, r);
}

Test(port, build_then_parse_roundtrip)
{
	uint8_t f[256];
	int n = device_frame(f, sizeof(f), "hello gateway");
	cr_assert_eq(n, RTCI_PORT_HDR_LEN + 13);
	cr_expect(ip_ok(f + 14), "IPv4 header checksum");
	cr_expect(udp_ok(f + 14), "UDP checksum");
	cr_expect_eq(f[12], 0x08);
	cr_expect_eq(f[13], 0x00);
	cr_expect_eq(f[14 + 6] & 0x40, 0x40, "DF set");

	struct rtci_port_parsed r;
	cr_assert_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_UDP, "drop %s",
		     rtci_port_drop_name(r.drop));
	cr_expect_eq(r.payload_len, 13);
	cr_expect_eq(memcmp(f + r.payload_off, "hello gateway", 13), 0);
	cr_expect_eq(r.from.ip, DEV_IP);
	cr_expect_eq(r.from.port, DEV_PORT);
	cr_expect_eq(memcmp(r.from.mac, DEV_MAC, 6), 0);

	/* padded to the Ethernet minimum: still valid */
	uint8_t small[64] = { 0 };
	n = device_frame(small, sizeof(small), "x");
	cr_assert_gt(n, 0);
	cr_expect_eq(parse(small, 60, 0, &r), RTCI_PORT_UDP);
	cr_expect_eq(r.payload_len, 1);
}

Test(port, odd_lengths_and_all_payload_bytes)
{
	uint8_t f[RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD];
	uint8_t pl[RTCI_PORT_MAX_PAYLOAD];
	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7 + 255);
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	size_t lens[] = { 0, 1, 2, 3, 255, 1471, RTCI_PORT_MAX_PAYLOAD };
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		int n = rtci_port_build_udp(f, sizeof(f), DEV_MAC, DEV_IP, DEV_PORT, &gw, pl, lens[k]);
		cr_assert_eq(n, (int)(RTCI_PORT_HDR_LEN + lens[k]));
		cr_expect(udp_ok(f + 14), "len %zu", lens[k]);
		struct rtci_port_parsed r;
		cr_expect_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_UDP, "len %zu: %s", lens[k],
			     rtci_port_drop_name(r.drop));
		cr_expect_eq(r.payload_len, lens[k]);
	}
	cr_expect_eq(rtci_port_build_udp(f, sizeof(f), DEV_MAC, DEV_IP, DEV_PORT, &gw, pl,
					 RTCI_PORT_MAX_PAYLOAD + 1), -EMSGSIZE);
	cr_expect_eq(rtci_port_build_udp(f, 50, DEV_MAC, DEV_IP, DEV_PORT, &gw, pl, 20), -EMSGSIZE);
}

/* Every payload length and buffer alignment: the software UDP checksum accepts what the
 * builder wrote and rejects the frame when any one payload byte changes. */
Test(port, udp_checksum_every_length_and_alignment)
{
	static uint8_t buf[RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD + 8];
	uint8_t pl[RTCI_PORT_MAX_PAYLOAD];
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	for (size_t len = 0; len <= RTCI_PORT_MAX_PAYLOAD; len++) {
		size_t align = len % 8;
		uint8_t *f = buf + align;
		for (size_t i = 0; i < len; i++)
			pl[i] = (uint8_t)(i * 13 + len * 7 + 0xf0);
		int n = rtci_port_build_udp(f, sizeof(buf) - align, DEV_MAC, DEV_IP, DEV_PORT, &gw,
					    pl, len);
		cr_assert_eq(n, (int)(RTCI_PORT_HDR_LEN + len));
		cr_assert(udp_ok(f + 14), "len %zu", len);
		struct rtci_port_parsed r;
		cr_assert_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_UDP, "len %zu: %s", len,
			     rtci_port_drop_name(r.drop));
		if (len == 0)
			continue;
		size_t at = RTCI_PORT_HDR_LEN + (len * 31) % len;
		f[at] ^= (uint8_t)(1u << (len % 8));
		cr_assert_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_DROPPED, "len %zu", len);
		cr_assert_eq(r.drop, RTCI_PORT_DROP_UDP_CHECKSUM, "len %zu", len);
	}
}

/* A datagram whose checksum computes to 0 goes out as 0xffff (0 means "none"); the parser must
 * take 0xffff as the valid ones' complement zero. */
Test(port, udp_checksum_of_zero_sent_as_ffff)
{
	uint8_t f[RTCI_PORT_HDR_LEN + 64];
	uint8_t pl[64] = { 0 };
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	int n = rtci_port_build_udp(f, sizeof(f), DEV_MAC, DEV_IP, DEV_PORT, &gw, pl, sizeof(pl));
	cr_assert_eq(n, (int)sizeof(f));
	/* choose the last payload word so that the sum without the checksum field is 0xffff */
	uint8_t *u = f + 14 + 20;
	u[6] = u[7] = 0;
	uint32_t s = sum16(f + 14 + 12, 8, 0) + 17 + 8 + sizeof(pl);
	uint16_t rest = fold(sum16(u, 8 + sizeof(pl), s));
	uint16_t w = (uint16_t)(0xffff - rest);
	u[8 + 62] = (uint8_t)(w >> 8);
	u[8 + 63] = (uint8_t)w;
	cr_assert_eq(fold(sum16(u, 8 + sizeof(pl), s)), 0xffff);
	u[6] = u[7] = 0xff;
	struct rtci_port_parsed r;
	cr_expect_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_UDP, "%s", rtci_port_drop_name(r.drop));
	u[8] ^= 1;
	cr_expect_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_DROPPED);
	cr_expect_eq(r.drop, RTCI_PORT_DROP_UDP_CHECKSUM);
}

#define EXPECT_DROP(frame, len, ck, why)                                                       \
	do {                                                                                   \
		struct rtci_port_parsed r_;                                                    \
		cr_expect_eq(parse(frame, len, ck, &r_), RTCI_PORT_DROPPED, "expected %s", #why); \
		cr_expect_eq(r_.drop, why, "got %s, expected %s", rtci_port_drop_name(r_.drop),  \
			     rtci_port_drop_name(why));                                        \
	} while (0)

Test(port, malformed_packets_dropped_with_reason)
{
	uint8_t good[128], f[128];
	int n = device_frame(good, sizeof(good), "payload!");
	uint32_t len = (uint32_t)n;
	uint8_t *ip = f + 14, *udp = f + 34;

	memcpy(f, good, len);
	EXPECT_DROP(f, 10, 0, RTCI_PORT_DROP_RUNT);
	EXPECT_DROP(f, 30, 0, RTCI_PORT_DROP_RUNT);

	memcpy(f, good, len);
	f[0] = 0x02, f[5] = 0x77; /* another unicast MAC */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_DST_MAC);

	memcpy(f, good, len);
	f[12] = 0x86, f[13] = 0xdd; /* IPv6 */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_ETHERTYPE);

	memcpy(f, good, len);
	ip[0] = 0x44; /* IHL 4 words */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_IP_HEADER);

	memcpy(f, good, len);
	ip[0] = 0x65; /* version 6 */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_IP_HEADER);

	memcpy(f, good, len);
	ip[3] += 20; /* total length beyond the frame */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_IP_HEADER);

	memcpy(f, good, len);
	ip[8] ^= 1; /* TTL changed, checksum not */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_IP_CHECKSUM);
	EXPECT_DROP(f, len, RTCI_PORT_CK_IP_BAD, RTCI_PORT_DROP_IP_CHECKSUM);

	memcpy(f, good, len);
	ip[6] = 0x20; /* more fragments */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_FRAGMENT);
	memcpy(f, good, len);
	ip[6] = 0x00, ip[7] = 0x10; /* non-zero offset, last fragment */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_FRAGMENT);

	memcpy(f, good, len);
	ip[19] = 9; /* 10.77.0.9 */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_DST_IP);

	memcpy(f, good, len);
	ip[12] = 224; /* multicast source: never answered */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_IP_HEADER);

	memcpy(f, good, len);
	ip[9] = 6; /* TCP */
	fix_ip_checksum(ip);
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_PROTO);

	memcpy(f, good, len);
	udp[5] += 1; /* UDP length disagrees with IP */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_UDP_LENGTH);

	memcpy(f, good, len);
	udp[3] ^= 1; /* other destination port */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_DST_PORT);

	memcpy(f, good, len);
	f[len - 1] ^= 0x40; /* payload corrupted */
	EXPECT_DROP(f, len, 0, RTCI_PORT_DROP_UDP_CHECKSUM);
	/* the NIC's verdict replaces the software check when present */
	struct rtci_port_parsed r;
	cr_expect_eq(parse(f, len, RTCI_PORT_CK_IP_GOOD | RTCI_PORT_CK_L4_GOOD, &r), RTCI_PORT_UDP);
	memcpy(f, good, len);
	EXPECT_DROP(f, len, RTCI_PORT_CK_L4_BAD, RTCI_PORT_DROP_UDP_CHECKSUM);

	/* checksum 0 means "not computed": accepted even with altered payload */
	memcpy(f, good, len);
	udp[6] = udp[7] = 0;
	f[len - 1] ^= 0x40;
	cr_expect_eq(parse(f, len, 0, &r), RTCI_PORT_UDP);
}

static int arp_frame(uint8_t *f, uint16_t op, uint32_t target)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, DEV_MAC, 6);
	f[12] = 0x08, f[13] = 0x06;
	uint8_t *a = f + 14;
	a[0] = 0, a[1] = 1, a[2] = 0x08, a[3] = 0, a[4] = 6, a[5] = 4, a[6] = 0, a[7] = (uint8_t)op;
	memcpy(a + 8, DEV_MAC, 6);
	a[14] = 10, a[15] = 77, a[16] = 0, a[17] = 2;
	memset(a + 18, 0, 6);
	a[24] = (uint8_t)(target >> 24), a[25] = (uint8_t)(target >> 16);
	a[26] = (uint8_t)(target >> 8), a[27] = (uint8_t)target;
	return 42;
}

Test(port, arp_request_answered_in_place)
{
	uint8_t f[64] = { 0 };
	int n = arp_frame(f, 1, GW_IP);
	struct rtci_port_parsed r;
	cr_assert_eq(parse(f, 60, 0, &r), RTCI_PORT_ARP_REQUEST);
	cr_expect_eq(r.from.ip, DEV_IP);
	cr_expect_eq(memcmp(r.from.mac, DEV_MAC, 6), 0);
	rtci_port_arp_reply_inplace(f, GW_MAC, GW_IP);
	cr_expect_eq(memcmp(f, DEV_MAC, 6), 0, "to the requester");
	cr_expect_eq(memcmp(f + 6, GW_MAC, 6), 0, "from us");
	uint8_t *a = f + 14;
	cr_expect_eq(a[7], 2, "op reply");
	cr_expect_eq(memcmp(a + 8, GW_MAC, 6), 0, "sender MAC is ours");
	cr_expect(a[14] == 10 && a[15] == 77 && a[16] == 0 && a[17] == 1, "sender IP is ours");
	cr_expect_eq(memcmp(a + 18, DEV_MAC, 6), 0, "target MAC is the requester");
	cr_expect(a[24] == 10 && a[27] == 2, "target IP is the requester");
	(void)n;

	/* for another host: learn the sender, do not answer */
	arp_frame(f, 1, GW_IP + 5);
	cr_expect_eq(parse(f, 60, 0, &r), RTCI_PORT_ARP_LEARN);
	arp_frame(f, 2, GW_IP);
	cr_expect_eq(parse(f, 60, 0, &r), RTCI_PORT_ARP_LEARN);
	arp_frame(f, 9, GW_IP);
	EXPECT_DROP(f, 60, 0, RTCI_PORT_DROP_ARP_OTHER);
	arp_frame(f, 1, GW_IP);
	EXPECT_DROP(f, 30, 0, RTCI_PORT_DROP_RUNT);
	f[14 + 4] = 8; /* hardware address length */
	EXPECT_DROP(f, 60, 0, RTCI_PORT_DROP_ARP_OTHER);
}

/* Sets the IPv4 and UDP lengths of frame f for a UDP payload of len bytes (checksum 0). */
static void claim_payload(uint8_t *f, uint32_t len)
{
	uint8_t *ip = f + 14, *udp = f + 34;
	uint32_t total = 20 + 8 + len;
	ip[2] = (uint8_t)(total >> 8);
	ip[3] = (uint8_t)total;
	udp[4] = (uint8_t)((len + 8) >> 8);
	udp[5] = (uint8_t)(len + 8);
	udp[6] = udp[7] = 0;
	fix_ip_checksum(ip);
}

/* Over 1,472 payload bytes is too long, whether the PMD delivered it whole (1,473 bytes) or cut
 * it to its frame size (2,000 bytes seen as 1,982); it used to pass or count as ip_header. */
Test(port, datagram_over_the_limit_is_too_long)
{
	static uint8_t f[RTCI_PORT_HDR_LEN + 2000];
	static uint8_t pl[RTCI_PORT_MAX_PAYLOAD];
	struct rtci_port_peer gw = { .ip = GW_IP, .port = GW_PORT };
	memcpy(gw.mac, GW_MAC, 6);
	int n = rtci_port_build_udp(f, sizeof(f), DEV_MAC, DEV_IP, DEV_PORT, &gw, pl, sizeof(pl));
	cr_assert_eq(n, RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD);
	struct rtci_port_parsed r;
	cr_expect_eq(parse(f, (uint32_t)n, 0, &r), RTCI_PORT_UDP);
	claim_payload(f, RTCI_PORT_MAX_PAYLOAD + 1);
	EXPECT_DROP(f, (uint32_t)n + 1, 0, RTCI_PORT_DROP_TOO_LONG);
	claim_payload(f, 2000);
	EXPECT_DROP(f, 1982, 0, RTCI_PORT_DROP_TOO_LONG);
	cr_expect_str_eq(rtci_port_drop_name(RTCI_PORT_DROP_TOO_LONG), "too_long");
}

Test(port, drop_names)
{
	for (int d = 0; d < RTCI_PORT_DROP_COUNT; d++)
		cr_expect_neq(strcmp(rtci_port_drop_name((enum rtci_port_drop)d), "unknown"), 0);
	cr_expect_str_eq(rtci_port_drop_name(RTCI_PORT_DROP_COUNT), "unknown");
}
