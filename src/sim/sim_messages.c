/* POST /v1/messages: Anthropic's Messages API in the simulator. Reads and
 * checks the request as the real API does, hands the conversation to the
 * same model as the OpenAI endpoint (sim_model.h: skills, tools,
 * thinking), counts input and cache tokens (sim_messages_cache.c) and
 * sends a Message or its SSE events (sim_messages_wire.c) with the same
 * latency profiles and faults as /v1/chat/completions.
 *
 * What it accepts (Anthropic's API reference for Messages; anything else
 * at the top level is refused as the real API does, "<field>: Extra
 * inputs are not permitted", e.g. response_format: amrit110/oli#7):
 *   model, max_tokens (both required), messages (role user/assistant;
 *   content a string or blocks: text, image {source: base64 | url |
 *   file}, document, tool_use {id, name, input}, tool_result
 *   {tool_use_id, content: string | text/image blocks, is_error},
 *   thinking, redacted_thinking, and server-tool result blocks, kept but
 *   not read), system (string or text blocks), stop_sequences, stream,
 *   temperature (0..1), top_p, top_k, metadata, tools ({name,
 *   description, input_schema}; typed server tools are accepted and never
 *   called), tool_choice ({type: auto | any | tool + name | none,
 *   disable_parallel_tool_use}), thinking ({type: enabled +
 *   budget_tokens | disabled | adaptive}), cache_control (top level and
 *   on tools, system and content blocks: {type: ephemeral, ttl: 5m | 1h}),
 *   service_tier, container, mcp_servers, context_management,
 *   output_config, inference_geo; and the simulator's own "sim" knobs.
 * The header anthropic-version is required ("anthropic-version: header is
 * required": envoyproxy/ai-gateway#1909): 2023-06-01, 2023-01-01, or
 * 2026-10-21, which the SDKs' new majors send (TypeScript 1.x, Python 2.x)
 * and which removes temperature, top_p and top_k: sending one is a 400,
 * "temperature: Extra inputs are not permitted" (platform.claude.com/docs/
 * en/api/migration-2026-10-21; the text from ttlequals0/MinusPod 2.101.10).
 * Not modelled: that version's refusal of document blocks in assistant
 * messages and of citations on user text blocks (their words are not
 * known here), mid-conversation system messages (Opus 4.8 and later), and
 * the 1h-before-5m ordering of cache TTLs. Error texts as the real API
 * sends them: "max_tokens: Field required" (immersive-translate#3993),
 * "messages: Unexpected role \"system\"..." (aaronrussell/anthropix#2),
 * "max_tokens: N > M, which is the maximum allowed number of output
 * tokens for MODEL" (anthropics/claude-code#11302), the tool_use /
 * tool_result pairing (anthropics/claude-code#13460 and #5060), and for
 * extended thinking "thinking.enabled.budget_tokens: Input should be
 * greater than or equal to 1024" (danny-avila/LibreChat#8346), "`max_tokens`
 * must be greater than `thinking.budget_tokens`..." (sigoden/aichat#1304),
 * "`temperature` may only be set to 1 when thinking is enabled or in
 * adaptive mode..." (dotCipher/opencode-claude-bridge#1) and "Thinking may
 * not be enabled when tool_choice forces tool use." (mastra-ai/mastra#7507). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_batch.h"
#include "sim_internal.h"
#include "sim_messages.h"

#define IMAGE_TOKENS 1590
#define MAX_BREAKPOINTS 4

static const char *const top_fields[] = {
  "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
  "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking", "cache_control",
  "service_tier", "container", "mcp_servers", "context_management", "output_config",
  "inference_geo", "sim", "mock_response", "mock_tool_calls", NULL,
};

void amsg_req_free(amsg_req *q)
{
  for (size_t i = 0; i < q->nowned; i++)
    free(q->owned[i]);
  free(q->owned);
  free(q->msgs);
  free(q->stop);
  free(q->tools);
  free(q->blocks);
}

static const char *own(amsg_req *q, llm_buf *b)
{
  char **no;
  char *s;
  if (b->failed || !(no = realloc(q->owned, (q->nowned + 1) * sizeof *no))) {
    llm_buf_free(b);
    return NULL;
  }
  q->owned = no;
  if (!b->data)
    llm_buf_puts(b, "");
  s = llm_buf_take(b, NULL);
  if (!s)
    return NULL;
  q->owned[q->nowned++] = s;
  return s;
}

static int add_msg(amsg_req *q, const char *role, const char *text, size_t len,
                   const char *tool_name)
{
  if (llm_grow(&q->msgs, &q->capmsgs, q->nmsgs + 1, sizeof *q->msgs) != 0)
    return -1;
  q->msgs[q->nmsgs++] = (sim_message){role, text ? text : "", text ? len : 0, NULL, tool_name};
  return 0;
}

/* cache_control on a block at `where`: 0 none, else its TTL in seconds. */
static int cache_ttl(sim_req *r, const json_value *cc, const char *where, int *ttl)
{
  const json_value *type, *t;
  *ttl = 0;
  if (!cc || cc->type == JSON_NULL)
    return 0;
  type = json_get(cc, "type");
  if (!json_is_string(type) || strcmp(type->u.string.ptr, "ephemeral") != 0)
    return sim_reply_bad(r, "%scache_control.type: Input should be 'ephemeral'", where);
  t = json_get(cc, "ttl");
  if (!t || t->type == JSON_NULL || (json_is_string(t) && strcmp(t->u.string.ptr, "5m") == 0))
    *ttl = 300;
  else if (json_is_string(t) && strcmp(t->u.string.ptr, "1h") == 0)
    *ttl = 3600;
  else
    return sim_reply_bad(r, "%scache_control.ttl: Input should be '5m' or '1h'", where);
  return 0;
}

