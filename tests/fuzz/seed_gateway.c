/* seed_gateway DIR: writes seed corpora for the gateway's fuzz targets:
 *   DIR/fuzz_port_parse/  valid frames (UDP datagrams of several sizes, ARP requests), each
 *                         prefixed by the checksum-offload byte;
 *   DIR/fuzz_config/      the example gateway and tenants files and small valid variants. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataplane/port.h"

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		return -1;
	}
	return 0;
}

static const char gateway_yaml[] =
	"eal:\n  args: [--no-huge, -m, \"512\"]\n  file_prefix: fz\n"
	"port:\n  vdev: net_null0\n  rx_queues: 2\n  ipv4: 10.77.0.1\n  mac: 02:00:00:00:00:01\n"
	"  udp_port: 47000\nlcores:\n  main: 0\n  rx: [1, 2]\n  workers: [3]\n"
	"models:\n  - name: m\n    file: m.rtcim\n"
	"batching: {max_batch: 8, max_wait_us: 100, queue_capacity: 64}\n"
	"control: {policy: rate, horizon: 3}\nmetrics: {enabled: false, port: 0}\n"
	"tenants_file: t.yaml\n";

static const char tenants_yaml[] =
	"tenants:\n  - id: 1\n    name: a\n"
	"    key: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
	"    deadline_ms: 100\n    fps: 10\n    weight: 3\n    policy: fixed\n"
	"    quotas: {devices: 10, frames_per_s: 100, reassembly_bytes: 1048576}\n"
	"    derive: {first: 100, last: 200}\n"
	"    devices:\n      - id: 1\n      - id: 2\n"
	"        key: ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	char dir[4096];
	make_dir(argv[1]);

	snprintf(dir, sizeof(dir), "%s/fuzz_port_parse", argv[1]);
	if (make_dir(dir))
		return 1;
	const uint8_t gw_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 }, dev_mac[6] = { 0x02, 0, 0, 0, 0, 2 };
	struct rtci_port_peer gw = { .ip = 0x0a4d0001u, .port = 47000 };
	memcpy(gw.mac, gw_mac, 6);
	static uint8_t payload[RTCI_PORT_MAX_PAYLOAD], frame[1 + RTCI_PORT_HDR_LEN + RTCI_PORT_MAX_PAYLOAD];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31);
	size_t sizes[] = { 0, 1, 17, 200, 1472 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		frame[0] = 0;
		int n = rtci_port_build_udp(frame + 1, sizeof(frame) - 1, dev_mac, 0x0a4d0002u, 40000,
					    &gw, payload, sizes[s]);
		char name[64];
		snprintf(name, sizeof(name), "udp-%zu", sizes[s]);
		if (n < 0 || write_file(dir, name, frame, (size_t)n + 1))
			return 1;
	}
	uint8_t arp[1 + 42] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06,
				0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 77, 0, 2,
				0, 0, 0, 0, 0, 0, 10, 77, 0, 1 };
	if (write_file(dir, "arp-request", arp, sizeof(arp)))
		return 1;

	snprintf(dir, sizeof(dir), "%s/fuzz_config", argv[1]);
	if (make_dir(dir) || write_file(dir, "gateway.yaml", gateway_yaml, sizeof(gateway_yaml) - 1) ||
	    write_file(dir, "tenants.yaml", tenants_yaml, sizeof(tenants_yaml) - 1))
		return 1;
	return 0;
}
