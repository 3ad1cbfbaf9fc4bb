/* Per-device protocol state machine, shared by rtci-edge (one real camera) and rtci-fleet
 * (thousands of simulated ones). No I/O and no clock: the caller passes times (ns, one monotonic
 * base) and moves datagrams between this state and its sockets.
 *
 * Session: the device sends a hello (random nonce, its setups, fps, deadline) until a hello-ack
 * for one of its recent nonces arrives; the ack gives the first setup and the lowest frame
 * sequence to use. Frames are captured only with a session. When the gateway goes silent (no
 * authenticated message for silence_ns while frames were going out) or the hello-ack is lost,
 * the device says hello again and keeps sending frames meanwhile, so a gateway restart costs
 * only the frames sent while it was down. A gateway at capacity answers "busy" with a
 * retry-after: the device sends no frames and hellos again after that time plus a random
 * jitter of up to as much again, so refused devices do not return in step. In a cluster a
 * gateway may redirect a hello to the device's home, or move a device when it drains: the
 * device then says hello at once, and the caller sends it to the address the event names
 * (after RTCI_DEV_MAX_REDIRECTS redirects in a row the device waits as if refused; after
 * silence the caller starts again from its seed addresses).
 *
 * Frames: frame_begin assigns the next sequence and the setup to encode it with (a rate-switch
 * command takes effect from the frame it names, or the next one captured if that one is already
 * past); frame_queue authenticates the encoded frame and admits it to the device's virtual
 * uplink (edge/pacer.h) only if its last byte can leave by capture + deadline - reserve, else it
 * is skipped and counted. next_datagram writes the queue's due fragments one at a time, so
 * nothing is copied or held per fragment. The payload stays the caller's until the frame has
 * left (RTCI_DEV_QUEUE frames per device).
 *
 * Local exit: with cfg.local_exit a command may name RTCI_SETUP_LOCAL. In that mode frame_begin
 * returns RTCI_SETUP_LOCAL (answer locally, upload nothing) except for a probe: the first frame
 * after entering the mode, then the first at least probe_ns after the previous probe, which gets
 * cfg.probe_setup so the gateway keeps measuring the link.
 *
 * Messages from the gateway are decoded, checked against this device's tenant and id and
 * authenticated with its key; commands pass a replay window (reset with each new session, as a
 * restarted gateway numbers commands from 1 again). */
#ifndef RTCI_EDGE_DEVICE_H
#define RTCI_EDGE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "control/policy.h"
#include "dataplane/auth.h"
#include "dataplane/protocol.h"
#include "edge/pacer.h"

#define RTCI_DEV_QUEUE 8      /* frames queued on the uplink */
#define RTCI_DEV_INFLIGHT 64  /* frames awaiting a result (ring by sequence) */
#define RTCI_DEV_NONCES 4     /* recent hello nonces whose ack is accepted */
#define RTCI_DEV_MAX_REDIRECTS 4 /* redirects in a row followed before waiting as if refused */

struct rtci_dev_config {
	uint32_t tenant_id, device_id;
	uint8_t key[RTCI_AUTH_KEY_LEN]; /* device key (derived from the tenant key) */
	uint32_t model_id;
	uint32_t fps_milli;
	int64_t deadline_ns;     /* capture -> result at the device */
	int64_t reserve_ns;      /* kept for gateway and downlink: last byte must leave by
				    capture + deadline - reserve */
	uint16_t frag_size;      /* fragment payload bytes (<= RTCI_PROTO_MAX_FRAG) */
	uint16_t n_setups;
	uint16_t setups[RTCI_PROTO_MAX_SETUPS];
	int64_t hello_retry_ns;  /* between hellos without an ack; 0: 500 ms */
	int64_t silence_ns;      /* re-hello after this long without a message; 0: max(1 s, 4 D) */
	int64_t report_ns;       /* between reports with a session; 0: 1 s; < 0: no reports */
	int64_t report_gap_ns;   /* after a dropped frame, report once this long has passed since
				    the previous report (the gateway hears of drops at once);
				    0: 100 ms; < 0: only periodic reports */
	/* Local exit (the model has one): frames whose server result misses the deadline are
	 * answered by it, and commands may select RTCI_SETUP_LOCAL. 0: none, as before. */
	uint8_t local_exit;
	uint16_t probe_setup;    /* local mode's probes go out with this setup (the smallest) */
	int64_t probe_ns;        /* between probes in local mode; 0: 500 ms */
	/* A probe's result only measures the link and its frame keeps the local answer: set when
	 * the local exit is at least as accurate as probe_setup (rtci_local_probe_keeps_local). */
	uint8_t probe_keeps_local;
};

