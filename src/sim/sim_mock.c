/* Scripted answers: a request that carries a mock_response is answered
 * with exactly that text (cut by stop and max_tokens, usage counted as any
 * answer), for tests of a user's own pipeline (LiteLLM's `mock_response`
 * request field is the model). Both wires take it, in order of precedence:
 *
 *   "mock_response": "text"            a top-level body field
 *   "sim": {"mock_response": "text"}   the simulator's knob object
 *   x-sim-mock-response: text          a header (no line breaks possible)
 *
 * A mock_response that is not a string gets a 400. Also sets the request's
 * labelled-task registry, which the skills read. */
#include "sim_server.h"

#include <string.h>

int sim_mock_read(sim_req *r, const json_value *body, sim_request *mr)
{
  const json_value *v = json_get(body, "mock_response");
  const char *h;
  mr->tasks = r->srv ? r->srv->tasks : NULL;
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
