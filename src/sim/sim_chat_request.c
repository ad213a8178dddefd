/* POST /v1/chat/completions, the request side: read and check the body as
 * OpenAI does, into what the simulated model sees (sim_chat_req).
 *
 * Beyond messages and sampling parameters this reads tools (type
 * "function" with name, description, parameters), tool_choice (none,
 * auto, required, or {"type":"function","function":{"name":...}}),
 * assistant messages' tool_calls and role "tool" results (each must
 * answer a call of the message before; each call must be answered), and
 * reasoning_effort. Reasoning models refuse what the real API refuses
 * (sim_reasoning.c has the table and the sources of each message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_server.h"

#define MAX_CHOICES 128

static int bad(sim_req *r, const char *param, const char *code, const char *msg)
{
  sim_reply_error(r, 400, "invalid_request_error", param, code, "%s", msg);
  return -1;
}

void sim_chat_req_free(sim_chat_req *q)
{
  for (size_t i = 0; i < q->nowned; i++)
    free(q->owned[i]);
  free(q->owned);
  free(q->msgs);
  free(q->tools);
}

static int own(sim_chat_req *q, char *s)
{
  char **no = s ? realloc(q->owned, (q->nowned + 1) * sizeof *no) : NULL;
  if (!no) {
    free(s);
    return -1;
  }
  q->owned = no;
  q->owned[q->nowned++] = s;
  return 0;
}

/* Text of a content array: the "text" of each text part, joined. */
static int join_parts(sim_req *r, sim_chat_req *q, const json_value *parts, sim_message *m,
                      size_t idx)
{
  llm_buf b;
  char param[64];
  snprintf(param, sizeof param, "messages[%zu].content", idx);
  llm_buf_init(&b);
  for (size_t i = 0; i < parts->u.array.n; i++) {
    const json_value *p = &parts->u.array.items[i], *t = json_get(p, "type");
    if (p->type != JSON_OBJECT || !json_is_string(t)) {
      llm_buf_free(&b);
      return bad(r, param, "invalid_type", "Each content part must be an object with a "
                                           "\"type\".");
    }
    if (strcmp(t->u.string.ptr, "text") == 0) {
      const json_value *text = json_get(p, "text");
      if (!json_is_string(text)) {
        llm_buf_free(&b);
        return bad(r, param, "invalid_type", "A text content part needs a string \"text\".");
      }
      llm_buf_put(&b, text->u.string.ptr, text->u.string.len);
    }
    /* images, audio and files carry no text for the simulated model */
  }
  if (b.failed) {
    llm_buf_free(&b);
    return bad(r, param, NULL, "Out of memory.");
  }
  m->content_len = b.len;
  if (!b.data)
    llm_buf_puts(&b, "");
  if (own(q, llm_buf_take(&b, NULL)) != 0)
    return bad(r, param, NULL, "Out of memory.");
  m->content = q->owned[q->nowned - 1];
  return 0;
}

/* The name of the tool call `id` in the nearest assistant message before
 * message i, or NULL. */
static const char *call_name(const json_value *msgs, size_t i, const char *id)
{
  while (i-- > 0) {
    const json_value *m = &msgs->u.array.items[i], *calls = json_get(m, "tool_calls");
    const json_value *role = json_get(m, "role");
    if (!json_is_string(role) || strcmp(role->u.string.ptr, "assistant") != 0)
      continue;
    for (size_t k = 0; calls && calls->type == JSON_ARRAY && k < calls->u.array.n; k++) {
      const json_value *cid = json_get(&calls->u.array.items[k], "id");
      const json_value *name = json_get(json_get(&calls->u.array.items[k], "function"), "name");
      if (json_is_string(cid) && id && strcmp(cid->u.string.ptr, id) == 0)
        return json_is_string(name) ? name->u.string.ptr : NULL;
    }
    return NULL;
  }
  return NULL;
}

/* Tool results must answer the calls of the assistant message before them,
 * and every call must be answered (OpenAI's messages, as reported: see
 * e.g. smarter-sh/smarter#264 and microsoft/promptflow#3130). */
