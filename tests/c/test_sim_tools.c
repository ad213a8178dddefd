/* The simulator's tool and reasoning rules (sim_tools.c, sim_reasoning.c),
 * through sim_model_answer: which tool a prompt calls and with which
 * arguments, the answer after a tool result, and how many reasoning
 * tokens a request spends. Table-driven; the HTTP shapes are tested in
 * test_sim_wire.c. */
#include "check.h"
#include "json.h"
#include "sim/sim_internal.h"
#include "sim/sim_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

typedef struct toolset {
  json_doc *doc;
  sim_tool tools[8];
  size_t n;
} toolset;

/* tools: a JSON array of {name, description, parameters} */
static void toolset_parse(toolset *ts, const char *json)
{
  json_error err;
  const json_value *arr = json_parse(json, strlen(json), &ts->doc, &err);
  ts->n = 0;
  if (!arr) {
    fprintf(stderr, "bad tool JSON: %s at %zu\n", err.message, err.offset);
    exit(2);
  }
  for (size_t i = 0; i < arr->u.array.n && i < 8; i++) {
    const json_value *t = &arr->u.array.items[i];
    const json_value *d = json_get(t, "description");
    ts->tools[ts->n].name = json_get(t, "name")->u.string.ptr;
    ts->tools[ts->n].description = d ? d->u.string.ptr : NULL;
    ts->tools[ts->n].schema = json_get(t, "parameters");
    ts->n++;
  }
}

static const char *const WEATHER_AND_STOCKS =
  "[{\"name\":\"get_weather\",\"description\":\"Get the current weather for a city\","
  "\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},"
  "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
  "\"include_forecast\":{\"type\":\"boolean\"}},\"required\":[\"location\"]}},"
  "{\"name\":\"get_stock_price\",\"description\":\"Latest share price for a ticker symbol\","
  "\"parameters\":{\"type\":\"object\",\"properties\":{\"ticker\":{\"type\":\"string\"}},"
  "\"required\":[\"ticker\"]}},"
  "{\"name\":\"add\",\"description\":\"Adds two numbers\",\"parameters\":{\"type\":\"object\","
  "\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"}},"
  "\"required\":[\"a\",\"b\"]}},"
  "{\"name\":\"searchDocs\",\"description\":\"Full-text search of the documentation\","
  "\"parameters\":{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"},"
  "\"max_results\":{\"type\":\"integer\",\"minimum\":1},\"filters\":{\"type\":\"array\","
  "\"items\":{\"type\":\"string\"}}},\"required\":[\"query\",\"max_results\"]}},"
  "{\"name\":\"get_time\",\"description\":\"The time now\",\"parameters\":{\"type\":\"object\","
  "\"properties\":{}}}]";

/* ---- which tool, which arguments ------------------------------------------------------------ */

