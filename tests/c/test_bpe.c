/* The tokenizer engine: golden ids (RELIABILITY.md A.31, A.34), special
 * tokens, bad input (empty, NUL, invalid UTF-8, surrogates as bytes,
 * 1,000,000 spaces), long runs in near-linear time, the merges against
 * tiktoken's own quadratic algorithm (multilingual pieces too), the
 * per-call piece cache, truncation, malformed rank files and
 * vocabulary images, and many threads at once. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "bpe/bpe_internal.h"

static const llm_bpe *get(const char *name)
{
  char err[256];
  const llm_bpe *e = llm_bpe_get(name, err, sizeof err);
  if (!e) {
    check_fail(__FILE__, __LINE__, "llm_bpe_get(%s): %s", name, err);
    exit(check_report("bpe"));
  }
  return e;
}

/* Encodes and checks ids, count == #ids and the round trip. */
static void expect_ids(const char *enc, const char *text, size_t len, const uint32_t *want,
                       size_t nwant, unsigned flags)
{
  const llm_bpe *e = get(enc);
  llm_bpe_ids ids = {0};
  CHECK_INT(llm_bpe_encode(e, text, len, flags, &ids), 0);
  CHECK_INT(ids.n, nwant);
  if (ids.n == nwant)
    CHECK_MEM(ids.ids, ids.n * 4, want, nwant * 4);
  CHECK_INT(llm_bpe_count(e, text, len, flags), nwant);
  llm_bpe_ids_free(&ids);
}

/* count == #encode and decode(encode(x)) == x */
static void expect_roundtrip(const char *enc, const char *text, size_t len)
{
  const llm_bpe *e = get(enc);
  llm_bpe_ids ids = {0};
  char err[128], *back;
  size_t blen = 0;
  CHECK_INT(llm_bpe_encode(e, text, len, 0, &ids), 0);
  CHECK_INT(llm_bpe_count(e, text, len, 0), ids.n);
  back = llm_bpe_decode(e, ids.ids, ids.n, &blen, err, sizeof err);
  CHECK(back != NULL);
  if (back)
    CHECK_MEM(back, blen, text, len);
  free(back);
  llm_bpe_ids_free(&ids);
}

#define S(lit) lit, sizeof(lit) - 1
#define IDS(...) (const uint32_t[]){__VA_ARGS__}, sizeof((const uint32_t[]){__VA_ARGS__}) / 4

static void test_golden(void)
{
  /* RELIABILITY.md A.31 (the OpenAI cookbook's examples) */
  expect_ids("cl100k_base", S("tiktoken is great!"), IDS(83, 1609, 5963, 374, 2294, 0), 0);
  expect_ids("cl100k_base", S("2 + 2 = 4"), IDS(17, 489, 220, 17, 284, 220, 19), 0);
  expect_ids("o200k_base", S("2 + 2 = 4"), IDS(17, 659, 220, 17, 314, 220, 19), 0);
  expect_ids("o200k_base", S("お誕生日おめでとう"),
             IDS(8930, 9697, 243, 128225, 8930, 17693, 4344, 48669), 0);
  expect_ids("cl100k_base", S("お誕生日おめでとう"),
             IDS(33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699), 0);
  expect_ids("p50k_base", S("お誕生日おめでとう"),
             IDS(2515, 232, 45739, 243, 37955, 33768, 98, 2515, 232, 1792, 223, 30640, 30201, 29557), 0);
  /* gpt2 is r50k_base */
  CHECK(get("gpt2") == get("r50k_base"));
  CHECK_STR(llm_bpe_name(get("o200k_base")), "o200k_base");
  CHECK_INT(llm_bpe_n_vocab(get("cl100k_base")), 100277);
  CHECK_INT(llm_bpe_n_vocab(get("o200k_base")), 200019);
  CHECK_INT(llm_bpe_n_vocab(get("r50k_base")), 50257);
  CHECK_INT(llm_bpe_n_vocab(get("p50k_edit")), 50284);
}

