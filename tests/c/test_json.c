/* The JSON reader and writer: RFC 8259 accept/reject tables (in the
 * spirit of JSONTestSuite's y_/n_ cases), exact integers, escapes and
 * UTF-8, writer output, and a bounded mutation fuzz: every mutant must
 * either be rejected or survive parse -> write -> parse unchanged. Run
 * under ASan this is the fuzzing that matters (no overread on any input). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

static int accepts(const char *s, size_t n)
{
  json_doc *doc;
  json_error err;
  const json_value *v = json_parse(s, n, &doc, &err);
  json_free(doc);
  return v != NULL;
}

static void test_accept_reject(void)
{
  static const char *const good[] = {
    "{}", "[]", "0", "-0", "1.5e10", "-1E-5", "1e+2", "\"\"", "true", "false", "null",
    " \t\r\n{ \"a\" : [ 1 , 2 , { } ] } \n", "[[[[]]]]", "\"\\u00e9\\ud83d\\ude00\"",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"", "1e-400",
    "{\"a\":1,\"a\":2}", "123456789012345678901234567890", "[0.5,-0.25e3]",
  };
  static const char *const bad[] = {
    "", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{a:1}", "{'a':1}", "01", "-", "1.",
    ".5", "1e", "1e+", "+1", "NaN", "Infinity", "-Infinity", "tru", "nul", "[1 2]",
    "{\"a\" 1}", "\"abc", "\"\\x\"", "\"\\u12G4\"", "\"a\tb\"", "\"a\nb\"", "[1]x",
    "{} {}", "// c\n{}", "/* c */{}", "1e400", "-1e400", "\"\xc3\"", "\"\xc0\xaf\"",
    "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"", "\xef\xbb\xbf{}", "[\"\\u\"]",
    "0x10", "[1,,2]", "{\"a\":}", "{,}", "[\"a\"\"b\"]",
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    if (!accepts(good[i], strlen(good[i])))
      check_fail(__FILE__, __LINE__, "rejected valid JSON: %s", good[i]);
    else
      check_passed++;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (accepts(bad[i], strlen(bad[i])))
      check_fail(__FILE__, __LINE__, "accepted invalid JSON: %s", bad[i]);
    else
      check_passed++;
  /* a NUL byte is a control character: rejected in a string and outside */
  CHECK(!accepts("\"a\0b\"", 5));
  CHECK(!accepts("{}\0", 3));
  CHECK(accepts("\"a\\u0000b\"", 10));
}

