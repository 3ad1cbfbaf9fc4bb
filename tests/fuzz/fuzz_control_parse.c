/* libFuzzer target: the control module's parsers of untrusted files — bandwidth traces (both
 * formats), setup tables (JSON or a model file's header) and fleet device files. The first byte
 * picks the parser; a trace that parses is also queried, so its derived tables are exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "control/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	if (size < 1)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;

	if (data[0] & 0x80) {
		static const char *const names[] = { "a.up", "norway_bus_14", "" };
		struct rtci_ctl_fleet_run *runs = NULL;
		unsigned n = 0;
		if (rtci_ctl_fleet_parse(buf, len, "fuzz", names, 3, &runs, &n, err, sizeof(err)) ==
		    0) {
			for (unsigned i = 0; i < n; i++)
				if (runs[i].trace >= 3 || !(runs[i].offset_s >= 0))
					__builtin_trap();
			free(runs);
		}
		return 0;
	}
	if (data[0] & 1) {
		static struct rtci_ctl_table table;
		rtci_ctl_table_parse(buf, len, "fuzz", &table, err, sizeof(err));
		return 0;
	}
	struct rtci_ctl_trace *t = NULL;
	enum rtci_ctl_trace_format fmt = (enum rtci_ctl_trace_format)((data[0] >> 1) % 3);
	if (rtci_ctl_trace_parse(buf, len, "fuzz", fmt, &t, err, sizeof(err)) == 0) {
		int64_t period = rtci_ctl_trace_period_ns(t);
		(void)rtci_ctl_trace_bytes(t, 0, period + 12345);
		(void)rtci_ctl_trace_finish(t, period / 2, 150000.0);
		rtci_ctl_trace_destroy(t);
	}
	return 0;
}
