/* POST /v1/chat/completions: validate the request as OpenAI does, ask the
 * model (sim_model.h) for the answers, time them with the request's
 * profile, and write OpenAI's exact shapes: a chat.completion object, or
 * chat.completion.chunk SSE events (sim_stream.c sends them on time).
 * Formats: the OpenAI API reference for chat completions and its
 * streaming chunks; include_usage as quoted in RELIABILITY.md C.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_server.h"

#define MAX_CHOICES 128
#define MAX_STOP 4

/* ---- the request --------------------------------------------------------------------- */

typedef struct chat_req {
  sim_request mr;           /* what the model sees */
  sim_message *msgs;
  char **owned;             /* concatenated content parts */
  size_t nowned;
  const char *stop[MAX_STOP];
  int n, stream, include_usage;
} chat_req;

static void chat_req_free(chat_req *q)
{
  for (size_t i = 0; i < q->nowned; i++)
    free(q->owned[i]);
  free(q->owned);
  free(q->msgs);
}

static int bad(sim_req *r, const char *param, const char *code, const char *msg)
{
  sim_reply_error(r, 400, "invalid_request_error", param, code, "%s", msg);
  return -1;
}

/* Text of a content array: the "text" of each text part, joined. */
static int join_parts(sim_req *r, chat_req *q, const json_value *parts, sim_message *m,
                      size_t idx)
{
  json_buf b;
  char param[64];
  char **no;
  snprintf(param, sizeof param, "messages[%zu].content", idx);
  jb_init(&b);
  for (size_t i = 0; i < parts->u.array.n; i++) {
    const json_value *p = &parts->u.array.items[i], *t = json_get(p, "type");
    if (p->type != JSON_OBJECT || !json_is_string(t)) {
      jb_free(&b);
      return bad(r, param, "invalid_type", "Each content part must be an object with a "
                                           "\"type\".");
    }
    if (strcmp(t->u.string.ptr, "text") == 0) {
      const json_value *text = json_get(p, "text");
      if (!json_is_string(text)) {
        jb_free(&b);
        return bad(r, param, "invalid_type", "A text content part needs a string \"text\".");
      }
      jb_put(&b, text->u.string.ptr, text->u.string.len);
    }
    /* images, audio and files carry no text for the simulated model */
  }
  no = b.failed ? NULL : realloc(q->owned, (q->nowned + 1) * sizeof *no);
  if (!no) {
    jb_free(&b);
    return bad(r, param, NULL, "Out of memory.");
  }
  q->owned = no;
  m->content_len = b.len;
  m->content = b.data ? b.data : "";
  q->owned[q->nowned++] = jb_take(&b, NULL);
  return 0;
}

static int parse_messages(sim_req *r, chat_req *q, const json_value *msgs)
{
  static const char *const roles[] = {"system", "developer", "user", "assistant",
                                      "tool", "function", NULL};
  char param[64], msg[160];
  if (!msgs)
    return bad(r, "messages", "missing_required_parameter",
               "Missing required parameter: 'messages'.");
  if (msgs->type != JSON_ARRAY)
    return bad(r, "messages", "invalid_type",
               "Invalid type for 'messages': expected an array of objects.");
  if (msgs->u.array.n == 0)
    return bad(r, "messages", "empty_array",
               "Invalid 'messages': empty array. Expected an array with minimum length 1, "
               "but got an empty array instead.");
  q->msgs = calloc(msgs->u.array.n, sizeof *q->msgs);
  if (!q->msgs)
    return bad(r, "messages", NULL, "Out of memory.");
  for (size_t i = 0; i < msgs->u.array.n; i++) {
    const json_value *m = &msgs->u.array.items[i], *role = json_get(m, "role"),
                     *content = json_get(m, "content"), *name = json_get(m, "name");
    sim_message *out = &q->msgs[i];
    size_t k = 0;
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (m->type != JSON_OBJECT)
      return bad(r, param, "invalid_type", "Each message must be an object.");
    if (!json_is_string(role)) {
      snprintf(msg, sizeof msg, "Missing required parameter: 'messages[%zu].role'.", i);
      return bad(r, param, "missing_required_parameter", msg);
    }
    while (roles[k] && strcmp(roles[k], role->u.string.ptr) != 0)
      k++;
    if (!roles[k]) {
      snprintf(msg, sizeof msg, "Invalid value: '%.40s'. Supported values are: 'system', "
                                "'developer', 'user', 'assistant', 'tool' and 'function'.",
               role->u.string.ptr);
      return bad(r, param, "invalid_value", msg);
    }
    out->role = roles[k];
    out->content = "";
    out->content_len = 0;
    out->name = json_is_string(name) ? name->u.string.ptr : NULL;
    if (json_is_string(content)) {
      out->content = content->u.string.ptr;
      out->content_len = content->u.string.len;
    } else if (content && content->type == JSON_ARRAY) {
      if (join_parts(r, q, content, out, i) != 0)
        return -1;
    } else if (content && content->type != JSON_NULL) {
      return bad(r, param, "invalid_type", "A message's content must be a string, an array "
                                           "of content parts, or null.");
    } else if (strcmp(out->role, "assistant") != 0 && strcmp(out->role, "function") != 0) {
      snprintf(msg, sizeof msg, "Missing required parameter: 'messages[%zu].content'.", i);
      return bad(r, param, "missing_required_parameter", msg);
    }
  }
  q->mr.messages = q->msgs;
  q->mr.nmessages = msgs->u.array.n;
  return 0;
}

