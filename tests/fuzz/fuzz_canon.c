/* libFuzzer harness for the canonical spelling behind cache keys
 * (src/canon.c). The first input byte picks what the rest is:
 *   0 mod 3: doubles (8 bytes each): each spelling must be valid JSON
 *            (src/json.c reads it) and read back as the same double, an
 *            integral one must be written as the integer, and spelling
 *            what was read back must give the same text (one spelling per
 *            value); NaN and infinities as their quoted names;
 *   1 mod 3: one string: its literal holds no raw control byte, and when
 *            the string is UTF-8, JSON reads the literal back to exactly
 *            the string;
 *   2 mod 3: keys split at NUL bytes: sorted by canon_key_compare, in
 *            byte order, whatever order they came in.
 * Built and run by tests/fuzz/CMakeLists.txt and scripts/fuzz_all. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"

static void die(const char *what)
{
  fprintf(stderr, "fuzz_canon: %s\n", what);
  abort();
}

static void check_number(double x)
{
  char text[CANON_NUMBER_MAX], again[CANON_NUMBER_MAX];
  size_t n = canon_number(x, text);
  json_doc *doc;
  const json_value *v;
  if (n == 0 || n >= CANON_NUMBER_MAX || strlen(text) != n)
    die("number text length");
  if (isnan(x) || isinf(x)) {
    const char *want = isnan(x) ? "\"NaN\"" : x > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    if (strcmp(text, want) != 0)
      die("NaN or infinity spelled otherwise");
    return;
  }
  v = json_parse(text, n, &doc, NULL);
  if (!v || v->type != JSON_NUMBER)
    die("a number's spelling is not a JSON number");
  if (v->u.number.value != x)
    die("a number's spelling reads back as another double");
  if (x == floor(x) && fabs(x) < 9.2e18 && strpbrk(text, ".eE"))
    die("an integral double not written as an integer");
  if (canon_number(v->u.number.value, again) != n || memcmp(text, again, n) != 0)
    die("two spellings for one value");
  json_free(doc);
}

static void check_string(const char *s, size_t len)
{
  llm_buf b = LLM_BUF_INIT;
  char *scrubbed = NULL;
  size_t slen;
  canon_put_string(&b, s, len);
  if (b.failed)
    return;
  if (b.len < 2 || b.data[0] != '"' || b.data[b.len - 1] != '"')
    die("a string literal without its quotes");
  for (size_t i = 0; i < b.len; i++)
    if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
      die("a raw control byte in a string literal");
  if (json_utf8_scrub(s, len, &scrubbed, &slen) == 0) { /* UTF-8: must read back */
    json_doc *doc;
    const json_value *v = json_parse(b.data, b.len, &doc, NULL);
    if (!v || v->type != JSON_STRING || v->u.string.len != len ||
        memcmp(v->u.string.ptr, s, len) != 0)
      die("a string literal does not read back as the string");
    json_free(doc);
  }
  free(scrubbed);
  llm_buf_free(&b);
}

typedef struct key {
  const char *p;
  size_t n;
} key;

static int by_key(const void *a, const void *b)
{
  const key *x = a, *y = b;
  return canon_key_compare(x->p, x->n, y->p, y->n);
}

static void check_keys(const char *s, size_t len)
{
  key keys[256], rev[256];
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= len && n < 256; i++)
    if (i == len || s[i] == '\0') {
      keys[n].p = s + start;
      keys[n++].n = i - start;
      start = i + 1;
    }
  for (size_t i = 0; i < n; i++)
    rev[i] = keys[n - 1 - i];
  qsort(keys, n, sizeof *keys, by_key);
  qsort(rev, n, sizeof *rev, by_key);
  for (size_t i = 0; i < n; i++) {
    if (keys[i].n != rev[i].n || memcmp(keys[i].p, rev[i].p, keys[i].n) != 0)
      die("key order depends on the input order");
    if (i > 0) { /* byte order, the shorter first on a common prefix */
      size_t m = keys[i - 1].n < keys[i].n ? keys[i - 1].n : keys[i].n;
      int c = memcmp(keys[i - 1].p, keys[i].p, m);
      if (c > 0 || (c == 0 && keys[i - 1].n > keys[i].n))
        die("keys out of byte order");
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *rest = (const char *)data + 1;
  size_t len = size ? size - 1 : 0;
  if (size == 0)
    return 0;
  switch (data[0] % 3) {
  case 0:
    for (size_t i = 0; i + 8 <= len; i += 8) {
      double x;
      memcpy(&x, rest + i, 8);
      check_number(x);
    }
    break;
  case 1: check_string(rest, len); break;
  default: check_keys(rest, len); break;
  }
  return 0;
}
