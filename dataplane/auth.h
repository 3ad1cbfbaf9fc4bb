/* Frame and message authentication (libsodium) and replay windows.
 *
 * Keys: each tenant has a 32-byte key; a device key is derived from it once per device
 * (crypto_kdf_derive_from_key, context "RTCIdev1", subkey id = tenant_id << 32 | device_id)
 * and cached by the caller. Each message is authenticated with Poly1305 (crypto_onetimeauth)
 * under a one-time key: the first 32 bytes of the ChaCha20 (IETF) keystream for the device key
 * and the nonce type || version || 0 0 || seq (8 bytes, big-endian). The MAC covers the 48-byte
 * MAC header (rtci_header_mac, header.h) followed by the whole frame or message body; one-shot
 * tags are computed by rtci_poly1305() (poly1305.h), streams by libsodium, to the same value.
 * docs/protocol.md gives the exact construction and the speed measurements behind it. */
#ifndef RTCI_DATAPLANE_AUTH_H
#define RTCI_DATAPLANE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "dataplane/protocol.h"

#define RTCI_AUTH_KEY_LEN 32
#define RTCI_AUTH_KDF_CONTEXT "RTCIdev1" /* 8 bytes, crypto_kdf_CONTEXTBYTES */

/* Initialises libsodium (idempotent, thread-safe). Returns 0 or -RTCI_ERR_AUTH_INIT. */
int rtci_auth_init(void);

/* Derives the device key from the tenant key. Deterministic; distinct per (tenant, device). */
int rtci_auth_derive_device_key(const uint8_t tenant_key[RTCI_AUTH_KEY_LEN], uint32_t tenant_id,
				uint32_t device_id, uint8_t device_key[RTCI_AUTH_KEY_LEN]);

/* Computes the tag of a message: hdr gives the MAC header fields, data/len the whole frame
 * (fragments) or the body (other types). */
void rtci_auth_mac(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_hdr *hdr,
		   const uint8_t *data, size_t len, uint8_t tag[RTCI_PROTO_TAG_LEN]);

/* Verifies a tag in constant time. Returns 0 or -RTCI_ERR_AUTH_BAD_MAC. */
int rtci_auth_verify(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_hdr *hdr,
		     const uint8_t *data, size_t len, const uint8_t tag[RTCI_PROTO_TAG_LEN]);

/* Incremental form of the same MAC, for data that arrives in pieces (in order): init with
 * the message's header fields, update with consecutive pieces of the frame or body, then
 * verify (or final). */
struct rtci_auth_stream {
	crypto_onetimeauth_state st;
};
void rtci_auth_stream_init(struct rtci_auth_stream *s, const uint8_t key[RTCI_AUTH_KEY_LEN],
			   const struct rtci_proto_hdr *hdr);
void rtci_auth_stream_update(struct rtci_auth_stream *s, const uint8_t *data, size_t len);
void rtci_auth_stream_final(struct rtci_auth_stream *s, uint8_t tag[RTCI_PROTO_TAG_LEN]);
/* Returns 0 or -RTCI_ERR_AUTH_BAD_MAC (constant-time comparison). */
int rtci_auth_stream_verify(struct rtci_auth_stream *s, const uint8_t tag[RTCI_PROTO_TAG_LEN]);

/* Verifies a decoded single-datagram message (anything but a fragment).
 * Returns 0, -RTCI_ERR_AUTH_NO_TAG or -RTCI_ERR_AUTH_BAD_MAC. */
int rtci_auth_verify_msg(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_msg *msg);

/* Sliding replay window over 64-bit sequence numbers: accepts each sequence at most once and
 * rejects sequences older than the newest minus RTCI_AUTH_REPLAY_WINDOW + 1. Plain value type;
 * zero-initialise or call rtci_auth_replay_init(). */
#define RTCI_AUTH_REPLAY_WINDOW 1024
struct rtci_auth_replay {
	uint64_t top;     /* highest accepted sequence */
	uint8_t started;  /* any sequence accepted yet */
	uint64_t bits[RTCI_AUTH_REPLAY_WINDOW / 64]; /* bit (seq % WINDOW) set = seen */
};

void rtci_auth_replay_init(struct rtci_auth_replay *w);

/* Read-only check, cheap enough to run before the MAC: 0 if seq would be accepted,
 * -RTCI_ERR_AUTH_REPLAYED (seen) or -RTCI_ERR_AUTH_STALE (older than the window). */
int rtci_auth_replay_check(const struct rtci_auth_replay *w, uint64_t seq);

/* Check and record; call only after the message authenticated (otherwise forged sequences
 * would move the window). Same return values as rtci_auth_replay_check(). */
int rtci_auth_replay_accept(struct rtci_auth_replay *w, uint64_t seq);

#endif