static void test_special(void)
{
  const char *t = "a<|endoftext|>b<|endofprompt|>";
  /* A.34: ordinary text by default, never an error */
  CHECK(llm_bpe_count(get("cl100k_base"), S("<|endoftext|>"), 0) > 1);
  expect_ids("cl100k_base", S("<|endoftext|>"), IDS(100257), LLM_BPE_SPECIAL);
  expect_ids("o200k_base", S("<|endoftext|>"), IDS(199999), LLM_BPE_SPECIAL);
  expect_ids("o200k_base", S("<|endofprompt|>"), IDS(200018), LLM_BPE_SPECIAL);
  expect_ids("cl100k_base", S("<|fim_prefix|><|fim_middle|><|fim_suffix|><|endofprompt|>"),
             IDS(100258, 100259, 100260, 100276), LLM_BPE_SPECIAL);
  expect_ids("p50k_edit", S("<|fim_suffix|>"), IDS(50283), LLM_BPE_SPECIAL);
  expect_ids("r50k_base", S("<|endoftext|>"), IDS(50256), LLM_BPE_SPECIAL);
  /* around ordinary text, and an unfinished one is text */
  CHECK_INT(llm_bpe_count(get("cl100k_base"), t, strlen(t), LLM_BPE_SPECIAL), 4);
  CHECK_INT(llm_bpe_count(get("cl100k_base"), S("<|endoftext"), LLM_BPE_SPECIAL),
            llm_bpe_count(get("cl100k_base"), S("<|endoftext"), 0));
  {
    const uint8_t *b;
    CHECK_INT(llm_bpe_token_bytes(get("cl100k_base"), 100276, &b), 15);
    CHECK_MEM(b, 15, "<|endofprompt|>", 15);
    CHECK_INT(llm_bpe_token_bytes(get("cl100k_base"), 100261, &b), 0); /* a hole */
    CHECK_INT(llm_bpe_token_bytes(get("cl100k_base"), 100277, &b), 0);
  }
}

static void test_bad_input(void)
{
  static const char *encs[] = {"cl100k_base", "o200k_base", "p50k_base", "r50k_base"};
  char *spaces = malloc(1000000);
  memset(spaces, ' ', 1000000);
  for (int i = 0; i < 4; i++) {
    const llm_bpe *e = get(encs[i]);
    llm_bpe_ids ids = {0};
    CHECK_INT(llm_bpe_count(e, "", 0, 0), 0);
    CHECK_INT(llm_bpe_encode(e, "", 0, 0, &ids), 0);
    CHECK_INT(ids.n, 0);
    expect_roundtrip(encs[i], S("a\0b\0\0 c\0"));
    expect_roundtrip(encs[i], S("\xff\xfe\xc3 \xe2\x82 hello\x80\xbf world\xf5\x80"));
    expect_roundtrip(encs[i], S("lone \xed\xa0\x80 surrogate \xed\xbf\xbf pair \xed\xa0\xbd\xed\xb8\x80"));
    expect_roundtrip(encs[i], S("overlong \xc0\xaf \xe0\x80\xaf \xf0\x80\x80\xaf max \xf4\x8f\xbf\xbf \xf4\x90\x80\x80"));
    expect_roundtrip(encs[i], S("truncated at the end \xe6\xbc"));
    expect_roundtrip(encs[i], spaces, i == 0 ? 1000000 : 100000);
    llm_bpe_ids_free(&ids);
  }
  /* npm tiktoken 1.0.22 gives 782 tokens for 100,000 spaces (in 24 s) and
   * aborts on 1,000,000 ("RuntimeError: unreachable"); the same shape,
   * 128-space tokens and one for the rest, gives 7813 there. */
  CHECK_INT(llm_bpe_count(get("cl100k_base"), spaces, 100000, 0), 782);
  CHECK_INT(llm_bpe_count(get("cl100k_base"), spaces, 1000000, 0), 7813);
  CHECK_INT(llm_bpe_count(get("o200k_base"), spaces, 1000000, 0), 7813);
  free(spaces);
}

