/* One-shot Poly1305 (RFC 8439) over a message given in two pieces, with the fastest
 * implementation the build found: OpenSSL libcrypto's (AVX2 / AVX-512 on x86) when present,
 * libsodium's otherwise. Both give the same tag; libsodium 1.0.18's SSE2 code was the largest
 * single cost of the gateway's ingest path (docs/operations.md §6.8).
 *
 * Thread-safe: each thread lazily gets its own libcrypto context, created on its first call
 * and freed when the thread exits; if that fails, libsodium computes the tag. */
#ifndef RTCI_DATAPLANE_POLY1305_H
#define RTCI_DATAPLANE_POLY1305_H

#include <stddef.h>
#include <stdint.h>

#define RTCI_POLY1305_KEY_LEN 32
#define RTCI_POLY1305_TAG_LEN 16

/* tag = Poly1305(key, a || b). a or b may be empty (NULL with length 0). */
void rtci_poly1305(const uint8_t key[RTCI_POLY1305_KEY_LEN], const uint8_t *a, size_t alen,
		   const uint8_t *b, size_t blen, uint8_t tag[RTCI_POLY1305_TAG_LEN]);

/* Which implementation computes the tags in this thread: "libcrypto" or "libsodium". */
const char *rtci_poly1305_backend(void);

#endif
