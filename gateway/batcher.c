#include "gateway/batcher.h"

#include "common/rtci_error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct rtci_batcher_item item;
	uint64_t seq;   /* arrival order, breaks deadline ties FIFO */
	uint32_t pos;   /* index in the heap */
};

struct queue {
	struct slot *slots;     /* capacity entries */
	uint32_t *heap;         /* slot indices, min-heap on (deadline, seq) */
	uint32_t *free_list;    /* free slot indices */
	uint32_t nfree;
	uint32_t count;
	uint32_t *tenant_count; /* frames per tenant in this queue */
	uint64_t oldest_enqueue;
	int oldest_valid;
	uint64_t cost_base_us, cost_item_us;
	struct rtci_batcher_stats st;
};

struct tenant {
	uint32_t weight;
	uint32_t max_queued;
	struct rtci_batcher_tenant_stats st;
};

struct rtci_batcher {
	struct rtci_batcher_config cfg;
	struct queue *q;
	struct tenant *t;
	uint64_t seq;
	uint64_t start_delay_us;
};

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

static int before(const struct queue *q, uint32_t a, uint32_t b)
{
	const struct slot *sa = &q->slots[a], *sb = &q->slots[b];

	if (sa->item.deadline_us != sb->item.deadline_us)
		return sa->item.deadline_us < sb->item.deadline_us;
	return sa->seq < sb->seq;
}

static void heap_set(struct queue *q, uint32_t pos, uint32_t s)
{
	q->heap[pos] = s;
	q->slots[s].pos = pos;
}

static void sift_up(struct queue *q, uint32_t pos)
{
	uint32_t s = q->heap[pos];

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (!before(q, s, q->heap[parent]))
			break;
		heap_set(q, pos, q->heap[parent]);
		pos = parent;
	}
	heap_set(q, pos, s);
}

static void sift_down(struct queue *q, uint32_t pos)
{
	uint32_t s = q->heap[pos];

	for (;;) {
		uint32_t l = 2 * pos + 1, r = l + 1, m = pos;
		uint32_t best = s;
		if (l < q->count && before(q, q->heap[l], best)) {
			m = l;
			best = q->heap[l];
		}
		if (r < q->count && before(q, q->heap[r], best)) {
			m = r;
			best = q->heap[r];
		}
		if (m == pos)
			break;
		heap_set(q, pos, best);
		pos = m;
	}
	heap_set(q, pos, s);
}

/* Removes the slot at heap position pos and returns its item; the slot goes back to the free list. */
static struct rtci_batcher_item heap_remove(struct rtci_batcher *b, struct queue *q, uint32_t pos)
{
	uint32_t s = q->heap[pos];
	struct rtci_batcher_item it = q->slots[s].item;

	q->count--;
	if (pos != q->count) {
		heap_set(q, pos, q->heap[q->count]);
		sift_down(q, pos);
		sift_up(q, pos); /* no-op when sift_down moved it */
	}
	q->free_list[q->nfree++] = s;
	q->tenant_count[it.tenant]--;
	b->t[it.tenant].st.depth--;
	q->st.depth = q->count;
	if (it.enqueue_us <= q->oldest_enqueue)
		q->oldest_valid = 0;
	return it;
}

static uint64_t oldest(struct queue *q)
{
	if (!q->oldest_valid) {
		uint64_t o = UINT64_MAX;
		for (uint32_t i = 0; i < q->count; i++)
			if (q->slots[q->heap[i]].item.enqueue_us < o)
				o = q->slots[q->heap[i]].item.enqueue_us;
		q->oldest_enqueue = o;
		q->oldest_valid = 1;
	}
	return q->oldest_enqueue;
}

static void drop(struct rtci_batcher *b, struct queue *q, const struct rtci_batcher_item *it,
		 enum rtci_batcher_drop reason, int notify)
{
	q->st.drops[reason]++;
	b->t[it->tenant].st.drops[reason]++;
	if (notify && b->cfg.on_drop)
		b->cfg.on_drop(b->cfg.user, it->frame, it->tenant, reason);
}

