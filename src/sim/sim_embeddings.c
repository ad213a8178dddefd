/* POST /v1/embeddings, GET /v1/models[/{id}] and GET /sim/stats.
 * Embedding vectors come from sim_model_embed (deterministic, similar
 * texts close); "base64" is the little-endian float32 array in base64, as
 * OpenAI sends it (and as the official Node SDK requests by default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_server.h"

#define MAX_INPUTS 2048 /* OpenAI's documented limit for one request */

static int bad(sim_req *r, const char *param, const char *code, const char *msg)
{
  sim_reply_error(r, 400, "invalid_request_error", param, code, "%s", msg);
  return -1;
}

/* An input item as text: a string, or token ids (which the simulated
 * model embeds by their decimal text). */
static int input_text(const json_value *v, llm_buf *tmp, const char **s, size_t *n)
{
  if (v->type == JSON_STRING) {
    *s = v->u.string.ptr;
    *n = v->u.string.len;
    return 0;
  }
  if (v->type == JSON_ARRAY) {
    llm_buf_reset(tmp);
    for (size_t i = 0; i < v->u.array.n; i++) {
      int64_t id;
      if (!json_int64(&v->u.array.items[i], &id) || id < 0)
        return -1;
      if (i)
        llm_buf_putc(tmp, ' ');
      json_put_int(tmp, id);
    }
    *s = tmp->data ? tmp->data : "";
    *n = tmp->len;
    return 0;
  }
  return -1;
}

void sim_embeddings_handle(sim_req *r, const json_value *body)
{
  sim_server *s = r->srv;
  const json_value *model = json_get(body, "model"), *input = json_get(body, "input"),
                   *dims_v = json_get(body, "dimensions"), *fmt = json_get(body, "encoding_format");
  const json_value *items;
  size_t nitems;
  int dims, native, base64 = 0, tokens = 0;
  int64_t d64;
  llm_buf out, tmp;
  float *vec;
  sim_plan pl;
  char msg[160];
  atomic_fetch_add(&s->embeddings, 1);
  if (!json_is_string(model) || !model->u.string.len) {
    bad(r, "model", "missing_required_parameter", "you must provide a model parameter");
    return;
  }
  if (!input) {
    bad(r, "input", "missing_required_parameter", "Missing required parameter: 'input'.");
    return;
  }
  /* a string, an array of token ids, or an array of either */
  if (input->type == JSON_STRING ||
      (input->type == JSON_ARRAY && input->u.array.n > 0 &&
       input->u.array.items[0].type == JSON_NUMBER)) {
    items = input;
    nitems = 1;
  } else if (input->type == JSON_ARRAY) {
    items = NULL;
    nitems = input->u.array.n;
  } else {
    bad(r, "input", "invalid_type", "Invalid type for 'input': expected a string or an array.");
    return;
  }
  if (nitems == 0 || nitems > MAX_INPUTS) {
    bad(r, "input", "invalid_value", "Invalid 'input': expected 1 to 2048 items.");
    return;
  }
  native = sim_model_embed_dims(model->u.string.ptr);
  dims = native;
  if (dims_v && dims_v->type != JSON_NULL) {
    if (!json_int64(dims_v, &d64) || d64 < 1 || d64 > native) {
      snprintf(msg, sizeof msg, "Invalid 'dimensions': expected an integer from 1 to %d for "
                                "this model.", native);
      bad(r, "dimensions", "invalid_value", msg);
      return;
    }
    dims = (int)d64;
  }
  if (fmt && fmt->type != JSON_NULL) {
    if (json_is_string(fmt) && strcmp(fmt->u.string.ptr, "base64") == 0)
      base64 = 1;
    else if (!json_is_string(fmt) || strcmp(fmt->u.string.ptr, "float") != 0) {
      bad(r, "encoding_format", "invalid_value",
          "Invalid 'encoding_format': expected 'float' or 'base64'.");
      return;
    }
  }
  if (s->cfg.strict && !sim_config_knows_model(&s->cfg, model->u.string.ptr)) {
    sim_reply_error(r, 404, "invalid_request_error", NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have access to it.",
                    model->u.string.ptr);
    return;
  }
  if (sim_plan_request(r, body, model->u.string.ptr, &pl) != 0 || sim_fault_reply(r, &pl))
    return;

  vec = malloc((size_t)native * sizeof *vec);
  llm_buf_init(&out);
  llm_buf_init(&tmp);
  llm_buf_puts(&out, "{\"object\":\"list\",\"data\":[");
  for (size_t i = 0; vec && i < nitems; i++) {
    const json_value *it = items ? items : &input->u.array.items[i];
    const char *text;
    size_t len;
    if (input_text(it, &tmp, &text, &len) != 0) {
      snprintf(msg, sizeof msg, "Invalid 'input[%zu]': expected a string or an array of "
                                "token ids.", i);
      bad(r, "input", "invalid_type", msg);
      goto done;
    }
    if (len == 0) {
      snprintf(msg, sizeof msg, "Invalid 'input[%zu]': the string must not be empty.", i);
      bad(r, "input", "invalid_value", msg);
      goto done;
    }
    tokens += sim_model_count_tokens(text, len);
    /* the model writes the vector at the requested size, L2-normalised */
    if (sim_model_embed(model->u.string.ptr, text, len, vec, dims) != 0) {
      sim_reply_error(r, 500, "server_error", NULL, NULL, "The simulated model could not "
                                                           "embed this input.");
      goto done;
    }
    llm_buf_printf(&out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
    if (base64) {
      /* little-endian float32: x86 and ARM Linux are little-endian */
      llm_buf_putc(&out, '"');
      json_put_base64(&out, vec, (size_t)dims * sizeof *vec);
      llm_buf_putc(&out, '"');
    } else {
      llm_buf_putc(&out, '[');
      for (int k = 0; k < dims; k++) {
        if (k)
          llm_buf_putc(&out, ',');
        json_put_float(&out, vec[k]);
      }
      llm_buf_putc(&out, ']');
    }
    llm_buf_putc(&out, '}');
  }
  if (!vec) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    goto done;
  }
  if (sim_ratelimit_check(r, model->u.string.ptr, tokens))
    goto done;
  atomic_fetch_add(&s->prompt_tokens, (uint64_t)tokens);
  llm_buf_puts(&out, "],\"model\":");
  json_put_cstring(&out, model->u.string.ptr);
  llm_buf_printf(&out, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}\n", tokens, tokens);
  {
    /* an embedding costs one forward pass: the profile's TTFT */
    int64_t at = r->t0 + (int64_t)(pl.ttft_ms * 1e6 * sim_jitter_factor(&pl.rng, pl.jitter));
    if (pl.fault.kind == SIM_FAULT_SLOW_HEADERS)
      at += (int64_t)pl.fp.header_delay_ms * 1000000;
    if (pl.fault.kind == SIM_FAULT_DROP_BEFORE_BODY || pl.fault.kind == SIM_FAULT_DROP_MID_STREAM ||
        pl.fault.kind == SIM_FAULT_STALL || pl.fault.kind == SIM_FAULT_MALFORMED_JSON) {
      size_t len;
      char *data = llm_buf_take(&out, &len);
      size_t cut = pl.fault.kind == SIM_FAULT_DROP_BEFORE_BODY ? 0 : len / 2;
      struct MHD_Response *resp;
      if (pl.fault.kind == SIM_FAULT_MALFORMED_JSON) {
        resp = data ? MHD_create_response_from_buffer(cut, data, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!resp)
          free(data);
      } else {
        resp = data ? sim_body_cut(r, data, len, cut,
                                   pl.fault.kind == SIM_FAULT_STALL ? pl.fp.stall_ms : 0)
                    : NULL;
      }
      if (!resp) {
        sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
        goto done;
      }
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
      if (r->resp)
        MHD_destroy_response(r->resp);
      r->resp = resp;
      r->status = 200;
      r->send_at = at;
    } else if (pl.fault.kind == SIM_FAULT_ERROR_CHUNK) {
      sim_reply_error(r, 500, "server_error", NULL, NULL, "The server had an error while "
                      "processing your request. Sorry about that! (simulated fault)");
      r->send_at = at;
    } else {
      sim_reply_json(r, 200, &out, at);
    }
  }
done:
  llm_buf_free(&out);
  llm_buf_free(&tmp);
  free(vec);
}

