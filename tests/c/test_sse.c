/* The SSE parser engine: RELIABILITY.md items 15-25 and the behaviour the
 * WPT eventsource format-* tests check, each case fed whole, byte by byte,
 * split at every offset (and every pair of offsets when short), at random
 * cut points, and with the callback pausing after every event; every way
 * must give the same transcript. The naive oracle in sse_ref.h must agree
 * too, and then stands in for hand-written answers on random inputs. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "sse.h"
#include "sse_ref.h"
#include "sse_transcripts.h"

#define R "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */
#define BOM "\xEF\xBB\xBF"
#define PAIRS_MAX 120 /* inputs up to this size are also cut at every pair */

typedef struct sink {
  ref_str out;
  int stop, done_events;
  size_t max_data_cap;
  const llm_sse *p;
} sink;

static int on_event(void *ud, const llm_sse_event *ev)
{
  sink *k = ud;
  sse_ref_event(&k->out, ev->type, ev->type_len, ev->id, ev->id_len, ev->retry_ms,
                ev->data, ev->data_len);
  if (ev->type[ev->type_len] || ev->data[ev->data_len] || ev->id[ev->id_len])
    ref_puts(&k->out, "!not-nul-terminated\n");
  if (llm_sse_event_is_done(ev))
    k->done_events++;
  if (k->p && k->p->data.cap > k->max_data_cap)
    k->max_data_cap = k->p->data.cap;
  return k->stop;
}

/* Feeds body cut at the increasing offsets cuts[0..ncuts), then finishes.
 * With pause, the callback stops after every event and the rest of the
 * chunk is fed again from *consumed, as the HTTP layer does around
 * CURL_WRITEFUNC_PAUSE. Returns the transcript (caller frees). */