int rtci_batcher_create(const struct rtci_batcher_config *cfg, struct rtci_batcher **out)
{
	if (!cfg || !out || cfg->queues == 0 || cfg->tenants == 0 || cfg->max_batch == 0 ||
	    cfg->max_batch > RTCI_BATCHER_MAX_BATCH || cfg->capacity == 0)
		return -EINVAL;

	struct rtci_batcher *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cfg = *cfg;
	b->q = calloc(cfg->queues, sizeof(*b->q));
	b->t = calloc(cfg->tenants, sizeof(*b->t));
	if (!b->q || !b->t)
		goto nomem;
	for (uint32_t i = 0; i < cfg->tenants; i++)
		b->t[i].weight = 1;
	for (uint32_t i = 0; i < cfg->queues; i++) {
		struct queue *q = &b->q[i];
		q->slots = calloc(cfg->capacity, sizeof(*q->slots));
		q->heap = calloc(cfg->capacity, sizeof(*q->heap));
		q->free_list = calloc(cfg->capacity, sizeof(*q->free_list));
		q->tenant_count = calloc(cfg->tenants, sizeof(*q->tenant_count));
		if (!q->slots || !q->heap || !q->free_list || !q->tenant_count)
			goto nomem;
		for (uint32_t s = 0; s < cfg->capacity; s++)
			q->free_list[s] = cfg->capacity - 1 - s;
		q->nfree = cfg->capacity;
		q->oldest_valid = 1;
		q->oldest_enqueue = UINT64_MAX;
	}
	*out = b;
	return 0;
nomem:
	rtci_batcher_destroy(b);
	return -ENOMEM;
}

void rtci_batcher_destroy(struct rtci_batcher *b)
{
	if (!b)
		return;
	if (b->q) {
		for (uint32_t i = 0; i < b->cfg.queues; i++) {
			free(b->q[i].slots);
			free(b->q[i].heap);
			free(b->q[i].free_list);
			free(b->q[i].tenant_count);
		}
	}
	free(b->q);
	free(b->t);
	free(b);
}

int rtci_batcher_set_tenant(struct rtci_batcher *b, uint32_t tenant, uint32_t weight,
			    uint32_t max_queued)
{
	if (!b || tenant >= b->cfg.tenants || weight == 0)
		return -EINVAL;
	b->t[tenant].weight = weight;
	b->t[tenant].max_queued = max_queued;
	return 0;
}

int rtci_batcher_set_cost(struct rtci_batcher *b, uint32_t queue, uint64_t base_us,
			  uint64_t per_item_us)
{
	if (!b || queue >= b->cfg.queues)
		return -EINVAL;
	b->q[queue].cost_base_us = base_us;
	b->q[queue].cost_item_us = per_item_us;
	return 0;
}

void rtci_batcher_set_start_delay(struct rtci_batcher *b, uint64_t us)
{
	if (b)
		b->start_delay_us = us;
}

/* Run time of a batch of n on the queue's cost, without the wait for a worker. */
static uint64_t run_us(const struct queue *q, uint64_t n)
{
	uint64_t items = q->cost_item_us && n > UINT64_MAX / q->cost_item_us ? UINT64_MAX
									     : q->cost_item_us * n;
	return sat_add(q->cost_base_us, items);
}

uint64_t rtci_batcher_estimate_us(const struct rtci_batcher *b, uint32_t queue, uint32_t n)
{
	if (!b || queue >= b->cfg.queues)
		return 0;
	return sat_add(b->start_delay_us, run_us(&b->q[queue], n));
}

uint64_t rtci_batcher_queued_work_us(const struct rtci_batcher *b)
{
	uint64_t w = 0;
	if (!b)
		return 0;
	for (uint32_t i = 0; i < b->cfg.queues; i++) {
		const struct queue *q = &b->q[i];
		uint64_t full = q->count / b->cfg.max_batch, rest = q->count % b->cfg.max_batch;
		uint64_t one = run_us(q, b->cfg.max_batch);
		w = sat_add(w, full && one > UINT64_MAX / full ? UINT64_MAX : full * one);
		if (rest)
			w = sat_add(w, run_us(q, rest));
	}
	return w;
}

/* Tenant in q (other than skip) most above its weighted share, or UINT32_MAX. */
static uint32_t most_over_share(const struct rtci_batcher *b, const struct queue *q, uint32_t skip)
{
	uint32_t best = UINT32_MAX;

	for (uint32_t t = 0; t < b->cfg.tenants; t++) {
		if (t == skip || q->tenant_count[t] == 0)
			continue;
		/* compare count/weight without division */
		if (best == UINT32_MAX || (uint64_t)q->tenant_count[t] * b->t[best].weight >
						  (uint64_t)q->tenant_count[best] * b->t[t].weight)
			best = t;
	}
	return best;
}

