/* The PMD's own counters as metrics: what the NIC or the kernel ring lost before the gateway's
 * parser saw it (rte_eth_stats: imissed, ierrors, rx_nombuf, oerrors; per RX queue packets and
 * errors). Published by the main lcore from its slot, as running totals. */
#include "gateway/gw.h"
#include "gateway/pmd_stats.h"

static const char *const pmd_reason[4] = { "imissed", "ierrors", "rx_nombuf", "oerrors" };

int gw_pmd_register_series(struct gw *gw)
{
	struct rtci_metrics *m = gw->metrics;
	int fd = rtci_metrics_family(m, "rtci_port_pmd_drops_total",
				     "packets the PMD lost or refused before the gateway saw them, by "
				     "reason (rte_eth_stats)", RTCI_METRIC_COUNTER, NULL, 0,
				     RTCI_METRICS_SUMMARY);
	int fp = rtci_metrics_family(m, "rtci_port_pmd_rx_packets_total",
				     "packets the PMD received, per RX queue", RTCI_METRIC_COUNTER, NULL,
				     0, 0);
	int fe = rtci_metrics_family(m, "rtci_port_pmd_rx_errors_total",
				     "receive errors the PMD counted, per RX queue", RTCI_METRIC_COUNTER,
				     NULL, 0, 0);
	if (fd < 0 || fp < 0 || fe < 0)
		return -RTCI_ERR_METRICS_FULL;
	const char *rn[] = { "reason" }, *qn[] = { "queue" };
	for (int i = 0; i < 4; i++) {
		const char *v[] = { pmd_reason[i] };
		if ((gw->s_pmd[i] = rtci_metrics_series(m, fd, 1, rn, v)) < 0)
			return -RTCI_ERR_METRICS_FULL;
	}
	for (uint32_t q = 0; q < gw->nrx && q < RTCI_PORT_PMD_QUEUES; q++) {
		char qs[8];
		snprintf(qs, sizeof(qs), "%u", q);
		const char *v[] = { qs };
		if ((gw->s_pmd_rx[q] = rtci_metrics_series(m, fp, 1, qn, v)) < 0 ||
		    (gw->s_pmd_err[q] = rtci_metrics_series(m, fe, 1, qn, v)) < 0)
			return -RTCI_ERR_METRICS_FULL;
	}
	return 0;
}

void gw_pmd_publish(struct gw *gw)
{
	struct rtci_port_pmd_stats ps;
	if (!gw->port || rtci_port_pmd_stats(gw->port, &ps) < 0)
		return;
	uint64_t v[4] = { ps.imissed, ps.ierrors, ps.rx_nombuf, ps.oerrors };
	for (int i = 0; i < 4; i++)
		rtci_metrics_set_total(gw->metrics, 0, gw->s_pmd[i], v[i]);
	for (uint32_t q = 0; q < gw->nrx && q < RTCI_PORT_PMD_QUEUES; q++) {
		rtci_metrics_set_total(gw->metrics, 0, gw->s_pmd_rx[q], ps.q_ipackets[q]);
		rtci_metrics_set_total(gw->metrics, 0, gw->s_pmd_err[q], ps.q_errors[q]);
	}
}
