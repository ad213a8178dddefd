/* Error responses a real provider sends, on purpose: injected status
 * faults (429, 5xx...), connections dropped before any response, and the
 * simulated rate limits with OpenAI's x-ratelimit-* headers.
 *
 * Shapes follow OpenAI's documented errors (platform.openai.com/docs/
 * guides/error-codes and .../rate-limits): {"error":{message,type,param,
 * code}}, 429 rate_limit_exceeded with type "requests" or "tokens", 429
 * insufficient_quota, reset durations written like "1s", "6m0s", "12ms".
 * 502 and 504 come as an HTML page by default, as they do from a CDN in
 * front of a real API, so clients meet non-JSON error bodies too.
 *
 * On /v1/messages the same faults speak Anthropic (sim_reply_error picks
 * the error type from the status: 429 rate_limit_error, 529
 * overloaded_error "Overloaded", 500 api_error...), insufficient_quota
 * becomes Anthropic's 400 for an empty credit balance, and the simulated
 * rate limits send anthropic-ratelimit-{requests,tokens}-{limit,remaining,
 * reset} with the resets as RFC 3339 times (docs.claude.com/en/api/
 * rate-limits; e.g. "2025-08-21T12:40:59Z" in a recorded response,
 * tidyllm's test fixtures) and retry-after in seconds on a 429. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_server.h"

typedef struct status_error {
  int status;
  const char *type, *code, *message;
} status_error;

static const status_error status_errors[] = {
  {400, "invalid_request_error", NULL, "The simulator rejected this request."},
  {401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."},
  {403, "permission_error", "unsupported_country_region_territory",
   "Country, region, or territory not supported."},
  {404, "invalid_request_error", "model_not_found",
   "The model does not exist or you do not have access to it."},
  {408, "timeout", NULL, "Request timed out."},
  {409, "conflict", NULL, "The request conflicts with another request in progress."},
  {422, "invalid_request_error", NULL, "The request could not be processed."},
  {500, "server_error", NULL,
   "The server had an error while processing your request. Sorry about that!"},
  {502, "server_error", NULL, "Bad gateway."},
  {503, "server_error", NULL, "The server is overloaded or not ready yet."},
  {504, "server_error", NULL, "Gateway timeout."},
  {529, "overloaded_error", NULL, "Overloaded"},
};

static const char *reason(int status)
{
  const char *r = MHD_get_reason_phrase_for((unsigned)status);
  return r && r[0] ? r : "Error";
}

static void add_retry_headers(sim_req *r, const sim_fault_params *fp)
{
  char buf[32];
  if (!r->resp)
    return;
  if (fp->retry_after[0])
    MHD_add_response_header(r->resp, "retry-after", fp->retry_after);
  if (fp->retry_after_ms >= 0) {
    snprintf(buf, sizeof buf, "%d", fp->retry_after_ms);
    MHD_add_response_header(r->resp, "retry-after-ms", buf);
  }
}

static void html_error(sim_req *r, int status, const char *server)
{
  llm_buf b;
  struct MHD_Response *resp;
  char *data;
  size_t len;
  llm_buf_init(&b);
  llm_buf_printf(&b, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s"
                "</h1></center>\r\n<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
            status, reason(status), status, reason(status), server);
  data = llm_buf_take(&b, &len);
  resp = data ? MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE) : NULL;
  if (resp)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html");
  else
    free(data);
  if (r->resp)
    MHD_destroy_response(r->resp);
  r->resp = resp;
  r->status = (unsigned)status;
  r->send_at = 0;
}

static void status_fault(sim_req *r, const sim_plan *p, int status)
{
  const status_error *e = NULL;
  int body = p->fp.error_body;
  for (size_t i = 0; i < sizeof status_errors / sizeof *status_errors; i++)
    if (status_errors[i].status == status)
      e = &status_errors[i];
  if (body == 0)
    body = status == 502 || status == 504 ? 2 : 1;
  if (body == 2) {
    html_error(r, status, "cloudflare");
  } else if (body == 3) {
    llm_buf b;
    llm_buf_init(&b);
    llm_buf_puts(&b, "");
    sim_reply_json(r, (unsigned)status, &b, 0);
  } else if (p->fp.message[0]) { /* a scripted error's own message */
    sim_reply_error(r, (unsigned)status, e ? e->type : status < 500 ? "invalid_request_error"
                    : "server_error", NULL, e ? e->code : NULL, "%s", p->fp.message);
  } else if (e) {
    sim_reply_error(r, (unsigned)status, e->type, NULL, e->code, "%s (simulated fault)",
                    e->message);
  } else {
    sim_reply_error(r, (unsigned)status, status < 500 ? "invalid_request_error" : "server_error",
                    NULL, NULL, "%s (simulated fault)", reason(status));
  }
  if (status == 503 || status == 529 || status == 408)
    add_retry_headers(r, &p->fp);
}

