/* Admission in the daemon (admit.c), applying the rules of admission.h: capacity, admitted load,
 * hellos, idle release and giving way by share. */
#ifndef RTCI_GATEWAY_ADMIT_H
#define RTCI_GATEWAY_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/gw.h"

/* admit.c (loads in milli-frames/s of the first model) */
int gw_admit_register_series(struct gw *gw);
/* Capacity less headroom: admission.capacity_fps, or workers / per-frame cost of model 0. */
uint64_t gw_admit_capacity(const struct gw *gw);
/* Load of one device of the tenant running the model. */
uint64_t gw_admit_device_load(const struct gw *gw, const struct gw_tenant *tn, uint16_t model);
/* Admits the device unless the gateway is full and its tenant at or above its share (devices of
 * tenants above their share give way to a tenant within its share). True when admitted (now or
 * before, or admission is off). */
bool gw_admit(struct gw_rx *rx, struct gw_tenant *tn, struct gw_device *d, uint64_t now);
void gw_admit_release(struct gw *gw, struct gw_tenant *tn, struct gw_device *d);
/* Releases the admission of this RX lcore's devices silent for admission.idle_timeout_ms. */
void gw_admit_expire(struct gw_rx *rx, uint64_t now);
/* Main lcore: capacity and loads into their gauges. */
void gw_admit_publish(struct gw *gw);
/* Main lcore: when the capacity fell more than 5% below the admitted load (the tail got slower),
 * the newest devices of the tenants furthest above their share give way until it fits. */
void gw_admit_shed(struct gw *gw);

#endif
