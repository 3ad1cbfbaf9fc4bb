#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

void rtci_log(const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(stdout); /* lines from several threads stay whole */
	fputs(who, stdout);
	fputs(": ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	funlockfile(stdout);
	va_end(ap);
}
