/* libFuzzer harness for the NDJSON splitter (src/ndjson.c).
 *
 * Input: two control bytes, then the body. Whole, chunked (sizes from the
 * control bytes, pausing or not) and byte-by-byte runs must give the same
 * lines, and with the default cap the same as a naive splitter written
 * from the contract in ndjson.h. Built by scripts/fuzz_sse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ndjson.h"
#include "sse_ref.h" /* ref_str helpers */

typedef struct sink { ref_str out; int stop; } sink;

static int on_line(void *ud, const char *line, size_t len)
{
  sink *k = ud;
  ref_put_escaped(&k->out, line, len);
  ref_puts(&k->out, "\n");
  return k->stop;
}

static char *run(const char *b, size_t n, unsigned chunk, unsigned seed, int pause, size_t max)
{
  llm_ndjson p;
  sink k = {{0}, pause};
  size_t a = 0;
  int rc = 0;
  char tail[32];
  ref_put(&k.out, "", 0);
  llm_ndjson_init(&p, on_line, &k, max);
  while (a < n && rc >= 0) {
    size_t len = chunk ? 1 + (seed = seed * 1103515245u + 12345u) % chunk : n;
    size_t end = n - a < len ? n : a + len;
    while (a < end) {
      size_t used = 0;
      rc = llm_ndjson_feed(&p, b + a, end - a, &used);
      if (used > end - a || (rc == 0 && used != end - a) || (rc == LLM_NDJSON_PAUSED && used == 0))
        abort();
      if (rc < 0)
        break;
      a += used;
    }
  }
  if (rc < 0) {
    if (llm_ndjson_feed(&p, "\n", 1, NULL) != rc || llm_ndjson_finish(&p) != rc)
      abort();
    snprintf(tail, sizeof tail, "!err=%d\n", rc);
  } else {
    snprintf(tail, sizeof tail, "!eof=%d\n", llm_ndjson_finish(&p));
  }
  ref_puts(&k.out, tail);
  llm_ndjson_free(&p);
  return k.out.p;
}

static int blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!strchr(" \t\r\n", s[i]) || s[i] == '\0')
      return 0;
  return 1;
}

/* The contract, naively: cut at LF, drop one CR before it, skip blank
 * lines, hand over an unterminated non-blank rest at the end. */
static char *oracle(const char *b, size_t n)
{
  ref_str out = {0};
  size_t start = 0;
  ref_put(&out, "", 0);
  for (size_t i = 0; i <= n; i++) {
    if (i < n && b[i] != '\n')
      continue;
    size_t len = i - start;
    if (len && b[start + len - 1] == '\r')
      len--;
    if (!blank(b + start, len)) {
      ref_put_escaped(&out, b + start, len);
      ref_puts(&out, "\n");
    }
    if (i == n)
      ref_puts(&out, i > start && !blank(b + start, i - start) ? "!eof=2\n" : "!eof=0\n");
    start = i + 1;
  }
  return out.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *body = (const char *)data + 2;
  size_t n, max;
  char *whole, *chunked, *bytes;
  if (size < 2)
    return 0;
  n = size - 2;
  max = (data[0] & 1) ? 1 + data[1] : 0;
  whole = run(body, n, 0, 0, 0, max);
  chunked = run(body, n, 1 + (data[0] >> 2), data[1], data[0] & 2, max);
  bytes = run(body, n, 1, 0, !(data[0] & 2), max);
  if (strcmp(whole, chunked) != 0 || strcmp(whole, bytes) != 0) {
    fprintf(stderr, "split variance:\nwhole:   %s\nchunked: %s\nbytes:   %s\n", whole, chunked, bytes);
    abort();
  }
  if (!max) {
    char *ref = oracle(body, n);
    if (strcmp(whole, ref) != 0) {
      fprintf(stderr, "oracle mismatch:\nsplitter: %s\noracle:   %s\n", whole, ref);
      abort();
    }
    free(ref);
  }
  free(whole);
  free(chunked);
  free(bytes);
  return 0;
}
