/* Bandwidth estimators over per-frame throughput samples. */
#include "control/policy.h"

void rtci_ctl_est_init(struct rtci_ctl_est *e, unsigned k)
{
	*e = (struct rtci_ctl_est){ 0 };
	if (k < 1)
		k = 1;
	if (k > RTCI_CTL_EST_WINDOW)
		k = RTCI_CTL_EST_WINDOW;
	e->k = (uint8_t)k;
}

double rtci_ctl_est_harmonic(const struct rtci_ctl_est *e)
{
	if (!e->n)
		return 0;
	double inv = 0;
	for (unsigned i = 0; i < e->n; i++) {
		unsigned idx = (e->head + RTCI_CTL_EST_WINDOW - 1 - i) % RTCI_CTL_EST_WINDOW;
		inv += 1.0 / e->sample[idx];
	}
	return e->n / inv;
}

double rtci_ctl_est_max_error(const struct rtci_ctl_est *e)
{
	double maxerr = 0;
	for (unsigned i = 0; i < e->n; i++) {
		unsigned idx = (e->head + RTCI_CTL_EST_WINDOW - 1 - i) % RTCI_CTL_EST_WINDOW;
		if (e->error[idx] > maxerr)
			maxerr = e->error[idx];
	}
	return maxerr > RTCI_CTL_ROBUST_MAX_ERROR ? RTCI_CTL_ROBUST_MAX_ERROR : maxerr;
}

double rtci_ctl_est_robust(const struct rtci_ctl_est *e)
{
	return rtci_ctl_est_harmonic(e) / (1.0 + rtci_ctl_est_max_error(e));
}

double rtci_ctl_est_ewma(const struct rtci_ctl_est *e) { return e->n ? e->ewma : 0; }

double rtci_ctl_est_get(const struct rtci_ctl_est *e, enum rtci_ctl_est_kind kind)
{
	switch (kind) {
	case RTCI_CTL_EST_ROBUST:
		return rtci_ctl_est_robust(e);
	case RTCI_CTL_EST_EWMA:
		return rtci_ctl_est_ewma(e);
	case RTCI_CTL_EST_HARMONIC:
	default:
		return rtci_ctl_est_harmonic(e);
	}
}

void rtci_ctl_est_add(struct rtci_ctl_est *e, double bps)
{
	if (!(bps > 0))
		return;
	if (bps > 1e12) /* 8 Tbit/s: a span too short to measure */
		bps = 1e12;
	/* robustMPC: the error of the prediction made before this sample (harmonic mean over
	 * the window) relative to the sample. */
	float err = 0;
	if (e->n) {
		double pred = rtci_ctl_est_harmonic(e);
		err = (float)((pred > bps ? pred - bps : bps - pred) / bps);
	}
	e->ewma = e->n ? (float)(RTCI_CTL_EWMA_ALPHA * bps + (1 - RTCI_CTL_EWMA_ALPHA) * e->ewma)
		       : (float)bps;
	unsigned k = e->k ? e->k : RTCI_CTL_EST_WINDOW;
	/* The ring is K long: head indexes the next slot modulo the full array, and only the
	 * newest n <= K entries are read. */
	e->sample[e->head] = (float)bps;
	e->error[e->head] = e->n ? err : 0;
	e->head = (uint8_t)((e->head + 1) % RTCI_CTL_EST_WINDOW);
	if (e->n < k)
		e->n++;
}
