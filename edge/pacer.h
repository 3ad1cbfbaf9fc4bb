/* Trace-driven virtual uplink queue of one device.
 *
 * A device's datagrams leave in FIFO order over an emulated link whose capacity follows a
 * bandwidth trace (control/trace.h: cumulative capacity, looping). A datagram of n bytes that
 * reaches the head of the queue at time t leaves when the link has carried n more bytes, i.e. at
 * rtci_ctl_trace_finish(t, n); the tools hand it to the socket at that moment, so one machine
 * reproduces the trace's delays. A frame is admitted only when its last byte can leave by its
 * send deadline; otherwise the caller skips it (the device never queues work that is already
 * late). Without a trace the link is unlimited: everything leaves at once.
 *
 * Plain value type, no allocation, no clock: times (ns) are passed in by the caller, on any
 * monotonic time base that starts at 0 for this pacer (offset_ns moves the trace under it).
 * A trace may be shared read-only by any number of pacers. */
#ifndef RTCI_EDGE_PACER_H
#define RTCI_EDGE_PACER_H

#include <stdint.h>

#include "control/trace.h"

struct rtci_pacer {
	const struct rtci_ctl_trace *trace; /* NULL: unlimited link */
	int64_t offset_ns;      /* trace time at pacer time 0 */
	int64_t busy_until_ns;  /* when the last admitted byte will have left */
	int64_t head_free_ns;   /* when the last released datagram left */
	uint64_t admitted_bytes, released_bytes;
	uint64_t frames_admitted, frames_refused;
};

void rtci_pacer_init(struct rtci_pacer *p, const struct rtci_ctl_trace *trace, int64_t offset_ns);

/* When `bytes` that start crossing the link at start_ns will have left. */
int64_t rtci_pacer_finish(const struct rtci_pacer *p, int64_t start_ns, uint64_t bytes);

/* Admits a frame of `bytes` link bytes (datagrams plus their IPv4 and UDP headers:
 * dataplane/protocol.h RTCI_PROTO_FRAG_OVERHEAD) at now_ns:
 * on success sets *finish_ns to the time its last byte leaves and returns 0; returns -ETIME and
 * changes nothing when that time would be after send_deadline_ns. */
int rtci_pacer_admit(struct rtci_pacer *p, int64_t now_ns, uint64_t bytes,
		     int64_t send_deadline_ns, int64_t *finish_ns);

/* Departure time of the next datagram (bytes on the link) of a frame admitted at frame_ns:
 * it starts when both the frame was queued and the previous datagram left. */
int64_t rtci_pacer_departure(const struct rtci_pacer *p, int64_t frame_ns, uint64_t bytes);

/* Records that a datagram of `bytes` left at depart_ns (its rtci_pacer_departure()). */
void rtci_pacer_release(struct rtci_pacer *p, int64_t depart_ns, uint64_t bytes);

/* Link bytes admitted and not yet released. */
static inline uint64_t rtci_pacer_backlog(const struct rtci_pacer *p)
{
	return p->admitted_bytes - p->released_bytes;
}

/* Mean capacity of the trace over [t0, t1) in bytes/s (0 without a trace). */
double rtci_pacer_rate(const struct rtci_pacer *p, int64_t t0_ns, int64_t t1_ns);

#endif
