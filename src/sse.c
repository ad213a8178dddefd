/* The incremental Server-Sent Events parser (see sse.h for the contract).
 *
 * Three stages run on each run of bytes between line breaks, without
 * buffering whole lines:
 *   1. line breaks are found with memchr, remembering the next CR and the
 *      next LF of the current chunk so no byte is scanned twice;
 *   2. the UTF-8 decoder passes valid runs through untouched and repairs
 *      the rest, carrying half a sequence across chunks;
 *   3. the field state machine reads the decoded bytes: it keeps at most 5
 *      bytes of a field name, then appends the value straight into the
 *      buffer it belongs to (data, event type, id) or drops it (comments,
 *      unknown fields), so a long comment costs no memory.
 * CR and LF never occur inside a valid multi-byte sequence and always end
 * an incomplete one, so splitting lines on raw bytes before decoding gives
 * the same lines as decoding first (Encoding Standard, UTF-8 decoder). */
#include "sse.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

static const char BOM[3] = {'\xEF', '\xBB', '\xBF'};
static const char REPLACEMENT[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

/* Where the current line is. */
enum {
  L_START,       /* nothing decoded yet: a line break here is a blank line */
  L_NAME,        /* reading the field name, up to the first ':' */
  L_VALUE_START, /* after the ':': one leading space is dropped */
  L_VALUE,       /* the value goes to p->field */
  L_COMMENT,     /* started with ':' */
  L_IGNORE       /* an unknown field */
};

enum { F_NONE, F_DATA, F_EVENT, F_ID, F_RETRY };

/* Buffers shrink back after an event bigger than this, so a stream that
 * once carried a huge event does not pin that memory for its lifetime. */
#define KEEP_CAP ((size_t)64 << 10)

static int fail(llm_sse *p, int rc)
{
  p->err = rc;
  return rc;
}

/* Appends to a buffer of the pending event, within max_size. */
static int event_put(llm_sse *p, llm_buf *b, const char *s, size_t n)
{
  size_t cap = b->cap;
  if (n > p->max_size - (p->data.len + p->type.len + p->id_next.len))
    return fail(p, LLM_SSE_ETOOBIG);
  if (llm_buf_reserve(b, n) != 0)
    return fail(p, LLM_SSE_ENOMEM);
  if (b->cap != cap)
    p->work += b->len; /* what a moving realloc copies */
  memcpy(b->data + b->len, s, n);
  b->len += n;
  p->work += n;
  return 0;
}

static int field_from_name(const char *name, size_t n)
{
  switch (n) {
  case 2: return memcmp(name, "id", 2) == 0 ? F_ID : F_NONE;
  case 4: return memcmp(name, "data", 4) == 0 ? F_DATA : F_NONE;
  case 5:
    if (memcmp(name, "event", 5) == 0) return F_EVENT;
    if (memcmp(name, "retry", 5) == 0) return F_RETRY;
    return F_NONE;
  default: return F_NONE;
  }
}

static void field_begin(llm_sse *p)
{
  p->in_event = 1;
  switch (p->field) {
  case F_EVENT: p->type.len = 0; break; /* the value replaces the type */
  case F_ID: p->id_next.len = 0; p->id_nul = 0; break;
  case F_RETRY: p->retry_acc = 0; p->retry_ok = 1; p->retry_digits = 0; break;
  default: break;
  }
}

static int value_put(llm_sse *p, const char *s, size_t n)
{
  switch (p->field) {
  case F_DATA: return event_put(p, &p->data, s, n);
  case F_EVENT: return event_put(p, &p->type, s, n);
  case F_ID: {
    /* A NUL anywhere voids the whole id field: stop collecting at it.
     * The bytes before it still count against max_size, so that where
     * the chunks happen to end cannot change the outcome. */
    const char *nul;
    if (p->id_nul)
      return 0;
    nul = memchr(s, '\0', n);
    if (nul) {
      p->id_nul = 1;
      n = (size_t)(nul - s);
    }
    return event_put(p, &p->id_next, s, n);
  }
  case F_RETRY:
    p->work += n;
    for (size_t i = 0; i < n && p->retry_ok; i++) {
      unsigned d = (unsigned char)s[i] - '0';
      if (d > 9) {
        p->retry_ok = 0;
        break;
      }
      p->retry_digits = 1;
      /* saturate rather than overflow on absurd values */
      p->retry_acc = p->retry_acc > (LLONG_MAX - 9) / 10 ? LLONG_MAX
                                                         : p->retry_acc * 10 + d;
    }
    return 0;
  default: return 0;
  }
}

static int field_end(llm_sse *p)
{
  switch (p->field) {
  case F_DATA: return event_put(p, &p->data, "\n", 1);
  case F_ID:
    /* The last event ID buffer changes now but the last event ID string
     * only at the next blank line: keep the new value pending till then. */
    if (!p->id_nul) {
      llm_buf t = p->id_pending;
      p->id_pending = p->id_next;
      p->id_next = t;
      if (p->id_pending.data)
        p->id_pending.data[p->id_pending.len] = '\0';
      p->id_pending_set = 1;
    }
    p->id_next.len = 0;
    return 0;
  case F_RETRY:
    if (p->retry_ok && p->retry_digits)
      p->retry = p->retry_acc;
    return 0;
  default: return 0;
  }
}

/* Decoded bytes of the current line, in as many pieces as they come. */
static int line_put(llm_sse *p, const char *s, size_t n)
{
  while (n > 0) {
    switch (p->line_state) {
    case L_START:
      p->line_state = *s == ':' ? L_COMMENT : L_NAME;
      p->name_len = 0;
      break;
    case L_NAME: {
      /* Names we know have at most 5 bytes: look no further than that. */
      size_t lim = 6 - (size_t)p->name_len, k;
      const char *colon;
      if (lim > n)
        lim = n;
      colon = memchr(s, ':', lim);
      k = colon ? (size_t)(colon - s) : lim;
      if (p->name_len + k > 5) {
        p->line_state = L_IGNORE;
        break;
      }
      memcpy(p->name + p->name_len, s, k);
      p->name_len += (unsigned char)k;
      if (!colon)
        return 0;
      s += k + 1;
      n -= k + 1;
      p->field = (unsigned char)field_from_name(p->name, p->name_len);
      if (p->field == F_NONE) {
        p->line_state = L_IGNORE;
        return 0;
      }
      field_begin(p);
      p->line_state = L_VALUE_START;
      break;
    }
    case L_VALUE_START:
      if (*s == ' ') {
        s++;
        n--;
      }
      p->line_state = L_VALUE;
      break;
    case L_VALUE:
      return value_put(p, s, n);
    default: /* L_COMMENT, L_IGNORE */
      return 0;
    }
  }
  return 0;
}

/* Length of the longest prefix of s made of complete, valid UTF-8
 * sequences. ASCII goes a word at a time; a sequence cut by the end of s
 * stops the prefix so the byte-wise decoder can carry it over. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned c, lo = 0x80, hi = 0xBF, k;
    while (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull)
        break;
      i += 8;
    }
    while (i < n && s[i] < 0x80)
      i++;
    if (i == n)
      break;
    c = s[i];
    if (c >= 0xC2 && c <= 0xDF) {
      k = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
      return i;
    }
    if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
      return i;
    for (unsigned j = 2; j <= k; j++)
      if ((s[i + j] & 0xC0) != 0x80)
        return i;
    i += k + 1;
  }
  return i;
}

/* The Encoding Standard's UTF-8 decoder, fed raw line content. Valid runs
 * go to the line in one piece; the state (bytes needed, allowed range of
 * the next byte) survives across chunks. */
static int decode(llm_sse *p, const char *buf, size_t n)
{
  const unsigned char *s = (const unsigned char *)buf, *e = s + n;
  int rc;
  p->work += n;
  while (s < e) {
    if (p->u8_need == 0) {
      size_t ok = utf8_valid_prefix(s, (size_t)(e - s));
      unsigned c;
      if (ok) {
        if ((rc = line_put(p, (const char *)s, ok)))
          return rc;
        s += ok;
        if (s == e)
          break;
      }
      c = *s++;
      p->u8_lo = 0x80;
      p->u8_hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        p->u8_need = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        p->u8_need = 2;
        if (c == 0xE0) p->u8_lo = 0xA0;
        if (c == 0xED) p->u8_hi = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        p->u8_need = 3;
        if (c == 0xF0) p->u8_lo = 0x90;
        if (c == 0xF4) p->u8_hi = 0x8F;
      } else {
        if ((rc = line_put(p, REPLACEMENT, 3)))
          return rc;
        continue;
      }
      p->u8_pend[0] = (unsigned char)c;
      p->u8_npend = 1;
    } else {
      unsigned c = *s;
      if (c < p->u8_lo || c > p->u8_hi) {
        /* The sequence so far becomes one U+FFFD and this byte is read
         * again as the start of something new. */
        p->u8_need = 0;
        if ((rc = line_put(p, REPLACEMENT, 3)))
          return rc;
        continue;
      }
      s++;
      p->u8_lo = 0x80;
      p->u8_hi = 0xBF;
      p->u8_pend[p->u8_npend++] = (unsigned char)c;
      if (p->u8_npend == p->u8_need + 1) {
        p->u8_need = 0;
        if ((rc = line_put(p, (const char *)p->u8_pend, p->u8_npend)))
          return rc;
      }
    }
  }
  return 0;
}

