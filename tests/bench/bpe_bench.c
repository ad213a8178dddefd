/* bpe_bench: one-thread throughput of llmrun's tokenizer on files, for the
 * benchmark scripts (scripts/bench_tokens, scripts/bench_tokens_device.sh).
 * Built from the engine sources alone and, outside sanitizer builds,
 * linked statically, so it runs on a machine without llmrun's libraries.
 *
 *   bpe_bench [-e ENCODING]... [-r REPEATS] FILE...
 *
 * For each file and encoding prints one line:
 *   FILE ENCODING BYTES TOKENS MB/S IDS_SHA256
 * where MB/s (10^6 bytes per second) is the best of REPEATS (default 5)
 * full encodes to ids, and IDS_SHA256 hashes the ids as little-endian
 * uint32, to compare with another tokenizer. The first use of an encoding
 * is timed apart: "load ENCODING MS" on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "bpe/bpe.h"

/* The hex SHA-256 of data (src/digest.h). */
static void sha256_hex_of(const void *data, size_t len, char out[65])
{
  uint8_t d[LLM_SHA256_SIZE];
  llm_sha256(data, len, d);
  llm_hex(d, sizeof d, out);
}

static double now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  size_t cap = 1 << 16, n = 0, k;
  char *buf = malloc(cap);
  if (!f || !buf) {
    if (f)
      fclose(f);
    free(buf);
    return NULL;
  }
  while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) {
      char *grown = realloc(buf, cap *= 2);
      if (!grown) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = grown;
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char **argv)
{
  const char *encs[8];
  int nenc = 0, repeats = 5, i;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "-e") == 0 && i + 1 < argc && nenc < 8)
      encs[nenc++] = argv[++i];
    else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
      repeats = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
    else {
      fprintf(stderr, "usage: bpe_bench [-e ENCODING]... [-r REPEATS] FILE...\n");
      return 2;
    }
  }
  if (nenc == 0)
    encs[nenc++] = "o200k_base";
  for (int k = 0; k < nenc; k++) {
    char err[256];
    double t0 = now();
    if (!llm_bpe_get(encs[k], err, sizeof err)) {
      fprintf(stderr, "bpe_bench: %s\n", err);
      return 2;
    }
    fprintf(stderr, "load %s %.3f ms\n", encs[k], (now() - t0) * 1e3);
  }
  for (; i < argc; i++) {
    size_t len;
    char *text = read_file(argv[i], &len);
    if (!text) {
      perror(argv[i]);
      return 1;
    }
    for (int k = 0; k < nenc; k++) {
      const llm_bpe *e = llm_bpe_get(encs[k], NULL, 0);
      llm_bpe_ids ids = {0};
      double best = 1e30;
      char hex[65];
      uint8_t *le;
      for (int r = 0; r < repeats; r++) {
        double t0 = now();
        ids.n = 0; /* reuse the array: time encoding, not allocation */
        if (llm_bpe_encode(e, text, len, 0, &ids) != 0) {
          fprintf(stderr, "bpe_bench: out of memory\n");
          return 1;
        }
        if (now() - t0 < best)
          best = now() - t0;
      }
      le = malloc(ids.n * 4 + 1);
      for (size_t t = 0; t < ids.n; t++)
        for (int b = 0; b < 4; b++)
          le[4 * t + b] = (uint8_t)(ids.ids[t] >> (8 * b));
      sha256_hex_of(le, ids.n * 4, hex);
      printf("%s %s %zu %zu %.2f %s\n", argv[i], encs[k], len, ids.n,
             best > 0 ? len / best / 1e6 : 0.0, hex);
      fflush(stdout);
      free(le);
      llm_bpe_ids_free(&ids);
    }
    free(text);
  }
  return 0;
}
