#include "dataplane/reassembly.h"
#include "common/hash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include <sodium.h>

#include "common/rtci_error.h"
#include "dataplane/auth.h"

#define NIL UINT32_MAX
#define MIN_SHIFT 10 /* arena block granule: 1 KiB */
#define MAX_ORDERS 40
#define ALIGN64(x) (((x) + 63u) & ~(size_t)63u)
#define DESC_BYTES ALIGN64(sizeof(struct rtci_reasm_frame))

/* ---------- arena: binary buddy allocator over one preallocated region ----------
 * Contiguous buffers of any size up to the arena, O(log n) alloc/free, no fragmentation
 * growth (buddies merge back), metadata outside the region so it is never touched. */
#define ST_FREE 0x80u
#define HUGE_2M ((size_t)2 << 20)

struct arena {
	uint8_t *base;
	uint32_t nblocks;          /* granules */
	uint8_t max_order;
	uint32_t head[MAX_ORDERS]; /* free list heads per order */
	uint32_t *next, *prev;     /* free list links per granule */
	uint8_t *state;            /* at a block head: ST_FREE | order, or order when allocated */
	size_t used;
};

static void fl_push(struct arena *a, uint32_t i, uint8_t o)
{
	a->state[i] = (uint8_t)(ST_FREE | o);
	a->prev[i] = NIL;
	a->next[i] = a->head[o];
	if (a->head[o] != NIL)
		a->prev[a->head[o]] = i;
	a->head[o] = i;
}

static void fl_remove(struct arena *a, uint32_t i, uint8_t o)
{
	if (a->prev[i] != NIL)
		a->next[a->prev[i]] = a->next[i];
	else
		a->head[o] = a->next[i];
	if (a->next[i] != NIL)
		a->prev[a->next[i]] = a->prev[i];
	a->state[i] = o;
}

static int arena_init(struct arena *a, size_t bytes)
{
	memset(a, 0, sizeof(*a));
	size_t n = bytes >> MIN_SHIFT;
	if (n == 0 || n > UINT32_MAX / 2)
		return -EINVAL;
	a->nblocks = (uint32_t)n;
	/* 2 MiB aligned so transparent huge pages can back it; touched now so the hot path
	 * never takes a page fault. */
	size_t align = (n << MIN_SHIFT) >= 2 * HUGE_2M ? HUGE_2M : 64;
	size_t sz = ((n << MIN_SHIFT) + align - 1) & ~(align - 1);
	a->base = aligned_alloc(align, sz);
	if (a->base) {
		if (align == HUGE_2M)
			madvise(a->base, sz, MADV_HUGEPAGE);
		memset(a->base, 0, n << MIN_SHIFT);
	}
	a->next = malloc(n * sizeof(uint32_t));
	a->prev = malloc(n * sizeof(uint32_t));
	a->state = calloc(n, 1);
	if (!a->base || !a->next || !a->prev || !a->state)
		return -ENOMEM;
	for (int o = 0; o < MAX_ORDERS; o++)
		a->head[o] = NIL;
	/* Cover the region with maximal aligned blocks. */
	uint32_t i = 0;
	while (i < n) {
		uint8_t o = 0;
		while (o + 1 < MAX_ORDERS && (i & ((1u << (o + 1)) - 1)) == 0 &&
		       (uint64_t)i + (1ull << (o + 1)) <= n)
			o++;
		if (o > a->max_order)
			a->max_order = o;
		fl_push(a, i, o);
		i += 1u << o;
	}
	return 0;
}

static void arena_fini(struct arena *a)
{
	free(a->base);
	free(a->next);
	free(a->prev);
	free(a->state);
}

static int order_for(size_t bytes)
{
	size_t g = (bytes + (1u << MIN_SHIFT) - 1) >> MIN_SHIFT;
	int o = 0;

	while ((1ull << o) < g)
		o++;
	return o;
}

