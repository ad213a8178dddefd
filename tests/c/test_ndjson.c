/* The NDJSON line splitter (RELIABILITY.md item 29): objects split across
 * chunks or packed into one, CRLF, blank lines, the size cap, pausing.
 * Each case is fed whole, byte by byte, cut at every offset (and every
 * pair when short) and at random, with and without pausing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ndjson.h"
#include "sse_ref.h" /* ref_str and its escaping helpers */

typedef struct sink {
  ref_str out;
  int stop;
} sink;

static int on_line(void *ud, const char *line, size_t len)
{
  sink *k = ud;
  ref_put_escaped(&k->out, line, len);
  ref_puts(&k->out, "\n");
  return k->stop;
}

static char *run(const char *body, size_t n, const size_t *cuts, size_t ncuts, int pause,
                 size_t max, size_t chunk, size_t *work)
{
  llm_ndjson p;
  sink k;
  size_t a = 0;
  int rc = 0;
  char line[64];
  memset(&k, 0, sizeof k);
  k.stop = pause;
  ref_put(&k.out, "", 0);
  llm_ndjson_init(&p, on_line, &k, max);
  for (size_t c = 0; rc >= 0 && a < n; c++) {
    size_t b = chunk ? (n - a < chunk ? n : a + chunk) : c < ncuts ? cuts[c] : n;
    while (a < b) {
      size_t used = SIZE_MAX;
      rc = llm_ndjson_feed(&p, body + a, b - a, &used);
      if (used > b - a || (rc == LLM_NDJSON_OK && used != b - a) ||
          (rc == LLM_NDJSON_PAUSED && used == 0)) {
        ref_puts(&k.out, "!bad-consumed\n");
        rc = -100;
      }
      if (rc < 0)
        break;
      a += used;
    }
  }
  if (rc < 0) {
    snprintf(line, sizeof line, "!err=%d\n", rc);
    ref_puts(&k.out, line);
    if (rc != -100 && (llm_ndjson_feed(&p, "{}\n", 3, NULL) != rc || llm_ndjson_finish(&p) != rc))
      ref_puts(&k.out, "!not-sticky\n");
  } else {
    snprintf(line, sizeof line, "!eof=%d\n", llm_ndjson_finish(&p));
    ref_puts(&k.out, line);
  }
  if (work)
    *work = llm_ndjson_work(&p);
  llm_ndjson_free(&p);
  llm_ndjson_free(&p); /* twice is harmless */
  return k.out.p;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int same(const char *name, const char *mode, const char *got, const char *want)
{
  if (strcmp(got, want) == 0)
    return 1;
  fprintf(stderr, "case %s (%s):\n  got:  %s\n  want: %s\n", name, mode, got, want);
  return 0;
}

static void check_case(const char *name, const char *body, size_t n, const char *want, size_t max)
{
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  char *got;
  int ok;
  if (!cuts)
    abort();
  for (int pause = 0; pause <= 1; pause++) {
    got = run(body, n, NULL, 0, pause, max, 0, NULL);
    CHECK(same(name, "whole", got, want));
    free(got);
    got = run(body, n, NULL, 0, pause, max, 1, NULL);
    CHECK(same(name, "byte by byte", got, want));
    free(got);
  }
  ok = 1;
  for (size_t i = 1; i < n && ok; i++) {
    got = run(body, n, &i, 1, (int)(i & 1), max, 0, NULL);
    ok = same(name, "one cut", got, want);
    free(got);
  }
  CHECK(ok);
  if (n <= 120) {
    ok = 1;
    for (size_t i = 1; i < n && ok; i++)
      for (size_t j = i + 1; j < n && ok; j++) {
        size_t two[2] = {i, j};
        got = run(body, n, two, 2, (int)((i + j) & 1), max, 0, NULL);
        ok = same(name, "two cuts", got, want);
        free(got);
      }
    CHECK(ok);
  }
  ok = 1;
  for (int r = 0; r < 16 && ok; r++) {
    size_t k = 0, at = 0;
    while (n > 1) {
      at += 1 + rng() % (n / 4 + 1);
      if (at >= n)
        break;
      cuts[k++] = at;
    }
    got = run(body, n, cuts, k, r & 1, max, 0, NULL);
    ok = same(name, "random cuts", got, want);
    free(got);
  }
  CHECK(ok);
  free(cuts);
}

typedef struct nd_case {
  const char *name, *body;
  size_t len;
  const char *want;
} nd_case;

#define CASE(name, body, want) {name, body, sizeof(body) - 1, want}

static const nd_case cases[] = {
  CASE("one object", "{\"a\":1}\n", "{\"a\":1}\n!eof=0\n"),
  CASE("packed", "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n!eof=0\n"),
  CASE("crlf", "{\"a\":1}\r\n{\"b\":2}\r\n", "{\"a\":1}\n{\"b\":2}\n!eof=0\n"),
  CASE("blank lines", "\n\n{\"a\":1}\n \n\t\r\n\r\n{\"b\":2}\n\n", "{\"a\":1}\n{\"b\":2}\n!eof=0\n"),
  CASE("unterminated last line", "{\"a\":1}\n{\"b\":2}", "{\"a\":1}\n{\"b\":2}\n!eof=2\n"),
  CASE("cut-off object", "{\"a\":1}\n{\"b\":", "{\"a\":1}\n{\"b\":\n!eof=2\n"),
  CASE("blank tail", "{\"a\":1}\n  \r", "{\"a\":1}\n!eof=0\n"),
  CASE("lone cr inside a line", "{\"a\":1}\r{\"b\":2}\n", "{\"a\":1}\\r{\"b\":2}\n!eof=0\n"),
  CASE("only one cr dropped", "{}\r\r\n", "{}\\r\n!eof=0\n"),
  CASE("spaces kept", "  {\"a\": 1}  \n", "  {\"a\": 1}  \n!eof=0\n"),
  CASE("utf-8 and nul passed through", "{\"t\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}\n\0\n",
       "{\"t\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}\n\\0\n!eof=0\n"),
  CASE("error line", "{\"error\":\"model 'nope' not found\"}\n", "{\"error\":\"model 'nope' not found\"}\n!eof=0\n"),
  CASE("empty body", "", "!eof=0\n"),
};

/* Ollama /api/chat, from the field list in RELIABILITY.md §C.2. */
static const char *const ollama_lines[] = {
  "{\"model\":\"llama3.2\",\"created_at\":\"2026-11-02T10:00:00.1Z\",\"message\":{\"role\":\"assistant\","
  "\"content\":\"The\"},\"done\":false}",
  "{\"model\":\"llama3.2\",\"created_at\":\"2026-11-02T10:00:00.2Z\",\"message\":{\"role\":\"assistant\","
  "\"content\":\" sky\"},\"done\":false}",
  "{\"model\":\"llama3.2\",\"created_at\":\"2026-11-02T10:00:00.3Z\",\"message\":{\"role\":\"assistant\","
  "\"content\":\" is blue \xE2\x98\x80\"},\"done\":false}",
  "{\"model\":\"llama3.2\",\"created_at\":\"2026-11-02T10:00:00.4Z\",\"message\":{\"role\":\"assistant\","
  "\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":4883583458,"
  "\"load_duration\":1334875,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,"
  "\"eval_count\":3,\"eval_duration\":4535599000}",
};

static void test_cases(void)
{
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(cases[i].name, cases[i].body, cases[i].len, cases[i].want, 0);
}

static void test_ollama(void)
{
  ref_str body = {0}, want = {0};
  ref_put(&body, "", 0);
  ref_put(&want, "", 0);
  for (size_t i = 0; i < sizeof ollama_lines / sizeof ollama_lines[0]; i++) {
    ref_puts(&body, ollama_lines[i]);
    ref_puts(&body, "\n");
    ref_puts(&want, ollama_lines[i]);
    ref_puts(&want, "\n");
  }
  ref_puts(&want, "!eof=0\n");
  check_case("ollama", body.p, body.len, want.p, 0);
  free(body.p);
  free(want.p);
}

static void test_pause_offsets(void)
{
  static const char body[] = "{\"a\":1}\r\n\n{\"b\":2}\n";
  llm_ndjson p;
  sink k;
  size_t used;
  memset(&k, 0, sizeof k);
  k.stop = 1;
  llm_ndjson_init(&p, on_line, &k, 0);
  CHECK_INT(llm_ndjson_feed(&p, body, sizeof body - 1, &used), LLM_NDJSON_PAUSED);
  CHECK_INT(used, 9); /* just past the first LF */
  CHECK_INT(llm_ndjson_feed(&p, body + 9, sizeof body - 10, &used), LLM_NDJSON_PAUSED);
  CHECK_INT(used, 9); /* the blank line was skipped, not reported */
  CHECK_INT(llm_ndjson_finish(&p), LLM_NDJSON_OK);
  CHECK_STR(k.out.p, "{\"a\":1}\n{\"b\":2}\n");
  llm_ndjson_free(&p);
  free(k.out.p);
}

static void test_caps(void)
{
  enum { MAX = 64 };
  char body[256];
  memset(body, 'x', sizeof body);
  body[MAX] = '\n'; /* a line of exactly MAX bytes */
  check_case("line at cap", body, MAX + 1,
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n!eof=0\n", MAX);
  body[MAX] = 'x';
  body[MAX + 1] = '\n';
  check_case("line over cap", body, MAX + 2, "!err=-1\n", MAX);
  body[MAX + 1] = 'x';
  memcpy(body, "{}\n", 3); /* a line before the error still arrives */
  check_case("unterminated over cap", body, MAX + 4, "{}\n!err=-1\n", MAX);
  CHECK(strcmp(llm_ndjson_strerror(LLM_NDJSON_ETOOBIG), "NDJSON line too large") == 0);
  {
    llm_ndjson p;
    size_t used = 99;
    llm_ndjson_init(&p, on_line, NULL, 0);
    CHECK_INT(llm_ndjson_feed(&p, NULL, 0, &used), LLM_NDJSON_OK); /* nothing to feed */
    CHECK_INT(used, 0);
    CHECK_INT(llm_ndjson_finish(&p), LLM_NDJSON_OK);
    llm_ndjson_free(&p);
  }
}

/* A 1 MiB line, in every chunk size, costs linear work (counted). */
static void test_big_line(void)
{
  const size_t n = 1 << 20; /* both lines end just below a power of two */
  size_t chunks[] = {1, 7, 4096, 0}, w1 = 0, w2 = 0;
  char *body = malloc(2 * n);
  if (!body)
    abort();
  memset(body, 'y', 2 * n);
  body[0] = '"';
  body[n - 2] = '"';
  body[n - 1] = '\n';
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    size_t work;
    char *got = run(body, n, NULL, 0, 0, 0, chunks[c], &work);
    CHECK(strlen(got) == n + 7 && memcmp(got, body, n - 1) == 0); /* line LF !eof=0 LF */
    CHECK(work <= 6 * n); /* scan, copy, hand over, and at most 2n of growth */
    if (chunks[c] == 1)
      w1 = work;
    free(got);
  }
  body[n - 2] = 'y';
  body[n - 1] = 'y';
  body[2 * n - 2] = '"';
  body[2 * n - 1] = '\n';
  free(run(body, 2 * n, NULL, 0, 0, 0, 1, &w2));
  /* linear: about 2 (doubling growth puts it anywhere in 1.6..2.4);
   * quadratic work would give 4 */
  if (!(w2 >= w1 * 16 / 10 && w2 <= w1 * 24 / 10))
    fprintf(stderr, "work %zu for 1 MiB, %zu for 2 MiB\n", w1, w2);
  CHECK(w2 >= w1 * 16 / 10 && w2 <= w1 * 24 / 10);
  free(body);
}

int main(void)
{
  test_cases();
  test_ollama();
  test_pause_offsets();
  test_caps();
  test_big_line();
  return check_report("ndjson");
}