/* ---- models and stats ---------------------------------------------------------------------- */

static void put_model(llm_buf *b, const char *id)
{
  llm_buf_puts(b, "{\"id\":");
  json_put_cstring(b, id);
  /* a fixed date: model objects do not change between calls */
  llm_buf_puts(b, ",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"llmrun-sim\"}");
}

void sim_models_handle(sim_req *r, const char *id)
{
  const sim_config *c = &r->srv->cfg;
  llm_buf b;
  int first = 1;
  llm_buf_init(&b);
  if (id) {
    if (c->strict && !sim_config_knows_model(c, id)) {
      sim_reply_error(r, 404, "invalid_request_error", "model", "model_not_found",
                      "The model `%.100s` does not exist or you do not have access to it.", id);
      return;
    }
    /* without strict mode every model name is served, so every one exists */
    put_model(&b, id);
    llm_buf_putc(&b, '\n');
    sim_reply_json(r, 200, &b, 0);
    return;
  }
  llm_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
  for (size_t i = 0; i < c->nprofiles; i++) {
    if (!sim_config_is_model_name(c->profiles[i].name))
      continue;
    if (!first)
      llm_buf_putc(&b, ',');
    put_model(&b, c->profiles[i].name);
    first = 0;
  }
  for (size_t i = 0; i < c->nmodels; i++) {
    int dup = 0;
    for (size_t k = 0; k < c->nprofiles; k++)
      dup |= strcmp(c->profiles[k].name, c->models[i]) == 0;
    if (dup)
      continue;
    if (!first)
      llm_buf_putc(&b, ',');
    put_model(&b, c->models[i]);
    first = 0;
  }
  llm_buf_puts(&b, "]}\n");
  sim_reply_json(r, 200, &b, 0);
}

void sim_stats_handle(sim_req *r)
{
  llm_buf b;
  size_t len;
  char *data;
  data = sim_server_stats_json(r->srv, &len);
  llm_buf_init(&b);
  if (data) {
    llm_buf_put(&b, data, len);
    llm_buf_putc(&b, '\n');
    free(data);
  } else {
    b.failed = 1;
  }
  sim_reply_json(r, 200, &b, 0);
}