static double cpu_seconds(void)
{
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double time_run(const llm_bpe *e, char c, size_t n)
{
  char *s = malloc(n);
  double t0, best = 1e9;
  memset(s, c, n);
  for (int rep = 0; rep < 3; rep++) {
    t0 = cpu_seconds();
    CHECK(llm_bpe_count(e, s, n, 0) > 0);
    if (cpu_seconds() - t0 < best)
      best = cpu_seconds() - t0;
  }
  free(s);
  return best;
}

static void test_long_runs_near_linear(void)
{
  /* tiktoken's merge is quadratic in the piece length: 4x the run would
   * take 16x the time. Near-linear here: allow 8x (CPU time, best of 3). */
  const llm_bpe *e = get("cl100k_base");
  double small = time_run(e, 'a', 25000), big = time_run(e, 'a', 100000);
  CHECK(big < 8 * small + 0.01);
  small = time_run(e, ' ', 25000);
  big = time_run(e, ' ', 100000);
  CHECK(big < 8 * small + 0.01);
}

/* tiktoken's _byte_pair_merge, transcribed: the reference for both paths. */
static size_t reference_merge(const llm_bpe *e, const uint8_t *p, size_t n, uint32_t *out)
{
  size_t *start = malloc((n + 1) * sizeof *start), k = n;
  for (size_t i = 0; i <= n; i++)
    start[i] = i;
  for (;;) {
    uint32_t best = LLM_BPE_NO_RANK;
    size_t j = 0;
    for (size_t i = 0; i + 1 < k; i++) {
      uint32_t r = llm_bpe_rank(e, p + start[i], start[i + 2] - start[i]);
      if (r < best) {
        best = r;
        j = i;
      }
    }
    if (best == LLM_BPE_NO_RANK)
      break;
    memmove(&start[j + 1], &start[j + 2], (k - j - 1) * sizeof start[0]);
    k--;
  }
  for (size_t i = 0; i < k; i++)
    out[i] = llm_bpe_rank(e, p + start[i], start[i + 1] - start[i]);
  free(start);
  return k;
}

static void test_merge_matches_reference(void)
{
  /* single pieces (letters only, or spaces) of 40-440 bytes: both the
   * short-piece scan and the long-piece queue */
  static const char alphabets[][8] = {"ab", "abc", "aeiou", "  ", "xy", "qz"};
  const char *encs[] = {"cl100k_base", "o200k_base", "r50k_base"};
  unsigned seed = 12345;
  for (int t = 0; t < 36; t++) {
    const llm_bpe *e = get(encs[t % 3]);
    const char *alpha = alphabets[t % 6];
    size_t n = 40 + (size_t)(t * 37 % 400), na = strlen(alpha);
    uint8_t *s = malloc(n);
    uint32_t *want = malloc(n * 4);
    llm_bpe_ids got = {0};
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      s[i] = (uint8_t)alpha[(seed >> 16) % na];
    }
    size_t k = reference_merge(e, s, n, want);
    CHECK_INT(llm_bpe_encode(e, s, n, 0, &got), 0);
    if (got.n == k && memcmp(got.ids, want, k * 4) == 0)
      check_passed++;
    else
      check_fail(__FILE__, __LINE__, "merge differs from tiktoken's (case %d, %zu bytes)", t, n);
    llm_bpe_ids_free(&got);
    free(s);
    free(want);
  }
}

/* Random letters of one script as UTF-8: lower-case Cyrillic (2 bytes),
 * Greek (2), Hiragana (3), CJK (3), or Latin with diacritics mixed with
 * ASCII (1-2). Lower-case or caseless only, so the whole string is one
 * piece for every pattern. Returns the length written (at most max). */
static size_t random_letters(unsigned *seed, int script, uint8_t *out, size_t max)
{
  static const uint32_t first[] = {0x430, 0x3B1, 0x3041, 0x4E00, 0xE0};
  static const uint32_t count[] = {32, 17, 80, 400, 23};
  size_t n = 0;
  for (;;) {
    uint32_t cp;
    *seed = *seed * 1103515245u + 12345u;
    cp = first[script] + (*seed >> 16) % count[script];
    if (script == 4 && (*seed >> 8) % 3 == 0)
      cp = 'a' + (*seed >> 10) % 26;
    if (cp == 0xF7)
      cp = 'e'; /* the division sign is no letter */
    if (cp < 0x80) {
      if (n + 1 > max)
        return n;
      out[n++] = (uint8_t)cp;
    } else if (cp < 0x800) {
      if (n + 2 > max)
        return n;
      out[n++] = (uint8_t)(0xC0 | cp >> 6);
      out[n++] = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
      if (n + 3 > max)
        return n;
      out[n++] = (uint8_t)(0xE0 | cp >> 12);
      out[n++] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
      out[n++] = (uint8_t)(0x80 | (cp & 0x3F));
    }
  }
}

/* Multilingual pieces of one character to 120 bytes against the
 * reference, both where the piece ends the text (the merge works on a
 * padded copy) and where 8 more bytes follow (it reads the text in place). */