/* The text of a string or of the text blocks of an array. */
static int text_of(const json_value *v, llm_buf *b)
{
  if (json_is_string(v)) {
    llm_buf_put(b, v->u.string.ptr, v->u.string.len);
    return 1;
  }
  for (size_t i = 0; v && v->type == JSON_ARRAY && i < v->u.array.n; i++) {
    const json_value *t = json_get(&v->u.array.items[i], "text");
    if (json_is_string(t))
      llm_buf_put(b, t->u.string.ptr, t->u.string.len);
  }
  return v && v->type == JSON_ARRAY;
}

/* ---- the request, part by part ---------------------------------------------------------- */

static int read_tools(sim_req *r, const json_value *tools, amsg_req *q)
{
  if (!tools || tools->type == JSON_NULL)
    return 0;
  if (tools->type != JSON_ARRAY)
    return sim_reply_bad(r, "tools: Input should be a valid list");
  q->tools = calloc(tools->u.array.n ? tools->u.array.n : 1, sizeof *q->tools);
  if (!q->tools)
    return sim_reply_bad(r, "tools: out of memory");
  for (size_t i = 0; i < tools->u.array.n; i++) {
    const json_value *t = &tools->u.array.items[i], *type = json_get(t, "type");
    const json_value *name = json_get(t, "name"), *schema = json_get(t, "input_schema");
    const json_value *desc = json_get(t, "description");
    char where[48];
    llm_buf def;
    int ttl, server = json_is_string(type) && strcmp(type->u.string.ptr, "custom") != 0;
    snprintf(where, sizeof where, "tools.%zu.", i);
    if (t->type != JSON_OBJECT)
      return sim_reply_bad(r, "tools.%zu: Input should be a valid dictionary", i);
    if (!json_is_string(name))
      return sim_reply_bad(r, "tools.%zu.custom.name: Field required", i);
    if (!server && (!schema || schema->type != JSON_OBJECT))
      return sim_reply_bad(r, "tools.%zu.custom.input_schema: Field required", i);
    if (cache_ttl(r, json_get(t, "cache_control"), where, &ttl) != 0)
      return -1;
    if (!server) { /* server tools (web search...) are never called here */
      sim_tool *st = &q->tools[q->mr.ntools++];
      st->name = name->u.string.ptr;
      st->description = json_is_string(desc) ? desc->u.string.ptr : NULL;
      st->schema = schema;
    }
    llm_buf_init(&def);
    json_put_value(&def, t);
    if (def.failed ||
        amsg_add_block(q, "tool", def.data, def.len,
                       sim_model_count_tokens(def.data, def.len) + (i ? 0 : q->tool_prompt),
                       ttl) != 0) {
      llm_buf_free(&def);
      return sim_reply_bad(r, "tools: out of memory");
    }
    llm_buf_free(&def);
  }
  q->mr.tools = q->tools;
  return 0;
}