static char *run(const char *body, size_t n, const size_t *cuts, size_t ncuts, int pause,
                 size_t max, size_t *work)
{
  llm_sse p;
  sink k;
  size_t a = 0;
  int rc = 0;
  memset(&k, 0, sizeof k);
  k.stop = pause;
  k.p = &p;
  ref_put(&k.out, "", 0);
  llm_sse_init(&p, on_event, &k, max);
  for (size_t c = 0; c <= ncuts && rc >= 0; c++) {
    size_t b = c < ncuts ? cuts[c] : n;
    while (a < b) {
      size_t used = SIZE_MAX;
      rc = llm_sse_feed(&p, body + a, b - a, &used);
      if (used > b - a || (rc == LLM_SSE_OK && used != b - a) ||
          (rc == LLM_SSE_PAUSED && used == 0)) {
        ref_puts(&k.out, "!bad-consumed\n");
        rc = -100;
      }
      if (rc < 0)
        break;
      a += used;
    }
  }
  if (rc < 0) {
    char line[64];
    size_t used = 1;
    snprintf(line, sizeof line, "!err=%d\n", rc);
    ref_puts(&k.out, line);
    /* errors are sticky until reset */
    if (rc != -100 && (llm_sse_feed(&p, "\n\n", 2, &used) != rc || used != 0 ||
                       llm_sse_finish(&p) != rc))
      ref_puts(&k.out, "!not-sticky\n");
  } else {
    char line[32];
    snprintf(line, sizeof line, "!eof=%d\n", llm_sse_finish(&p));
    ref_puts(&k.out, line);
  }
  if (work)
    *work = llm_sse_work(&p);
  llm_sse_free(&p);
  return k.out.p;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random increasing cut points in (0, n). */
static size_t random_cuts(size_t n, size_t *cuts, size_t max_cuts)
{
  size_t k = 0, at = 0;
  while (k < max_cuts && n > 1) {
    at += 1 + rng() % (n / 4 + 1);
    if (at >= n)
      break;
    cuts[k++] = at;
  }
  return k;
}

static int same(const char *name, const char *mode, const char *got, const char *want)
{
  if (strcmp(got, want) == 0)
    return 1;
  fprintf(stderr, "case %s (%s):\n  got:  %s\n  want: %s\n", name, mode, got, want);
  return 0;
}

/* Every way of feeding one body must give `want`. */
static void check_case(const char *name, const char *body, size_t n, const char *want, size_t max)
{
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  int ok;
  char *got;
  if (!cuts)
    abort();

  if (!strstr(want, "!err=")) { /* the oracle knows no size cap */
    ref_str ref = {0};
    sse_ref_parse(body, n, &ref);
    CHECK(same(name, "oracle", ref.p, want));
    free(ref.p);
  }
  for (int pause = 0; pause <= 1; pause++) {
    got = run(body, n, NULL, 0, pause, max, NULL);
    CHECK(same(name, pause ? "whole, pausing" : "whole", got, want));
    free(got);
    for (size_t i = 0; i + 1 < n; i++)
      cuts[i] = i + 1;
    got = run(body, n, cuts, n ? n - 1 : 0, pause, max, NULL);
    CHECK(same(name, pause ? "byte by byte, pausing" : "byte by byte", got, want));
    free(got);
  }
  ok = 1;
  for (size_t i = 1; i < n && ok; i++) {
    got = run(body, n, &i, 1, (int)(i & 1), max, NULL);
    if (!same(name, "one cut", got, want)) {
      fprintf(stderr, "  cut at %zu\n", i);
      ok = 0;
    }
    free(got);
  }
  CHECK(ok);
  if (n <= PAIRS_MAX) {
    ok = 1;
    for (size_t i = 1; i < n && ok; i++)
      for (size_t j = i + 1; j < n && ok; j++) {
        size_t two[2] = {i, j};
        got = run(body, n, two, 2, (int)((i + j) & 1), max, NULL);
        if (!same(name, "two cuts", got, want)) {
          fprintf(stderr, "  cuts at %zu, %zu\n", i, j);
          ok = 0;
        }
        free(got);
      }
    CHECK(ok);
  }
  ok = 1;
  for (int r = 0; r < 16 && ok; r++) {
    size_t k = random_cuts(n, cuts, n);
    got = run(body, n, cuts, k, r & 1, max, NULL);
    ok = same(name, "random cuts", got, want);
    free(got);
  }
  CHECK(ok);
  free(cuts);
}

typedef struct sse_case {
  const char *name, *body;
  size_t len;
  const char *want;
} sse_case;

#define CASE(name, body, want) {name, body, sizeof(body) - 1, want}
#define EOF_OK "!eof=0\n"
#define EOF_CUT "!eof=2\n"

/* Hex escapes are closed with "" when a hex digit follows them. */
static const sse_case cases[] = {
  /* 15: line ends */
  CASE("lf", "data: a\ndata: b\n\nevent: t\ndata: c\n\n",
       "message||-1|a\\nb\nt||-1|c\n" EOF_OK),
  CASE("crlf", "data: a\r\ndata: b\r\n\r\nevent: t\r\ndata: c\r\n\r\n",
       "message||-1|a\\nb\nt||-1|c\n" EOF_OK),
  CASE("cr", "data: a\rdata: b\r\revent: t\rdata: c\r\r",
       "message||-1|a\\nb\nt||-1|c\n" EOF_OK),
  CASE("mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n", "message||-1|a\\nb\\nc\n" EOF_OK),
  CASE("cr cr is two breaks", "data:x\r\rdata:y\r\r", "message||-1|x\nmessage||-1|y\n" EOF_OK),
  CASE("lf cr is two breaks", "data:x\n\rdata:y\n\n", "message||-1|x\nmessage||-1|y\n" EOF_OK),
  CASE("extra blank lines", "\r\ndata:x\n\n\r\n\rdata:y\r\n\r\n", "message||-1|x\nmessage||-1|y\n" EOF_OK),
  /* 16: UTF-8 */
  CASE("2-byte", "data: caf\xC3\xA9\n\n", "message||-1|caf\xC3\xA9\n" EOF_OK),
  CASE("3-byte", "data: \xE2\x82\xAC\n\n", "message||-1|\xE2\x82\xAC\n" EOF_OK),
  CASE("4-byte", "data: \xF0\x9F\x98\x80!\n\n", "message||-1|\xF0\x9F\x98\x80!\n" EOF_OK),
  CASE("invalid byte", "data: a\xFF" "b\n\n", "message||-1|a" R "b\n" EOF_OK),
  /* Unicode 15 Table 3-8, the "maximal subpart" practice browsers follow */
  CASE("maximal subparts", "data:a\xF1\x80\x80\xE1\x80\xC2" "b\x80" "c\x80\xBF" "d\n\n",
       "message||-1|a" R R R "b" R "c" R R "d\n" EOF_OK),
  CASE("cut by lf", "data:\xE2\x82\n\n", "message||-1|" R "\n" EOF_OK),
  CASE("cut by crlf", "data:\xC3\r\n\r\n", "message||-1|" R "\n" EOF_OK),
  CASE("cut by ascii", "data:\xE2(x\n\n", "message||-1|" R "(x\n" EOF_OK),
  CASE("two leads", "data:\xC3\xC3\xA9\n\n", "message||-1|" R "\xC3\xA9\n" EOF_OK),
  CASE("surrogate", "data:\xED\xA0\x80\n\n", "message||-1|" R R R "\n" EOF_OK),
  CASE("overlong", "data:\xC0\xAF|\xE0\x80\xAF|\xF0\x80\x80\xAF\n\n",
       "message||-1|" R R "|" R R R "|" R R R R "\n" EOF_OK),
  CASE("above U+10FFFF", "data:\xF4\x90\x80\x80|\xF5|\xF4\x8F\xBF\xBF\n\n",
       "message||-1|" R R R R "|" R "|\xF4\x8F\xBF\xBF\n" EOF_OK),
  CASE("noncharacter kept", "data:\xEF\xBF\xBF\n\n", "message||-1|\xEF\xBF\xBF\n" EOF_OK),
  CASE("lone continuations", "data:\x80\x81\xBF\n\n", "message||-1|" R R R "\n" EOF_OK),
  CASE("utf-16le bom", "\xFF\xFE" "data:1\n\ndata:2\n\n", "message||-1|2\n" EOF_OK),
  CASE("utf-16be bom", "\xFE\xFF" "data:1\n\ndata:2\n\n", "message||-1|2\n" EOF_OK),
  CASE("utf-8 in field name", "d\xC3\xA1" "ta:x\n\ndata:y\n\n", "message||-1|y\n" EOF_OK),
  CASE("invalid event type", "event:\xFF\ndata:x\n\n", R "||-1|x\n" EOF_OK),
  /* 17: BOM (WPT format-bom, format-bom-2) */
  CASE("bom", BOM "data:1\n\n" BOM "data:2\n\ndata:3\n\n\n",
       "message||-1|1\nmessage||-1|3\n" EOF_OK),
  CASE("bom-2", BOM BOM "data:1\n\ndata:2\n\ndata:3\n\n\n",
       "message||-1|2\nmessage||-1|3\n" EOF_OK),
  CASE("bom only", BOM, EOF_OK),
  CASE("half a bom at eof", "\xEF\xBB", EOF_CUT),
  CASE("half a bom then data", "\xEF\xBB" "data:1\n\ndata:2\n\n", "message||-1|2\n" EOF_OK),
  CASE("bom-like char", "\xEF\xBB\x80" "data:1\n\ndata:2\n\n", "message||-1|2\n" EOF_OK),
  CASE("bom in value", "data:" BOM "x\n\n", "message||-1|" BOM "x\n" EOF_OK),
  CASE("bom then comment", BOM ":c\ndata:x\n\n", "message||-1|x\n" EOF_OK),
  /* 18: comments */
  CASE("comments only", ": ping\n\n: ping\n\n", EOF_OK),
  CASE("comment inside event", "data:a\n:x\ndata:b\n\n", "message||-1|a\\nb\n" EOF_OK),
  /* 19: one leading space (WPT format-leading-space) */
  CASE("no space", "data:x\n\n", "message||-1|x\n" EOF_OK),
  CASE("one space", "data: x\n\n", "message||-1|x\n" EOF_OK),
  CASE("two spaces", "data:  x\n\n", "message||-1| x\n" EOF_OK),
  CASE("leading-space", "data:\ttest\rdata: \ndata:test\n\n\n", "message||-1|\ttest\\n\\ntest\n" EOF_OK),
  CASE("colons in value", "data: a:b: c\n\n", "message||-1|a:b: c\n" EOF_OK),
  /* 20 */
  CASE("two data lines", "data: a\ndata: b\n\n", "message||-1|a\\nb\n" EOF_OK),
  /* 21: field parsing (WPT format-field-data, -unknown, -parsing, -id-null, -retry*) */
  CASE("field-data", "data:\n\ndata\ndata\n\ndata:test\n\n\n",
       "message||-1|\nmessage||-1|\\n\nmessage||-1|test\n" EOF_OK),
  CASE("case-sensitive", "Data:x\nDATA:y\n\n", EOF_OK),
  CASE("space before colon", "data :x\n\n", EOF_OK),
  CASE("field-unknown", "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
       "message||-1|test\\n\\ntest\n" EOF_OK),
  CASE("field-parsing",
       "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
       "message||-1|\\0\\n 2\\n1\\n3\\n\\n4\n" EOF_OK),
  CASE("id with nul", "id: a\0b\ndata: x\n\n", "message||-1|x\n" EOF_OK),
  CASE("field-id-null", "id:\0\0\ndata:1\n\nid:x\0\ndata:2\n\nid:\0x\ndata:3\n\nid:x\0x\ndata:4\n\nid: \0\ndata:5\n\n",
       "message||-1|1\nmessage||-1|2\nmessage||-1|3\nmessage||-1|4\nmessage||-1|5\n" EOF_OK),
  CASE("id with nul keeps old id", "id: 7\ndata:a\n\nid: 8\0\ndata:b\n\n", "message|7|-1|a\nmessage|7|-1|b\n" EOF_OK),
  CASE("retry abc", "retry: abc\ndata:x\n\n", "message||-1|x\n" EOF_OK),
  CASE("field-retry", "retry:02000\ndata:x\n\n\n", "message||2000|x\n" EOF_OK),
  CASE("field-retry-bogus", "retry:2000\nretry:1000x\ndata:x\n\n\n", "message||2000|x\n" EOF_OK),
  CASE("field-retry-empty", "retry\ndata:test\n\n\n", "message||-1|test\n" EOF_OK),
  CASE("retry spaces", "retry: 100\ndata:x\n\nretry:  200\ndata:y\n\nretry: 300 \ndata:z\n\n",
       "message||100|x\nmessage||100|y\nmessage||100|z\n" EOF_OK),
  CASE("retry saturates", "retry: 99999999999999999999999\ndata:x\n\n", "message||9223372036854775807|x\n" EOF_OK),
  CASE("retry negative", "retry: -5\ndata:x\n\n", "message||-1|x\n" EOF_OK),
  CASE("retry applies at once", "retry: 5\n\ndata:x\n\n", "message||5|x\n" EOF_OK),
  CASE("field-event", "event:test\ndata:x\n\ndata:x\n\n\n", "test||-1|x\nmessage||-1|x\n" EOF_OK),
  CASE("field-event-empty", "event: \ndata:data\n\n\n", "message||-1|data\n" EOF_OK),
  CASE("last event field wins", "event: a\nevent: b\ndata: x\n\n", "b||-1|x\n" EOF_OK),
  CASE("event without colon", "event:a\nevent\ndata:x\n\n", "message||-1|x\n" EOF_OK),
  CASE("type reset by blank line", "event: a\n\ndata: x\n\n", "message||-1|x\n" EOF_OK),
  CASE("field-id", "id: \xE2\x80\xA6\ndata: hello\n\n", "message|\xE2\x80\xA6|-1|hello\n" EOF_OK),
  CASE("id persists", "id: 1\ndata: 1\n\ndata:2\n\n", "message|1|-1|1\nmessage|1|-1|2\n" EOF_OK),
  CASE("id changes", "id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
       "message|1|-1|1\nmessage|2|-1|2\nmessage|2|-1|3\n" EOF_OK),
  CASE("id resets", "id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
       "message|1|-1|1\nmessage||-1|2\nmessage||-1|3\n" EOF_OK),
  CASE("id resets without colon", "id: 1\ndata: 1\n\nid\ndata:2\n\n", "message|1|-1|1\nmessage||-1|2\n" EOF_OK),
  CASE("id set by empty event", "id: 1\n\ndata: x\n\n", "message|1|-1|x\n" EOF_OK),
  CASE("newlines", "data:test\r\ndata\ndata:test\r\n\r\n", "message||-1|test\\n\\ntest\n" EOF_OK),
  CASE("null-character", "data:\0\n\n\n\n", "message||-1|\\0\n" EOF_OK),
  CASE("utf-8", "data:ok\xE2\x80\xA6\n\n\n", "message||-1|ok\xE2\x80\xA6\n" EOF_OK),
  CASE("data-before-final-empty-line", "retry:1000\ndata:test1\n\nid:test\ndata:test2",
       "message||1000|test1\n" EOF_CUT),
  /* 22: empty data buffer */
  CASE("blank lines only", "\n\n\r\n\r\r", EOF_OK),
  CASE("event without data", "event: x\n\n", EOF_OK),
  /* 23: end of stream */
  CASE("eof after a field", "data: a\n\ndata: b\n", "message||-1|a\n" EOF_CUT),
  CASE("eof mid-line", "data: a\n\ndata: b", "message||-1|a\n" EOF_CUT),
  CASE("eof mid-comment", "data: a\n\n: ping", "message||-1|a\n" EOF_OK),
  CASE("eof clean", "data: a\n\n", "message||-1|a\n" EOF_OK),
  CASE("eof after cr", "data: a\r\r", "message||-1|a\n" EOF_OK),
  CASE("eof mid-utf8", "data: a\n\n\xC3", "message||-1|a\n" EOF_CUT),
  CASE("eof mid-utf8 comment", "data: a\n\n:\xC3", "message||-1|a\n" EOF_OK),
  CASE("eof mid unknown field", "data: a\n\nfoo", "message||-1|a\n" EOF_CUT),
  CASE("eof after unknown field", "data: a\n\nfoo\n", "message||-1|a\n" EOF_OK),
  CASE("empty body", "", EOF_OK),
  /* 24 */
  CASE("done", "data: [DONE]\n\n", "message||-1|[DONE]\n" EOF_OK),
  CASE("nul in data", "data: a\0b\n\n", "message||-1|a\\0b\n" EOF_OK),
};

static void test_cases(void)
{
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(cases[i].name, cases[i].body, cases[i].len, cases[i].want, 0);
}

/* WPT format-comments: long comments between data lines. */
static void test_comment_fest(void)
{
  ref_str body = {0};
  char x[2049];
  memset(x, 'x', 2048);
  x[2048] = '\0';
  ref_put(&body, "data:1\r:\0\n:\r\ndata:2\n:", 21);
  ref_puts(&body, x);
  ref_puts(&body, "\rdata:3\n:data:fail\r:");
  ref_puts(&body, x);
  ref_puts(&body, "\ndata:4\n\n");
  check_case("comments", body.p, body.len, "message||-1|1\\n2\\n3\\n4\n" EOF_OK, 0);
  free(body.p);
}

/* 15 at scale: a transcript with its line ends rewritten. */
static void rewrite_eols(const char *in, size_t n, const char *eol, ref_str *out)
{
  for (size_t i = 0; i < n; i++) {
    if (in[i] == '\n')
      ref_puts(out, eol);
    else
      ref_put(out, in + i, 1);
  }
}

static void test_openai(void)
{
  ref_str want = {0};
  const char *eols[] = {"\n", "\r\n", "\r"};
  size_t np = sizeof openai_payloads / sizeof openai_payloads[0];
  ref_put(&want, "", 0);
  for (size_t i = 0; i < np; i++)
    sse_ref_event(&want, "message", 7, "", 0, -1, openai_payloads[i], strlen(openai_payloads[i]));
  ref_puts(&want, EOF_OK);
  for (int e = 0; e < 3; e++) {
    ref_str body = {0};
    rewrite_eols(openai_wire, sizeof openai_wire - 1, eols[e], &body);
    check_case(e == 0 ? "openai" : e == 1 ? "openai crlf" : "openai cr", body.p, body.len, want.p, 0);
    free(body.p);
  }
  /* [DONE] is the last event and the only one that looks like it */
  {
    llm_sse p;
    sink k;
    memset(&k, 0, sizeof k);
    llm_sse_init(&p, on_event, &k, 0);
    CHECK_INT(llm_sse_feed(&p, openai_wire, sizeof openai_wire - 1, NULL), LLM_SSE_OK);
    CHECK_INT(llm_sse_finish(&p), LLM_SSE_OK);
    CHECK_INT(k.done_events, 1);
    CHECK(strstr(k.out.p, "|[DONE]\n") == k.out.p + k.out.len - 8);
    llm_sse_free(&p);
    free(k.out.p);
  }
  /* cut before the final blank line: [DONE] is lost and EOF says so */
  {
    ref_str cut = {0};
    char *got;
    size_t n = sizeof openai_wire - 2; /* drop the last LF */
    ref_put(&want, "", 0);
    want.len -= strlen("message||-1|[DONE]\n" EOF_OK);
    ref_put(&want, EOF_CUT, strlen(EOF_CUT));
    ref_put(&cut, openai_wire, n);
    got = run(cut.p, cut.len, NULL, 0, 0, 0, NULL);
    CHECK(same("openai truncated", "whole", got, want.p));
    free(got);
    free(cut.p);
  }
  free(want.p);
}

static void test_anthropic(void)
{
  ref_str want = {0};
  size_t ne = sizeof anthropic_events / sizeof anthropic_events[0];
  ref_put(&want, "", 0);
  for (size_t i = 0; i < ne; i++)
    sse_ref_event(&want, anthropic_events[i][0], strlen(anthropic_events[i][0]), "", 0, -1,
                  anthropic_events[i][1], strlen(anthropic_events[i][1]));
  ref_puts(&want, EOF_OK);
  check_case("anthropic", anthropic_wire, sizeof anthropic_wire - 1, want.p, 0);
  free(want.p);
  check_case("anthropic error", anthropic_error_wire, sizeof anthropic_error_wire - 1,
             "message_start||-1|{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01A\",\"type\":\"message\","
             "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":9,"
             "\"output_tokens\":1}}}\n"
             "content_block_delta||-1|{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
             "\"text_delta\",\"text\":\"Par\"}}\n"
             "error||-1|{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": "
             "\"Overloaded\"}}\n" EOF_OK, 0);
}

/* The exact back-pressure contract: where a pause leaves the input. */
static void test_pause_offsets(void)
{
  static const char lf[] = "data:a\n\ndata:b\n\n", crlf[] = "data:a\r\n\r\ndata:b\r\n\r\n";
  llm_sse p;
  sink k;
  size_t used;
  memset(&k, 0, sizeof k);
  k.stop = 1;
  llm_sse_init(&p, on_event, &k, 0);
  CHECK_INT(llm_sse_feed(&p, lf, sizeof lf - 1, &used), LLM_SSE_PAUSED);
  CHECK_INT(used, 8); /* just past the blank line's LF */
  CHECK_INT(llm_sse_feed(&p, lf + 8, sizeof lf - 9, &used), LLM_SSE_PAUSED);
  CHECK_INT(used, 8);
  CHECK_INT(llm_sse_finish(&p), LLM_SSE_OK);
  CHECK_INT(llm_sse_feed(&p, crlf, sizeof crlf - 1, &used), LLM_SSE_PAUSED);
  CHECK_INT(used, 9); /* the CR dispatched; its LF is skipped next time */
  CHECK_INT(llm_sse_feed(&p, crlf + 9, sizeof crlf - 10, &used), LLM_SSE_PAUSED);
  CHECK_INT(used, 10);
  CHECK_INT(llm_sse_feed(&p, crlf + 19, 1, &used), LLM_SSE_OK);
  CHECK_INT(used, 1);
  CHECK_STR(k.out.p, "message||-1|a\nmessage||-1|b\nmessage||-1|a\nmessage||-1|b\n");
  llm_sse_free(&p);
  free(k.out.p);
}

/* The write callback documented in sse.h, against a stand-in for curl:
 * a piece answered with PAUSE is delivered again from its first byte,
 * possibly cut smaller, before anything new. */
#define FAKE_WRITEFUNC_PAUSE ((size_t)-2)
typedef struct xfer { llm_sse sse; size_t skip; } xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
  xfer *x = ud;
  size_t len = size * nmemb, skip = x->skip < len ? x->skip : len, used;
  int rc;
  x->skip -= skip;
  rc = llm_sse_feed(&x->sse, ptr + skip, len - skip, &used);
  if (rc == LLM_SSE_PAUSED) {
    x->skip = skip + used;
    return FAKE_WRITEFUNC_PAUSE;
  }
  return rc < 0 ? 0 : len;
}

