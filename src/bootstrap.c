#include "bootstrap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

#define DEFAULT_REPS 1000
#define DEFAULT_LEVEL 0.95
#define DEFAULT_MAX_N 10000

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

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
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

/* An arm ready for resampling: its values, or a random max_n of them. */
typedef struct pool {
  double *v;
  size_t n;
  double scale;  /* n_all / n: brings a subsample's sum back to scale */
} pool;

static int pool_make(pool *p, const llm_boot_arm *arm, size_t max_n, llm_rng *rng)
{
  p->n = arm->n < max_n ? arm->n : max_n;
  p->scale = p->n ? (double)arm->n / (double)p->n : 1;
  p->v = malloc((arm->n ? arm->n : 1) * sizeof *p->v);
  if (!p->v)
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
  return 0;
}

static double pool_replicate(const pool *p, const llm_boot_opts *o, llm_rng *rng, double *scratch)
{
  if (o->stat == LLM_STAT_QUANTILE) {
    for (size_t i = 0; i < p->n; i++)
      scratch[i] = p->v[llm_rng_below(rng, p->n)];
    return quantile_inplace(scratch, p->n, o->q);
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
  if (pool_make(&pa, a, o->max_n, &rng) || pool_make(&pb, b, o->max_n, &rng))
    goto done;
  r->subsampled = pa.n < a->n || pb.n < b->n;
  eff = malloc((size_t)o->reps * sizeof *eff);
  scratch = malloc((pa.n > pb.n ? pa.n : pb.n) * sizeof *scratch + 1);
  if (!eff || !scratch)
    goto done;
  for (int i = 0; i < o->reps; i++) {
    double sa = pool_replicate(&pa, o, &rng, scratch);
    double sb = pool_replicate(&pb, o, &rng, scratch);
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
  free(pa.v);
  free(pb.v);
  free(eff);
  free(scratch);
  return rc;
}

/* ---- paired (cluster) ------------------------------------------------------------------ */

/* The sorted distinct keys of an arm; NULL when a value has no key. */
static uint64_t *distinct_keys(const llm_boot_arm *arm, size_t *nk)
{
  uint64_t *k;
  size_t m = 0;
  if (!arm->key || arm->n == 0)
    return NULL;
  k = malloc(arm->n * sizeof *k);
  if (!k)
    return NULL;
  for (size_t i = 0; i < arm->n; i++) {
    if (arm->key[i] == 0) {
      free(k);
      return NULL;
    }
    k[i] = arm->key[i];
  }
  qsort(k, arm->n, sizeof *k, cmp_u64);
  for (size_t i = 0; i < arm->n; i++)
    if (m == 0 || k[m - 1] != k[i])
      k[m++] = k[i];
  *nk = m;
  return k;
}

int llm_boot_pairable(const llm_boot_arm *a, const llm_boot_arm *b)
{
  size_t na = 0, nb = 0;
  uint64_t *ka = distinct_keys(a, &na), *kb = distinct_keys(b, &nb);
  int same = ka && kb && na == nb && memcmp(ka, kb, na * sizeof *ka) == 0;
  free(ka);
  free(kb);
  return same;
}

/* An arm's values grouped by case: case c holds v[off[c] .. off[c+1]). */
typedef struct clusters {
  double *v, *sum;
  size_t *off;
} clusters;

static size_t key_index(const uint64_t *keys, size_t nk, uint64_t key)
{
  size_t lo = 0, hi = nk;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (keys[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int clusters_make(clusters *c, const llm_boot_arm *arm, const uint64_t *keys, size_t nk)
{
  size_t *fill;
  c->v = malloc(arm->n * sizeof *c->v);
  c->sum = calloc(nk, sizeof *c->sum);
  c->off = calloc(nk + 1, sizeof *c->off);
  fill = calloc(nk, sizeof *fill);
  if (!c->v || !c->sum || !c->off || !fill) {
    free(fill);
    return -1;
  }
  for (size_t i = 0; i < arm->n; i++)
    c->off[key_index(keys, nk, arm->key[i]) + 1]++;
  for (size_t i = 0; i < nk; i++)
    c->off[i + 1] += c->off[i];
  for (size_t i = 0; i < arm->n; i++) {
    size_t k = key_index(keys, nk, arm->key[i]);
    c->v[c->off[k] + fill[k]++] = arm->v[i];
    c->sum[k] += arm->v[i];
  }
  free(fill);
  return 0;
}

static void clusters_free(clusters *c)
{
  free(c->v);
  free(c->sum);
  free(c->off);
}

/* Grows *buf to hold at least need doubles. */
static int reserve(double **buf, size_t *cap, size_t need)
{
  double *nb;
  size_t ncap = *cap ? *cap : 256;
  if (need <= *cap)
    return 0;
  while (ncap < need)
    ncap *= 2;
  nb = realloc(*buf, ncap * sizeof *nb);
  if (!nb)
    return -1;
  *buf = nb;
  *cap = ncap;
  return 0;
}

/* One arm's statistic over the drawn cases. */
static double cluster_stat(const clusters *c, const size_t *drawn, size_t k, double scale,
                           const llm_boot_opts *o, double **buf, size_t *cap, int *oom)
{
  if (o->stat == LLM_STAT_QUANTILE) {
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
      size_t cl = drawn[i], len = c->off[cl + 1] - c->off[cl];
      if (reserve(buf, cap, m + len)) {
        *oom = 1;
        return NAN;
      }
      memcpy(*buf + m, c->v + c->off[cl], len * sizeof **buf);
      m += len;
    }
    return m ? quantile_inplace(*buf, m, o->q) : NAN;
  } else {
    double sum = 0;
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
      sum += c->sum[drawn[i]];
      m += c->off[drawn[i] + 1] - c->off[drawn[i]];
    }
    if (m == 0)
      return NAN;
    return o->stat == LLM_STAT_SUM ? sum * scale : sum / (double)m;
  }
}

static int compare_paired(const llm_boot_arm *a, const llm_boot_arm *b,
                          const llm_boot_opts *o, llm_boot_result *r)
{
  llm_rng rng;
  size_t nk = 0, k;
  uint64_t *keys = distinct_keys(a, &nk);
  clusters ca = {0}, cb = {0};
  size_t *active = NULL, *drawn = NULL, cap = 0;
  double *eff = NULL, *buf = NULL, scale;
  int nrep = 0, rc = -1, oom = 0;
  if (!keys)
    return -1;
  llm_rng_seed(&rng, o->seed);
  if (clusters_make(&ca, a, keys, nk) || clusters_make(&cb, b, keys, nk))
    goto done;
  active = malloc(nk * sizeof *active);
  drawn = malloc(nk * sizeof *drawn);
  eff = malloc((size_t)o->reps * sizeof *eff);
  if (!active || !drawn || !eff)
    goto done;
  for (size_t i = 0; i < nk; i++)
    active[i] = i;
  k = nk < o->max_n ? nk : o->max_n;
  for (size_t i = 0; i < k && k < nk; i++) {
    size_t j = i + (size_t)llm_rng_below(&rng, nk - i), t = active[i];
    active[i] = active[j];
    active[j] = t;
  }
  r->subsampled = k < nk;
  r->clusters = nk;
  scale = (double)nk / (double)k;
  for (int i = 0; i < o->reps && !oom; i++) {
    double sa, sb, e;
    for (size_t j = 0; j < k; j++)
      drawn[j] = active[llm_rng_below(&rng, k)];
    sa = cluster_stat(&ca, drawn, k, scale, o, &buf, &cap, &oom);
    sb = cluster_stat(&cb, drawn, k, scale, o, &buf, &cap, &oom);
    e = effect_of(sa, sb, o->diff);
    if (!isnan(e))
      eff[nrep++] = e;
  }
  if (!oom) {
    interval(eff, nrep, o->reps, o->level, r);
    if (r->subsampled) {
      double sa = cluster_stat(&ca, active, k, scale, o, &buf, &cap, &oom);
      double sb = cluster_stat(&cb, active, k, scale, o, &buf, &cap, &oom);
      recentre(r, effect_of(sa, sb, o->diff), o->diff);
    }
    rc = oom ? -1 : 0;
  }
done:
  free(keys);
  clusters_free(&ca);
  clusters_free(&cb);
  free(active);
  free(drawn);
  free(eff);
  free(buf);
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
  if (a->n < 2) {
    free(scratch);
    return 0;
  }
  llm_rng_seed(&rng, o.seed);
  eff = malloc((size_t)o.reps * sizeof *eff);
  if (!eff || pool_make(&p, a, o.max_n, &rng))
    goto done;
  for (int i = 0; i < o.reps; i++) {
    double s = pool_replicate(&p, &o, &rng, scratch);
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
  free(p.v);
  free(eff);
  free(scratch);
  return rc;
}