static void test_multilingual_merges(void)
{
  const char *encs[] = {"cl100k_base", "o200k_base", "r50k_base"};
  static const char tail[] = "\n\n\n\n\n\n\n\n";
  unsigned seed = 777;
  for (int t = 0; t < 300; t++) {
    const llm_bpe *e = get(encs[t % 3]);
    uint8_t s[128 + 8];
    uint32_t want[128];
    llm_bpe_ids got = {0}, with_tail = {0}, tail_ids = {0};
    size_t n = random_letters(&seed, t % 5, s, 3 + (size_t)(t * 7 % 118)), k;
    memcpy(s + n, tail, 8);
    k = reference_merge(e, s, n, want);
    CHECK_INT(llm_bpe_encode(e, s, n, 0, &got), 0);
    CHECK_INT(llm_bpe_encode(e, s, n + 8, 0, &with_tail), 0);
    CHECK_INT(llm_bpe_encode(e, tail, 8, 0, &tail_ids), 0);
    if (got.n == k && memcmp(got.ids, want, k * 4) == 0 && with_tail.n == k + tail_ids.n &&
        memcmp(with_tail.ids, want, k * 4) == 0 &&
        memcmp(with_tail.ids + k, tail_ids.ids, tail_ids.n * 4) == 0)
      check_passed++;
    else
      check_fail(__FILE__, __LINE__, "merge differs from tiktoken's (case %d, %zu bytes)", t, n);
    llm_bpe_ids_free(&got);
    llm_bpe_ids_free(&with_tail);
    llm_bpe_ids_free(&tail_ids);
  }
}

/* A long text reuses the merges of its repeated pieces (the per-call
 * cache): its ids must be those of its pieces encoded one by one (each too
 * short to make a cache), with special tokens between them and without
 * them, counting as encoding. Many distinct pieces of equal length make
 * the cache's slots collide. */
static void test_piece_cache(void)
{
  enum { WORDS = 300, REPEATS = 12 };
  const char *encs[] = {"cl100k_base", "o200k_base"};
  for (int ei = 0; ei < 2; ei++) {
    const llm_bpe *e = get(encs[ei]);
    uint8_t words[WORDS][40];
    size_t wlen[WORDS], total = 0, len = 0, k;
    unsigned seed = 99u + (unsigned)ei;
    uint8_t *text = malloc(WORDS * REPEATS * (40 + 13));
    llm_bpe_ids want = {0}, got = {0};
    for (int w = 0; w < WORDS; w++) {
      words[w][0] = ' ';
      wlen[w] = 1 + random_letters(&seed, w % 5, words[w] + 1, w < 150 ? 13 : 39);
    }
    for (int r = 0; r < WORDS * REPEATS; r++) {
      int w = (int)((unsigned)r * 7919u % WORDS);
      memcpy(text + len, words[w], wlen[w]);
      len += wlen[w];
      CHECK_INT(llm_bpe_encode(e, words[w], wlen[w], 0, &want), 0);
      if (r % 500 == 499) {
        memcpy(text + len, "<|endoftext|>", 13);
        len += 13;
        CHECK_INT(llm_bpe_encode(e, "<|endoftext|>", 13, LLM_BPE_SPECIAL, &want), 0);
      }
    }
    CHECK_INT(llm_bpe_encode(e, text, len, LLM_BPE_SPECIAL, &got), 0);
    CHECK_INT(got.n, want.n);
    if (got.n == want.n)
      CHECK_MEM(got.ids, got.n * 4, want.ids, want.n * 4);
    CHECK_INT(llm_bpe_count(e, text, len, LLM_BPE_SPECIAL), want.n);
    /* without specials: the same text, the specials' text as ordinary */
    got.n = 0;
    CHECK_INT(llm_bpe_encode(e, text, len, 0, &got), 0);
    k = llm_bpe_count(e, text, len, 0);
    CHECK_INT(k, got.n);
    total = got.n;
    expect_roundtrip(encs[ei], (const char *)text, len);
    CHECK(total > want.n);
    llm_bpe_ids_free(&want);
    llm_bpe_ids_free(&got);
    free(text);
  }
}

