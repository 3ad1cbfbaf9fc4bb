/* Sizes of the gateway fixed at build time, shared by its parts. */
#ifndef RTCI_GATEWAY_LIMITS_H
#define RTCI_GATEWAY_LIMITS_H

#include "dataplane/protocol.h"

#define GW_MAX_RX 16
#define GW_MAX_WORKERS 16
#define GW_TENANT_SLOTS 256       /* tenant ids seen over the process lifetime (metrics, batcher) */
#define GW_TOPK 5
#define GW_CLUSTER_MAX_MEMBERS 64
#define GW_SLOT_MEMORY (256u << 20) /* decoded-tensor pool budget per RX lcore */
#define GW_RESULT_MAX (RTCI_PROTO_HDR_LEN + RTCI_PROTO_RESULT_LEN + \
		       RTCI_PROTO_MAX_TOPK * RTCI_PROTO_TOPK_ENTRY_LEN + RTCI_PROTO_TAG_LEN)

#endif
