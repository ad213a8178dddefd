/* The strict JSON reader of json.h: recursive descent over the bytes, with
 * every node, string and array of children allocated in one arena so a
 * whole document is freed at once. Children of an array or object are
 * collected on a shared scratch stack and copied to the arena when the
 * container closes, so each container's children are contiguous. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------- */

typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  max_align_t data[]; /* aligned for any node */
} arena_block;

struct json_doc {
  arena_block *blocks;
  json_value root;
  /* then, in the same allocation, the first arena block (first_block) */
};

#define ALIGN_UP(n) (((n) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1))
static arena_block *first_block(json_doc *d)
{
  return (arena_block *)((char *)d + ALIGN_UP(sizeof *d));
}

/* The first block's size for a text of len bytes: a small document's whole
 * tree in the doc's one allocation (a parse used to cost a calloc, an 8 KB
 * block and the scratch stacks' reallocations), a large one's first part. */
#define FIRST_BLOCK_MIN 1024
#define FIRST_BLOCK_MAX 32768
static size_t first_block_size(size_t len)
{
  size_t cap = len * 6 + 1024; /* about what small documents take: nodes + strings */
  if (cap < FIRST_BLOCK_MIN)
    cap = FIRST_BLOCK_MIN;
  if (cap > FIRST_BLOCK_MAX)
    cap = FIRST_BLOCK_MAX;
  return ALIGN_UP(cap);
}

/* n bytes at the given alignment (a power of two, at most max_align_t's). */
static void *arena_get(json_doc *d, size_t n, size_t align)
{
  arena_block *b = d->blocks;
  size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;
  if (!b || at > b->cap || b->cap - at < n) {
    size_t cap = ALIGN_UP(n > 8192 ? n : 8192);
    arena_block *nb = malloc(sizeof *nb + cap);
    if (!nb)
      return NULL;
    nb->used = 0;
    nb->cap = cap;
    /* A large one-off allocation goes behind the current block so the
     * current block keeps serving small ones. */
    if (b && n > 8192) {
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      d->blocks = nb;
    }
    b = nb;
    at = 0; /* data is aligned for anything */
  }
  b->used = at + n;
  return (char *)b->data + at;
}

/* Nodes (values, members, arrays of them): aligned for any of them. */
static void *arena_alloc(json_doc *d, size_t n) { return arena_get(d, n, sizeof(max_align_t)); }
/* Strings and number texts: bytes, packed. */
static char *arena_chars(json_doc *d, size_t n) { return arena_get(d, n, 1); }

void json_free(json_doc *doc)
{
  if (!doc)
    return;
  for (arena_block *b = doc->blocks, *next; b; b = next) {
    next = b->next;
    if (b != first_block(doc))
      free(b);
  }
  free(doc);
}

/* ---- parser state ---------------------------------------------------------------- */

typedef struct parser {
  const unsigned char *p, *start, *end;
  json_doc *doc;
  json_error *err;
  int failed;
  /* scratch stacks for the children of open containers */
  json_value *vals;
  size_t nvals, capvals;
  json_member *mems;
  size_t nmems, capmems;
  /* their first room, on the C stack: most documents never need more */
#define SCRATCH0 32
  json_value vals0[SCRATCH0];
  json_member mems0[SCRATCH0];
} parser;

/* llm_grow for a scratch stack that starts in the parser's own array:
 * the first growth copies it to the heap. */
static int grow_scratch(void *items, size_t *cap, size_t need, size_t size, void *inline0)
{
  void **p = items;
  if (need <= *cap)
    return 0;
  if (*p == inline0) {
    size_t ncap = *cap * 2 >= need ? *cap * 2 : need;
    void *heap = malloc(ncap * size);
    if (!heap)
      return -1;
    memcpy(heap, inline0, *cap * size);
    *p = heap;
    *cap = ncap;
    return 0;
  }
  return llm_grow(items, cap, need, size);
}

static void fail(parser *ps, const unsigned char *at, const char *fmt, const char *arg)
{
  if (ps->failed)
    return;
  ps->failed = 1;
  ps->err->offset = (size_t)(at - ps->start);
  snprintf(ps->err->message, sizeof ps->err->message, fmt, arg);
}

