#include "bootstrap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

#define DEFAULT_REPS 1000
#define DEFAULT_LEVEL 0.95
#define DEFAULT_MAX_N 3000

/* ---- statistics ---------------------------------------------------------------- */

/* The k-th smallest (0-based) of a[0..n), reordering a (Hoare's selection
 * with a median-of-three pivot; expected linear time). */
static double select_kth(double *a, size_t n, size_t k)
{
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
    double x = a[lo], y = a[mid], z = a[hi], pivot, t;
    pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        if (j == 0)
          break;
        j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      break;
  }
  return a[k];
}

static double quantile_inplace(double *a, size_t n, double q)
{
  return select_kth(a, n, (size_t)llm_nearest_rank(q, n) - 1);
}

double llm_stat_of(const double *v, size_t n, llm_stat stat, double q, double *scratch)
{
  double sum = 0;
  if (n == 0)
    return NAN;
  if (stat == LLM_STAT_QUANTILE) {
    memcpy(scratch, v, n * sizeof *v);
    return quantile_inplace(scratch, n, q);
  }
  for (size_t i = 0; i < n; i++)
    sum += v[i];
  return stat == LLM_STAT_SUM ? sum : sum / (double)n;
}

static double effect_of(double a, double b, int diff)
{
  if (diff)
    return b - a;
  if (a == 0 || !isfinite(a) || !isfinite(b))
    return NAN;
  return b / a;
}