/* Returns the granule index or NIL. */
static uint32_t arena_alloc(struct arena *a, int order)
{
	int o = order;

	if (order > a->max_order)
		return NIL;
	while (o <= a->max_order && a->head[o] == NIL)
		o++;
	if (o > a->max_order)
		return NIL;
	uint32_t i = a->head[o];
	fl_remove(a, i, (uint8_t)o);
	while (o > order) { /* split, keep the lower half */
		o--;
		fl_push(a, i + (1u << o), (uint8_t)o);
	}
	a->state[i] = (uint8_t)order;
	a->used += (size_t)1 << (order + MIN_SHIFT);
	return i;
}

static void arena_free(struct arena *a, uint32_t i, int order)
{
	a->used -= (size_t)1 << (order + MIN_SHIFT);
	while (order < a->max_order) {
		uint32_t b = i ^ (1u << order);

		if ((uint64_t)b + (1ull << order) > a->nblocks || a->state[b] != (ST_FREE | order))
			break;
		fl_remove(a, b, (uint8_t)order);
		i &= b;
		order++;
	}
	fl_push(a, i, (uint8_t)order);
}

/* ---------- open-addressing index: slots hold (hash, record index + 1) ----------
 * Linear probing at load <= 1/2, deletion by backward shift (no tombstones). */
struct slot {
	uint32_t hash;
	uint32_t idx1; /* 0 = empty */
};

struct index {
	struct slot *s;
	uint32_t mask;
};

static int index_init(struct index *x, uint32_t records)
{
	uint64_t cap = 16;

	while (cap < 2ull * records)
		cap <<= 1;
	if (cap > (1ull << 31))
		return -EINVAL;
	x->s = calloc(cap, sizeof(struct slot));
	x->mask = (uint32_t)cap - 1;
	return x->s ? 0 : -ENOMEM;
}

static void index_insert(struct index *x, uint32_t hash, uint32_t idx)
{
	uint32_t p = hash & x->mask;

	while (x->s[p].idx1)
		p = (p + 1) & x->mask;
	x->s[p].hash = hash;
	x->s[p].idx1 = idx + 1;
}

static void index_remove(struct index *x, uint32_t hash, uint32_t idx)
{
	uint32_t p = hash & x->mask;

	while (x->s[p].idx1 != idx + 1)
		p = (p + 1) & x->mask;
	/* Backward shift: move later members of the cluster into the hole when allowed. */
	for (uint32_t q = (p + 1) & x->mask;; q = (q + 1) & x->mask) {
		if (!x->s[q].idx1)
			break;
		uint32_t home = x->s[q].hash & x->mask;
		/* q may move to p if home is not cyclically in (p, q]. */
		bool stays = p <= q ? (home > p && home <= q) : (home > p || home <= q);
		if (!stays) {
			x->s[p] = x->s[q];
			p = q;
		}
	}
	x->s[p].idx1 = 0;
}

/* ---------- records ---------- */
struct entry { /* a frame in flight */
	uint64_t seq;
	uint32_t tenant_id, device_id;
	uint32_t hash;
	uint32_t dev, ten;           /* device and tenant records */
	uint32_t lru_prev, lru_next; /* all frames, oldest first */
	uint32_t dprev, dnext;       /* the device's frames, oldest first */
	uint64_t created;
	struct rtci_reasm_frame *f;
	uint8_t *bitmap;
	uint32_t received;
};

struct device {
	uint32_t tenant_id, device_id;
	uint32_t hash;
	uint32_t count;
	uint32_t first, last; /* entries */
	uint32_t next_free;
};

struct tenant {
	uint32_t tenant_id;
	uint32_t hash;
	uint32_t frames;
	uint64_t bytes;
	uint32_t next_free;
};

struct rtci_reasm {
	struct rtci_reasm_config cfg;
	uint64_t seed;
	struct arena arena;
	struct entry *e;
	struct device *d;
	struct tenant *tn;
	struct index ei, di, ti;
	uint32_t e_free, d_free, t_free;
	uint32_t lru_head, lru_tail;
	struct rtci_reasm_stats st;
};

/* Keyed with a random seed so remote senders cannot aim at one probe chain. */
static inline uint32_t hash_frame(const struct rtci_reasm *t, uint32_t ten, uint32_t dev,
				  uint64_t seq)
{
	return (uint32_t)rtci_mix64(rtci_mix64(t->seed ^ (((uint64_t)ten << 32) | dev)) ^ seq);
}