int sim_fault_reply(sim_req *r, const sim_plan *p)
{
  switch (p->fault.kind) {
  case SIM_FAULT_STATUS:
    status_fault(r, p, p->fault.status);
    break;
  case SIM_FAULT_RATE_LIMIT:
    if (p->fp.error_body >= 2)
      status_fault(r, p, 429);
    else if (p->fp.message[0])
      sim_reply_error(r, 429, r->wire == SIM_WIRE_ANTHROPIC ? "rate_limit_error" : "requests",
                      NULL, r->wire == SIM_WIRE_ANTHROPIC ? NULL : "rate_limit_exceeded", "%s",
                      p->fp.message);
    else if (r->wire == SIM_WIRE_ANTHROPIC)
      sim_reply_error(r, 429, "rate_limit_error", NULL, NULL,
                      "This request would exceed the rate limit for your organization "
                      "(simulated fault). Please try again in %ss.",
                      p->fp.retry_after[0] ? p->fp.retry_after : "1");
    else
      sim_reply_error(r, 429, "requests", NULL, "rate_limit_exceeded",
                      "Rate limit reached for requests (simulated fault). Please try again "
                      "in %ss.", p->fp.retry_after[0] ? p->fp.retry_after : "1");
    add_retry_headers(r, &p->fp);
    if (r->resp)
      MHD_add_response_header(r->resp, r->wire == SIM_WIRE_ANTHROPIC
                                         ? "anthropic-ratelimit-requests-remaining"
                                         : "x-ratelimit-remaining-requests", "0");
    break;
  case SIM_FAULT_QUOTA:
    if (r->wire == SIM_WIRE_ANTHROPIC)
      sim_reply_error(r, 400, "invalid_request_error", NULL, NULL,
                      "Your credit balance is too low to access the Anthropic API. Please go "
                      "to Plans & Billing to upgrade or purchase credits. (simulated fault)");
    else
      sim_reply_error(r, 429, "insufficient_quota", NULL, "insufficient_quota",
                      "You exceeded your current quota, please check your plan and billing "
                      "details (simulated fault).");
    break;
  case SIM_FAULT_DROP_BEFORE_HEADERS:
    r->drop = 1;
    r->send_at = 0;
    return 1;
  default:
    return 0;
  }
  if (r->resp && p->fp.should_retry >= 0)
    MHD_add_response_header(r->resp, "x-should-retry", p->fp.should_retry ? "true" : "false");
  return 1;
}

/* ---- simulated rate limits ------------------------------------------------------------ */

