#include "common/rtci_error.h"

#include <stdlib.h>
#include <string.h>

/* One row per project code; modules add theirs in their own section. */
static const struct {
	int code;
	const char *text;
} error_names[] = {
	/* common */
	{ RTCI_ERR_INTERNAL, "internal error" },

	/* codec */

	/* wire protocol */

	/* reassembly */

	/* model file */

	/* inference engine */

	/* control */
	{ RTCI_ERR_CTL_TRACE_SYNTAX, "malformed bandwidth trace" },
	{ RTCI_ERR_CTL_TRACE_EMPTY, "bandwidth trace carries no data" },
	{ RTCI_ERR_CTL_TABLE, "invalid setup table" },
	{ RTCI_ERR_CTL_TOO_LARGE, "input larger than the allowed limit" },

	/* gateway */

	/* edge */
};

const char *rtci_strerror(int err)
{
	int code = abs(err);

	if (code >= RTCI_ERR_FIRST && code <= RTCI_ERR_LAST) {
		for (size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++)
			if (error_names[i].code == code)
				return error_names[i].text;
		return "unknown project error";
	}
	if (code == 0)
		return "success";
	return strerror(code);
}
