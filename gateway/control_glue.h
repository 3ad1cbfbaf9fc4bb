/* Per-device rate control in the gateway (control_glue.c): device clocks, controller tables from
 * models, policies per tenant, and the commands decided on frames and reports. */
#ifndef RTCI_GATEWAY_CONTROL_GLUE_H
#define RTCI_GATEWAY_CONTROL_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "control/policy.h"
#include "dataplane/protocol.h"
#include "gateway/tenants.h"
#include "inference/model.h"

/* Capture times against a device's learned clock (control_glue.c). */
enum gw_clock {
	GW_CLOCK_OK = 0,  /* mapped; never later than the frame's arrival */
	GW_CLOCK_LATE,    /* more than a deadline before its arrival: late by its own account */
	GW_CLOCK_AHEAD,   /* more than a deadline ahead of the learned clock: not believed */
};
#define GW_CLOCK_RELEARN 4 /* frames in a row off the clock after which it is learned again */
/* Maps a frame's capture time (device clock) to the gateway's: learns the device's clock offset
 * (smallest arrival minus capture seen) and sets *capture_gw. A capture more than deadline_us
 * off that clock is not mapped (LATE or AHEAD) unless it is the GW_CLOCK_RELEARN-th such frame
 * in a row: then the device's clock changed and is learned again from this frame. */
enum gw_clock gw_clock_map(struct gw_device *d, uint64_t capture_us, uint64_t arrival_us,
			   uint32_t deadline_us, uint64_t *capture_gw);
/* Learns the clock from a hello's send time: only as a first guess or within a deadline. */
void gw_clock_hello(struct gw_device *d, uint64_t send_us, uint64_t arrival_us, uint32_t deadline_us);

int gw_ctl_policies_create(struct gw *gw, struct gw_tenant *tn, char *err, size_t errlen);
void gw_ctl_policies_destroy(struct gw *gw, struct gw_tenant *tn);
void gw_ctl_device_init(struct gw_device *d, const struct gw_tenant *tn);
/* Setup a device starts with (hello-ack). */
uint16_t gw_ctl_initial_setup(struct gw_device *d, const struct gw_tenant *tn);
/* A controller decision as a setup id on the wire (RTCI_CTL_LOCAL: RTCI_SETUP_LOCAL). */
uint16_t gw_ctl_wire_setup(unsigned decision);
/* Feeds a completed frame to the device's controller and decides; writes a rate-switch command
 * datagram into buf and returns its length when one is due, 0 when none, or a negative code. */
long gw_ctl_on_frame(struct gw_device *d, const struct gw_tenant *tn, const struct rtci_proto_hdr *h,
		     uint32_t frame_len, uint64_t first_us, uint64_t complete_us, uint64_t now_us,
		     uint8_t *buf, size_t cap);
/* Feeds an authenticated device report (its drops since the previous one, its queue) to the
 * controller and decides; a command as for gw_ctl_on_frame. A device dropping every frame sends
 * no frame, so reports are the gateway's only news of it. Returns -RTCI_ERR_AUTH_REPLAYED for a
 * report not newer than the last one. */
long gw_ctl_on_report(struct gw_device *d, const struct gw_tenant *tn,
		      const struct rtci_proto_hdr *h, const struct rtci_proto_report *r,
		      uint64_t now_us, uint8_t *buf, size_t cap);

#endif