/* Go's time.Duration format, which OpenAI's reset headers use. */
static void put_duration(char *buf, size_t n, double s)
{
  if (s < 0)
    s = 0;
  if (s < 1) {
    snprintf(buf, n, "%dms", (int)ceil(s * 1000));
  } else if (s < 60) {
    int len = snprintf(buf, n, "%.3f", s);
    while (len > 0 && buf[len - 1] == '0')
      buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.')
      buf[--len] = '\0';
    snprintf(buf + len, n - (size_t)len, "s");
  } else if (s < 3600) {
    snprintf(buf, n, "%dm%ds", (int)(s / 60), (int)fmod(s, 60));
  } else {
    snprintf(buf, n, "%dh%dm%ds", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
  }
}

/* Token buckets refilled continuously: a limit per minute of L allows a
 * burst of L and then L/60 per second, as OpenAI describes its limits. */
static void refill(sim_bucket *b, int per_min, int64_t now)
{
  if (b->last == 0) {
    b->level = per_min;
  } else {
    b->level += (double)(now - b->last) / SIM_NS * per_min / 60.0;
    if (b->level > per_min)
      b->level = per_min;
  }
  b->last = now;
}

static void limited(sim_req *r, const char *what, int limit, double used, int requested,
                    double wait_s)
{
  char ms[32], secs[32];
  put_duration(secs, sizeof secs, wait_s);
  if (r->wire == SIM_WIRE_ANTHROPIC)
    sim_reply_error(r, 429, "rate_limit_error", NULL, NULL,
                    "This request would exceed the rate limit for your organization of %d %s "
                    "per minute (simulated: used %d, requested %d). For details, refer to: "
                    "https://docs.claude.com/en/api/rate-limits. Please try again in %s.",
                    limit, what, (int)used, requested, secs);
  else
    sim_reply_error(r, 429, what, NULL, "rate_limit_exceeded",
                    "Rate limit reached on %s per min: Limit %d, Used %d, Requested %d. "
                    "Please try again in %s.", what, limit, (int)used, requested, secs);
  if (!r->resp)
    return;
  snprintf(secs, sizeof secs, "%d", (int)ceil(wait_s));
  snprintf(ms, sizeof ms, "%d", (int)ceil(wait_s * 1000));
  MHD_add_response_header(r->resp, "retry-after", secs);
  MHD_add_response_header(r->resp, "retry-after-ms", ms);
  atomic_fetch_add(&r->srv->rate_limited, 1);
}

int sim_ratelimit_check(sim_req *r, const char *model, int tokens)
{
  sim_server *s = r->srv;
  int64_t now = sim_now_ns();
  (void)model; /* one window for all models, like a single organisation key */
  if (s->cfg.rate_rpm > 0) {
    refill(&s->rl.requests, s->cfg.rate_rpm, now);
    if (s->rl.requests.level < 1) {
      limited(r, "requests", s->cfg.rate_rpm, s->cfg.rate_rpm - s->rl.requests.level, 1,
              (1 - s->rl.requests.level) * 60.0 / s->cfg.rate_rpm);
      return 1;
    }
  }
  if (s->cfg.rate_tpm > 0) {
    refill(&s->rl.tokens, s->cfg.rate_tpm, now);
    if (s->rl.tokens.level < tokens) {
      double wait = tokens > s->cfg.rate_tpm
                      ? 60.0 /* can never fit: say a minute, as a real API would */
                      : (tokens - s->rl.tokens.level) * 60.0 / s->cfg.rate_tpm;
      limited(r, "tokens", s->cfg.rate_tpm, s->cfg.rate_tpm - s->rl.tokens.level, tokens,
              wait);
      return 1;
    }
    s->rl.tokens.level -= tokens;
  }
  if (s->cfg.rate_rpm > 0)
    s->rl.requests.level -= 1;
  return 0;
}

static void window_headers(struct MHD_Response *resp, const char *what, int limit,
                           sim_bucket *b, int64_t now)
{
  char name[48], val[32];
  refill(b, limit, now);
  snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
  snprintf(val, sizeof val, "%d", limit);
  MHD_add_response_header(resp, name, val);
  snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
  snprintf(val, sizeof val, "%d", b->level > 0 ? (int)floor(b->level) : 0);
  MHD_add_response_header(resp, name, val);
  snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
  put_duration(val, sizeof val, (limit - b->level) * 60.0 / limit);
  MHD_add_response_header(resp, name, val);
}

/* Anthropic's: the reset is the moment the bucket is full again, as an
 * RFC 3339 UTC time. */
static void anthropic_window(struct MHD_Response *resp, const char *what, int limit,
                             sim_bucket *b, int64_t now)
{
  char name[64], val[40];
  struct timespec wall;
  struct tm tm;
  time_t at;
  refill(b, limit, now);
  snprintf(name, sizeof name, "anthropic-ratelimit-%s-limit", what);
  snprintf(val, sizeof val, "%d", limit);
  MHD_add_response_header(resp, name, val);
  snprintf(name, sizeof name, "anthropic-ratelimit-%s-remaining", what);
  snprintf(val, sizeof val, "%d", b->level > 0 ? (int)floor(b->level) : 0);
  MHD_add_response_header(resp, name, val);
  clock_gettime(CLOCK_REALTIME, &wall);
  at = wall.tv_sec + (time_t)ceil((limit - b->level) * 60.0 / limit);
  gmtime_r(&at, &tm);
  strftime(val, sizeof val, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(name, sizeof name, "anthropic-ratelimit-%s-reset", what);
  MHD_add_response_header(resp, name, val);
}

void sim_ratelimit_headers(sim_req *r, struct MHD_Response *resp)
{
  sim_server *s = r->srv;
  int64_t now = sim_now_ns();
  void (*window)(struct MHD_Response *, const char *, int, sim_bucket *, int64_t) =
    r->wire == SIM_WIRE_ANTHROPIC ? anthropic_window : window_headers;
  if (s->cfg.rate_rpm > 0)
    window(resp, "requests", s->cfg.rate_rpm, &s->rl.requests, now);
  if (s->cfg.rate_tpm > 0)
    window(resp, "tokens", s->cfg.rate_tpm, &s->rl.tokens, now);
}
