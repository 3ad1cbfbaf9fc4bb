#include "cluster/placement.h"
#include "common/hash.h"

#include <math.h>
#include <string.h>

#include <sodium.h>

/* A fixed SipHash key: placement must agree across gateways, not be secret. */
static const unsigned char place_key[crypto_shorthash_KEYBYTES] = "rtci-placement-1";

uint64_t rtci_place_key(uint32_t tenant_id, uint32_t device_id)
{
	return (uint64_t)tenant_id << 32 | device_id;
}

uint64_t rtci_place_id_hash(const char *id)
{
	unsigned char out[crypto_shorthash_BYTES];
	crypto_shorthash(out, (const unsigned char *)id, strlen(id), place_key);
	uint64_t h;
	memcpy(&h, out, sizeof(h));
	return h;
}

/* SplitMix64's finaliser over the member and the key: a fast, well-spread 64-bit hash. Every
 * gateway must compute the same value, so this exact form is part of the cluster's contract. */
static uint64_t mix(uint64_t member, uint64_t key)
{
	return rtci_mix64_final(member ^ (key + RTCI_GOLDEN64));
}

int rtci_place(const struct rtci_member *m, size_t n, uint64_t key)
{
	int best = -1;
	double best_score = 0;
	for (size_t i = 0; i < n; i++) {
		if (!m[i].eligible || !(m[i].weight > 0))
			continue;
		/* u in (0, 1): the top 53 bits, never 0 or 1 */
		double u = ((double)(mix(m[i].id_hash, key) >> 11) + 0.5) / 9007199254740992.0;
		double score = -m[i].weight / log(u);
		if (best < 0 || score > best_score ||
		    (score == best_score && m[i].id_hash < m[best].id_hash)) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}
