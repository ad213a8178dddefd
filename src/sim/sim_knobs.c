/* Per-request knobs: which latency profile and fault a request gets.
 *
 * Precedence, lowest first: the profile matched to the model (sim.h), the
 * server-wide overrides of sim_config, then what the request asks for,
 * either as headers (x-sim-profile: zero, x-sim-ttft-ms: 200...) or as
 * fields of a "sim" object in the JSON body ({"sim":{"ttft_ms":200}}); a
 * header wins over the body field. A request that sets ttft_ms or
 * tokens_per_s without jitter gets no jitter: asked-for numbers are exact.
 * The fault is the request's own (x-sim-fault / sim.fault, "none" opts
 * out), else one drawn from the server's fault rates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_server.h"

uint64_t sim_rand(uint64_t *state)
{
  /* splitmix64: tiny, fast, and good enough for jitter and fault draws */
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double sim_rand01(uint64_t *state)
{
  return (double)(sim_rand(state) >> 11) * 0x1.0p-53;
}

double sim_jitter_factor(uint64_t *rng, double jitter)
{
  double u1, u2, z;
  if (jitter <= 0)
    return 1;
  /* Box-Muller; a log-normal factor with mean 1: latencies have a long
   * right tail and are never negative */
  u1 = sim_rand01(rng);
  u2 = sim_rand01(rng);
  if (u1 < 1e-300)
    u1 = 1e-300;
  z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
  return exp(jitter * z - jitter * jitter / 2);
}

/* ---- one knob from a header or the body -------------------------------------------------------- */

typedef struct knob_src {
  sim_req *r;
  const json_value *sim; /* the body's "sim" object, or NULL */
} knob_src;

enum { KNOB_ABSENT, KNOB_SET, KNOB_BAD };

static int knob_bad(knob_src *k, const char *header, const char *field, const char *what)
{
  sim_reply_error(k->r, 400, "invalid_request_error", field, "invalid_sim_knob",
                  "Invalid simulator knob %s / sim.%s: expected %s.", header, field, what);
  return KNOB_BAD;
}

static int knob_number(knob_src *k, const char *header, const char *field, double max,
                       double *out)
{
  const char *h = sim_header(k->r, header);
  const json_value *v = json_get(k->sim, field);
  char *end;
  double d;
  if (h) {
    d = strtod(h, &end);
    if (end == h || *end || !isfinite(d) || d < 0 || d > max)
      return knob_bad(k, header, field, "a number >= 0");
  } else if (v) {
    if (v->type != JSON_NUMBER || v->u.number.value < 0 || v->u.number.value > max)
      return knob_bad(k, header, field, "a number >= 0");
    d = v->u.number.value;
  } else {
    return KNOB_ABSENT;
  }
  *out = d;
  return KNOB_SET;
}

static int knob_int(knob_src *k, const char *header, const char *field, int *out)
{
  double d;
  int st = knob_number(k, header, field, 1e9, &d);
  if (st == KNOB_SET)
    *out = (int)d;
  return st;
}

/* A string knob; numbers in the body are accepted as their text. */
static int knob_string(knob_src *k, const char *header, const char *field, char *out,
                       size_t n)
{
  const char *h = sim_header(k->r, header);
  const json_value *v = json_get(k->sim, field);
  if (h) {
    snprintf(out, n, "%s", h);
  } else if (v && v->type == JSON_STRING) {
    snprintf(out, n, "%s", v->u.string.ptr);
  } else if (v && v->type == JSON_NUMBER) {
    snprintf(out, n, "%.*s", (int)v->u.number.len, v->u.number.text);
  } else if (v) {
    return knob_bad(k, header, field, "a string");
  } else {
    return KNOB_ABSENT;
  }
  return KNOB_SET;
}

