/* The simulator's HTTP side: MHD's access handler (routing, the request
 * body with its size limit, content type, JSON parsing), replies in the
 * error format of the request's API (OpenAI's, or Anthropic's for
 * /v1/messages), the headers every response carries, unique ids, and the
 * moment a response is queued (now, or when its simulated latency is
 * over). Endpoints live in sim_chat.c, sim_messages.c, sim_embeddings.c
 * and sim_faults.c; the Batch API's /v1/files and /v1/batches in
 * sim_batch.c, Anthropic's /v1/messages/batches in sim_msgbatch.c.
 *
 * Anthropic's errors (docs.claude.com/en/api/errors): {"type":"error",
 * "error":{"type":...,"message":...},"request_id":"req_..."}, the type
 * following the status: 400 invalid_request_error (also other 4XX),
 * 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 413 request_too_large, 429 rate_limit_error, 500 api_error,
 * 529 overloaded_error; every response has a unique request-id header
 * ("req_018EeWyXxfu5pfWkrYcMdjWG" in the docs). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_internal.h"
#include "sim_batch.h"
#include "sim_server.h"

/* ---- replies --------------------------------------------------------------------- */

const char *sim_header(sim_req *r, const char *name)
{
  if (!r->conn) /* a batch line, answered inside the server: no headers but its
                   batch's version */
    return r->line_version && strcasecmp(name, "anthropic-version") == 0 ? r->line_version
                                                                          : NULL;
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static void set_reply(sim_req *r, unsigned status, struct MHD_Response *resp, int64_t send_at)
{
  if (r->resp)
    MHD_destroy_response(r->resp);
  r->resp = resp;
  r->status = status;
  r->send_at = send_at;
}

void sim_reply_json(sim_req *r, unsigned status, llm_buf *b, int64_t send_at)
{
  struct MHD_Response *resp;
  size_t len;
  char *data;
  if (r->capture) { /* a batch line: the body is the answer */
    llm_buf_put(r->capture, b->data, b->len);
    r->status = b->failed ? 500 : status;
    llm_buf_free(b);
    return;
  }
  if (b->failed) {
    llm_buf_free(b);
    set_reply(r, 500, NULL, 0);
    return;
  }
  data = llm_buf_take(b, &len);
  resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(data);
    set_reply(r, 500, NULL, 0);
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  set_reply(r, status, resp, send_at);
}

void sim_reply_copy(sim_req *r, const void *data, size_t len, const char *content_type)
{
  struct MHD_Response *resp =
    MHD_create_response_from_buffer(len, (void *)(data ? data : ""), MHD_RESPMEM_MUST_COPY);
  if (!resp) {
    sim_reply_error(r, 500, "server_error", NULL, NULL, "Out of memory.");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  set_reply(r, 200, resp, 0);
}

static const char *anthropic_type(unsigned status)
{
  switch (status) {
  case 401: return "authentication_error";
  case 403: return "permission_error";
  case 404: return "not_found_error";
  case 413: return "request_too_large";
  case 429: return "rate_limit_error";
  case 529: return "overloaded_error";
  default: return status < 500 ? "invalid_request_error" : "api_error";
  }
}

void sim_reply_error(sim_req *r, unsigned status, const char *type, const char *param,
                     const char *code, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  llm_buf b;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  llm_buf_init(&b);
  if (r->wire == SIM_WIRE_ANTHROPIC) {
    llm_buf_puts(&b, "{\"type\":\"error\",\"error\":{\"type\":");
    json_put_cstring(&b, anthropic_type(status));
    llm_buf_puts(&b, ",\"message\":");
    json_put_cstring(&b, msg);
    llm_buf_puts(&b, "},\"request_id\":");
    json_put_cstring(&b, r->id);
    llm_buf_puts(&b, "}\n");
    sim_reply_json(r, status, &b, 0);
    return;
  }
  llm_buf_puts(&b, "{\"error\":{\"message\":");
  json_put_cstring(&b, msg);
  llm_buf_puts(&b, ",\"type\":");
  json_put_cstring(&b, type);
  llm_buf_puts(&b, ",\"param\":");
  json_put_cstring(&b, param);
  llm_buf_puts(&b, ",\"code\":");
  json_put_cstring(&b, code);
  llm_buf_puts(&b, "}}\n");
  sim_reply_json(r, status, &b, 0);
}

int sim_reply_bad(sim_req *r, const char *fmt, ...)
{
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sim_reply_error(r, 400, "invalid_request_error", NULL, NULL, "%s", msg);
  return -1;
}

void sim_add_common_headers(sim_req *r, struct MHD_Response *resp)
{
  if (r->wire == SIM_WIRE_ANTHROPIC) {
    MHD_add_response_header(resp, "request-id", r->id);
  } else {
    MHD_add_response_header(resp, "x-request-id", r->id);
    MHD_add_response_header(resp, "openai-version", "2020-10-01");
    MHD_add_response_header(resp, "openai-organization", "llmrun-sim");
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "llmrun-sim");
}

/* ---- ids ------------------------------------------------------------------------- */

void sim_base62(uint64_t key, int len, char *out)
{
  static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t x = key;
  for (int i = 0; i < len; i++) {
    if (i % 8 == 0) /* fresh bits every 8 digits (62^8 < 2^48) */
      x = sim_mix64(key + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
    out[i] = digits[x % 62];
    x /= 62;
  }
  out[len] = '\0';
}

void sim_new_id(sim_server *s, const char *prefix, int len, char *out, size_t cap)
{
  size_t n = strlen(prefix);
  uint64_t key = sim_mix64(s->id_nonce ^ sim_mix64(++s->next_id));
  if (n + (size_t)len + 1 > cap)
    len = cap > n + 1 ? (int)(cap - n - 1) : 0;
  memcpy(out, prefix, n);
  sim_base62(key, len, out + n);
}

/* Queues r's response now; the caller returns what this returns. */
static enum MHD_Result queue_reply(sim_req *r)
{
  sim_server *s = r->srv;
  int64_t now = sim_now_ns();
  char buf[32];
  enum MHD_Result ret;
  if (!r->resp) { /* out of memory while building it */
    r->resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    r->status = 500;
    if (!r->resp)
      return MHD_NO;
  }
  sim_add_common_headers(r, r->resp);
  if (r->wire == SIM_WIRE_OPENAI) {
    snprintf(buf, sizeof buf, "%lld", (long long)((now - r->t0) / 1000000));
    MHD_add_response_header(r->resp, "openai-processing-ms", buf);
  }
  if (r->ttft_at) {
    uint64_t late = now > r->ttft_at ? (uint64_t)(now - r->ttft_at) / 1000 : 0, max;
    atomic_fetch_add(&s->ttft_late_us_sum, late);
    atomic_fetch_add(&s->ttft_late_n, 1);
    max = atomic_load(&s->ttft_late_us_max);
    if (late > max)
      atomic_store(&s->ttft_late_us_max, late); /* only this thread writes */
    /* the first token leaves now: report the delay actually applied */
    snprintf(buf, sizeof buf, "%.3f", (double)(now - r->t0) / 1e6);
    MHD_add_response_header(r->resp, "x-sim-ttft-ms", buf);
  }
  if (r->ep == SIM_EP_CHAT || r->ep == SIM_EP_EMBEDDINGS || r->ep == SIM_EP_MESSAGES)
    sim_ratelimit_headers(r, r->resp);
  ret = MHD_queue_response(r->conn, r->status, r->resp);
  MHD_destroy_response(r->resp);
  r->resp = NULL;
  r->queued = 1;
  if (r->status < 300)
    atomic_fetch_add(&s->r2xx, 1);
  else if (r->status < 500)
    atomic_fetch_add(&s->r4xx, 1);
  else
    atomic_fetch_add(&s->r5xx, 1);
  return ret;
}

/* ---- routing ------------------------------------------------------------------------ */

static void route(sim_req *r, const char **want_method)
{
  const char *u = r->url;
  *want_method = "POST";
  if (strcmp(u, "/v1/chat/completions") == 0)
    r->ep = SIM_EP_CHAT;
  else if (strcmp(u, "/v1/embeddings") == 0)
    r->ep = SIM_EP_EMBEDDINGS;
  else if (strcmp(u, "/v1/messages") == 0)
    r->ep = SIM_EP_MESSAGES, r->wire = SIM_WIRE_ANTHROPIC;
  else if (strcmp(u, "/v1/models") == 0)
    r->ep = SIM_EP_MODELS, *want_method = "GET";
  else if (strncmp(u, "/v1/models/", 11) == 0 && u[11])
    r->ep = SIM_EP_MODEL, *want_method = "GET";
  else if (strcmp(u, "/sim/stats") == 0)
    r->ep = SIM_EP_STATS, *want_method = "GET";
  else if (sim_batch_route(u))
    r->ep = SIM_EP_BATCH, *want_method = r->method; /* sim_batch.c checks methods */
  else if (sim_msgbatch_route(u))
    r->ep = SIM_EP_MSGBATCH, r->wire = SIM_WIRE_ANTHROPIC, *want_method = r->method;
  else
    r->ep = SIM_EP_UNKNOWN;
}

static int is_json_type(const char *ct)
{
  static const char want[] = "application/json";
  if (!ct)
    return 0;
  while (*ct == ' ')
    ct++;
  if (strncasecmp(ct, want, sizeof want - 1) != 0)
    return 0;
  ct += sizeof want - 1;
  return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/* OpenAI's look ("req_" and 32 hex digits), Anthropic's ("req_011C" and
 * 20 base62 digits, as "req_011CSHoEeqs5C35K2UUqR7Fy"); unique either way. */
static void new_request_id(sim_req *r)
{
  sim_server *s = r->srv;
  if (r->wire == SIM_WIRE_ANTHROPIC) {
    sim_new_id(s, "req_011C", 20, r->id, sizeof r->id);
  } else {
    uint64_t a = sim_mix64(s->id_nonce ^ sim_mix64(++s->next_id));
    snprintf(r->id, sizeof r->id, "req_%016llx%016llx", (unsigned long long)a,
             (unsigned long long)sim_mix64(a ^ s->id_nonce));
  }
}

/* Decides the response once the whole body is here. */
static void handle(sim_req *r, int method_ok, const char *want_method)
{
  json_doc *doc;
  json_error jerr;
  const json_value *root;
  if (r->ep == SIM_EP_UNKNOWN) {
    sim_reply_error(r, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%s %s)",
                    r->method, r->url);
    return;
  }
  if (!method_ok) {
    sim_reply_error(r, 405, "invalid_request_error", NULL, "method_not_allowed",
                    "Invalid method for URL (%s %s): use %s", r->method, r->url, want_method);
    if (r->resp)
      MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ALLOW, want_method);
    return;
  }
  switch (r->ep) {
  case SIM_EP_STATS: sim_stats_handle(r); return;
  case SIM_EP_MODELS: sim_models_handle(r, NULL); return;
  case SIM_EP_MODEL: sim_models_handle(r, r->url + 11); return;
  case SIM_EP_BATCH: sim_batch_handle(r); return; /* its bodies are not all JSON */
  case SIM_EP_MSGBATCH: sim_msgbatch_handle(r); return; /* it parses its own */
  default: break;
  }
  if (r->bad_content_type) {
    const char *ct = sim_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    sim_reply_error(r, 415, "invalid_request_error", NULL, "unsupported_media_type",
                    "Invalid Content-Type header (%.100s): the body must be JSON, sent "
                    "with Content-Type: application/json.", ct ? ct : "none");
    return;
  }
  root = json_parse(r->body.data ? r->body.data : "", r->body.len, &doc, &jerr);
  if (!root) {
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                    "We could not parse the JSON body of your request: %s at byte %zu. "
                    "The API expects a JSON payload.", jerr.message, jerr.offset);
    return;
  }
  if (root->type != JSON_OBJECT)
    sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                    "The request body must be a JSON object, not %s.",
                    json_type_name(root->type));
  else if (r->ep == SIM_EP_CHAT)
    sim_chat_handle(r, root);
  else if (r->ep == SIM_EP_MESSAGES)
    sim_messages_handle(r, root);
  else
    sim_embeddings_handle(r, root);
  json_free(doc);
}

