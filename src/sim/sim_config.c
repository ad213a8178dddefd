/* The simulator's configuration: profiles, fault rates and knobs, built by
 * the Lua binding (or a C test) and deep-copied into the server, plus the
 * fault names shared by the configuration and the per-request knobs. */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_config_init(sim_config *c)
{
  memset(c, 0, sizeof *c);
  c->ttft_ms = c->tokens_per_s = c->jitter = -1;
  snprintf(c->fault_params.retry_after, sizeof c->fault_params.retry_after, "1");
  c->fault_params.retry_after_ms = -1;
  c->fault_params.should_retry = -1;
  c->fault_params.header_delay_ms = 10000;
  c->fault_params.stall_ms = 600000; /* the SDKs' default request timeout */
  c->fault_params.after_tokens = -1;
  c->cache_ttl_s = 300; /* OpenAI: 5-10 minutes of inactivity (see sim_cache.c) */
  /* Anthropic's documented request_too_large limit; OpenAI does not
   * publish one for chat bodies. */
  c->max_body_bytes = (size_t)32 << 20;
  c->batch_turnaround_s = -1;
  c->batch_expire_s = 86400; /* OpenAI's only completion window, "24h" */
}

void sim_config_free(sim_config *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->nprofiles; i++)
    free(c->profiles[i].name);
  free(c->profiles);
  for (size_t i = 0; i < c->nmodels; i++)
    free(c->models[i]);
  free(c->models);
  free(c->faults);
  free(c->profile);
  memset(c, 0, sizeof *c);
}

sim_profile *sim_config_add_profile(sim_config *c, const char *name, double ttft_ms,
                                    double tokens_per_s, double jitter)
{
  sim_profile *p = NULL, *np;
  for (size_t i = 0; i < c->nprofiles; i++)
    if (strcmp(c->profiles[i].name, name) == 0)
      p = &c->profiles[i];
  if (!p) {
    char *dup = strdup(name);
    np = dup ? realloc(c->profiles, (c->nprofiles + 1) * sizeof *np) : NULL;
    if (!np) {
      free(dup);
      return NULL;
    }
    c->profiles = np;
    p = &c->profiles[c->nprofiles++];
    p->name = dup;
  }
  p->ttft_ms = ttft_ms > 0 ? ttft_ms : 0;
  p->tokens_per_s = tokens_per_s > 0 ? tokens_per_s : 0;
  p->jitter = jitter > 0 ? jitter : 0;
  p->prefill_ms_per_1k = 0;
  return p;
}

int sim_config_add_fault_rate(sim_config *c, const sim_fault *f, double rate)
{
  sim_fault_rate *nf;
  for (size_t i = 0; i < c->nfaults; i++)
    if (c->faults[i].fault.kind == f->kind && c->faults[i].fault.status == f->status) {
      c->faults[i].rate = rate;
      return 0;
    }
  nf = realloc(c->faults, (c->nfaults + 1) * sizeof *nf);
  if (!nf)
    return -1;
  c->faults = nf;
  c->faults[c->nfaults].fault = *f;
  c->faults[c->nfaults].rate = rate;
  c->nfaults++;
  return 0;
}

int sim_config_add_model(sim_config *c, const char *id)
{
  char *dup = strdup(id), **nm;
  nm = dup ? realloc(c->models, (c->nmodels + 1) * sizeof *nm) : NULL;
  if (!nm) {
    free(dup);
    return -1;
  }
  c->models = nm;
  c->models[c->nmodels++] = dup;
  return 0;
}

int sim_config_set_profile(sim_config *c, const char *name)
{
  char *dup = NULL;
  if (name && !(dup = strdup(name)))
    return -1;
  free(c->profile);
  c->profile = dup;
  return 0;
}

int sim_config_copy(sim_config *dst, const sim_config *src)
{
  *dst = *src;
  dst->profiles = NULL;
  dst->nprofiles = 0;
  dst->models = NULL;
  dst->nmodels = 0;
  dst->faults = NULL;
  dst->nfaults = 0;
  dst->profile = NULL;
  for (size_t i = 0; i < src->nprofiles; i++) {
    const sim_profile *p = &src->profiles[i];
    sim_profile *q = sim_config_add_profile(dst, p->name, p->ttft_ms, p->tokens_per_s, p->jitter);
    if (!q)
      goto fail;
    q->prefill_ms_per_1k = p->prefill_ms_per_1k;
  }
  for (size_t i = 0; i < src->nmodels; i++)
    if (sim_config_add_model(dst, src->models[i]) != 0)
      goto fail;
  for (size_t i = 0; i < src->nfaults; i++)
    if (sim_config_add_fault_rate(dst, &src->faults[i].fault, src->faults[i].rate) != 0)
      goto fail;
  if (sim_config_set_profile(dst, src->profile) != 0)
    goto fail;
  return 0;
fail:
  sim_config_free(dst);
  return -1;
}

