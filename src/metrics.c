#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rng.h"

/* ---- the histogram ---------------------------------------------------------- */

/* frexp() exponents run from -1073 (subnormals) to 1024; shifting them
 * keeps every bucket index non-negative. */
#define EXP_SHIFT 1074
#define SUB LLM_HIST_SUB_BUCKETS

struct llm_hist {
  size_t exact_max;
  double *vals;          /* the values while exact; NULL once past exact_max */
  size_t nvals, cap;
  int sorted, overflowed;
  uint64_t *buckets;     /* buckets[i] counts bucket index base + i */
  int32_t base;
  size_t nbuckets;
  uint64_t zeros;
  uint64_t count, rejected;
  double min, max, mean, m2;
};

llm_hist *llm_hist_new(size_t exact_max)
{
  llm_hist *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->exact_max = exact_max ? exact_max : LLM_HIST_EXACT_MAX;
  llm_hist_reset(h);
  return h;
}

void llm_hist_free(llm_hist *h)
{
  if (!h)
    return;
  free(h->vals);
  free(h->buckets);
  free(h);
}

void llm_hist_reset(llm_hist *h)
{
  size_t exact_max = h->exact_max;
  free(h->vals);
  free(h->buckets);
  memset(h, 0, sizeof *h);
  h->exact_max = exact_max;
  h->sorted = 1;
  h->min = INFINITY;
  h->max = -INFINITY;
}

static int32_t bucket_of(double v)
{
  int e;
  double m = frexp(v, &e); /* v = m * 2^e, m in [0.5, 1) */
  int sub = (int)((m - 0.5) * (2 * SUB));
  if (sub >= SUB)
    sub = SUB - 1;
  return (int32_t)(e + EXP_SHIFT) * SUB + sub;
}

static double bucket_mid(int32_t idx)
{
  int e = idx / SUB - EXP_SHIFT, sub = idx % SUB;
  double m = 0.5 + (sub + 0.5) / (2.0 * SUB);
  return ldexp(m, e);
}

/* Makes room for bucket idx, growing the range with some slack so that a
 * run of nearby values does not reallocate each time. */
static int bucket_reserve(llm_hist *h, int32_t idx)
{
  int32_t lo, hi;
  size_t n;
  uint64_t *b;
  if (h->nbuckets > 0 && idx >= h->base && (size_t)(idx - h->base) < h->nbuckets)
    return 0;
  if (h->nbuckets == 0) {
    lo = idx - SUB / 2;
    hi = idx + SUB / 2;
  } else {
    lo = idx < h->base ? idx - SUB : h->base;
    hi = idx >= h->base + (int32_t)h->nbuckets ? idx + SUB : h->base + (int32_t)h->nbuckets - 1;
  }
  if (lo < 0)
    lo = 0;
  n = (size_t)(hi - lo) + 1;
  b = calloc(n, sizeof *b);
  if (!b)
    return -1;
  if (h->nbuckets)
    memcpy(b + (h->base - lo), h->buckets, h->nbuckets * sizeof *b);
  free(h->buckets);
  h->buckets = b;
  h->base = lo;
  h->nbuckets = n;
  return 0;
}

static int keep_exact(llm_hist *h, double v)
{
  if (h->overflowed)
    return 0;
  if (h->nvals == h->exact_max) {
    /* from here on the buckets answer */
    free(h->vals);
    h->vals = NULL;
    h->nvals = h->cap = 0;
    h->overflowed = 1;
    return 0;
  }
  if (llm_grow_upto(&h->vals, &h->cap, h->nvals + 1, h->exact_max, sizeof *h->vals) != 0) {
    free(h->vals);
    h->vals = NULL;
    h->nvals = h->cap = 0;
    h->overflowed = 1;
    return -1;
  }
  if (h->nvals > 0 && v < h->vals[h->nvals - 1])
    h->sorted = 0;
  h->vals[h->nvals++] = v;
  return 0;
}

