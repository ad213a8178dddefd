/* The JSON writer of json.h: helpers that can only produce valid JSON,
 * appending to an llm_buf (buf.h). A failed allocation sets b->failed and
 * later writes are dropped, so callers check once at the end. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void json_put_string(llm_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
  /* worst case 6 bytes per input byte (\u00XX), plus quotes */
  if (llm_buf_reserve(b, n + 2) != 0)
    return;
  llm_buf_putc(b, '"');
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
    llm_buf_put(b, run, (size_t)(p - run));
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
    llm_buf_puts(b, esc);
    p++;
    run = p;
  }
  llm_buf_put(b, run, (size_t)(p - run));
  llm_buf_putc(b, '"');
}

void json_put_cstring(llm_buf *b, const char *s)
{
  if (!s)
    llm_buf_put(b, "null", 4);
  else
    json_put_string(b, s, strlen(s));
}

/* ---- numbers ---------------------------------------------------------------------- */

void json_put_double(llm_buf *b, double d)
{
  char buf[32];
  if (!isfinite(d)) {
    llm_buf_put(b, "null", 4);
    return;
  }
  if (fabs(d) < 9e15 && d == (double)(int64_t)d) {
    json_put_int(b, (int64_t)d);
    return;
  }
  snprintf(buf, sizeof buf, "%.15g", d);
  if (strtod(buf, NULL) != d)
    snprintf(buf, sizeof buf, "%.17g", d);
  llm_buf_puts(b, buf);
}

void json_put_float(llm_buf *b, float f)
{
  char buf[32];
  if (!isfinite(f)) {
    llm_buf_put(b, "null", 4);
    return;
  }
  /* 9 significant digits always round-trip a float32; shorter forms are
   * tried first because most values need fewer and vectors are long. */
  for (int prec = 7; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
    if ((float)strtod(buf, NULL) == f)
      break;
  }
  llm_buf_puts(b, buf);
}

void json_put_int(llm_buf *b, int64_t i)
{
  char buf[24], *p = buf + sizeof buf;
  uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (i < 0)
    *--p = '-';
  llm_buf_put(b, p, (size_t)(buf + sizeof buf - p));
}

void json_put_value(llm_buf *b, const json_value *v)
{
  switch (v->type) {
  case JSON_NULL: llm_buf_put(b, "null", 4); break;
  case JSON_TRUE: llm_buf_put(b, "true", 4); break;
  case JSON_FALSE: llm_buf_put(b, "false", 5); break;
  case JSON_NUMBER: llm_buf_put(b, v->u.number.text, v->u.number.len); break;
  case JSON_STRING: json_put_string(b, v->u.string.ptr, v->u.string.len); break;
  case JSON_ARRAY:
    llm_buf_putc(b, '[');
    for (size_t i = 0; i < v->u.array.n; i++) {
      if (i)
        llm_buf_putc(b, ',');
      json_put_value(b, &v->u.array.items[i]);
    }
    llm_buf_putc(b, ']');
    break;
  case JSON_OBJECT:
    llm_buf_putc(b, '{');
    for (size_t i = 0; i < v->u.object.n; i++) {
      const json_member *m = &v->u.object.members[i];
      if (i)
        llm_buf_putc(b, ',');
      json_put_string(b, m->key, m->key_len);
      llm_buf_putc(b, ':');
      json_put_value(b, &m->value);
    }
    llm_buf_putc(b, '}');
    break;
  }
}

/* ---- base64 ------------------------------------------------------------------------ */

void json_put_base64(llm_buf *b, const void *data, size_t n)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *p = data;
  size_t i = 0, out = (n + 2) / 3 * 4;
  char *o;
  if (llm_buf_reserve(b, out) != 0)
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