static enum MHD_Result too_large(sim_req *r)
{
  sim_reply_error(r, 413, "invalid_request_error", NULL, "request_too_large",
                  "Request body too large: the limit is %zu bytes.",
                  r->srv->cfg.max_body_bytes);
  r->too_large = 1;
  return queue_reply(r);
}

static enum MHD_Result first_call(sim_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
  sim_req *r = calloc(1, sizeof *r);
  const char *cl;
  if (!r)
    return MHD_NO;
  r->srv = s;
  r->conn = conn;
  r->url = url;
  r->method = method;
  /* the request's clock starts with the loop pass that read it: in a
   * burst, the requests handled later in a pass were already waiting in
   * their sockets when it began (measured with 1,000 streams at once:
   * client TTFT minus applied went from ~10 ms to ~7 ms on 2 cores) */
  r->t0 = s->pass_start ? s->pass_start : sim_now_ns();
  r->timer.index = SIZE_MAX;
  r->fd = -1;
  *con_cls = r;
  atomic_fetch_add(&s->requests, 1);
  route(r, &r->want_method);
  new_request_id(r);
  if ((r->ep == SIM_EP_CHAT || r->ep == SIM_EP_EMBEDDINGS || r->ep == SIM_EP_MESSAGES ||
       r->ep == SIM_EP_BATCH || r->ep == SIM_EP_MSGBATCH) &&
      strcmp(method, r->want_method) == 0) {
    r->bad_content_type = r->ep != SIM_EP_BATCH && r->ep != SIM_EP_MSGBATCH &&
                          !is_json_type(sim_header(r, MHD_HTTP_HEADER_CONTENT_TYPE));
    cl = sim_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    /* refuse before the body is sent (curl waits on Expect: 100-continue) */
    if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_bytes)
      return too_large(r);
  }
  return MHD_YES;
}

