/* A deliberately naive Server-Sent Events parser, written step by step from
 * the specifications and never optimised, used as the oracle that the real
 * parser (src/sse.c) is compared with in tests/c/test_sse.c and in the
 * fuzz harness. It works on the whole body at once:
 *   1. decode bytes to code points with the Encoding Standard's UTF-8
 *      decoder (https://encoding.spec.whatwg.org/#utf-8-decoder), then drop
 *      one leading U+FEFF (its "UTF-8 decode" BOM sniff);
 *   2. cut lines at CRLF, LF or CR; an unterminated last line is discarded;
 *   3. interpret each line as the WHATWG HTML "event stream interpretation"
 *      says (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 * Output is the same text that the tests build from llm_sse callbacks
 * (sse_ref_event below), then "!eof=N" with N the llm_sse_finish code. */
#ifndef LLMRUN_SSE_REF_H
#define LLMRUN_SSE_REF_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_str { char *p; size_t len, cap; } ref_str;

static inline void ref_put(ref_str *s, const void *d, size_t n)
{
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + n + 1)
      cap *= 2;
    s->p = realloc(s->p, cap);
    if (!s->p)
      abort();
    s->cap = cap;
  }
  if (n)
    memcpy(s->p + s->len, d, n);
  s->len += n;
  s->p[s->len] = '\0';
}

static inline void ref_puts(ref_str *s, const char *z) { ref_put(s, z, strlen(z)); }

/* Escapes what would make the transcript ambiguous: \ LF CR NUL. */
static inline void ref_put_escaped(ref_str *s, const char *d, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    switch (d[i]) {
    case '\\': ref_puts(s, "\\\\"); break;
    case '\n': ref_puts(s, "\\n"); break;
    case '\r': ref_puts(s, "\\r"); break;
    case '\0': ref_puts(s, "\\0"); break;
    default: ref_put(s, d + i, 1);
    }
  }
}

/* One event as "type|id|retry|data\n". */
static inline void sse_ref_event(ref_str *out, const char *type, size_t tl, const char *id,
                          size_t il, long long retry, const char *data, size_t dl)
{
  char num[32];
  ref_put_escaped(out, type, tl);
  ref_puts(out, "|");
  ref_put_escaped(out, id, il);
  snprintf(num, sizeof num, "|%lld|", retry);
  ref_puts(out, num);
  ref_put_escaped(out, data, dl);
  ref_puts(out, "\n");
}

/* Step 1: the Encoding Standard's UTF-8 decoder, literally. Returns the
 * number of code points written to cp (at most n). */
static inline size_t ref_utf8_decode(const unsigned char *in, size_t n, uint32_t *cp)
{
  size_t i = 0, k = 0;
  uint32_t code = 0;
  unsigned needed = 0, seen = 0, lower = 0x80, upper = 0xBF;
  for (;;) {
    unsigned b;
    if (i == n) {
      if (needed)
        cp[k++] = 0xFFFD;
      return k;
    }
    b = in[i];
    if (needed == 0) {
      i++;
      if (b <= 0x7F) {
        cp[k++] = b;
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        code = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower = 0xA0;
        if (b == 0xED) upper = 0x9F;
        needed = 2;
        code = b & 0xF;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower = 0x90;
        if (b == 0xF4) upper = 0x8F;
        needed = 3;
        code = b & 0x7;
      } else {
        cp[k++] = 0xFFFD;
      }
      continue;
    }
    if (b < lower || b > upper) {
      /* error; the byte is "prepended to the stream": not consumed */
      code = needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      cp[k++] = 0xFFFD;
      continue;
    }
    i++;
    lower = 0x80;
    upper = 0xBF;
    code = (code << 6) | (b & 0x3F);
    if (++seen == needed) {
      cp[k++] = code;
      code = needed = seen = 0;
    }
  }
}

static inline void ref_put_cp(ref_str *s, uint32_t c)
{
  unsigned char b[4];
  size_t n;
  if (c < 0x80) { b[0] = (unsigned char)c; n = 1; }
  else if (c < 0x800) { b[0] = (unsigned char)(0xC0 | c >> 6); b[1] = (unsigned char)(0x80 | (c & 0x3F)); n = 2; }
  else if (c < 0x10000) { b[0] = (unsigned char)(0xE0 | c >> 12); b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); b[2] = (unsigned char)(0x80 | (c & 0x3F)); n = 3; }
  else { b[0] = (unsigned char)(0xF0 | c >> 18); b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F)); b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); b[3] = (unsigned char)(0x80 | (c & 0x3F)); n = 4; }
  ref_put(s, b, n);
}

