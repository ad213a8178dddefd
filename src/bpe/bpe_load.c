/* Building an encoding: from a .tiktoken rank file ("base64(token) rank"
 * per line, tiktoken/load.py load_tiktoken_bpe), or from a blob that
 * src/bpe/vocab/bpe_pack.c made from one at build time. The parser trusts
 * nothing: malformed, truncated or inconsistent input is a clear error,
 * never a crash or a half-built encoding. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "bpe_internal.h"

#define MAX_RANKS (1u << 24) /* far above any real vocabulary */

enum { OWN_STRUCT_PARTS = 8 };

static void *fail(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  if (err && errlen) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return NULL;
}

void llm_bpe_free(llm_bpe *e)
{
  if (!e)
    return;
  for (int i = 0; i < OWN_STRUCT_PARTS; i++)
    free(e->owned[i]);
  free(e);
}

static void *own(llm_bpe *e, void *p)
{
  for (int i = 0; i < OWN_STRUCT_PARTS; i++)
    if (!e->owned[i])
      return e->owned[i] = p;
  abort(); /* a programming error: more parts than slots */
}

/* Base64 digit value + 1 (so 0 means "not base64"); 65 for '='. */
static const uint8_t b64_table[256] = {
  ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
  ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13,
  ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19,
  ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
  ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
  ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
  ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
  ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
  ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
  ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
  ['9'] = 62, ['+'] = 63, ['/'] = 64, ['='] = 65,
};

/* Decodes standard padded base64 s[0..n) into out; returns the length or
 * -1 when it is not valid base64. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out)
{
  size_t o = 0;
  if (n == 0 || n % 4 != 0)
    return -1;
  for (size_t i = 0; i < n; i += 4) {
    /* as digit values: 0-63, 64 for '=', 255 for anything else */
    uint8_t a = (uint8_t)(b64_table[s[i]] - 1), b = (uint8_t)(b64_table[s[i + 1]] - 1);
    uint8_t c = (uint8_t)(b64_table[s[i + 2]] - 1), d = (uint8_t)(b64_table[s[i + 3]] - 1);
    if (a > 63 || b > 63 || c == 255 || d == 255 || (c == 64 && d != 64))
      return -1;
    if (c == 64 || d == 64) { /* padding: only in the last group */
      if (i + 4 != n)
        return -1;
      out[o++] = (uint8_t)(a << 2 | b >> 4);
      if (c != 64)
        out[o++] = (uint8_t)(b << 4 | c >> 2);
      break;
    }
    out[o++] = (uint8_t)(a << 2 | b >> 4);
    out[o++] = (uint8_t)(b << 4 | c >> 2);
    out[o++] = (uint8_t)(c << 6 | d);
  }
  return (long)o;
}

/* ---- the tables ---------------------------------------------------------------- */

static int insert_rank(llm_bpe *e, uint32_t *slots, uint32_t r)
{
  uint32_t off = e->tok_off[r];
  const uint8_t *p = e->bytes + off;
  size_t n = llm_bpe_tok_len(e, r);
  for (uint32_t i = (uint32_t)llm_bpe_hash(p, n) & e->mask;; i = (i + 1) & e->mask) {
    uint32_t slot = slots[i];
    if (slot == 0) {
      slots[i] = off << 8 | (uint32_t)n;
      return 0;
    }
    if ((slot & 0xFF) == n && memcmp(e->bytes + (slot >> 8), p, n) == 0)
      return -1; /* the same bytes twice */
  }
}