int rtci_batcher_submit(struct rtci_batcher *b, uint32_t queue, uint32_t tenant, void *frame,
			uint64_t deadline_us, uint64_t now_us)
{
	if (!b || queue >= b->cfg.queues || tenant >= b->cfg.tenants)
		return -EINVAL;
	struct queue *q = &b->q[queue];
	struct tenant *t = &b->t[tenant];
	struct rtci_batcher_item it = { frame, deadline_us, now_us, tenant };

	if (sat_add(now_us, rtci_batcher_estimate_us(b, queue, 1)) > deadline_us) {
		drop(b, q, &it, RTCI_BATCHER_DROP_DEADLINE, 0);
		return -RTCI_ERR_BATCH_DEADLINE;
	}
	if (t->max_queued && q->tenant_count[tenant] >= t->max_queued) {
		drop(b, q, &it, RTCI_BATCHER_DROP_TENANT_BOUND, 0);
		return -RTCI_ERR_BATCH_TENANT_BOUND;
	}
	if (q->count == b->cfg.capacity) {
		/* Weighted share over the tenants present, the newcomer included. */
		uint64_t wsum = 0;
		for (uint32_t i = 0; i < b->cfg.tenants; i++)
			if (q->tenant_count[i] || i == tenant)
				wsum += b->t[i].weight;
		uint32_t victim = UINT32_MAX;
		if ((uint64_t)q->tenant_count[tenant] * wsum < (uint64_t)b->cfg.capacity * t->weight)
			victim = most_over_share(b, q, tenant);
		if (victim != UINT32_MAX &&
		    (uint64_t)q->tenant_count[victim] * wsum <=
			    (uint64_t)b->cfg.capacity * b->t[victim].weight)
			victim = UINT32_MAX; /* nobody above share: keep what is queued */
		/* The newcomer is below its share only if someone is above theirs; still guard. */
		if (victim != UINT32_MAX &&
		    (uint64_t)(q->tenant_count[tenant] + 1) * b->t[victim].weight >
			    (uint64_t)q->tenant_count[victim] * t->weight)
			victim = UINT32_MAX; /* evicting would make the newcomer the one above */
		if (victim == UINT32_MAX) {
			drop(b, q, &it, RTCI_BATCHER_DROP_QUEUE_FULL, 0);
			return -RTCI_ERR_BATCH_QUEUE_FULL;
		}
		/* The victim loses the frame it needs least urgently. */
		uint32_t vpos = UINT32_MAX;
		for (uint32_t i = 0; i < q->count; i++) {
			const struct slot *s = &q->slots[q->heap[i]];
			if (s->item.tenant != victim)
				continue;
			if (vpos == UINT32_MAX || !before(q, q->heap[i], q->heap[vpos]))
				vpos = i;
		}
		struct rtci_batcher_item ev = heap_remove(b, q, vpos);
		drop(b, q, &ev, RTCI_BATCHER_DROP_EVICTED, 1);
	}

	uint32_t s = q->free_list[--q->nfree];
	q->slots[s].item = it;
	q->slots[s].seq = b->seq++;
	q->heap[q->count] = s;
	q->slots[s].pos = q->count;
	q->count++;
	sift_up(q, q->count - 1);
	q->tenant_count[tenant]++;
	if (q->oldest_valid && now_us < q->oldest_enqueue)
		q->oldest_enqueue = now_us;
	q->st.submitted++;
	q->st.depth = q->count;
	t->st.submitted++;
	t->st.depth++;
	return 0;
}

static void drop_hopeless(struct rtci_batcher *b, uint32_t queue, uint64_t now_us)
{
	struct queue *q = &b->q[queue];
	uint64_t one = rtci_batcher_estimate_us(b, queue, 1);

	/* EDF: if the head can make it alone, so can every later deadline. */
	while (q->count && sat_add(now_us, one) > q->slots[q->heap[0]].item.deadline_us) {
		struct rtci_batcher_item it = heap_remove(b, q, 0);
		drop(b, q, &it, RTCI_BATCHER_DROP_DEADLINE, 1);
	}
}

void rtci_batcher_expire(struct rtci_batcher *b, uint64_t now_us)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->cfg.queues; i++)
		drop_hopeless(b, i, now_us);
}

