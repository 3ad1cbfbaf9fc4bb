/* Checks an rtci-edge run after the fact (integration tests against rtci-gateway):
 *
 *   edge-check-results MODEL EDGE_CSV EDGE_LOG MIN_RESULTS [IMAGES LABELS]
 *
 * 1. Every answered frame's class is the class of the same image run in this process through
 *    head -> codec -> tail (frames whose two best logits are closer than 1e-3 are counted as
 *    ties and not compared: a batched tail may round differently).
 * 2. Every command in EDGE_LOG ("command K: setup X from frame Y (next frame N) plan P: S0,S1,..")
 *    took effect as logged: each frame begun after the command arrived (seq >= N) and before the
 *    next one arrived uses the plan's step for it (frame P + i: step i, the last held); frames
 *    before the plan's first frame hold their setup and are not judged.
 * 3. At least MIN_RESULTS frames were answered.
 * Prints what it checked; exits 0 when everything holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/frames.h"
#include "inference/codec.h"
#include "inference/engine.h"
#include "inference/model.h"

#define MAX_ROWS 100000
#define MAX_CMDS 4096

struct row { unsigned long long seq; int image, setup, cls, result; };
#define PLAN_MAX 8
/* A command as rtci-edge logs it: in force from `from` (or the next frame), a plan's steps from
 * plan_from on (step i for frame plan_from + i, the last held). */
struct cmd { unsigned long long from, next, plan_from; int setup, steps[PLAN_MAX], nsteps; };