static int check_tool_turns(sim_req *r, const json_value *msgs)
{
  char param[48], msg[512];
  for (size_t i = 0; i < msgs->u.array.n; i++) {
    const json_value *m = &msgs->u.array.items[i];
    const json_value *calls = json_get(m, "tool_calls");
    const char *role = json_get(m, "role")->u.string.ptr;
    if (strcmp(role, "tool") == 0) {
      size_t j = i;
      while (j > 0 && strcmp(json_get(&msgs->u.array.items[j - 1], "role")->u.string.ptr,
                             "tool") == 0)
        j--;
      if (j == 0 || !json_get(&msgs->u.array.items[j - 1], "tool_calls") ||
          json_get(&msgs->u.array.items[j - 1], "tool_calls")->type != JSON_ARRAY) {
        snprintf(param, sizeof param, "messages.[%zu].role", i);
        sim_reply_error(r, 400, "invalid_request_error", param, NULL,
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.");
        return -1;
      }
    }
    if (calls && calls->type == JSON_ARRAY && calls->u.array.n > 0) {
      size_t len = 0;
      msg[0] = '\0';
      for (size_t k = 0; k < calls->u.array.n; k++) {
        const json_value *id = json_get(&calls->u.array.items[k], "id");
        int answered = 0;
        for (size_t j = i + 1; j < msgs->u.array.n; j++) {
          const json_value *t = &msgs->u.array.items[j], *tid = json_get(t, "tool_call_id");
          if (strcmp(json_get(t, "role")->u.string.ptr, "tool") != 0)
            break;
          answered |= json_is_string(tid) && json_is_string(id) &&
                      strcmp(tid->u.string.ptr, id->u.string.ptr) == 0;
        }
        if (!answered && len < sizeof msg - 80)
          len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%.60s", len ? ", " : "",
                                  json_is_string(id) ? id->u.string.ptr : "?");
      }
      if (len) {
        snprintf(param, sizeof param, "messages.[%zu].role", i);
        sim_reply_error(r, 400, "invalid_request_error", param, NULL, "An assistant message "
                        "with 'tool_calls' must be followed by tool messages responding to each "
                        "'tool_call_id'. The following tool_call_ids did not have response "
                        "messages: %s", msg);
        return -1;
      }
    }
  }
  return 0;
}

static int parse_messages(sim_req *r, sim_chat_req *q, const json_value *msgs)
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
    if (strcmp(out->role, "tool") == 0) {
      const json_value *id = json_get(m, "tool_call_id");
      if (!json_is_string(id)) {
        snprintf(msg, sizeof msg, "Missing required parameter: 'messages[%zu].tool_call_id'.",
                 i);
        return bad(r, param, "missing_required_parameter", msg);
      }
      out->tool_name = call_name(msgs, i, id->u.string.ptr);
    }
  }
  if (check_tool_turns(r, msgs) != 0)
    return -1;
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

/* ---- tools ------------------------------------------------------------------------------ */

