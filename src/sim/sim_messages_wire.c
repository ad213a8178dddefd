/* The Anthropic wire: a Message object, or the SSE events of its stream,
 * for an answer of the simulated model (one choice).
 *
 * Shapes (Anthropic's API reference and streaming guide, platform.claude.
 * com/docs/en/build-with-claude/streaming; a recorded claude-sonnet-4-5
 * stream for the usage fields): content blocks in order thinking
 * {thinking, signature}, text {text}, tool_use {id, name, input};
 * stop_reason end_turn | max_tokens | stop_sequence | tool_use, and
 * stop_sequence the one matched; usage {input_tokens,
 * cache_creation_input_tokens, cache_read_input_tokens, cache_creation
 * {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}, output_tokens,
 * service_tier}. The stream: message_start (the Message with empty content
 * and output_tokens 1), then per block content_block_start,
 * content_block_delta (text_delta, thinking_delta then one signature_delta,
 * input_json_delta), content_block_stop; a ping after the first block's
 * start; message_delta with stop_reason and the cumulative usage
 * (input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
 * output_tokens); message_stop. A mid-stream error is an `error` event,
 * {"type":"error","error":{"type":"overloaded_error","message":
 * "Overloaded"}}, after which the stream ends. A tool call without
 * arguments streams one input_json_delta with partial_json "" (its
 * content_block_start already says input {}), as the real API does.
 * Thinking deltas fill the reasoning time before the first text token.
 * Output tokens include all thinking tokens, not only the summary shown. */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "sim_messages.h"

enum { B_THINKING, B_TEXT, B_TOOL };

typedef struct ablock {
  int kind;
  size_t call;              /* B_TOOL: which tool call */
  size_t npieces;           /* its deltas (0: a block with no delta) */
  size_t first_step;
} ablock;

typedef struct amsg_ext {
  amsg_usage u;
  char *stop_sequence;      /* copied: the request's strings do not outlive it */
  ablock blocks[66];        /* thinking, text, 64 tool calls at most */
  size_t nblocks;
  size_t *step_block;       /* step -> block */
  char signature[100];
} amsg_ext;

#define EXT(c) ((amsg_ext *)(c)->ext)

static void free_ext(void *p)
{
  amsg_ext *x = p;
  if (!x)
    return;
  free(x->stop_sequence);
  free(x->step_block);
  free(x);
}

static const char *stop_reason(const sim_answer *a)
{
  if (strcmp(a->finish_reason, "length") == 0)
    return "max_tokens";
  if (strcmp(a->finish_reason, "tool_calls") == 0)
    return "tool_use";
  return a->stop_sequence ? "stop_sequence" : "end_turn";
}

static void tool_id(const sim_chat *c, size_t k, char *out)
{
  uint64_t key = sim_hash_u64(sim_hash_str(SIM_HASH_INIT, c->id), k);
  memcpy(out, "toolu_01", 8);
  sim_base62(key, 22, out + 8);
}

static int empty_input(const sim_tool_call *tc)
{
  return tc->arguments_len == 2 && memcmp(tc->arguments, "{}", 2) == 0;
}

/* ---- pieces -------------------------------------------------------------------------------- */

static void put_piece(llm_buf *b, const char *s, const size_t *ends, size_t i)
{
  size_t from = i ? ends[i - 1] : 0;
  json_put_string(b, s + from, ends[i] - from);
}

static void event(llm_buf *b, const char *name)
{
  llm_buf_printf(b, "event: %s\ndata: ", name);
}

static void put_usage_fields(const sim_chat *c, llm_buf *b)
{
  const amsg_usage *u = &EXT(c)->u;
  llm_buf_printf(b, "\"input_tokens\":%d,\"cache_creation_input_tokens\":%d,"
               "\"cache_read_input_tokens\":%d", u->input_tokens,
            u->cache_write_5m + u->cache_write_1h, u->cache_read);
}