/* Hash, byte and pair tables for tok_off and bytes. */
static int build_tables(llm_bpe *e, size_t count, char *err, size_t errlen)
{
  uint32_t cap = 1024, *slots, *pairs;
  while (cap < 2 * count)
    cap *= 2; /* load factor <= 1/2 keeps linear probing short */
  e->mask = cap - 1;
  e->slots = slots = own(e, calloc(cap, sizeof *slots));
  e->pair_rank = pairs = own(e, malloc(65536 * sizeof *pairs));
  if (!slots || !pairs) {
    fail(err, errlen, "out of memory");
    return -1;
  }
  for (uint32_t r = 0; r < e->n_ranks; r++)
    if (e->tok_off[r] && insert_rank(e, slots, r) != 0) {
      fail(err, errlen, "%s: the token of rank %u appears twice", e->name, (unsigned)r);
      return -1;
    }
  for (int b = 0; b < 256; b++) {
    uint8_t byte = (uint8_t)b;
    e->byte_rank[b] = llm_bpe_rank(e, &byte, 1);
    if (e->byte_rank[b] == LLM_BPE_NO_RANK) {
      /* without every single byte some input could not be encoded */
      fail(err, errlen, "%s: no token for the single byte 0x%02x", e->name, b);
      return -1;
    }
  }
  for (size_t i = 0; i < 65536; i++)
    pairs[i] = LLM_BPE_NO_RANK;
  for (uint32_t r = 0; r < e->n_ranks; r++)
    if (llm_bpe_tok_len(e, r) == 2) {
      const uint8_t *p = e->bytes + e->tok_off[r];
      pairs[(p[0] << 8) | p[1]] = r;
    }
  return 0;
}

static int add_specials(llm_bpe *e, const llm_bpe_special_token *sp, size_t n,
                        char *err, size_t errlen)
{
  llm_bpe_special *list;
  e->n_vocab = e->n_ranks;
  if (n == 0)
    return 0;
  e->special = list = own(e, calloc(n, sizeof *list));
  if (!list) {
    fail(err, errlen, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(sp[i].text);
    if (len == 0 || (sp[i].id < e->n_ranks && e->tok_off[sp[i].id])) {
      fail(err, errlen, "%s: special token %zu is empty or has an ordinary rank", e->name, i);
      return -1;
    }
    /* the caller's strings are static (built-ins) or copied by it */
    list[i] = (llm_bpe_special){ (const uint8_t *)sp[i].text, len, sp[i].id };
    e->special_first[(uint8_t)sp[i].text[0]] = 1;
    if (sp[i].id + 1 > e->n_vocab)
      e->n_vocab = sp[i].id + 1;
  }
  e->n_special = n;
  return 0;
}

/* Copies the special tokens' strings into one buffer the encoding owns. */
static llm_bpe_special_token *copy_specials(llm_bpe *e, const llm_bpe_special_token *sp,
                                            size_t n)
{
  size_t total = n * sizeof(llm_bpe_special_token);
  llm_bpe_special_token *copy;
  char *text;
  for (size_t i = 0; i < n; i++)
    total += strlen(sp[i].text) + 1;
  copy = own(e, malloc(total ? total : 1));
  if (!copy)
    return NULL;
  text = (char *)(copy + n);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(sp[i].text) + 1;
    memcpy(text, sp[i].text, len);
    copy[i] = (llm_bpe_special_token){ text, sp[i].id };
    text += len;
  }
  return copy;
}

/* ---- .tiktoken files ---------------------------------------------------------------- */

/* First pass: checks the shape of every line and finds the number of
 * lines, the highest rank and the decoded size, so the second pass writes
 * straight into arrays of the right size. */
