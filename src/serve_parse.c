/* HTTP/1.1 request heads and chunked bodies, parsed in place. See
 * serve_parse.h for the rules and why they are strict. */
#include "serve_parse.h"

#include <string.h>

size_t llm_head_end(const char *buf, size_t len, size_t *scan)
{
  size_t i = *scan;
  /* a blank line: LF followed by LF, or by CR LF */
  for (; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (i + 1 < len && buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
    if (i + 2 >= len) { /* the blank line may still come: look here again */
      *scan = i;
      return 0;
    }
  }
  *scan = i;
  return 0;
}

static int is_tchar(unsigned char c)
{
  /* RFC 9110 token characters */
  if (c >= '0' && c <= '9')
    return 1;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
    return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the line starting at p (its LF), NUL-terminating it in place
 * (a CR before the LF too). NULL past the end. */
static char *line_end(char *p, char *end)
{
  char *lf = memchr(p, '\n', (size_t)(end - p));
  if (!lf)
    return NULL;
  *lf = '\0';
  if (lf > p && lf[-1] == '\r')
    lf[-1] = '\0';
  return lf;
}

static int icase_eq(const char *a, const char *b)
{
  for (; *a && *b; a++, b++)
    if ((*a | 0x20) != (*b | 0x20))
      return 0;
  return *a == *b;
}

/* Does a comma-separated header value contain token tok (any case)? */
static int has_token(const char *v, const char *tok)
{
  size_t n = strlen(tok);
  while (*v) {
    while (*v == ' ' || *v == '\t' || *v == ',')
      v++;
    const char *s = v;
    while (*v && *v != ',')
      v++;
    const char *e = v;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if ((size_t)(e - s) == n) {
      size_t i = 0;
      while (i < n && (s[i] | 0x20) == tok[i])
        i++;
      if (i == n)
        return 1;
    }
  }
  return 0;
}

static int parse_length(const char *v, int64_t *out)
{
  int64_t n = 0;
  if (!*v)
    return -1;
  for (; *v; v++) {
    if (*v < '0' || *v > '9')
      return -1;
    if (n > (INT64_MAX - 9) / 10)
      return -1;
    n = n * 10 + (*v - '0');
  }
  *out = n;
  return 0;
}

int llm_head_parse(char *buf, size_t head_len, llm_head *h, const char **why)
{
  char *p = buf, *end = buf + head_len, *lf, *sp;
  int conn_close = 0, conn_keep = 0, te_seen = 0;

  memset(h, 0, sizeof *h);
  h->content_length = -1;
  h->head_len = head_len;
  /* a client may send empty lines before a request (RFC 9112 2.2) */
  while (p < end && (*p == '\r' || *p == '\n'))
    p++;
  /* request line: METHOD SP target SP HTTP/1.x */
  if (!(lf = line_end(p, end)))
    return *why = "no request line", 400;
  sp = strchr(p, ' ');
  if (!sp || sp == p)
    return *why = "malformed request line", 400;
  for (char *q = p; q < sp; q++)
    if (!is_tchar((unsigned char)*q))
      return *why = "malformed method", 400;
  *sp = '\0';
  h->method = (size_t)(p - buf);
  p = sp + 1;
  sp = strchr(p, ' ');
  if (!sp || sp == p)
    return *why = "malformed request line", 400;
  for (char *q = p; q < sp; q++)
    if ((unsigned char)*q <= ' ' || (unsigned char)*q == 0x7f)
      return *why = "malformed request target", 400;
  *sp = '\0';
  h->target = (size_t)(p - buf);
  p = sp + 1;
  if (strncmp(p, "HTTP/1.", 7) != 0 || !(p[7] == '0' || p[7] == '1') || p[8] != '\0') {
    if (strncmp(p, "HTTP/", 5) == 0)
      return *why = "only HTTP/1.0 and HTTP/1.1 are served", 505;
    return *why = "malformed request line", 400;
  }
  h->minor = p[7] - '0';
  p = lf + 1;

  /* header fields, up to the blank line */
  while (p < end) {
    char *name = p, *colon, *v, *ve;
    if (!(lf = line_end(p, end)))
      return *why = "unterminated header", 400;
    if (*p == '\0')
      break; /* the blank line */
    if (*p == ' ' || *p == '\t')
      return *why = "folded header lines are not accepted", 400;
    colon = strchr(p, ':');
    if (!colon || colon == p)
      return *why = "malformed header line", 400;
    for (char *q = p; q < colon; q++) {
      if (!is_tchar((unsigned char)*q))
        return *why = "malformed header name", 400;
      if (*q >= 'A' && *q <= 'Z')
        *q = (char)(*q | 0x20);
    }
    *colon = '\0';
    v = colon + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    ve = v + strlen(v);
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    *ve = '\0';
    for (char *q = v; q < ve; q++)
      if (*q == '\r')
        return *why = "bare CR in a header", 400;
    if (h->nheaders == LLM_SERVE_MAX_HEADERS)
      return *why = "too many header fields", 431;
    h->name[h->nheaders] = (size_t)(name - buf);
    h->value[h->nheaders] = (size_t)(v - buf);
    h->nheaders++;
    if (strcmp(name, "content-length") == 0) {
      int64_t n;
      if (parse_length(v, &n) != 0)
        return *why = "malformed Content-Length", 400;
      if (h->content_length >= 0 && h->content_length != n)
        return *why = "conflicting Content-Length headers", 400;
      h->content_length = n;
    } else if (strcmp(name, "transfer-encoding") == 0) {
      if (te_seen || !icase_eq(v, "chunked"))
        return *why = "only the chunked transfer coding is accepted", 501;
      te_seen = 1;
      h->chunked = 1;
    } else if (strcmp(name, "connection") == 0) {
      if (has_token(v, "close"))
        conn_close = 1;
      if (has_token(v, "keep-alive"))
        conn_keep = 1;
    } else if (strcmp(name, "expect") == 0) {
      if (icase_eq(v, "100-continue"))
        h->expect_continue = 1;
    }
    p = lf + 1;
  }
  if (h->chunked && h->content_length >= 0)
    return *why = "both Content-Length and Transfer-Encoding", 400;
  if (h->chunked && h->minor == 0)
    return *why = "chunked request body in HTTP/1.0", 400;
  h->keep_alive = h->minor == 1 ? !conn_close : (conn_keep && !conn_close);
  return 0;
}

/* ---- chunked bodies -------------------------------------------------------------- */

enum { CK_SIZE, CK_EXT, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_DONE };

#define MAX_LINE 4096 /* a chunk-size line with extensions, or a trailer line */

void llm_chunked_init(llm_chunked *c, size_t start)
{
  memset(c, 0, sizeof *c);
  c->state = CK_SIZE;
  c->in = c->out = c->start = start;
}

static int hexval(char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = (char)(ch | 0x20);
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

int llm_chunked_step(llm_chunked *c, char *buf, size_t len, size_t max)
{
  while (c->in < len) {
    char ch = buf[c->in];
    switch (c->state) {
    case CK_SIZE: {
      int v = hexval(ch);
      c->in++;
      if (v >= 0) {
        if (c->remaining > (UINT64_MAX >> 4) || ++c->line > 16)
          return -1;
        c->remaining = (c->remaining << 4) | (uint64_t)v;
      } else if (c->line == 0) {
        return -1; /* a size needs a digit */
      } else if (ch == ';' || ch == ' ' || ch == '\t') {
        c->state = CK_EXT;
      } else if (ch == '\r') {
        c->state = CK_EXT; /* the LF follows */
      } else if (ch == '\n') {
        goto size_done;
      } else {
        return -1;
      }
      break;
    }
    case CK_EXT:
      c->in++;
      if (++c->line > MAX_LINE)
        return -1;
      if (ch == '\n')
        goto size_done;
      break;
    size_done:
      c->line = 0;
      if (c->remaining == 0) {
        c->state = CK_TRAILER;
        break;
      }
      if (c->remaining > (uint64_t)max - (uint64_t)(c->out - c->start))
        return -2;
      c->state = CK_DATA;
      break;
    case CK_DATA: {
      size_t avail = len - c->in, n = avail < c->remaining ? avail : (size_t)c->remaining;
      memmove(buf + c->out, buf + c->in, n);
      c->out += n;
      c->in += n;
      c->remaining -= n;
      if (c->remaining == 0)
        c->state = CK_DATA_CR;
      break;
    }
    case CK_DATA_CR:
      c->in++;
      if (ch == '\r')
        c->state = CK_DATA_LF;
      else if (ch == '\n')
        c->state = CK_SIZE;
      else
        return -1;
      break;
    case CK_DATA_LF:
      c->in++;
      if (ch != '\n')
        return -1;
      c->state = CK_SIZE;
      break;
    case CK_TRAILER:
      /* trailer lines are read and dropped; an empty one ends the body */
      c->in++;
      if (ch == '\n') {
        if (c->line == 0) {
          c->state = CK_DONE;
          return 1;
        }
        c->line = 0;
      } else if (ch != '\r' || c->line > 0) {
        if (++c->line > MAX_LINE)
          return -1;
      }
      break;
    default:
      return 1;
    }
  }
  return c->state == CK_DONE ? 1 : 0;
}
