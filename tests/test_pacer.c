/* Pacer: the trace-driven virtual uplink queue, on hand-made traces. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "edge/pacer.h"

#define MS 1000000LL
#define S 1000000000LL

static struct rtci_ctl_trace *constant(double bps)
{
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_constant(bps, 10 * S, &t), 0);
	return t;
}

/* |a - b| within 1 us: the trace rounds finish times up to whole ns of a double. */
#define assert_ns(a, b) cr_assert(llabs((long long)(a) - (long long)(b)) <= 1000, \
	"%lld != %lld", (long long)(a), (long long)(b))

Test(pacer, unlimited_link_sends_at_once)
{
	struct rtci_pacer p;
	rtci_pacer_init(&p, NULL, 0);
	int64_t fin = -1;
	cr_assert_eq(rtci_pacer_admit(&p, 5 * MS, 100000, 5 * MS, &fin), 0);
	cr_assert_eq(fin, 5 * MS);
	cr_assert_eq(rtci_pacer_departure(&p, 5 * MS, 1500), 5 * MS);
}

Test(pacer, frames_queue_behind_each_other)
{
	struct rtci_ctl_trace *t = constant(1000.0); /* one byte per ms */
	struct rtci_pacer p;
	rtci_pacer_init(&p, t, 0);
	int64_t fin;
	cr_assert_eq(rtci_pacer_admit(&p, 0, 500, 10 * S, &fin), 0);
	assert_ns(fin, 500 * MS);
	/* queued at 100 ms behind the first: starts at 500 ms */
	cr_assert_eq(rtci_pacer_admit(&p, 100 * MS, 500, 10 * S, &fin), 0);
	assert_ns(fin, 1000 * MS);
	cr_assert_eq(rtci_pacer_backlog(&p), 1000);
	/* datagrams of the first frame leave one after the other */
	int64_t d1 = rtci_pacer_departure(&p, 0, 200);
	assert_ns(d1, 200 * MS);
	rtci_pacer_release(&p, d1, 200);
	int64_t d2 = rtci_pacer_departure(&p, 0, 300);
	assert_ns(d2, 500 * MS);
	rtci_pacer_release(&p, d2, 300);
	/* the second frame's first datagram starts when the first frame has left */
	int64_t d3 = rtci_pacer_departure(&p, 100 * MS, 100);
	assert_ns(d3, 600 * MS);
	cr_assert_eq(rtci_pacer_backlog(&p), 500);
	rtci_ctl_trace_destroy(t);
}

Test(pacer, idle_link_starts_at_admission)
{
	struct rtci_ctl_trace *t = constant(1000.0);
	struct rtci_pacer p;
	rtci_pacer_init(&p, t, 0);
	int64_t fin;
	cr_assert_eq(rtci_pacer_admit(&p, 0, 100, 10 * S, &fin), 0);
	int64_t d = rtci_pacer_departure(&p, 0, 100);
	rtci_pacer_release(&p, d, 100);
	/* admitted at 2 s on an idle link: leaves 100 ms later, not at 200 ms */
	cr_assert_eq(rtci_pacer_admit(&p, 2 * S, 100, 10 * S, &fin), 0);
	assert_ns(fin, 2100 * MS);
	assert_ns(rtci_pacer_departure(&p, 2 * S, 100), 2100 * MS);
	rtci_ctl_trace_destroy(t);
}

Test(pacer, frame_that_cannot_make_its_deadline_is_refused)
{
	struct rtci_ctl_trace *t = constant(1000.0);
	struct rtci_pacer p;
	rtci_pacer_init(&p, t, 0);
	int64_t fin = 0;
	cr_assert_eq(rtci_pacer_admit(&p, 0, 500, 600 * MS, &fin), 0);
	/* would finish at 1 s, deadline 900 ms: refused, nothing changes */
	cr_assert_eq(rtci_pacer_admit(&p, 100 * MS, 500, 900 * MS, &fin), -ETIME);
	cr_assert_eq(p.frames_refused, 1);
	cr_assert_eq(rtci_pacer_backlog(&p), 500);
	/* a smaller frame still fits */
	cr_assert_eq(rtci_pacer_admit(&p, 100 * MS, 300, 900 * MS, &fin), 0);
	assert_ns(fin, 800 * MS);
	rtci_ctl_trace_destroy(t);
}

