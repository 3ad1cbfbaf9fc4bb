/* 64-bit mixing (the splitmix64 finalizer): hash keys for tables and placement, and a small
 * deterministic random stream for seeded simulations and tests. Not for anything an attacker
 * may aim at without a secret seed mixed in first. */
#ifndef RTCI_HASH_H
#define RTCI_HASH_H

#include <stdint.h>

#define RTCI_GOLDEN64 0x9e3779b97f4a7c15ull

/* The finalizer alone: a bijection that spreads every input bit over the output. */
static inline uint64_t rtci_mix64_final(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t rtci_mix64(uint64_t x)
{
	return rtci_mix64_final(x + RTCI_GOLDEN64);
}

/* Next value of the stream whose state is *s (splitmix64). */
static inline uint64_t rtci_splitmix64(uint64_t *s)
{
	uint64_t x = *s;
	*s += RTCI_GOLDEN64;
	return rtci_mix64(x);
}

#endif
