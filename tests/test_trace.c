/* Trace loaders (both formats, malformed input with line numbers) and capacity queries. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "control/trace.h"

static struct rtci_ctl_trace *parse_ok(const char *text)
{
	struct rtci_ctl_trace *t = NULL;
	char err[256] = "";
	int rc = rtci_ctl_trace_parse(text, strlen(text), "t", RTCI_CTL_TRACE_AUTO, &t, err,
				      sizeof(err));
	cr_assert_eq(rc, 0, "parse failed: %d %s", rc, err);
	return t;
}

static void parse_fails(const char *text, int code, const char *msg_part)
{
	struct rtci_ctl_trace *t = NULL;
	char err[256] = "";
	int rc = rtci_ctl_trace_parse(text, strlen(text), "bad.up", RTCI_CTL_TRACE_AUTO, &t, err,
				      sizeof(err));
	cr_assert_eq(rc, code, "rc %d for \"%s\" (err %s)", rc, text, err);
	cr_assert_null(t);
	cr_assert(strstr(err, msg_part), "error \"%s\" lacks \"%s\"", err, msg_part);
}

Test(trace, mahimahi_capacity_and_loop)
{
	/* 2 packets in ms 1, 1 in ms 3, period 4 ms (last timestamp) */
	struct rtci_ctl_trace *t = parse_ok("1\n1\n3\n4\n");
	cr_assert_eq(rtci_ctl_trace_period_ns(t), 4000000);
	cr_assert_float_eq(rtci_ctl_trace_period_bytes(t), 4 * 1500.0, 1e-9);
	/* ms 1 = interval (0, 1]: 3000 bytes spread over it */
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 0, 1000000), 3000, 1e-6);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 0, 500000), 1500, 1e-6);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 1000000, 2000000), 0, 1e-6);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 2000000, 3000000), 1500, 1e-6);
	/* looping: the second period carries the same */
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 4000000, 8000000), 6000, 1e-6);
	cr_assert_float_eq(rtci_ctl_trace_cum(t, 8000000 + 1000000), 2 * 6000 + 3000, 1e-6);
	/* 3000 bytes from t = 0 finish at 1 ms; the 3001st byte moves in ms 3's interval (2, 3]
	 * at 1500 bytes per ms: 2 ms + 1/1500 ms */
	cr_assert_eq(rtci_ctl_trace_finish(t, 0, 3000), 1000000);
	int64_t f = rtci_ctl_trace_finish(t, 0, 3001);
	cr_assert(llabs(f - 2000667) <= 1, "finish %lld", (long long)f);
	/* across the loop end: from 3.5 ms, 1500 bytes = rest of ms 4 (750) + 750 in next ms 1 */
	f = rtci_ctl_trace_finish(t, 3500000, 1500);
	cr_assert(llabs(f - 4250000) <= 1, "finish %lld", (long long)f);
	rtci_ctl_trace_destroy(t);
}

Test(trace, mahimahi_zero_timestamp_is_period_end)
{
	/* mahimahi: an opportunity at 0 is one at the period boundary */
	struct rtci_ctl_trace *t = parse_ok("0\n2\n");
	cr_assert_eq(rtci_ctl_trace_period_ns(t), 2000000);
	cr_assert_float_eq(rtci_ctl_trace_period_bytes(t), 3000, 1e-9);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 1000000, 2000000), 3000, 1e-6);
	rtci_ctl_trace_destroy(t);
}

Test(trace, norway_rates_over_preceding_interval)
{
	/* 1 Mbit/s over (0, 1], 2 Mbit/s over (1, 1.5] */
	struct rtci_ctl_trace *t = parse_ok("0.0 4.0\n1.0\t1.0\n  1.5 2.0  \n\n");
	cr_assert_eq(rtci_ctl_trace_period_ns(t), 1500000000);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 0, 1000000000), 125000, 1e-3);
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 1000000000, 1500000000), 125000, 1e-3);
	cr_assert_float_eq(rtci_ctl_trace_period_bytes(t), 250000, 1e-3);
	/* 62500 bytes from 0.5 s at 125 kB/s end at 1.0 s; 62500 more at 250 kB/s take 0.25 s */
	int64_t f = rtci_ctl_trace_finish(t, 500000000, 125000);
	cr_assert(llabs(f - 1250000000) <= 2, "finish %lld", (long long)f);
	/* loops: at 1.5 s the trace restarts */
	cr_assert_float_eq(rtci_ctl_trace_bytes(t, 1500000000, 2500000000), 125000, 1e-3);
	rtci_ctl_trace_destroy(t);
}

/* A slice of a longer recording (first timestamp not 0) starts at its first entry: the same
 * link as the slice moved to time 0, not a constant link up to the first timestamp. */