static void test_curl_pause_pattern(void)
{
  ref_str want = {0};
  int ok = 1;
  sse_ref_parse(anthropic_wire, sizeof anthropic_wire - 1, &want);
  for (int r = 0; r < 50 && ok; r++) {
    xfer x;
    sink k;
    size_t n = sizeof anthropic_wire - 1, pos = 0, held_end = 0, pauses = 0;
    char *body = malloc(n);
    if (!body)
      abort();
    memcpy(body, anthropic_wire, n); /* curl's buffer is writable */
    memset(&k, 0, sizeof k);
    k.stop = 1;
    x.skip = 0;
    llm_sse_init(&x.sse, on_event, &k, 0);
    while (pos < n) {
      size_t limit = held_end > pos ? held_end : n;
      size_t piece = 1 + rng() % 300;
      size_t rc;
      if (piece > limit - pos)
        piece = limit - pos;
      rc = on_body(body + pos, 1, piece, &x);
      if (rc == FAKE_WRITEFUNC_PAUSE) {
        pauses++;
        if (held_end < pos + piece)
          held_end = pos + piece; /* kept by curl, delivered again */
      } else if (rc == piece) {
        pos += piece;
      } else {
        ok = 0;
        break;
      }
    }
    {
      char tail[32];
      snprintf(tail, sizeof tail, "!eof=%d\n", llm_sse_finish(&x.sse));
      ref_puts(&k.out, tail);
    }
    ok = ok && same("curl pause pattern", "redelivery", k.out.p, want.p) && pauses >= 8;
    llm_sse_free(&x.sse);
    free(k.out.p);
    free(body);
  }
  CHECK(ok);
  free(want.p);
}

