/* The simulator's Anthropic Messages API (POST /v1/messages) over HTTP:
 * the Message and its SSE events, tools and thinking, the errors the real
 * API sends, faults in Anthropic's shapes, rate-limit headers and the
 * prompt-caching rules. Table-driven where the cases are alike. */
#include "sim_client.h"

static const char *const VERSION[] = {"anthropic-version: 2023-06-01", NULL};

/* ---- helpers ------------------------------------------------------------------------- */

typedef struct aevent {
  char name[32];
  char *data;
} aevent;

typedef struct astream {
  aevent ev[2048];
  size_t n;
} astream;

/* "event: NAME\ndata: JSON\n\n" frames, in order. */
static void split_anthropic(const llm_buf *b, astream *s)
{
  const char *p = b->data ? b->data : "";
  memset(s, 0, sizeof *s);
  for (;;) {
    const char *end = strstr(p, "\n\n"), *nl;
    if (!end || s->n == 2048)
      break;
    if (strncmp(p, "event: ", 7) == 0 && (nl = memchr(p, '\n', (size_t)(end - p))) &&
        strncmp(nl + 1, "data: ", 6) == 0) {
      aevent *e = &s->ev[s->n++];
      snprintf(e->name, sizeof e->name, "%.*s", (int)(nl - p - 7), p + 7);
      e->data = strndup(nl + 7, (size_t)(end - nl - 7));
    }
    p = end + 2;
  }
}

static void astream_free(astream *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->ev[i].data);
}

static void post(const char *body, const char *const *hdrs, resp *r)
{
  request("POST", "/v1/messages", body, hdrs ? hdrs : VERSION, r);
}

/* A body with one user message and extra top-level fields. */
static const char *msg_body(const char *model, const char *user, const char *extra)
{
  static char buf[16384];
  snprintf(buf, sizeof buf, "{\"model\":\"%s\",\"max_tokens\":1024,\"messages\":[{\"role\":"
           "\"user\",\"content\":\"%s\"}]%s%s}", model, user, extra && extra[0] ? "," : "",
           extra ? extra : "");
  return buf;
}

static const char *const WEATHER_TOOL =
  "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Get the current weather for a city\","
  "\"input_schema\":{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"}},"
  "\"required\":[\"location\"]}},{\"name\":\"get_time\",\"description\":\"The time now\","
  "\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]";

/* ---- the Message ---------------------------------------------------------------------------- */