static void opts_defaults(const llm_boot_opts *in, llm_boot_opts *o)
{
  *o = *in;
  if (o->reps <= 0)
    o->reps = DEFAULT_REPS;
  if (!(o->level > 0 && o->level < 1))
    o->level = DEFAULT_LEVEL;
  if (o->max_n == 0)
    o->max_n = DEFAULT_MAX_N;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The percentile interval of the defined replicate effects. */
static void interval(double *eff, int nrep, int total, double level, llm_boot_result *r)
{
  double alpha = (1 - level) / 2;
  r->reps_used = nrep;
  if (nrep < 2 || nrep * 2 < total) {
    r->lo = r->hi = NAN;
    return;
  }
  qsort(eff, (size_t)nrep, sizeof *eff, cmp_double);
  r->lo = eff[(size_t)floor(alpha * (nrep - 1))];
  r->hi = eff[(size_t)ceil((1 - alpha) * (nrep - 1))];
}

/* A subsample's interval sits around the subsample's own estimate, which
 * strays from the full data's by about the subsample's standard error.
 * Moving it to the full estimate (keeping its width, which is already
 * wider than the full data's) keeps it honest and conservative. */
static void recentre(llm_boot_result *r, double sub_effect, int diff)
{
  if (isnan(r->lo) || isnan(sub_effect) || isnan(r->effect))
    return;
  if (diff) {
    r->lo += r->effect - sub_effect;
    r->hi += r->effect - sub_effect;
  } else if (sub_effect > 0 && r->effect > 0) {
    r->lo *= r->effect / sub_effect;
    r->hi *= r->effect / sub_effect;
  }
}

/* ---- unpaired ------------------------------------------------------------------------ */

/* An arm ready for resampling: its values, or a random max_n of them,
 * sorted when a quantile is wanted (see pool_replicate). */
typedef struct pool {
  double *v;
  uint32_t *counts;  /* per value: times drawn in this replicate */
  size_t n;
  double scale;      /* calls per value: brings a sum back to scale */
} pool;

static int pool_make(pool *p, const llm_boot_arm *arm, const llm_boot_opts *o, llm_rng *rng)
{
  p->n = arm->n < o->max_n ? arm->n : o->max_n;
  p->scale = (p->n ? (double)arm->n / (double)p->n : 1) * (arm->weight > 0 ? arm->weight : 1);
  p->v = malloc((arm->n ? arm->n : 1) * sizeof *p->v);
  p->counts = malloc((p->n ? p->n : 1) * sizeof *p->counts);
  if (!p->v || !p->counts)
    return -1;
  memcpy(p->v, arm->v, arm->n * sizeof *p->v);
  /* partial Fisher-Yates: the first p->n are a uniform subset */
  if (p->n < arm->n)
    for (size_t i = 0; i < p->n; i++) {
      size_t j = i + (size_t)llm_rng_below(rng, arm->n - i);
      double t = p->v[i];
      p->v[i] = p->v[j];
      p->v[j] = t;
    }
  if (o->stat == LLM_STAT_QUANTILE)
    qsort(p->v, p->n, sizeof *p->v, cmp_double);
  return 0;
}

static void pool_free(pool *p)
{
  free(p->v);
  free(p->counts);
}

/* One replicate's statistic. A quantile needs no reordering: with the pool
 * sorted, the rank-th smallest drawn value is found by counting how often
 * each position was drawn and walking the counts (linear, no swaps). */
static double pool_replicate(const pool *p, const llm_boot_opts *o, llm_rng *rng)
{
  if (o->stat == LLM_STAT_QUANTILE) {
    uint64_t target = llm_nearest_rank(o->q, p->n), cum = 0;
    memset(p->counts, 0, p->n * sizeof *p->counts);
    for (size_t i = 0; i < p->n; i++)
      p->counts[llm_rng_below(rng, p->n)]++;
    for (size_t i = 0; i < p->n; i++) {
      cum += p->counts[i];
      if (cum >= target)
        return p->v[i];
    }
    return p->v[p->n - 1];
  } else {
    double sum = 0;
    for (size_t i = 0; i < p->n; i++)
      sum += p->v[llm_rng_below(rng, p->n)];
    return o->stat == LLM_STAT_SUM ? sum * p->scale : sum / (double)p->n;
  }
}

static int compare_unpaired(const llm_boot_arm *a, const llm_boot_arm *b,
                            const llm_boot_opts *o, llm_boot_result *r)
{
  llm_rng rng;
  pool pa = {0}, pb = {0};
  double *eff = NULL, *scratch = NULL;
  int nrep = 0, rc = -1;
  llm_rng_seed(&rng, o->seed);
  if (pool_make(&pa, a, o, &rng) || pool_make(&pb, b, o, &rng))
    goto done;
  r->subsampled = pa.n < a->n || pb.n < b->n;
  eff = malloc((size_t)o->reps * sizeof *eff);
  scratch = malloc((pa.n > pb.n ? pa.n : pb.n) * sizeof *scratch + 1);
  if (!eff || !scratch)
    goto done;
  for (int i = 0; i < o->reps; i++) {
    double sa = pool_replicate(&pa, o, &rng);
    double sb = pool_replicate(&pb, o, &rng);
    double e = effect_of(sa, sb, o->diff);
    if (!isnan(e))
      eff[nrep++] = e;
  }
  interval(eff, nrep, o->reps, o->level, r);
  if (r->subsampled)
    recentre(r, effect_of(llm_stat_of(pa.v, pa.n, o->stat, o->q, scratch) * (o->stat == LLM_STAT_SUM ? pa.scale : 1),
                          llm_stat_of(pb.v, pb.n, o->stat, o->q, scratch) * (o->stat == LLM_STAT_SUM ? pb.scale : 1),
                          o->diff), o->diff);
  rc = 0;
done:
  pool_free(&pa);
  pool_free(&pb);
  free(eff);
  free(scratch);
  return rc;
}

/* ---- paired (cluster) ------------------------------------------------------------------ */

/* Case key -> cluster number (0..n-1, in order of first appearance): an
 * open-addressing table, so mapping a million values costs one pass. */
typedef struct keymap {
  uint64_t *keys;   /* 0: empty slot (case keys are never 0) */
  uint32_t *idx;
  size_t mask, n;
} keymap;

static void keymap_free(keymap *m)
{
  free(m->keys);
  free(m->idx);
}

static size_t slot_of(const keymap *m, uint64_t key)
{
  size_t h = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 17) & m->mask;
  while (m->keys[h] != 0 && m->keys[h] != key)
    h = (h + 1) & m->mask;
  return h;
}

