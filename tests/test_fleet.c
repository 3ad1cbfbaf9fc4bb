/* Fleet files: rtci-fleet's devices CSV read back as (trace, offset) runs; bad files refused with
 * their line. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/rtci_error.h"
#include "control/trace.h"

static const char *const names[] = { "ATT-LTE-driving-2016.up", "norway_bus_14" };

static int parse(const char *text, struct rtci_ctl_fleet_run **r, unsigned *n, char *err)
{
	*r = NULL;
	return rtci_ctl_fleet_parse(text, strlen(text), "devices.csv", names, 2, r, n, err, 256);
}

Test(fleet, rows_in_file_order_with_traces_by_file_name)
{
	struct rtci_ctl_fleet_run *r;
	unsigned n = 0;
	char err[256] = "";
	/* CRLF, an empty line, empty fields, another column order */
	int rc = parse("device,trace_offset_s,tenant,trace\r\n"
		       "1000,12.5,1,traces/norway_bus_14\r\n"
		       "\r\n"
		       ",0,,/elsewhere/ATT-LTE-driving-2016.up\r\n"
		       "1002,88.328,,ATT-LTE-driving-2016.up",
		       &r, &n, err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(n, 3);
	cr_assert_eq(r[0].trace, 1);
	cr_assert_float_eq(r[0].offset_s, 12.5, 1e-12);
	cr_assert_eq(r[1].trace, 0);
	cr_assert_float_eq(r[1].offset_s, 0, 1e-12);
	cr_assert_eq(r[2].trace, 0);
	cr_assert_float_eq(r[2].offset_s, 88.328, 1e-12);
	free(r);
}

Test(fleet, bad_files_say_where_and_why)
{
	static const struct {
		const char *text, *want;
		int code;
	} cases[] = {
		{ "", "devices.csv: empty", -RTCI_ERR_CTL_FLEET },
		{ "trace,trace_offset_s\n", "devices.csv: no device rows", -RTCI_ERR_CTL_FLEET },
		{ "device,offset\n1,2\n", "devices.csv:1: no trace and trace_offset_s columns",
		  -RTCI_ERR_CTL_FLEET },
		{ "trace,trace_offset_s\nnowhere.up,1\n", "devices.csv:2: trace \"nowhere.up\" is not",
		  -RTCI_ERR_CTL_FLEET },
		{ "trace,trace_offset_s\nnorway_bus_14,-1\n", "devices.csv:2: offset \"-1\"",
		  -RTCI_ERR_CTL_FLEET },
		{ "trace,trace_offset_s\nnorway_bus_14,1.5s\n", "devices.csv:2: offset \"1.5s\"",
		  -RTCI_ERR_CTL_FLEET },
		{ "trace,trace_offset_s\nnorway_bus_14,nan\n", "devices.csv:2: offset \"nan\"",
		  -RTCI_ERR_CTL_FLEET },
		{ "x,trace,trace_offset_s\nnorway_bus_14,1\n", "devices.csv:2: 2 fields, the header "
		  "names 3", -RTCI_ERR_CTL_FLEET },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rtci_ctl_fleet_run *r;
		unsigned n;
		char err[256] = "";
		cr_assert_eq(parse(cases[i].text, &r, &n, err), cases[i].code, "case %zu", i);
		cr_assert_null(r);
		cr_assert(strstr(err, cases[i].want), "case %zu: \"%s\"", i, err);
	}
	/* a NUL byte, and a line longer than the limit */
	static const char nul[] = "trace,trace_offset_s\nnorway_bus_14\0,1\n";
	struct rtci_ctl_fleet_run *r = NULL;
	unsigned n;
	char err[256] = "";
	cr_assert_eq(rtci_ctl_fleet_parse(nul, sizeof(nul) - 1, "f", names, 2, &r, &n, err, 256),
		     -RTCI_ERR_CTL_FLEET);
	cr_assert(strstr(err, "f:2: NUL byte"), "%s", err);
	size_t big = RTCI_CTL_FLEET_MAX_LINE + 100;
	char *longline = malloc(big + 1);
	memset(longline, 'a', big);
	longline[big] = 0;
	cr_assert_eq(parse(longline, &r, &n, err), -RTCI_ERR_CTL_FLEET);
	cr_assert(strstr(err, "devices.csv:1: line longer than"), "%s", err);
	free(longline);
}

Test(fleet, load_file_names_the_file)
{
	struct rtci_ctl_fleet_run *r = NULL;
	unsigned n;
	char err[256] = "";
	cr_assert_lt(rtci_ctl_fleet_load_file("/nonexistent/devices.csv", names, 2, &r, &n, err,
					      sizeof(err)), 0);
	cr_assert(strstr(err, "/nonexistent/devices.csv: "), "%s", err);
}