static void test_last_event_id_and_reset(void)
{
  llm_sse p;
  sink k;
  size_t len;
  memset(&k, 0, sizeof k);
  llm_sse_init(&p, on_event, &k, 0);
  CHECK_STR(llm_sse_last_event_id(&p, &len), "");
  CHECK_INT(llm_sse_retry(&p), -1);
  len = 99;
  CHECK_INT(llm_sse_feed(&p, NULL, 0, &len), LLM_SSE_OK); /* nothing to feed */
  CHECK_INT(len, 0);
  llm_sse_feed(&p, "id: 5\nretry: 300\ndata:x\n\nid: 6\n", 31, NULL);
  CHECK_STR(llm_sse_last_event_id(&p, &len), "5");
  CHECK_INT(len, 1);
  CHECK_INT(llm_sse_finish(&p), LLM_SSE_TRUNCATED); /* "id: 6" had no blank line */
  CHECK_STR(llm_sse_last_event_id(&p, NULL), "5");
  /* a new body (a reconnect) keeps the id and retry, re-arms the BOM */
  llm_sse_feed(&p, BOM "data:y\n\n", 11, NULL);
  CHECK_INT(llm_sse_finish(&p), LLM_SSE_OK);
  CHECK_STR(k.out.p, "message|5|300|x\nmessage|5|300|y\n");
  llm_sse_reset(&p);
  CHECK_STR(llm_sse_last_event_id(&p, NULL), "");
  CHECK_INT(llm_sse_retry(&p), -1);
  llm_sse_free(&p);
  llm_sse_free(&p); /* twice is harmless */
  free(k.out.p);
}