static void test_truncate(void)
{
  const llm_bpe *e = get("o200k_base");
  const char *t = "Hello wörld, this is a test of truncation: 漢字かな交じり文 and emoji 👍🏽 end.";
  size_t len = strlen(t), total = llm_bpe_count(e, t, len, 0);
  CHECK_INT(llm_bpe_head_bytes(e, t, len, 0, 0), 0);
  CHECK_INT(llm_bpe_tail_bytes(e, t, len, 0, 0), 0);
  CHECK_INT(llm_bpe_head_bytes(e, t, len, total, 0), len);
  CHECK_INT(llm_bpe_tail_bytes(e, t, len, total + 5, 0), len);
  for (size_t n = 1; n < total; n++) {
    size_t h = llm_bpe_head_bytes(e, t, len, n, 0), tl = llm_bpe_tail_bytes(e, t, len, n, 0);
    CHECK(llm_bpe_count(e, t, h, 0) <= n);
    CHECK(llm_bpe_count(e, t + len - tl, tl, 0) <= n);
    /* never inside a UTF-8 character */
    CHECK(h == len || (t[h] & 0xC0) != 0x80);
    CHECK(tl == len || (t[len - tl] & 0xC0) != 0x80);
  }
  /* a head that is whole tokens: exactly n of them */
  CHECK_INT(llm_bpe_head_bytes(e, S("one two three four"), 2, 0), 7);
  CHECK_INT(llm_bpe_tail_bytes(e, S("one two three four"), 2, 0), 11);
}

/* ---- malformed rank files and images -------------------------------------- */