enum rtci_dev_state {
	RTCI_DEV_HELLO = 0,  /* no session yet: hello until acked; no frames */
	RTCI_DEV_ACTIVE,     /* session */
	RTCI_DEV_REHELLO,    /* session lost or in doubt: hello again, frames continue */
	RTCI_DEV_REJECTED,   /* the gateway refused the hello: retry slowly, no frames */
	RTCI_DEV_BUSY,       /* the gateway is at capacity: hello again after its retry-after
				plus jitter, no frames meanwhile */
};

/* Why a captured frame was not sent (one counter each). */
enum rtci_dev_skip {
	RTCI_DEV_SKIP_NO_SESSION = 0, /* before the first hello-ack, or rejected */
	RTCI_DEV_SKIP_QUEUE_FULL,     /* RTCI_DEV_QUEUE frames already queued */
	RTCI_DEV_SKIP_LATE,           /* could not leave by its send deadline */
	RTCI_DEV_SKIP_ENCODE,         /* encoding or fragmenting failed */
	RTCI_DEV_SKIP_TOO_BIG,        /* larger than the gateway's max_frame_len (hello-ack) */
	RTCI_DEV_SKIP_MAX
};

struct rtci_dev_stats {
	uint64_t captured;
	uint64_t skipped[RTCI_DEV_SKIP_MAX];
	uint64_t frames_sent, datagrams_sent, bytes_sent; /* bytes: UDP payload */
	uint64_t results, results_ok, results_late;   /* late: came back after the deadline */
	uint64_t results_gw_dropped;                  /* status != ok */
	uint64_t results_unknown;                     /* for no frame in flight (too old, dup) */
	uint64_t lost;                                /* sent, answer never came (overwritten) */
	uint64_t hellos_sent, hello_acks, rehellos, rejected, busy, reports_sent;
	uint64_t redirects, moves;                    /* hello-acks sending it elsewhere, moves */
	uint64_t commands, commands_replayed, switches;
	uint64_t rx_invalid, rx_bad_mac, rx_foreign;  /* undecodable, tag failed, other device */
	uint64_t local_frames, probes;   /* local mode: frames not uploaded; probes uploaded */
	uint64_t probe_results;    /* results of probes that kept the local answer (not counted
				      in results_ok / results_late) */
	uint64_t answered_local;   /* frames answered by the local exit by their deadline */
	uint64_t local_late;       /* frames whose local answer too came after the deadline */
};

struct rtci_dev_inflight {
	uint64_t seq;
	int64_t capture_ns;
	int64_t sent_ns;     /* last fragment left */
	uint32_t user;       /* caller's tag (image index) */
	uint16_t setup;
	uint8_t used, sent, answered;
	uint8_t resolved;    /* answered in time by the server, or resolved by rtci_dev_expire */
	uint8_t has_local;   /* the local exit's answer is attached */
	uint8_t probe;       /* a local-mode probe (its answer may only measure the link) */
	uint16_t local_class;
	int64_t local_ready_ns;
};

struct rtci_dev_queued {
	const uint8_t *payload;
	uint32_t len;
	uint64_t seq;
	int64_t capture_ns;
	int64_t queued_ns;
	uint32_t user;
	uint16_t setup, frag_count, next_frag, frag_size;
	uint8_t tag[RTCI_PROTO_TAG_LEN];
};