/* Time at which queue q is due (<= now means now), given its current content. */
static uint64_t due_at(const struct rtci_batcher *b, uint32_t queue, uint64_t now_us)
{
	struct queue *q = &b->q[queue];

	if (q->count == 0)
		return UINT64_MAX;
	if (q->count >= b->cfg.max_batch)
		return now_us;
	uint32_t n = q->count;
	uint64_t wait = sat_add(oldest(q), b->cfg.max_wait_us);
	uint64_t urgent = sat_sub(q->slots[q->heap[0]].item.deadline_us,
				  rtci_batcher_estimate_us(b, queue, n));
	return wait < urgent ? wait : urgent;
}

int rtci_batcher_poll_queue(struct rtci_batcher *b, uint32_t queue, uint64_t now_us,
			    struct rtci_batcher_item *items)
{
	if (!b || queue >= b->cfg.queues || !items)
		return -EINVAL;
	struct queue *q = &b->q[queue];

	drop_hopeless(b, queue, now_us);
	if (due_at(b, queue, now_us) > now_us)
		return 0;

	uint32_t n = q->count < b->cfg.max_batch ? q->count : b->cfg.max_batch;
	uint64_t head_deadline = q->slots[q->heap[0]].item.deadline_us;
	/* A smaller batch finishes sooner: shrink until the most urgent frame makes it. */
	while (n > 1 && sat_add(now_us, rtci_batcher_estimate_us(b, queue, n)) > head_deadline)
		n--;
	for (uint32_t i = 0; i < n; i++) {
		items[i] = heap_remove(b, q, 0);
		uint64_t waited = sat_sub(now_us, items[i].enqueue_us);
		q->st.queue_time_us_sum += waited;
		if (waited > q->st.queue_time_us_max)
			q->st.queue_time_us_max = waited;
		b->t[items[i].tenant].st.batched++;
	}
	q->st.batched += n;
	q->st.batches++;
	q->st.batch_size_count[n]++;
	return (int)n;
}

int rtci_batcher_poll(struct rtci_batcher *b, uint64_t now_us, struct rtci_batcher_item *items,
		      uint32_t *queue_out)
{
	if (!b || !items)
		return -EINVAL;
	uint32_t pick = UINT32_MAX;
	uint64_t pick_deadline = UINT64_MAX;

	for (uint32_t i = 0; i < b->cfg.queues; i++) {
		drop_hopeless(b, i, now_us);
		if (due_at(b, i, now_us) > now_us)
			continue;
		uint64_t d = b->q[i].slots[b->q[i].heap[0]].item.deadline_us;
		if (pick == UINT32_MAX || d < pick_deadline) {
			pick = i;
			pick_deadline = d;
		}
	}
	if (pick == UINT32_MAX)
		return 0;
	if (queue_out)
		*queue_out = pick;
	return rtci_batcher_poll_queue(b, pick, now_us, items);
}

uint64_t rtci_batcher_next_due_us(const struct rtci_batcher *b, uint64_t now_us)
{
	uint64_t next = UINT64_MAX;

	if (!b)
		return next;
	for (uint32_t i = 0; i < b->cfg.queues; i++) {
		uint64_t d = due_at(b, i, now_us);
		if (d < next)
			next = d;
	}
	return next;
}

uint32_t rtci_batcher_drain(struct rtci_batcher *b,
			    void (*fn)(void *user, void *frame, uint32_t tenant), void *user)
{
	uint32_t n = 0;

	if (!b)
		return 0;
	for (uint32_t i = 0; i < b->cfg.queues; i++) {
		struct queue *q = &b->q[i];
		while (q->count) {
			struct rtci_batcher_item it = heap_remove(b, q, q->count - 1);
			if (fn)
				fn(user, it.frame, it.tenant);
			n++;
		}
	}
	return n;
}

int rtci_batcher_queue_stats(const struct rtci_batcher *b, uint32_t queue,
			     struct rtci_batcher_stats *out)
{
	if (!b || queue >= b->cfg.queues || !out)
		return -EINVAL;
	*out = b->q[queue].st;
	return 0;
}

int rtci_batcher_tenant_stats(const struct rtci_batcher *b, uint32_t tenant,
			      struct rtci_batcher_tenant_stats *out)
{
	if (!b || tenant >= b->cfg.tenants || !out)
		return -EINVAL;
	*out = b->t[tenant].st;
	return 0;
}