static void test_message(void)
{
  resp r = {0};
  parsed p;
  post(msg_body("claude-sonnet-4-5", "What is 12 + 30?", NULL), NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK(header(&r, "request-id") && strncmp(header(&r, "request-id"), "req_011C", 8) == 0 &&
        strlen(header(&r, "request-id")) == 28);
  CHECK(header(&r, "x-request-id") == NULL && header(&r, "openai-version") == NULL);
  CHECK(parse(&p, r.body.data, r.body.len) != NULL);
  if (p.root) {
    CHECK(str_at(p.root, "id") && strncmp(str_at(p.root, "id"), "msg_01", 6) == 0);
    CHECK_STR(str_at(p.root, "type"), "message");
    CHECK_STR(str_at(p.root, "role"), "assistant");
    CHECK_STR(str_at(p.root, "model"), "claude-sonnet-4-5");
    CHECK_STR(str_at(p.root, "content.0.type"), "text");
    CHECK_STR(str_at(p.root, "content.0.text"), "42");
    CHECK_STR(str_at(p.root, "stop_reason"), "end_turn");
    CHECK(path(p.root, "stop_sequence") && path(p.root, "stop_sequence")->type == JSON_NULL);
    CHECK(num_at(p.root, "usage.input_tokens") > 5);
    CHECK(num_at(p.root, "usage.output_tokens") >= 1);
    CHECK(num_at(p.root, "usage.cache_creation_input_tokens") == 0);
    CHECK(num_at(p.root, "usage.cache_read_input_tokens") == 0);
    CHECK(num_at(p.root, "usage.cache_creation.ephemeral_5m_input_tokens") == 0);
    CHECK(num_at(p.root, "usage.cache_creation.ephemeral_1h_input_tokens") == 0);
    CHECK_STR(str_at(p.root, "usage.service_tier"), "standard");
    json_free(p.doc);
  }
  resp_free(&r);

  /* the version the SDKs' new majors send */
  {
    static const char *const V2026[] = {"anthropic-version: 2026-10-21", NULL};
    post(msg_body("claude-sonnet-4-5", "What is 12 + 30?", NULL), V2026, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
  }

  /* max_tokens and stop_sequences cut, with their stop reasons */
  post(msg_body("claude-sonnet-4-5", "Tell me about lighthouses.", "\"max_tokens\":3"), NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK_STR(str_at(p.root, "stop_reason"), "max_tokens");
    CHECK_INT((int)num_at(p.root, "usage.output_tokens"), 3);
    json_free(p.doc);
  }
  resp_free(&r);
  post(msg_body("claude-sonnet-4-5", "Tell me about lighthouses.", "\"stop_sequences\":[\" \"]"),
       NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK_STR(str_at(p.root, "stop_reason"), "stop_sequence");
    CHECK_STR(str_at(p.root, "stop_sequence"), " ");
    CHECK(str_at(p.root, "content.0.text") && !strchr(str_at(p.root, "content.0.text"), ' '));
    json_free(p.doc);
  }
  resp_free(&r);

  /* a system prompt (string or blocks) counts as input */
  {
    resp a = {0}, b = {0};
    parsed pa, pb;
    post(msg_body("claude-sonnet-4-5", "Hello", "\"system\":\"You are a careful assistant.\""),
         NULL, &a);
    post(msg_body("claude-sonnet-4-5", "Hello", NULL), NULL, &b);
    CHECK(parse(&pa, a.body.data, a.body.len) && parse(&pb, b.body.data, b.body.len));
    if (pa.root && pb.root) {
      CHECK(num_at(pa.root, "usage.input_tokens") > num_at(pb.root, "usage.input_tokens") + 4);
      json_free(pa.doc);
      json_free(pb.doc);
    }
    resp_free(&a);
    resp_free(&b);
  }
}

/* The stream: message_start, blocks, message_delta, message_stop; the
 * same text and usage as the Message. */
static void test_stream(void)
{
  resp plain = {0}, r = {0};
  parsed pp;
  astream s;
  llm_buf text;
  const char *body = msg_body("claude-haiku-4-5", "Describe the sea.", NULL);
  post(body, NULL, &plain);
  CHECK(parse(&pp, plain.body.data, plain.body.len) != NULL);
  post(msg_body("claude-haiku-4-5", "Describe the sea.", "\"stream\":true"), NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK(header(&r, "content-type") &&
        strncmp(header(&r, "content-type"), "text/event-stream", 17) == 0);
  split_anthropic(&r.body, &s);
  llm_buf_init(&text);
  CHECK(s.n >= 6);
  if (s.n >= 6 && pp.root) {
    parsed start, delta;
    CHECK_STR(s.ev[0].name, "message_start");
    CHECK_STR(s.ev[1].name, "content_block_start");
    CHECK_STR(s.ev[2].name, "ping");
    CHECK_STR(s.ev[s.n - 3].name, "content_block_stop");
    CHECK_STR(s.ev[s.n - 2].name, "message_delta");
    CHECK_STR(s.ev[s.n - 1].name, "message_stop");
    for (size_t i = 0; i < s.n; i++) {
      parsed e;
      if (!parse(&e, s.ev[i].data, strlen(s.ev[i].data))) {
        CHECK(0);
        continue;
      }
      CHECK_STR(str_at(e.root, "type"), s.ev[i].name); /* the data says its event */
      if (strcmp(s.ev[i].name, "content_block_delta") == 0) {
        CHECK_STR(str_at(e.root, "delta.type"), "text_delta");
        llm_buf_puts(&text, str_at(e.root, "delta.text"));
      }
      json_free(e.doc);
    }
    CHECK_STR(text.data ? text.data : "", str_at(pp.root, "content.0.text"));
    if (parse(&start, s.ev[0].data, strlen(s.ev[0].data))) {
      CHECK_STR(str_at(start.root, "message.id") ? "id" : NULL, "id");
      CHECK(path(start.root, "message.content")->u.array.n == 0);
      CHECK(num_at(start.root, "message.usage.input_tokens") ==
            num_at(pp.root, "usage.input_tokens"));
      CHECK(num_at(start.root, "message.usage.output_tokens") == 1);
      json_free(start.doc);
    }
    if (parse(&delta, s.ev[s.n - 2].data, strlen(s.ev[s.n - 2].data))) {
      CHECK_STR(str_at(delta.root, "delta.stop_reason"), "end_turn");
      CHECK(num_at(delta.root, "usage.output_tokens") == num_at(pp.root, "usage.output_tokens"));
      CHECK(num_at(delta.root, "usage.input_tokens") == num_at(pp.root, "usage.input_tokens"));
      json_free(delta.doc);
    }
  }
  if (pp.root)
    json_free(pp.doc);
  llm_buf_free(&text);
  astream_free(&s);
  resp_free(&r);
  resp_free(&plain);
}

/* ---- tools and thinking ------------------------------------------------------------------------ */

static void test_tools(void)
{
  resp r = {0};
  parsed p;
  astream s;
  llm_buf args;
  /* Claude under auto: a sentence, then the call */
  post(msg_body("claude-sonnet-4-5", "What's the weather in Paris?", WEATHER_TOOL), NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK_STR(str_at(p.root, "stop_reason"), "tool_use");
    CHECK_STR(str_at(p.root, "content.0.type"), "text");
    CHECK_STR(str_at(p.root, "content.0.text"), "I'll use the get_weather tool.");
    CHECK_STR(str_at(p.root, "content.1.type"), "tool_use");
    CHECK(str_at(p.root, "content.1.id") && strncmp(str_at(p.root, "content.1.id"), "toolu_01", 8) == 0);
    CHECK_STR(str_at(p.root, "content.1.name"), "get_weather");
    CHECK_STR(str_at(p.root, "content.1.input.location"), "Paris");
    json_free(p.doc);
  }
  resp_free(&r);
  /* forced: no sentence; streamed input_json_delta fragments rebuild the input */
  post(msg_body("claude-sonnet-4-5", "What's the weather in Paris?",
                "\"stream\":true,\"tool_choice\":{\"type\":\"any\"},\"tools\":[{\"name\":"
                "\"get_weather\",\"input_schema\":{\"type\":\"object\",\"properties\":"
                "{\"location\":{\"type\":\"string\"}}}}]"), NULL, &r);
  split_anthropic(&r.body, &s);
  llm_buf_init(&args);
  for (size_t i = 0; i < s.n; i++) {
    parsed e;
    if (!parse(&e, s.ev[i].data, strlen(s.ev[i].data)))
      continue;
    if (strcmp(s.ev[i].name, "content_block_start") == 0) {
      CHECK_STR(str_at(e.root, "content_block.type"), "tool_use");
      CHECK(path(e.root, "content_block.input") &&
            path(e.root, "content_block.input")->type == JSON_OBJECT);
    }
    if (strcmp(s.ev[i].name, "content_block_delta") == 0) {
      CHECK_STR(str_at(e.root, "delta.type"), "input_json_delta");
      llm_buf_puts(&args, str_at(e.root, "delta.partial_json"));
    }
    if (strcmp(s.ev[i].name, "message_delta") == 0)
      CHECK_STR(str_at(e.root, "delta.stop_reason"), "tool_use");
    json_free(e.doc);
  }
  CHECK_STR(args.data, "{\"location\":\"Paris\"}");
  llm_buf_free(&args);
  astream_free(&s);
  resp_free(&r);
  /* a call without arguments: input {} then one partial_json "" */
  {
    char body[4096];
    int deltas = 0;
    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"stream\":"
             "true,\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_time\"},%s,\"messages\":"
             "[{\"role\":\"user\",\"content\":\"What time is it?\"}]}", WEATHER_TOOL);
    post(body, NULL, &r);
    split_anthropic(&r.body, &s);
    for (size_t i = 0; i < s.n; i++) {
      if (strcmp(s.ev[i].name, "content_block_delta") == 0) {
        deltas++;
        CHECK(strstr(s.ev[i].data, "\"partial_json\":\"\"") != NULL);
      }
    }
    CHECK_INT(deltas, 1);
    astream_free(&s);
    resp_free(&r);
  }
  /* the second turn: the result comes back, the model answers from it */
  {
    char body[4096];
    snprintf(body, sizeof body, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":200,%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"What's the weather in Paris?\"},"
             "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"I'll use the "
             "get_weather tool.\"},{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":"
             "\"get_weather\",\"input\":{\"location\":\"Paris\"}}]},{\"role\":\"user\","
             "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\",\"content\":"
             "\"{\\\"temperature\\\":18,\\\"sky\\\":\\\"clear\\\"}\"}]}]}", WEATHER_TOOL);
    post(body, NULL, &r);
    CHECK_INT(r.status, 200);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK_STR(str_at(p.root, "stop_reason"), "end_turn");
      CHECK_STR(str_at(p.root, "content.0.text"),
                "According to get_weather, temperature is 18, sky is clear.");
      json_free(p.doc);
    }
    resp_free(&r);
  }
}

static void test_thinking(void)
{
  resp r = {0};
  parsed p;
  astream s;
  const char *body = msg_body("claude-sonnet-4-5", "Describe a careful plan for a garden.",
                              "\"max_tokens\":8000,\"thinking\":{\"type\":\"enabled\","
                              "\"budget_tokens\":4000}");
  post(body, NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    const char *sig = str_at(p.root, "content.0.signature");
    CHECK_STR(str_at(p.root, "content.0.type"), "thinking");
    CHECK(str_at(p.root, "content.0.thinking") && strlen(str_at(p.root, "content.0.thinking")) > 10);
    CHECK(sig && strlen(sig) > 40);
    CHECK_STR(str_at(p.root, "content.1.type"), "text");
    /* output tokens bill all the thinking: more than the text alone */
    CHECK(num_at(p.root, "usage.output_tokens") > 150);
    json_free(p.doc);
  }
  resp_free(&r);
  post(msg_body("claude-sonnet-4-5", "Describe a careful plan for a garden.",
                "\"max_tokens\":8000,\"stream\":true,\"thinking\":{\"type\":\"enabled\","
                "\"budget_tokens\":4000}"), NULL, &r);
  split_anthropic(&r.body, &s);
  {
    int thinking = 0, signature_before_stop = 0, text = 0;
    for (size_t i = 0; i < s.n; i++) {
      if (strstr(s.ev[i].data, "\"thinking_delta\""))
        thinking++;
      if (strstr(s.ev[i].data, "\"signature_delta\""))
        signature_before_stop = i + 1 < s.n && strcmp(s.ev[i + 1].name, "content_block_stop") == 0 &&
                                strstr(s.ev[i + 1].data, "\"index\":0");
      if (strstr(s.ev[i].data, "\"text_delta\""))
        text++;
    }
    CHECK(thinking > 10 && text > 10 && signature_before_stop);
  }
  astream_free(&s);
  resp_free(&r);
}

/* ---- errors ----------------------------------------------------------------------------------------- */

static void test_errors(void)
{
  static const char *const NO_VERSION[] = {"x-api-key: k", NULL};
  static const char *const BAD_VERSION[] = {"anthropic-version: 2024-01-01", NULL};
  static const char *const V2026[] = {"anthropic-version: 2026-10-21", NULL};
  static const struct {
    const char *body;
    const char *const *hdrs;
    const char *message;
  } cases[] = {
    {"{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
     NULL, "max_tokens: Field required"},
    {"{\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "model: Field required"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10}", NULL, "messages: Field required"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":\"Hi\"}]}", NO_VERSION, "anthropic-version: header is required"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":\"Hi\"}]}", BAD_VERSION,
     "anthropic-version: \"2024-01-01\" is not a valid version"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\","
     "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` "
     "parameter, not \"system\" as an input message role."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"response_format\":{\"type\":"
     "\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "response_format: Extra inputs are not permitted"},
    /* API version 2026-10-21 has no sampling parameters, even at defaults */
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"temperature\":1,\"messages\":[{"
     "\"role\":\"user\",\"content\":\"Hi\"}]}", V2026,
     "temperature: Extra inputs are not permitted"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"top_k\":5,\"messages\":[{"
     "\"role\":\"user\",\"content\":\"Hi\"}]}", V2026, "top_k: Extra inputs are not permitted"},
    {"{\"model\":\"claude-opus-4-8\",\"max_tokens\":10,\"temperature\":0.2,\"messages\":[{"
     "\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "`temperature` is deprecated for this model."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"temperature\":1.5,\"messages\":"
     "[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "temperature: Input should be less than or equal to 1"},
    {"{\"model\":\"claude-3-opus-20240229\",\"max_tokens\":21333,\"messages\":[{\"role\":"
     "\"user\",\"content\":\"Hi\"}]}", NULL, "max_tokens: 21333 > 4096, which is the maximum "
     "allowed number of output tokens for claude-3-opus-20240229"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4000,\"thinking\":{\"type\":\"enabled\","
     "\"budget_tokens\":512},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":2000,\"thinking\":{\"type\":\"enabled\","
     "\"budget_tokens\":2000},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", NULL,
     "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
     "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
     "#max-tokens-and-context-window-size"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4000,\"temperature\":0.5,\"thinking\":"
     "{\"type\":\"enabled\",\"budget_tokens\":2000},\"messages\":[{\"role\":\"user\","
     "\"content\":\"Hi\"}]}", NULL, "`temperature` may only be set to 1 when thinking is "
     "enabled or in adaptive mode. Please consult our documentation at "
     "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4000,\"tool_choice\":{\"type\":\"any\"},"
     "\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\"}}],\"thinking\":{\"type\":"
     "\"enabled\",\"budget_tokens\":2000},\"messages\":[{\"role\":\"user\",\"content\":"
     "\"Hi\"}]}", NULL, "Thinking may not be enabled when tool_choice forces tool use."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_X\",\"content\":\"1\"}]}]}",
     NULL, "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
     "toolu_X. Each `tool_result` block must have a corresponding `tool_use` block in the "
     "previous message."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"
     "\"toolu_Y\",\"name\":\"t\",\"input\":{}}]},{\"role\":\"user\",\"content\":\"And?\"}]}",
     NULL, "messages.1: `tool_use` ids were found without `tool_result` blocks immediately "
     "after: toolu_Y. Each `tool_use` block must have a corresponding `tool_result` block in "
     "the next message."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":[{\"type\":\"text\",\"text\":\"a\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"c\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"d\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"e\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}", NULL,
     "A maximum of 4 blocks with cache_control may be provided. Found 5."},
    {"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
     "\"content\":[{\"type\":\"text\",\"text\":\"a\",\"cache_control\":{\"type\":\"ephemeral\","
     "\"ttl\":\"10m\"}}]}]}", NULL,
     "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    resp r = {0};
    parsed p;
    post(cases[i].body, cases[i].hdrs, &r);
    if (r.status != 400)
      check_fail(__FILE__, __LINE__, "case %zu: status %ld (%s)", i, r.status,
                 r.body.data ? r.body.data : "");
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK_STR(str_at(p.root, "type"), "error");
      CHECK_STR(str_at(p.root, "error.type"), "invalid_request_error");
      CHECK_STR(str_at(p.root, "error.message"), cases[i].message);
      CHECK_STR(str_at(p.root, "request_id"), header(&r, "request-id"));
      json_free(p.doc);
    } else {
      CHECK(0);
    }
    resp_free(&r);
  }
}

/* Faults in Anthropic's shapes: 529 overloaded, 429 with retry-after,
 * 500 api_error, an `error` event mid-stream. */
static void test_faults(void)
{
  static const struct {
    const char *fault;
    long status;
    const char *type;
  } cases[] = {
    {"529", 529, "overloaded_error"},
    {"429", 429, "rate_limit_error"},
    {"500", 500, "api_error"},
    {"401", 401, "authentication_error"},
    {"404", 404, "not_found_error"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char h[64];
    const char *hdrs[] = {VERSION[0], h, NULL};
    resp r = {0};
    parsed p;
    snprintf(h, sizeof h, "x-sim-fault: %s", cases[i].fault);
    post(msg_body("claude-sonnet-4-5", "Hi", NULL), hdrs, &r);
    CHECK_INT(r.status, cases[i].status);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK_STR(str_at(p.root, "type"), "error");
      CHECK_STR(str_at(p.root, "error.type"), cases[i].type);
      CHECK(str_at(p.root, "request_id") != NULL);
      json_free(p.doc);
    } else {
      CHECK(0);
    }
    if (cases[i].status == 429)
      CHECK(header(&r, "retry-after") != NULL);
    resp_free(&r);
  }
  {
    const char *hdrs[] = {VERSION[0], "x-sim-fault: error_chunk", "x-sim-fault-after: 2", NULL};
    resp r = {0};
    astream s;
    post(msg_body("claude-sonnet-4-5", "Describe the sea.", "\"stream\":true"), hdrs, &r);
    CHECK_INT(r.status, 200);
    split_anthropic(&r.body, &s);
    CHECK(s.n > 2);
    if (s.n > 2) {
      CHECK_STR(s.ev[s.n - 1].name, "error");
      CHECK(strstr(s.ev[s.n - 1].data, "\"overloaded_error\"") != NULL);
      CHECK(strstr(r.body.data, "message_stop") == NULL);
    }
    astream_free(&s);
    resp_free(&r);
  }
}

/* ---- rate limits, ids ------------------------------------------------------------------------ */

static int rfc3339(const char *s)
{
  int y, mo, d, h, mi, se;
  char z;
  return s && strlen(s) == 20 &&
         sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) == 7 && z == 'Z';
}