Test(trace, slices_are_rebased_to_zero)
{
	struct rtci_ctl_trace *a = parse_ok("1\n1\n3\n4\n"), *b = parse_ok("5001\n5001\n5003\n5004\n");
	cr_assert_eq(rtci_ctl_trace_period_ns(b), rtci_ctl_trace_period_ns(a));
	cr_assert_float_eq(rtci_ctl_trace_period_bytes(b), rtci_ctl_trace_period_bytes(a), 1e-9);
	for (int64_t t = 0; t <= 9000000; t += 250000)
		cr_assert_float_eq(rtci_ctl_trace_cum(b, t), rtci_ctl_trace_cum(a, t), 1e-6, "at %lld",
				   (long long)t);
	rtci_ctl_trace_destroy(a);
	rtci_ctl_trace_destroy(b);

	/* norway: the first row's time is 0 and its rate (over time before the slice) is unused */
	a = parse_ok("0.0 4.0\n1.0 1.0\n1.5 2.0\n");
	b = parse_ok("100.0 9.0\n101.0 1.0\n101.5 2.0\n");
	cr_assert_eq(rtci_ctl_trace_period_ns(b), 1500000000);
	cr_assert_float_eq(rtci_ctl_trace_period_bytes(b), 250000, 1e-3);
	for (int64_t t = 0; t <= 3000000000; t += 100000000)
		cr_assert_float_eq(rtci_ctl_trace_cum(b, t), rtci_ctl_trace_cum(a, t), 1e-3, "at %lld",
				   (long long)t);
	rtci_ctl_trace_destroy(a);
	rtci_ctl_trace_destroy(b);
}

Test(trace, malformed_lines_name_file_and_line)
{
	parse_fails("1\n2\nabc\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:3:");
	parse_fails("1\n5\n4\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:3: timestamp 4 goes back");
	parse_fails("1\n-3\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:2:");
	parse_fails("1\n2 3\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:2:");
	parse_fails("0 1\n1 x\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:2:");
	parse_fails("0 1\n1 2\n\n0.5 2\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:4: time 0.5 goes back");
	parse_fails("0 1\n1 -2\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:2: rate");
	parse_fails("0 1\n1 nan\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:2: rate");
	parse_fails("0 1 2\n", -RTCI_ERR_CTL_TRACE_SYNTAX, "bad.up:1: 3 columns");
	parse_fails("\n\n", -RTCI_ERR_CTL_TRACE_EMPTY, "empty");
	parse_fails("0 0\n1 0\n", -RTCI_ERR_CTL_TRACE_EMPTY, "no data");
	parse_fails("0 5\n", -RTCI_ERR_CTL_TRACE_EMPTY, "no data");
	char longline[400];
	memset(longline, '1', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	parse_fails(longline, -RTCI_ERR_CTL_TRACE_SYNTAX, "too long");
	const char nul[] = { '1', '\n', 0, '\n' };
	struct rtci_ctl_trace *t = NULL;
	cr_assert_eq(rtci_ctl_trace_parse(nul, sizeof(nul), "n", RTCI_CTL_TRACE_AUTO, &t, NULL, 0),
		     -RTCI_ERR_CTL_TRACE_SYNTAX);
}

Test(trace, load_file_reports_missing_file)
{
	struct rtci_ctl_trace *t = NULL;
	char err[256] = "";
	int rc = rtci_ctl_trace_load_file("/nonexistent/trace.up", RTCI_CTL_TRACE_AUTO, &t, err,
					  sizeof(err));
	cr_assert_lt(rc, 0);
	cr_assert(strstr(err, "/nonexistent/trace.up"));
}

Test(trace, finish_inverts_cumulative)
{
	int64_t dur[] = { 300000000, 200000000, 500000000 };
	double bps[] = { 100000, 0, 40000 };
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_steps(dur, bps, 3, &t), 0);
	for (int64_t s = 0; s < 3000000000LL; s += 123456789) {
		for (double b = 1000; b < 200000; b *= 1.7) {
			int64_t f = rtci_ctl_trace_finish(t, s, b);
			cr_assert_geq(f, s);
			cr_assert_float_eq(rtci_ctl_trace_bytes(t, s, f), b, 1e-3 + b * 1e-9);
			/* and not earlier */
			cr_assert_lt(rtci_ctl_trace_bytes(t, s, f - 2), b);
		}
	}
	/* during the zero-rate step nothing moves: 1 byte at 0.35 s waits until 0.5 s */
	int64_t f = rtci_ctl_trace_finish(t, 350000000, 1);
	cr_assert(f >= 500000000 && f < 500100000, "finish %lld", (long long)f);
	rtci_ctl_trace_destroy(t);
}

Test(trace, finish_saturates_on_a_trace_of_almost_no_capacity)
{
	/* found by fuzz_control_parse: 1e-12 Mbit/s put the finish ~10^21 ns away (overflow) */
	struct rtci_ctl_trace *t = parse_ok("0 0\n1 1E-12\n");
	int64_t f = rtci_ctl_trace_finish(t, 0, 1e6);
	cr_assert_eq(f, RTCI_CTL_TRACE_NEVER);
	cr_assert_eq(rtci_ctl_trace_finish(t, RTCI_CTL_TRACE_NEVER + 5, 1e6), RTCI_CTL_TRACE_NEVER + 5);
	rtci_ctl_trace_destroy(t);
}