int llm_hist_add(llm_hist *h, double v)
{
  double delta;
  int rc = 0;
  if (!isfinite(v) || v < 0) {
    h->rejected++;
    return -1;
  }
  h->count++;
  delta = v - h->mean;
  h->mean += delta / (double)h->count;
  h->m2 += delta * (v - h->mean);
  if (v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
  if (v == 0) {
    h->zeros++;
  } else {
    int32_t idx = bucket_of(v);
    if (bucket_reserve(h, idx) == 0)
      h->buckets[idx - h->base]++;
    else
      rc = -1;
  }
  if (keep_exact(h, v) != 0)
    rc = -1;
  return rc;
}

uint64_t llm_hist_count(const llm_hist *h) { return h->count; }

int llm_hist_is_exact(const llm_hist *h) { return !h->overflowed; }

double llm_hist_error_bound(void) { return 1.0 / (2.0 * SUB); }

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest rank, 1-based: ceil(p/100 * n), within [1, n]. The small
 * tolerance keeps p*n/100 that is an integer in exact arithmetic from
 * rounding up to the next rank. */
uint64_t llm_nearest_rank(double p, uint64_t n)
{
  double x = p * (double)n / 100.0;
  double r = ceil(x - 1e-9 * (x > 1 ? x : 1));
  if (r < 1)
    return 1;
  if (r > (double)n)
    return n;
  return (uint64_t)r;
}

double llm_hist_percentile(llm_hist *h, double p)
{
  uint64_t r, cum;
  if (h->count == 0 || !(p >= 0 && p <= 100))
    return NAN;
  r = llm_nearest_rank(p, h->count);
  if (!h->overflowed) {
    if (!h->sorted) {
      qsort(h->vals, h->nvals, sizeof *h->vals, cmp_double);
      h->sorted = 1;
    }
    return h->vals[r - 1];
  }
  if (r == 1)
    return h->min;
  if (r == h->count)
    return h->max;
  if (r <= h->zeros)
    return 0;
  cum = h->zeros;
  for (size_t i = 0; i < h->nbuckets; i++) {
    cum += h->buckets[i];
    if (cum >= r) {
      double v = bucket_mid(h->base + (int32_t)i);
      return v < h->min ? h->min : v > h->max ? h->max : v;
    }
  }
  return h->max; /* only when a bucket could not be allocated */
}

void llm_hist_summary(llm_hist *h, llm_summary *out)
{
  memset(out, 0, sizeof *out);
  out->count = h->count;
  out->rejected = h->rejected;
  out->exact = !h->overflowed;
  if (h->count == 0) {
    out->min = out->max = out->mean = out->stdev = NAN;
    out->p50 = out->p90 = out->p95 = out->p99 = NAN;
    return;
  }
  out->min = h->min;
  out->max = h->max;
  out->mean = h->mean;
  out->stdev = h->count > 1 ? sqrt(h->m2 / (double)(h->count - 1)) : 0;
  out->p50 = llm_hist_percentile(h, 50);
  out->p90 = llm_hist_percentile(h, 90);
  out->p95 = llm_hist_percentile(h, 95);
  out->p99 = llm_hist_percentile(h, 99);
}

/* ---- the call collector ---------------------------------------------------------- */

#define KEEP_MAX_DEFAULT 100000

/* One kept call: 48 bytes. */
typedef struct rec {
  uint64_t key;
  double latency, ttft, cost;
  uint32_t prompt, completion;
  uint8_t flags;
} rec;

struct llm_callstats {
  size_t keep_max;
  rec *recs;
  size_t nrecs, cap;
  uint64_t seen;
  llm_rng rng;
  llm_hist *hist[3]; /* latency, ttft, lookup */
  llm_callstats_totals c;
};

uint64_t llm_case_key(const char *id, size_t len)
{
  /* FNV-1a, 64-bit (http://www.isthe.com/chongo/tech/comp/fnv/) */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)id[i];
    h *= 0x100000001b3ULL;
  }
  return h ? h : 1;
}

llm_callstats *llm_callstats_new(size_t keep_max)
{
  llm_callstats *cs = calloc(1, sizeof *cs);
  if (!cs)
    return NULL;
  cs->keep_max = keep_max ? keep_max : KEEP_MAX_DEFAULT;
  for (int i = 0; i < 3; i++) {
    cs->hist[i] = llm_hist_new(0);
    if (!cs->hist[i]) {
      llm_callstats_free(cs);
      return NULL;
    }
  }
  llm_callstats_reset(cs);
  return cs;
}

void llm_callstats_free(llm_callstats *cs)
{
  if (!cs)
    return;
  for (int i = 0; i < 3; i++)
    llm_hist_free(cs->hist[i]);
  free(cs->recs);
  free(cs);
}

void llm_callstats_reset(llm_callstats *cs)
{
  for (int i = 0; i < 3; i++)
    llm_hist_reset(cs->hist[i]);
  free(cs->recs);
  cs->recs = NULL;
  cs->nrecs = cs->cap = 0;
  cs->seen = 0;
  llm_rng_seed(&cs->rng, 0x6c6c6d72756eULL);
  memset(&cs->c, 0, sizeof cs->c);
  cs->c.first_start = cs->c.last_end = NAN;
}

