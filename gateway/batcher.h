/* Batcher: groups decoded frames into inference batches.
 *
 * One queue per (model, setup group). Within a queue frames leave earliest-deadline-first. A batch
 * is released when it is full, when its oldest frame has waited max_wait_us, or when waiting any
 * longer would make the most urgent frame miss its deadline. Before a batch is formed, frames that
 * cannot meet their deadline even in a batch of one (now + estimated inference time > deadline) are
 * dropped and counted. Each queue has a fixed capacity; each tenant may have a bound per queue and
 * a weight: when a queue is full, a tenant below its weighted share displaces the latest-deadline
 * frame of the tenant most above its share, so one flooding tenant cannot push others out.
 *
 * Pure logic: no DPDK, no clock, no threads. Time (microseconds, any monotonic origin) is passed
 * in by the caller. One batcher is used by one thread at a time. No allocation after create. */
#ifndef RTCI_GATEWAY_BATCHER_H
#define RTCI_GATEWAY_BATCHER_H

#include <stdint.h>

#define RTCI_BATCHER_MAX_BATCH 256

enum rtci_batcher_drop {
	RTCI_BATCHER_DROP_DEADLINE = 0, /* could not meet its deadline before inference */
	RTCI_BATCHER_DROP_QUEUE_FULL,   /* queue full and the tenant at or above its share */
	RTCI_BATCHER_DROP_TENANT_BOUND, /* tenant at its per-queue bound */
	RTCI_BATCHER_DROP_EVICTED,      /* displaced by a tenant below its fair share */
	RTCI_BATCHER_DROP_COUNT
};

/* Called for every frame the batcher drops, inside submit() or poll(), so the owner can release
 * the frame's buffers and count the drop per tenant. */
typedef void (*rtci_batcher_drop_fn)(void *user, void *frame, uint32_t tenant,
				     enum rtci_batcher_drop reason);

struct rtci_batcher_config {
	uint32_t queues;        /* number of (model, setup group) queues, >= 1 */
	uint32_t tenants;       /* tenant slots: tenant indices are 0 .. tenants-1 */
	uint32_t max_batch;     /* 1 .. RTCI_BATCHER_MAX_BATCH */
	uint64_t max_wait_us;   /* longest a frame waits for a fuller batch */
	uint32_t capacity;      /* frames per queue, >= 1 */
	rtci_batcher_drop_fn on_drop; /* may be NULL */
	void *user;
};

/* A frame leaving the batcher in a batch. */
struct rtci_batcher_item {
	void *frame;
	uint64_t deadline_us;
	uint64_t enqueue_us;
	uint32_t tenant;
};

struct rtci_batcher_stats {
	uint64_t submitted;          /* frames accepted by submit() */
	uint64_t batched;            /* frames released in batches */
	uint64_t batches;            /* batches released */
	uint64_t drops[RTCI_BATCHER_DROP_COUNT];
	uint64_t queue_time_us_sum;  /* over released frames */
	uint64_t queue_time_us_max;
	uint64_t batch_size_count[RTCI_BATCHER_MAX_BATCH + 1]; /* [n]: batches of size n */
	uint32_t depth;              /* frames queued now */
};

struct rtci_batcher_tenant_stats {
	uint64_t submitted;
	uint64_t batched;
	uint64_t drops[RTCI_BATCHER_DROP_COUNT];
	uint32_t depth; /* frames queued now, over all queues */
};

struct rtci_batcher;

/* Returns 0 or -EINVAL / -ENOMEM. */
int rtci_batcher_create(const struct rtci_batcher_config *cfg, struct rtci_batcher **out);
/* Drops nothing and calls no callback: the owner releases frames still queued via drain(). */
void rtci_batcher_destroy(struct rtci_batcher *b);

/* Tenant weight (>= 1, default 1) and bound on its frames in any one queue (0: only capacity). */
int rtci_batcher_set_tenant(struct rtci_batcher *b, uint32_t tenant, uint32_t weight,
			    uint32_t max_queued);

/* Estimated inference time of a batch of n on a queue: base_us + per_item_us * n (default 0, 0).
 * The owner refreshes it from measured inference times. */
int rtci_batcher_set_cost(struct rtci_batcher *b, uint32_t queue, uint64_t base_us,
			  uint64_t per_item_us);
/* Time until a worker can start the next batch released now (the work already handed to the
 * workers, spread over them; default 0). Every estimate below includes it, so the deadline
 * checks see the wait for a worker as well as the run. The owner refreshes it before polling. */
void rtci_batcher_set_start_delay(struct rtci_batcher *b, uint64_t us);
/* Start delay + base_us + per_item_us * n. */
uint64_t rtci_batcher_estimate_us(const struct rtci_batcher *b, uint32_t queue, uint32_t n);
/* Worker time of every frame queued now, in batches of max_batch per queue (no start delay):
 * the work ahead of a frame submitted now, which EDF serves after the frames already queued
 * when their deadlines are earlier (as for frames that arrive in capture order). */
uint64_t rtci_batcher_queued_work_us(const struct rtci_batcher *b);

/* Queue a frame. Returns 0 when queued (possibly after displacing another tenant's frame, which
 * goes to on_drop with RTCI_BATCHER_DROP_EVICTED), or a negative code when not queued: the frame
 * is then still the caller's and on_drop is NOT called for it (-RTCI_ERR_BATCH_DEADLINE,
 * -RTCI_ERR_BATCH_QUEUE_FULL, -RTCI_ERR_BATCH_TENANT_BOUND, -EINVAL); the drop is counted. */
int rtci_batcher_submit(struct rtci_batcher *b, uint32_t queue, uint32_t tenant, void *frame,
			uint64_t deadline_us, uint64_t now_us);

/* Releases at most one batch from one queue if it is due at now_us, into items[] (room for
 * max_batch). Frames that can no longer meet their deadline are dropped first. Returns the batch
 * size (0: nothing due) and, when > 0, the queue in *queue_out. Among due queues it picks the one
 * whose most urgent frame has the earliest deadline. */
int rtci_batcher_poll(struct rtci_batcher *b, uint64_t now_us, struct rtci_batcher_item *items,
		      uint32_t *queue_out);
/* Same for one queue. */
int rtci_batcher_poll_queue(struct rtci_batcher *b, uint32_t queue, uint64_t now_us,
			    struct rtci_batcher_item *items);

/* Drops (on_drop, RTCI_BATCHER_DROP_DEADLINE) every queued frame that can no longer meet its
 * deadline even alone, without releasing anything: for an owner whose workers are all busy. */
void rtci_batcher_expire(struct rtci_batcher *b, uint64_t now_us);

/* Earliest time at which poll() will release something unless more frames arrive, so the caller
 * can sleep until then; UINT64_MAX when every queue is empty. */
uint64_t rtci_batcher_next_due_us(const struct rtci_batcher *b, uint64_t now_us);

/* Removes every queued frame (shutdown, reload) without releasing it as a batch; each one goes to
 * fn. Returns the number removed. */
uint32_t rtci_batcher_drain(struct rtci_batcher *b,
			    void (*fn)(void *user, void *frame, uint32_t tenant), void *user);

int rtci_batcher_queue_stats(const struct rtci_batcher *b, uint32_t queue,
			     struct rtci_batcher_stats *out);
int rtci_batcher_tenant_stats(const struct rtci_batcher *b, uint32_t tenant,
			      struct rtci_batcher_tenant_stats *out);

#endif
