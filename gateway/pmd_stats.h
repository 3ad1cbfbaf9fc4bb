/* The port driver's own counters as metrics (pmd_stats.c). */
#ifndef RTCI_GATEWAY_PMD_STATS_H
#define RTCI_GATEWAY_PMD_STATS_H

struct gw;

/* pmd_stats.c: the PMD's counters (imissed, ierrors, rx_nombuf, oerrors, per queue) */
int gw_pmd_register_series(struct gw *gw);
void gw_pmd_publish(struct gw *gw);

#endif
