/* The OpenAI endpoint's tool calls and reasoning models over HTTP: the
 * tool_calls shapes (JSON and streamed fragments), a two-turn tool loop,
 * what reasoning models refuse (the real API's 400s), reasoning tokens in
 * the usage and the time they take, and unique request ids. */
#include "sim_client.h"

static const char *const TOOLS =
  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
  "\"Get the current weather for a city\",\"parameters\":{\"type\":\"object\",\"properties\":"
  "{\"location\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\","
  "\"fahrenheit\"]}},\"required\":[\"location\"]}}}]";

static const char *user_body(const char *model, const char *user, const char *extra)
{
  static char buf[8192];
  snprintf(buf, sizeof buf, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":"
           "\"%s\"}]%s%s}", model, user, extra && extra[0] ? "," : "", extra ? extra : "");
  return buf;
}

static void test_tool_calls(void)
{
  resp r = {0};
  parsed p;
  events ev;
  llm_buf args;
  const char *id = NULL;
  int heads = 0;
  char plain_args[256] = "";
  request("POST", "/v1/chat/completions",
          user_body("gpt-4o", "What's the weather in Paris in celsius?", TOOLS), NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK(path(p.root, "choices.0.message.content")->type == JSON_NULL);
    CHECK_STR(str_at(p.root, "choices.0.finish_reason"), "tool_calls");
    CHECK(str_at(p.root, "choices.0.message.tool_calls.0.id") &&
          strncmp(str_at(p.root, "choices.0.message.tool_calls.0.id"), "call_", 5) == 0);
    CHECK_STR(str_at(p.root, "choices.0.message.tool_calls.0.type"), "function");
    CHECK_STR(str_at(p.root, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    CHECK_STR(str_at(p.root, "choices.0.message.tool_calls.0.function.arguments"),
              "{\"location\":\"Paris\",\"unit\":\"celsius\"}");
    snprintf(plain_args, sizeof plain_args, "%s",
             str_at(p.root, "choices.0.message.tool_calls.0.function.arguments"));
    CHECK(num_at(p.root, "usage.completion_tokens") > 7);
    json_free(p.doc);
  }
  resp_free(&r);
  /* streamed: a head with id, type, name and arguments "", then fragments */
  request("POST", "/v1/chat/completions",
          user_body("gpt-4o", "What's the weather in Paris in celsius?",
                    "\"stream\":true,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
                    "\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{"
                    "\"location\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":"
                    "[\"celsius\",\"fahrenheit\"]}},\"required\":[\"location\"]}}}]"), NULL, &r);
  split_events(&r.body, &ev);
  CHECK(ev.done);
  llm_buf_init(&args);
  for (size_t i = 0; i < ev.n; i++) {
    parsed e;
    const json_value *tc;
    if (!parse(&e, ev.data[i], strlen(ev.data[i])))
      continue;
    if (i == 0)
      CHECK(path(e.root, "choices.0.delta.content")->type == JSON_NULL);
    tc = path(e.root, "choices.0.delta.tool_calls.0");
    if (tc) {
      CHECK_INT((int)num_at(tc, "index"), 0);
      if (str_at(tc, "id")) {
        heads++;
        id = "seen";
        CHECK_STR(str_at(tc, "type"), "function");
        CHECK_STR(str_at(tc, "function.name"), "get_weather");
        CHECK_STR(str_at(tc, "function.arguments"), "");
      } else {
        llm_buf_puts(&args, str_at(tc, "function.arguments"));
      }
    }
    if (str_at(e.root, "choices.0.finish_reason"))
      CHECK_STR(str_at(e.root, "choices.0.finish_reason"), "tool_calls");
    json_free(e.doc);
  }
  CHECK_INT(heads, 1);
  CHECK(id != NULL);
  CHECK_STR(args.data, plain_args);
  llm_buf_free(&args);
  events_free(&ev);
  resp_free(&r);
  /* the second turn answers from the result */
  request("POST", "/v1/chat/completions",
          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"What's the "
          "weather in Paris?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
          "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
          "\"{\\\"location\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\","
          "\"content\":\"{\\\"temperature\\\":18}\"}],\"tools\":[{\"type\":\"function\","
          "\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}",
          NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK_STR(str_at(p.root, "choices.0.message.content"),
              "According to get_weather, temperature is 18.");
    CHECK_STR(str_at(p.root, "choices.0.finish_reason"), "stop");
    json_free(p.doc);
  }
  resp_free(&r);
}

/* What the real API refuses, with its status, param, code and message. */
static void test_refusals(void)
{
  static const struct {
    const char *model, *extra, *param, *code, *message;
  } cases[] = {
    {"o3", "\"max_tokens\":100", "max_tokens", "unsupported_parameter",
     "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
     "'max_completion_tokens' instead."},
    {"gpt-5", "\"max_tokens\":100", "max_tokens", "unsupported_parameter",
     "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
     "'max_completion_tokens' instead."},
    {"o1", "\"temperature\":0.2", "temperature", "unsupported_value",
     "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default "
     "(1) value is supported."},
    {"gpt-5-mini", "\"temperature\":0", "temperature", "unsupported_value",
     "Unsupported value: 'temperature' does not support 0 with this model. Only the default "
     "(1) value is supported."},
    {"o3-mini", "\"temperature\":0.5", "temperature", "unsupported_parameter",
     "Unsupported parameter: 'temperature' is not supported with this model."},
    {"o4-mini", "\"top_p\":0.9", "top_p", "unsupported_parameter",
     "Unsupported parameter: 'top_p' is not supported with this model."},
    {"o3", "\"logprobs\":true", "logprobs", "unsupported_parameter",
     "Unsupported parameter: 'logprobs' is not supported with this model."},
    {"gpt-5", "\"reasoning_effort\":\"none\"", "reasoning_effort", "unsupported_value",
     "Unsupported value: 'none' is not supported with the 'gpt-5' model. Supported values are: "
     "'minimal', 'low', 'medium', and 'high'."},
    {"gpt-5.1", "\"reasoning_effort\":\"minimal\"", "reasoning_effort", "unsupported_value",
     "Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model. Supported values "
     "are: 'none', 'low', 'medium', and 'high'."},
    {"gpt-5.1", "\"reasoning_effort\":\"low\",\"temperature\":0.2", "temperature",
     "unsupported_value", "Unsupported value: 'temperature' does not support 0.2 with this "
     "model. Only the default (1) value is supported."},
    {"gpt-4o", "\"reasoning_effort\":\"low\"", "reasoning_effort", "unsupported_parameter",
     "Unsupported parameter: 'reasoning_effort' is not supported with this model."},
    {"o3", "\"reasoning_effort\":\"extreme\"", "reasoning_effort", "invalid_value",
     "Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low', 'medium', "
     "'high', and 'xhigh'."},
    {"gpt-5.1-chat-latest", "\"max_tokens\":100", "max_tokens", "unsupported_parameter",
     "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
     "'max_completion_tokens' instead."},
    {"gpt-4o", "\"tool_choice\":\"required\"", "tool_choice", NULL,
     "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
     "specified."},
    {"gpt-4o", "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get weather\"}}]",
     "tools[0].function.name", "invalid_value", "Invalid 'tools[0].function.name': string does "
     "not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    resp r = {0};
    parsed p;
    request("POST", "/v1/chat/completions", user_body(cases[i].model, "Hi", cases[i].extra),
            NULL, &r);
    if (r.status != 400)
      check_fail(__FILE__, __LINE__, "case %zu: status %ld", i, r.status);
    if (parse(&p, r.body.data, r.body.len)) {
      const json_value *code = path(p.root, "error.code");
      CHECK_STR(str_at(p.root, "error.type"), "invalid_request_error");
      CHECK_STR(str_at(p.root, "error.param"), cases[i].param);
      if (cases[i].code)
        CHECK_STR(str_at(p.root, "error.code"), cases[i].code);
      else
        CHECK(code && code->type == JSON_NULL);
      CHECK_STR(str_at(p.root, "error.message"), cases[i].message);
      json_free(p.doc);
    } else {
      CHECK(0);
    }
    resp_free(&r);
  }
  /* and what they accept */
  static const struct {
    const char *model, *extra;
  } fine[] = {
    {"o3", "\"temperature\":1,\"max_completion_tokens\":5000"},
    {"gpt-5.1", "\"temperature\":0.2,\"top_p\":0.5"}, /* effort none: sampling is free */
    {"gpt-5", "\"reasoning_effort\":\"minimal\""},
    {"gpt-5.2", "\"reasoning_effort\":\"xhigh\",\"max_completion_tokens\":20000"},
    {"gpt-4o", "\"max_tokens\":10,\"temperature\":0.2,\"top_p\":0.5"},
    {"gpt-5-chat-latest", "\"max_tokens\":10,\"temperature\":0.2"},
    /* a free-form custom tool is accepted (never called here) */
    {"gpt-4o", "\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"grammar\"}}],"
               "\"tool_choice\":\"auto\""},
  };
  for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
    resp r = {0};
    request("POST", "/v1/chat/completions", user_body(fine[i].model, "Hi", fine[i].extra), NULL,
            &r);
    if (r.status != 200)
      check_fail(__FILE__, __LINE__, "accepted case %zu: status %ld: %s", i, r.status,
                 r.body.data ? r.body.data : "");
    else
      check_passed++;
    resp_free(&r);
  }
  /* tool turns must pair up */
  {
    resp r = {0};
    parsed p;
    request("POST", "/v1/chat/completions",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
            "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"1\"}]}", NULL, &r);
    CHECK_INT(r.status, 400);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK_STR(str_at(p.root, "error.param"), "messages.[1].role");
      CHECK_STR(str_at(p.root, "error.message"), "Invalid parameter: messages with role 'tool' "
                "must be a response to a preceeding message with 'tool_calls'.");
      json_free(p.doc);
    }
    resp_free(&r);
    request("POST", "/v1/chat/completions",
            "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_7\",\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"user\",\"content\":"
            "\"And?\"}]}", NULL, &r);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body.data, "The following tool_call_ids did not have response messages: "
                              "call_7") != NULL);
    resp_free(&r);
  }
}

