#include "dataplane/auth.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "common/rtci_error.h"
#include "dataplane/header.h"
#include "dataplane/poly1305.h"
#include "dataplane/wire.h"

_Static_assert(sizeof(RTCI_AUTH_KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES, "kdf context size");
_Static_assert(crypto_onetimeauth_BYTES == RTCI_PROTO_TAG_LEN, "tag size");
_Static_assert(crypto_onetimeauth_KEYBYTES == 32, "one-time key size");
_Static_assert(crypto_stream_chacha20_ietf_NONCEBYTES == 12, "nonce size");

int rtci_auth_init(void)
{
	if (sodium_init() < 0)
		return -RTCI_ERR_AUTH_INIT;
	/* load the Poly1305 implementation now (libcrypto reads its configuration once per
	 * process), not on the first frame */
	(void)rtci_poly1305_backend();
	return 0;
}

int rtci_auth_derive_device_key(const uint8_t tenant_key[RTCI_AUTH_KEY_LEN], uint32_t tenant_id,
				uint32_t device_id, uint8_t device_key[RTCI_AUTH_KEY_LEN])
{
	if (!tenant_key || !device_key)
		return -EINVAL;
	uint64_t subkey_id = ((uint64_t)tenant_id << 32) | device_id;

	if (crypto_kdf_derive_from_key(device_key, RTCI_AUTH_KEY_LEN, subkey_id,
				       RTCI_AUTH_KDF_CONTEXT, tenant_key) != 0)
		return -RTCI_ERR_INTERNAL;
	return 0;
}

/* One-time Poly1305 key for this message: ChaCha20 keystream block 0 under the device key,
 * nonce = type || version || 0 0 || seq (big-endian). Distinct per (type, seq). */
static void one_time_key(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_hdr *hdr,
			 uint8_t otk[crypto_onetimeauth_KEYBYTES])
{
	uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];

	nonce[0] = hdr->type;
	nonce[1] = RTCI_PROTO_VERSION;
	nonce[2] = 0;
	nonce[3] = 0;
	rtci_st64(nonce + 4, hdr->seq);
	crypto_stream_chacha20_ietf(otk, crypto_onetimeauth_KEYBYTES, nonce, key);
}

void rtci_auth_stream_init(struct rtci_auth_stream *s, const uint8_t key[RTCI_AUTH_KEY_LEN],
			   const struct rtci_proto_hdr *hdr)
{
	uint8_t otk[crypto_onetimeauth_KEYBYTES];
	uint8_t mh[RTCI_PROTO_HDR_LEN];

	one_time_key(key, hdr, otk);
	rtci_header_mac(hdr, mh);
	crypto_onetimeauth_init(&s->st, otk);
	crypto_onetimeauth_update(&s->st, mh, sizeof(mh));
	sodium_memzero(otk, sizeof(otk));
}

void rtci_auth_stream_update(struct rtci_auth_stream *s, const uint8_t *data, size_t len)
{
	if (len)
		crypto_onetimeauth_update(&s->st, data, len);
}

void rtci_auth_stream_final(struct rtci_auth_stream *s, uint8_t tag[RTCI_PROTO_TAG_LEN])
{
	crypto_onetimeauth_final(&s->st, tag);
}

int rtci_auth_stream_verify(struct rtci_auth_stream *s, const uint8_t tag[RTCI_PROTO_TAG_LEN])
{
	uint8_t want[RTCI_PROTO_TAG_LEN];

	if (!tag)
		return -RTCI_ERR_AUTH_NO_TAG;
	crypto_onetimeauth_final(&s->st, want);
	return crypto_verify_16(want, tag) == 0 ? 0 : -RTCI_ERR_AUTH_BAD_MAC;
}

void rtci_auth_mac(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_hdr *hdr,
		   const uint8_t *data, size_t len, uint8_t tag[RTCI_PROTO_TAG_LEN])
{
	uint8_t otk[crypto_onetimeauth_KEYBYTES];
	uint8_t mh[RTCI_PROTO_HDR_LEN];

	/* the same tag as the stream form; rtci_poly1305() picks the faster implementation */
	one_time_key(key, hdr, otk);
	rtci_header_mac(hdr, mh);
	rtci_poly1305(otk, mh, sizeof(mh), data, len, tag);
	sodium_memzero(otk, sizeof(otk));
}

int rtci_auth_verify(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_hdr *hdr,
		     const uint8_t *data, size_t len, const uint8_t tag[RTCI_PROTO_TAG_LEN])
{
	uint8_t want[RTCI_PROTO_TAG_LEN];

	if (!tag)
		return -RTCI_ERR_AUTH_NO_TAG;
	rtci_auth_mac(key, hdr, data, len, want);
	return crypto_verify_16(want, tag) == 0 ? 0 : -RTCI_ERR_AUTH_BAD_MAC;
}

int rtci_auth_verify_msg(const uint8_t key[RTCI_AUTH_KEY_LEN], const struct rtci_proto_msg *msg)
{
	if (!msg->tag || msg->hdr.type == RTCI_PROTO_FRAGMENT)
		return -RTCI_ERR_AUTH_NO_TAG;
	return rtci_auth_verify(key, &msg->hdr, msg->body, msg->body_len, msg->tag);
}

void rtci_auth_replay_init(struct rtci_auth_replay *w)
{
	memset(w, 0, sizeof(*w));
}

#define WBITS RTCI_AUTH_REPLAY_WINDOW

static int bit_get(const struct rtci_auth_replay *w, uint64_t seq)
{
	uint64_t b = seq % WBITS;

	return (int)((w->bits[b / 64] >> (b % 64)) & 1);
}

int rtci_auth_replay_check(const struct rtci_auth_replay *w, uint64_t seq)
{
	if (!w->started || seq > w->top)
		return 0;
	if (w->top - seq >= WBITS)
		return -RTCI_ERR_AUTH_STALE;
	return bit_get(w, seq) ? -RTCI_ERR_AUTH_REPLAYED : 0;
}

int rtci_auth_replay_accept(struct rtci_auth_replay *w, uint64_t seq)
{
	int r = rtci_auth_replay_check(w, seq);

	if (r < 0)
		return r;
	if (!w->started) {
		memset(w->bits, 0, sizeof(w->bits));
		w->top = seq;
		w->started = 1;
	} else if (seq > w->top) {
		if (seq - w->top >= WBITS) {
			/* Jump past the whole window: nothing older stays seen. */
			memset(w->bits, 0, sizeof(w->bits));
		} else {
			/* Slots top+1 .. seq-1 now stand for new, unseen sequences. */
			for (uint64_t s = w->top + 1; s < seq;) {
				uint64_t b = s % WBITS;

				if (b % 64 == 0 && seq - s >= 64) {
					w->bits[b / 64] = 0;
					s += 64;
				} else {
					w->bits[b / 64] &= ~(1ull << (b % 64));
					s++;
				}
			}
		}
		w->top = seq;
	}
	uint64_t b = seq % WBITS;
	w->bits[b / 64] |= 1ull << (b % 64);
	return 0;
}