static int dispatch(llm_sse *p)
{
  llm_sse_event ev;
  int stop;
  /* The last event ID string takes the buffer's value at every blank
   * line, even one that dispatches nothing. */
  if (p->id_pending_set) {
    llm_buf t = p->id;
    p->id = p->id_pending;
    p->id_pending = t;
    p->id_pending_set = 0;
  }
  p->in_event = 0;
  if (p->data.len == 0) {
    p->type.len = 0;
    return 0;
  }
  p->data.len--; /* every data field ended in LF: drop the last one */
  p->data.data[p->data.len] = '\0';
  if (p->type.len) {
    p->type.data[p->type.len] = '\0';
    ev.type = p->type.data;
    ev.type_len = p->type.len;
  } else {
    ev.type = "message";
    ev.type_len = 7;
  }
  ev.data = p->data.data;
  ev.data_len = p->data.len;
  ev.id = p->id.len ? p->id.data : "";
  ev.id_len = p->id.len;
  ev.retry_ms = p->retry;
  stop = p->on_event(p->ud, &ev);
  p->data.len = 0;
  p->type.len = 0;
  if (p->data.cap > KEEP_CAP)
    llm_buf_free(&p->data);
  if (p->type.cap > KEEP_CAP)
    llm_buf_free(&p->type);
  return stop ? LLM_SSE_PAUSED : 0;
}

