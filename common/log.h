/* One line of a daemon's log on stdout: "who: message". Daemons set stdout line-buffered, so a
 * line reaches journald or a pipe whole and at once. */
#ifndef RTCI_LOG_H
#define RTCI_LOG_H

void rtci_log(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