static int type_len_event(void *ud, const llm_sse_event *ev)
{
  *(int *)ud = ev->type_len == 100000 && ev->type[99999] == 'e' && strcmp(ev->data, "x") == 0;
  return 0;
}

static void test_caps(void)
{
  enum { MAX = 256 };
  char body[1024];
  char *got;
  size_t n;
  /* a line of exactly MAX bytes passes, MAX + 1 fails, in every chunking */
  memcpy(body, "data:", 5);
  memset(body + 5, 'x', MAX - 5);
  memcpy(body + MAX, "\n\n", 2);
  got = run(body, MAX + 2, NULL, 0, 0, MAX, NULL);
  CHECK(strncmp(got, "message||-1|xxxx", 16) == 0 && strstr(got, EOF_OK));
  free(got);
  memcpy(body, "data:", 5);
  memset(body + 5, 'x', MAX - 4);
  memcpy(body + MAX + 1, "\n\n", 2);
  check_case("line over cap", body, MAX + 3, "!err=-1\n", MAX);
  /* a long comment is capped the same way, though it is never stored */
  memset(body, ':', MAX + 1);
  memcpy(body + MAX + 1, "\n", 1);
  check_case("comment over cap", body, MAX + 2, "!err=-1\n", MAX);
  /* an event is capped across lines: 4 lines of 64 fill it, a 5th fails */
  n = 0;
  memcpy(body + n, "data:a\n\n", 8); /* an event before the error still arrives */
  n += 8;
  for (int i = 0; i < 5; i++) {
    memcpy(body + n, "data:", 5);
    memset(body + n + 5, 'y', 63);
    body[n + 68] = '\n';
    n += 69;
  }
  body[n++] = '\n';
  check_case("event over cap", body, n, "message||-1|a\n!err=-1\n", MAX);
  /* the cap holds for what UTF-8 repair adds: U+FFFD is 3 bytes for 1 */
  check_case("replacements over cap", "data:\xFF\xFF\xFF\xFF\xFF\xFF\n\n", 13, "!err=-1\n", 16);
  check_case("bad continuations over cap", "data:\xC3" "A\xC3" "A\xC3" "A\xC3" "A\xC3" "A\n\n", 17,
             "!err=-1\n", 16);
  check_case("split sequences over cap",
             "data:\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\ndata:\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\n\n", 28,
             "!err=-1\n", 16);
  check_case("line-end replacement over cap", "data:\xC3\xA9\xC3\ndata:\xC3\n\n", 17, "!err=-1\n", 8);
  /* id bytes before a NUL count against the cap in one piece or many
   * (found by fuzzing: fed whole, the NUL hid the "ab" before it) */
  check_case("id bytes before a nul", "id:\xFF\xFF\xFF\xFF\xFF" "ab\0\ndata:x\n\n", 20,
             "!err=-1\n", 16);
  /* a tiny cap counts the bytes held back as a possible BOM too */
  check_case("half a bom over a tiny cap", "\xEF\xBB" "x\n", 4, "!err=-1\n", 1);
  check_case("bom byte at a tiny cap", "\xEF\n\n", 3, EOF_OK, 1);
  CHECK(strcmp(llm_sse_strerror(LLM_SSE_ETOOBIG), "event stream line or event too large") == 0);
}

