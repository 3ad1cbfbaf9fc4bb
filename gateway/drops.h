/* Why the gateway dropped a message or refused a hello: the reasons counted in the metrics and
 * their label values. */
#ifndef RTCI_GATEWAY_DROPS_H
#define RTCI_GATEWAY_DROPS_H



/* Drop reasons of the ingest path, counted per tenant (rtci_ingest_drops_total). */
enum gw_drop {
	GW_DROP_MALFORMED = 0,  /* rtci_proto_decode failed */
	GW_DROP_DIRECTION,      /* a gateway-to-device message type */
	GW_DROP_UNKNOWN_TENANT,
	GW_DROP_UNKNOWN_DEVICE,
	GW_DROP_BAD_MAC,
	GW_DROP_REPLAYED,
	GW_DROP_STALE,
	GW_DROP_QUOTA_DEVICES,
	GW_DROP_QUOTA_FRAMES,   /* tenant frames/s token bucket */
	GW_DROP_QUOTA_BYTES,    /* tenant reassembly bytes / frames */
	GW_DROP_REASSEMBLY,     /* other reassembly rejections (duplicate, conflict, table full...) */
	GW_DROP_DECODE,         /* payload did not decode for the frame's setup */
	GW_DROP_NO_HELLO_MODEL, /* hello for a model the gateway does not serve */
	GW_DROP_OVERLOAD,       /* no free frame slot / work ring full */
	GW_DROP_LATE,           /* cannot finish by its deadline given the work ahead (before decode) */
	GW_DROP_NOT_ADMITTED,   /* frame of a device without admission while the gateway is full */
	GW_DROP_EXPIRED,        /* unfinished frame: its fragments did not all arrive within the TTL */
	GW_DROP_EVICTED,        /* unfinished frame: a newer frame of the device took its place */
	GW_DROP_CLOCK,          /* capture time far ahead of the device's learned clock */
	GW_DROP_COUNT
};
const char *gw_drop_name(enum gw_drop d);

/* Why a hello was refused (rtci_hellos_refused_total). */
enum gw_refuse {
	GW_REFUSE_BUSY = 0,     /* admission: gateway at capacity, tenant at or above its share */
	GW_REFUSE_QUOTA,        /* tenant's device quota */
	GW_REFUSE_MODEL,        /* model the gateway does not serve */
	GW_REFUSE_COUNT
};
const char *gw_refuse_name(enum gw_refuse r);

#endif
