/* Scripted answers: a request that carries a mock_response is answered
 * with exactly that text (cut by stop and max_tokens, usage counted as any
 * answer), for tests of a user's own pipeline (LiteLLM's `mock_response`
 * request field is the model). Both wires take it, in order of precedence:
 *
 *   "mock_response": "text"            a top-level body field
 *   "sim": {"mock_response": "text"}   the simulator's knob object
 *   x-sim-mock-response: text          a header (no line breaks possible)
 *
 * Scripted tool calls ride the same way (body only: a header cannot carry
 * them): "mock_tool_calls": [{"name": "get_weather", "arguments": {...}}]
 * (or under "sim"), arguments being a JSON object or the text of one
 * (absent: {}). The answer then calls those tools in order, after the
 * mock_response text if there is one (Claude's "I'll use..." preamble),
 * with finish_reason "tool_calls" (stop_reason "tool_use"), its call
 * tokens counted as the simulator's own calls are. llm.sim.responder
 * (lualib/llm/sim_responder.lua) sends both.
 *
 * A mock_response that is not a string, or a mock_tool_calls that is not
 * a list of such calls, gets a 400. Also sets the request's labelled-task
 * registry, which the skills read. */
#include "sim_server.h"

#include <string.h>

static int bad_mock(sim_req *r, const char *field, const char *what)
{
  if (r->wire == SIM_WIRE_ANTHROPIC)
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL, "%s: %s", field, what);
  else
    sim_reply_error(r, 400, "invalid_request_error", field, "invalid_type",
                    "Invalid '%s': %s.", field, what);
  return -1;
}

/* One scripted call: {"name": string, "arguments": object | JSON object text}. */
static int valid_call(const json_value *c)
{
  const json_value *name = json_get(c, "name"), *args = json_get(c, "arguments");
  if (!c || c->type != JSON_OBJECT || !json_is_string(name) || name->u.string.len == 0)
    return 0;
  if (!args || args->type == JSON_NULL || args->type == JSON_OBJECT)
    return 1;
  if (json_is_string(args)) {
    json_doc *doc = NULL;
    json_error err;
    const json_value *v = json_parse(args->u.string.ptr, args->u.string.len, &doc, &err);
    int ok = v && v->type == JSON_OBJECT;
    json_free(doc);
    return ok;
  }
  return 0;
}

static int read_tool_calls(sim_req *r, const json_value *body, sim_request *mr)
{
  const json_value *v = json_get(body, "mock_tool_calls");
  if (!v || v->type == JSON_NULL)
    v = json_get(json_get(body, "sim"), "mock_tool_calls");
  if (!v || v->type == JSON_NULL)
    return 0;
  if (v->type != JSON_ARRAY || v->u.array.n == 0)
    return bad_mock(r, "mock_tool_calls", "expected a non-empty array of {name, arguments}");
  for (size_t i = 0; i < v->u.array.n; i++)
    if (!valid_call(&v->u.array.items[i]))
      return bad_mock(r, "mock_tool_calls",
                      "each call needs a non-empty string name, and arguments that are a "
                      "JSON object or the text of one");
  mr->mock_tool_calls = v;
  return 0;
}

int sim_mock_read(sim_req *r, const json_value *body, sim_request *mr)
{
  const json_value *v = json_get(body, "mock_response");
  const char *h;
  mr->tasks = r->srv ? r->srv->tasks : NULL;
  if (read_tool_calls(r, body, mr) != 0)
    return -1;
  if (!v || v->type == JSON_NULL)
    v = json_get(json_get(body, "sim"), "mock_response");
  if (v && v->type != JSON_NULL) {
    if (!json_is_string(v)) {
      if (r->wire == SIM_WIRE_ANTHROPIC)
        sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                        "mock_response: Input should be a valid string");
      else
        sim_reply_error(r, 400, "invalid_request_error", "mock_response", "invalid_type",
                        "Invalid type for 'mock_response': expected a string.");
      return -1;
    }
    mr->mock = v->u.string.ptr;
    mr->mock_len = v->u.string.len;
    return 0;
  }
  h = sim_header(r, "x-sim-mock-response");
  if (h) {
    mr->mock = h;
    mr->mock_len = strlen(h);
  }
  return 0;
}
