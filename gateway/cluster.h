/* The gateway as a member of a cluster on etcd (cluster.c): membership, placement of devices,
 * tenants from etcd, drain. */
#ifndef RTCI_GATEWAY_CLUSTER_H
#define RTCI_GATEWAY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/placement.h"

struct gw;

/* cluster.c (all no-ops without cluster.etcd) */
struct gw_cluster;
int gw_cluster_start(struct gw *gw, char *err, size_t errlen);
void gw_cluster_stop(struct gw *gw);
bool gw_cluster_etcd_up(const struct gw *gw);
/* Bumped when members join, leave or change state (not on load updates). */
uint64_t gw_cluster_generation(const struct gw *gw);
/* Copy of the membership (at most GW_CLUSTER_MAX_MEMBERS); 0 without a cluster. */
uint32_t gw_cluster_members(const struct gw *gw, struct rtci_member *out);
/* The device's home: 1 this gateway (or no membership known), 0 another (its address in
 * *ipv4, *port), -1 no eligible member. skip_self: as if this gateway were not eligible. */
int gw_cluster_home(const struct gw *gw, uint32_t tenant, uint32_t device, bool skip_self,
		    uint32_t *ipv4, uint16_t *port);
/* Tenants YAML that arrived from etcd since the last call (caller frees), or NULL. */
char *gw_cluster_take_tenants(struct gw *gw);
/* Writes this gateway's record soon (its state changed). */
void gw_cluster_refresh(struct gw *gw);

#endif