static void test_tool_calls(void)
{
  static const struct {
    const char *model, *prompt;
    int choice;
    const char *named;
    const char *want_name; /* NULL: no call */
    const char *want_args;
    const char *want_text; /* NULL: not checked */
  } cases[] = {
    {"gpt-4o", "What's the weather in Paris in celsius?", SIM_TOOLS_AUTO, NULL, "get_weather",
     "{\"location\":\"Paris\",\"unit\":\"celsius\"}", ""},
    {"gpt-4o", "Is it raining in San Francisco? Include the forecast please.", SIM_TOOLS_AUTO,
     NULL, "get_weather", "{\"location\":\"San Francisco\",\"include_forecast\":true}", ""},
    {"gpt-4o", "What is the latest share price of AAPL?", SIM_TOOLS_AUTO, NULL,
     "get_stock_price", "{\"ticker\":\"AAPL\"}", ""},
    {"gpt-4o", "Please add 17 and 25.5 for me.", SIM_TOOLS_AUTO, NULL, "add",
     "{\"a\":17,\"b\":25.5}", ""},
    {"gpt-4o", "Search the documentation for \"rate limits\", max results: 5.", SIM_TOOLS_AUTO,
     NULL, "searchDocs", "{\"query\":\"rate limits\",\"max_results\":5}", ""},
    {"gpt-4o", "Search the docs for retries.", SIM_TOOLS_AUTO, NULL, "searchDocs",
     "{\"query\":\"Search the docs for retries.\",\"max_results\":1}", ""},
    {"gpt-4o", "What time is it now?", SIM_TOOLS_AUTO, NULL, "get_time", "{}", ""},
    {"gpt-4o", "Tell me a joke.", SIM_TOOLS_AUTO, NULL, NULL, NULL, NULL},
    {"gpt-4o", "What's the weather in Paris?", SIM_TOOLS_NONE, NULL, NULL, NULL, NULL},
    {"gpt-4o", "Tell me a joke.", SIM_TOOLS_REQUIRED, NULL, "get_weather",
     "{\"location\":\"Tell me a joke.\"}", ""},
    {"gpt-4o", "What's the weather in Oslo?", SIM_TOOLS_NAMED, "get_stock_price",
     "get_stock_price", "{\"ticker\":\"Oslo\"}", ""},
    {"gpt-4o", "The ticker is MSFT. What's it trading at?", SIM_TOOLS_NAMED, "get_stock_price",
     "get_stock_price", "{\"ticker\":\"MSFT\"}", ""},
    /* Claude says what it does, unless the tool is forced */
    {"claude-sonnet-4-5", "What's the weather in Rome?", SIM_TOOLS_AUTO, NULL, "get_weather",
     "{\"location\":\"Rome\"}", "I'll use the get_weather tool."},
    {"claude-sonnet-4-5", "What's the weather in Rome?", SIM_TOOLS_REQUIRED, NULL,
     "get_weather", "{\"location\":\"Rome\"}", ""},
  };
  toolset ts;
  toolset_parse(&ts, WEATHER_AND_STOCKS);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sim_message m = {"user", cases[i].prompt, strlen(cases[i].prompt), NULL, NULL};
    sim_request req;
    sim_answer a;
    memset(&req, 0, sizeof req);
    req.model = cases[i].model;
    req.messages = &m;
    req.nmessages = 1;
    req.temperature = 1.0;
    req.tools = ts.tools;
    req.ntools = ts.n;
    req.tool_choice = cases[i].choice;
    req.tool_choice_name = cases[i].named;
    CHECK_INT(sim_model_answer(&req, 0, &a), 0);
    if (!cases[i].want_name) {
      CHECK_INT(a.ntool_calls, 0);
      CHECK_STR(a.finish_reason, "stop");
      CHECK(a.len > 0);
    } else if (a.ntool_calls != 1) {
      check_fail(__FILE__, __LINE__, "case %zu (%s): %zu calls", i, cases[i].prompt,
                 a.ntool_calls);
    } else {
      size_t joined = 0;
      CHECK_STR(a.tool_calls[0].name, cases[i].want_name);
      CHECK_STR(a.tool_calls[0].arguments, cases[i].want_args);
      CHECK_STR(a.finish_reason, "tool_calls");
      /* the fragments rebuild the arguments */
      for (size_t k = 0; k < a.tool_calls[0].npieces; k++) {
        CHECK(a.tool_calls[0].piece_ends[k] > joined);
        joined = a.tool_calls[0].piece_ends[k];
      }
      CHECK_INT(joined, a.tool_calls[0].arguments_len);
      CHECK(a.completion_tokens >= a.tool_calls[0].tokens && a.tool_calls[0].tokens > 7);
      if (cases[i].want_text)
        CHECK_MEM(a.text, a.len, cases[i].want_text, strlen(cases[i].want_text));
    }
    sim_answer_free(&a);
  }
  json_free(ts.doc);
}

/* After a result the model reports it; under auto it calls nothing more,
 * under required it must call again. */
static void test_after_result(void)
{
  static const struct {
    const char *result, *tool_name;
    int choice;
    const char *want;
  } cases[] = {
    {"{\"temperature\":18,\"unit\":\"celsius\",\"sky\":\"clear\"}", "get_weather",
     SIM_TOOLS_AUTO, "According to get_weather, temperature is 18, unit is celsius, sky is clear."},
    {"  Sunny,\n\n 21 degrees  ", "get_weather", SIM_TOOLS_AUTO,
     "According to get_weather, Sunny, 21 degrees."},
    {"42", NULL, SIM_TOOLS_AUTO, "According to the tool, 42."},
    {"{\"ok\":true,\"items\":[1,2]}", "searchDocs", SIM_TOOLS_NONE,
     "According to searchDocs, ok is true, items is [1,2]."},
    {"18 degrees", "get_weather", SIM_TOOLS_REQUIRED, NULL},
  };
  toolset ts;
  toolset_parse(&ts, WEATHER_AND_STOCKS);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *q = "What's the weather in Paris?";
    sim_message m[3] = {
      {"user", q, strlen(q), NULL, NULL},
      {"assistant", "", 0, NULL, NULL},
      {"tool", cases[i].result, strlen(cases[i].result), NULL, cases[i].tool_name},
    };
    sim_request req;
    sim_answer a;
    memset(&req, 0, sizeof req);
    req.model = "gpt-4o";
    req.messages = m;
    req.nmessages = 3;
    req.temperature = 1.0;
    req.tools = ts.tools;
    req.ntools = ts.n;
    req.tool_choice = cases[i].choice;
    CHECK_INT(sim_model_answer(&req, 0, &a), 0);
    if (cases[i].want) {
      CHECK_INT(a.ntool_calls, 0);
      CHECK_MEM(a.text, a.len, cases[i].want, strlen(cases[i].want));
      CHECK_STR(a.finish_reason, "stop");
    } else {
      CHECK_INT(a.ntool_calls, 1);
    }
    sim_answer_free(&a);
  }
  json_free(ts.doc);
}

