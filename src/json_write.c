/* The JSON writer of json.h: a growable buffer and helpers that can only
 * produce valid JSON. A failed allocation sets b->failed and later writes
 * are dropped, so callers check once at the end. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jb_init(json_buf *b)
{
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void jb_free(json_buf *b)
{
  free(b->data);
  jb_init(b);
}

void jb_reset(json_buf *b)
{
  b->len = 0;
  b->failed = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *jb_take(json_buf *b, size_t *len)
{
  char *d = b->data;
  if (len)
    *len = b->len;
  jb_init(b);
  return d;
}

int jb_reserve(json_buf *b, size_t extra)
{
  size_t need, cap;
  char *nd;
  if (b->failed)
    return -1;
  need = b->len + extra + 1; /* + NUL */
  if (need <= b->cap)
    return 0;
  if (need < b->len) { /* overflow */
    b->failed = 1;
    return -1;
  }
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap * 2 > cap ? cap * 2 : need;
  nd = realloc(b->data, cap);
  if (!nd) {
    b->failed = 1;
    return -1;
  }
  b->data = nd;
  b->cap = cap;
  return 0;
}

void jb_put(json_buf *b, const void *p, size_t n)
{
  if (jb_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void jb_puts(json_buf *b, const char *s) { jb_put(b, s, strlen(s)); }

void jb_putc(json_buf *b, char c)
{
  if (jb_reserve(b, 1) != 0)
    return;
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
}

void jb_printf(json_buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;
  char small[128];
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    jb_put(b, small, (size_t)n);
    return;
  }
  if (jb_reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* ---- strings ------------------------------------------------------------------- */

/* Same rules as the reader: length of a valid UTF-8 sequence, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
  unsigned c = p[0], lo = 0x80, hi = 0xbf;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else
    return 0;
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return n;
}

void json_put_string(json_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
  /* worst case 6 bytes per input byte (\u00XX), plus quotes */
  if (jb_reserve(b, n + 2) != 0)
    return;
  jb_putc(b, '"');
  while (p < end) {
    unsigned c = *p;
    const char *esc = NULL;
    char ubuf[7];
    size_t k;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      p++;
      continue;
    }
    if (c >= 0x80 && (k = utf8_seq(p, end)) > 0) {
      p += k;
      continue;
    }
    jb_put(b, run, (size_t)(p - run));
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      if (c < 0x20) {
        memcpy(ubuf, "\\u00", 4);
        ubuf[4] = hex[c >> 4];
        ubuf[5] = hex[c & 15];
        ubuf[6] = '\0';
        esc = ubuf;
      } else {
        esc = "\\ufffd"; /* a byte that starts no valid UTF-8 sequence */
      }
    }
    jb_puts(b, esc);
    p++;
    run = p;
  }
  jb_put(b, run, (size_t)(p - run));
  jb_putc(b, '"');
}

void json_put_cstring(json_buf *b, const char *s)
{
  if (!s)
    jb_put(b, "null", 4);
  else
    json_put_string(b, s, strlen(s));
}

/* ---- numbers ---------------------------------------------------------------------- */

void json_put_double(json_buf *b, double d)
{
  char buf[32];
  if (!isfinite(d)) {
    jb_put(b, "null", 4);
    return;
  }
  if (fabs(d) < 9e15 && d == (double)(int64_t)d) {
    json_put_int(b, (int64_t)d);
    return;
  }
  snprintf(buf, sizeof buf, "%.15g", d);
  if (strtod(buf, NULL) != d)
    snprintf(buf, sizeof buf, "%.17g", d);
  jb_puts(b, buf);
}

void json_put_float(json_buf *b, float f)
{
  char buf[32];
  if (!isfinite(f)) {
    jb_put(b, "null", 4);
    return;
  }
  /* 9 significant digits always round-trip a float32; shorter forms are
   * tried first because most values need fewer and vectors are long. */
  for (int prec = 7; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if ((float)strtod(buf, NULL) == f)
      break;
  }
  jb_puts(b, buf);
}

void json_put_int(json_buf *b, int64_t i)
{
  char buf[24], *p = buf + sizeof buf;
  uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (i < 0)
    *--p = '-';
  jb_put(b, p, (size_t)(buf + sizeof buf - p));
}

void json_put_value(json_buf *b, const json_value *v)
{
  switch (v->type) {
  case JSON_NULL: jb_put(b, "null", 4); break;
  case JSON_TRUE: jb_put(b, "true", 4); break;
  case JSON_FALSE: jb_put(b, "false", 5); break;
  case JSON_NUMBER: jb_put(b, v->u.number.text, v->u.number.len); break;
  case JSON_STRING: json_put_string(b, v->u.string.ptr, v->u.string.len); break;
  case JSON_ARRAY:
    jb_putc(b, '[');
    for (size_t i = 0; i < v->u.array.n; i++) {
      if (i)
        jb_putc(b, ',');
      json_put_value(b, &v->u.array.items[i]);
    }
    jb_putc(b, ']');
    break;
  case JSON_OBJECT:
    jb_putc(b, '{');
    for (size_t i = 0; i < v->u.object.n; i++) {
      const json_member *m = &v->u.object.members[i];
      if (i)
        jb_putc(b, ',');
      json_put_string(b, m->key, m->key_len);
      jb_putc(b, ':');
      json_put_value(b, &m->value);
    }
    jb_putc(b, '}');
    break;
  }
}

/* ---- base64 ------------------------------------------------------------------------ */

void jb_put_base64(json_buf *b, const void *data, size_t n)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  size_t i = 0, out = (n + 2) / 3 * 4;
  char *o;
  if (jb_reserve(b, out) != 0)
    return;
  o = b->data + b->len;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = tab[(v >> 6) & 63];
    *o++ = tab[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len += out;
  b->data[b->len] = '\0';
}