/* The map of an arm's keys; -1 when a value has no key (or no memory). */
static int keymap_build(keymap *m, const llm_boot_arm *arm)
{
  size_t cap = 16;
  memset(m, 0, sizeof *m);
  if (!arm->key || arm->n == 0)
    return -1;
  while (cap < arm->n * 2)
    cap *= 2;
  m->keys = calloc(cap, sizeof *m->keys);
  m->idx = malloc(cap * sizeof *m->idx);
  m->mask = cap - 1;
  if (!m->keys || !m->idx) {
    keymap_free(m);
    return -1;
  }
  for (size_t i = 0; i < arm->n; i++) {
    size_t h;
    if (arm->key[i] == 0) {
      keymap_free(m);
      return -1;
    }
    h = slot_of(m, arm->key[i]);
    if (m->keys[h] == 0) {
      m->keys[h] = arm->key[i];
      m->idx[h] = (uint32_t)m->n++;
    }
  }
  return 0;
}

/* The cluster of key, or -1 when the map does not have it. */
static long keymap_find(const keymap *m, uint64_t key)
{
  size_t h;
  if (key == 0)
    return -1;
  h = slot_of(m, key);
  return m->keys[h] == key ? (long)m->idx[h] : -1;
}

/* 1 when b covers exactly the cases of m (built from a). */
static int same_cases(const keymap *m, const llm_boot_arm *b)
{
  unsigned char *seen;
  size_t count = 0;
  if (!b->key || b->n == 0)
    return 0;
  seen = calloc(m->n, 1);
  if (!seen)
    return 0;
  for (size_t i = 0; i < b->n; i++) {
    long c = keymap_find(m, b->key[i]);
    if (c < 0) {
      free(seen);
      return 0;
    }
    if (!seen[c]) {
      seen[c] = 1;
      count++;
    }
  }
  free(seen);
  return count == m->n;
}

int llm_boot_pairable(const llm_boot_arm *a, const llm_boot_arm *b)
{
  keymap m;
  int same;
  if (keymap_build(&m, a) != 0)
    return 0;
  same = same_cases(&m, b);
  keymap_free(&m);
  return same;
}

/* An arm's values grouped by case: case c holds v[off[c] .. off[c+1]). */
typedef struct clusters {
  double *v, *sum;
  size_t *off;
} clusters;

static int clusters_make(clusters *c, const llm_boot_arm *arm, const keymap *m)
{
  size_t nk = m->n, *fill;
  uint32_t *cl = malloc((arm->n ? arm->n : 1) * sizeof *cl);
  c->v = malloc((arm->n ? arm->n : 1) * sizeof *c->v);
  c->sum = calloc(nk, sizeof *c->sum);
  c->off = calloc(nk + 1, sizeof *c->off);
  fill = calloc(nk, sizeof *fill);
  if (!cl || !c->v || !c->sum || !c->off || !fill) {
    free(cl);
    free(fill);
    return -1;
  }
  for (size_t i = 0; i < arm->n; i++) {
    cl[i] = (uint32_t)keymap_find(m, arm->key[i]); /* pairable: always found */
    c->off[cl[i] + 1]++;
  }
  for (size_t i = 0; i < nk; i++)
    c->off[i + 1] += c->off[i];
  for (size_t i = 0; i < arm->n; i++) {
    size_t k = cl[i];
    c->v[c->off[k] + fill[k]++] = arm->v[i];
    c->sum[k] += arm->v[i];
  }
  free(cl);
  free(fill);
  return 0;
}

static void clusters_free(clusters *c)
{
  free(c->v);
  free(c->sum);
  free(c->off);
}

/* A value of an active case, for quantiles: sorted by value once, then
 * each replicate walks them weighting each by how often its case was
 * drawn (the weighted nearest rank), with no copying or reordering. */
typedef struct tagged {
  double v;
  uint32_t slot;  /* the case's position among the active cases */
} tagged;

static int cmp_tagged(const void *a, const void *b)
{
  double x = ((const tagged *)a)->v, y = ((const tagged *)b)->v;
  return (x > y) - (x < y);
}