static void fail_char(parser *ps, const unsigned char *at, const char *what)
{
  char buf[48];
  if (at >= ps->end)
    snprintf(buf, sizeof buf, "end of input (%s)", what);
  else if (*at >= 0x20 && *at < 0x7f)
    snprintf(buf, sizeof buf, "'%c' (%s)", *at, what);
  else
    snprintf(buf, sizeof buf, "byte 0x%02x (%s)", *at, what);
  fail(ps, at, "unexpected %s", buf);
}

static void oom(parser *ps) { fail(ps, ps->p, "%s", "out of memory"); }

static void skip_ws(parser *ps)
{
  const unsigned char *p = ps->p;
  while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  ps->p = p;
}

/* ---- strings ----------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
  unsigned c = p[0];
  size_t n;
  unsigned lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    else if (c == 0xed)
      hi = 0x9f; /* UTF-16 surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else
    return 0;
  if ((size_t)(end - p) < n)
    return 0;
  if (p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return n;
}

/* Bytes of the maximal subpart of an ill-formed sequence at p (the WHATWG
 * decoder's rule: the lead byte and the continuation bytes that could
 * still have completed it), at least 1. */
static size_t bad_len(const unsigned char *p, const unsigned char *end)
{
  unsigned c = p[0], lo = 0x80, hi = 0xbf;
  size_t need, i = 1;
  if (c >= 0xc2 && c <= 0xdf)
    need = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    need = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else
    return 1;
  while (i < need && p + i < end && p[i] >= lo && p[i] <= hi) {
    i++;
    lo = 0x80;
    hi = 0xbf;
  }
  return i;
}

int json_utf8_scrub(const char *text, size_t len, char **out, size_t *outlen)
{
  const unsigned char *p = (const unsigned char *)text, *end = p + len, *ok;
  char *buf, *o;
  size_t n;
  for (;;) {
    /* ASCII eight bytes at a time (memcpy: no alignment assumed) */
    uint64_t w;
    while ((size_t)(end - p) >= 8 && (memcpy(&w, p, 8), (w & 0x8080808080808080ull) == 0))
      p += 8;
    if (p == end || (*p >= 0x80 && (n = utf8_len(p, end)) == 0))
      break;
    p += *p < 0x80 ? 1 : n;
  }
  if (p == end)
    return 0; /* valid: nothing to replace */
  /* each bad byte becomes at most 3 bytes */
  if (len > ((size_t)-1 - 1) / 3 || !(buf = malloc(len * 3 + 1)))
    return -1;
  ok = (const unsigned char *)text;
  memcpy(buf, ok, (size_t)(p - ok));
  o = buf + (p - ok);
  while (p < end) {
    if (*p < 0x80) {
      *o++ = (char)*p++;
    } else if ((n = utf8_len(p, end)) != 0) {
      memcpy(o, p, n);
      o += n;
      p += n;
    } else {
      memcpy(o, "\xEF\xBF\xBD", 3);
      o += 3;
      p += bad_len(p, end);
    }
  }
  *o = '\0';
  *out = buf;
  *outlen = (size_t)(o - buf);
  return 1;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
  unsigned v = 0;
  if (end - p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  *out = v;
  return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xc0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xe0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *o++ = (char)(0xf0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *o++ = (char)(0x80 | (cp & 0x3f));
  }
  return o;
}

/* ps->p is at the opening quote. The unescaped text is never longer than
 * the escaped one (\uXXXX is 6 bytes for at most 3 of UTF-8; a pair is 12
 * for 4), so one allocation of the raw length suffices. */
/* Does any of the 8 bytes in w need a look: '"', '\\', a control byte
 * (< 0x20) or a byte of a multi-byte sequence (>= 0x80)? Bit tricks: a
 * zero byte in x shows in (x - 0x01..) & ~x & 0x80..; false positives only
 * send a plain word to the byte-by-byte path. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static uint64_t swar_special(uint64_t w)
{
  uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');
  return (((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash) | ((w - ONES * 0x20) & ~w) | w) &
         HIGHS;
}

/* The offset of the first byte that needs a look in a word with such
 * bytes (the lowest flag is exact: false positives only sit above a true
 * one); 0 where the byte order is not little-endian (look from the start). */
static size_t first_special(uint64_t mask)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return (size_t)__builtin_ctzll(mask) >> 3;
#else
  (void)mask;
  return 0;
#endif
}

