/* Bodies that MHD pulls piece by piece through a content reader: the SSE
 * stream of a completion (either wire: the chat's sim_wire writes the
 * events), released one step at a time when its
 * deadline comes, and fixed bodies cut short on purpose (dropped or
 * stalled connections). When nothing is due the reader suspends the
 * connection until the next deadline (sim_req_wait_until) and returns 0;
 * MHD calls it again once a timer resumes the connection. */
#include <stdlib.h>
#include <string.h>

#include "sim_server.h"

typedef enum { BODY_SSE, BODY_CUT } body_kind;

typedef enum {
  SSE_STEPS,   /* token steps still to send */
  SSE_TAIL,    /* the usage chunk and [DONE] */
  SSE_END,     /* all written: end the chunked body */
} sse_phase;

struct sim_body {
  body_kind kind;
  sim_req *r;
  /* BODY_SSE */
  sim_chat *chat;
  llm_buf out;
  size_t out_pos, next_step;
  sse_phase phase;
  int fault_done, stalled, finished;
  int64_t stall_until;
  /* BODY_CUT */
  char *data;
  size_t len, cut;
  int stall_ms;
};

void sim_body_free(sim_body *b)
{
  if (!b)
    return;
  sim_chat_free(b->chat);
  llm_buf_free(&b->out);
  free(b->data);
  free(b);
}

int sim_body_finished(const sim_body *b) { return b && b->finished; }

/* What the SSE source did when asked for more bytes. */
enum { PRODUCED, WAIT, END, CLOSE };

/* Batches due steps into one write, but bounded, so one fast stream
 * cannot hold the loop (and every other stream's deadline) for long. */
#define BATCH_BYTES 16384

static int sse_produce(sim_body *b, int64_t now, int64_t *wake)
{
  sim_chat *c = b->chat;
  if (b->phase == SSE_STEPS) {
    if (c->fault != SIM_FAULT_NONE && !b->fault_done && b->next_step == c->fault_step) {
      switch (c->fault) {
      case SIM_FAULT_DROP_MID_STREAM:
        return CLOSE;
      case SIM_FAULT_ERROR_CHUNK:
        c->wire->put_error(c, &b->out);
        b->fault_done = 1;
        b->phase = SSE_END; /* the error ends the stream: no [DONE] */
        return PRODUCED;
      case SIM_FAULT_MALFORMED_JSON:
        /* an event whose JSON stops mid-way, then the stream goes on */
        c->wire->put_malformed(c, &b->out);
        b->fault_done = 1;
        return PRODUCED;
      case SIM_FAULT_STALL:
        /* silence until stall_until, then close if the client is still there */
        if (!b->stall_until)
          b->stall_until = now + (int64_t)c->stall_ms * 1000000;
        if (now >= b->stall_until)
          return CLOSE;
        *wake = b->stall_until;
        return WAIT;
      default:
        break;
      }
    }
    if (b->next_step < c->nsteps) {
      if (c->step_at[b->next_step] > now) {
        *wake = c->step_at[b->next_step];
        return WAIT;
      }
      do {
        c->wire->put_step(c, b->next_step++, &b->out);
      } while (b->next_step < c->nsteps && c->step_at[b->next_step] <= now &&
               b->out.len < BATCH_BYTES &&
               !(c->fault != SIM_FAULT_NONE && !b->fault_done &&
                 b->next_step == c->fault_step));
      return PRODUCED;
    }
    b->phase = SSE_TAIL;
  }
  if (b->phase == SSE_TAIL) {
    c->wire->put_tail(c, &b->out);
    b->phase = SSE_END;
    b->finished = 1;
    return PRODUCED;
  }
  return END;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
  sim_body *b = cls;
  sim_req *r = b->r;
  size_t w = 0;
  (void)pos;
  if (r->client_gone)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  for (;;) {
    int64_t wake = 0;
    int act;
    if (b->out_pos < b->out.len) {
      size_t n = b->out.len - b->out_pos;
      if (n > max - w)
        n = max - w;
      memcpy(buf + w, b->out.data + b->out_pos, n);
      b->out_pos += n;
      w += n;
      if (w == max)
        return (ssize_t)w;
      continue;
    }
    if (b->out.failed) {
      r->fault_close = 1;
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    llm_buf_reset(&b->out);
    b->out_pos = 0;
    act = sse_produce(b, sim_now_ns(), &wake);
    if (act == PRODUCED)
      continue;
    if (w > 0)
      return (ssize_t)w; /* send what we have; we are called again */
    switch (act) {
    case WAIT:
      if (sim_req_wait_until(r, wake) != MHD_YES) {
        r->fault_close = 1;
        return MHD_CONTENT_READER_END_WITH_ERROR;
      }
      return 0;
    case CLOSE:
      r->fault_close = 1;
      return MHD_CONTENT_READER_END_WITH_ERROR;
    default:
      return MHD_CONTENT_READER_END_OF_STREAM;
    }
  }
}

struct MHD_Response *sim_body_sse(sim_req *r, sim_chat *chat)
{
  sim_body *b = calloc(1, sizeof *b);
  struct MHD_Response *resp;
  if (!b) {
    sim_chat_free(chat);
    return NULL;
  }
  b->kind = BODY_SSE;
  b->r = r;
  b->chat = chat;
  llm_buf_init(&b->out);
  resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 2048, sse_reader, b, NULL);
  if (!resp) {
    sim_body_free(b);
    return NULL;
  }
  sim_body_free(r->bodysrc);
  r->bodysrc = b;
  return resp;
}

/* ---- fixed bodies, cut ------------------------------------------------------------------------- */

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
  sim_body *b = cls;
  sim_req *r = b->r;
  if (r->client_gone)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  if (pos < b->cut) {
    size_t n = b->cut - (size_t)pos;
    if (n > max)
      n = max;
    memcpy(buf, b->data + pos, n);
    return (ssize_t)n;
  }
  if (b->stall_ms > 0 && !b->stalled) {
    b->stalled = 1;
    if (sim_req_wait_until(r, sim_now_ns() + (int64_t)b->stall_ms * 1000000) == MHD_YES)
      return 0;
  }
  r->fault_close = 1;
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

struct MHD_Response *sim_body_cut(sim_req *r, char *data, size_t len, size_t cut, int stall_ms)
{
  sim_body *b = calloc(1, sizeof *b);
  struct MHD_Response *resp;
  if (!b) {
    free(data);
    return NULL;
  }
  b->kind = BODY_CUT;
  b->r = r;
  b->data = data;
  b->len = len;
  b->cut = cut < len ? cut : len;
  b->stall_ms = stall_ms;
  llm_buf_init(&b->out);
  /* the full length is announced, so the client knows the body was cut */
  resp = MHD_create_response_from_callback(len, 2048, cut_reader, b, NULL);
  if (!resp) {
    sim_body_free(b);
    return NULL;
  }
  sim_body_free(r->bodysrc);
  r->bodysrc = b;
  return resp;
}
