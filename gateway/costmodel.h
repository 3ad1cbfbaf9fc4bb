/* Cost model of the tail: how long one worker takes for a batch of n frames of one model.
 *
 * Measured at start-up (each worker times every batch size it warms up) and kept current from
 * real batches: each observation moves the estimate for its batch size by 1/8 of the error
 * (an exponentially weighted mean), so a machine that gets busier is seen within tens of
 * batches. Batch sizes never observed are interpolated linearly between the nearest measured
 * ones, and extrapolated in proportion past the largest. The batcher's deadline checks and the
 * admission's capacity both come from here.
 *
 * Workers write, RX lcores and the main lcore read: each estimate is one relaxed atomic, so a
 * reader always sees a whole value; two workers updating one size at once may lose one of the
 * two observations, which an average can afford. No allocation, no clock. */
#ifndef RTCI_GATEWAY_COSTMODEL_H
#define RTCI_GATEWAY_COSTMODEL_H

#include <stdatomic.h>
#include <stdint.h>

#define RTCI_COST_MAX_BATCH 256

struct rtci_cost {
	uint32_t max_batch;
	_Atomic uint32_t ns8[RTCI_COST_MAX_BATCH + 1]; /* [n]: estimate in ns x 8; 0: not measured */
	_Atomic uint64_t observations;
};

/* Starts empty for batches of 1 .. max_batch (clamped to RTCI_COST_MAX_BATCH). */
void rtci_cost_init(struct rtci_cost *c, uint32_t max_batch);
/* One measured batch of n frames that took ns nanoseconds. n outside 1..max_batch is ignored;
 * the first observation of a size sets it, later ones move it by 1/8. */
void rtci_cost_observe(struct rtci_cost *c, uint32_t n, uint64_t ns);
/* Estimated time of a batch of n (1 .. max_batch) in microseconds, rounded up; 0 when nothing
 * was measured yet. */
uint64_t rtci_cost_batch_us(const struct rtci_cost *c, uint32_t n);
/* Worker time per frame at the batch size that gives the most frames per second, in
 * microseconds (0: nothing measured); *best_n (may be NULL) gets that size. */
double rtci_cost_frame_us(const struct rtci_cost *c, uint32_t *best_n);
/* The straight line through the estimates at 1 and max_batch: base + per_item * n, for a
 * batcher that models cost that way. */
void rtci_cost_linear(const struct rtci_cost *c, uint64_t *base_us, uint64_t *per_item_us);

#endif