static int scan_lines(const uint8_t *s, size_t n, size_t *lines, uint32_t *max_rank,
                      size_t *nbytes, char *err, size_t errlen)
{
  size_t line = 0;
  *max_rank = 0;
  *nbytes = 0;
  for (size_t i = 0; i < n;) {
    const uint8_t *nl = memchr(s + i, '\n', n - i), *sp;
    size_t end, rank = 0, b64;
    line++;
    if (!nl) {
      fail(err, errlen, "line %zu: truncated (the data does not end with a newline)", line);
      return -1;
    }
    end = (size_t)(nl - s);
    sp = memchr(s + i, ' ', end - i);
    if (!sp || sp == s + i || (size_t)(sp - s) + 1 >= end) {
      fail(err, errlen, "line %zu: expected \"base64 rank\"", line);
      return -1;
    }
    for (const uint8_t *d = sp + 1; d < s + end; d++) {
      if (*d < '0' || *d > '9' || rank >= MAX_RANKS) {
        fail(err, errlen, "line %zu: bad rank", line);
        return -1;
      }
      rank = rank * 10 + (size_t)(*d - '0');
    }
    if (rank >= MAX_RANKS) {
      fail(err, errlen, "line %zu: bad rank", line);
      return -1;
    }
    if (rank > *max_rank)
      *max_rank = (uint32_t)rank;
    b64 = (size_t)(sp - (s + i));
    *nbytes += 4 + b64 / 4 * 3; /* rank, length, token: an upper bound */
    i = end + 1;
  }
  *lines = line;
  return 0;
}

llm_bpe *llm_bpe_load_tiktoken(const char *name, llm_bpe_pattern pattern,
                               const void *data, size_t len, uint32_t expect_ranks,
                               const llm_bpe_special_token *specials, size_t n_special,
                               char *err, size_t errlen)
{
  const uint8_t *s = data;
  llm_bpe *e = calloc(1, sizeof *e);
  size_t lines = 0, nbytes = 0, used = 0;
  uint32_t max_rank = 0, *tok_off;
  uint8_t *bytes;
  const llm_bpe_special_token *sp_copy = NULL;
  if (!e)
    return fail(err, errlen, "out of memory");
  snprintf(e->name, sizeof e->name, "%s", name ? name : "custom");
  e->pattern = pattern;
  if (scan_lines(s, len, &lines, &max_rank, &nbytes, err, errlen) != 0)
    goto error;
  if (lines == 0 || (expect_ranks && lines != expect_ranks)) {
    fail(err, errlen, "%s: %zu ranks, expected %u (truncated or wrong rank file?)",
         e->name, lines, (unsigned)expect_ranks);
    goto error;
  }
  if (nbytes >= LLM_BPE_MAX_BYTES) {
    fail(err, errlen, "%s: vocabulary too large (over 16 MB of tokens)", e->name);
    goto error;
  }
  e->n_ranks = max_rank + 1;
  e->bytes = bytes = own(e, calloc(1, nbytes + LLM_BPE_BYTES_SLACK));
  e->tok_off = tok_off = own(e, calloc(e->n_ranks, sizeof *tok_off));
  if (!bytes || !tok_off) {
    fail(err, errlen, "out of memory");
    goto error;
  }
  for (size_t i = 0, line = 1; i < len; line++) {
    const uint8_t *sp = memchr(s + i, ' ', len - i), *nl = memchr(sp, '\n', len - (size_t)(sp - s));
    uint32_t rank = 0;
    long k;
    for (const uint8_t *d = sp + 1; d < nl; d++)
      rank = rank * 10 + (uint32_t)(*d - '0');
    k = b64_decode(s + i, (size_t)(sp - (s + i)), bytes + used + 4);
    if (k <= 0 || k > LLM_BPE_MAX_TOKEN_LEN) {
      fail(err, errlen, k <= 0 ? "line %zu: bad base64 token" : "line %zu: token too long", line);
      goto error;
    }
    if (tok_off[rank]) {
      fail(err, errlen, "line %zu: rank %u appears twice", line, (unsigned)rank);
      goto error;
    }
    bytes[used] = (uint8_t)rank;
    bytes[used + 1] = (uint8_t)(rank >> 8);
    bytes[used + 2] = (uint8_t)(rank >> 16);
    bytes[used + 3] = (uint8_t)k;
    tok_off[rank] = (uint32_t)used + 4;
    if ((uint32_t)k > e->max_len)
      e->max_len = (uint32_t)k;
    used += 4 + (size_t)k;
    i = (size_t)(nl - s) + 1;
  }
  e->n_bytes = used;
  if (n_special && !(sp_copy = copy_specials(e, specials, n_special))) {
    fail(err, errlen, "out of memory");
    goto error;
  }
  if (build_tables(e, lines, err, errlen) != 0 ||
      add_specials(e, sp_copy, n_special, err, errlen) != 0)
    goto error;
  return e;
error:
  llm_bpe_free(e);
  return NULL;
}

