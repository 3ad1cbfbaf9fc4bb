/* Placement of devices on gateways: weighted rendezvous (highest random weight) hashing.
 *
 * Every member scores each key: score = -weight / ln(u), u = hash(member id, key) mapped into
 * (0, 1); the key's home is the eligible member with the highest score. Every gateway computes
 * the same home from the same membership, with no coordination. With equal weights each member
 * is home to 1/N of the keys; a member joining takes about weight / total of the keys, from all
 * others alike; one leaving spreads only its own keys. Members not eligible (draining, full)
 * are skipped, which moves only their keys. Pure: no allocation, no I/O. */
#ifndef RTCI_CLUSTER_PLACEMENT_H
#define RTCI_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTCI_MEMBER_ID_MAX 64

struct rtci_member {
	char id[RTCI_MEMBER_ID_MAX];  /* unique, stable across restarts */
	uint32_t ipv4;                /* where devices send, host order */
	uint16_t port;
	double weight;                /* > 0: the capacity, in any unit common to all members */
	bool eligible;                /* active and not full */
	uint64_t id_hash;             /* rtci_place_id_hash(id), filled by the caller once */
};

/* The key of a device: (tenant, device). */
uint64_t rtci_place_key(uint32_t tenant_id, uint32_t device_id);
/* Hash of a member id (SipHash under a fixed key: the same on every gateway). */
uint64_t rtci_place_id_hash(const char *id);
/* Index of the key's home among the eligible members, or -1 when none is eligible. Ties (equal
 * scores) go to the member with the smaller id hash, so the result never depends on order. */
int rtci_place(const struct rtci_member *m, size_t n, uint64_t key);

#endif