static int cmd_setup(const struct cmd *c, unsigned long long seq)
{
	if (c->nsteps == 0 || seq < c->plan_from)
		return c->setup;
	unsigned long long i = seq - c->plan_from;
	return c->steps[i < (unsigned long long)c->nsteps ? i : (unsigned long long)c->nsteps - 1];
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 7) {
		fprintf(stderr, "usage: edge-check-results MODEL EDGE_CSV EDGE_LOG MIN_RESULTS [IMAGES LABELS]\n");
		return 2;
	}
	const char *images = argc == 7 ? argv[5] : "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
	const char *labels = argc == 7 ? argv[6] : "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
	int min_results = atoi(argv[4]);
	static struct row rows[MAX_ROWS];
	static struct cmd cmds[MAX_CMDS];
	int n = 0, nc = 0;
	char line[1024];
	FILE *f = fopen(argv[2], "r");
	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "edge-check-results: cannot read %s\n", argv[2]);
		return 1;
	}
	while (n < MAX_ROWS && fgets(line, sizeof(line), f)) {
		char *tok[12];
		int k = 0;
		for (char *p = line, *s; k < 12 && (s = strsep(&p, ",\n")); )
			tok[k++] = s;
		if (k < 11)
			continue;
		struct row *r = &rows[n++];
		r->seq = strtoull(tok[1], NULL, 10);
		r->image = atoi(tok[2]);
		r->setup = atoi(tok[4]);
		r->result = strcmp(tok[5], "result") == 0 && atoi(tok[7]) == 0;
		r->cls = atoi(tok[6]);
	}
	fclose(f);
	if ((f = fopen(argv[3], "r"))) {
		while (nc < MAX_CMDS && fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, "command ");
			unsigned long long k, from, next;
			int setup;
			if (!p || sscanf(p, "command %llu: setup %d from frame %llu (next frame %llu)", &k,
					 &setup, &from, &next) != 4)
				continue;
			struct cmd c = { .from = from, .next = next, .setup = setup };
			const char *pl = strstr(p, " plan ");
			unsigned long long pf;
			int used = 0;
			if (pl && sscanf(pl, " plan %llu: %n", &pf, &used) == 1 && used > 0) {
				c.plan_from = pf;
				for (const char *q = pl + used; c.nsteps < PLAN_MAX && *q >= '0' && *q <= '9';) {
					c.steps[c.nsteps++] = (int)strtol(q, (char **)&q, 10);
					if (*q == ',')
						q++;
				}
			}
			cmds[nc++] = c;
		}
		fclose(f);
	}

	/* effective commands: a pending command applies unless the next one arrived first */
	int ne = 0;
	for (int i = 0; i < nc; i++)
		ne += i + 1 == nc || cmds[i].from < cmds[i + 1].next;
	int switch_checked = 0, switch_bad = 0;
	for (int i = 0; i < n; i++) {
		if (rows[i].setup < 0)
			continue;
		/* the command in force for a frame is the last one the device had when it began the
		 * frame (next <= seq); before that command's first frame the setup is held */
		int want = -1;
		for (int j = 0; j < nc; j++)
			if (cmds[j].next <= rows[i].seq)
				want = rows[i].seq >= (cmds[j].nsteps ? cmds[j].plan_from : cmds[j].from)
					       ? cmd_setup(&cmds[j], rows[i].seq) : -1;
		if (want < 0)
			continue;
		switch_checked++;
		if (rows[i].setup != want) {
			if (switch_bad++ < 5)
				fprintf(stderr, "edge-check-results: frame %llu used setup %d, a command set %d\n",
					rows[i].seq, rows[i].setup, want);
		}
	}

	char err[512];
	struct rtci_model *m;
	if (rtci_model_load(argv[1], &m, err, sizeof(err))) {
		fprintf(stderr, "edge-check-results: %s\n", err);
		return 1;
	}
	struct rtci_imageset imgs;
	if (rtci_frames_load(images, labels, 0, &imgs, err, sizeof(err))) {
		fprintf(stderr, "edge-check-results: %s\n", err);
		return 1;
	}
	struct rtci_encoder *enc;
	struct rtci_tail *tail;
	struct rtci_codec *codec;
	struct rtci_engine_config ecfg = { .threads = 1, .max_batch = 1 };
	if (rtci_encoder_create(m, &enc) || rtci_tail_create(m, &ecfg, &tail) ||
	    rtci_codec_create(NULL, &codec))
		return 1;
	const struct rtci_geometry *g = rtci_model_geometry(m);
	int ph, pw;
	rtci_geometry_partition_size(g, &ph, &pw);
	size_t psz = (size_t)g->stem_out * ph * pw;
	float *in = malloc(rtci_encoder_input_floats(enc) * sizeof(float));
	float *wide = malloc(psz * sizeof(float));
	float *logits = malloc((size_t)g->classes * sizeof(float));
	uint8_t *frame = malloc(rtci_encoder_max_frame(enc));
	int results = 0, matched = 0, ties = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];
		if (!r->result || r->image < 0 || (uint32_t)r->image >= imgs.count)
			continue;
		results++;
		rtci_frames_input(g, &imgs, (uint32_t)r->image, in);
		ssize_t len = rtci_encoder_run(enc, in, r->setup, frame, rtci_encoder_max_frame(enc));
		int setup = r->setup, idx[2];
		float val[2];
		if (len < 0 || rtci_codec_decode(codec, frame, (size_t)len, wide, psz, (uint32_t)g->stem_out, NULL) ||
		    rtci_tail_run(tail, 1, wide, &setup, logits))
			return 1;
		rtci_topk(logits, g->classes, 2, idx, val);
		if (val[0] - val[1] < 1e-3f) {
			ties++;
		} else if (idx[0] == r->cls) {
			matched++;
		} else if (bad++ < 5) {
			fprintf(stderr, "edge-check-results: frame %llu image %d: class %d, expected %d\n",
				r->seq, r->image, r->cls, idx[0]);
		}
	}
	printf("edge-check-results: %d answered frames, %d classes as computed here, %d ties, %d wrong;"
	       " %d commands (%d effective), %d frames under a command, %d with the wrong setup\n",
	       results, matched, ties, bad, nc, ne, switch_checked, switch_bad);
	free(in);
	free(wide);
	free(logits);
	free(frame);
	rtci_codec_destroy(codec);
	rtci_tail_destroy(tail);
	rtci_encoder_destroy(enc);
	rtci_frames_free(&imgs);
	rtci_model_destroy(m);
	return (bad || switch_bad || results < min_results) ? 1 : 0;
}