static void test_rate_limits_and_ids(void)
{
  sim_config c;
  resp r = {0};
  char seen[40][256];
  base_config(&c);
  c.rate_rpm = 3;
  c.rate_tpm = 100000;
  restart(&c);
  post(msg_body("claude-sonnet-4-5", "Hi", NULL), NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK_STR(header(&r, "anthropic-ratelimit-requests-limit"), "3");
  CHECK_STR(header(&r, "anthropic-ratelimit-requests-remaining"), "2");
  CHECK(rfc3339(header(&r, "anthropic-ratelimit-requests-reset")));
  CHECK_STR(header(&r, "anthropic-ratelimit-tokens-limit"), "100000");
  CHECK(rfc3339(header(&r, "anthropic-ratelimit-tokens-reset")));
  CHECK(header(&r, "x-ratelimit-limit-requests") == NULL);
  resp_free(&r);
  post(msg_body("claude-sonnet-4-5", "Hi", NULL), NULL, &r);
  resp_free(&r);
  post(msg_body("claude-sonnet-4-5", "Hi", NULL), NULL, &r);
  resp_free(&r);
  post(msg_body("claude-sonnet-4-5", "Hi", NULL), NULL, &r);
  CHECK_INT(r.status, 429);
  CHECK(strstr(r.body.data, "\"rate_limit_error\"") != NULL);
  CHECK(header(&r, "retry-after") != NULL);
  resp_free(&r);
  sim_config_free(&c);
  base_config(&c);
  restart(&c);
  /* unique request and message ids, also across servers with one seed */
  for (int i = 0; i < 40; i++) {
    parsed p;
    if (i == 20) {
      restart(&c);
    }
    post(msg_body("claude-sonnet-4-5", "Hi", NULL), NULL, &r);
    snprintf(seen[i], sizeof seen[i], "%s", header(&r, "request-id") ? header(&r, "request-id") : "");
    for (int j = 0; j < i; j++)
      CHECK(strcmp(seen[i], seen[j]) != 0);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK(strcmp(str_at(p.root, "id"), seen[i]) != 0);
      json_free(p.doc);
    }
    resp_free(&r);
  }
  sim_config_free(&c);
}