/* ---- reasoning --------------------------------------------------------------------------------- */

typedef struct stats {
  double reasoning, visible;
  int max_reasoning, right, n;
} stats;

static void run(const char *model, int effort, int budget, const char *fmt, int max_tokens,
                stats *st)
{
  memset(st, 0, sizeof *st);
  for (int i = 0; i < 300; i++) {
    char prompt[128];
    sim_message m;
    sim_request req;
    sim_answer a;
    int x = 1000 + 37 * i, y = 17 + i % 80;
    snprintf(prompt, sizeof prompt, fmt, x, y, i);
    m = (sim_message){"user", prompt, strlen(prompt), NULL, NULL};
    memset(&req, 0, sizeof req);
    req.model = model;
    req.messages = &m;
    req.nmessages = 1;
    req.temperature = 1.0;
    req.effort = effort;
    req.thinking_budget = budget;
    req.max_tokens = max_tokens;
    if (sim_model_answer(&req, 0, &a) != 0) {
      CHECK(0);
      continue;
    }
    CHECK_INT(a.completion_tokens, (int)a.npieces + a.reasoning_tokens);
    st->reasoning += a.reasoning_tokens;
    st->visible += (double)a.npieces;
    if (a.reasoning_tokens > st->max_reasoning)
      st->max_reasoning = a.reasoning_tokens;
    {
      char want[32];
      snprintf(want, sizeof want, "%d", x * y);
      st->right += a.len >= strlen(want) && strstr(a.text, want) != NULL;
    }
    if (budget > 0) { /* Claude shows a summary of its thinking */
      CHECK(a.nthinking > 0 && a.nthinking <= 600 && a.thinking_len > 0);
    } else {
      CHECK(a.thinking == NULL);
    }
    st->n++;
    sim_answer_free(&a);
  }
  st->reasoning /= st->n;
  st->visible /= st->n;
}

static void test_reasoning_tokens(void)
{
  static const char *const text = "Describe the design of service %d-%d, number %d.";
  static const char *const hard = "What is %d * %d?";
  static const struct {
    int effort;
    double want;
  } efforts[] = {
    {SIM_EFFORT_NONE, 0}, {SIM_EFFORT_MINIMAL, 32}, {SIM_EFFORT_LOW, 512},
    {SIM_EFFORT_MEDIUM, 1536}, {SIM_EFFORT_HIGH, 4096}, {SIM_EFFORT_XHIGH, 8192},
  };
  stats st, easy;
  for (size_t i = 0; i < sizeof efforts / sizeof *efforts; i++) {
    run("o3", efforts[i].effort, 0, text, 0, &st);
    printf("o3 %s: mean %.0f reasoning tokens (rule %.0f)\n",
           sim_effort_name(efforts[i].effort), st.reasoning, efforts[i].want);
    CHECK(fabs(st.reasoning - efforts[i].want) <= 0.1 * efforts[i].want + 0.5);
    CHECK_INT(sim_reasoning_expected(efforts[i].effort), (int)efforts[i].want);
  }
  /* a harder task thinks longer: a 4-digit times 2-digit question has
   * difficulty 3 (0.5 + 0.25 * 3 = 1.25) */
  run("o3", SIM_EFFORT_MEDIUM, 0, hard, 0, &st);
  run("o3", SIM_EFFORT_MEDIUM, 0, text, 0, &easy);
  CHECK(st.reasoning > 1.15 * easy.reasoning);
  /* max_tokens below the reasoning: nothing visible, "length" */
  {
    const char *q = "Describe the design of a cache.";
    sim_message m = {"user", q, strlen(q), NULL, NULL};
    sim_request req;
    sim_answer a;
    memset(&req, 0, sizeof req);
    req.model = "o4-mini";
    req.messages = &m;
    req.nmessages = 1;
    req.temperature = 1.0;
    req.effort = SIM_EFFORT_HIGH;
    req.max_tokens = 100;
    CHECK_INT(sim_model_answer(&req, 0, &a), 0);
    CHECK_INT(a.len, 0);
    CHECK_INT(a.npieces, 0);
    CHECK_INT(a.reasoning_tokens, 100);
    CHECK_INT(a.completion_tokens, 100);
    CHECK_STR(a.finish_reason, "length");
    sim_answer_free(&a);
  }
  /* Claude: a quarter of the budget on a typical task, never above it */
  run("claude-sonnet-4-5", 0, 4096, text, 0, &st);
  printf("claude thinking, budget 4096: mean %.0f, max %d\n", st.reasoning, st.max_reasoning);
  CHECK(fabs(st.reasoning - 1024) < 110);
  CHECK(st.max_reasoning <= 4096);
  run("claude-sonnet-4-5", 0, 1024, hard, 0, &st);
  CHECK(st.max_reasoning <= 1024);
  CHECK_INT(sim_thinking_expected(4096, 0), 1024);
}