static int parse_string(parser *ps, const char **out, size_t *outlen)
{
  const unsigned char *p = ps->p + 1, *q = p;
  int escapes = 0;
  char *buf, *o;
  /* first pass: find the end, validate bytes */
  for (;;) {
    /* plain bytes eight at a time (most of a body is plain ASCII text) */
    uint64_t w, special;
    /* (q may be past the end after an escape at the very end) */
    while (q < ps->end && (size_t)(ps->end - q) >= 8) {
      memcpy(&w, q, 8);
      if ((special = swar_special(w)) != 0) {
        q += first_special(special);
        break;
      }
      q += 8;
    }
    if (q >= ps->end) {
      fail(ps, q, "%s", "unterminated string");
      return -1;
    }
    if (*q == '"')
      break;
    if (*q == '\\') {
      escapes = 1;
      q += 2; /* the escaped character is checked in the second pass */
      continue;
    }
    if (*q < 0x20) {
      fail_char(ps, q, "control character in string");
      return -1;
    }
    if (*q >= 0x80) {
      size_t n = utf8_len(q, ps->end);
      if (n == 0) {
        fail(ps, q, "%s", "invalid UTF-8 in string");
        return -1;
      }
      q += n;
      continue;
    }
    q++;
  }
  buf = arena_chars(ps->doc, (size_t)(q - p) + 1);
  if (!buf) {
    oom(ps);
    return -1;
  }
  if (!escapes) {
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    *out = buf;
    *outlen = (size_t)(q - p);
    ps->p = q + 1;
    return 0;
  }
  o = buf;
  while (p < q) {
    if (*p != '\\') {
      *o++ = (char)*p++;
      continue;
    }
    p++;
    switch (*p) {
    case '"': *o++ = '"'; p++; break;
    case '\\': *o++ = '\\'; p++; break;
    case '/': *o++ = '/'; p++; break;
    case 'b': *o++ = '\b'; p++; break;
    case 'f': *o++ = '\f'; p++; break;
    case 'n': *o++ = '\n'; p++; break;
    case 'r': *o++ = '\r'; p++; break;
    case 't': *o++ = '\t'; p++; break;
    case 'u': {
      unsigned cp, lo;
      if (hex4(p + 1, q, &cp) != 0) {
        fail(ps, p - 1, "%s", "bad \\u escape");
        return -1;
      }
      p += 5;
      if (cp >= 0xd800 && cp <= 0xdbff && q - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
          hex4(p + 2, q, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd; /* lone surrogate */
      }
      o = put_utf8(o, cp);
      break;
    }
    default:
      fail_char(ps, p, "bad escape");
      return -1;
    }
  }
  *o = '\0';
  *out = buf;
  *outlen = (size_t)(o - buf);
  ps->p = q + 1;
  return 0;
}

/* ---- numbers --------------------------------------------------------------------------- */

static int parse_number(parser *ps, json_value *v)
{
  const unsigned char *p = ps->p, *s = p;
  char *copy, *endp;
  size_t n;
  int plain = 1; /* an integer literal: no fraction, no exponent */
  if (p < ps->end && *p == '-')
    p++;
  if (p < ps->end && *p == '0') {
    p++;
  } else if (p < ps->end && *p >= '1' && *p <= '9') {
    while (p < ps->end && *p >= '0' && *p <= '9')
      p++;
  } else {
    fail_char(ps, p, "expected a digit");
    return -1;
  }
  if (p < ps->end && *p == '.') {
    plain = 0;
    p++;
    if (p >= ps->end || *p < '0' || *p > '9') {
      fail_char(ps, p, "expected a digit after '.'");
      return -1;
    }
    while (p < ps->end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < ps->end && (*p == 'e' || *p == 'E')) {
    plain = 0;
    p++;
    if (p < ps->end && (*p == '+' || *p == '-'))
      p++;
    if (p >= ps->end || *p < '0' || *p > '9') {
      fail_char(ps, p, "expected a digit in the exponent");
      return -1;
    }
    while (p < ps->end && *p >= '0' && *p <= '9')
      p++;
  }
  n = (size_t)(p - s);
  /* the text is kept in the arena, so the doc never points into the
   * caller's buffer (which may be freed before the doc) */
  copy = arena_chars(ps->doc, n + 1);
  if (!copy) {
    oom(ps);
    return -1;
  }
  memcpy(copy, s, n);
  copy[n] = '\0';
  v->type = JSON_NUMBER;
  if (plain && n - (*s == '-') <= 15) {
    /* at most 15 digits: below 2^53, so the integer is exactly the double
     * strtod would round it to (most numbers in a response are counts) */
    int64_t acc = 0;
    for (size_t i = *s == '-'; i < n; i++)
      acc = acc * 10 + (s[i] - '0');
    v->u.number.value = *s == '-' ? -(double)acc : (double)acc;
  } else {
    v->u.number.value = strtod(copy, &endp);
  }
  if (isinf(v->u.number.value)) {
    fail(ps, s, "%s", "number out of range");
    return -1;
  }
  v->u.number.text = copy;
  v->u.number.len = n;
  ps->p = p;
  return 0;
}

/* ---- values ------------------------------------------------------------------------------ */

static int push_val(parser *ps, const json_value *v)
{
  if (ps->nvals == ps->capvals &&
      grow_scratch(&ps->vals, &ps->capvals, ps->nvals + 1, sizeof *ps->vals, ps->vals0) != 0) {
    oom(ps);
    return -1;
  }
  ps->vals[ps->nvals++] = *v;
  return 0;
}

static int push_mem(parser *ps, const json_member *m)
{
  if (ps->nmems == ps->capmems &&
      grow_scratch(&ps->mems, &ps->capmems, ps->nmems + 1, sizeof *ps->mems, ps->mems0) != 0) {
    oom(ps);
    return -1;
  }
  ps->mems[ps->nmems++] = *m;
  return 0;
}

static int literal(parser *ps, const char *word, size_t n, json_type t, json_value *v)
{
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
    fail_char(ps, ps->p, "expected a value");
    return -1;
  }
  ps->p += n;
  v->type = t;
  return 0;
}

static int parse_value(parser *ps, json_value *v, int depth);

static int parse_array(parser *ps, json_value *v, int depth)
{
  size_t base = ps->nvals, n;
  ps->p++; /* [ */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
  } else {
    for (;;) {
      json_value item;
      if (parse_value(ps, &item, depth + 1) != 0 || push_val(ps, &item) != 0)
        return -1;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        continue;
      }
      if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        break;
      }
      fail_char(ps, ps->p, "expected ',' or ']'");
      return -1;
    }
  }
  n = ps->nvals - base;
  v->type = JSON_ARRAY;
  v->u.array.n = n;
  v->u.array.items = NULL;
  if (n) {
    v->u.array.items = arena_alloc(ps->doc, n * sizeof(json_value));
    if (!v->u.array.items) {
      oom(ps);
      return -1;
    }
    memcpy(v->u.array.items, ps->vals + base, n * sizeof(json_value));
  }
  ps->nvals = base;
  return 0;
}

