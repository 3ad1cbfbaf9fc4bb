#include "dataplane/poly1305.h"

#include <sodium.h>

#ifdef RTCI_HAVE_LIBCRYPTO
#include <pthread.h>

#include <openssl/evp.h>

/* The algorithm is fetched once per process; each thread keeps its own context, because an
 * EVP_MAC_CTX is not thread-safe and creating one per message would allocate on the hot path. */
static EVP_MAC *alg;
static pthread_key_t ctx_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MAC_CTX *tctx;
static _Thread_local int tctx_failed;

static void ctx_free(void *p)
{
	EVP_MAC_CTX_free(p);
}

static void fetch(void)
{
	if (pthread_key_create(&ctx_key, ctx_free) != 0)
		return;
	alg = EVP_MAC_fetch(NULL, "POLY1305", NULL);
}

static EVP_MAC_CTX *thread_ctx(void)
{
	if (tctx || tctx_failed)
		return tctx;
	pthread_once(&once, fetch);
	tctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
	if (tctx && pthread_setspecific(ctx_key, tctx) != 0) {
		EVP_MAC_CTX_free(tctx);
		tctx = NULL;
	}
	tctx_failed = !tctx;
	return tctx;
}

static int libcrypto_mac(const uint8_t *key, const uint8_t *a, size_t alen, const uint8_t *b,
			 size_t blen, uint8_t *tag)
{
	EVP_MAC_CTX *c = thread_ctx();
	size_t n = 0;

	return c && EVP_MAC_init(c, key, RTCI_POLY1305_KEY_LEN, NULL) &&
	       (!alen || EVP_MAC_update(c, a, alen)) && (!blen || EVP_MAC_update(c, b, blen)) &&
	       EVP_MAC_final(c, tag, &n, RTCI_POLY1305_TAG_LEN) && n == RTCI_POLY1305_TAG_LEN;
}
#endif

void rtci_poly1305(const uint8_t key[RTCI_POLY1305_KEY_LEN], const uint8_t *a, size_t alen,
		   const uint8_t *b, size_t blen, uint8_t tag[RTCI_POLY1305_TAG_LEN])
{
#ifdef RTCI_HAVE_LIBCRYPTO
	if (libcrypto_mac(key, a, alen, b, blen, tag))
		return;
#endif
	crypto_onetimeauth_state st;
	crypto_onetimeauth_init(&st, key);
	if (alen)
		crypto_onetimeauth_update(&st, a, alen);
	if (blen)
		crypto_onetimeauth_update(&st, b, blen);
	crypto_onetimeauth_final(&st, tag);
	sodium_memzero(&st, sizeof(st));
}

const char *rtci_poly1305_backend(void)
{
#ifdef RTCI_HAVE_LIBCRYPTO
	if (thread_ctx())
		return "libcrypto";
#endif
	return "libsodium";
}
