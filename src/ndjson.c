/* The NDJSON line splitter (see ndjson.h). */
#include "ndjson.h"

#include <stdlib.h>
#include <string.h>

/* The buffer is dropped after a line bigger than this, so one huge object
 * does not pin memory for the rest of the stream. */
#define KEEP_CAP ((size_t)64 << 10)

static int fail(llm_ndjson *p, int rc)
{
  p->err = rc;
  return rc;
}

/* Appends to the partial line, within max_line. */
static int gather(llm_ndjson *p, const char *s, size_t n)
{
  size_t cap = p->line.cap;
  if (n > p->max_line - p->line.len)
    return fail(p, LLM_NDJSON_ETOOBIG);
  if (llm_buf_reserve(&p->line, n) != 0)
    return fail(p, LLM_NDJSON_ENOMEM);
  if (p->line.cap != cap)
    p->work += p->line.len; /* what a moving realloc copies */
  memcpy(p->line.data + p->line.len, s, n);
  p->line.len += n;
  p->work += n;
  return 0;
}

/* JSON whitespace (RFC 8259): a line of only these carries no value. */
static int blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return 0;
  return 1;
}

/* One complete line (LF already removed). Returns 1 when asked to stop. */
static int emit(llm_ndjson *p, const char *s, size_t n)
{
  if (n && s[n - 1] == '\r')
    n--;
  p->work += n;
  if (blank(s, n))
    return 0;
  return p->on_line(p->ud, s, n) != 0;
}

static void drop_buffer(llm_ndjson *p)
{
  if (p->line.cap > KEEP_CAP)
    llm_buf_free(&p->line);
  else
    p->line.len = 0;
}

void llm_ndjson_init(llm_ndjson *p, llm_ndjson_line_fn on_line, void *ud, size_t max_line)
{
  memset(p, 0, sizeof *p);
  p->on_line = on_line;
  p->ud = ud;
  p->max_line = max_line ? max_line : LLM_NDJSON_DEFAULT_MAX;
}

int llm_ndjson_feed(llm_ndjson *p, const char *buf, size_t len, size_t *consumed)
{
  const char *s = buf, *e;
  int rc = p->err;
  if (rc || len == 0) { /* buf may be NULL when len is 0 */
    if (consumed)
      *consumed = 0;
    return rc;
  }
  e = buf + len;
  while (!rc && s < e) {
    const char *lf = memchr(s, '\n', (size_t)(e - s));
    int stop;
    if (!lf) {
      p->work += (size_t)(e - s);
      if (gather(p, s, (size_t)(e - s)))
        rc = p->err;
      else
        s = e;
      break;
    }
    p->work += (size_t)(lf - s);
    if (p->line.len) { /* the end of a line begun in an earlier chunk */
      if (gather(p, s, (size_t)(lf - s))) {
        rc = p->err;
        break;
      }
      stop = emit(p, p->line.data, p->line.len);
      drop_buffer(p);
    } else {
      if ((size_t)(lf - s) > p->max_line) {
        rc = fail(p, LLM_NDJSON_ETOOBIG);
        break;
      }
      stop = emit(p, s, (size_t)(lf - s));
    }
    s = lf + 1;
    if (stop)
      rc = LLM_NDJSON_PAUSED;
  }
  if (consumed)
    *consumed = (size_t)(s - buf);
  return rc;
}

int llm_ndjson_finish(llm_ndjson *p)
{
  int had;
  if (p->err)
    return p->err;
  had = p->line.len > 0;
  if (had)
    emit(p, p->line.data, p->line.len); /* nothing follows, so a stop changes nothing */
  had = had && !blank(p->line.data, p->line.len);
  drop_buffer(p);
  return had ? LLM_NDJSON_UNTERMINATED : LLM_NDJSON_OK;
}

void llm_ndjson_reset(llm_ndjson *p)
{
  llm_buf_reset(&p->line); /* empty, and ready to grow again after a failure */
  p->err = 0;
  p->work = 0;
}

void llm_ndjson_free(llm_ndjson *p)
{
  llm_buf_free(&p->line);
  llm_ndjson_reset(p);
}

size_t llm_ndjson_work(const llm_ndjson *p) { return p->work; }

const char *llm_ndjson_strerror(int rc)
{
  switch (rc) {
  case LLM_NDJSON_OK: return "ok";
  case LLM_NDJSON_PAUSED: return "paused by the line callback";
  case LLM_NDJSON_UNTERMINATED: return "last line had no newline";
  case LLM_NDJSON_ETOOBIG: return "NDJSON line too large";
  case LLM_NDJSON_ENOMEM: return "out of memory";
  default: return "unknown NDJSON error";
  }
}
