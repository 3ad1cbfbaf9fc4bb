/* Helpers shared by the golden-data checks: run the PyTorch reference's golden script on a model
 * and read its files (training/golden.py documents the format). */
#ifndef RTCI_TESTS_GOLDEN_UTIL_H
#define RTCI_TESTS_GOLDEN_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Relative L2 error ||a - b|| / ||b|| (absolute when b is zero). */
static inline double rel_l2(const float *a, const float *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - (double)b[i];
		num += d * d;
		den += (double)b[i] * (double)b[i];
	}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Reads a whole raw float32 file; *n gets the element count. NULL on failure. */
static inline float *read_f32(const char *dir, const char *name, size_t *n)
{
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	float *p = malloc(len > 0 ? (size_t)len : 1);
	if (p && len > 0 && fread(p, 1, (size_t)len, f) != (size_t)len) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (n)
		*n = (size_t)len / 4;
	return p;
}

/* The source tree (RTCI_SOURCE_ROOT, set by meson) and the Python that has torch (RTCI_PYTHON). */
static inline const char *golden_root(void)
{
	const char *r = getenv("RTCI_SOURCE_ROOT");
	return r ? r : ".";
}

static inline const char *golden_python(void)
{
	const char *p = getenv("RTCI_PYTHON");
	return p ? p : "/usr/bin/python3";
}

/* Runs argv (argv[0] the program) with the source root on PYTHONPATH and stdout (and stderr when
 * quiet_stderr) on /dev/null. Returns the exit status, or -1 when it could not start. */
static inline int run_with_source_root(char *const argv[], int quiet_stderr)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setenv("PYTHONPATH", golden_root(), 1);
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			if (quiet_stderr)
				dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `python3 -m training.golden MODEL DIR --batches B --setups IDS --precision P`. Returns the
 * exit status, or -1 when it could not start. */
static inline int run_golden(const char *model, const char *dir, const char *batches, const char *setups,
			     const char *precision)
{
	const char *argv[] = { golden_python(), "-m", "training.golden", model, dir, "--batches", batches,
			       "--setups", setups, "--threads", "2", "--precision", precision, NULL };
	return run_with_source_root((char *const *)argv, 0);
}

/* Runs `python3 -m training calibrate MODEL --data synthetic --images 4` (int8 scales from random
 * inputs). Returns the exit status, or -1 when it could not start; 77 when PyTorch is missing. */
static inline int run_calibrate(const char *model)
{
	const char *argv[] = { "/bin/sh", "-c", "\"$0\" -c 'import torch' || exit 77; "
			       "exec \"$0\" -m training calibrate \"$1\" --data synthetic --images 4",
			       golden_python(), model, NULL };
	return run_with_source_root((char *const *)argv, 1);
}

#endif
