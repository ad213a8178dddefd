/* libFuzzer harness for the SSE parser (src/sse.c).
 *
 * Input: two control bytes, then the body. The body is parsed whole, in
 * chunks whose sizes come from the control bytes (pausing after events or
 * not), and byte by byte; the three transcripts must be identical (split
 * invariance). With the default size cap the transcript must also equal
 * the naive spec-literal oracle's (tests/c/sse_ref.h). Sanitizers catch
 * memory errors and undefined behaviour. Built by scripts/fuzz_sse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sse.h"
#include "sse_ref.h"

typedef struct sink { ref_str out; int stop; } sink;

static int on_event(void *ud, const llm_sse_event *ev)
{
  sink *k = ud;
  sse_ref_event(&k->out, ev->type, ev->type_len, ev->id, ev->id_len, ev->retry_ms,
                ev->data, ev->data_len);
  if (ev->type[ev->type_len] || ev->data[ev->data_len] || ev->id[ev->id_len])
    abort();
  return k->stop;
}

/* chunk == 0: whole; otherwise sizes cycle through 1..chunk using seed. */
static char *run(const char *b, size_t n, unsigned chunk, unsigned seed, int pause, size_t max)
{
  llm_sse p;
  sink k = {{0}, pause};
  size_t a = 0;
  int rc = 0;
  char tail[32];
  ref_put(&k.out, "", 0);
  llm_sse_init(&p, on_event, &k, max);
  while (a < n && rc >= 0) {
    size_t len = chunk ? 1 + (seed = seed * 1103515245u + 12345u) % chunk : n;
    size_t end = n - a < len ? n : a + len;
    while (a < end) {
      size_t used = 0;
      rc = llm_sse_feed(&p, b + a, end - a, &used);
      if (used > end - a || (rc == 0 && used != end - a) || (rc == LLM_SSE_PAUSED && used == 0))
        abort(); /* broken consumed contract */
      if (rc < 0)
        break;
      a += used;
    }
  }
  if (rc < 0) {
    if (llm_sse_feed(&p, "\n", 1, NULL) != rc || llm_sse_finish(&p) != rc)
      abort(); /* errors must be sticky */
    snprintf(tail, sizeof tail, "!err=%d\n", rc);
  } else {
    snprintf(tail, sizeof tail, "!eof=%d\n", llm_sse_finish(&p));
  }
  ref_puts(&k.out, tail);
  llm_sse_free(&p);
  return k.out.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *body = (const char *)data + 2;
  size_t n, max;
  char *whole, *chunked, *bytes;
  if (size < 2)
    return 0;
  n = size - 2;
  /* a small cap now and then, to exercise the error paths */
  max = (data[0] & 1) ? 16 + data[1] : 0;
  whole = run(body, n, 0, 0, 0, max);
  chunked = run(body, n, 1 + (data[0] >> 2), data[1], data[0] & 2, max);
  bytes = run(body, n, 1, 0, !(data[0] & 2), max);
  if (strcmp(whole, chunked) != 0 || strcmp(whole, bytes) != 0) {
    fprintf(stderr, "split variance:\nwhole:   %s\nchunked: %s\nbytes:   %s\n", whole, chunked, bytes);
    abort();
  }
  if (!max) {
    ref_str ref = {0};
    sse_ref_parse(body, n, &ref);
    if (strcmp(whole, ref.p) != 0) {
      fprintf(stderr, "oracle mismatch:\nparser: %s\noracle: %s\n", whole, ref.p);
      abort();
    }
    free(ref.p);
  }
  free(whole);
  free(chunked);
  free(bytes);
  return 0;
}
