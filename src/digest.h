/* Digests: SHA-256 (FIPS 180-4, https://csrc.nist.gov/pubs/fips/180-4/upd1/final),
 * written from the specification: the cache keys its entries by the
 * SHA-256 of a canonical request, and a vetted 150-line function is
 * cheaper than a new dependency. Not constant-time: it hashes requests,
 * not secrets. */
#ifndef LLMRUN_DIGEST_H
#define LLMRUN_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define LLM_SHA256_SIZE 32

typedef struct llm_sha256_ctx {
  uint32_t h[8];
  uint64_t length;      /* bytes hashed so far */
  uint8_t block[64];
  size_t used;          /* bytes waiting in block */
} llm_sha256_ctx;

void llm_sha256_init(llm_sha256_ctx *s);
void llm_sha256_update(llm_sha256_ctx *s, const void *data, size_t len);
void llm_sha256_final(llm_sha256_ctx *s, uint8_t out[LLM_SHA256_SIZE]);

/* One-shot digest of data. */
void llm_sha256(const void *data, size_t len, uint8_t out[LLM_SHA256_SIZE]);

/* Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
void llm_hex(const uint8_t *bytes, size_t n, char *out);

#endif
