/* Event queue over the body of a streaming response. See stream_framing.h. */
#include "stream_framing.h"

#include <stdlib.h>
#include <string.h>

#include "ndjson.h"
#include "sse.h"

/* The parsers call back with pieces of the chunk being fed; `now` is the
 * arrival time of that chunk. */
typedef struct parser {
  llm_framing *f;
  double now;
  union {
    llm_sse sse;
    llm_ndjson ndjson;
  } u;
} parser;

static llm_event *new_event(const char *data, size_t len, double now)
{
  llm_event *ev = calloc(1, sizeof *ev);
  if (!ev)
    return NULL;
  ev->data = malloc(len + 1);
  if (!ev->data) {
    free(ev);
    return NULL;
  }
  memcpy(ev->data, data, len);
  ev->data[len] = '\0';
  ev->len = len;
  ev->t = now;
  return ev;
}

static void push(llm_framing *f, llm_event *ev)
{
  if (!ev) {
    f->error = "out of memory queueing stream data";
    return;
  }
  if (f->tail)
    f->tail->next = ev;
  else
    f->head = ev;
  f->tail = ev;
  f->count++;
  f->queued += ev->len;
}

static char *dup_str(const char *s, size_t len)
{
  char *d = malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

static int on_sse(void *ud, const llm_sse_event *ev)
{
  parser *p = ud;
  llm_event *e = new_event(ev->data, ev->data_len, p->now);
  /* "message" is the default type: leave it out, like a browser's
   * onmessage; named events (Anthropic's) keep theirs */
  if (e && !(ev->type_len == 7 && memcmp(ev->type, "message", 7) == 0))
    e->type = dup_str(ev->type, ev->type_len);
  if (e && ev->id_len > 0)
    e->id = dup_str(ev->id, ev->id_len);
  push(p->f, e);
  return 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
  parser *p = ud;
  push(p->f, new_event(line, len, p->now));
  return 0;
}

int llm_framing_init(llm_framing *f, const char *mode)
{
  parser *p;
  memset(f, 0, sizeof *f);
  if (strcmp(mode, "raw") == 0) {
    f->mode = LLM_FRAMING_RAW;
    return 0;
  }
  if (strcmp(mode, "sse") != 0 && strcmp(mode, "ndjson") != 0)
    return -1;
  p = calloc(1, sizeof *p);
  if (!p)
    return -1;
  p->f = f;
  if (mode[0] == 's') {
    f->mode = LLM_FRAMING_SSE;
    llm_sse_init(&p->u.sse, on_sse, p, 0);
  } else {
    f->mode = LLM_FRAMING_NDJSON;
    llm_ndjson_init(&p->u.ndjson, on_line, p, 0);
  }
  f->parser = p;
  return 0;
}

void llm_framing_feed(llm_framing *f, const char *data, size_t len, double now)
{
  parser *p = f->parser;
  int rc;
  if (f->error || len == 0)
    return;
  if (f->mode == LLM_FRAMING_RAW) {
    push(f, new_event(data, len, now));
    return;
  }
  p->now = now;
  if (f->mode == LLM_FRAMING_SSE) {
    rc = llm_sse_feed(&p->u.sse, data, len, NULL);
    if (rc < 0)
      f->error = llm_sse_strerror(rc);
  } else {
    rc = llm_ndjson_feed(&p->u.ndjson, data, len, NULL);
    if (rc < 0)
      f->error = llm_ndjson_strerror(rc);
  }
}

void llm_framing_finish(llm_framing *f)
{
  parser *p = f->parser;
  if (f->error)
    return;
  if (f->mode == LLM_FRAMING_SSE) {
    if (llm_sse_finish(&p->u.sse) == LLM_SSE_TRUNCATED)
      f->truncated = 1;
  } else if (f->mode == LLM_FRAMING_NDJSON) {
    /* JSON Lines may omit the last LF; a cut-off object fails to decode */
    llm_ndjson_finish(&p->u.ndjson);
  }
}

static void free_parser(llm_framing *f)
{
  parser *p = f->parser;
  if (!p)
    return;
  if (f->mode == LLM_FRAMING_SSE)
    llm_sse_free(&p->u.sse);
  else if (f->mode == LLM_FRAMING_NDJSON)
    llm_ndjson_free(&p->u.ndjson);
  free(p);
  f->parser = NULL;
}

/* For a body that is not an event stream after all (an error response). */
void llm_framing_set_raw(llm_framing *f)
{
  free_parser(f);
  f->mode = LLM_FRAMING_RAW;
}

void llm_event_free(llm_event *ev)
{
  if (!ev)
    return;
  free(ev->type);
  free(ev->id);
  free(ev->data);
  free(ev);
}

void llm_framing_free(llm_framing *f)
{
  llm_event *ev;
  while ((ev = llm_framing_pop(f)) != NULL)
    llm_event_free(ev);
  free_parser(f);
}

int llm_framing_pending(const llm_framing *f) { return f->count > 0; }
size_t llm_framing_queued_bytes(const llm_framing *f) { return f->queued; }
const char *llm_framing_error(const llm_framing *f) { return f->error; }
int llm_framing_truncated(const llm_framing *f) { return f->truncated; }

llm_event *llm_framing_pop(llm_framing *f)
{
  llm_event *ev = f->head;
  if (!ev)
    return NULL;
  f->head = ev->next;
  if (!f->head)
    f->tail = NULL;
  ev->next = NULL;
  f->count--;
  f->queued -= ev->len;
  return ev;
}