static int parse_object(parser *ps, json_value *v, int depth)
{
  size_t base = ps->nmems, n;
  ps->p++; /* { */
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
  } else {
    for (;;) {
      json_member m;
      if (ps->p >= ps->end || *ps->p != '"') {
        fail_char(ps, ps->p, "expected a string key");
        return -1;
      }
      if (parse_string(ps, &m.key, &m.key_len) != 0)
        return -1;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        fail_char(ps, ps->p, "expected ':'");
        return -1;
      }
      ps->p++;
      if (parse_value(ps, &m.value, depth + 1) != 0 || push_mem(ps, &m) != 0)
        return -1;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_ws(ps);
        continue;
      }
      if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        break;
      }
      fail_char(ps, ps->p, "expected ',' or '}'");
      return -1;
    }
  }
  n = ps->nmems - base;
  v->type = JSON_OBJECT;
  v->u.object.n = n;
  v->u.object.members = NULL;
  if (n) {
    v->u.object.members = arena_alloc(ps->doc, n * sizeof(json_member));
    if (!v->u.object.members) {
      oom(ps);
      return -1;
    }
    memcpy(v->u.object.members, ps->mems + base, n * sizeof(json_member));
  }
  ps->nmems = base;
  return 0;
}

static int parse_value(parser *ps, json_value *v, int depth)
{
  skip_ws(ps);
  if (ps->p >= ps->end) {
    fail_char(ps, ps->p, "expected a value");
    return -1;
  }
  if (depth > JSON_MAX_DEPTH) {
    fail(ps, ps->p, "nesting deeper than %s levels", "128");
    return -1;
  }
  switch (*ps->p) {
  case '{': return parse_object(ps, v, depth);
  case '[': return parse_array(ps, v, depth);
  case '"':
    v->type = JSON_STRING;
    return parse_string(ps, &v->u.string.ptr, &v->u.string.len);
  case 't': return literal(ps, "true", 4, JSON_TRUE, v);
  case 'f': return literal(ps, "false", 5, JSON_FALSE, v);
  case 'n': return literal(ps, "null", 4, JSON_NULL, v);
  default:
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
      return parse_number(ps, v);
    fail_char(ps, ps->p, "expected a value");
    return -1;
  }
}

