/* Trace-driven virtual uplink queue: see pacer.h. */
#include "edge/pacer.h"

#include <errno.h>

void rtci_pacer_init(struct rtci_pacer *p, const struct rtci_ctl_trace *trace, int64_t offset_ns)
{
	*p = (struct rtci_pacer){ .trace = trace, .offset_ns = offset_ns };
}

int64_t rtci_pacer_finish(const struct rtci_pacer *p, int64_t start_ns, uint64_t bytes)
{
	if (!p->trace || bytes == 0)
		return start_ns;
	/* the trace's clock runs offset_ns ahead of the pacer's */
	int64_t t = rtci_ctl_trace_finish(p->trace, start_ns + p->offset_ns, (double)bytes);
	return t - p->offset_ns;
}

int rtci_pacer_admit(struct rtci_pacer *p, int64_t now_ns, uint64_t bytes,
		     int64_t send_deadline_ns, int64_t *finish_ns)
{
	int64_t start = p->busy_until_ns > now_ns ? p->busy_until_ns : now_ns;
	int64_t fin = rtci_pacer_finish(p, start, bytes);
	if (fin > send_deadline_ns) {
		p->frames_refused++;
		return -ETIME;
	}
	p->busy_until_ns = fin;
	p->admitted_bytes += bytes;
	p->frames_admitted++;
	if (finish_ns)
		*finish_ns = fin;
	return 0;
}

int64_t rtci_pacer_departure(const struct rtci_pacer *p, int64_t frame_ns, uint64_t bytes)
{
	int64_t start = p->head_free_ns > frame_ns ? p->head_free_ns : frame_ns;
	return rtci_pacer_finish(p, start, bytes);
}

void rtci_pacer_release(struct rtci_pacer *p, int64_t depart_ns, uint64_t bytes)
{
	if (depart_ns > p->head_free_ns)
		p->head_free_ns = depart_ns;
	p->released_bytes += bytes;
}

double rtci_pacer_rate(const struct rtci_pacer *p, int64_t t0_ns, int64_t t1_ns)
{
	if (!p->trace || t1_ns <= t0_ns)
		return 0.0;
	return rtci_ctl_trace_bytes(p->trace, t0_ns + p->offset_ns, t1_ns + p->offset_ns) * 1e9 /
	       (double)(t1_ns - t0_ns);
}