/* ---- blobs ---------------------------------------------------------------------------- */

static int section_ok(const llm_bpe_blob_header *h, uint32_t off, uint64_t size)
{
  return off % 16 == 0 && off >= sizeof *h && (uint64_t)off + size <= h->size;
}

llm_bpe *llm_bpe_from_blob(const char *name, llm_bpe_pattern pattern, const void *blob,
                           size_t len, uint32_t limit_ranks,
                           const llm_bpe_special_token *specials, size_t n_special,
                           char *err, size_t errlen)
{
  const llm_bpe_blob_header *h = blob;
  const uint8_t *base = blob;
  llm_bpe *e;
  if (len < sizeof *h || memcmp(h->magic, LLM_BPE_BLOB_MAGIC, 8) != 0 ||
      h->endian != LLM_BPE_BLOB_ENDIAN || h->size != len)
    return fail(err, errlen, "%s: not a vocabulary image for this machine", name);
  if (h->hash_check != llm_bpe_blob_hash_check())
    return fail(err, errlen, "%s: vocabulary image made with another hash function", name);
  if (h->n_ranks == 0 || h->n_ranks >= MAX_RANKS || h->max_len > LLM_BPE_MAX_TOKEN_LEN ||
      (h->mask & (h->mask + 1)) != 0 || h->mask < h->n_ranks ||
      h->n_bytes >= LLM_BPE_MAX_BYTES ||
      !section_ok(h, h->off_bytes, (uint64_t)h->n_bytes + LLM_BPE_BYTES_SLACK) ||
      !section_ok(h, h->off_tok_off, (uint64_t)h->n_ranks * 4) ||
      !section_ok(h, h->off_slots, ((uint64_t)h->mask + 1) * 4) ||
      !section_ok(h, h->off_pair_rank, 65536 * 4))
    return fail(err, errlen, "%s: corrupt vocabulary image", name);
  e = calloc(1, sizeof *e);
  if (!e)
    return fail(err, errlen, "out of memory");
  snprintf(e->name, sizeof e->name, "%s", name);
  e->pattern = pattern;
  e->n_ranks = limit_ranks && limit_ranks < h->n_ranks ? limit_ranks : h->n_ranks;
  e->max_len = h->max_len;
  e->bytes = base + h->off_bytes;
  e->n_bytes = h->n_bytes;
  e->tok_off = (const uint32_t *)(base + h->off_tok_off);
  e->slots = (const uint32_t *)(base + h->off_slots);
  e->mask = h->mask;
  e->pair_rank = (const uint32_t *)(base + h->off_pair_rank);
  memcpy(e->byte_rank, h->byte_rank, sizeof e->byte_rank);
  for (int b = 0; b < 256; b++)
    if (e->byte_rank[b] >= e->n_ranks) {
      fail(err, errlen, "%s: no token for the single byte 0x%02x", name, b);
      llm_bpe_free(e);
      return NULL;
    }
  if (e->n_ranks < h->n_ranks) {
    /* hide the pair tokens past the limit */
    uint32_t *pairs = own(e, malloc(65536 * sizeof *pairs));
    if (!pairs) {
      llm_bpe_free(e);
      return fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < 65536; i++)
      pairs[i] = e->pair_rank[i] < e->n_ranks ? e->pair_rank[i] : LLM_BPE_NO_RANK;
    e->pair_rank = pairs;
  }
  if (add_specials(e, specials, n_special, err, errlen) != 0) {
    llm_bpe_free(e);
    return NULL;
  }
  return e;
}