/* The active cases' values of one arm, sorted; NULL when out of memory. */
static tagged *tagged_make(const clusters *c, const size_t *active, size_t k, size_t *n)
{
  size_t m = 0;
  tagged *t;
  for (size_t s = 0; s < k; s++)
    m += c->off[active[s] + 1] - c->off[active[s]];
  t = malloc((m ? m : 1) * sizeof *t);
  if (!t)
    return NULL;
  m = 0;
  for (size_t s = 0; s < k; s++)
    for (size_t i = c->off[active[s]]; i < c->off[active[s] + 1]; i++) {
      t[m].v = c->v[i];
      t[m].slot = (uint32_t)s;
      m++;
    }
  qsort(t, m, sizeof *t, cmp_tagged);
  *n = m;
  return t;
}

/* One arm's statistic when active case s was drawn mult[s] times. */
static double cluster_stat(const clusters *c, const size_t *active, size_t k, const uint32_t *mult,
                           const tagged *t, size_t nt, double scale, const llm_boot_opts *o)
{
  double sum = 0, weight = 0;
  for (size_t s = 0; s < k; s++) {
    if (mult[s] == 0)
      continue;
    sum += mult[s] * c->sum[active[s]];
    weight += (double)mult[s] * (double)(c->off[active[s] + 1] - c->off[active[s]]);
  }
  if (weight == 0)
    return NAN;
  if (o->stat == LLM_STAT_QUANTILE) {
    uint64_t target = llm_nearest_rank(o->q, (uint64_t)weight), cum = 0;
    for (size_t i = 0; i < nt; i++) {
      cum += mult[t[i].slot];
      if (cum >= target)
        return t[i].v;
    }
    return nt ? t[nt - 1].v : NAN;
  }
  return o->stat == LLM_STAT_SUM ? sum * scale : sum / weight;
}

static int compare_paired(const llm_boot_arm *a, const llm_boot_arm *b,
                          const llm_boot_opts *o, llm_boot_result *r)
{
  llm_rng rng;
  size_t nk, k, most = a->n > b->n ? a->n : b->n, nta = 0, ntb = 0;
  keymap m;
  clusters ca = {0}, cb = {0};
  size_t *active = NULL;
  uint32_t *mult = NULL;
  tagged *ta = NULL, *tb = NULL;
  double *eff = NULL, scale, wa, wb;
  int nrep = 0, rc = -1;
  if (keymap_build(&m, a) != 0)
    return -1;
  nk = m.n;
  llm_rng_seed(&rng, o->seed);
  if (clusters_make(&ca, a, &m) || clusters_make(&cb, b, &m))
    goto done;
  active = malloc(nk * sizeof *active);
  mult = malloc(nk * sizeof *mult);
  eff = malloc((size_t)o->reps * sizeof *eff);
  if (!active || !mult || !eff)
    goto done;
  for (size_t i = 0; i < nk; i++)
    active[i] = i;
  /* Bound the work: resample about max_n values a side, i.e. a random
   * subset of the cases when there are more values than that. */
  k = nk;
  if (most > o->max_n) {
    k = (size_t)ceil((double)nk * (double)o->max_n / (double)most);
    if (k < 2)
      k = nk < 2 ? nk : 2;
  }
  for (size_t i = 0; i < k && k < nk; i++) {
    size_t j = i + (size_t)llm_rng_below(&rng, nk - i), t = active[i];
    active[i] = active[j];
    active[j] = t;
  }
  if (o->stat == LLM_STAT_QUANTILE) {
    ta = tagged_make(&ca, active, k, &nta);
    tb = tagged_make(&cb, active, k, &ntb);
    if (!ta || !tb)
      goto done;
  }
  r->subsampled = k < nk;
  r->clusters = nk;
  scale = (double)nk / (double)k;
  wa = a->weight > 0 ? a->weight : 1;
  wb = b->weight > 0 ? b->weight : 1;
  for (int i = 0; i < o->reps; i++) {
    double sa, sb, e;
    memset(mult, 0, k * sizeof *mult);
    for (size_t j = 0; j < k; j++)
      mult[llm_rng_below(&rng, k)]++;
    sa = cluster_stat(&ca, active, k, mult, ta, nta, scale * wa, o);
    sb = cluster_stat(&cb, active, k, mult, tb, ntb, scale * wb, o);
    e = effect_of(sa, sb, o->diff);
    if (!isnan(e))
      eff[nrep++] = e;
  }
  interval(eff, nrep, o->reps, o->level, r);
  if (r->subsampled) {
    double sa, sb;
    for (size_t j = 0; j < k; j++)
      mult[j] = 1;
    sa = cluster_stat(&ca, active, k, mult, ta, nta, scale * wa, o);
    sb = cluster_stat(&cb, active, k, mult, tb, ntb, scale * wb, o);
    recentre(r, effect_of(sa, sb, o->diff), o->diff);
  }
  rc = 0;
done:
  keymap_free(&m);
  clusters_free(&ca);
  clusters_free(&cb);
  free(active);
  free(mult);
  free(ta);
  free(tb);
  free(eff);
  return rc;
}