/* A toy vocabulary: the 256 bytes, then "ab", "bc", "abc". */
static char *toy_vocab(size_t *len)
{
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *s = malloc(256 * 12 + 64), *o = s;
  for (int b = 0; b < 256; b++)
    o += sprintf(o, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
  o += sprintf(o, "YWI= 256\nYmM= 257\nYWJj 258\n");
  *len = (size_t)(o - s);
  return s;
}

static void expect_load_error(const char *data, size_t len, uint32_t expect, const char *needle)
{
  char err[256] = "";
  llm_bpe *e = llm_bpe_load_tiktoken("t", LLM_BPE_PAT_CL100K, data, len, expect, NULL, 0, err,
                                     sizeof err);
  CHECK(e == NULL);
  if (!strstr(err, needle))
    check_fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", err, needle);
  llm_bpe_free(e);
}

static void test_rank_files(void)
{
  size_t len;
  char *v = toy_vocab(&len), err[256], *bad;
  static const llm_bpe_special_token sp[] = {{"<|x|>", 300}};
  llm_bpe *e = llm_bpe_load_tiktoken("toy", LLM_BPE_PAT_CL100K, v, len, 259, sp, 1, err, sizeof err);
  llm_bpe_ids ids = {0};
  CHECK(e != NULL);
  if (e) {
    /* "abc": ab (256) beats bc (257), then ab+c = abc (258); " " has no
     * pair with "a" in this vocabulary */
    CHECK_INT(llm_bpe_encode(e, S("abc abcabc"), 0, &ids), 0);
    CHECK_INT(ids.n, 4);
    if (ids.n == 4)
      CHECK_MEM(ids.ids, 16, ((const uint32_t[]){258, 32, 258, 258}), 16);
    CHECK_INT(llm_bpe_count(e, S("<|x|>"), LLM_BPE_SPECIAL), 1);
    CHECK_INT(llm_bpe_n_vocab(e), 301);
    llm_bpe_ids_free(&ids);
    llm_bpe_free(e);
  }
  expect_load_error(v, len - 5, 0, "truncated");      /* cut inside the last line */
  expect_load_error(v, len, 300, "expected 300");     /* lines missing */
  expect_load_error("", 0, 0, "0 ranks");
  expect_load_error(S("QQ== 0\nQQ== 1\n"), 0, "twice");
  expect_load_error(S("QQ== 0\nQg== 0\n"), 0, "twice");
  expect_load_error(S("Q!== 0\n"), 0, "base64");
  expect_load_error(S("QQ== x\n"), 0, "bad rank");
  expect_load_error(S("QQ==\n"), 0, "expected");
  expect_load_error(S("QQ== 99999999999999999999\n"), 0, "bad rank");
  expect_load_error(S("QQ== 0\n"), 0, "single byte 0x00");
  /* a byte flipped anywhere: an error or a valid encoding, never a crash */
  bad = malloc(len);
  for (size_t i = 0; i < len; i += 7) {
    memcpy(bad, v, len);
    bad[i] ^= 0x5A;
    e = llm_bpe_load_tiktoken("x", LLM_BPE_PAT_R50K, bad, len, 0, NULL, 0, err, sizeof err);
    if (e)
      CHECK(llm_bpe_count(e, S("abcabc hello"), 0) > 0);
    llm_bpe_free(e);
  }
  free(bad);
  free(v);
}

extern const char llm_vocab_cl100k[], llm_vocab_cl100k_end[];

static void test_images(void)
{
  size_t len = (size_t)(llm_vocab_cl100k_end - llm_vocab_cl100k);
  char err[256], *copy = malloc(len);
  llm_bpe *e;
  llm_bpe_blob_header *h = (llm_bpe_blob_header *)copy;
  memcpy(copy, llm_vocab_cl100k, len);
  e = llm_bpe_from_blob("c", LLM_BPE_PAT_CL100K, copy, len, 0, NULL, 0, err, sizeof err);
  CHECK(e != NULL);
  if (e)
    CHECK_INT(llm_bpe_count(e, S("tiktoken is great!"), 0), 6);
  llm_bpe_free(e);
  CHECK(llm_bpe_from_blob("c", LLM_BPE_PAT_CL100K, copy, len - 16, 0, NULL, 0, err, sizeof err) == NULL);
  h->off_slots = h->size - 16; /* a section past the end */
  CHECK(llm_bpe_from_blob("c", LLM_BPE_PAT_CL100K, copy, len, 0, NULL, 0, err, sizeof err) == NULL);
  CHECK(strstr(err, "corrupt") != NULL);
  memcpy(copy, llm_vocab_cl100k, sizeof *h);
  h->mask = 12345; /* not a power of two less one */
  CHECK(llm_bpe_from_blob("c", LLM_BPE_PAT_CL100K, copy, len, 0, NULL, 0, err, sizeof err) == NULL);
  memcpy(copy, llm_vocab_cl100k, sizeof *h);
  h->magic[0] = 'X';
  CHECK(llm_bpe_from_blob("c", LLM_BPE_PAT_CL100K, copy, len, 0, NULL, 0, err, sizeof err) == NULL);
  CHECK(strstr(err, "not a vocabulary image") != NULL);
  free(copy);
  CHECK(llm_bpe_get("cl200k_base", err, sizeof err) == NULL);
  CHECK(strstr(err, "unknown encoding") != NULL);
  {
    uint32_t bad_ids[] = {83, 100261};
    size_t n;
    CHECK(llm_bpe_decode(get("cl100k_base"), bad_ids, 2, &n, err, sizeof err) == NULL);
    CHECK(strstr(err, "invalid token id 100261") != NULL);
  }
}

/* ---- threads ------------------------------------------------------------------- */

static const char thread_text[] = "Threads share one immutable encoding: 共有 ✓ 1234567 'll  \n\n";

static void *count_many(void *arg)
{
  const char *name = arg;
  size_t total = 0;
  char err[128];
  for (int i = 0; i < 50; i++) {
    const llm_bpe *e = llm_bpe_get(name, err, sizeof err);
    total += e ? llm_bpe_count(e, thread_text, sizeof thread_text - 1, 0) : 0;
  }
  return (void *)total;
}

static void test_threads(void)
{
  /* first use races in these threads: p50k_edit is loaded by none before */
  const char *names[8] = {"p50k_edit", "p50k_edit", "o200k_base", "cl100k_base",
                          "p50k_edit", "o200k_base", "cl100k_base", "p50k_edit"};
  pthread_t th[8];
  for (int i = 0; i < 8; i++)
    CHECK_INT(pthread_create(&th[i], NULL, count_many, (void *)names[i]), 0);
  for (int i = 0; i < 8; i++) {
    void *got;
    pthread_join(th[i], &got);
    CHECK_INT((size_t)got, 50 * llm_bpe_count(get(names[i]), thread_text, sizeof thread_text - 1, 0));
  }
}

int main(void)
{
  test_threads(); /* first: it must see the encodings unloaded */
  test_golden();
  test_special();
  test_bad_input();
  test_long_runs_near_linear();
  test_merge_matches_reference();
  test_multilingual_merges();
  test_piece_cache();
  test_truncate();
  test_rank_files();
  test_images();
  return check_report("bpe");
}