static inline uint32_t hash_device(const struct rtci_reasm *t, uint32_t ten, uint32_t dev)
{
	return (uint32_t)rtci_mix64(t->seed + 0x9e3779b97f4a7c15ull + (((uint64_t)ten << 32) | dev));
}

static inline uint32_t hash_tenant(const struct rtci_reasm *t, uint32_t ten)
{
	return (uint32_t)rtci_mix64(t->seed + 0x632be59bd9b4e019ull + ten);
}

static uint32_t find_entry(const struct rtci_reasm *t, uint32_t h, uint32_t ten, uint32_t dev,
			   uint64_t seq)
{
	const struct index *x = &t->ei;

	for (uint32_t p = h & x->mask; x->s[p].idx1; p = (p + 1) & x->mask) {
		if (x->s[p].hash != h)
			continue;
		const struct entry *e = &t->e[x->s[p].idx1 - 1];
		if (e->seq == seq && e->device_id == dev && e->tenant_id == ten)
			return x->s[p].idx1 - 1;
	}
	return NIL;
}

static uint32_t find_device(const struct rtci_reasm *t, uint32_t h, uint32_t ten, uint32_t dev)
{
	const struct index *x = &t->di;

	for (uint32_t p = h & x->mask; x->s[p].idx1; p = (p + 1) & x->mask) {
		if (x->s[p].hash != h)
			continue;
		const struct device *d = &t->d[x->s[p].idx1 - 1];
		if (d->device_id == dev && d->tenant_id == ten)
			return x->s[p].idx1 - 1;
	}
	return NIL;
}

static uint32_t find_tenant(const struct rtci_reasm *t, uint32_t h, uint32_t ten)
{
	const struct index *x = &t->ti;

	for (uint32_t p = h & x->mask; x->s[p].idx1; p = (p + 1) & x->mask)
		if (x->s[p].hash == h && t->tn[x->s[p].idx1 - 1].tenant_id == ten)
			return x->s[p].idx1 - 1;
	return NIL;
}

size_t rtci_reasm_frame_cost(uint32_t frame_len, uint16_t frag_count)
{
	size_t raw = DESC_BYTES + ALIGN64(((size_t)frag_count + 7) / 8) + frame_len;

	return (size_t)1 << (order_for(raw) + MIN_SHIFT);
}

const char *rtci_reasm_drop_name(enum rtci_reasm_drop r)
{
	static const char *const names[RTCI_REASM_DROP_MAX] = {
		[RTCI_REASM_DROP_DUPLICATE] = "duplicate",
		[RTCI_REASM_DROP_CONFLICT] = "conflict",
		[RTCI_REASM_DROP_MISMATCH] = "mismatch",
		[RTCI_REASM_DROP_TOO_BIG] = "too_big",
		[RTCI_REASM_DROP_TABLE_FULL] = "table_full",
		[RTCI_REASM_DROP_ARENA_FULL] = "arena_full",
		[RTCI_REASM_DROP_TENANT_FRAMES] = "tenant_frames",
		[RTCI_REASM_DROP_TENANT_BYTES] = "tenant_bytes",
		[RTCI_REASM_DROP_UNKNOWN_TENANT] = "unknown_tenant",
		[RTCI_REASM_DROP_TENANT_TABLE_FULL] = "tenant_table_full",
		[RTCI_REASM_DROP_OLDER_THAN_INFLIGHT] = "older_than_inflight",
		[RTCI_REASM_DROP_NOT_FRAGMENT] = "not_fragment",
	};

	return (unsigned)r < RTCI_REASM_DROP_MAX ? names[r] : "unknown";
}

void rtci_reasm_destroy(struct rtci_reasm *t)
{
	if (!t)
		return;
	arena_fini(&t->arena);
	free(t->e);
	free(t->d);
	free(t->tn);
	free(t->ei.s);
	free(t->di.s);
	free(t->ti.s);
	free(t);
}