static int read_system(sim_req *r, const json_value *sys, amsg_req *q)
{
  llm_buf all;
  const char *joined;
  if (!sys || sys->type == JSON_NULL)
    return 0;
  if (!json_is_string(sys) && sys->type != JSON_ARRAY)
    return sim_reply_bad(r, "system: Input should be a valid string");
  llm_buf_init(&all);
  if (json_is_string(sys)) {
    llm_buf_put(&all, sys->u.string.ptr, sys->u.string.len);
    if (amsg_add_block(q, "system", sys->u.string.ptr, sys->u.string.len,
                       sim_model_count_tokens(sys->u.string.ptr, sys->u.string.len) + 3, 0)) {
      llm_buf_free(&all);
      return sim_reply_bad(r, "system: out of memory");
    }
  }
  for (size_t i = 0; sys->type == JSON_ARRAY && i < sys->u.array.n; i++) {
    const json_value *b = &sys->u.array.items[i], *text = json_get(b, "text");
    char where[32];
    int ttl;
    snprintf(where, sizeof where, "system.%zu.", i);
    if (!json_is_string(text)) {
      llm_buf_free(&all);
      return sim_reply_bad(r, "system.%zu.text: Field required", i);
    }
    if (cache_ttl(r, json_get(b, "cache_control"), where, &ttl) != 0) {
      llm_buf_free(&all);
      return -1;
    }
    if (i)
      llm_buf_puts(&all, "\n\n");
    llm_buf_put(&all, text->u.string.ptr, text->u.string.len);
    if (amsg_add_block(q, "system", text->u.string.ptr, text->u.string.len,
                       sim_model_count_tokens(text->u.string.ptr, text->u.string.len) +
                         (i ? 0 : 3), ttl)) {
      llm_buf_free(&all);
      return sim_reply_bad(r, "system: out of memory");
    }
  }
  {
    size_t len = all.len;
    if (!(joined = own(q, &all)) || add_msg(q, "system", joined, len, NULL) != 0)
      return sim_reply_bad(r, "system: out of memory");
  }
  return 0;
}

/* The name of the tool_use `id` in the assistant message before msgs[i]. */
static const char *tool_use_name(const json_value *msgs, size_t i, const char *id)
{
  const json_value *prev = i ? json_get(&msgs->u.array.items[i - 1], "content") : NULL;
  for (size_t k = 0; prev && prev->type == JSON_ARRAY && k < prev->u.array.n; k++) {
    const json_value *b = &prev->u.array.items[k];
    const json_value *bid = json_get(b, "id"), *type = json_get(b, "type");
    if (json_is_string(type) && strcmp(type->u.string.ptr, "tool_use") == 0 &&
        json_is_string(bid) && id && strcmp(bid->u.string.ptr, id) == 0)
      return json_is_string(json_get(b, "name")) ? json_get(b, "name")->u.string.ptr : "";
  }
  return NULL;
}

/* Every tool_use of assistant message i answered in message i + 1. */
static int check_answered(sim_req *r, const json_value *msgs, size_t i)
{
  const json_value *content = json_get(&msgs->u.array.items[i], "content");
  const json_value *next = i + 1 < msgs->u.array.n
                             ? json_get(&msgs->u.array.items[i + 1], "content") : NULL;
  char ids[400];
  size_t len = 0;
  ids[0] = '\0';
  if (!next)
    return 0; /* the last message: nothing follows it yet */
  for (size_t k = 0; content && content->type == JSON_ARRAY && k < content->u.array.n; k++) {
    const json_value *b = &content->u.array.items[k], *type = json_get(b, "type");
    const json_value *id = json_get(b, "id");
    int found = 0;
    if (!json_is_string(type) || strcmp(type->u.string.ptr, "tool_use") != 0 ||
        !json_is_string(id))
      continue;
    for (size_t j = 0; next->type == JSON_ARRAY && j < next->u.array.n; j++) {
      const json_value *t = json_get(&next->u.array.items[j], "tool_use_id");
      found |= json_is_string(t) && strcmp(t->u.string.ptr, id->u.string.ptr) == 0;
    }
    if (!found && len < sizeof ids - 80)
      len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%.60s", len ? ", " : "",
                              id->u.string.ptr);
  }
  if (len)
    return sim_reply_bad(r, "messages.%zu: `tool_use` ids were found without `tool_result` blocks "
               "immediately after: %s. Each `tool_use` block must have a corresponding "
               "`tool_result` block in the next message.", i, ids);
  return 0;
}