static int int_field(sim_req *r, const json_value *body, const char *key, int64_t lo,
                     int64_t hi, int64_t *out)
{
  const json_value *v = json_get(body, key);
  char msg[160];
  if (!v || v->type == JSON_NULL)
    return 0;
  if (!json_int64(v, out) || *out < lo || *out > hi) {
    snprintf(msg, sizeof msg, "Invalid '%s': expected an integer from %lld to %lld.", key,
             (long long)lo, (long long)hi);
    return bad(r, key, "invalid_value", msg);
  }
  return 1;
}

static int bool_field(sim_req *r, const json_value *obj, const char *key, const char *param,
                      int *out)
{
  const json_value *v = json_get(obj, key);
  char msg[128];
  if (!v || v->type == JSON_NULL)
    return 0;
  if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
    snprintf(msg, sizeof msg, "Invalid type for '%s': expected a boolean.", param);
    return bad(r, param, "invalid_type", msg);
  }
  *out = v->type == JSON_TRUE;
  return 1;
}

static int parse_chat(sim_req *r, const json_value *body, chat_req *q)
{
  const json_value *model = json_get(body, "model"), *v;
  int64_t i64;
  int lp = 0;
  memset(q, 0, sizeof *q);
  q->n = 1;
  q->mr.temperature = 1.0;
  if (!json_is_string(model) || !model->u.string.len)
    return bad(r, "model", "missing_required_parameter", "you must provide a model parameter");
  q->mr.model = model->u.string.ptr;
  if (parse_messages(r, q, json_get(body, "messages")) != 0)
    return -1;
  if (bool_field(r, body, "stream", "stream", &q->stream) < 0)
    return -1;
  v = json_get(body, "stream_options");
  if (v && v->type != JSON_NULL) {
    if (!q->stream)
      return bad(r, "stream_options", "invalid_value", "The 'stream_options' parameter is "
                                                       "only allowed when 'stream' is enabled.");
    if (v->type != JSON_OBJECT)
      return bad(r, "stream_options", "invalid_type", "Invalid type for 'stream_options': "
                                                      "expected an object.");
    if (bool_field(r, v, "include_usage", "stream_options.include_usage",
                   &q->include_usage) < 0)
      return -1;
  }
  if ((lp = int_field(r, body, "n", 1, MAX_CHOICES, &i64)) < 0)
    return -1;
  if (lp)
    q->n = (int)i64;
  /* max_completion_tokens replaced max_tokens; either is honoured */
  if ((lp = int_field(r, body, "max_tokens", 1, 1 << 30, &i64)) < 0)
    return -1;
  if (lp)
    q->mr.max_tokens = (int)i64;
  if ((lp = int_field(r, body, "max_completion_tokens", 1, 1 << 30, &i64)) < 0)
    return -1;
  if (lp)
    q->mr.max_tokens = (int)i64;
  if ((lp = int_field(r, body, "seed", INT64_MIN, INT64_MAX, &i64)) < 0)
    return -1;
  q->mr.has_seed = lp;
  q->mr.seed = lp ? i64 : 0;
  v = json_get(body, "temperature");
  if (v && v->type != JSON_NULL) {
    if (v->type != JSON_NUMBER || v->u.number.value < 0 || v->u.number.value > 2)
      return bad(r, "temperature", "invalid_value",
                 "Invalid 'temperature': expected a number from 0 to 2.");
    q->mr.temperature = v->u.number.value;
  }
  v = json_get(body, "stop");
  if (json_is_string(v)) {
    q->stop[q->mr.nstop++] = v->u.string.ptr;
  } else if (v && v->type == JSON_ARRAY) {
    if (v->u.array.n > MAX_STOP)
      return bad(r, "stop", "invalid_value", "Invalid 'stop': at most 4 sequences.");
    for (size_t i = 0; i < v->u.array.n; i++) {
      if (!json_is_string(&v->u.array.items[i]))
        return bad(r, "stop", "invalid_type", "Invalid 'stop': expected strings.");
      q->stop[q->mr.nstop++] = v->u.array.items[i].u.string.ptr;
    }
  } else if (v && v->type != JSON_NULL) {
    return bad(r, "stop", "invalid_type", "Invalid type for 'stop': expected a string or an "
                                          "array of strings.");
  }
  q->mr.stop = q->stop;
  if (bool_field(r, body, "logprobs", "logprobs", &q->mr.logprobs) < 0)
    return -1;
  if (int_field(r, body, "top_logprobs", 0, 20, &i64) < 0)
    return -1;
  if (json_get(body, "top_logprobs") && json_get(body, "top_logprobs")->type != JSON_NULL &&
      !q->mr.logprobs)
    return bad(r, "top_logprobs", "invalid_value",
               "Invalid 'top_logprobs': 'logprobs' must be true to use it.");
  return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

void sim_chat_put_usage(const sim_chat *c, json_buf *b)
{
  jb_puts(b, "{\"prompt_tokens\":");
  json_put_int(b, c->prompt_tokens);
  jb_puts(b, ",\"completion_tokens\":");
  json_put_int(b, c->completion_tokens);
  jb_puts(b, ",\"total_tokens\":");
  json_put_int(b, (int64_t)c->prompt_tokens + c->completion_tokens);
  jb_puts(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
  json_put_int(b, c->cached_tokens);
  jb_puts(b, ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,"
             "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
             "\"rejected_prediction_tokens\":0}}");
}

/* OpenAI's logprobs object for pieces [from, to) of an answer. */
static void put_logprobs(json_buf *b, const sim_answer *a, size_t from, size_t to)
{
  jb_puts(b, "{\"content\":[");
  for (size_t i = from; i < to; i++) {
    size_t s = i ? a->piece_ends[i - 1] : 0, e = a->piece_ends[i];
    if (i > from)
      jb_putc(b, ',');
    jb_puts(b, "{\"token\":");
    json_put_string(b, a->text + s, e - s);
    jb_puts(b, ",\"logprob\":");
    json_put_double(b, a->logprobs ? a->logprobs[i] : 0.0);
    jb_puts(b, ",\"bytes\":[");
    for (size_t k = s; k < e; k++) {
      if (k > s)
        jb_putc(b, ',');
      json_put_int(b, (unsigned char)a->text[k]);
    }
    jb_puts(b, "],\"top_logprobs\":[]}");
  }
  jb_puts(b, "],\"refusal\":null}");
}

static void put_chunk_tail(const sim_chat *c, json_buf *b)
{
  jb_puts(b, c->include_usage ? "],\"usage\":null}\n\n" : "]}\n\n");
}

void sim_chat_put_step(const sim_chat *c, size_t step, json_buf *b)
{
  for (int ch = 0; ch < c->n; ch++) {
    const sim_answer *a = &c->answers[ch];
    if (step == 0) {
      jb_puts(b, c->head);
      jb_printf(b, "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                   "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}", ch);
      put_chunk_tail(c, b);
    }
    if (step < a->npieces) {
      size_t s = step ? a->piece_ends[step - 1] : 0;
      jb_puts(b, c->head);
      jb_printf(b, "{\"index\":%d,\"delta\":{\"content\":", ch);
      json_put_string(b, a->text + s, a->piece_ends[step] - s);
      jb_puts(b, "},\"logprobs\":");
      if (c->logprobs)
        put_logprobs(b, a, step, step + 1);
      else
        jb_puts(b, "null");
      jb_puts(b, ",\"finish_reason\":null}");
      put_chunk_tail(c, b);
    }
    if (step + 1 == (a->npieces ? a->npieces : 1)) {
      jb_puts(b, c->head);
      jb_printf(b, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":", ch);
      json_put_cstring(b, a->finish_reason ? a->finish_reason : "stop");
      jb_putc(b, '}');
      put_chunk_tail(c, b);
    }
  }
}

void sim_chat_put_usage_chunk(const sim_chat *c, json_buf *b)
{
  jb_puts(b, c->head);
  jb_puts(b, "],\"usage\":");
  sim_chat_put_usage(c, b);
  jb_puts(b, "}\n\n");
}

void sim_chat_put_error_event(json_buf *b)
{
  jb_puts(b, "data: {\"error\":{\"message\":\"The server had an error while processing your "
             "request. Sorry about that! (simulated fault)\",\"type\":\"server_error\","
             "\"param\":null,\"code\":null}}\n\n");
}

static void put_completion(const sim_chat *c, json_buf *b)
{
  jb_printf(b, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
            c->id, (long long)c->created);
  json_put_cstring(b, c->model);
  jb_puts(b, ",\"choices\":[");
  for (int ch = 0; ch < c->n; ch++) {
    const sim_answer *a = &c->answers[ch];
    jb_printf(b, "%s{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":",
              ch ? "," : "", ch);
    json_put_string(b, a->text ? a->text : "", a->len);
    jb_puts(b, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":");
    if (c->logprobs)
      put_logprobs(b, a, 0, a->npieces);
    else
      jb_puts(b, "null");
    jb_puts(b, ",\"finish_reason\":");
    json_put_cstring(b, a->finish_reason ? a->finish_reason : "stop");
    jb_putc(b, '}');
  }
  jb_puts(b, "],\"usage\":");
  sim_chat_put_usage(c, b);
  jb_puts(b, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_llmrun_sim\"}\n");
}

void sim_chat_free(sim_chat *c)
{
  if (!c)
    return;
  for (int i = 0; c->answers && i < c->n; i++)
    sim_answer_free(&c->answers[i]);
  free(c->answers);
  free(c->step_at);
  free(c->head);
  free(c->model);
  free(c);
}

/* ---- answering ---------------------------------------------------------------------------- */

static void new_chat_id(sim_chat *c, uint64_t *rng)
{
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  int k = snprintf(c->id, sizeof c->id, "chatcmpl-");
  for (int i = 0; i < 24; i++)
    c->id[k++] = alnum[sim_rand(rng) % (sizeof alnum - 1)];
  c->id[k] = '\0';
}

static sim_chat *answer(chat_req *q, uint64_t *rng)
{
  sim_chat *c = calloc(1, sizeof *c);
  json_buf head;
  if (!c)
    return NULL;
  c->n = q->n;
  c->model = strdup(q->mr.model);
  c->answers = calloc((size_t)q->n, sizeof *c->answers);
  if (!c->model || !c->answers)
    goto fail;
  for (int i = 0; i < q->n; i++) {
    if (sim_model_answer(&q->mr, i, &c->answers[i]) != 0)
      goto fail;
    c->completion_tokens += c->answers[i].completion_tokens;
    if (c->answers[i].npieces > c->nsteps)
      c->nsteps = c->answers[i].npieces;
  }
  if (c->nsteps == 0)
    c->nsteps = 1;
  c->prompt_tokens = sim_model_prompt_tokens(&q->mr);
  c->include_usage = q->include_usage;
  c->logprobs = q->mr.logprobs;
  c->created = (int64_t)time(NULL);
  new_chat_id(c, rng);

  jb_init(&head);
  jb_printf(&head, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                   "\"model\":", c->id, (long long)c->created);
  json_put_cstring(&head, c->model);
  jb_puts(&head, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_llmrun_sim\","
                 "\"choices\":[");
  if (head.failed) {
    jb_free(&head);
    goto fail;
  }
  c->head = jb_take(&head, NULL);
  return c;
fail:
  sim_chat_free(c);
  return NULL;
}

/* When each step is due: the TTFT (the profile's, plus its prefill time
 * for the prompt tokens beyond the first 1,000 that the prefix cache did
 * not serve, times a jitter factor), then one gap per token. 0, or -1
 * when out of memory. */
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
  c->step_at[0] = t;
  for (size_t i = 1; i < c->nsteps; i++) {
    if (pl->tokens_per_s > 0)
      t += (int64_t)(1e9 / pl->tokens_per_s * sim_jitter_factor(rng, pl->jitter));
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
  resp = sim_body_sse(r, c);
  if (!resp) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(resp, "x-sim-profile", pl->profile);
  snprintf(buf, sizeof buf, "%.3f", (double)(c->step_at[0] - r->t0) / 1e6);
  MHD_add_response_header(resp, "x-sim-ttft-planned-ms", buf);
  r->resp = resp;
  r->status = 200;
}

static void reply_json(sim_req *r, sim_chat *c, const sim_plan *pl)
{
  json_buf b;
  char *data, buf[32];
  size_t len;
  struct MHD_Response *resp = NULL;
  int64_t send_at = c->step_at[c->nsteps - 1];
  jb_init(&b);
  put_completion(c, &b);
  snprintf(buf, sizeof buf, "%.3f", (double)(c->step_at[0] - r->t0) / 1e6);
  sim_chat_free(c);
  if (b.failed) {
    jb_free(&b);
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  data = jb_take(&b, &len);
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
  r->resp = resp;
  r->status = 200;
  r->send_at = send_at;
}

void sim_chat_handle(sim_req *r, const json_value *body)
{
  sim_server *s = r->srv;
  chat_req q;
  sim_plan pl;
  sim_chat *c;
  int tokens;
  uint64_t rng;
  atomic_fetch_add(&s->chat, 1);
  if (parse_chat(r, body, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(r, 404, "invalid_request_error", NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have access to it.",
                    q.mr.model);
    goto done;
  }
  if (sim_plan_request(r, body, q.mr.model, &pl) != 0 || sim_fault_reply(r, &pl))
    goto done;
  rng = pl.rng;
  c = answer(&q, &rng);
  if (!c) {
    sim_reply_error(r, 500, "server_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  /* a rate limit counts the prompt plus what the request may generate */
  tokens = c->prompt_tokens + (q.mr.max_tokens > 0 ? q.mr.max_tokens * q.n : 0);
  if (sim_ratelimit_check(r, q.mr.model, tokens)) {
    sim_chat_free(c);
    goto done;
  }
  c->cached_tokens = sim_cache_lookup(s->cache, &q.mr, c->prompt_tokens, r->t0,
                                      s->cfg.cache_ttl_s);
  if (schedule(r, c, &pl, &rng) != 0) {
    sim_chat_free(c);
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  atomic_fetch_add(&s->prompt_tokens, (uint64_t)c->prompt_tokens);
  atomic_fetch_add(&s->completion_tokens, (uint64_t)c->completion_tokens);
  atomic_fetch_add(&s->cached_tokens, (uint64_t)c->cached_tokens);
  if (q.stream) {
    atomic_fetch_add(&s->streams, 1);
    reply_stream(r, c, &pl);
  } else {
    reply_json(r, c, &pl);
  }
done:
  chat_req_free(&q);
}

/* ---- a batch line (sim_batch.c) --------------------------------------------------------------- */

/* One request of a batch input file, answered at once by the same parser
 * and model as the endpoint above: no latency, faults or rate limits
 * (a batch runs outside them), a stream flag ignored. */
unsigned sim_chat_answer_body(sim_server *s, const json_value *body, json_buf *out)
{
  sim_req r;
  chat_req q;
  sim_chat *c;
  uint64_t rng = sim_rand(&s->rng);
  memset(&r, 0, sizeof r);
  r.srv = s;
  r.capture = out; /* replies (the errors of parse_chat) land in out */
  r.status = 500;
  if (parse_chat(&r, body, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(&r, 404, "invalid_request_error", NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have access to it.",
                    q.mr.model);
    goto done;
  }
  if (!(c = answer(&q, &rng))) {
    sim_reply_error(&r, 500, "server_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  c->cached_tokens = sim_cache_lookup(s->cache, &q.mr, c->prompt_tokens, sim_now_ns(),
                                      s->cfg.cache_ttl_s);
  put_completion(c, out);
  sim_chat_free(c);
  r.status = out->failed ? 500 : 200;
done:
  chat_req_free(&q);
  return r.status;
}
