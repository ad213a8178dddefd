/* Throughput of the stream parsers, in MB/s of body fed:
 *   - an OpenAI chat-completion stream (tests/c/sse_transcripts.h repeated
 *     to 8 MiB), fed in 16 KiB pieces (curl's usual CURL_MAX_WRITE_SIZE)
 *     and in 256-byte pieces (small TLS records);
 *   - the Anthropic stream the same way;
 *   - one 1 MiB `data:` line, ASCII and mixed UTF-8, in 16 KiB pieces;
 *   - Ollama-style NDJSON through the line splitter;
 *   - memcpy of the same bytes, for scale.
 * Each figure is the median of REPS runs (BENCH_SSE_REPS, default 9; the
 * quick mode of scripts/bench_sse, which the test suite runs, uses 1).
 * Timings on a shared machine are noise for pass/fail: nothing is judged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ndjson.h"
#include "sse.h"
#include "sse_transcripts.h"

#define MAX_REPS 9
static int REPS = MAX_REPS;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t events, bytes_out;

static int on_event(void *ud, const llm_sse_event *ev)
{
  (void)ud;
  events++;
  bytes_out += ev->data_len + (unsigned char)ev->data[0];
  return 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
  (void)ud;
  events++;
  bytes_out += len + (unsigned char)line[0];
  return 0;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char *repeat(const char *unit, size_t ulen, size_t target, size_t *n)
{
  size_t k = target / ulen + 1;
  char *b = malloc(k * ulen);
  if (!b)
    abort();
  for (size_t i = 0; i < k; i++)
    memcpy(b + i * ulen, unit, ulen);
  *n = k * ulen;
  return b;
}

enum { SSE, NDJSON, MEMCPY };

/* Median MB/s of feeding body in pieces of `chunk` bytes. */
static double mbps(int kind, const char *body, size_t n, size_t chunk, size_t *ev_out)
{
  double t[MAX_REPS];
  char *sinkbuf = kind == MEMCPY ? malloc(chunk) : NULL;
  for (int r = 0; r < REPS; r++) {
    double t0;
    llm_sse s;
    llm_ndjson nd;
    events = 0;
    llm_sse_init(&s, on_event, NULL, 0);
    llm_ndjson_init(&nd, on_line, NULL, 0);
    t0 = now();
    for (size_t a = 0; a < n; a += chunk) {
      size_t len = n - a < chunk ? n - a : chunk;
      if (kind == SSE)
        llm_sse_feed(&s, body + a, len, NULL);
      else if (kind == NDJSON)
        llm_ndjson_feed(&nd, body + a, len, NULL);
      else {
        memcpy(sinkbuf, body + a, len);
        bytes_out += (unsigned char)sinkbuf[len - 1];
      }
    }
    if (kind == SSE)
      llm_sse_finish(&s);
    else if (kind == NDJSON)
      llm_ndjson_finish(&nd);
    t[r] = now() - t0;
    llm_sse_free(&s);
    llm_ndjson_free(&nd);
  }
  free(sinkbuf);
  qsort(t, REPS, sizeof t[0], cmp);
  if (ev_out)
    *ev_out = events;
  return (double)n / t[REPS / 2] / 1e6;
}

static void report(const char *what, int kind, const char *body, size_t n, size_t chunk)
{
  size_t ev = 0;
  double v = mbps(kind, body, n, chunk, &ev);
  printf("%-44s %6zu B pieces %9.0f MB/s  (%zu bytes, %zu events)\n", what, chunk, v, n, ev);
}

int main(void)
{
  const size_t MiB = 1 << 20;
  size_t n;
  char *b;
  const char *reps = getenv("BENCH_SSE_REPS");

  if (reps && atoi(reps) >= 1 && atoi(reps) <= MAX_REPS)
    REPS = atoi(reps);

  b = repeat(openai_wire, sizeof openai_wire - 1, 8 * MiB, &n);
  report("openai stream, sse", SSE, b, n, 16384);
  report("openai stream, sse", SSE, b, n, 256);
  report("openai stream, memcpy (scale)", MEMCPY, b, n, 16384);
  free(b);

  b = repeat(anthropic_wire, sizeof anthropic_wire - 1, 8 * MiB, &n);
  report("anthropic stream, sse", SSE, b, n, 16384);
  free(b);

  {
    static const char ascii[] = "abcdefghijklmnop", mixed[] = "abcd\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80xyz";
    const char *units[2] = {ascii, mixed};
    const char *names[2] = {"1 MiB data line, ASCII, sse", "1 MiB data line, mixed UTF-8, sse"};
    for (int u = 0; u < 2; u++) {
      size_t len = 6 + MiB + 2;
      char *line = malloc(len);
      if (!line)
        abort();
      memcpy(line, "data: ", 6);
      for (size_t i = 0; i < MiB; i += 16)
        memcpy(line + 6 + i, units[u], 16);
      memcpy(line + 6 + MiB, "\n\n", 2);
      report(names[u], SSE, line, len, 16384);
      free(line);
    }
  }

  {
    static const char ollama[] =
      "{\"model\":\"llama3.2\",\"created_at\":\"2026-11-02T10:00:00.123456789Z\","
      "\"message\":{\"role\":\"assistant\",\"content\":\" token\"},\"done\":false}\n";
    b = repeat(ollama, sizeof ollama - 1, 8 * MiB, &n);
    report("ollama ndjson, ndjson", NDJSON, b, n, 16384);
    free(b);
  }
  return bytes_out == 42; /* keeps the work observable */
}