/* 25: a 1 MiB data line, in linear time (counted, not timed). */
static size_t big_line_work(size_t size, size_t chunk, int *ok_out, size_t *cap_out)
{
  static const char unit[] = "abcd\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80xyz"; /* 16 bytes */
  size_t n = size + 8, work;
  char *body = malloc(n), *got, *want;
  llm_sse p;
  sink k;
  if (!body)
    abort();
  memcpy(body, "data: ", 6);
  for (size_t i = 0; i < size; i += 16)
    memcpy(body + 6 + i, unit, 16);
  memcpy(body + 6 + size, "\n\n", 2);
  memset(&k, 0, sizeof k);
  k.p = &p;
  llm_sse_init(&p, on_event, &k, 0);
  for (size_t a = 0; a < n; a += chunk)
    llm_sse_feed(&p, body + a, n - a < chunk ? n - a : chunk, NULL);
  *ok_out = llm_sse_finish(&p) == LLM_SSE_OK;
  work = llm_sse_work(&p);
  *cap_out = k.max_data_cap;
  *ok_out = *ok_out && p.data.cap == 0; /* the big buffer was let go */
  llm_sse_free(&p);
  /* the transcript is exactly the payload */
  got = k.out.p;
  want = malloc(size + 32);
  if (!want)
    abort();
  memcpy(want, "message||-1|", 12);
  memcpy(want + 12, body + 6, size);
  memcpy(want + 12 + size, "\n", 2);
  *ok_out = *ok_out && strcmp(got, want) == 0;
  free(want);
  free(got);
  free(body);
  return work;
}

