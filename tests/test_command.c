/* The commands the gateway sends (control/command.c): margin, plans, one command in flight. */
#include <criterion/criterion.h>
#include <string.h>

#include "control/policy.h"

#define MS 1000000LL

/* Setups of 1000, 2000 and 4000 bytes; MPC at 10 fps, D 200 ms, horizon 5. */
static struct rtci_ctl_policy *policy(enum rtci_ctl_kind kind)
{
	struct rtci_ctl_table t;
	memset(&t, 0, sizeof(t));
	t.n = 3;
	t.clio.L = 255;
	double bytes[] = { 1000, 2000, 4000 }, acc[] = { 0.7, 0.8, 0.9 };
	for (unsigned i = 0; i < 3; i++)
		t.s[i] = (struct rtci_ctl_setup){ .c = (uint16_t)(i + 1), .L = 255, .bits = 8,
						  .accuracy = acc[i], .bytes = bytes[i] };
	struct rtci_ctl_model m;
	rtci_ctl_model_default(&m);
	struct rtci_ctl_policy_cfg c = { .kind = kind, .estimator = RTCI_CTL_EST_ROBUST };
	struct rtci_ctl_policy *p;
	cr_assert_eq(rtci_ctl_policy_create(&t, &m, &c, &p), 0);
	return p;
}

/* n frames of `bytes` on a link of `bps`, 100 ms apart, each alone on the link */
static void steady(struct rtci_ctl_device *d, const struct rtci_ctl_policy *p, unsigned n,
		   double bytes, double bps)
{
	for (unsigned k = 0; k < n; k++) {
		int64_t cap = 1000 * MS + (int64_t)k * 100 * MS;
		int64_t done = cap + 5 * MS + (int64_t)(bytes / bps * 1e9);
		struct rtci_ctl_obs o = { .seq = k, .bytes = (uint32_t)bytes, .capture_ns = cap,
					  .first_arrival_ns = done + 10 * MS - 1,
					  .last_arrival_ns = done + 10 * MS };
		rtci_ctl_observe_frame(d, p, &o);
	}
}

Test(command, margin_names_the_first_frame_not_captured_yet)
{
	/* 10 fps: a frame captured at 0 and arriving at 30 ms, 5 ms one way back: the next one */
	cr_assert_eq(rtci_ctl_cmd_margin(30 * MS, 1, 5 * MS, 10), 1);
	/* arriving 250 ms after its capture: frames +1, +2 are captured by 255 ms; +3 is not */
	cr_assert_eq(rtci_ctl_cmd_margin(250 * MS + 1, 1, 5 * MS, 10), 3);
	/* exactly at a capture: that frame is still reached */
	cr_assert_eq(rtci_ctl_cmd_margin(195 * MS + 1, 1, 5 * MS, 10), 2);
	cr_assert_eq(rtci_ctl_cmd_margin(100000 * MS, 1, 0, 10), RTCI_CTL_CMD_MAX_MARGIN);
	cr_assert_eq(rtci_ctl_cmd_margin(30 * MS, 0, 0, 10), 1, "capture unknown");
}

Test(command, a_plan_gives_each_frame_its_step_and_holds_the_last)
{
	struct rtci_ctl_cmd c;
	rtci_ctl_cmd_init(&c, 2, 0);
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 77, 9), 2);
	c.told.from = 10;
	c.told.n = 3;
	c.told.setup[0] = 1;
	c.told.setup[1] = 0;
	c.told.setup[2] = 2;
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 9, 9), 9, "before the plan: the fallback");
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 10, 9), 1);
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 11, 9), 0);
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 12, 9), 2);
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 500, 9), 2);
	/* in force once a frame it covers arrives on its step */
	c.pending = true;
	rtci_ctl_cmd_seen(&c, 9, 1);
	cr_assert(c.pending);
	rtci_ctl_cmd_seen(&c, 11, 2);
	cr_assert(c.pending);
	rtci_ctl_cmd_seen(&c, 11, 0);
	cr_assert_not(c.pending);
}