enum MHD_Result sim_http_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_size, void **con_cls)
{
  sim_server *s = cls;
  sim_req *r = *con_cls;
  (void)version;
  if (!r)
    return first_call(s, conn, url, method, con_cls);
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->too_large)
      return MHD_YES;
    /* only JSON bodies for JSON endpoints are kept; others are drained */
    if ((r->ep != SIM_EP_CHAT && r->ep != SIM_EP_EMBEDDINGS && r->ep != SIM_EP_MESSAGES &&
         r->ep != SIM_EP_BATCH && r->ep != SIM_EP_MSGBATCH) ||
        r->bad_content_type)
      return MHD_YES;
    if (r->body.len + n > s->cfg.max_body_bytes)
      return too_large(r);
    if (r->body.cap == 0) {
      /* the announced length when there is one: 10,000 waiting streams
       * should not each keep a mostly empty buffer */
      const char *cl = sim_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
      size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
      if (want > n && want <= s->cfg.max_body_bytes)
        llm_buf_reserve(&r->body, want);
    }
    llm_buf_put(&r->body, upload_data, n);
    return r->body.failed ? MHD_NO : MHD_YES;
  }
  if (r->client_gone)
    return MHD_NO; /* hung up while we waited, or the server is stopping */
  if (r->queued)
    return MHD_YES;
  if (!r->resp && !r->drop) {
    handle(r, strcmp(method, r->want_method) == 0, r->want_method);
    llm_buf_free(&r->body); /* handled: only its hash may have been kept */
  }
  if (r->send_at > sim_now_ns())
    return sim_req_wait_until(r, r->send_at);
  if (r->drop)
    return MHD_NO; /* closes the connection with no response */
  return queue_reply(r);
}

/* ---- the end of a request ------------------------------------------------------------- */

void sim_req_free(sim_req *r)
{
  sim_req_release_wait(r);
  if (r->resp)
    MHD_destroy_response(r->resp);
  sim_body_free(r->bodysrc);
  llm_buf_free(&r->body);
  free(r);
}

void sim_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
  sim_server *s = cls;
  sim_req *r = *con_cls;
  (void)conn;
  if (!r)
    return;
  *con_cls = NULL;
  if (r->bodysrc && sim_body_finished(r->bodysrc))
    atomic_fetch_add(&s->streams_completed, 1);
  else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
           toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN && !r->drop)
    atomic_fetch_add(&s->client_disconnects, 1);
  sim_req_free(r);
}