static const char *const block_types =
  "'text', 'image', 'document', 'search_result', 'tool_use', 'tool_result', 'thinking', "
  "'redacted_thinking', 'server_tool_use', 'web_search_tool_result'";

/* One content block of message i: its cache block, and what the model
 * reads from it (text appended to `text`, tool results as messages). */
static int read_block(sim_req *r, const json_value *msgs, size_t i, size_t k, amsg_req *q,
                      llm_buf *text, int *first)
{
  const json_value *b = &json_get(&msgs->u.array.items[i], "content")->u.array.items[k];
  const json_value *type = json_get(b, "type");
  const char *role = json_get(&msgs->u.array.items[i], "role")->u.string.ptr;
  const char *t;
  char where[64], kind[48];
  llm_buf raw;
  int ttl, tokens = 0;
  snprintf(where, sizeof where, "messages.%zu.content.%zu.", i, k);
  if (b->type != JSON_OBJECT || !json_is_string(type))
    return sim_reply_bad(r, "messages.%zu.content.%zu: Input should be a valid dictionary or object",
               i, k);
  t = type->u.string.ptr;
  if (cache_ttl(r, json_get(b, "cache_control"), where, &ttl) != 0)
    return -1;
  llm_buf_init(&raw);
  json_put_value(&raw, b);
  if (strcmp(t, "text") == 0) {
    const json_value *s = json_get(b, "text");
    if (!json_is_string(s)) {
      llm_buf_free(&raw);
      return sim_reply_bad(r, "%stext.text: Field required", where);
    }
    llm_buf_put(text, s->u.string.ptr, s->u.string.len);
    tokens = sim_model_count_tokens(s->u.string.ptr, s->u.string.len);
  } else if (strcmp(t, "image") == 0) {
    if (!json_get(b, "source")) {
      llm_buf_free(&raw);
      return sim_reply_bad(r, "%simage.source: Field required", where);
    }
    tokens = IMAGE_TOKENS;
  } else if (strcmp(t, "document") == 0) {
    const json_value *data = json_get(json_get(b, "source"), "data");
    if (json_is_string(data)) {
      llm_buf_put(text, data->u.string.ptr, data->u.string.len);
      tokens = sim_model_count_tokens(data->u.string.ptr, data->u.string.len);
    } else {
      tokens = IMAGE_TOKENS;
    }
  } else if (strcmp(t, "tool_use") == 0) {
    tokens = sim_model_count_tokens(raw.data ? raw.data : "", raw.len);
  } else if (strcmp(t, "tool_result") == 0) {
    const json_value *id = json_get(b, "tool_use_id");
    const char *name;
    llm_buf res;
    size_t len;
    const char *s;
    if (!json_is_string(id)) {
      llm_buf_free(&raw);
      return sim_reply_bad(r, "%stool_result.tool_use_id: Field required", where);
    }
    name = tool_use_name(msgs, i, id->u.string.ptr);
    if (!name || strcmp(role, "user") != 0) {
      llm_buf_free(&raw);
      return sim_reply_bad(r, "messages.%zu.content.%zu: unexpected `tool_use_id` found in "
                 "`tool_result` blocks: %.60s. Each `tool_result` block must have a "
                 "corresponding `tool_use` block in the previous message.", i, k,
                 id->u.string.ptr);
    }
    llm_buf_init(&res);
    text_of(json_get(b, "content"), &res);
    len = res.len;
    tokens = sim_model_count_tokens(res.data ? res.data : "", res.len) + 5;
    if (!(s = own(q, &res)) || add_msg(q, "tool", s, len, name) != 0) {
      llm_buf_free(&raw);
      return sim_reply_bad(r, "messages: out of memory");
    }
  } else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
    tokens = 0; /* earlier turns' thinking is not counted as input */
  } else if (strcmp(t, "search_result") == 0 || strcmp(t, "server_tool_use") == 0 ||
             strcmp(t, "web_search_tool_result") == 0) {
    tokens = sim_model_count_tokens(raw.data ? raw.data : "", raw.len);
  } else {
    llm_buf_free(&raw);
    return sim_reply_bad(r, "%stype: Input tag '%.40s' found using 'type' does not match any of the "
               "expected tags: %s", where, t, block_types);
  }
  snprintf(kind, sizeof kind, "%s:%s", role, t);
  if (amsg_add_block(q, kind, raw.data, raw.len, tokens + (*first ? 3 : 0), ttl) != 0) {
    llm_buf_free(&raw);
    return sim_reply_bad(r, "messages: out of memory");
  }
  *first = 0;
  llm_buf_free(&raw);
  return 0;
}