Test(command, a_plan_down_travels_and_one_command_is_in_flight)
{
	struct rtci_ctl_policy *p = policy(RTCI_CTL_MPC);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	/* 15 kB/s: 1500 bytes per period; the device was told the largest setup */
	steady(&d, p, 8, 1000, 15000);
	struct rtci_ctl_cmd c;
	rtci_ctl_cmd_init(&c, 2, 0);
	struct rtci_ctl_cmd_at at = { .seq = 9, .capture_ns = 1900 * MS, .frame = 109,
				      .now_ns = 1850 * MS, .max_steps = RTCI_CTL_MAX_PLAN };
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_NEW);
	cr_assert_eq(c.count, 1);
	cr_assert_eq(c.told.from, 109);
	cr_assert(c.pending);
	/* one frame of 2000 bytes, then 1000-byte frames the device holds: the step down travels
	 * (the steps after it repeat it) */
	cr_assert_eq(c.told.n, 2);
	cr_assert_eq(c.told.setup[0], 1);
	cr_assert_eq(c.told.setup[1], 0);
	cr_assert_eq(rtci_ctl_plan_setup(&c.told, 115, 9), 0);
	/* the next decision wants something else for its frame: the last command is not in
	 * force yet, so nothing goes out until the interval has passed */
	struct rtci_ctl_cmd keep = c;
	/* now a fast link: 1000-byte frames in 10 ms, a window's worth and more */
	for (uint32_t k = 9; k < 29; k++) {
		int64_t cap = 1000 * MS + (int64_t)k * 100 * MS;
		struct rtci_ctl_obs o = { .seq = k, .bytes = 1000, .capture_ns = cap,
					  .first_arrival_ns = cap + 25 * MS - 1,
					  .last_arrival_ns = cap + 25 * MS };
		rtci_ctl_observe_frame(&d, p, &o);
	}
	/* it wants the largest setup again, but the last command is not in force yet and the
	 * interval has not passed: nothing goes out */
	at = (struct rtci_ctl_cmd_at){ .seq = 30, .capture_ns = 4000 * MS, .frame = 130,
				       .now_ns = 1850 * MS + 100 * MS, .max_steps = RTCI_CTL_MAX_PLAN };
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_NONE);
	cr_assert_eq(c.count, keep.count);
	cr_assert_eq(memcmp(&c.told, &keep.told, sizeof(c.told)), 0);
	/* a frame arrives on its commanded step: in force, the next decision goes out at once */
	rtci_ctl_cmd_seen(&c, 109, 1);
	cr_assert_not(c.pending);
	at.seq = 31;
	at.frame = 131;
	at.capture_ns = 4100 * MS;
	at.now_ns += 10 * MS;
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_NEW);
	cr_assert_eq(c.count, 2);
	cr_assert_eq(c.told.from, 131);
	cr_assert_eq(c.told.setup[0], 2, "back up on a fast link");
	rtci_ctl_policy_destroy(p);
}

Test(command, lost_command_goes_again_and_rate_plans_one_step)
{
	struct rtci_ctl_policy *p = policy(RTCI_CTL_RATE);
	struct rtci_ctl_device d;
	rtci_ctl_device_init(&d, p);
	steady(&d, p, 8, 1000, 25000); /* 2500 bytes per period: setup 1 fits */
	struct rtci_ctl_cmd c;
	rtci_ctl_cmd_init(&c, 0, 0);
	struct rtci_ctl_cmd_at at = { .seq = 9, .capture_ns = 1900 * MS, .frame = 9,
				      .now_ns = 1850 * MS, .max_steps = RTCI_CTL_MAX_PLAN };
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_NEW);
	cr_assert_eq(c.told.n, 1, "one setup: a rate switch");
	cr_assert_eq(c.told.setup[0], 1);
	/* frame 10 arrives on the old setup: within the interval nothing, after it the same
	 * command again */
	at = (struct rtci_ctl_cmd_at){ .seq = 11, .capture_ns = 2100 * MS, .frame = 11,
				       .now_ns = 1950 * MS, .max_steps = RTCI_CTL_MAX_PLAN,
				       .seen = true, .seen_frame = 10, .seen_setup = 0 };
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_NONE);
	at.now_ns = 1850 * MS + RTCI_CTL_CMD_INTERVAL_NS;
	cr_assert_eq(rtci_ctl_cmd_decide(&c, &d, p, &at), RTCI_CTL_CMD_RESEND);
	cr_assert_eq(c.count, 1, "the same command sequence");
	rtci_ctl_policy_destroy(p);
}
