/* What the gateway tells a device, and when: the controller's plan turned into commands. The
 * gateway and rtci-sim share it, so that the simulator's devices hear exactly what live ones do. */
#include "control/policy.h"

#include <errno.h>
#include <string.h>

unsigned rtci_ctl_plan_setup(const struct rtci_ctl_plan *pl, uint64_t frame, unsigned fallback)
{
	if (!pl->n || frame < pl->from)
		return fallback;
	uint64_t i = frame - pl->from;
	return pl->setup[i < pl->n ? i : pl->n - 1u];
}

/* Payload of a plan step: none for the local exit. */
static double step_bytes(const struct rtci_ctl_table *t, unsigned s)
{
	return s < t->n ? t->s[s].bytes : 0;
}

void rtci_ctl_cmd_init(struct rtci_ctl_cmd *c, unsigned setup, uint64_t frame)
{
	*c = (struct rtci_ctl_cmd){ .told = { .from = frame, .n = 1 } };
	c->told.setup[0] = (uint16_t)setup;
}

void rtci_ctl_cmd_seen(struct rtci_ctl_cmd *c, uint64_t frame, unsigned setup)
{
	if (c->pending && frame >= c->told.from &&
	    setup == rtci_ctl_plan_setup(&c->told, frame, setup))
		c->pending = false;
}

unsigned rtci_ctl_cmd_margin(int64_t now_ns, int64_t capture_ns, int64_t one_way_ns, double fps)
{
	if (!capture_ns || !(fps > 0))
		return 1;
	int64_t period = (int64_t)(1e9 / fps);
	if (period <= 0)
		return 1;
	int64_t need = (now_ns + one_way_ns - capture_ns + period - 1) / period; /* ceil */
	if (need < 1)
		return 1;
	return need > RTCI_CTL_CMD_MAX_MARGIN ? RTCI_CTL_CMD_MAX_MARGIN : (unsigned)need;
}

int rtci_ctl_cmd_decide(struct rtci_ctl_cmd *c, struct rtci_ctl_device *d,
			const struct rtci_ctl_policy *p, const struct rtci_ctl_cmd_at *at)
{
	uint8_t plan[RTCI_CTL_MAX_PLAN];
	unsigned n = 0;
	int s = rtci_ctl_choose(d, p, at->seq, at->capture_ns, plan, &n);
	if (s < 0)
		return s;
	if (n > at->max_steps) /* n <= the horizon <= RTCI_CTL_MAX_PLAN */
		n = at->max_steps ? at->max_steps : 1;
	/* The plan travels up to its first step up: the device holds the step before it. Steps
	 * down keep frames in time when no later decision reaches the device (a slow link delays
	 * the arrivals that bring decisions); a step up at the end of a horizon is tentative, and
	 * every later decision would move it again. */
	const struct rtci_ctl_table *t = rtci_ctl_policy_table(p);
	unsigned steps = n;
	for (unsigned i = 1; i < n; i++)
		if (step_bytes(t, plan[i]) > step_bytes(t, plan[i - 1])) {
			steps = i;
			break;
		}
	/* the frames' setups as the device has them (nothing told yet: a command is due) */
	uint8_t told[RTCI_CTL_MAX_PLAN], want[RTCI_CTL_MAX_PLAN];
	for (unsigned i = 0; i < n; i++) {
		want[i] = plan[i < steps ? i : steps - 1];
		told[i] = (uint8_t)rtci_ctl_plan_setup(&c->told, at->frame + i, RTCI_CTL_SKIP);
	}
	/* A command when the decision itself (the plan's first step) is news, and then with the
	 * steps after it. Later steps alone are not: the next arrival decides them again, and
	 * sending on them too cost 0.04 points at 30 fps, 100 ms (rtci-sim, docs/control.md §6).
	 * One command in flight: a new one waits until the device uses the last, or out the
	 * interval (a lost command). */
	bool differs = told[0] != want[0];
	bool may = c->count == 0 || !c->pending || at->now_ns - c->last_ns >= RTCI_CTL_CMD_INTERVAL_NS;
	int out = RTCI_CTL_CMD_NONE;
	if (differs && may) {
		/* frames before at->frame keep what they were told; the last step holds after, so
		 * repeats of it at the end need not travel */
		unsigned send = steps;
		while (send > 1 && plan[send - 1] == plan[send - 2])
			send--;
		c->told.from = at->frame;
		c->told.n = (uint8_t)send;
		for (unsigned i = 0; i < send; i++)
			c->told.setup[i] = plan[i];
		c->pending = true;
		c->count++;
		c->last_ns = at->now_ns;
		memcpy(told, want, n);
		out = RTCI_CTL_CMD_NEW;
	} else if (!differs && c->pending && at->seen && at->seen_frame >= c->told.from &&
		   at->seen_setup != rtci_ctl_plan_setup(&c->told, at->seen_frame, at->seen_setup) &&
		   at->now_ns - c->last_ns >= RTCI_CTL_CMD_INTERVAL_NS) {
		c->last_ns = at->now_ns; /* not in force yet: the same command again */
		out = RTCI_CTL_CMD_RESEND;
	}
	rtci_ctl_commit(d, p, at->seq, at->capture_ns, told, n);
	return out;
}