static int valid_name(const char *s, size_t n)
{
  if (n == 0 || n > 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
      return 0;
  return 1;
}

static int parse_tools(sim_req *r, const json_value *body, sim_chat_req *q)
{
  const json_value *tools = json_get(body, "tools"), *choice = json_get(body, "tool_choice");
  char param[64], msg[256];
  llm_buf defs;
  if (tools && tools->type != JSON_NULL) {
    if (tools->type != JSON_ARRAY)
      return bad(r, "tools", "invalid_type", "Invalid type for 'tools': expected an array of "
                                             "objects.");
    q->tools = calloc(tools->u.array.n ? tools->u.array.n : 1, sizeof *q->tools);
    if (!q->tools)
      return bad(r, "tools", NULL, "Out of memory.");
    llm_buf_init(&defs);
    for (size_t i = 0; i < tools->u.array.n; i++) {
      const json_value *t = &tools->u.array.items[i], *type = json_get(t, "type");
      const json_value *fn = json_get(t, "function");
      const json_value *name = json_get(fn, "name"), *desc = json_get(fn, "description");
      if (json_is_string(type) && strcmp(type->u.string.ptr, "custom") == 0) {
        json_put_value(&defs, t); /* free-form custom tools: accepted, never called */
        continue;
      }
      if (!json_is_string(type) || strcmp(type->u.string.ptr, "function") != 0) {
        snprintf(param, sizeof param, "tools[%zu].type", i);
        snprintf(msg, sizeof msg, "Invalid value: '%.40s'. Supported values are: 'function' "
                 "and 'custom'.", json_is_string(type) ? type->u.string.ptr : "");
        llm_buf_free(&defs);
        return bad(r, param, "invalid_value", msg);
      }
      if (!json_is_string(name)) {
        snprintf(param, sizeof param, "tools[%zu].function.name", i);
        snprintf(msg, sizeof msg, "Missing required parameter: '%s'.", param);
        llm_buf_free(&defs);
        return bad(r, param, "missing_required_parameter", msg);
      }
      if (!valid_name(name->u.string.ptr, name->u.string.len)) {
        snprintf(param, sizeof param, "tools[%zu].function.name", i);
        snprintf(msg, sizeof msg, "Invalid '%s': string does not match pattern. Expected a "
                 "string that matches the pattern '^[a-zA-Z0-9_-]+$'.", param);
        llm_buf_free(&defs);
        return bad(r, param, "invalid_value", msg);
      }
      q->tools[q->mr.ntools].name = name->u.string.ptr;
      q->tools[q->mr.ntools].description = json_is_string(desc) ? desc->u.string.ptr : NULL;
      q->tools[q->mr.ntools].schema = json_get(fn, "parameters");
      q->mr.ntools++;
      json_put_value(&defs, fn);
    }
    q->mr.tools = q->tools;
    /* the definitions count as prompt tokens; the framing is a rough 8
     * per tool (OpenAI does not publish its tool prompt format) */
    q->tool_tokens = sim_model_count_tokens(defs.data ? defs.data : "", defs.len) +
                     8 * (int)tools->u.array.n;
    llm_buf_free(&defs);
  }
  if (!choice || choice->type == JSON_NULL)
    return 0;
  if (!tools || tools->type != JSON_ARRAY || !tools->u.array.n)
    return bad(r, "tool_choice", NULL, "Invalid value for 'tool_choice': 'tool_choice' is only "
                                       "allowed when 'tools' are specified.");
  if (json_is_string(choice)) {
    const char *c = choice->u.string.ptr;
    if (strcmp(c, "auto") == 0)
      q->mr.tool_choice = SIM_TOOLS_AUTO;
    else if (strcmp(c, "none") == 0)
      q->mr.tool_choice = SIM_TOOLS_NONE;
    else if (strcmp(c, "required") == 0)
      q->mr.tool_choice = SIM_TOOLS_REQUIRED;
    else {
      snprintf(msg, sizeof msg, "Invalid value: '%.40s'. Supported values are: 'none', "
               "'auto', and 'required'.", c);
      return bad(r, "tool_choice", "invalid_value", msg);
    }
    return 0;
  }
  {
    const json_value *name = json_get(json_get(choice, "function"), "name");
    if (choice->type != JSON_OBJECT || !json_is_string(name))
      return bad(r, "tool_choice", "invalid_type", "Invalid type for 'tool_choice': expected "
                 "'none', 'auto', 'required' or an object naming a function.");
    for (size_t i = 0; i < q->mr.ntools; i++)
      if (strcmp(q->tools[i].name, name->u.string.ptr) == 0) {
        q->mr.tool_choice = SIM_TOOLS_NAMED;
        q->mr.tool_choice_name = q->tools[i].name;
        return 0;
      }
    snprintf(msg, sizeof msg, "Invalid value for 'tool_choice': function '%.64s' not found in "
             "'tools'.", name->u.string.ptr);
    return bad(r, "tool_choice", "invalid_value", msg);
  }
}

/* ---- reasoning models ----------------------------------------------------------------------- */

static int unsupported_parameter(sim_req *r, const char *param)
{
  char msg[160];
  snprintf(msg, sizeof msg, "Unsupported parameter: '%s' is not supported with this model.",
           param);
  return bad(r, param, "unsupported_parameter", msg);
}

static int present(const json_value *body, const char *key)
{
  const json_value *v = json_get(body, key);
  return v && v->type != JSON_NULL;
}

/* Non-zero numbers, or true (a default value is accepted). */
static int set_away_from_default(const json_value *body, const char *key)
{
  const json_value *v = json_get(body, key);
  return v && (v->type == JSON_TRUE || (v->type == JSON_NUMBER && v->u.number.value != 0));
}

/* The request's effort, with the model's default; what the model refuses
 * gets the real API's 400 (sources in sim_reasoning.c). */
static int check_reasoning(sim_req *r, const json_value *body, sim_chat_req *q)
{
  const sim_reasoning_rules *rules = sim_reasoning_rules_of(q->mr.model);
  const json_value *eff = json_get(body, "reasoning_effort");
  char msg[320];
  int effort = rules->default_effort, free_sampling;
  if (eff && eff->type != JSON_NULL) {
    int e = json_is_string(eff) ? sim_effort_parse(eff->u.string.ptr) : -1;
    if (e < 0) {
      snprintf(msg, sizeof msg, "Invalid value: '%.40s'. Supported values are: 'none', "
               "'minimal', 'low', 'medium', 'high', and 'xhigh'.",
               json_is_string(eff) ? eff->u.string.ptr : "");
      return bad(r, "reasoning_effort", "invalid_value", msg);
    }
    if (!rules->family || !rules->efforts)
      return unsupported_parameter(r, "reasoning_effort");
    if (!(rules->efforts & (1u << e))) {
      int len = snprintf(msg, sizeof msg, "Unsupported value: '%s' is not supported with the "
                         "'%.64s' model. Supported values are: ", sim_effort_name(e), q->mr.model);
      int count = 0, total = 0;
      for (int k = 0; k < SIM_EFFORT_COUNT; k++)
        total += !!(rules->efforts & (1u << k));
      for (int k = 0; k < SIM_EFFORT_COUNT && len < (int)sizeof msg - 32; k++) {
        if (!(rules->efforts & (1u << k)))
          continue;
        count++;
        len += snprintf(msg + len, sizeof msg - (size_t)len, "%s'%s'",
                        count == 1 ? "" : count == total ? ", and " : ", ", sim_effort_name(k));
      }
      snprintf(msg + len, sizeof msg - (size_t)len, ".");
      return bad(r, "reasoning_effort", "unsupported_value", msg);
    }
    effort = e;
  }
  if (!rules->family) {
    q->mr.effort = SIM_EFFORT_NONE;
    return 0;
  }
  q->mr.effort = effort;
  if (present(body, "max_tokens") && !rules->max_tokens_ok)
    return bad(r, "max_tokens", "unsupported_parameter", "Unsupported parameter: 'max_tokens' "
               "is not supported with this model. Use 'max_completion_tokens' instead.");
  free_sampling = rules->sampling_if_none && effort == SIM_EFFORT_NONE;
  if (!free_sampling && present(body, "temperature")) {
    double t = json_get(body, "temperature")->u.number.value;
    if (rules->temperature == SIM_PARAM_UNSUPPORTED)
      return unsupported_parameter(r, "temperature");
    if (rules->temperature == SIM_PARAM_DEFAULT_ONLY && t != 1.0) {
      snprintf(msg, sizeof msg, "Unsupported value: 'temperature' does not support %g with "
               "this model. Only the default (1) value is supported.", t);
      return bad(r, "temperature", "unsupported_value", msg);
    }
  }
  if (!free_sampling && rules->sampling == SIM_PARAM_UNSUPPORTED) {
    if (present(body, "top_p"))
      return unsupported_parameter(r, "top_p");
    if (set_away_from_default(body, "presence_penalty"))
      return unsupported_parameter(r, "presence_penalty");
    if (set_away_from_default(body, "frequency_penalty"))
      return unsupported_parameter(r, "frequency_penalty");
    if (set_away_from_default(body, "logprobs"))
      return unsupported_parameter(r, "logprobs");
    if (present(body, "top_logprobs"))
      return unsupported_parameter(r, "top_logprobs");
  }
  return 0;
}

/* ---- the whole request ------------------------------------------------------------------------ */

int sim_chat_parse(sim_req *r, const json_value *body, sim_chat_req *q)
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
    if (v->u.array.n > SIM_MAX_STOP)
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
  if (parse_tools(r, body, q) != 0 || sim_mock_read(r, body, &q->mr) != 0)
    return -1;
  return check_reasoning(r, body, q);
}
