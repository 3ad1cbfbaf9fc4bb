/* Checks of the gateway file before anything starts (check.c). */
#ifndef RTCI_GATEWAY_CHECK_H
#define RTCI_GATEWAY_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include "gateway/config.h"

/* One RX lcore per port.rx_queues, 1..GW_MAX_RX of them and 1..GW_MAX_WORKERS workers. */
int gw_check_lcores(const struct rtci_gateway_config *cfg, char *err, size_t errlen);
/* rtci-gateway --check-config: loads and checks the gateway file, its models and its tenants
 * file as start-up does, without the EAL or the port; prints a summary on out and the errors on
 * errf. Returns the exit status (0 ok, 1 invalid). */
int gw_check_config(const char *path, FILE *out, FILE *errf);

#endif
