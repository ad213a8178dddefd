/* The cache engine's parts alone: SHA-256 against the published test
 * vectors, the LRU's recency and byte budget, the vector index's nearest
 * neighbour against a plain double-precision scan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "digest.h"
#include "store/cache_lru.h"
#include "store/vecindex.h"

static const char *hex_of(const void *data, size_t len)
{
  static char out[65];
  uint8_t d[32];
  llm_sha256(data, len, d);
  llm_hex(d, 32, out);
  return out;
}

static void test_sha256(void)
{
  /* NIST CSRC example values (SHA256.pdf, "SHA-256 examples") and the
   * FIPS 180-2 appendix B long message. */
  CHECK_STR(hex_of("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_STR(hex_of("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK_STR(hex_of(m2, strlen(m2)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* one million 'a', fed in uneven pieces to exercise the block buffer */
  llm_sha256_ctx s;
  uint8_t d[32];
  char hex[65];
  char chunk[997];
  memset(chunk, 'a', sizeof chunk);
  llm_sha256_init(&s);
  size_t left = 1000000;
  for (size_t piece = 1; left; piece = piece % 997 + 1) {
    size_t n = piece < left ? piece : left;
    llm_sha256_update(&s, chunk, n);
    left -= n;
  }
  llm_sha256_final(&s, d);
  llm_hex(d, 32, hex);
  CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  /* lengths around the padding boundary (55, 56, 63, 64 bytes) agree with one-shot */
  for (size_t len = 50; len <= 130; len++) {
    char buf[130];
    memset(buf, 'x', len);
    char one[65];
    snprintf(one, sizeof one, "%s", hex_of(buf, len));
    llm_sha256_init(&s);
    for (size_t i = 0; i < len; i++)
      llm_sha256_update(&s, buf + i, 1);
    llm_sha256_final(&s, d);
    llm_hex(d, 32, hex);
    CHECK_STR(hex, one);
  }
  CHECK_STR(hex_of("The quick brown fox jumps over the lazy dog", 43),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
}

static void test_lru(void)
{
  llm_lru *m = llm_lru_new(1000);
  llm_lru_value v;
  char big[800];
  memset(big, 'b', sizeof big);
  CHECK(m != NULL);
  CHECK_INT(llm_lru_put(m, "a", 1, "alpha", 5, 1, 0), 0);
  CHECK_INT(llm_lru_put(m, "b", 1, "beta", 4, 1, 0), 0);
  CHECK_INT(llm_lru_get(m, "a", 1, 10, &v), 1);
  CHECK_MEM(v.data, v.len, "alpha", 5);
  CHECK_INT(llm_lru_get(m, "zz", 2, 10, &v), 0);
  /* replacing keeps one entry */
  CHECK_INT(llm_lru_put(m, "a", 1, "ALPHA!", 6, 2, 0), 0);
  CHECK_INT(llm_lru_count(m), 2);
  CHECK_INT(llm_lru_get(m, "a", 1, 10, &v), 1);
  CHECK_MEM(v.data, v.len, "ALPHA!", 6);
  /* "b" is now the least recent: a big entry evicts it, not "a" */
  CHECK_INT(llm_lru_get(m, "a", 1, 10, &v), 1);
  CHECK_INT(llm_lru_put(m, "c", 1, big, sizeof big, 1, 0), 0);
  CHECK(llm_lru_bytes(m) <= 1000);
  CHECK_INT(llm_lru_get(m, "b", 1, 10, &v), 0);
  CHECK_INT(llm_lru_get(m, "c", 1, 10, &v), 1);
  /* an entry over the whole budget is not kept, and evicts nothing */
  char huge[2000] = {0};
  size_t before = llm_lru_count(m);
  CHECK_INT(llm_lru_put(m, "h", 1, huge, sizeof huge, 1, 0), 0);
  CHECK_INT(llm_lru_get(m, "h", 1, 10, &v), 0);
  CHECK_INT(llm_lru_count(m), before);
  /* expiry */
  CHECK_INT(llm_lru_put(m, "t", 1, "ttl", 3, 1, 5.0), 0);
  CHECK_INT(llm_lru_get(m, "t", 1, 4.9, &v), 1);
  CHECK_INT(llm_lru_get(m, "t", 1, 5.0, &v), 0);
  CHECK_INT(llm_lru_get(m, "t", 1, 1.0, &v), 0); /* dropped on the expired look */
  llm_lru_del(m, "a", 1);
  CHECK_INT(llm_lru_get(m, "a", 1, 1, &v), 0);
  llm_lru_clear(m);
  CHECK_INT(llm_lru_count(m), 0);
  CHECK_INT(llm_lru_bytes(m), 0);
  llm_lru_free(m);

  /* many keys: growth of the table, budget always held, recent ones kept */
  m = llm_lru_new(64 * 1024);
  char key[32], val[100];
  memset(val, 'v', sizeof val);
  for (int i = 0; i < 20000; i++) {
    int n = snprintf(key, sizeof key, "key-%d", i);
    CHECK_INT(llm_lru_put(m, key, (size_t)n, val, (size_t)(i % 100), i, 0), 0);
    if (llm_lru_bytes(m) > 64 * 1024) {
      CHECK(0);
      break;
    }
  }
  int n = snprintf(key, sizeof key, "key-%d", 19999);
  CHECK_INT(llm_lru_get(m, key, (size_t)n, 1, &v), 1);
  n = snprintf(key, sizeof key, "key-%d", 0);
  CHECK_INT(llm_lru_get(m, key, (size_t)n, 1, &v), 0);
  llm_lru_free(m);
}

static double rnd(unsigned *s)
{
  *s = *s * 1103515245u + 12345u;
  return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

static void test_vecindex(void)
{
  enum { N = 3000, D = 100 }; /* D not a multiple of 16: exercises the padding */
  unsigned seed = 7;
  float *rows = malloc(sizeof(float) * N * D), q[D];
  llm_vecindex *ix = llm_vecindex_new(D);
  int64_t id;
  float sim;
  CHECK(ix != NULL && rows != NULL);
  CHECK_INT(llm_vecindex_search(ix, 1, q, &id, &sim), 0); /* empty */
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < D; j++)
      rows[i * D + j] = (float)rnd(&seed);
    CHECK_INT(llm_vecindex_add(ix, 1000 + i, (uint64_t)(i % 3), rows + i * D), 0);
  }
  CHECK_INT(llm_vecindex_count(ix), N);
  float zero[D] = {0};
  CHECK_INT(llm_vecindex_add(ix, 1, 0, zero), -1);
  CHECK_INT(llm_vecindex_search(ix, 0, zero, &id, &sim), 0);
  for (int t = 0; t < 20; t++) {
    for (int j = 0; j < D; j++)
      q[j] = (float)rnd(&seed) * 3;
    uint64_t scope = (uint64_t)(t % 3);
    /* reference: a double-precision scan over the rows of the scope */
    double best = -2, qn = 0;
    int best_i = -1;
    for (int j = 0; j < D; j++)
      qn += (double)q[j] * q[j];
    for (int i = 0; i < N; i++) {
      if ((uint64_t)(i % 3) != scope)
        continue;
      double dot = 0, rn = 0;
      for (int j = 0; j < D; j++) {
        dot += (double)rows[i * D + j] * q[j];
        rn += (double)rows[i * D + j] * rows[i * D + j];
      }
      double cos = dot / sqrt(rn * qn);
      if (cos > best) {
        best = cos;
        best_i = i;
      }
    }
    CHECK_INT(llm_vecindex_search(ix, scope, q, &id, &sim), 1);
    CHECK_INT(id, 1000 + best_i);
    CHECK(fabs(sim - best) < 1e-4);
  }
  /* a row found as itself has similarity 1 */
  CHECK_INT(llm_vecindex_search(ix, 2, rows + 5 * D, &id, &sim), 1);
  CHECK_INT(id, 1005);
  CHECK(sim > 0.9999f);
  /* removal: the row is gone, the moved last row still found */
  CHECK_INT(llm_vecindex_remove(ix, 1005), 1);
  CHECK_INT(llm_vecindex_remove(ix, 1005), 0);
  CHECK_INT(llm_vecindex_search(ix, 2, rows + 5 * D, &id, &sim), 1);
  CHECK(id != 1005);
  CHECK_INT(llm_vecindex_search(ix, 2, rows + (N - 1) * D, &id, &sim), 1);
  CHECK_INT(id, 1000 + N - 1);
  CHECK_INT(llm_vecindex_search(ix, 99, q, &id, &sim), 0); /* unknown scope */
  printf("vector kernel: %s\n", llm_vec_kernel());
  llm_vecindex_free(ix);
  free(rows);
  CHECK(llm_vecindex_new(0) == NULL);
}

int main(void)
{
  test_sha256();
  test_lru();
  test_vecindex();
  return check_report("cache_parts");
}
