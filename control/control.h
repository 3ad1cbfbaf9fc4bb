/* Rate control, all of it: traces (control/trace.h), setup tables (control/table.h), the
 * per-device controller (control/policy.h) and the simulator (control/sim.h). rtci-sim and the
 * tests use this; the gateway and the devices include control/policy.h only.
 * docs/control.md defines the problem and the model. */
#ifndef RTCI_CONTROL_H
#define RTCI_CONTROL_H

#include "control/policy.h"
#include "control/sim.h"
#include "control/table.h"
#include "control/trace.h"

#endif
