/* The inside of an encoding, shared by bpe_load.c (building it), bpe.c
 * (encoding with it) and bpe_builtin.c. Not part of the API. */
#ifndef LLMRUN_BPE_INTERNAL_H
#define LLMRUN_BPE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "bpe.h"

#define LLM_BPE_NO_RANK UINT32_MAX

/* For the few helpers of the merge loops that must be inlined to be
 * cheap (a call costs as much as a short lookup) but that compilers find
 * too big to inline on their own. */
#if defined(__GNUC__)
#define LLM_BPE_HOT static inline __attribute__((always_inline))
#else
#define LLM_BPE_HOT static inline
#endif
#define LLM_BPE_MAX_TOKEN_LEN 255 /* tiktoken's longest is 128 bytes */
#define LLM_BPE_MAX_BYTES (1u << 24) /* offsets are 24 bits in a slot */
/* Readable bytes after the last token, so that a token of under 8 bytes
 * can be compared with one 8-byte load (llm_bpe_tok_eq). */
#define LLM_BPE_BYTES_SLACK 8

typedef struct {
  const uint8_t *text;
  size_t len;
  uint32_t id;
} llm_bpe_special;

struct llm_bpe {
  char name[32];
  llm_bpe_pattern pattern;
  uint32_t n_ranks; /* one past the highest ordinary rank in use */
  uint32_t n_vocab; /* one past the highest id, specials included */
  uint32_t max_len; /* longest ordinary token, in bytes */
  /* Every token as [rank: 3 bytes LE][length: 1 byte][bytes]; tok_off[r]
   * is the offset of rank r's bytes (0: no such rank), so its length is
   * bytes[tok_off[r] - 1]. LLM_BPE_BYTES_SLACK zero bytes follow n_bytes. */
  const uint8_t *bytes;
  size_t n_bytes;
  const uint32_t *tok_off;
  /* Open-addressing hash from token bytes to rank, linear probing: a slot
   * holds (offset << 8) | length, 0 is empty. A hit costs two cache
   * misses, the slot and the token (its rank is beside it), and a probe
   * of a token of another length touches nothing else. Ranks >= n_ranks
   * are not part of this encoding (r50k_base uses p50k_base's table). */
  const uint32_t *slots;
  uint32_t mask;
  uint32_t byte_rank[256];
  const uint32_t *pair_rank; /* [65536]: rank of each two-byte token or NO_RANK */
  size_t n_special;
  const llm_bpe_special *special;
  uint8_t special_first[256]; /* bytes that begin some special token */
  void *owned[8];             /* malloc'd parts, freed by llm_bpe_free */
};

/* The tables of an encoding as one position-independent image: the build
 * runs src/bpe/vocab/bpe_pack.c to write it from a .tiktoken file, and the
 * built-in encodings use it in place from the executable's read-only data,
 * so loading parses nothing and only the pages a text touches are read.
 * Sections start at 16-byte aligned offsets from the header. */
#define LLM_BPE_BLOB_MAGIC "LLMBPE\0\3"
#define LLM_BPE_BLOB_ENDIAN 0x01020304u
typedef struct {
  char magic[8];
  uint32_t endian;     /* LLM_BPE_BLOB_ENDIAN as the packer's machine wrote it */
  uint32_t hash_check; /* llm_bpe_blob_hash_check(): the same hash function */
  uint32_t n_ranks, max_len, mask, n_bytes;
  uint32_t off_bytes, off_tok_off, off_slots, off_pair_rank, size;
  uint32_t byte_rank[256];
} llm_bpe_blob_header;

