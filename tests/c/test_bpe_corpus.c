/* Exactness: every input of the tokenizer corpus encodes to the very ids
 * that the official tiktoken (npm, WASM build) gave for it, recorded in
 * tests/tokens/fixtures.tsv by scripts/tokens_fixtures.js as a count and a
 * sha256 of the ids. Inputs: the .txt files of tests/tokens/corpus, plus "@adversarial"
 * and "@sweep", generated here by the same rules as in that script. Also
 * checks that decoding gives the input back and that count == #encode. */
#include <stdlib.h>

#include "check.h"
#include "digest.h"
#include "bpe/bpe.h"

/* The hex SHA-256 of data (src/digest.h). */
static void sha256_hex_of(const void *data, size_t len, char out[65])
{
  uint8_t d[LLM_SHA256_SIZE];
  llm_sha256(data, len, d);
  llm_hex(d, sizeof d, out);
}

typedef struct {
  char *data;
  size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->data = realloc(b->data, b->cap);
    if (!b->data)
      abort();
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static const char *source_dir(void)
{
  const char *d = getenv("LLMRUN_SOURCE_DIR");
  return d && *d ? d : LLMRUN_SOURCE_DIR;
}

static int read_file(const char *path, buf *out)
{
  FILE *f = fopen(path, "rb");
  char chunk[65536];
  size_t n;
  if (!f)
    return -1;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    put(out, chunk, n);
  fclose(f);
  return 0;
}

/* "COUNT HEX" lines: HEX's bytes COUNT times (see adversarial.spec). */
static int make_adversarial(buf *out)
{
  char path[4096], line[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/tests/tokens/adversarial.spec", source_dir());
  if (!(f = fopen(path, "r")))
    return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long count;
    char hex[400];
    uint8_t bytes[200];
    size_t n = 0;
    if (sscanf(line, "%lu %399[0-9a-f]", &count, hex) != 2)
      continue;
    for (; hex[2 * n] && hex[2 * n + 1]; n++) {
      unsigned v;
      sscanf(hex + 2 * n, "%2x", &v);
      bytes[n] = (uint8_t)v;
    }
    while (count--)
      put(out, bytes, n);
  }
  fclose(f);
  return 0;
}

static size_t utf8(uint32_t cp, char *o)
{
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Each code point c of the ranges in the line "a" c "'s" c "A" c "1 " c
 * "!" c c "\n", as in scripts/tokens_fixtures.js. */
static void make_sweep(buf *out)
{
  static const uint32_t ranges[][2] = { {0x0, 0xD7FF}, {0xE000, 0x3FFFF}, {0xE0000, 0xE0FFF} };
  for (size_t r = 0; r < 3; r++)
    for (uint32_t cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
      char c[4];
      size_t n = utf8(cp, c);
      put(out, "a", 1), put(out, c, n), put(out, "'s", 2), put(out, c, n);
      put(out, "A", 1), put(out, c, n), put(out, "1 ", 2), put(out, c, n);
      put(out, "!", 1), put(out, c, n), put(out, c, n), put(out, "\n", 1);
    }
}

static void check_row(const char *name, const char *in_sha, size_t in_len, const char *encoding,
                      size_t want_tokens, const char *want_sha)
{
  buf in = {0};
  char path[4096], got_sha[65], err[256];
  const llm_bpe *e = llm_bpe_get(encoding, err, sizeof err);
  llm_bpe_ids ids = {0};
  size_t n, len;
  char *back;
  uint8_t *le;
  if (!e) {
    check_fail(__FILE__, __LINE__, "%s: %s", encoding, err);
    return;
  }
  if (strcmp(name, "@adversarial") == 0)
    make_adversarial(&in);
  else if (strcmp(name, "@sweep") == 0)
    make_sweep(&in);
  else {
    snprintf(path, sizeof path, "%s/tests/tokens/corpus/%s", source_dir(), name);
    if (read_file(path, &in) != 0)
      check_fail(__FILE__, __LINE__, "cannot read %s", path);
  }
  put(&in, "", 1); /* room for empty files; not part of the text */
  in.len--;
  sha256_hex_of(in.data, in.len, got_sha);
  if (in.len != in_len || strcmp(got_sha, in_sha) != 0) {
    check_fail(__FILE__, __LINE__, "%s: input differs from the oracle's (%zu bytes)", name, in.len);
    free(in.data);
    return;
  }
  CHECK_INT(llm_bpe_encode(e, in.data, in.len, 0, &ids), 0);
  le = malloc(ids.n * 4 + 1);
  for (size_t i = 0; i < ids.n; i++)
    for (int k = 0; k < 4; k++)
      le[4 * i + k] = (uint8_t)(ids.ids[i] >> (8 * k));
  sha256_hex_of(le, ids.n * 4, got_sha);
  if (ids.n != want_tokens || strcmp(got_sha, want_sha) != 0)
    check_fail(__FILE__, __LINE__, "%s %s: %zu tokens (want %zu), ids %s",
               name, encoding, ids.n, want_tokens,
               strcmp(got_sha, want_sha) == 0 ? "equal" : "DIFFER");
  else
    check_passed++;
  n = llm_bpe_count(e, in.data, in.len, 0);
  CHECK_INT(n, ids.n);
  back = llm_bpe_decode(e, ids.ids, ids.n, &len, err, sizeof err);
  CHECK(back != NULL);
  if (back)
    CHECK_MEM(back, len, in.data, in.len);
  printf("  %-20s %-12s %9zu bytes %8zu tokens %s\n", name, encoding, in.len, ids.n,
         ids.n == want_tokens && strcmp(got_sha, want_sha) == 0 ? "identical" : "DIFFERENT");
  free(back);
  free(le);
  llm_bpe_ids_free(&ids);
  free(in.data);
}

int main(void)
{
  char path[4096], line[1024];
  FILE *f;
  int rows = 0;
  snprintf(path, sizeof path, "%s/tests/tokens/fixtures.tsv", source_dir());
  if (!(f = fopen(path, "r"))) {
    check_fail(__FILE__, __LINE__, "cannot open %s", path);
    return check_report("bpe_corpus");
  }
  while (fgets(line, sizeof line, f)) {
    char name[256], in_sha[65], encoding[64], ids_sha[65];
    size_t in_len, tokens;
    if (line[0] == '#')
      continue;
    if (sscanf(line, "%255[^\t]\t%64[0-9a-f]\t%zu\t%63[^\t]\t%zu\t%64[0-9a-f]", name, in_sha,
               &in_len, encoding, &tokens, ids_sha) != 6) {
      check_fail(__FILE__, __LINE__, "bad fixture line: %s", line);
      continue;
    }
    check_row(name, in_sha, in_len, encoding, tokens, ids_sha);
    rows++;
  }
  fclose(f);
  CHECK(rows >= 40); /* 13 inputs x 4 encodings; a lost file must not pass */
  return check_report("bpe_corpus");
}