int rtci_reasm_create(const struct rtci_reasm_config *cfg, struct rtci_reasm **out)
{
	int r = -EINVAL;
	struct rtci_reasm *t = NULL;

	if (!out || !cfg || cfg->max_frames == 0 || cfg->max_frames > (1u << 28) ||
	    cfg->max_inflight_per_device == 0 || cfg->max_tenants == 0 ||
	    cfg->max_tenants > (1u << 28) || cfg->max_frame_len == 0 || cfg->ttl == 0)
		goto fail;
	r = -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		goto fail;
	t->cfg = *cfg;
	if (sodium_init() < 0) {
		r = -RTCI_ERR_AUTH_INIT;
		goto fail;
	}
	randombytes_buf(&t->seed, sizeof(t->seed));
	r = arena_init(&t->arena, cfg->arena_bytes);
	if (r < 0)
		goto fail;
	t->e = calloc(cfg->max_frames, sizeof(*t->e));
	t->d = calloc(cfg->max_frames, sizeof(*t->d));
	t->tn = calloc(cfg->max_tenants, sizeof(*t->tn));
	r = -ENOMEM;
	if (!t->e || !t->d || !t->tn)
		goto fail;
	if ((r = index_init(&t->ei, cfg->max_frames)) < 0 ||
	    (r = index_init(&t->di, cfg->max_frames)) < 0 ||
	    (r = index_init(&t->ti, cfg->max_tenants)) < 0)
		goto fail;
	/* Free lists thread through the records (lru_next for entries). */
	for (uint32_t i = 0; i < cfg->max_frames; i++) {
		t->e[i].lru_next = i + 1 < cfg->max_frames ? i + 1 : NIL;
		t->d[i].next_free = i + 1 < cfg->max_frames ? i + 1 : NIL;
	}
	for (uint32_t i = 0; i < cfg->max_tenants; i++)
		t->tn[i].next_free = i + 1 < cfg->max_tenants ? i + 1 : NIL;
	t->e_free = t->d_free = t->t_free = 0;
	t->lru_head = t->lru_tail = NIL;
	*out = t;
	return 0;
fail:
	rtci_reasm_destroy(t);
	return r;
}

static void tenant_put(struct rtci_reasm *t, uint32_t ti)
{
	struct tenant *tn = &t->tn[ti];

	if (tn->frames == 0 && tn->bytes == 0) {
		index_remove(&t->ti, tn->hash, ti);
		tn->next_free = t->t_free;
		t->t_free = ti;
	}
}

static void block_free(struct rtci_reasm *t, struct rtci_reasm_frame *f)
{
	struct tenant *tn = &t->tn[f->priv_tenant];

	tn->bytes -= (size_t)1 << (f->priv_order + MIN_SHIFT);
	arena_free(&t->arena, f->priv_block, f->priv_order);
}

/* Takes an entry out of every structure; its block stays allocated. */
static void entry_unlink(struct rtci_reasm *t, uint32_t ei)
{
	struct entry *e = &t->e[ei];
	struct device *d = &t->d[e->dev];

	if (e->lru_prev != NIL)
		t->e[e->lru_prev].lru_next = e->lru_next;
	else
		t->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		t->e[e->lru_next].lru_prev = e->lru_prev;
	else
		t->lru_tail = e->lru_prev;

	if (e->dprev != NIL)
		t->e[e->dprev].dnext = e->dnext;
	else
		d->first = e->dnext;
	if (e->dnext != NIL)
		t->e[e->dnext].dprev = e->dprev;
	else
		d->last = e->dprev;
	if (--d->count == 0) {
		index_remove(&t->di, d->hash, e->dev);
		d->next_free = t->d_free;
		t->d_free = e->dev;
	}
	index_remove(&t->ei, e->hash, ei);
	t->tn[e->ten].frames--;
	t->st.frames_in_flight--;
	e->lru_next = t->e_free;
	t->e_free = ei;
}

/* Discards a frame (bad MAC) without telling the caller, who hears of it from the return code. */
static void entry_drop(struct rtci_reasm *t, uint32_t ei)
{
	struct entry *e = &t->e[ei];
	uint32_t ten = e->ten;

	t->st.fragments_discarded += e->received;
	block_free(t, e->f);
	entry_unlink(t, ei);
	tenant_put(t, ten);
}