static int read_messages(sim_req *r, const json_value *msgs, amsg_req *q)
{
  if (!msgs)
    return sim_reply_bad(r, "messages: Field required");
  if (msgs->type != JSON_ARRAY)
    return sim_reply_bad(r, "messages: Input should be a valid list");
  if (msgs->u.array.n == 0)
    return sim_reply_bad(r, "messages: at least one message is required");
  for (size_t i = 0; i < msgs->u.array.n; i++) {
    const json_value *m = &msgs->u.array.items[i], *role = json_get(m, "role");
    const json_value *content = json_get(m, "content");
    const char *rl;
    llm_buf text;
    int first = 1;
    if (m->type != JSON_OBJECT)
      return sim_reply_bad(r, "messages.%zu: Input should be a valid dictionary", i);
    if (!json_is_string(role))
      return sim_reply_bad(r, "messages.%zu.role: Field required", i);
    rl = role->u.string.ptr;
    if (strcmp(rl, "system") == 0)
      return sim_reply_bad(r, "messages: Unexpected role \"system\". The Messages API accepts a top-level "
                    "`system` parameter, not \"system\" as an input message role.");
    if (strcmp(rl, "user") != 0 && strcmp(rl, "assistant") != 0)
      return sim_reply_bad(r, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
    rl = strcmp(rl, "user") == 0 ? "user" : "assistant";
    if (!content)
      return sim_reply_bad(r, "messages.%zu.content: Field required", i);
    llm_buf_init(&text);
    if (json_is_string(content)) {
      llm_buf_put(&text, content->u.string.ptr, content->u.string.len);
      if (amsg_add_block(q, rl, content->u.string.ptr, content->u.string.len,
                         sim_model_count_tokens(content->u.string.ptr, content->u.string.len) +
                           3, 0) != 0) {
        llm_buf_free(&text);
        return sim_reply_bad(r, "messages: out of memory");
      }
    } else if (content->type == JSON_ARRAY) {
      for (size_t k = 0; k < content->u.array.n; k++)
        if (read_block(r, msgs, i, k, q, &text, &first) != 0) {
          llm_buf_free(&text);
          return -1;
        }
    } else {
      llm_buf_free(&text);
      return sim_reply_bad(r, "messages.%zu.content: Input should be a valid string", i);
    }
    if (strcmp(rl, "assistant") == 0 && check_answered(r, msgs, i) != 0) {
      llm_buf_free(&text);
      return -1;
    }
    /* the turn's text for the model (tool results were added as messages) */
    if (text.len || json_is_string(content) || strcmp(rl, "assistant") == 0) {
      size_t len = text.len;
      const char *s = own(q, &text);
      if (!s || add_msg(q, rl, s, len, NULL) != 0)
        return sim_reply_bad(r, "messages: out of memory");
    } else {
      llm_buf_free(&text);
    }
  }
  return 0;
}

static int read_int(sim_req *r, const json_value *v, const char *name, int64_t *out)
{
  if (!json_int64(v, out))
    return sim_reply_bad(r, "%s: Input should be a valid integer", name);
  return 0;
}

static int read_thinking(sim_req *r, const json_value *body, amsg_req *q)
{
  const json_value *th = json_get(body, "thinking"), *type, *temp = json_get(body, "temperature");
  const json_value *tc = json_get(json_get(body, "tool_choice"), "type");
  int64_t budget;
  if (!th || th->type == JSON_NULL)
    return 0;
  type = json_get(th, "type");
  if (!json_is_string(type))
    return sim_reply_bad(r, "thinking.type: Field required");
  if (strcmp(type->u.string.ptr, "disabled") == 0)
    return 0;
  if (strcmp(type->u.string.ptr, "adaptive") == 0) {
    q->mr.thinking_adaptive = 1;
  } else if (strcmp(type->u.string.ptr, "enabled") == 0) {
    const json_value *b = json_get(th, "budget_tokens");
    if (!b)
      return sim_reply_bad(r, "thinking.enabled.budget_tokens: Field required");
    if (read_int(r, b, "thinking.enabled.budget_tokens", &budget) != 0)
      return -1;
    if (budget < 1024)
      return sim_reply_bad(r, "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                    "1024");
    if (budget >= q->mr.max_tokens)
      return sim_reply_bad(r, "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                    "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#max-tokens-and-context-window-size");
    q->mr.thinking_budget = (int)budget;
  } else {
    return sim_reply_bad(r, "thinking: Input tag '%.40s' found using 'type' does not match any of the "
                  "expected tags: 'enabled', 'disabled', 'adaptive'", type->u.string.ptr);
  }
  if (temp && temp->type == JSON_NUMBER && temp->u.number.value != 1.0)
    return sim_reply_bad(r, "`temperature` may only be set to 1 when thinking is enabled or in adaptive "
                  "mode. Please consult our documentation at https://platform.claude.com/docs/"
                  "en/build-with-claude/extended-thinking");
  if (json_is_string(tc) && (strcmp(tc->u.string.ptr, "any") == 0 ||
                             strcmp(tc->u.string.ptr, "tool") == 0))
    return sim_reply_bad(r, "Thinking may not be enabled when tool_choice forces tool use.");
  return 0;
}

static int read_tool_choice(sim_req *r, const json_value *tc, amsg_req *q)
{
  const json_value *type, *name;
  if (!tc || tc->type == JSON_NULL)
    return 0;
  type = json_get(tc, "type");
  if (tc->type != JSON_OBJECT || !json_is_string(type))
    return sim_reply_bad(r, "tool_choice.type: Field required");
  if (strcmp(type->u.string.ptr, "auto") == 0) {
    q->mr.tool_choice = SIM_TOOLS_AUTO;
  } else if (strcmp(type->u.string.ptr, "any") == 0) {
    q->mr.tool_choice = SIM_TOOLS_REQUIRED;
  } else if (strcmp(type->u.string.ptr, "none") == 0) {
    q->mr.tool_choice = SIM_TOOLS_NONE;
  } else if (strcmp(type->u.string.ptr, "tool") == 0) {
    name = json_get(tc, "name");
    if (!json_is_string(name))
      return sim_reply_bad(r, "tool_choice.tool.name: Field required");
    q->mr.tool_choice = SIM_TOOLS_NAMED;
    q->mr.tool_choice_name = name->u.string.ptr;
  } else {
    return sim_reply_bad(r, "tool_choice: Input tag '%.40s' found using 'type' does not match any of the "
                  "expected tags: 'auto', 'any', 'tool', 'none'", type->u.string.ptr);
  }
  return 0;
}

int sim_messages_check_version(sim_req *r)
{
  const char *ver = sim_header(r, "anthropic-version");
  if (!ver)
    return sim_reply_bad(r, "anthropic-version: header is required");
  if (strcmp(ver, "2023-06-01") != 0 && strcmp(ver, "2023-01-01") != 0 &&
      strcmp(ver, "2026-10-21") != 0)
    return sim_reply_bad(r, "anthropic-version: \"%.40s\" is not a valid version", ver);
  return 0;
}

static int parse(sim_req *r, const json_value *body, amsg_req *q)
{
  const json_value *model = json_get(body, "model"), *v;
  const char *ver = sim_header(r, "anthropic-version");
  int64_t i64;
  memset(q, 0, sizeof *q);
  q->mr.temperature = 1.0;
  if (sim_messages_check_version(r) != 0)
    return -1;
  for (size_t i = 0; i < body->u.object.n; i++) {
    const char *k = body->u.object.members[i].key;
    size_t j = 0;
    while (top_fields[j] && strcmp(top_fields[j], k) != 0)
      j++;
    /* 2026-10-21 has no sampling parameters */
    if (!top_fields[j] || (strcmp(ver, "2026-10-21") == 0 &&
                           (!strcmp(k, "temperature") || !strcmp(k, "top_p") ||
                            !strcmp(k, "top_k"))))
      return sim_reply_bad(r, "%.64s: Extra inputs are not permitted", k);
  }
  if (!model)
    return sim_reply_bad(r, "model: Field required");
  if (!json_is_string(model) || !model->u.string.len)
    return sim_reply_bad(r, "model: Input should be a valid string");
  q->mr.model = model->u.string.ptr;
  v = json_get(body, "max_tokens");
  if (!v)
    return sim_reply_bad(r, "max_tokens: Field required");
  if (read_int(r, v, "max_tokens", &i64) != 0)
    return -1;
  if (i64 < 1)
    return sim_reply_bad(r, "max_tokens: Input should be greater than or equal to 1");
  {
    const sim_claude_rules *cr = sim_claude_rules_of(q->mr.model);
    if (cr->max_output && i64 > cr->max_output)
      return sim_reply_bad(r, "max_tokens: %lld > %d, which is the maximum allowed number of output "
                    "tokens for %.80s", (long long)i64, cr->max_output, q->mr.model);
  }
  q->mr.max_tokens = i64 > 1 << 30 ? 1 << 30 : (int)i64;
  v = json_get(body, "temperature");
  if (v && v->type != JSON_NULL && sim_claude_rules_of(q->mr.model)->no_temperature)
    return sim_reply_bad(r, "`temperature` is deprecated for this model.");
  if (v && v->type != JSON_NULL) {
    if (v->type != JSON_NUMBER)
      return sim_reply_bad(r, "temperature: Input should be a valid number");
    if (v->u.number.value < 0)
      return sim_reply_bad(r, "temperature: Input should be greater than or equal to 0");
    if (v->u.number.value > 1)
      return sim_reply_bad(r, "temperature: Input should be less than or equal to 1");
    q->mr.temperature = v->u.number.value;
  }
  v = json_get(body, "stream");
  if (v && v->type != JSON_NULL && v->type != JSON_TRUE && v->type != JSON_FALSE)
    return sim_reply_bad(r, "stream: Input should be a valid boolean");
  q->stream = v && v->type == JSON_TRUE;
  v = json_get(body, "stop_sequences");
  if (v && v->type != JSON_NULL) {
    if (v->type != JSON_ARRAY)
      return sim_reply_bad(r, "stop_sequences: Input should be a valid list");
    q->stop = calloc(v->u.array.n ? v->u.array.n : 1, sizeof *q->stop);
    if (!q->stop)
      return sim_reply_bad(r, "stop_sequences: out of memory");
    for (size_t i = 0; i < v->u.array.n; i++) {
      if (!json_is_string(&v->u.array.items[i]))
        return sim_reply_bad(r, "stop_sequences.%zu: Input should be a valid string", i);
      q->stop[q->mr.nstop++] = v->u.array.items[i].u.string.ptr;
    }
    q->mr.stop = q->stop;
  }
  if (read_tool_choice(r, json_get(body, "tool_choice"), q) != 0)
    return -1;
  v = json_get(body, "tools");
  if (v && v->type == JSON_ARRAY && v->u.array.n > 0) {
    const sim_claude_rules *cr = sim_claude_rules_of(q->mr.model);
    q->tool_prompt = q->mr.tool_choice == SIM_TOOLS_REQUIRED ||
                     q->mr.tool_choice == SIM_TOOLS_NAMED ? cr->tool_prompt_any
                                                          : cr->tool_prompt_auto;
  }
  if (read_tools(r, v, q) != 0 || read_system(r, json_get(body, "system"), q) != 0 ||
      read_messages(r, json_get(body, "messages"), q) != 0 || read_thinking(r, body, q) != 0)
    return -1;
  v = json_get(body, "cache_control"); /* automatic caching: the last block */
  if (cache_ttl(r, v, "", &q->auto_ttl_s) != 0)
    return -1;
  if (q->auto_ttl_s)
    q->breakpoints++;
  if (q->breakpoints > MAX_BREAKPOINTS)
    return sim_reply_bad(r, "A maximum of %d blocks with cache_control may be provided. Found %d.",
               MAX_BREAKPOINTS, q->breakpoints);
  q->mr.messages = q->msgs;
  q->mr.nmessages = q->nmsgs;
  q->mr.effort = SIM_EFFORT_NONE;
  if (sim_mock_read(r, body, &q->mr) != 0)
    return -1;
  if (q->nmsgs == 0 || (q->nmsgs == 1 && strcmp(q->msgs[0].role, "system") == 0))
    return sim_reply_bad(r, "messages: at least one message is required");
  return 0;
}

/* ---- answering -------------------------------------------------------------------------------- */

void sim_messages_handle(sim_req *r, const json_value *body)
{
  sim_server *s = r->srv;
  amsg_req q;
  amsg_usage u;
  sim_plan pl;
  sim_chat *c;
  int total;
  atomic_fetch_add(&s->messages, 1);
  if (parse(r, body, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(r, 404, "not_found_error", NULL, NULL, "model: %.100s", q.mr.model);
    goto done;
  }
  if (sim_plan_request(r, body, q.mr.model, &pl) != 0 || sim_fault_reply(r, &pl))
    goto done;
  c = sim_chat_answer(&q.mr, 1, &sim_anthropic_wire);
  if (!c) {
    sim_reply_error(r, 500, "api_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  total = amsg_input_total(&q);
  /* a rate limit counts the prompt plus what the request may generate */
  if (sim_ratelimit_check(r, q.mr.model, total + (s->cfg.rate_count_usage ? c->completion_tokens
                                                  : q.mr.max_tokens))) {
    sim_chat_free(c);
    goto done;
  }
  amsg_cache_apply(s, &q, r->t0, &u);
  c->prompt_tokens = total;
  c->cached_tokens = u.cache_read;
  if (amsg_prepare(r, c, &u, &q.mr) != 0) {
    sim_chat_free(c);
    sim_reply_error(r, 500, "api_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  sim_chat_send(r, c, &pl, q.stream);
done:
  amsg_req_free(&q);
}

/* ---- a Message Batch request (sim_msgbatch.c) ------------------------------------------------ */

/* One request's params, answered at once by the same parser, model and
 * prompt cache as the endpoint above: no latency, faults or rate limits
 * (a batch runs outside them), a stream flag ignored. */
unsigned sim_messages_answer_body(sim_server *s, const json_value *params, const char *version,
                                  const char *rid, llm_buf *out)
{
  sim_req r;
  amsg_req q;
  amsg_usage u;
  sim_chat *c;
  memset(&r, 0, sizeof r);
  r.srv = s;
  r.wire = SIM_WIRE_ANTHROPIC;
  r.capture = out; /* replies (the errors of parse) land in out */
  r.line_version = version;
  r.status = 500;
  snprintf(r.id, sizeof r.id, "%s", rid);
  if (!params || params->type != JSON_OBJECT) {
    memset(&q, 0, sizeof q);
    sim_reply_bad(&r, "params: Input should be a valid dictionary");
    goto done;
  }
  if (parse(&r, params, &q) != 0)
    goto done;
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, q.mr.model)) {
    sim_reply_error(&r, 404, "not_found_error", NULL, NULL, "model: %.100s", q.mr.model);
    goto done;
  }
  if (!(c = sim_chat_answer(&q.mr, 1, &sim_anthropic_wire))) {
    sim_reply_error(&r, 500, "api_error", NULL, NULL,
                    "The simulated model could not answer this request.");
    goto done;
  }
  r.t0 = sim_now_ns();
  amsg_cache_apply(s, &q, r.t0, &u);
  c->prompt_tokens = amsg_input_total(&q);
  c->cached_tokens = u.cache_read;
  if (amsg_prepare(&r, c, &u, &q.mr) != 0) {
    sim_chat_free(c);
    sim_reply_error(&r, 500, "api_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  sim_anthropic_wire.put_body(c, out);
  sim_chat_free(c);
  r.status = out->failed ? 500 : 200;
done:
  amsg_req_free(&q);
  return r.status;
}
