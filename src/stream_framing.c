/* Event queue over the body of a streaming response. See stream_framing.h. */
#include "stream_framing.h"

#include <stdlib.h>
#include <string.h>

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

int llm_framing_init(llm_framing *f, const char *mode)
{
  memset(f, 0, sizeof *f);
  if (strcmp(mode, "raw") == 0) {
    f->mode = LLM_FRAMING_RAW;
    return 0;
  }
  return -1;
}

void llm_framing_feed(llm_framing *f, const char *data, size_t len, double now)
{
  if (f->error || len == 0)
    return;
  push(f, new_event(data, len, now));
}

void llm_framing_finish(llm_framing *f)
{
  (void)f;
}

void llm_framing_set_raw(llm_framing *f)
{
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