Test(pacer, outage_delays_and_skips)
{
	/* 1 s at 1000 B/s, 1 s of nothing, then 1000 B/s again */
	int64_t dur[] = { 1 * S, 1 * S, 8 * S };
	double bps[] = { 1000.0, 0.0, 1000.0 };
	struct rtci_ctl_trace *t;
	cr_assert_eq(rtci_ctl_trace_steps(dur, bps, 3, &t), 0);
	struct rtci_pacer p;
	rtci_pacer_init(&p, t, 0);
	int64_t fin;
	cr_assert_eq(rtci_pacer_admit(&p, 0, 1500, 10 * S, &fin), 0);
	assert_ns(fin, 2500 * MS);
	/* during the outage a frame with a 200 ms deadline cannot leave */
	struct rtci_pacer q;
	rtci_pacer_init(&q, t, 0);
	cr_assert_eq(rtci_pacer_admit(&q, 1100 * MS, 50, 1300 * MS, &fin), -ETIME);
	cr_assert_eq(rtci_pacer_admit(&q, 1950 * MS, 100, 2150 * MS, &fin), 0);
	assert_ns(fin, 2100 * MS);
	/* an offset moves the trace under the pacer: pacer time 0 is trace time 1.5 s */
	struct rtci_pacer r;
	rtci_pacer_init(&r, t, 1500 * MS);
	cr_assert_eq(rtci_pacer_admit(&r, 0, 100, 10 * S, &fin), 0);
	assert_ns(fin, 600 * MS);
	cr_assert_float_eq(rtci_pacer_rate(&r, 0, 500 * MS), 0.0, 1e-9);
	cr_assert_float_eq(rtci_pacer_rate(&r, 500 * MS, 1500 * MS), 1000.0, 1e-6);
	rtci_ctl_trace_destroy(t);
}

Test(pacer, both_trace_formats)
{
	/* norway: "time_s Mbit/s", 0.008 Mbit/s = 1000 B/s for 2 s */
	const char norway[] = "1.0 0.008\n2.0 0.008\n";
	struct rtci_ctl_trace *t;
	char err[256];
	cr_assert_eq(rtci_ctl_trace_parse(norway, strlen(norway), "n", RTCI_CTL_TRACE_AUTO, &t, err,
					  sizeof(err)), 0, "%s", err);
	struct rtci_pacer p;
	rtci_pacer_init(&p, t, 0);
	int64_t fin;
	cr_assert_eq(rtci_pacer_admit(&p, 0, 500, 10 * S, &fin), 0);
	assert_ns(fin, 500 * MS);
	rtci_ctl_trace_destroy(t);

	/* mahimahi: 1500-byte opportunities at 10 ms and 20 ms; a trace that starts late is rebased
	 * (docs/control.md §8): opportunities at 1 ms and 11 ms, period 11 ms */
	const char mm[] = "10\n20\n";
	cr_assert_eq(rtci_ctl_trace_parse(mm, strlen(mm), "m", RTCI_CTL_TRACE_AUTO, &t, err,
					  sizeof(err)), 0, "%s", err);
	rtci_pacer_init(&p, t, 0);
	/* two full packets need both opportunities of the first period */
	cr_assert_eq(rtci_pacer_admit(&p, 0, 3000, 1 * S, &fin), 0);
	cr_assert(fin <= 11 * MS && fin > 1 * MS, "%lld", (long long)fin);
	/* a third packet needs the next period */
	cr_assert_eq(rtci_pacer_admit(&p, 0, 1500, 1 * S, &fin), 0);
	cr_assert(fin > 11 * MS && fin <= 22 * MS, "%lld", (long long)fin);
	rtci_ctl_trace_destroy(t);
}