/* Discards an unfinished frame (expired or evicted) and tells the caller whose it was. */
static void entry_discard(struct rtci_reasm *t, uint32_t ei, enum rtci_reasm_discard why)
{
	uint32_t tenant = t->e[ei].tenant_id, device = t->e[ei].device_id;
	entry_drop(t, ei);
	if (why == RTCI_REASM_EXPIRED)
		t->st.frames_expired++;
	else
		t->st.frames_evicted++;
	if (t->cfg.on_discard)
		t->cfg.on_discard(t->cfg.discard_ctx, tenant, device, why);
}

unsigned rtci_reasm_expire(struct rtci_reasm *t, uint64_t now)
{
	unsigned n = 0;

	while (t->lru_head != NIL) {
		const struct entry *e = &t->e[t->lru_head];

		if (now < e->created || now - e->created < t->cfg.ttl)
			break;
		entry_discard(t, t->lru_head, RTCI_REASM_EXPIRED);
		n++;
	}
	return n;
}

static int drop(struct rtci_reasm *t, enum rtci_reasm_drop reason, int code)
{
	t->st.drops[reason]++;
	return -code;
}

static bool same_frame(const struct rtci_reasm_frame *f, const struct rtci_proto_hdr *h)
{
	return f->hdr.frag_count == h->frag_count && f->hdr.frag_size == h->frag_size &&
	       f->hdr.frame_len == h->frame_len && f->hdr.setup_id == h->setup_id &&
	       f->hdr.capture_us == h->capture_us;
}

