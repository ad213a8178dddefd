/* Sending a completion, for both wire formats (sim_chat.c for OpenAI,
 * sim_messages.c for Anthropic): asking the model for the answers, timing
 * them with the request's latency profile (TTFT, prefill, reasoning time,
 * tokens per second, jitter), and sending them as JSON or as SSE with the
 * plan's faults. What the bytes look like is the wire's (sim_wire). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_server.h"

void sim_chat_free(sim_chat *c)
{
  if (!c)
    return;
  for (int i = 0; c->answers && i < c->n; i++)
    sim_answer_free(&c->answers[i]);
  if (c->wire && c->wire->free_ext)
    c->wire->free_ext(c->ext);
  free(c->answers);
  free(c->step_at);
  free(c->step_cost);
  free(c->model);
  free(c);
}

/* Steps of one OpenAI choice: its text pieces, then each tool call's
 * argument fragments; at least one (the role and finish chunks). */
static size_t choice_steps(const sim_answer *a)
{
  size_t n = a->npieces;
  for (size_t k = 0; k < a->ntool_calls; k++)
    n += a->tool_calls[k].npieces;
  return n;
}

sim_chat *sim_chat_answer(const sim_request *req, int n, const sim_wire *wire)
{
  sim_chat *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->wire = wire;
  c->n = n;
  c->model = strdup(req->model);
  c->answers = calloc((size_t)n, sizeof *c->answers);
  if (!c->model || !c->answers)
    goto fail;
  for (int i = 0; i < n; i++) {
    const sim_answer *a = &c->answers[i];
    if (sim_model_answer(req, i, &c->answers[i]) != 0)
      goto fail;
    c->completion_tokens += a->completion_tokens;
    c->reasoning_tokens += a->reasoning_tokens;
    if (choice_steps(a) > c->nsteps)
      c->nsteps = choice_steps(a);
  }
  if (c->nsteps == 0)
    c->nsteps = 1;
  c->prompt_tokens = sim_model_prompt_tokens(req);
  c->logprobs = req->logprobs;
  c->created = (int64_t)time(NULL);
  return c;
fail:
  sim_chat_free(c);
  return NULL;
}

/* When each step is due: the TTFT (the profile's, plus its prefill time
 * for the prompt tokens beyond the first 1,000 that the prefix cache did
 * not serve, times a jitter factor), then step_cost[i] tokens of
 * generation time before step i, each gap with its own jitter factor.
 * Hidden reasoning is the cost of step 0: the first visible token waits
 * for it. 0, or -1 when out of memory. */
static int schedule(sim_req *r, sim_chat *c, const sim_plan *pl, uint64_t *rng)
{
  double ttft = pl->ttft_ms;
  int uncached = c->prompt_tokens - c->cached_tokens - 1000;
  int64_t t = r->t0;
  c->step_at = malloc(c->nsteps * sizeof *c->step_at);
  if (!c->step_at)
    return -1;
  if (uncached > 0)
    ttft += pl->prefill_ms_per_1k * uncached / 1000.0;
  if (pl->fault.kind == SIM_FAULT_SLOW_HEADERS)
    t += (int64_t)pl->fp.header_delay_ms * 1000000;
  t += (int64_t)(ttft * 1e6 * sim_jitter_factor(rng, pl->jitter));
  for (size_t i = 0; i < c->nsteps; i++) {
    double cost = c->step_cost ? c->step_cost[i] : i > 0;
    if (pl->tokens_per_s > 0 && cost > 0)
      t += (int64_t)(cost * 1e9 / pl->tokens_per_s * sim_jitter_factor(rng, pl->jitter));
    c->step_at[i] = t;
  }
  return 0;
}

/* Where a mid-stream fault strikes: after `after_tokens` steps, else half. */
static size_t fault_step(const sim_chat *c, const sim_plan *pl)
{
  if (pl->fp.after_tokens >= 0)
    return (size_t)pl->fp.after_tokens < c->nsteps ? (size_t)pl->fp.after_tokens : c->nsteps;
  return c->nsteps / 2 ? c->nsteps / 2 : 1;
}

