/* The controller's setup table of a model: the model file is read once, by inference/model.c,
 * and its `__metadata__.rtci` document is parsed as a table (control/table.h). This is the only
 * part of control/ that depends on inference/. */
#ifndef RTCI_CONTROL_MODEL_TABLE_H
#define RTCI_CONTROL_MODEL_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "control/table.h"
#include "inference/model.h"

/* The table of a loaded model. A model without measured figures (a synthesized one) is
 * refused unless `estimate`: then each setup's payload is bounded by its raw size plus the
 * codec header, and its accuracy is a proxy that grows with the information kept (channels x
 * bits), so a controller still trades size for fidelity in the right direction. */
int rtci_ctl_table_from_model(const struct rtci_model *m, bool estimate,
			      struct rtci_ctl_table *out, char *err, size_t err_len);

/* A table file (JSON) or a model file, by its first bytes. */
int rtci_ctl_table_load_any(const char *path, struct rtci_ctl_table *out, char *err,
			    size_t err_len);

#endif