/* Creates the entry for a new frame, or returns a negated error (already counted). */
static int frame_start(struct rtci_reasm *t, const struct rtci_proto_hdr *h, uint32_t hash,
		       uint64_t now, uint32_t *out)
{
	uint32_t th = hash_tenant(t, h->tenant_id);
	uint32_t ti = find_tenant(t, th, h->tenant_id);
	uint32_t dh = hash_device(t, h->tenant_id, h->device_id);
	uint32_t di = find_device(t, dh, h->tenant_id, h->device_id);
	size_t cost = rtci_reasm_frame_cost(h->frame_len, h->frag_count);
	uint32_t victim = NIL;
	struct rtci_reasm_quota q = { UINT32_MAX, UINT64_MAX };

	if (t->cfg.quota && t->cfg.quota(t->cfg.quota_ctx, h->tenant_id, &q) < 0)
		return drop(t, RTCI_REASM_DROP_UNKNOWN_TENANT, RTCI_ERR_REASM_UNKNOWN_TENANT);

	/* Newest wins: at the device's bound, the frame with the lowest seq makes room. */
	if (di != NIL && t->d[di].count >= t->cfg.max_inflight_per_device) {
		for (uint32_t i = t->d[di].first; i != NIL; i = t->e[i].dnext)
			if (victim == NIL || t->e[i].seq < t->e[victim].seq)
				victim = i;
		if (t->e[victim].seq > h->seq)
			return drop(t, RTCI_REASM_DROP_OLDER_THAN_INFLIGHT,
				    RTCI_ERR_REASM_OLDER_THAN_INFLIGHT);
	}
	if (ti != NIL) {
		const struct tenant *tn = &t->tn[ti];
		uint32_t frames = tn->frames - (victim != NIL);
		uint64_t bytes = tn->bytes;

		if (victim != NIL)
			bytes -= (size_t)1 << (t->e[victim].f->priv_order + MIN_SHIFT);
		if (frames + 1ull > q.max_frames)
			return drop(t, RTCI_REASM_DROP_TENANT_FRAMES, RTCI_ERR_REASM_TENANT_ENTRIES);
		if (bytes + cost > q.max_bytes)
			return drop(t, RTCI_REASM_DROP_TENANT_BYTES, RTCI_ERR_REASM_TENANT_BYTES);
	} else {
		if (q.max_frames < 1)
			return drop(t, RTCI_REASM_DROP_TENANT_FRAMES, RTCI_ERR_REASM_TENANT_ENTRIES);
		if (cost > q.max_bytes)
			return drop(t, RTCI_REASM_DROP_TENANT_BYTES, RTCI_ERR_REASM_TENANT_BYTES);
		if (t->t_free == NIL)
			return drop(t, RTCI_REASM_DROP_TENANT_TABLE_FULL,
				    RTCI_ERR_REASM_TENANT_TABLE_FULL);
	}
	if (victim == NIL && t->e_free == NIL)
		return drop(t, RTCI_REASM_DROP_TABLE_FULL, RTCI_ERR_REASM_TABLE_FULL);

	if (victim != NIL) {
		/* the device record survives: count was >= 1 extra */
		entry_discard(t, victim, RTCI_REASM_EVICTED);
		if (ti != NIL && t->tn[ti].frames == 0 && t->tn[ti].bytes == 0)
			ti = NIL; /* tenant_put released it */
		di = find_device(t, dh, h->tenant_id, h->device_id);
	}

	int order = order_for(cost);
	uint32_t blk = arena_alloc(&t->arena, order);
	if (blk == NIL)
		return drop(t, RTCI_REASM_DROP_ARENA_FULL, RTCI_ERR_REASM_ARENA_FULL);

	if (ti == NIL) {
		ti = t->t_free;
		t->t_free = t->tn[ti].next_free;
		t->tn[ti] = (struct tenant){ .tenant_id = h->tenant_id, .hash = th };
		index_insert(&t->ti, th, ti);
	}
	if (di == NIL) {
		di = t->d_free;
		t->d_free = t->d[di].next_free;
		t->d[di] = (struct device){ .tenant_id = h->tenant_id, .device_id = h->device_id,
					    .hash = dh, .first = NIL, .last = NIL };
		index_insert(&t->di, dh, di);
	}
	uint32_t ei = t->e_free;
	struct entry *e = &t->e[ei];
	t->e_free = e->lru_next;

	uint8_t *mem = t->arena.base + ((size_t)blk << MIN_SHIFT);
	struct rtci_reasm_frame *f = (struct rtci_reasm_frame *)(void *)mem;
	size_t bm = ALIGN64(((size_t)h->frag_count + 7) / 8);

	memset(f, 0, sizeof(*f));
	f->hdr = *h;
	f->hdr.flags = 0;
	f->hdr.frag_index = 0;
	f->hdr.hdr_len = RTCI_PROTO_HDR_LEN;
	f->first_time = now;
	f->data = mem + DESC_BYTES + bm;
	f->len = h->frame_len;
	f->priv_tenant = ti;
	f->priv_block = blk;
	f->priv_order = (uint8_t)order;

	*e = (struct entry){ .seq = h->seq, .tenant_id = h->tenant_id, .device_id = h->device_id,
			     .hash = hash, .dev = di, .ten = ti, .lru_prev = t->lru_tail,
			     .lru_next = NIL, .dprev = t->d[di].last, .dnext = NIL, .created = now,
			     .f = f, .bitmap = mem + DESC_BYTES, .received = 0 };
	memset(e->bitmap, 0, bm);
	if (t->lru_tail != NIL)
		t->e[t->lru_tail].lru_next = ei;
	else
		t->lru_head = ei;
	t->lru_tail = ei;
	if (t->d[di].last != NIL)
		t->e[t->d[di].last].dnext = ei;
	else
		t->d[di].first = ei;
	t->d[di].last = ei;
	t->d[di].count++;
	t->tn[ti].frames++;
	t->tn[ti].bytes += (size_t)1 << (order + MIN_SHIFT);
	index_insert(&t->ei, hash, ei);
	t->st.frames_started++;
	t->st.frames_in_flight++;
	*out = ei;
	return 0;
}