static void reply_stream(sim_req *r, sim_chat *c, const sim_plan *pl)
{
  struct MHD_Response *resp;
  char buf[32];
  switch (pl->fault.kind) {
  case SIM_FAULT_DROP_BEFORE_BODY:
    c->fault = SIM_FAULT_DROP_MID_STREAM;
    c->fault_step = 0;
    break;
  case SIM_FAULT_DROP_MID_STREAM:
  case SIM_FAULT_MALFORMED_JSON:
  case SIM_FAULT_ERROR_CHUNK:
  case SIM_FAULT_STALL:
    c->fault = pl->fault.kind;
    c->fault_step = fault_step(c, pl);
    c->stall_ms = pl->fp.stall_ms;
    break;
  default:
    break;
  }
  r->send_at = r->ttft_at = c->step_at[0];
  snprintf(buf, sizeof buf, "%.3f", (double)(c->step_at[0] - r->t0) / 1e6);
  resp = sim_body_sse(r, c);
  if (!resp) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(resp, "x-sim-profile", pl->profile);
  MHD_add_response_header(resp, "x-sim-ttft-planned-ms", buf);
  MHD_add_response_header(resp, "x-sim-skill", c->answers[0].skill ? c->answers[0].skill : "filler");
  r->resp = resp;
  r->status = 200;
}

static void reply_json(sim_req *r, sim_chat *c, const sim_plan *pl)
{
  llm_buf b;
  char *data, buf[32];
  size_t len;
  struct MHD_Response *resp = NULL;
  int64_t send_at = c->step_at[c->nsteps - 1];
  const char *skill = c->answers[0].skill ? c->answers[0].skill : "filler"; /* static */
  llm_buf_init(&b);
  c->wire->put_body(c, &b);
  snprintf(buf, sizeof buf, "%.3f", (double)(c->step_at[0] - r->t0) / 1e6);
  sim_chat_free(c);
  if (b.failed) {
    llm_buf_free(&b);
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  data = llm_buf_take(&b, &len);
  switch (pl->fault.kind) {
  case SIM_FAULT_DROP_BEFORE_BODY:
    resp = sim_body_cut(r, data, len, 0, 0);
    break;
  case SIM_FAULT_DROP_MID_STREAM:
    resp = sim_body_cut(r, data, len, len / 2, 0);
    break;
  case SIM_FAULT_STALL:
    resp = sim_body_cut(r, data, len, len / 2, pl->fp.stall_ms > 0 ? pl->fp.stall_ms : 1);
    break;
  case SIM_FAULT_MALFORMED_JSON:
    resp = MHD_create_response_from_buffer(len / 2, data, MHD_RESPMEM_MUST_FREE);
    if (!resp)
      free(data);
    break;
  case SIM_FAULT_ERROR_CHUNK: /* no stream to put it in: the error it reports */
    free(data);
    if (r->wire == SIM_WIRE_ANTHROPIC)
      sim_reply_error(r, 529, "overloaded_error", NULL, NULL, "Overloaded");
    else
      sim_reply_error(r, 500, "server_error", NULL, NULL, "The server had an error while "
                      "processing your request. Sorry about that! (simulated fault)");
    r->send_at = send_at;
    return;
  default:
    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp)
      free(data);
  }
  if (!resp) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  MHD_add_response_header(resp, "x-sim-profile", pl->profile);
  MHD_add_response_header(resp, "x-sim-ttft-ms", buf);
  MHD_add_response_header(resp, "x-sim-skill", skill);
  r->resp = resp;
  r->status = 200;
  r->send_at = send_at;
}

void sim_chat_send(sim_req *r, sim_chat *c, const sim_plan *pl, int stream)
{
  sim_server *s = r->srv;
  uint64_t rng = pl->rng;
  if (schedule(r, c, pl, &rng) != 0) {
    sim_chat_free(c);
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  atomic_fetch_add(&s->prompt_tokens, (uint64_t)c->prompt_tokens);
  atomic_fetch_add(&s->completion_tokens, (uint64_t)c->completion_tokens);
  atomic_fetch_add(&s->cached_tokens, (uint64_t)c->cached_tokens);
  if (stream) {
    atomic_fetch_add(&s->streams, 1);
    reply_stream(r, c, pl);
  } else {
    reply_json(r, c, pl);
  }
}