/* ---- prompt caching ---------------------------------------------------------------------------- */

/* A system prompt of about `words` words, cached with ttl (NULL: 5m),
 * then a user turn of nblocks notes and a question; with nblocks, the
 * breakpoint is on the question instead of the system prompt. */
static char *cached_body(const char *model, int words, const char *ttl, const char *question,
                         int nblocks)
{
  llm_buf b;
  llm_buf_init(&b);
  llm_buf_printf(&b, "{\"model\":\"%s\",\"max_tokens\":50,\"system\":[{\"type\":\"text\",\"text\":\"",
            model);
  for (int i = 0; i < words; i++)
    llm_buf_printf(&b, "rule%d applies to case%d. ", i, i * 7);
  llm_buf_puts(&b, "\"");
  if (!nblocks) {
    llm_buf_puts(&b, ",\"cache_control\":{\"type\":\"ephemeral\"");
    if (ttl)
      llm_buf_printf(&b, ",\"ttl\":\"%s\"", ttl);
    llm_buf_putc(&b, '}');
  }
  llm_buf_puts(&b, "}],\"messages\":[{\"role\":\"user\",\"content\":[");
  for (int i = 0; i < nblocks; i++)
    llm_buf_printf(&b, "{\"type\":\"text\",\"text\":\"note %d. \"},", i);
  llm_buf_printf(&b, "{\"type\":\"text\",\"text\":\"%s\"%s}]}]}", question,
            nblocks ? ",\"cache_control\":{\"type\":\"ephemeral\"}" : "");
  return llm_buf_take(&b, NULL);
}