struct rtci_dev {
	struct rtci_dev_config cfg;
	enum rtci_dev_state state;
	uint16_t setup;               /* current setup */
	/* The gateway's last command (plan.n 0: none since the hello-ack); frames before it, and
	 * the setup between commands, stay on `setup`. */
	struct rtci_ctl_plan plan;
	uint64_t next_seq;
	uint64_t nonces[RTCI_DEV_NONCES];
	uint8_t n_nonces, nonce_head;
	int64_t last_hello_ns;        /* INT64_MIN: never */
	int64_t retry_at_ns;          /* BUSY: the next hello is due then */
	uint8_t redirects;            /* redirects followed since the last accepted hello */
	int64_t first_answer_ns;      /* the first hello-ack of any status, from the latest hello
					 before it (a round trip when that hello was answered); -1:
					 none yet */
	int64_t last_report_ns;
	uint64_t report_seq, report_bytes; /* next report sequence; bytes_sent at the last report */
	uint64_t report_dropped;      /* frames dropped by the last report */
	int64_t last_rx_ns;           /* last authenticated message from the gateway */
	int64_t unanswered_since_ns;  /* first frame sent after last_rx ... */
	uint8_t unanswered;           /* ... if any */
	struct rtci_auth_replay cmd_window;
	struct rtci_pacer pacer;
	struct rtci_dev_queued q[RTCI_DEV_QUEUE];
	uint8_t q_head, q_len;
	struct rtci_dev_inflight inflight[RTCI_DEV_INFLIGHT];
	uint32_t max_frame_len;   /* largest frame the gateway takes (hello-ack); 0: unknown */
	int64_t last_probe_ns;    /* local mode: the last probe; INT64_MIN: none since entering */
	uint64_t probe_seq;       /* the frame frame_begin last made a probe; UINT64_MAX: none */
	struct rtci_dev_stats st;
};

enum rtci_dev_event_kind {
	RTCI_DEV_EV_NONE = 0,     /* dropped (invalid, not for us, bad tag, replayed, stale ack) */
	RTCI_DEV_EV_HELLO_ACK,    /* session (re)established */
	RTCI_DEV_EV_REJECTED,     /* hello refused */
	RTCI_DEV_EV_BUSY,         /* hello refused for now: retry_ns until the next one */
	RTCI_DEV_EV_REDIRECT,     /* say hello to to_ipv4:to_port instead (its home gateway) */
	RTCI_DEV_EV_MOVE,         /* the gateway is draining: say hello to to_ipv4:to_port */
	RTCI_DEV_EV_RESULT,       /* result for a frame in flight */
	RTCI_DEV_EV_COMMAND,      /* rate switch or plan accepted (frame apply_from uses setup) */
	RTCI_DEV_EV_LOCAL,        /* a frame's deadline passed without a server answer in time:
				     hit = the local exit's answer (result.class_id) was ready */
	RTCI_DEV_EV_PROBE,        /* result of a probe that keeps its local answer
				     (cfg.probe_keeps_local): the frame resolves as EV_LOCAL */
};

struct rtci_dev_event {
	enum rtci_dev_event_kind kind;
	uint64_t seq;                 /* frame / command sequence */
	struct rtci_proto_result result;
	int64_t latency_ns;           /* result: capture -> now */
	int hit;                      /* result: ok and within the deadline */
	uint16_t setup;               /* result: the frame's setup; command: new setup */
	uint32_t user;                /* result: caller's tag of the frame */
	uint64_t apply_from;          /* command */
	int64_t retry_ns;             /* busy: wait before the next hello (retry-after + jitter) */
	uint32_t to_ipv4;             /* redirect, move: the gateway to say hello to (host order) */
	uint16_t to_port;
	int err;                      /* NONE: the reason (negative code) */
};

/* Sets up a device at time now_ns; seq_base is the first frame sequence (a device without
 * persistent state uses its real-time clock in microseconds). The pacer starts idle on
 * `trace` (NULL: unlimited) at trace offset trace_offset_ns. Returns 0 or -EINVAL. */
int rtci_dev_init(struct rtci_dev *d, const struct rtci_dev_config *cfg, int64_t now_ns,
		  uint64_t seq_base, const struct rtci_ctl_trace *trace, int64_t trace_offset_ns);

/* Whether a hello is due at now_ns (no session and retry time passed, or silence detected;
 * moves ACTIVE to REHELLO when the gateway has gone silent). */