LLM_BPE_HOT uint64_t llm_bpe_rd64(const uint8_t *p)
{
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t llm_bpe_rd32(const uint8_t *p)
{
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* 64x64->128 multiply folded to 64 bits: a fast, well-mixing step. */
LLM_BPE_HOT uint64_t llm_bpe_mix(uint64_t a, uint64_t b)
{
  __uint128_t m = (__uint128_t)a * b;
  return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* ~0 over the low n bytes of a little-endian word (1 <= n <= 8). */
LLM_BPE_HOT uint64_t llm_bpe_low_bytes(size_t n)
{
  return ~0ull >> (64 - 8 * n);
}

/* Two words that, with the length, identify a string of 1 to 16 bytes:
 * up to 8 bytes, their little-endian value and 0; 9 to 16, the first and
 * the last 8 bytes (overlapping). Read byte by byte or with overlapping
 * loads, never outside p[0..n): see llm_bpe_padded_key for the fast way. */
static inline void llm_bpe_short_key(const uint8_t *p, size_t n, uint64_t *a, uint64_t *b)
{
  if (n >= 8) {
    *a = llm_bpe_rd64(p);
    *b = n > 8 ? llm_bpe_rd64(p + n - 8) : 0;
  } else if (n >= 4) {
    *a = llm_bpe_rd32(p) | llm_bpe_rd32(p + n - 4) << (8 * (n - 4));
    *b = 0;
  } else if (n > 0) {
    *a = (uint64_t)p[0] | (uint64_t)p[n >> 1] << (8 * (n >> 1)) | (uint64_t)p[n - 1] << (8 * (n - 1));
    *b = 0;
  } else {
    *a = *b = 0;
  }
}

/* The same words for 1 <= n <= 16 when p[0..8) may be read even if n < 8
 * (a padded copy): one or two loads, no branch on the length's range. */
LLM_BPE_HOT void llm_bpe_padded_key(const uint8_t *p, size_t n, uint64_t *a, uint64_t *b)
{
  if (n <= 8) {
    *a = llm_bpe_rd64(p) & llm_bpe_low_bytes(n);
    *b = 0;
  } else {
    *a = llm_bpe_rd64(p);
    *b = llm_bpe_rd64(p + n - 8);
  }
}

#define LLM_BPE_K1 0xa0761d6478bd642full
#define LLM_BPE_K2 0xe7037ed1a0b428dbull

/* The hash of a string of 1 to 16 bytes from its key words. */
LLM_BPE_HOT uint64_t llm_bpe_hash_key(uint64_t a, uint64_t b, size_t n)
{
  return llm_bpe_mix(a ^ LLM_BPE_K1, b ^ LLM_BPE_K2 ^ n);
}

/* Hash of a byte string, tuned for the short keys BPE looks up. */
static inline uint64_t llm_bpe_hash(const uint8_t *p, size_t n)
{
  uint64_t a, b;
  if (n <= 16) {
    llm_bpe_short_key(p, n, &a, &b);
  } else {
    uint64_t h = LLM_BPE_K2;
    size_t i = 0;
    for (; i + 16 < n; i += 16)
      h = llm_bpe_mix(llm_bpe_rd64(p + i) ^ LLM_BPE_K1, llm_bpe_rd64(p + i + 8) ^ h);
    a = llm_bpe_rd64(p + n - 16);
    b = llm_bpe_rd64(p + n - 8) ^ h;
  }
  return llm_bpe_hash_key(a, b, n);
}

/* The length of rank r's token, 0 for a rank that is not in use. */
static inline size_t llm_bpe_tok_len(const llm_bpe *e, uint32_t r)
{
  return e->tok_off[r] ? e->bytes[e->tok_off[r] - 1] : 0;
}

/* The rank stored in front of the token at offset off. */
LLM_BPE_HOT uint32_t llm_bpe_rank_at(const llm_bpe *e, uint32_t off)
{
  const uint8_t *b = e->bytes + off - 4;
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
}

/* The token bytes at t (LLM_BPE_BYTES_SLACK readable bytes follow the
 * last token) equal the n-byte string p whose key words are a, b. */
LLM_BPE_HOT int llm_bpe_tok_eq(const uint8_t *t, const uint8_t *p, size_t n, uint64_t a,
                                 uint64_t b)
{
  if (n <= 8)
    return ((llm_bpe_rd64(t) ^ a) & llm_bpe_low_bytes(n)) == 0;
  if (n <= 16)
    return llm_bpe_rd64(t) == a && llm_bpe_rd64(t + n - 8) == b;
  return memcmp(t, p, n) == 0;
}

/* Rank of the n-byte token p (1 <= n <= max_len), given its key words
 * (used for n <= 16) and hash h, or LLM_BPE_NO_RANK. A slot is compared
 * only when its length matches, so a probe past a token of another length
 * touches nothing else. */
LLM_BPE_HOT uint32_t llm_bpe_rank_key(const llm_bpe *e, const uint8_t *p, size_t n,
                                        uint64_t a, uint64_t b, uint64_t h)
{
  uint32_t i, slot, r;
  for (i = (uint32_t)h & e->mask;; i = (i + 1) & e->mask) {
    slot = e->slots[i];
    if (slot == 0)
      return LLM_BPE_NO_RANK;
    if ((slot & 0xFF) == n && llm_bpe_tok_eq(e->bytes + (slot >> 8), p, n, a, b)) {
      r = llm_bpe_rank_at(e, slot >> 8);
      return r < e->n_ranks ? r : LLM_BPE_NO_RANK;
    }
  }
}

/* Rank of the token with these bytes, or LLM_BPE_NO_RANK, given their
 * hash h = llm_bpe_hash(p, n) (for callers that use the hash again). */
static inline uint32_t llm_bpe_rank_hashed(const llm_bpe *e, const uint8_t *p, size_t n,
                                           uint64_t h)
{
  uint64_t a = 0, b = 0;
  if (n > e->max_len || n == 0)
    return LLM_BPE_NO_RANK;
  if (n <= 16)
    llm_bpe_short_key(p, n, &a, &b);
  return llm_bpe_rank_key(e, p, n, a, b, h);
}

/* Rank of the token with these bytes, or LLM_BPE_NO_RANK. */
static inline uint32_t llm_bpe_rank(const llm_bpe *e, const uint8_t *p, size_t n)
{
  if (n > e->max_len)
    return LLM_BPE_NO_RANK;
  return llm_bpe_rank_hashed(e, p, n, llm_bpe_hash(p, n));
}

/* Rank of the n-byte string at p (1 <= n) when p[0..max(n, 8)) may be
 * read: the lookup of the merge loops, which work on a padded copy. */
LLM_BPE_HOT uint32_t llm_bpe_rank_padded(const llm_bpe *e, const uint8_t *p, size_t n)
{
  uint64_t a, b;
  if (n > 16)
    return llm_bpe_rank(e, p, n);
  llm_bpe_padded_key(p, n, &a, &b);
  return llm_bpe_rank_key(e, p, n, a, b, llm_bpe_hash_key(a, b, n));
}

/* A value that changes if the hash function does (checked in blobs). */
static inline uint32_t llm_bpe_blob_hash_check(void)
{
  static const uint8_t probe[] = "tiktoken-compatible BPE, llmrun";
  return (uint32_t)llm_bpe_hash(probe, sizeof probe - 1);
}

/* An encoding over a blob used in place (bpe_load.c): checks the header
 * and section bounds; limit_ranks (0: all) hides the ranks from there on.
 * The blob must outlive the encoding. */
llm_bpe *llm_bpe_from_blob(const char *name, llm_bpe_pattern pattern, const void *blob,
                           size_t len, uint32_t limit_ranks,
                           const llm_bpe_special_token *specials, size_t n_special,
                           char *err, size_t errlen);

#endif