static uint32_t tokens32(double v)
{
  if (!(v > 0))
    return 0;
  return v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

static double or_zero(double v) { return isfinite(v) && v > 0 ? v : 0; }

static int keep_rec(llm_callstats *cs, const rec *r)
{
  cs->seen++;
  if (cs->nrecs < cs->keep_max) {
    if (llm_grow_upto(&cs->recs, &cs->cap, cs->nrecs + 1, cs->keep_max, sizeof *cs->recs) != 0)
      return -1;
    cs->recs[cs->nrecs++] = *r;
    return 0;
  }
  /* Algorithm R: every call seen so far is kept with the same chance. */
  {
    uint64_t j = llm_rng_below(&cs->rng, cs->seen);
    if (j < cs->keep_max)
      cs->recs[j] = *r;
  }
  return 0;
}

int llm_callstats_add(llm_callstats *cs, const llm_call_sample *s)
{
  llm_callstats_totals *c = &cs->c;
  unsigned f = s->flags;
  int hit = (f & LLM_CALL_HIT) != 0, ok = (f & LLM_CALL_OK) && !(f & LLM_CALL_ERROR);
  double prompt = hit ? 0 : or_zero(s->prompt_tokens);
  double completion = hit ? 0 : or_zero(s->completion_tokens);
  double cost = s->cost;
  rec r;

  /* Policy: a hit paid for nothing; a failed call that reported no usage
   * was not billed for any token. Anything else without a cost is unknown. */
  if (hit)
    cost = 0;
  else if (isnan(cost) && (f & LLM_CALL_ERROR) && !(f & LLM_CALL_PARTIAL) &&
           prompt == 0 && completion == 0)
    cost = 0;

  c->calls++;
  if (ok)
    c->ok++;
  if (f & LLM_CALL_ERROR)
    c->errors++;
  if (f & LLM_CALL_PARTIAL)
    c->partial++;
  if (hit)
    c->hits++;
  if (isfinite(cost))
    c->cost += cost;
  else
    c->cost_unknown++;
  c->prompt_tokens += prompt;
  c->completion_tokens += completion;
  c->cached_tokens += hit ? 0 : or_zero(s->cached_tokens);
  c->retries += (uint64_t)or_zero(s->retries);
  if (isfinite(s->start)) {
    double end = s->start + (isfinite(s->latency_ms) && s->latency_ms > 0 ? s->latency_ms / 1000 : 0);
    if (isnan(c->first_start) || s->start < c->first_start)
      c->first_start = s->start;
    if (isnan(c->last_end) || end > c->last_end)
      c->last_end = end;
  }
  if (hit) {
    llm_hist_add(cs->hist[2], s->latency_ms);
  } else if (ok) {
    llm_hist_add(cs->hist[0], s->latency_ms);
    if (!isnan(s->ttft_ms))
      llm_hist_add(cs->hist[1], s->ttft_ms);
  }

  r.key = s->case_id ? llm_case_key(s->case_id, s->case_len) : 0;
  r.latency = s->latency_ms;
  r.ttft = s->ttft_ms;
  r.cost = cost;
  r.prompt = tokens32(prompt);
  r.completion = tokens32(completion);
  r.flags = (uint8_t)f;
  return keep_rec(cs, &r);
}

uint64_t llm_callstats_calls(const llm_callstats *cs) { return cs->c.calls; }

int llm_callstats_sampled(const llm_callstats *cs) { return cs->seen > cs->nrecs; }

double llm_callstats_weight(const llm_callstats *cs)
{
  return cs->nrecs ? (double)cs->seen / (double)cs->nrecs : 1;
}

llm_hist *llm_callstats_hist(llm_callstats *cs, llm_column col)
{
  switch (col) {
  case LLM_COL_LATENCY: return cs->hist[0];
  case LLM_COL_TTFT: return cs->hist[1];
  case LLM_COL_LOOKUP: return cs->hist[2];
  default: return NULL;
  }
}

void llm_callstats_summary(llm_callstats *cs, llm_callstats_totals *out)
{
  *out = cs->c;
  llm_hist_summary(cs->hist[0], &out->latency);
  llm_hist_summary(cs->hist[1], &out->ttft);
  llm_hist_summary(cs->hist[2], &out->lookup);
}

/* The value of a kept call in a column, or NaN when it has none there. */
static double column_value(const rec *r, llm_column col)
{
  int hit = (r->flags & LLM_CALL_HIT) != 0;
  int ok = (r->flags & LLM_CALL_OK) && !(r->flags & LLM_CALL_ERROR);
  switch (col) {
  case LLM_COL_LATENCY: return ok && !hit ? r->latency : NAN;
  case LLM_COL_TTFT: return ok && !hit ? r->ttft : NAN;
  case LLM_COL_LOOKUP: return hit ? r->latency : NAN;
  case LLM_COL_COST: return r->cost;
  case LLM_COL_TOKENS: return (double)r->prompt + (double)r->completion;
  case LLM_COL_PROMPT: return r->prompt;
  case LLM_COL_COMPLETION: return r->completion;
  case LLM_COL_ERROR: return (r->flags & LLM_CALL_ERROR) ? 1 : 0;
  case LLM_COL_HIT: return hit ? 1 : 0;
  default: return NAN;
  }
}

int llm_callstats_column(const llm_callstats *cs, llm_column col,
                         double **values, uint64_t **keys, size_t *n)
{
  size_t m = 0;
  *values = NULL;
  *keys = NULL;
  *n = 0;
  if (cs->nrecs == 0)
    return 0;
  *values = malloc(cs->nrecs * sizeof **values);
  *keys = malloc(cs->nrecs * sizeof **keys);
  if (!*values || !*keys) {
    free(*values);
    free(*keys);
    *values = NULL;
    *keys = NULL;
    return -1;
  }
  for (size_t i = 0; i < cs->nrecs; i++) {
    double v = column_value(&cs->recs[i], col);
    if (!isfinite(v))
      continue;
    (*values)[m] = v;
    (*keys)[m] = cs->recs[i].key;
    m++;
  }
  *n = m;
  if (m == 0) {
    free(*values);
    free(*keys);
    *values = NULL;
    *keys = NULL;
  }
  return 0;
}