static void put_block_start(const sim_chat *c, size_t bi, llm_buf *b)
{
  const ablock *bl = &EXT(c)->blocks[bi];
  event(b, "content_block_start");
  llm_buf_printf(b, "{\"type\":\"content_block_start\",\"index\":%zu,\"content_block\":", bi);
  if (bl->kind == B_THINKING) {
    llm_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
  } else if (bl->kind == B_TEXT) {
    llm_buf_puts(b, "{\"type\":\"text\",\"text\":\"\"}");
  } else {
    char id[40];
    tool_id(c, bl->call, id);
    llm_buf_printf(b, "{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":", id);
    json_put_cstring(b, c->answers[0].tool_calls[bl->call].name);
    llm_buf_puts(b, ",\"input\":{}}");
  }
  llm_buf_puts(b, "}\n\n");
}

static void put_block_stop(const sim_chat *c, size_t bi, llm_buf *b)
{
  if (EXT(c)->blocks[bi].kind == B_THINKING) {
    event(b, "content_block_delta");
    llm_buf_printf(b, "{\"type\":\"content_block_delta\",\"index\":%zu,\"delta\":{\"type\":"
                 "\"signature_delta\",\"signature\":\"%s\"}}\n\n", bi, EXT(c)->signature);
  }
  event(b, "content_block_stop");
  llm_buf_printf(b, "{\"type\":\"content_block_stop\",\"index\":%zu}\n\n", bi);
}

static void put_delta(const sim_chat *c, size_t bi, size_t piece, llm_buf *b)
{
  const sim_answer *a = &c->answers[0];
  const ablock *bl = &EXT(c)->blocks[bi];
  event(b, "content_block_delta");
  llm_buf_printf(b, "{\"type\":\"content_block_delta\",\"index\":%zu,\"delta\":{\"type\":", bi);
  if (bl->kind == B_THINKING) {
    llm_buf_puts(b, "\"thinking_delta\",\"thinking\":");
    put_piece(b, a->thinking, a->thinking_ends, piece);
  } else if (bl->kind == B_TEXT) {
    llm_buf_puts(b, "\"text_delta\",\"text\":");
    put_piece(b, a->text, a->piece_ends, piece);
  } else {
    const sim_tool_call *tc = &a->tool_calls[bl->call];
    llm_buf_puts(b, "\"input_json_delta\",\"partial_json\":");
    if (empty_input(tc))
      llm_buf_puts(b, "\"\"");
    else
      put_piece(b, tc->arguments, tc->piece_ends, piece);
  }
  llm_buf_puts(b, "}}\n\n");
}

/* ---- the wire ---------------------------------------------------------------------------------- */

static void put_message_head(const sim_chat *c, llm_buf *b)
{
  llm_buf_printf(b, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", c->id);
  json_put_cstring(b, c->model);
}

static void put_step(const sim_chat *c, size_t step, llm_buf *b)
{
  amsg_ext *x = EXT(c);
  size_t bi = x->step_block[step];
  const ablock *bl = &x->blocks[bi];
  if (step == 0) {
    const amsg_usage *u = &x->u;
    event(b, "message_start");
    llm_buf_puts(b, "{\"type\":\"message_start\",\"message\":");
    put_message_head(c, b);
    llm_buf_puts(b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{");
    put_usage_fields(c, b);
    llm_buf_printf(b, ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":%d,"
                 "\"ephemeral_1h_input_tokens\":%d},\"output_tokens\":1,"
                 "\"service_tier\":\"standard\"}}}\n\n", u->cache_write_5m, u->cache_write_1h);
    put_block_start(c, 0, b);
    event(b, "ping");
    llm_buf_puts(b, "{\"type\":\"ping\"}\n\n");
  } else if (bl->first_step == step) {
    put_block_stop(c, bi - 1, b);
    put_block_start(c, bi, b);
  }
  if (bl->npieces)
    put_delta(c, bi, step - bl->first_step, b);
}

static void put_tail(const sim_chat *c, llm_buf *b)
{
  const sim_answer *a = &c->answers[0];
  put_block_stop(c, EXT(c)->nblocks - 1, b);
  event(b, "message_delta");
  llm_buf_printf(b, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
               "\"stop_sequence\":", stop_reason(a));
  json_put_cstring(b, EXT(c)->stop_sequence);
  llm_buf_puts(b, "},\"usage\":{");
  put_usage_fields(c, b);
  llm_buf_printf(b, ",\"output_tokens\":%d}}\n\n", c->completion_tokens);
  event(b, "message_stop");
  llm_buf_puts(b, "{\"type\":\"message_stop\"}\n\n");
}

static void put_error(const sim_chat *c, llm_buf *b)
{
  (void)c;
  event(b, "error");
  llm_buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"}}\n\n");
}

static void put_malformed(const sim_chat *c, llm_buf *b)
{
  (void)c;
  event(b, "content_block_delta");
  llm_buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"te\n\n");
}

static void put_body(const sim_chat *c, llm_buf *b)
{
  const sim_answer *a = &c->answers[0];
  const amsg_ext *x = EXT(c);
  put_message_head(c, b);
  llm_buf_puts(b, ",\"content\":[");
  for (size_t bi = 0; bi < x->nblocks; bi++) {
    const ablock *bl = &x->blocks[bi];
    if (bi)
      llm_buf_putc(b, ',');
    if (bl->kind == B_THINKING) {
      llm_buf_puts(b, "{\"type\":\"thinking\",\"thinking\":");
      json_put_string(b, a->thinking, a->thinking_len);
      llm_buf_printf(b, ",\"signature\":\"%s\"}", x->signature);
    } else if (bl->kind == B_TEXT) {
      llm_buf_puts(b, "{\"type\":\"text\",\"text\":");
      json_put_string(b, a->text ? a->text : "", a->len);
      llm_buf_putc(b, '}');
    } else {
      const sim_tool_call *tc = &a->tool_calls[bl->call];
      char id[40];
      tool_id(c, bl->call, id);
      llm_buf_printf(b, "{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":", id);
      json_put_cstring(b, tc->name);
      llm_buf_puts(b, ",\"input\":");
      llm_buf_put(b, tc->arguments, tc->arguments_len); /* JSON the model built */
      llm_buf_putc(b, '}');
    }
  }
  llm_buf_printf(b, "],\"stop_reason\":\"%s\",\"stop_sequence\":", stop_reason(a));
  json_put_cstring(b, x->stop_sequence);
  llm_buf_puts(b, ",\"usage\":{");
  put_usage_fields(c, b);
  llm_buf_printf(b, ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":%d,"
               "\"ephemeral_1h_input_tokens\":%d},\"output_tokens\":%d,"
               "\"service_tier\":\"standard\"}}\n",
            x->u.cache_write_5m, x->u.cache_write_1h, c->completion_tokens);
}

const sim_wire sim_anthropic_wire = {put_step, put_tail, put_error, put_malformed, put_body,
                                     free_ext};

/* ---- blocks and steps ------------------------------------------------------------------------- */

static void add_block(amsg_ext *x, int kind, size_t call, size_t npieces)
{
  if (x->nblocks < sizeof x->blocks / sizeof *x->blocks)
    x->blocks[x->nblocks++] = (ablock){kind, call, npieces, 0};
}

int amsg_prepare(sim_req *r, sim_chat *c, const amsg_usage *u, const sim_request *mr)
{
  const sim_answer *a = &c->answers[0];
  amsg_ext *x = calloc(1, sizeof *x);
  size_t steps = 0, step = 0;
  (void)mr;
  if (!x)
    return -1;
  c->ext = x;
  x->u = *u;
  sim_new_id(r->srv, "msg_01", 22, c->id, sizeof c->id);
  if (a->stop_sequence && !(x->stop_sequence = strdup(a->stop_sequence)))
    return -1;
  if (a->nthinking)
    add_block(x, B_THINKING, 0, a->nthinking);
  if (a->npieces || (!a->ntool_calls && !a->nthinking))
    add_block(x, B_TEXT, 0, a->npieces);
  for (size_t k = 0; k < a->ntool_calls; k++)
    add_block(x, B_TOOL, k, empty_input(&a->tool_calls[k]) ? 1 : a->tool_calls[k].npieces);
  for (size_t bi = 0; bi < x->nblocks; bi++) {
    x->blocks[bi].first_step = steps;
    steps += x->blocks[bi].npieces ? x->blocks[bi].npieces : 1;
  }
  x->step_block = malloc(steps * sizeof *x->step_block);
  c->step_cost = malloc(steps * sizeof *c->step_cost);
  if (!x->step_block || !c->step_cost)
    return -1;
  /* thinking deltas share the reasoning time; the first text or tool
   * step comes when it is over; every other step is one token */
  for (size_t bi = 0; bi < x->nblocks; bi++) {
    const ablock *bl = &x->blocks[bi];
    size_t n = bl->npieces ? bl->npieces : 1;
    for (size_t i = 0; i < n; i++, step++) {
      x->step_block[step] = bi;
      if (step == 0)
        c->step_cost[step] = 0;
      else if (bl->kind == B_THINKING || (bi > 0 && i == 0 &&
                                          x->blocks[bi - 1].kind == B_THINKING))
        c->step_cost[step] = (double)a->reasoning_tokens / (double)a->nthinking;
      else
        c->step_cost[step] = 1;
    }
  }
  c->nsteps = steps;
  {
    uint64_t key = sim_hash_str(sim_hash_str(SIM_HASH_INIT, c->id), "signature");
    memcpy(x->signature, "Eq", 2);
    sim_base62(key, 94, x->signature + 2);
  }
  return 0;
}