int rtci_reasm_insert(struct rtci_reasm *t, const struct rtci_proto_msg *msg,
		      const uint8_t *device_key, uint64_t now, struct rtci_reasm_frame **out)
{
	const struct rtci_proto_hdr *h = &msg->hdr;

	t->st.fragments++;
	if (h->type != RTCI_PROTO_FRAGMENT)
		return drop(t, RTCI_REASM_DROP_NOT_FRAGMENT, RTCI_ERR_REASM_NOT_FRAGMENT);
	if (h->frame_len > t->cfg.max_frame_len)
		return drop(t, RTCI_REASM_DROP_TOO_BIG, RTCI_ERR_REASM_TOO_BIG);
	rtci_reasm_expire(t, now);

	uint32_t hash = hash_frame(t, h->tenant_id, h->device_id, h->seq);
	uint32_t ei = find_entry(t, hash, h->tenant_id, h->device_id, h->seq);
	if (ei == NIL) {
		int r = frame_start(t, h, hash, now, &ei);
		if (r < 0)
			return r;
	}
	struct entry *e = &t->e[ei];
	struct rtci_reasm_frame *f = e->f;
	if (!same_frame(f, h))
		return drop(t, RTCI_REASM_DROP_MISMATCH, RTCI_ERR_REASM_MISMATCH);

	/* decode() guaranteed: index < count, payload length right for the index, and the tag
	 * exactly on the last fragment. The bounds are checked again (cheaply) so that a view
	 * built by hand cannot write outside the frame. */
	size_t off = (size_t)h->frag_index * h->frag_size;
	if (h->frag_index >= h->frag_count || off >= f->len || msg->body_len > f->len - off ||
	    msg->body_len != (h->frag_index == h->frag_count - 1 ? f->len - off : h->frag_size))
		return drop(t, RTCI_REASM_DROP_MISMATCH, RTCI_ERR_REASM_MISMATCH);
	uint8_t bit = (uint8_t)(1u << (h->frag_index & 7));
	uint8_t *byte = &e->bitmap[h->frag_index >> 3];
	if (*byte & bit) {
		bool same = memcmp(f->data + off, msg->body, msg->body_len) == 0 &&
			    (!msg->tag || memcmp(f->tag, msg->tag, RTCI_PROTO_TAG_LEN) == 0);
		return same ? drop(t, RTCI_REASM_DROP_DUPLICATE, RTCI_ERR_REASM_DUPLICATE)
			    : drop(t, RTCI_REASM_DROP_CONFLICT, RTCI_ERR_REASM_CONFLICT);
	}
	memcpy(f->data + off, msg->body, msg->body_len);
	if (msg->tag)
		memcpy(f->tag, msg->tag, RTCI_PROTO_TAG_LEN);
	*byte |= bit;
	f->hdr.backlog_bytes = h->backlog_bytes;
	t->st.fragments_accepted++;
	if (++e->received < f->hdr.frag_count)
		return 0;

	f->complete_time = now;
	/* One Poly1305 pass over the contiguous frame: measured faster than absorbing each
	 * fragment as it arrives (docs/protocol.md, "Why Poly1305"). */
	if (device_key) {
		if (rtci_auth_verify(device_key, &f->hdr, f->data, f->len, f->tag) != 0) {
			entry_drop(t, ei);
			t->st.frames_bad_mac++;
			return -RTCI_ERR_AUTH_BAD_MAC;
		}
		f->verified = 1;
	}
	entry_unlink(t, ei);
	t->st.frames_completed++;
	t->st.frames_held++;
	*out = f;
	return 1;
}

void rtci_reasm_release(struct rtci_reasm *t, struct rtci_reasm_frame *f)
{
	if (!f)
		return;
	uint32_t ti = f->priv_tenant;

	block_free(t, f);
	tenant_put(t, ti);
	t->st.frames_released++;
	t->st.frames_held--;
}

void rtci_reasm_stats(const struct rtci_reasm *t, struct rtci_reasm_stats *out)
{
	*out = t->st;
	out->arena_bytes_used = t->arena.used;
}

void rtci_reasm_tenant_usage(const struct rtci_reasm *t, uint32_t tenant_id, uint32_t *frames,
			     uint64_t *bytes)
{
	uint32_t ti = find_tenant(t, hash_tenant(t, tenant_id), tenant_id);

	*frames = ti == NIL ? 0 : t->tn[ti].frames;
	*bytes = ti == NIL ? 0 : t->tn[ti].bytes;
}