static void test_depth(void)
{
  char buf[1000];
  memset(buf, '[', 200);
  memset(buf + 200, ']', 200);
  CHECK(!accepts(buf, 400)); /* 200 levels > JSON_MAX_DEPTH */
  memset(buf, '[', JSON_MAX_DEPTH);
  memset(buf + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
  CHECK(accepts(buf, 2 * JSON_MAX_DEPTH));
  memset(buf, '[', JSON_MAX_DEPTH + 1);
  memset(buf + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
  CHECK(!accepts(buf, 2 * JSON_MAX_DEPTH + 2));
}

static void test_values(void)
{
  static const char text[] =
    "{\"s\":\"a\\u00e9\\ud83d\\ude00\\ud800x\",\"n\":-12.5,\"i\":9223372036854775807,"
    "\"m\":-9223372036854775808,\"big\":9223372036854775808,\"f\":3.0,\"e\":1e2,"
    "\"arr\":[1,\"two\",null,true,false],\"dup\":1,\"dup\":2}";
  json_doc *doc;
  json_error err;
  const json_value *root = json_parse(text, sizeof text - 1, &doc, &err), *v;
  int64_t i;
  CHECK(root != NULL);
  if (!root)
    return;
  v = json_get(root, "s");
  CHECK(json_is_string(v));
  CHECK_STR(v->u.string.ptr, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx");
  CHECK(fabs(json_get(root, "n")->u.number.value + 12.5) < 1e-12);
  CHECK(json_int64(json_get(root, "i"), &i) && i == INT64_MAX);
  CHECK(json_int64(json_get(root, "m"), &i) && i == INT64_MIN);
  CHECK(!json_int64(json_get(root, "big"), &i));
  CHECK(!json_int64(json_get(root, "f"), &i)); /* 3.0 is not written as an integer */
  CHECK(!json_int64(json_get(root, "e"), &i));
  v = json_get(root, "arr");
  CHECK(v && v->type == JSON_ARRAY && v->u.array.n == 5);
  CHECK(json_at(v, 1) && json_at(v, 1)->type == JSON_STRING);
  CHECK(json_at(v, 2)->type == JSON_NULL);
  CHECK(json_at(v, 5) == NULL);
  CHECK(json_int64(json_get(root, "dup"), &i) && i == 2);
  CHECK(json_get(root, "missing") == NULL);
  CHECK(json_get(v, "x") == NULL);
  json_free(doc);

  /* the doc keeps no pointer into the text it was parsed from */
  {
    char *text = strdup("{\"n\":12345678901,\"s\":\"abc\"}");
    const json_value *r2 = json_parse(text, strlen(text), &doc, &err);
    llm_buf out;
    memset(text, 'x', strlen(text));
    free(text);
    CHECK(r2 && json_int64(json_get(r2, "n"), &i) && i == 12345678901LL);
    llm_buf_init(&out);
    json_put_value(&out, r2);
    CHECK_STR(out.data, "{\"n\":12345678901,\"s\":\"abc\"}");
    llm_buf_free(&out);
    json_free(doc);
  }
  CHECK(json_parse("[1,", 3, &doc, &err) == NULL && doc == NULL);
  CHECK_INT(err.offset, 3);
  CHECK(strstr(err.message, "end of input") != NULL);
  CHECK(json_parse("{\"a\":tru}", 9, &doc, &err) == NULL);
  CHECK_INT(err.offset, 5);
}

static void test_writer(void)
{
  llm_buf b;
  llm_buf_init(&b);
  json_put_string(&b, "q\"b\\s\n\x01\xc3\xa9\xff/", 11);
  CHECK_STR(b.data, "\"q\\\"b\\\\s\\n\\u0001\xc3\xa9\\ufffd/\"");
  llm_buf_reset(&b);
  json_put_double(&b, 0.1);
  llm_buf_putc(&b, ' ');
  json_put_double(&b, 1e300);
  llm_buf_putc(&b, ' ');
  json_put_double(&b, NAN);
  llm_buf_putc(&b, ' ');
  json_put_double(&b, -3);
  llm_buf_putc(&b, ' ');
  json_put_float(&b, 0.1f);
  llm_buf_putc(&b, ' ');
  json_put_int(&b, INT64_MIN);
  CHECK_STR(b.data, "0.1 1e+300 null -3 0.1 -9223372036854775808");
  llm_buf_reset(&b);
  json_put_base64(&b, "any carnal pleas", 16);
  llm_buf_putc(&b, ' ');
  json_put_base64(&b, "any carnal pleasu", 17);
  llm_buf_putc(&b, ' ');
  json_put_base64(&b, "any carnal pleasur", 18);
  CHECK_STR(b.data, "YW55IGNhcm5hbCBwbGVhcw== YW55IGNhcm5hbCBwbGVhc3U= YW55IGNhcm5hbCBwbGVhc3Vy");
  llm_buf_reset(&b);
  llm_buf_printf(&b, "%s-%d", "a long enough string to pass the small buffer of llm_buf_printf, "
                         "which is one hundred and twenty-eight bytes long, so that it has to grow", 7);
  CHECK(b.len > 128 && b.data[b.len - 1] == '7');
  llm_buf_free(&b);
}

/* ---- fuzz ------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
  /* splitmix64: a fixed seed keeps the run reproducible */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static const char *const seeds[] = {
  "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\u00e9\"}],"
  "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":5,"
  "\"stop\":[\"\\n\"],\"temperature\":0.7,\"seed\":-42,\"n\":2}",
  "[1,-2.5e-3,true,false,null,\"\xe2\x82\xac\",[],{},[[{\"a\":[0]}]]]",
  "{\"input\":[\"a\",\"b\"],\"dimensions\":8,\"encoding_format\":\"base64\"}",
};

static void roundtrip_or_reject(const char *s, size_t n, int *accepted)
{
  json_doc *d1, *d2;
  json_error err;
  const json_value *v1 = json_parse(s, n, &d1, &err), *v2;
  llm_buf a, b;
  if (!v1)
    return;
  (*accepted)++;
  llm_buf_init(&a);
  llm_buf_init(&b);
  json_put_value(&a, v1);
  v2 = json_parse(a.data, a.len, &d2, &err);
  if (!v2) {
    check_fail(__FILE__, __LINE__, "re-parse of written JSON failed: %s", err.message);
  } else {
    json_put_value(&b, v2);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
      check_fail(__FILE__, __LINE__, "write/parse/write is not stable");
  }
  json_free(d1);
  json_free(d2);
  llm_buf_free(&a);
  llm_buf_free(&b);
}

static void test_fuzz(void)
{
  static const char interesting[] = "{}[]\",:\\u0123456789eE+-.tfn \x00\x1f\x80\xc3\xed\xf0\xff";
  const int rounds = 100000;
  int accepted = 0;
  char buf[1024];
  for (int r = 0; r < rounds; r++) {
    const char *seed = seeds[next_rand() % (sizeof seeds / sizeof *seeds)];
    size_t n = strlen(seed);
    int muts = 1 + (int)(next_rand() % 4);
    memcpy(buf, seed, n);
    for (int m = 0; m < muts; m++) {
      size_t at = n ? next_rand() % n : 0;
      switch (next_rand() % 5) {
      case 0: /* replace a byte */
        if (n)
          buf[at] = interesting[next_rand() % (sizeof interesting - 1)];
        break;
      case 1: /* insert a byte */
        if (n + 1 < sizeof buf) {
          memmove(buf + at + 1, buf + at, n - at);
          buf[at] = interesting[next_rand() % (sizeof interesting - 1)];
          n++;
        }
        break;
      case 2: /* delete a span */
        if (n) {
          size_t len = 1 + next_rand() % 8;
          if (len > n - at)
            len = n - at;
          memmove(buf + at, buf + at + len, n - at - len);
          n -= len;
        }
        break;
      case 3: /* truncate */
        n = at;
        break;
      default: /* duplicate a span */
        if (n && n * 2 < sizeof buf) {
          size_t len = 1 + next_rand() % (n - at);
          memmove(buf + at + len, buf + at, n - at);
          n += len;
        }
        break;
      }
    }
    /* an exact-size heap copy, so ASan sees any read past the end */
    char *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    roundtrip_or_reject(exact, n, &accepted);
    free(exact);
  }
  /* the mutants must exercise both paths, or the fuzz proves nothing */
  CHECK(accepted > rounds / 100);
  CHECK(accepted < rounds);
  for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
    int a = 0;
    roundtrip_or_reject(seeds[i], strlen(seeds[i]), &a);
    CHECK_INT(a, 1);
  }
}

int main(void)
{
  test_accept_reject();
  test_depth();
  test_values();
  test_writer();
  test_fuzz();
  return check_report("json");
}