static void test_big_line(void)
{
  const size_t MiB = 1 << 20;
  size_t chunks[] = {1, 7, 4096, (size_t)-1 / 2};
  size_t w1, w2, cap;
  int ok;
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    size_t w = big_line_work(MiB, chunks[c], &ok, &cap);
    CHECK(ok);
    /* each byte: a scan for LF, one for CR, a UTF-8 check, a copy, plus
     * at most one more copy in all from doubling growth */
    if (w > 6 * (MiB + 8))
      fprintf(stderr, "chunk %zu: work %zu for %zu bytes\n", chunks[c], w, MiB);
    CHECK(w <= 6 * (MiB + 8));
    CHECK(cap <= 2 * MiB + 2); /* doubling never overshoots by more than 2x */
  }
  /* twice the input, twice the work, byte by byte (the worst chunking):
   * about 2, anywhere in 1.6..2.4 with doubling growth; quadratic work
   * would give 4 */
  w1 = big_line_work(MiB, 1, &ok, &cap);
  w2 = big_line_work(2 * MiB, 1, &ok, &cap);
  CHECK(ok);
  if (!(w2 >= w1 * 16 / 10 && w2 <= w1 * 24 / 10))
    fprintf(stderr, "work %zu for 1 MiB, %zu for 2 MiB\n", w1, w2);
  CHECK(w2 >= w1 * 16 / 10 && w2 <= w1 * 24 / 10);
}

/* A 1 MiB comment line costs no memory and linear work. */
static void test_big_comment(void)
{
  size_t n = (1 << 20) + 16;
  char *body = malloc(n);
  llm_sse p;
  sink k;
  if (!body)
    abort();
  memset(body, 'c', n);
  body[0] = ':';
  memcpy(body + n - 9, "\ndata:x\n\n", 9);
  memset(&k, 0, sizeof k);
  llm_sse_init(&p, on_event, &k, 0);
  for (size_t a = 0; a < n; a += 3)
    llm_sse_feed(&p, body + a, n - a < 3 ? n - a : 3, NULL);
  CHECK_INT(llm_sse_finish(&p), LLM_SSE_OK);
  CHECK_STR(k.out.p, "message||-1|x\n");
  CHECK(p.data.cap < 4096);
  CHECK(llm_sse_work(&p) <= 4 * n);
  llm_sse_free(&p);
  free(k.out.p);
  free(body);
}

/* A 100 KiB event type is delivered, then its buffer is let go. */
static void test_big_type(void)
{
  size_t n = 7 + 100000 + 9;
  char *body = malloc(n);
  llm_sse p;
  int ok;
  if (!body)
    abort();
  memcpy(body, "event: ", 7);
  memset(body + 7, 'e', 100000);
  memcpy(body + 7 + 100000, "\ndata:x\n\n", 9);
  llm_sse_init(&p, type_len_event, &ok, 0);
  ok = 0;
  CHECK_INT(llm_sse_feed(&p, body, n, NULL), LLM_SSE_OK);
  CHECK(ok);
  CHECK_INT(p.type.cap, 0);
  llm_sse_free(&p);
  free(body);
}