int rtci_dev_hello_due(struct rtci_dev *d, int64_t now_ns);
/* When the next hello is due if nothing arrives meanwhile (INT64_MAX: none while the session
 * lasts). */
int64_t rtci_dev_next_hello(const struct rtci_dev *d);
/* Encodes a hello with a fresh random nonce into buf; returns its length or a negative code. */
long rtci_dev_hello(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap);

/* Whether a report is due (session, and the interval passed or a frame was dropped since the
 * last report and the gap passed); when it is next due (INT64_MAX: never). */
int rtci_dev_report_due(const struct rtci_dev *d, int64_t now_ns);
int64_t rtci_dev_next_report(const struct rtci_dev *d);
/* Encodes a report (bytes and frames sent, frames dropped, send rate and backlog over the
 * interval since the last one); returns its length or a negative code. */
long rtci_dev_report(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap);

/* Starts a frame captured at now_ns: returns the setup to encode it with and sets *seq, or a
 * negative code when the frame is skipped (-ENOTCONN no session, -ENOBUFS queue full;
 * counted). */
int rtci_dev_frame_begin(struct rtci_dev *d, int64_t now_ns, uint64_t *seq);
/* Queues an encoded frame (payload stays valid until it has left): authenticates it and admits
 * it to the uplink. Returns 0, -ETIME when it cannot leave in time (skipped, counted) or another
 * negative code (skipped as ENCODE). */
int rtci_dev_frame_queue(struct rtci_dev *d, int64_t now_ns, uint64_t seq, uint16_t setup,
			 int64_t capture_ns, const uint8_t *payload, uint32_t len, uint32_t user);
/* Local exit (cfg.local_exit). A frame that frame_begin gave RTCI_SETUP_LOCAL, or that was not
 * queued, gets no server answer: rtci_dev_local_only counts its local answer (ready at ready_ns)
 * and returns 1 when that was ready by the deadline. For a queued frame, rtci_dev_local_answer
 * attaches the answer (the caller runs the exit after handing the upload to the uplink); when
 * no in-time server result has come by the deadline, rtci_dev_expire reports the frame as
 * answered locally (RTCI_DEV_EV_LOCAL). Return 0 or -ENOENT (frame no longer in flight). */
int rtci_dev_local_only(struct rtci_dev *d, int64_t capture_ns, int64_t ready_ns);
int rtci_dev_local_answer(struct rtci_dev *d, uint64_t seq, uint16_t class_id, int64_t ready_ns);
/* When the next frame with a local answer reaches its deadline (INT64_MAX: none). */
int64_t rtci_dev_next_expiry(const struct rtci_dev *d);
/* Resolves one frame whose deadline passed by now_ns without an in-time server result; returns
 * RTCI_DEV_EV_LOCAL (ev filled: seq, user, setup, latency_ns = ready - capture, hit,
 * result.class_id) or RTCI_DEV_EV_NONE when none is due. */
int rtci_dev_expire(struct rtci_dev *d, int64_t now_ns, struct rtci_dev_event *ev);

/* Counts a frame the caller could not encode. */
void rtci_dev_frame_failed(struct rtci_dev *d);

/* When the next queued datagram leaves (INT64_MAX: queue empty). */
int64_t rtci_dev_next_departure(const struct rtci_dev *d);
/* If a datagram is due at now_ns, writes it into buf and returns its length; 0 if none is due;
 * a negative code if buf is too small. */
long rtci_dev_next_datagram(struct rtci_dev *d, int64_t now_ns, uint8_t *buf, size_t cap);

/* Handles one datagram from the gateway at now_ns; fills *ev. Returns ev->kind. */
int rtci_dev_handle(struct rtci_dev *d, const uint8_t *buf, size_t len, int64_t now_ns,
		    struct rtci_dev_event *ev);

/* Link bytes queued on the device's uplink. */
static inline uint64_t rtci_dev_backlog(const struct rtci_dev *d)
{
	return rtci_pacer_backlog(&d->pacer);
}

const char *rtci_dev_state_name(enum rtci_dev_state s);
const char *rtci_dev_skip_name(enum rtci_dev_skip s);

#endif