/* Higher effort errs less (error rates x 1.3 at minimal, x 0.8 at high). */
static void test_effort_accuracy(void)
{
  static const char *const q = "Compute %d * %d. (%d)";
  stats lo, hi, plain;
  run("gpt-5-nano", SIM_EFFORT_MINIMAL, 0, q, 0, &lo);
  run("gpt-5-nano", SIM_EFFORT_HIGH, 0, q, 0, &hi);
  run("gpt-5-nano", SIM_EFFORT_MEDIUM, 0, q, 0, &plain);
  printf("gpt-5-nano arithmetic right: minimal %d, medium %d, high %d of 300\n", lo.right,
         plain.right, hi.right);
  CHECK(hi.right > plain.right && plain.right > lo.right);
}

/* ---- the rule tables ---------------------------------------------------------------------- */

static void test_rules(void)
{
  static const struct {
    const char *model, *family;
    int default_effort, max_tokens_ok, temperature, minimal, none, xhigh;
  } cases[] = {
    {"gpt-4o", NULL, 0, 1, SIM_PARAM_OK, 0, 0, 0},
    {"gpt-5-chat-latest", NULL, 0, 1, SIM_PARAM_OK, 0, 0, 0},
    {"o1", "o1", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 0, 0, 0},
    {"o1-mini-2024-09-12", "o1-mini", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 0, 0, 0},
    {"o3-mini", "o3-mini", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_UNSUPPORTED, 0, 0, 0},
    {"openai/o3", "o3", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 0, 0, 0},
    {"o4-mini", "o4-mini", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 0, 0, 0},
    {"gpt-5", "gpt-5", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 1, 0, 0},
    {"gpt-5-mini-2025-08-07", "gpt-5", SIM_EFFORT_MEDIUM, 0, SIM_PARAM_DEFAULT_ONLY, 1, 0, 0},
    {"gpt-5.1", "gpt-5.1", SIM_EFFORT_NONE, 0, SIM_PARAM_DEFAULT_ONLY, 0, 1, 0},
    {"gpt-5.4-mini", "gpt-5.2+", SIM_EFFORT_NONE, 0, SIM_PARAM_DEFAULT_ONLY, 0, 1, 1},
    {"gpt-5-pro", "gpt-5-pro", SIM_EFFORT_HIGH, 0, SIM_PARAM_DEFAULT_ONLY, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const sim_reasoning_rules *r = sim_reasoning_rules_of(cases[i].model);
    if (cases[i].family)
      CHECK_STR(r->family, cases[i].family);
    else
      CHECK(r->family == NULL);
    CHECK_INT(r->default_effort, cases[i].default_effort);
    CHECK_INT(r->max_tokens_ok, cases[i].max_tokens_ok);
    CHECK_INT(r->temperature, cases[i].temperature);
    CHECK_INT(!!(r->efforts & (1u << SIM_EFFORT_MINIMAL)), cases[i].minimal);
    CHECK_INT(!!(r->efforts & (1u << SIM_EFFORT_NONE)), cases[i].none);
    CHECK_INT(!!(r->efforts & (1u << SIM_EFFORT_XHIGH)), cases[i].xhigh);
  }
  {
    static const struct {
      const char *model;
      int min_cache, tool_auto, max_output;
    } claude[] = {
      {"claude-sonnet-4-5-20250929", 1024, 346, 64000},
      {"claude-opus-4-5", 4096, 346, 64000},
      {"claude-haiku-4-5", 4096, 346, 64000},
      {"claude-3-5-haiku-latest", 2048, 264, 8192},
      {"claude-3-opus-20240229", 1024, 530, 4096},
      {"claude-opus-4-1", 1024, 346, 32000},
      {"claude-opus-4-8", 1024, 346, 128000},
      {"claude-opus-4-9", 1024, 346, 0}, /* unknown: not checked */
    };
    for (size_t i = 0; i < sizeof claude / sizeof *claude; i++) {
      const sim_claude_rules *c = sim_claude_rules_of(claude[i].model);
      CHECK_INT(c->min_cache_tokens, claude[i].min_cache);
      CHECK_INT(c->tool_prompt_auto, claude[i].tool_auto);
      CHECK_INT(c->max_output, claude[i].max_output);
    }
  }
  CHECK_INT(sim_effort_parse("xhigh"), SIM_EFFORT_XHIGH);
  CHECK_INT(sim_effort_parse("extreme"), -1);
}

int main(void)
{
  test_tool_calls();
  test_after_result();
  test_reasoning_tokens();
  test_effort_accuracy();
  test_rules();
  return check_report("sim_tools");
}
