#include "gateway/drops.h"

const char *gw_drop_name(enum gw_drop d)
{
	static const char *const n[GW_DROP_COUNT] = {
		"malformed", "direction", "unknown_tenant", "unknown_device", "bad_mac",
		"replayed", "stale", "quota_devices", "quota_frames", "quota_bytes",
		"reassembly", "decode", "model", "overload", "late", "not_admitted",
		"expired", "evicted", "clock",
	};
	return (unsigned)d < GW_DROP_COUNT ? n[d] : "unknown";
}

const char *gw_refuse_name(enum gw_refuse r)
{
	static const char *const n[GW_REFUSE_COUNT] = { "busy", "quota", "model" };
	return (unsigned)r < GW_REFUSE_COUNT ? n[r] : "unknown";
}
