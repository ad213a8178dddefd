/* The metrics engine: percentiles against exact sorted references on
 * random data (exact mode and histogram mode within the documented error
 * bound), summary statistics, refused values, and the call collector's
 * counters and cost policy. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "metrics.h"
#include "rng.h"

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The exact nearest-rank percentile of sorted values. */
static double exact_percentile(const double *sorted, size_t n, double p)
{
  size_t r = (size_t)ceil(p * (double)n / 100.0 - 1e-9);
  if (r < 1)
    r = 1;
  if (r > n)
    r = n;
  return sorted[r - 1];
}

static const double ps[] = {0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100};
#define NPS (sizeof ps / sizeof ps[0])

static double draw(llm_rng *rng, int dist)
{
  double u = llm_rng_unit(rng);
  switch (dist) {
  case 0: return u * 1000;                                   /* uniform ms */
  case 1: return -log(1 - u) * 250;                          /* exponential */
  case 2: return exp(6 + 1.5 * sqrt(-2 * log(1 - u)) * cos(6.283185307 * llm_rng_unit(rng))); /* lognormal */
  case 3: return pow(10, -3 + 12 * u);                       /* 15 decades */
  default: return floor(u * 5) * 100;                        /* few distinct values, zeros */
  }
}

/* Worst relative error over all percentiles, for data from dist. */
static double worst_error(int dist, size_t n, size_t exact_max, int *was_exact)
{
  llm_rng rng;
  llm_hist *h = llm_hist_new(exact_max);
  double *v = malloc(n * sizeof *v), worst = 0;
  int refused = 0;
  llm_rng_seed(&rng, 42 + (uint64_t)dist);
  for (size_t i = 0; i < n; i++) {
    v[i] = draw(&rng, dist);
    refused += llm_hist_add(h, v[i]) != 0;
  }
  CHECK_INT(refused, 0);
  qsort(v, n, sizeof *v, cmp_double);
  for (size_t i = 0; i < NPS; i++) {
    double want = exact_percentile(v, n, ps[i]), got = llm_hist_percentile(h, ps[i]);
    double err = want == 0 ? fabs(got) : fabs(got - want) / want;
    if (err > worst)
      worst = err;
  }
  *was_exact = llm_hist_is_exact(h);
  llm_hist_free(h);
  free(v);
  return worst;
}

static void test_exact_mode(void)
{
  for (int dist = 0; dist < 5; dist++)
    for (size_t n = 1; n <= 2000; n = n * 3 + 1) {
      int exact;
      double e = worst_error(dist, n, 0, &exact);
      CHECK(exact);
      if (e != 0)
        check_fail(__FILE__, __LINE__, "exact mode dist %d n %zu: error %g", dist, n, e);
      else
        check_passed++;
    }
}

static void test_histogram_mode(void)
{
  double bound = llm_hist_error_bound(), overall = 0;
  CHECK(bound <= 0.01);
  CHECK(fabs(bound - 1.0 / 256) < 1e-12);
  for (int dist = 0; dist < 5; dist++) {
    int exact;
    double e = worst_error(dist, 200000, 1000, &exact);
    CHECK(!exact);
    if (e > bound)
      check_fail(__FILE__, __LINE__, "histogram dist %d: error %g > bound %g", dist, e, bound);
    else
      check_passed++;
    if (e > overall)
      overall = e;
  }
  printf("histogram mode: worst relative percentile error %.4f%% (bound %.4f%%)\n",
         overall * 100, bound * 100);
}