static void usage_of(const char *body, int u[5])
{
  resp r = {0};
  parsed p;
  post(body, NULL, &r);
  memset(u, 0, 5 * sizeof *u);
  if (r.status == 200 && parse(&p, r.body.data, r.body.len)) {
    u[0] = (int)num_at(p.root, "usage.input_tokens");
    u[1] = (int)num_at(p.root, "usage.cache_creation_input_tokens");
    u[2] = (int)num_at(p.root, "usage.cache_read_input_tokens");
    u[3] = (int)num_at(p.root, "usage.cache_creation.ephemeral_5m_input_tokens");
    u[4] = (int)num_at(p.root, "usage.cache_creation.ephemeral_1h_input_tokens");
    json_free(p.doc);
  } else {
    check_fail(__FILE__, __LINE__, "status %ld: %s", r.status, r.body.data ? r.body.data : "");
  }
  resp_free(&r);
}

static void test_caching(void)
{
  int a[5], b[5], c[5];
  char *first = cached_body("claude-sonnet-4-5", 300, NULL, "What is rule7?", 0);
  char *again = cached_body("claude-sonnet-4-5", 300, NULL, "And rule9?", 0);
  char *hour = cached_body("claude-sonnet-4-5", 301, "1h", "What is rule7?", 0);
  char *small = cached_body("claude-haiku-4-5", 300, NULL, "What is rule7?", 0);
  /* first: the system prefix is written (>= 1,024 tokens), nothing read */
  usage_of(first, a);
  printf("cache write %d, input %d\n", a[1], a[0]);
  CHECK(a[1] >= 1024 && a[2] == 0 && a[3] == a[1] && a[4] == 0);
  CHECK(a[0] > 0 && a[0] < 30);
  /* the same prefix with another question: read, not written */
  usage_of(again, b);
  CHECK_INT(b[2], a[1]);
  CHECK_INT(b[1], 0);
  CHECK(b[0] > 0 && b[0] < 30);
  /* a 1-hour entry is counted apart */
  usage_of(hour, c);
  CHECK(c[1] > 1024 && c[4] == c[1] && c[3] == 0);
  /* below Haiku 4.5's minimum (4,096): no caching, no error */
  usage_of(small, c);
  CHECK(c[1] == 0 && c[2] == 0 && c[0] > 1024);
  free(first);
  free(again);
  free(hour);
  free(small);
  /* lookback: a breakpoint on the question (none on the system prompt)
   * finds the system prefix written before when it is within 20 blocks,
   * and writes only what follows; 25 blocks later it is out of reach */
  {
    char *near = cached_body("claude-sonnet-4-5", 300, NULL, "What is rule3?", 5);
    char *far = cached_body("claude-sonnet-4-5", 300, NULL, "What is rule3?", 25);
    usage_of(near, b);
    CHECK_INT(b[2], a[1]);
    CHECK(b[1] > 0 && b[1] < 60);
    usage_of(far, c);
    CHECK_INT(c[2], 0);
    CHECK(c[1] > a[1]);
    free(near);
    free(far);
  }
}

int main(void)
{
  sim_test_begin();
  test_message();
  test_stream();
  test_tools();
  test_thinking();
  test_errors();
  test_faults();
  test_caching();
  test_rate_limits_and_ids();
  return sim_test_end("sim_messages");
}