const json_value *json_parse(const char *text, size_t len, json_doc **docp, json_error *err)
{
  parser ps;
  json_error scratch;
  size_t first = first_block_size(len);
  json_doc *doc = malloc(ALIGN_UP(sizeof *doc) + sizeof(arena_block) + first);
  *docp = NULL;
  if (!err)
    err = &scratch;
  if (!doc) {
    err->offset = 0;
    snprintf(err->message, sizeof err->message, "out of memory");
    return NULL;
  }
  doc->blocks = first_block(doc);
  doc->blocks->next = NULL;
  doc->blocks->used = 0;
  doc->blocks->cap = first;
  ps.failed = 0;
  ps.nvals = ps.nmems = 0;
  ps.vals = ps.vals0;
  ps.capvals = SCRATCH0;
  ps.mems = ps.mems0;
  ps.capmems = SCRATCH0;
  ps.p = ps.start = (const unsigned char *)text;
  ps.end = ps.p + len;
  ps.doc = doc;
  ps.err = err;
  if (parse_value(&ps, &doc->root, 1) == 0) {
    skip_ws(&ps);
    if (ps.p != ps.end)
      fail_char(&ps, ps.p, "trailing data after the value");
  }
  if (ps.vals != ps.vals0)
    free(ps.vals);
  if (ps.mems != ps.mems0)
    free(ps.mems);
  if (ps.failed) {
    json_free(doc);
    return NULL;
  }
  *docp = doc;
  return &doc->root;
}

/* ---- access ---------------------------------------------------------------------------------- */

const json_value *json_get(const json_value *obj, const char *key)
{
  size_t klen;
  if (!obj || obj->type != JSON_OBJECT)
    return NULL;
  klen = strlen(key);
  /* the last duplicate wins, so search backwards */
  for (size_t i = obj->u.object.n; i-- > 0;) {
    const json_member *m = &obj->u.object.members[i];
    if (m->key_len == klen && memcmp(m->key, key, klen) == 0)
      return &m->value;
  }
  return NULL;
}

const json_value *json_at(const json_value *arr, size_t i)
{
  if (!arr || arr->type != JSON_ARRAY || i >= arr->u.array.n)
    return NULL;
  return &arr->u.array.items[i];
}

int json_int64(const json_value *v, int64_t *out)
{
  const char *s;
  size_t n, i = 0;
  int neg = 0;
  uint64_t acc = 0, limit;
  if (!v || v->type != JSON_NUMBER)
    return 0;
  s = v->u.number.text;
  n = v->u.number.len;
  if (n > 0 && s[0] == '-') {
    neg = 1;
    i = 1;
  }
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (i == n)
    return 0;
  for (; i < n; i++) {
    unsigned d;
    if (s[i] < '0' || s[i] > '9')
      return 0; /* a fraction or an exponent: not an exact integer literal */
    d = (unsigned)(s[i] - '0');
    if (acc > (limit - d) / 10)
      return 0;
    acc = acc * 10 + d;
  }
  *out = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
  return 1;
}

int json_is_string(const json_value *v) { return v && v->type == JSON_STRING; }

const char *json_type_name(json_type t)
{
  static const char *const names[] = {"null", "boolean", "boolean", "number",
                                      "string", "array", "object"};
  return names[t];
}