static void test_summary(void)
{
  llm_hist *h = llm_hist_new(4); /* tiny: summary stats must stay exact past it */
  llm_summary s;
  const double v[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  llm_hist_summary(h, &s);
  CHECK_INT(s.count, 0);
  CHECK(isnan(s.p50) && isnan(s.mean) && isnan(s.min));
  CHECK(isnan(llm_hist_percentile(h, 50)));
  for (int i = 0; i < 10; i++)
    llm_hist_add(h, v[i]);
  llm_hist_summary(h, &s);
  CHECK_INT(s.count, 10);
  CHECK(!s.exact);
  CHECK(s.min == 10 && s.max == 100);
  CHECK(fabs(s.mean - 55) < 1e-12);
  CHECK(fabs(s.stdev - 30.276503540974915) < 1e-9); /* sample stdev of 10..100 */
  CHECK(fabs(s.p50 - 50) <= 50 * llm_hist_error_bound());
  CHECK(s.p99 == 100); /* rank n is the exact max */
  CHECK(llm_hist_percentile(h, 0) == 10);
  llm_hist_free(h);

  h = llm_hist_new(0);
  llm_hist_add(h, 7);
  llm_hist_summary(h, &s);
  CHECK(s.exact && s.p50 == 7 && s.p99 == 7 && s.stdev == 0 && s.mean == 7);
  llm_hist_free(h);
}

static void test_refused_and_extremes(void)
{
  llm_hist *h = llm_hist_new(2);
  llm_summary s;
  CHECK_INT(llm_hist_add(h, NAN), -1);
  CHECK_INT(llm_hist_add(h, INFINITY), -1);
  CHECK_INT(llm_hist_add(h, -1), -1);
  CHECK_INT(llm_hist_add(h, 0), 0);
  CHECK_INT(llm_hist_add(h, 1e-300), 0);
  CHECK_INT(llm_hist_add(h, 1e300), 0);
  CHECK_INT(llm_hist_add(h, 5), 0);
  llm_hist_summary(h, &s);
  CHECK_INT(s.count, 4);
  CHECK_INT(s.rejected, 3);
  CHECK(s.min == 0 && s.max == 1e300);
  CHECK(llm_hist_percentile(h, 25) == 0);
  CHECK(fabs(llm_hist_percentile(h, 50) - 1e-300) <= 1e-300 * llm_hist_error_bound());
  CHECK(fabs(llm_hist_percentile(h, 75) - 5) <= 5 * llm_hist_error_bound());
  CHECK(isfinite(s.mean)); /* stdev overflows to inf with 1e300: documented */
  CHECK(isnan(llm_hist_percentile(h, -1)) && isnan(llm_hist_percentile(h, 101)));
  llm_hist_reset(h);
  CHECK_INT(llm_hist_count(h), 0);
  CHECK(llm_hist_is_exact(h));
  llm_hist_free(h);
}

static llm_call_sample sample(unsigned flags, double latency, double cost, const char *case_id)
{
  llm_call_sample s = {0};
  s.flags = flags;
  s.latency_ms = latency;
  s.ttft_ms = latency / 2;
  s.cost = cost;
  s.start = 1000;
  s.prompt_tokens = 10;
  s.completion_tokens = 5;
  s.cached_tokens = 2;
  s.case_id = case_id;
  s.case_len = case_id ? strlen(case_id) : 0;
  return s;
}

static void test_callstats(void)
{
  llm_callstats *cs = llm_callstats_new(0);
  llm_callstats_totals t;
  llm_call_sample s;
  double *v;
  uint64_t *k;
  size_t n;

  s = sample(LLM_CALL_OK, 100, 0.01, "a");
  llm_callstats_add(cs, &s);
  s = sample(LLM_CALL_OK, 300, NAN, "b");                /* unknown cost */
  llm_callstats_add(cs, &s);
  s = sample(LLM_CALL_OK | LLM_CALL_HIT, 2, 0.5, "a");  /* a hit costs 0, not 0.5 */
  llm_callstats_add(cs, &s);
  s = sample(LLM_CALL_ERROR, 50, NAN, "c");             /* failed, no usage: cost 0 */
  s.prompt_tokens = s.completion_tokens = s.cached_tokens = NAN;
  s.retries = 2;
  llm_callstats_add(cs, &s);
  s = sample(LLM_CALL_ERROR | LLM_CALL_PARTIAL, 80, NAN, "c"); /* partial: unknown */
  llm_callstats_add(cs, &s);

  llm_callstats_summary(cs, &t);
  CHECK_INT(t.calls, 5);
  CHECK_INT(t.ok, 3);
  CHECK_INT(t.errors, 2);
  CHECK_INT(t.partial, 1);
  CHECK_INT(t.hits, 1);
  CHECK_INT(t.retries, 2);
  CHECK_INT(t.cost_unknown, 2);
  CHECK(fabs(t.cost - 0.01) < 1e-15);
  CHECK(t.prompt_tokens == 30 && t.completion_tokens == 15 && t.cached_tokens == 6);
  CHECK_INT(t.latency.count, 2);          /* hits and failures are not model latency */
  CHECK(t.latency.min == 100 && t.latency.max == 300);
  CHECK_INT(t.lookup.count, 1);
  CHECK(t.lookup.p50 == 2);
  CHECK_INT(t.ttft.count, 2);
  CHECK(t.first_start == 1000 && fabs(t.last_end - 1000.3) < 1e-9);

  CHECK_INT(llm_callstats_column(cs, LLM_COL_LATENCY, &v, &k, &n), 0);
  CHECK_INT(n, 2);
  CHECK(v[0] == 100 && v[1] == 300 && k[0] == llm_case_key("a", 1));
  free(v);
  free(k);
  CHECK_INT(llm_callstats_column(cs, LLM_COL_COST, &v, &k, &n), 0);
  CHECK_INT(n, 3); /* 0.01, hit 0, failed 0 */
  free(v);
  free(k);
  CHECK_INT(llm_callstats_column(cs, LLM_COL_ERROR, &v, &k, &n), 0);
  CHECK_INT(n, 5);
  CHECK(v[3] == 1 && v[4] == 1 && v[0] == 0);
  free(v);
  free(k);
  CHECK_INT(llm_callstats_column(cs, LLM_COL_TOKENS, &v, &k, &n), 0);
  CHECK(n == 5 && v[0] == 15 && v[2] == 0 && v[3] == 0);
  free(v);
  free(k);

  llm_callstats_reset(cs);
  CHECK_INT(llm_callstats_calls(cs), 0);
  CHECK_INT(llm_callstats_column(cs, LLM_COL_LATENCY, &v, &k, &n), 0);
  CHECK(n == 0 && v == NULL);
  llm_callstats_free(cs);
}

static void test_reservoir(void)
{
  /* keep 100 of 10,000: a uniform sample, so its mean is near the mean */
  llm_callstats *cs = llm_callstats_new(100);
  double *v, sum = 0;
  uint64_t *k;
  size_t n;
  for (int i = 0; i < 10000; i++) {
    llm_call_sample s = sample(LLM_CALL_OK, i, 0, NULL);
    llm_callstats_add(cs, &s);
  }
  CHECK(llm_callstats_sampled(cs));
  CHECK_INT(llm_callstats_column(cs, LLM_COL_LATENCY, &v, &k, &n), 0);
  CHECK_INT(n, 100);
  for (size_t i = 0; i < n; i++)
    sum += v[i];
  CHECK(fabs(sum / n - 5000) < 1000); /* stderr ~290 */
  free(v);
  free(k);
  llm_callstats_free(cs);
}

static void test_case_key(void)
{
  CHECK(llm_case_key("a", 1) != llm_case_key("b", 1));
  CHECK(llm_case_key("", 0) != 0);
  CHECK(llm_case_key("case-1", 6) == llm_case_key("case-1", 6));
}

int main(void)
{
  test_exact_mode();
  test_histogram_mode();
  test_summary();
  test_refused_and_extremes();
  test_callstats();
  test_reservoir();
  test_case_key();
  return check_report("metrics");
}