static int knob_bool(knob_src *k, const char *header, const char *field, int *out)
{
  const char *h = sim_header(k->r, header);
  const json_value *v = json_get(k->sim, field);
  if (h) {
    if (strcasecmp(h, "true") == 0 || strcmp(h, "1") == 0)
      *out = 1;
    else if (strcasecmp(h, "false") == 0 || strcmp(h, "0") == 0)
      *out = 0;
    else
      return knob_bad(k, header, field, "true or false");
  } else if (v) {
    if (v->type != JSON_TRUE && v->type != JSON_FALSE)
      return knob_bad(k, header, field, "true or false");
    *out = v->type == JSON_TRUE;
  } else {
    return KNOB_ABSENT;
  }
  return KNOB_SET;
}

/* ---- the plan ------------------------------------------------------------------------------ */

static const char *const known_fields[] = {
  "profile", "ttft_ms", "tokens_per_s", "jitter", "fault", "fault_after", "retry_after",
  "retry_after_ms", "should_retry", "header_delay_ms", "stall_ms", "error_body",
  "fault_attempts", "mock_response", "mock_tool_calls", "error_message", NULL,
};

static const sim_profile *named_profile(const sim_config *c, const char *name)
{
  static const sim_profile zero = {(char *)"zero", 0, 0, 0, 0};
  for (size_t i = 0; i < c->nprofiles; i++)
    if (strcmp(c->profiles[i].name, name) == 0)
      return &c->profiles[i];
  return strcmp(name, "zero") == 0 ? &zero : NULL;
}