static const sim_profile zero_profile = {(char *)"zero", 0, 0, 0, 0};

static const sim_profile *by_name(const sim_config *c, const char *name)
{
  for (size_t i = 0; i < c->nprofiles; i++)
    if (strcmp(c->profiles[i].name, name) == 0)
      return &c->profiles[i];
  return NULL;
}

/* The profile matched to a model by name (exact, else longest prefix),
 * or NULL. */
static const sim_profile *match_model(const sim_config *c, const char *model)
{
  const sim_profile *p, *best = NULL;
  size_t bestlen = 0, i = 0;
  char name[128];
  /* lower case, without "provider/" (llm.sim_profiles.lookup's rule) */
  const char *slash = strrchr(model, '/');
  for (const char *m = slash ? slash + 1 : model; *m && i + 1 < sizeof name; m++)
    name[i++] = (char)tolower((unsigned char)*m);
  name[i] = '\0';
  if ((p = by_name(c, name)) != NULL || (p = by_name(c, model)) != NULL)
    return p;
  for (size_t k = 0; k < c->nprofiles; k++) {
    size_t n = strlen(c->profiles[k].name);
    if (n > bestlen && strncmp(name, c->profiles[k].name, n) == 0) {
      best = &c->profiles[k];
      bestlen = n;
    }
  }
  return best;
}

const sim_profile *sim_config_find_profile(const sim_config *c, const char *model)
{
  const sim_profile *p;
  if (c->profile && (p = by_name(c, c->profile)) != NULL)
    return p;
  if (c->profile && strcmp(c->profile, "zero") == 0)
    return &zero_profile;
  if (model && (p = match_model(c, model)) != NULL)
    return p;
  if (model && strcmp(model, "zero") == 0)
    return &zero_profile;
  if ((p = by_name(c, "default")) != NULL)
    return p;
  return &zero_profile;
}

int sim_config_is_model_name(const char *name)
{
  size_t n = strlen(name);
  return n > 0 && strcmp(name, "zero") != 0 && strcmp(name, "default") != 0 &&
         name[n - 1] != '-' && name[n - 1] != '.';
}

int sim_config_knows_model(const sim_config *c, const char *model)
{
  const sim_profile *p;
  for (size_t i = 0; i < c->nmodels; i++)
    if (strcmp(c->models[i], model) == 0)
      return 1;
  p = match_model(c, model);
  return p && strcmp(p->name, "zero") != 0 && strcmp(p->name, "default") != 0;
}

/* ---- fault names --------------------------------------------------------------- */

static const struct {
  const char *name;
  sim_fault_kind kind;
} fault_names[] = {
  {"none", SIM_FAULT_NONE},
  {"insufficient_quota", SIM_FAULT_QUOTA},
  {"drop_before_headers", SIM_FAULT_DROP_BEFORE_HEADERS},
  {"drop", SIM_FAULT_DROP_BEFORE_HEADERS},
  {"drop_before_body", SIM_FAULT_DROP_BEFORE_BODY},
  {"drop_mid_stream", SIM_FAULT_DROP_MID_STREAM},
  {"malformed_json", SIM_FAULT_MALFORMED_JSON},
  {"error_chunk", SIM_FAULT_ERROR_CHUNK},
  {"stall", SIM_FAULT_STALL},
  {"slow_headers", SIM_FAULT_SLOW_HEADERS},
};

int sim_fault_parse(const char *name, sim_fault *out)
{
  if (!name)
    return -1;
  for (size_t i = 0; i < sizeof fault_names / sizeof *fault_names; i++)
    if (strcmp(name, fault_names[i].name) == 0) {
      out->kind = fault_names[i].kind;
      out->status = out->kind == SIM_FAULT_QUOTA ? 429 : 0;
      return 0;
    }
  if (strlen(name) == 3 && name[0] >= '4' && name[0] <= '5' && name[1] >= '0' &&
      name[1] <= '9' && name[2] >= '0' && name[2] <= '9') {
    out->status = atoi(name);
    out->kind = out->status == 429 ? SIM_FAULT_RATE_LIMIT : SIM_FAULT_STATUS;
    return 0;
  }
  return -1;
}

const char *sim_fault_name(const sim_fault *f, char *buf, size_t n)
{
  if (f->kind == SIM_FAULT_STATUS || f->kind == SIM_FAULT_RATE_LIMIT) {
    snprintf(buf, n, "%d", f->kind == SIM_FAULT_RATE_LIMIT ? 429 : f->status);
    return buf;
  }
  for (size_t i = 0; i < sizeof fault_names / sizeof *fault_names; i++)
    if (fault_names[i].kind == f->kind) {
      snprintf(buf, n, "%s", fault_names[i].name);
      return buf;
    }
  snprintf(buf, n, "?");
  return buf;
}
