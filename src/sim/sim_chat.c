/* POST /v1/chat/completions: ask the model (sim_model.h) for the
 * answers of a request read by sim_chat_request.c, and write OpenAI's
 * exact shapes: a chat.completion object, or chat.completion.chunk SSE
 * events (sim_reply.c times them, sim_stream.c sends them). Formats: the
 * OpenAI API reference for chat completions and its streaming chunks;
 * include_usage as quoted in RELIABILITY.md C.2. Tool calls: the message's
 * tool_calls [{id, type "function", function {name, arguments}}] with
 * content null and finish_reason "tool_calls"; streamed, a call's first
 * chunk carries its index, id, type, name and arguments "", later ones
 * argument fragments. Reasoning tokens: completion_tokens_details
 * .reasoning_tokens, inside completion_tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "sim_server.h"

/* The chunk prefix, up to "choices":[ (built once per completion). */
typedef struct oai_ext {
  char *head;
} oai_ext;

static const char *head_of(const sim_chat *c) { return ((const oai_ext *)c->ext)->head; }

static void free_ext(void *ext)
{
  oai_ext *x = ext;
  if (x)
    free(x->head);
  free(x);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void put_usage(const sim_chat *c, llm_buf *b)
{
  llm_buf_puts(b, "{\"prompt_tokens\":");
  json_put_int(b, c->prompt_tokens);
  llm_buf_puts(b, ",\"completion_tokens\":");
  json_put_int(b, c->completion_tokens);
  llm_buf_puts(b, ",\"total_tokens\":");
  json_put_int(b, (int64_t)c->prompt_tokens + c->completion_tokens);
  llm_buf_puts(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
  json_put_int(b, c->cached_tokens);
  llm_buf_puts(b, ",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":");
  json_put_int(b, c->reasoning_tokens);
  llm_buf_puts(b, ",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
             "\"rejected_prediction_tokens\":0}}");
}

/* OpenAI's logprobs object for pieces [from, to) of an answer. */
static void put_logprobs(llm_buf *b, const sim_answer *a, size_t from, size_t to)
{
  llm_buf_puts(b, "{\"content\":[");
  for (size_t i = from; i < to; i++) {
    size_t s = i ? a->piece_ends[i - 1] : 0, e = a->piece_ends[i];
    if (i > from)
      llm_buf_putc(b, ',');
    llm_buf_puts(b, "{\"token\":");
    json_put_string(b, a->text + s, e - s);
    llm_buf_puts(b, ",\"logprob\":");
    json_put_double(b, a->logprobs ? a->logprobs[i] : 0.0);
    llm_buf_puts(b, ",\"bytes\":[");
    for (size_t k = s; k < e; k++) {
      if (k > s)
        llm_buf_putc(b, ',');
      json_put_int(b, (unsigned char)a->text[k]);
    }
    llm_buf_puts(b, "],\"top_logprobs\":[]}");
  }
  llm_buf_puts(b, "],\"refusal\":null}");
}

/* A tool call's id, unique with the completion's id. */
static void call_id(const sim_chat *c, int choice, size_t k, char *out)
{
  uint64_t key = sim_hash_str(SIM_HASH_INIT, c->id);
  key = sim_hash_u64(sim_hash_u64(key, (uint64_t)choice), k);
  memcpy(out, "call_", 5);
  sim_base62(key, 24, out + 5);
}

static void put_chunk_tail(const sim_chat *c, llm_buf *b)
{
  llm_buf_puts(b, c->include_usage ? "],\"usage\":null}\n\n" : "]}\n\n");
}

/* The chunks of tool call k at its fragment f. */
static void put_call_step(const sim_chat *c, int ch, size_t k, size_t f, llm_buf *b)
{
  const sim_tool_call *tc = &c->answers[ch].tool_calls[k];
  size_t s = f ? tc->piece_ends[f - 1] : 0;
  if (f == 0) { /* the call's head: index, id, type, name, arguments "" */
    char id[40];
    call_id(c, ch, k, id);
    llm_buf_puts(b, head_of(c));
    llm_buf_printf(b, "{\"index\":%d,\"delta\":{\"tool_calls\":[{\"index\":%zu,\"id\":\"%s\","
                 "\"type\":\"function\",\"function\":{\"name\":", ch, k, id);
    json_put_cstring(b, tc->name);
    llm_buf_puts(b, ",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}");
    put_chunk_tail(c, b);
  }
  llm_buf_puts(b, head_of(c));
  llm_buf_printf(b, "{\"index\":%d,\"delta\":{\"tool_calls\":[{\"index\":%zu,\"function\":"
               "{\"arguments\":", ch, k);
  json_put_string(b, tc->arguments + s, tc->piece_ends[f] - s);
  llm_buf_puts(b, "}}]},\"logprobs\":null,\"finish_reason\":null}");
  put_chunk_tail(c, b);
}

static void put_step(const sim_chat *c, size_t step, llm_buf *b)
{
  for (int ch = 0; ch < c->n; ch++) {
    const sim_answer *a = &c->answers[ch];
    size_t total = a->npieces;
    for (size_t k = 0; k < a->ntool_calls; k++)
      total += a->tool_calls[k].npieces;
    if (step == 0) {
      llm_buf_puts(b, head_of(c));
      /* a reply that only calls tools has null content */
      llm_buf_printf(b, "{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":%s,"
                   "\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}", ch,
                a->npieces == 0 && a->ntool_calls ? "null" : "\"\"");
      put_chunk_tail(c, b);
    }
    if (step < a->npieces) {
      size_t s = step ? a->piece_ends[step - 1] : 0;
      llm_buf_puts(b, head_of(c));
      llm_buf_printf(b, "{\"index\":%d,\"delta\":{\"content\":", ch);
      json_put_string(b, a->text + s, a->piece_ends[step] - s);
      llm_buf_puts(b, "},\"logprobs\":");
      if (c->logprobs)
        put_logprobs(b, a, step, step + 1);
      else
        llm_buf_puts(b, "null");
      llm_buf_puts(b, ",\"finish_reason\":null}");
      put_chunk_tail(c, b);
    } else if (step < total) {
      size_t f = step - a->npieces, k = 0;
      while (f >= a->tool_calls[k].npieces)
        f -= a->tool_calls[k++].npieces;
      put_call_step(c, ch, k, f, b);
    }
    if (step + 1 == (total ? total : 1)) {
      llm_buf_puts(b, head_of(c));
      llm_buf_printf(b, "{\"index\":%d,\"delta\":{},\"logprobs\":null,\"finish_reason\":", ch);
      json_put_cstring(b, a->finish_reason ? a->finish_reason : "stop");
      llm_buf_putc(b, '}');
      put_chunk_tail(c, b);
    }
  }
}

static void put_tail(const sim_chat *c, llm_buf *b)
{
  if (c->include_usage) { /* the usage chunk: choices [] */
    llm_buf_puts(b, head_of(c));
    llm_buf_puts(b, "],\"usage\":");
    put_usage(c, b);
    llm_buf_puts(b, "}\n\n");
  }
  llm_buf_puts(b, "data: [DONE]\n\n");
}

static void put_error(const sim_chat *c, llm_buf *b)
{
  (void)c;
  llm_buf_puts(b, "data: {\"error\":{\"message\":\"The server had an error while processing your "
             "request. Sorry about that! (simulated fault)\",\"type\":\"server_error\","
             "\"param\":null,\"code\":null}}\n\n");
}

static void put_malformed(const sim_chat *c, llm_buf *b)
{
  llm_buf_put(b, head_of(c), strlen(head_of(c)) / 2);
  llm_buf_puts(b, "\n\n");
}

static void put_body(const sim_chat *c, llm_buf *b)
{
  llm_buf_printf(b, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
            c->id, (long long)c->created);
  json_put_cstring(b, c->model);
  llm_buf_puts(b, ",\"choices\":[");
  for (int ch = 0; ch < c->n; ch++) {
    const sim_answer *a = &c->answers[ch];
    llm_buf_printf(b, "%s{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":",
              ch ? "," : "", ch);
    if (a->len == 0 && a->ntool_calls)
      llm_buf_puts(b, "null");
    else
      json_put_string(b, a->text ? a->text : "", a->len);
    if (a->ntool_calls) {
      llm_buf_puts(b, ",\"tool_calls\":[");
      for (size_t k = 0; k < a->ntool_calls; k++) {
        char id[40];
        call_id(c, ch, k, id);
        llm_buf_printf(b, "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":",
                  k ? "," : "", id);
        json_put_cstring(b, a->tool_calls[k].name);
        llm_buf_puts(b, ",\"arguments\":");
        json_put_string(b, a->tool_calls[k].arguments, a->tool_calls[k].arguments_len);
        llm_buf_puts(b, "}}");
      }
      llm_buf_putc(b, ']');
    }
    llm_buf_puts(b, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":");
    if (c->logprobs)
      put_logprobs(b, a, 0, a->npieces);
    else
      llm_buf_puts(b, "null");
    llm_buf_puts(b, ",\"finish_reason\":");
    json_put_cstring(b, a->finish_reason ? a->finish_reason : "stop");
    llm_buf_putc(b, '}');
  }
  llm_buf_puts(b, "],\"usage\":");
  put_usage(c, b);
  llm_buf_puts(b, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_llmrun_sim\"}\n");
}

const sim_wire sim_openai_wire = {put_step, put_tail, put_error, put_malformed, put_body,
                                  free_ext};

/* ---- answering ---------------------------------------------------------------------------- */

/* The chunk prefix, and hidden reasoning as the first step's cost. */
static int prepare(sim_req *r, sim_chat *c)
{
  oai_ext *x = calloc(1, sizeof *x);
  llm_buf head;
  int reasoning = 0;
  if (!x)
    return -1;
  c->ext = x;
  sim_new_id(r->srv, "chatcmpl-", 24, c->id, sizeof c->id);
  llm_buf_init(&head);
  llm_buf_printf(&head, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                   "\"model\":", c->id, (long long)c->created);
  json_put_cstring(&head, c->model);
  llm_buf_puts(&head, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_llmrun_sim\","
                 "\"choices\":[");
  if (head.failed) {
    llm_buf_free(&head);
    return -1;
  }
  x->head = llm_buf_take(&head, NULL);
  /* the first visible token waits for the longest hidden reasoning */
  for (int i = 0; i < c->n; i++)
    if (c->answers[i].reasoning_tokens > reasoning)
      reasoning = c->answers[i].reasoning_tokens;
  if (reasoning > 0) {
    c->step_cost = malloc(c->nsteps * sizeof *c->step_cost);
    if (!c->step_cost)
      return -1;
    for (size_t i = 0; i < c->nsteps; i++)
      c->step_cost[i] = i ? 1 : reasoning;
  }
  return 0;
}

void sim_chat_handle(sim_req *r, const json_value *body)
{
  sim_server *s = r->srv;
  sim_chat_req q;
  sim_plan pl;
  sim_chat *c;
  int tokens;
  atomic_fetch_add(&s->chat, 1);
  if (sim_chat_parse(r, body, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(r, 404, "invalid_request_error", NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have access to it.",
                    q.mr.model);
    goto done;
  }
  if (sim_plan_request(r, body, q.mr.model, &pl) != 0 || sim_fault_reply(r, &pl))
    goto done;
  c = sim_chat_answer(&q.mr, q.n, &sim_openai_wire);
  if (!c || prepare(r, c) != 0) {
    sim_chat_free(c);
    sim_reply_error(r, 500, "server_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  c->prompt_tokens += q.tool_tokens;
  c->include_usage = q.include_usage;
  /* a rate limit counts the prompt plus what the request may generate, or
   * (count = "usage") what it will generate: the answer is already made */
  tokens = c->prompt_tokens + (s->cfg.rate_count_usage ? c->completion_tokens
                               : q.mr.max_tokens > 0 ? q.mr.max_tokens * q.n : 0);
  if (sim_ratelimit_check(r, q.mr.model, tokens)) {
    sim_chat_free(c);
    goto done;
  }
  c->cached_tokens = sim_cache_lookup(s->cache, &q.mr, c->prompt_tokens, r->t0,
                                      s->cfg.cache_ttl_s);
  sim_chat_send(r, c, &pl, q.stream);
done:
  sim_chat_req_free(&q);
}

/* ---- a batch line (sim_batch.c) --------------------------------------------------------------- */

/* One request of a batch input file, answered at once by the same parser
 * and model as the endpoint above: no latency, faults or rate limits
 * (a batch runs outside them), a stream flag ignored. */
unsigned sim_chat_answer_body(sim_server *s, const json_value *body, llm_buf *out,
                              const char **skill)
{
  sim_req r;
  sim_chat_req q;
  sim_chat *c;
  memset(&r, 0, sizeof r);
  r.srv = s;
  r.capture = out; /* replies (the errors of sim_chat_parse) land in out */
  r.status = 500;
  *skill = NULL;
  if (sim_chat_parse(&r, body, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(&r, 404, "invalid_request_error", NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have access to it.",
                    q.mr.model);
    goto done;
  }
  c = sim_chat_answer(&q.mr, q.n, &sim_openai_wire);
  if (!c || prepare(&r, c) != 0) {
    sim_chat_free(c);
    sim_reply_error(&r, 500, "server_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  c->prompt_tokens += q.tool_tokens;
  c->cached_tokens = sim_cache_lookup(s->cache, &q.mr, c->prompt_tokens, sim_now_ns(),
                                      s->cfg.cache_ttl_s);
  put_body(c, out);
  *skill = c->answers[0].skill ? c->answers[0].skill : "filler";
  sim_chat_free(c);
  r.status = out->failed ? 500 : 200;
done:
  sim_chat_req_free(&q);
  return r.status;
}
