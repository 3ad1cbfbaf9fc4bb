/* Writes valid inputs for fuzz_control_parse into <dir>/fuzz_control_parse/: small traces in
 * both formats, a setup table and a fleet devices file. The first byte selects the parser (see
 * the target). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int write_seed(const char *dir, const char *name, char selector, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/fuzz_control_parse/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fputc(selector, f);
	fputs(text, f);
	return fclose(f);
}

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	mkdir(argv[1], 0755);
	snprintf(path, sizeof(path), "%s/fuzz_control_parse", argv[1]);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		return 1;
	}
	int bad = 0;
	bad |= write_seed(argv[1], "mahimahi", 0, "831\n880\n880\n950\n1031\n1031\n1031\n1200\n");
	bad |= write_seed(argv[1], "norway", 4, "0.0\t4.03\n0.55\t4.79\n0.88\t0.05\n1.35\t4.33\n");
	bad |= write_seed(argv[1], "table", 1,
		"{\"format\":\"rtci-setups\",\"version\":1,\"name\":\"seed\","
		"\"setups\":[{\"id\":0,\"c\":1,\"L\":255,\"accuracy\":0.8,\"payload_bytes\":204},"
		"{\"id\":1,\"c\":32,\"L\":1,\"accuracy\":0.9,\"payload_bytes\":1040}],"
		"\"spinn\":{\"coverage\":0.5,\"exit_accuracy\":0.9,\"rest_factor\":1.0,\"exit_ms\":1},"
		"\"clio\":{\"L\":15}}");
	bad |= write_seed(argv[1], "fleet", (char)0x80,
		"tenant,device,trace,trace_offset_s,fps\n1,1000,traces/a.up,12.5,10\n"
		",1001,/x/norway_bus_14,0,\r\n");
	if (bad) {
		fprintf(stderr, "seed_control: cannot write seeds under %s\n", argv[1]);
		return 1;
	}
	printf("seed_control: 4 seeds in %s\n", path);
	return 0;
}