/* Out of memory: a child process with a capped address space feeds an
 * ever longer line until realloc fails. Not under AddressSanitizer, whose
 * shadow memory cannot live under RLIMIT_AS. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

static void test_out_of_memory(void)
{
#ifdef UNDER_ASAN
  printf("sse: out-of-memory case not run under AddressSanitizer (needs RLIMIT_AS)\n");
#else
  int status = -1;
  pid_t pid;
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    static char chunk[1 << 20];
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    struct rlimit rl;
    llm_sse p;
    sink k;
    int rc = 0;
    if (!f || fscanf(f, "%ld", &pages) != 1)
      _exit(2);
    fclose(f);
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)64 << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0)
      _exit(3);
    memset(chunk, 'x', sizeof chunk);
    memset(&k, 0, sizeof k);
    llm_sse_init(&p, on_event, &k, (size_t)1 << 40);
    llm_sse_feed(&p, "data: ", 6, NULL);
    for (int i = 0; i < 1024 && rc == 0; i++)
      rc = llm_sse_feed(&p, chunk, sizeof chunk, NULL);
    if (rc != LLM_SSE_ENOMEM || llm_sse_feed(&p, "\n\n", 2, NULL) != LLM_SSE_ENOMEM ||
        llm_sse_finish(&p) != LLM_SSE_ENOMEM)
      _exit(4);
    llm_sse_free(&p); /* gives the memory back; the parser works again */
    if (llm_sse_feed(&p, "data: ok\n\n", 10, NULL) != LLM_SSE_OK || !k.out.p ||
        strcmp(k.out.p, "message||-1|ok\n") != 0)
      _exit(5);
    _exit(0);
  }
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "out-of-memory child: status %d\n", status);
#endif
}

/* Random bodies made of the tokens that matter, checked against the oracle
 * whole, at random cuts with pauses, and byte by byte. */
static void test_random_against_oracle(void)
{
  static const char *const tok[] = {
    "data", "event", "id", "retry", "Data", ":", ": ", " ", "\n", "\r", "\r\n", "\n\n", "\0",
    BOM, "\xEF\xBB", "\xC3", "\xA9", "\xF0\x9F", "\x98\x80", "\xFF", "\xED\xA0\x80", "\xE2\x82",
    "x", "12", "[DONE]", "{\"a\":1}", "message", "\xC3\xA9", "\xF4\x90",
  };
  size_t ntok = sizeof tok / sizeof tok[0];
  int bad = 0, runs = 0;
  size_t cuts[512];
  for (int iter = 0; iter < 3000 && bad < 3; iter++) {
    ref_str body = {0}, ref = {0};
    size_t ntoks = 1 + rng() % 40;
    char *got;
    ref_put(&body, "", 0);
    for (size_t t = 0; t < ntoks; t++) {
      size_t i = rng() % ntok;
      ref_put(&body, tok[i], i == 12 ? 1 : strlen(tok[i]));
    }
    sse_ref_parse(body.p, body.len, &ref);
    for (int mode = 0; mode < 3; mode++) {
      size_t k = 0;
      if (mode == 1)
        k = random_cuts(body.len, cuts, 512);
      else if (mode == 2)
        for (k = 0; k + 1 < body.len && k < 512; k++)
          cuts[k] = k + 1;
      got = run(body.p, body.len, cuts, k, mode == 1, 0, NULL);
      runs++;
      if (strcmp(got, ref.p) != 0) {
        fprintf(stderr, "random body %d (mode %d, %zu bytes):", iter, mode, body.len);
        for (size_t i = 0; i < body.len; i++)
          fprintf(stderr, " %02x", (unsigned char)body.p[i]);
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", got, ref.p);
        bad++;
      }
      free(got);
    }
    free(body.p);
    free(ref.p);
  }
  CHECK_INT(bad, 0);
  CHECK(runs >= 9000 || bad);
}

/* WPT format-mime-*: which Content-Type values mean an event stream. */
static void test_content_type(void)
{
  CHECK(llm_sse_content_type_ok("text/event-stream"));
  CHECK(llm_sse_content_type_ok("text/event-stream;"));            /* format-mime-trailing-semicolon */
  CHECK(llm_sse_content_type_ok("text/event-stream; charset=utf-8"));
  CHECK(llm_sse_content_type_ok("text/event-stream;charset=windows-1252")); /* decoded as UTF-8 anyway */
  CHECK(llm_sse_content_type_ok("Text/Event-Stream"));
  CHECK(llm_sse_content_type_ok(" text/event-stream \t"));
  CHECK(llm_sse_content_type_ok("text/event-stream ; x=y"));
  CHECK(!llm_sse_content_type_ok("text/x-bogus"));                 /* format-mime-valid-bogus */
  CHECK(!llm_sse_content_type_ok("text/event-stream-bogus"));
  CHECK(!llm_sse_content_type_ok("x bogus"));                      /* format-mime-bogus */
  CHECK(!llm_sse_content_type_ok("text /event-stream"));
  CHECK(!llm_sse_content_type_ok("text/event stream"));
  CHECK(!llm_sse_content_type_ok("application/json"));
  CHECK(!llm_sse_content_type_ok(""));
  CHECK(!llm_sse_content_type_ok(NULL));
}

int main(void)
{
  test_cases();
  test_comment_fest();
  test_openai();
  test_anthropic();
  test_pause_offsets();
  test_curl_pause_pattern();
  test_last_event_id_and_reset();
  test_caps();
  test_big_line();
  test_big_comment();
  test_big_type();
  test_out_of_memory();
  test_random_against_oracle();
  test_content_type();
  return check_report("sse");
}