static void draw_fault(sim_server *s, sim_fault *f)
{
  double u = sim_rand01(&s->rng), acc = 0;
  f->kind = SIM_FAULT_NONE;
  f->status = 0;
  for (size_t i = 0; i < s->cfg.nfaults; i++) {
    acc += s->cfg.faults[i].rate;
    if (u < acc) {
      *f = s->cfg.faults[i].fault;
      return;
    }
  }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* x-sim-fault-attempts: N keeps the fault for the first N attempts of a
 * logical request only (sim_attempts.c); later ones are answered. */
static int attempts_over(knob_src *k, sim_fault *f)
{
  sim_req *r = k->r;
  const char *idem = sim_header(r, "idempotency-key");
  char name[32];
  uint64_t key = 0xcbf29ce484222325ull;
  int n = -1;
  if (knob_int(k, "x-sim-fault-attempts", "fault_attempts", &n) == KNOB_BAD)
    return -1;
  if (n < 0)
    return 0;
  sim_fault_name(f, name, sizeof name);
  key = fnv(key, name, strlen(name) + 1);
  key = idem ? fnv(key, idem, strlen(idem)) : fnv(key, r->body.data, r->body.len);
  if (sim_attempts_seen(r->srv->attempts, key, r->t0) >= n)
    f->kind = SIM_FAULT_NONE;
  return 0;
}

int sim_plan_request(sim_req *r, const json_value *body, const char *model, sim_plan *p)
{
  sim_server *s = r->srv;
  const sim_config *c = &s->cfg;
  const sim_profile *prof;
  knob_src k = {r, json_get(body, "sim")};
  char name[64], buf[32];
  int st_ttft, st_tps, st_jit, st;
  double d;

  if (k.sim && k.sim->type != JSON_OBJECT) {
    sim_reply_error(r, 400, "invalid_request_error", "sim", "invalid_sim_knob",
                    "The \"sim\" field must be an object of simulator knobs.");
    return -1;
  }
  for (size_t i = 0; k.sim && i < k.sim->u.object.n; i++) {
    const char *key = k.sim->u.object.members[i].key;
    size_t j = 0;
    while (known_fields[j] && strcmp(known_fields[j], key) != 0)
      j++;
    if (!known_fields[j]) {
      sim_reply_error(r, 400, "invalid_request_error", "sim", "invalid_sim_knob",
                      "Unknown simulator knob sim.%.64s.", key);
      return -1;
    }
  }

  memset(p, 0, sizeof *p);
  prof = sim_config_find_profile(c, model);
  st = knob_string(&k, "x-sim-profile", "profile", name, sizeof name);
  if (st == KNOB_BAD)
    return -1;
  if (st == KNOB_SET && !(prof = named_profile(c, name))) {
    sim_reply_error(r, 400, "invalid_request_error", "sim.profile", "invalid_sim_knob",
                    "Unknown simulator profile '%.64s'.", name);
    return -1;
  }
  snprintf(p->profile, sizeof p->profile, "%s", prof->name);
  p->ttft_ms = c->ttft_ms >= 0 ? c->ttft_ms : prof->ttft_ms;
  p->tokens_per_s = c->tokens_per_s >= 0 ? c->tokens_per_s : prof->tokens_per_s;
  p->jitter = c->jitter >= 0 ? c->jitter : prof->jitter;
  /* a TTFT asked for (server-wide or per request) is exact: no prefill */
  p->prefill_ms_per_1k = c->ttft_ms >= 0 ? 0 : prof->prefill_ms_per_1k;

  if ((st_ttft = knob_number(&k, "x-sim-ttft-ms", "ttft_ms", 3.6e6, &p->ttft_ms)) == KNOB_BAD ||
      (st_tps = knob_number(&k, "x-sim-tokens-per-s", "tokens_per_s", 1e9,
                            &p->tokens_per_s)) == KNOB_BAD ||
      (st_jit = knob_number(&k, "x-sim-jitter", "jitter", 5, &d)) == KNOB_BAD)
    return -1;
  if (st_ttft == KNOB_SET)
    p->prefill_ms_per_1k = 0;
  if (st_jit == KNOB_SET)
    p->jitter = d;
  else if (st_ttft == KNOB_SET || st_tps == KNOB_SET)
    p->jitter = 0;

  p->fp = c->fault_params;
  st = knob_string(&k, "x-sim-fault", "fault", name, sizeof name);
  if (st == KNOB_BAD)
    return -1;
  if (st == KNOB_SET) {
    if (sim_fault_parse(name, &p->fault) != 0) {
      sim_reply_error(r, 400, "invalid_request_error", "sim.fault", "invalid_sim_knob",
                      "Unknown simulator fault '%.64s' (see README: The simulator).", name);
      return -1;
    }
  } else {
    draw_fault(s, &p->fault);
  }
  if (knob_int(&k, "x-sim-fault-after", "fault_after", &p->fp.after_tokens) == KNOB_BAD ||
      knob_string(&k, "x-sim-retry-after", "retry_after", p->fp.retry_after,
                  sizeof p->fp.retry_after) == KNOB_BAD ||
      knob_int(&k, "x-sim-retry-after-ms", "retry_after_ms", &p->fp.retry_after_ms) == KNOB_BAD ||
      knob_bool(&k, "x-sim-should-retry", "should_retry", &p->fp.should_retry) == KNOB_BAD ||
      knob_int(&k, "x-sim-header-delay-ms", "header_delay_ms", &p->fp.header_delay_ms) ==
        KNOB_BAD ||
      knob_int(&k, "x-sim-stall-ms", "stall_ms", &p->fp.stall_ms) == KNOB_BAD ||
      knob_string(&k, "x-sim-error-message", "error_message", p->fp.message,
                  sizeof p->fp.message) == KNOB_BAD)
    return -1;
  st = knob_string(&k, "x-sim-error-body", "error_body", buf, sizeof buf);
  if (st == KNOB_BAD)
    return -1;
  if (st == KNOB_SET) {
    if (strcmp(buf, "json") == 0)
      p->fp.error_body = 1;
    else if (strcmp(buf, "html") == 0)
      p->fp.error_body = 2;
    else if (strcmp(buf, "empty") == 0)
      p->fp.error_body = 3;
    else {
      knob_bad(&k, "x-sim-error-body", "error_body", "json, html or empty");
      return -1;
    }
  }
  if (p->fault.kind != SIM_FAULT_NONE && attempts_over(&k, &p->fault) < 0)
    return -1;
  if (p->fault.kind != SIM_FAULT_NONE)
    sim_count_fault(s, &p->fault);
  p->rng = sim_rand(&s->rng);
  return 0;
}