/* Reasoning tokens: in completion_tokens, reported apart, scaled by the
 * effort; the first visible token waits for them. */
static void test_reasoning(void)
{
  static const char *const efforts[] = {"minimal", "low", "medium", "high"};
  double mean[4] = {0};
  for (int e = 0; e < 4; e++) {
    for (int i = 0; i < 12; i++) {
      char extra[96], prompt[64];
      resp r = {0};
      parsed p;
      snprintf(extra, sizeof extra, "\"reasoning_effort\":\"%s\"", efforts[e]);
      snprintf(prompt, sizeof prompt, "Describe plan number %d.", i);
      request("POST", "/v1/chat/completions", user_body("gpt-5-mini", prompt, extra), NULL, &r);
      CHECK_INT(r.status, 200);
      if (parse(&p, r.body.data, r.body.len)) {
        double rt = num_at(p.root, "usage.completion_tokens_details.reasoning_tokens");
        mean[e] += rt / 12;
        CHECK(num_at(p.root, "usage.completion_tokens") > rt);
        json_free(p.doc);
      }
      resp_free(&r);
    }
  }
  printf("gpt-5-mini reasoning tokens: minimal %.0f, low %.0f, medium %.0f, high %.0f\n",
         mean[0], mean[1], mean[2], mean[3]);
  CHECK(mean[0] > 10 && mean[0] < 60);
  CHECK(mean[1] > 350 && mean[1] < 700);
  CHECK(mean[2] > 1100 && mean[2] < 2000);
  CHECK(mean[3] > 3000 && mean[3] < 5300);
  /* a non-reasoning model reports 0 */
  {
    resp r = {0};
    parsed p;
    request("POST", "/v1/chat/completions", user_body("gpt-4o", "Describe a plan.", NULL), NULL,
            &r);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK(num_at(p.root, "usage.completion_tokens_details.reasoning_tokens") == 0);
      json_free(p.doc);
    }
    resp_free(&r);
  }
  /* time: at 20,000 tokens/s with no TTFT, high effort (~4,096 tokens)
   * waits ~0.2 s before the first chunk, minimal (~32) ~2 ms */
  {
    const char *hdrs[] = {"x-sim-ttft-ms: 0", "x-sim-tokens-per-s: 20000", NULL};
    double ttfb[2];
    for (int k = 0; k < 2; k++) {
      resp r = {0};
      char extra[96];
      snprintf(extra, sizeof extra, "\"stream\":true,\"reasoning_effort\":\"%s\"",
               k ? "high" : "minimal");
      request("POST", "/v1/chat/completions", user_body("gpt-5-mini", "Describe plan number 3.",
                                                        extra), hdrs, &r);
      CHECK_INT(r.status, 200);
      ttfb[k] = r.ttfb_ms;
      resp_free(&r);
    }
    printf("first byte: minimal %.1f ms, high %.1f ms\n", ttfb[0], ttfb[1]);
    CHECK(ttfb[1] > 120 && ttfb[1] < 2000);
    CHECK(ttfb[1] > ttfb[0] + 100);
  }
}

static void test_request_ids(void)
{
  char ids[60][256];
  sim_config c;
  base_config(&c);
  for (int i = 0; i < 60; i++) {
    resp r = {0};
    if (i == 30)
      restart(&c); /* the same seed: the ids must still differ */
    request("POST", "/v1/chat/completions", user_body("gpt-4o-mini", "Hi", NULL), NULL, &r);
    snprintf(ids[i], sizeof ids[i], "%s", header(&r, "x-request-id") ? header(&r, "x-request-id")
                                                                       : "");
    CHECK(strncmp(ids[i], "req_", 4) == 0 && strlen(ids[i]) == 36);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(ids[i], ids[j]) != 0);
    resp_free(&r);
  }
  sim_config_free(&c);
}

int main(void)
{
  sim_test_begin();
  test_tool_calls();
  test_refusals();
  test_reasoning();
  test_request_ids();
  return sim_test_end("sim_chat_tools");
}