static inline int ref_cp_eq(const uint32_t *cp, size_t n, const char *ascii)
{
  size_t m = strlen(ascii);
  if (n != m)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (cp[i] != (unsigned char)ascii[i])
      return 0;
  return 1;
}

typedef struct ref_state {
  ref_str data, type, idbuf, last_id;
  long long retry;
  int in_event;
} ref_state;

static inline void ref_set(ref_str *s, const uint32_t *cp, size_t n)
{
  s->len = 0;
  ref_put(s, "", 0);
  for (size_t i = 0; i < n; i++)
    ref_put_cp(s, cp[i]);
}

/* Step 3 for one complete line. */
static inline void ref_line(ref_state *st, const uint32_t *l, size_t n, ref_str *out)
{
  const uint32_t *field = l, *value = l + n;
  size_t fn = n, vn = 0;
  if (n == 0) { /* dispatch */
    ref_set(&st->last_id, NULL, 0);
    ref_put(&st->last_id, st->idbuf.p, st->idbuf.len);
    st->in_event = 0;
    if (st->data.len == 0) {
      st->type.len = 0;
      return;
    }
    st->data.len--; /* final LF */
    if (st->type.len)
      sse_ref_event(out, st->type.p, st->type.len, st->last_id.p, st->last_id.len,
                    st->retry, st->data.p, st->data.len);
    else
      sse_ref_event(out, "message", 7, st->last_id.p, st->last_id.len, st->retry,
                    st->data.p, st->data.len);
    st->data.len = st->type.len = 0;
    return;
  }
  if (l[0] == ':')
    return;
  for (size_t i = 0; i < n; i++) {
    if (l[i] == ':') {
      fn = i;
      value = l + i + 1;
      vn = n - i - 1;
      if (vn && value[0] == ' ') {
        value++;
        vn--;
      }
      break;
    }
  }
  if (ref_cp_eq(field, fn, "event")) {
    st->in_event = 1;
    ref_set(&st->type, value, vn);
  } else if (ref_cp_eq(field, fn, "data")) {
    st->in_event = 1;
    for (size_t i = 0; i < vn; i++)
      ref_put_cp(&st->data, value[i]);
    ref_put(&st->data, "\n", 1);
  } else if (ref_cp_eq(field, fn, "id")) {
    int nul = 0;
    st->in_event = 1;
    for (size_t i = 0; i < vn; i++)
      nul |= value[i] == 0;
    if (!nul)
      ref_set(&st->idbuf, value, vn);
  } else if (ref_cp_eq(field, fn, "retry")) {
    long long v = 0;
    int ok = vn > 0; /* an empty value is ignored, as browsers do */
    st->in_event = 1;
    for (size_t i = 0; i < vn && ok; i++) {
      if (value[i] < '0' || value[i] > '9')
        ok = 0;
      else
        v = v > (LLONG_MAX - 9) / 10 ? LLONG_MAX : v * 10 + (long long)(value[i] - '0');
    }
    if (ok)
      st->retry = v;
  }
}

/* The whole oracle: body bytes in, transcript out (caller frees out->p). */
static inline void sse_ref_parse(const char *body, size_t n, ref_str *out)
{
  uint32_t *cp = malloc((n + 1) * sizeof *cp);
  size_t ncp, start, i;
  ref_state st;
  memset(&st, 0, sizeof st);
  st.retry = -1;
  if (!cp)
    abort();
  ref_put(out, "", 0);
  ncp = ref_utf8_decode((const unsigned char *)body, n, cp);
  start = ncp > 0 && cp[0] == 0xFEFF ? 1 : 0;
  for (i = start; i < ncp; i++) {
    if (cp[i] == '\r' || cp[i] == '\n') {
      ref_line(&st, cp + start, i - start, out);
      if (cp[i] == '\r' && i + 1 < ncp && cp[i + 1] == '\n')
        i++;
      start = i + 1;
    }
  }
  /* Step 2's end: the unterminated rest is discarded. It was part of an
   * event unless it is a comment. */
  {
    int partial = st.in_event || (start < ncp && cp[start] != ':');
    ref_puts(out, partial ? "!eof=2\n" : "!eof=0\n");
  }
  free(cp);
  free(st.data.p);
  free(st.type.p);
  free(st.idbuf.p);
  free(st.last_id.p);
}

#endif