static int end_line(llm_sse *p)
{
  int rc = 0;
  /* A line break cuts a pending sequence: one U+FFFD. */
  if (p->u8_need) {
    p->u8_need = 0;
    if ((rc = line_put(p, REPLACEMENT, 3)))
      return rc;
  }
  switch (p->line_state) {
  case L_START:
    rc = dispatch(p);
    break;
  case L_NAME: /* no colon: the line is the name, the value is empty */
    p->field = (unsigned char)field_from_name(p->name, p->name_len);
    if (p->field != F_NONE) {
      field_begin(p);
      rc = field_end(p);
    }
    break;
  case L_VALUE_START:
  case L_VALUE:
    rc = field_end(p);
    break;
  default:
    break;
  }
  p->line_state = L_START;
  p->line_len = 0;
  return rc;
}

void llm_sse_init(llm_sse *p, llm_sse_event_fn on_event, void *ud, size_t max_size)
{
  memset(p, 0, sizeof *p);
  p->on_event = on_event;
  p->ud = ud;
  p->max_size = max_size ? max_size : LLM_SSE_DEFAULT_MAX;
  p->retry = -1;
}

int llm_sse_feed(llm_sse *p, const char *buf, size_t len, size_t *consumed)
{
  const char *s = buf, *e, *lf, *cr;
  int have_lf = 0, have_cr = 0, rc = p->err;
  if (rc || len == 0) { /* buf may be NULL when len is 0 */
    if (consumed)
      *consumed = 0;
    return rc;
  }
  e = lf = cr = buf + len;
  while (s < e) {
    const char *q;
    size_t n;
    if (p->skip_lf) {
      p->skip_lf = 0;
      if (*s == '\n') {
        s++;
        continue;
      }
    }
    if (p->bom < 3) {
      /* Hold back a possible leading BOM byte by byte; if it turns out
       * not to be one, the bytes held are ordinary content. */
      if (*s == BOM[p->bom]) {
        p->bom++;
        s++;
        continue;
      }
      n = p->bom;
      p->bom = 3;
      if (n > p->max_size) {
        rc = fail(p, LLM_SSE_ETOOBIG);
        break;
      }
      p->line_len = n;
      if (n && (rc = decode(p, BOM, n)))
        break;
    }
    if (!have_lf || lf < s) {
      lf = memchr(s, '\n', (size_t)(e - s));
      if (!lf)
        lf = e;
      p->work += (size_t)(lf - s);
      have_lf = 1;
    }
    if (!have_cr || cr < s) {
      cr = memchr(s, '\r', (size_t)(e - s));
      if (!cr)
        cr = e;
      p->work += (size_t)(cr - s);
      have_cr = 1;
    }
    q = lf < cr ? lf : cr;
    n = (size_t)(q - s);
    if (n > p->max_size - p->line_len) {
      rc = fail(p, LLM_SSE_ETOOBIG);
      break;
    }
    p->line_len += n;
    if (n && (rc = decode(p, s, n)))
      break;
    s = q;
    if (s == e)
      break;
    p->skip_lf = *s == '\r';
    s++;
    if ((rc = end_line(p)))
      break;
  }
  if (consumed)
    *consumed = (size_t)(s - buf);
  return rc;
}