/* ---- the entry points ---------------------------------------------------------------- */

int llm_boot_compare(const llm_boot_arm *a, const llm_boot_arm *b,
                     const llm_boot_opts *in, llm_boot_result *r)
{
  llm_boot_opts o;
  size_t big = a->n > b->n ? a->n : b->n;
  double *scratch;
  opts_defaults(in, &o);
  memset(r, 0, sizeof *r);
  scratch = malloc((big ? big : 1) * sizeof *scratch);
  if (!scratch)
    return -1;
  r->a = llm_stat_of(a->v, a->n, o.stat, o.q, scratch);
  r->b = llm_stat_of(b->v, b->n, o.stat, o.q, scratch);
  if (o.stat == LLM_STAT_SUM) {
    r->a *= a->weight > 0 ? a->weight : 1;
    r->b *= b->weight > 0 ? b->weight : 1;
  }
  free(scratch);
  r->effect = effect_of(r->a, r->b, o.diff);
  r->lo = r->hi = NAN;
  if (a->n < 2 || b->n < 2)
    return 0;
  if (o.pair != 0 && llm_boot_pairable(a, b)) {
    r->paired = 1;
    return compare_paired(a, b, &o, r);
  }
  return compare_unpaired(a, b, &o, r);
}

int llm_boot_ci(const llm_boot_arm *a, const llm_boot_opts *in,
                double *estimate, double *lo, double *hi)
{
  llm_boot_opts o;
  llm_boot_result r = {0};
  llm_rng rng;
  pool p = {0};
  double *eff = NULL, *scratch = NULL;
  int nrep = 0, rc = -1;
  opts_defaults(in, &o);
  *lo = *hi = NAN;
  scratch = malloc((a->n ? a->n : 1) * sizeof *scratch);
  if (!scratch)
    return -1;
  *estimate = llm_stat_of(a->v, a->n, o.stat, o.q, scratch);
  if (o.stat == LLM_STAT_SUM)
    *estimate *= a->weight > 0 ? a->weight : 1;
  if (a->n < 2) {
    free(scratch);
    return 0;
  }
  llm_rng_seed(&rng, o.seed);
  eff = malloc((size_t)o.reps * sizeof *eff);
  if (!eff || pool_make(&p, a, &o, &rng))
    goto done;
  for (int i = 0; i < o.reps; i++) {
    double s = pool_replicate(&p, &o, &rng);
    if (!isnan(s))
      eff[nrep++] = s;
  }
  interval(eff, nrep, o.reps, o.level, &r);
  if (p.n < a->n) {
    r.effect = *estimate;
    recentre(&r, llm_stat_of(p.v, p.n, o.stat, o.q, scratch) * (o.stat == LLM_STAT_SUM ? p.scale : 1), 1);
  }
  *lo = r.lo;
  *hi = r.hi;
  rc = 0;
done:
  pool_free(&p);
  free(eff);
  free(scratch);
  return rc;
}