/* Drops what belongs to the current body only. */
static void clear_stream(llm_sse *p)
{
  p->data.len = p->type.len = p->id_next.len = 0;
  p->id_pending_set = 0; /* an id with no blank line after it never took */
  p->line_len = 0;
  p->bom = p->skip_lf = p->in_event = 0;
  p->line_state = L_START;
  p->u8_need = p->u8_npend = 0;
}

int llm_sse_finish(llm_sse *p)
{
  int partial;
  if (p->err)
    return p->err;
  /* Bytes held before anything reached the line (half a BOM, half a
   * UTF-8 sequence) cannot start a comment: they are a partial line. */
  if (p->line_state == L_START)
    partial = p->in_event || p->u8_need || (p->bom > 0 && p->bom < 3);
  else
    partial = p->in_event || p->line_state != L_COMMENT;
  clear_stream(p);
  return partial ? LLM_SSE_TRUNCATED : LLM_SSE_OK;
}

void llm_sse_reset(llm_sse *p)
{
  clear_stream(p);
  /* empty, and ready to grow again after a failed allocation */
  llm_buf_reset(&p->data);
  llm_buf_reset(&p->type);
  llm_buf_reset(&p->id);
  llm_buf_reset(&p->id_pending);
  llm_buf_reset(&p->id_next);
  p->retry = -1;
  p->err = 0;
  p->work = 0;
}

void llm_sse_free(llm_sse *p)
{
  llm_buf_free(&p->data);
  llm_buf_free(&p->type);
  llm_buf_free(&p->id);
  llm_buf_free(&p->id_pending);
  llm_buf_free(&p->id_next);
  llm_sse_reset(p);
}

const char *llm_sse_last_event_id(const llm_sse *p, size_t *len)
{
  if (len)
    *len = p->id.len;
  return p->id.len ? p->id.data : "";
}

long long llm_sse_retry(const llm_sse *p) { return p->retry; }

size_t llm_sse_work(const llm_sse *p) { return p->work; }

const char *llm_sse_strerror(int rc)
{
  switch (rc) {
  case LLM_SSE_OK: return "ok";
  case LLM_SSE_PAUSED: return "paused by the event callback";
  case LLM_SSE_TRUNCATED: return "stream ended inside an event";
  case LLM_SSE_ETOOBIG: return "event stream line or event too large";
  case LLM_SSE_ENOMEM: return "out of memory";
  default: return "unknown event stream error";
  }
}

/* HTTP whitespace and token code points, per the WHATWG MIME Sniffing
 * standard's "parse a MIME type". */
static int http_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int http_token(int c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int match_token(const char *s, size_t n, const char *want)
{
  size_t i;
  if (n != strlen(want))
    return 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!http_token(c))
      return 0;
    if (c >= 'A' && c <= 'Z')
      c += 'a' - 'A';
    if (c != want[i])
      return 0;
  }
  return 1;
}

int llm_sse_content_type_ok(const char *v)
{
  const char *type, *sub, *end;
  if (!v)
    return 0;
  while (http_ws((unsigned char)*v))
    v++;
  type = v;
  while (*v && *v != '/')
    v++;
  if (*v != '/' || !match_token(type, (size_t)(v - type), "text"))
    return 0;
  sub = ++v;
  while (*v && *v != ';')
    v++;
  end = v;
  while (end > sub && http_ws((unsigned char)end[-1]))
    end--;
  return match_token(sub, (size_t)(end - sub), "event-stream");
}
