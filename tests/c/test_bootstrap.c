/* Bootstrap comparisons: statistics against sorted references, exact
 * answers for constant data, reproducibility, pairing, coverage of a known
 * difference, and the edge cases (too few values, a zero denominator). */
#include <math.h>
#include <stdlib.h>

#include "bootstrap.h"
#include "check.h"
#include "metrics.h"
#include "rng.h"

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_stat_of(void)
{
  llm_rng rng;
  llm_rng_seed(&rng, 7);
  for (size_t n = 1; n < 500; n += 37) {
    double *v = malloc(n * sizeof *v), *sorted = malloc(n * sizeof *v), *scratch = malloc(n * sizeof *v);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
      v[i] = floor(llm_rng_unit(&rng) * 50); /* many ties */
      sum += v[i];
    }
    memcpy(sorted, v, n * sizeof *v);
    qsort(sorted, n, sizeof *v, cmp_double);
    for (double q = 0; q <= 100; q += 12.5) {
      double got = llm_stat_of(v, n, LLM_STAT_QUANTILE, q, scratch);
      double want = sorted[llm_nearest_rank(q, n) - 1];
      if (got != want)
        check_fail(__FILE__, __LINE__, "quantile %g of %zu: %g, want %g", q, n, got, want);
      else
        check_passed++;
    }
    CHECK(fabs(llm_stat_of(v, n, LLM_STAT_MEAN, 0, NULL) - sum / n) < 1e-9);
    CHECK(llm_stat_of(v, n, LLM_STAT_SUM, 0, NULL) == sum);
    free(v);
    free(sorted);
    free(scratch);
  }
  CHECK(isnan(llm_stat_of(NULL, 0, LLM_STAT_MEAN, 0, NULL)));
}

static void test_constant(void)
{
  double a[20], b[20];
  llm_boot_arm A = {a, NULL, 20, 1}, B = {b, NULL, 20, 1};
  llm_boot_opts o = {.stat = LLM_STAT_QUANTILE, .q = 95, .seed = 1, .pair = -1};
  llm_boot_result r;
  for (int i = 0; i < 20; i++) {
    a[i] = 100;
    b[i] = 50;
  }
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r), 0);
  CHECK(r.a == 100 && r.b == 50 && r.effect == 0.5 && r.lo == 0.5 && r.hi == 0.5);
  CHECK(!r.paired);
  o.diff = 1;
  o.stat = LLM_STAT_MEAN;
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r), 0);
  CHECK(r.effect == -50 && r.lo == -50 && r.hi == -50);
}

/* A known 20% speed-up on lognormal latencies: the interval holds 0.8 and
 * excludes 1; the same seed gives the same interval. */
static void test_known_difference(void)
{
  enum { N = 400 };
  double a[N], b[N];
  llm_rng rng;
  llm_boot_arm A = {a, NULL, N, 1}, B = {b, NULL, N, 1};
  llm_boot_opts o = {.stat = LLM_STAT_MEAN, .seed = 99, .pair = 0};
  llm_boot_result r1, r2;
  llm_rng_seed(&rng, 3);
  for (int i = 0; i < N; i++) {
    double z1 = sqrt(-2 * log(1 - llm_rng_unit(&rng))) * cos(6.283185307 * llm_rng_unit(&rng));
    double z2 = sqrt(-2 * log(1 - llm_rng_unit(&rng))) * cos(6.283185307 * llm_rng_unit(&rng));
    a[i] = exp(6 + 0.3 * z1);
    b[i] = 0.8 * exp(6 + 0.3 * z2);
  }
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r1), 0);
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r2), 0);
  CHECK(r1.lo == r2.lo && r1.hi == r2.hi);
  CHECK(r1.lo < 0.8 && 0.8 < r1.hi);
  CHECK(r1.hi < 1);
  CHECK(r1.hi - r1.lo < 0.1);
  CHECK_INT(r1.reps_used, 1000);
  o.seed = 100; /* another seed: a slightly different interval */
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r2), 0);
  CHECK(r1.lo != r2.lo || r1.hi != r2.hi);
  o.stat = LLM_STAT_QUANTILE;
  o.q = 50;
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r1), 0);
  CHECK(r1.lo < 0.8 && 0.8 < r1.hi && r1.hi < 1);
}

/* Cases of very different sizes, each measured by both arms: pairing
 * removes the case-to-case spread, so the paired interval is much
 * narrower than the unpaired one and still holds the true ratio. */
static void test_paired(void)
{
  enum { CASES = 50, REPS = 3, N = CASES * REPS };
  double a[N], b[N];
  uint64_t ka[N], kb[N];
  llm_rng rng;
  llm_boot_arm A = {a, ka, N, 1}, B = {b, kb, N, 1};
  llm_boot_opts o = {.stat = LLM_STAT_SUM, .seed = 5, .pair = -1};
  llm_boot_result paired, unpaired;
  llm_rng_seed(&rng, 11);
  for (int c = 0; c < CASES; c++) {
    double size = exp(4 * llm_rng_unit(&rng));
    char id[16];
    int len = snprintf(id, sizeof id, "case-%d", c);
    for (int r = 0; r < REPS; r++) {
      int i = c * REPS + r, j = N - 1 - i; /* b lists the cases in another order */
      a[i] = size * (1 + 0.05 * llm_rng_unit(&rng));
      ka[i] = llm_case_key(id, (size_t)len);
      b[j] = 0.5 * size * (1 + 0.05 * llm_rng_unit(&rng));
      kb[j] = ka[i];
    }
  }
  CHECK(llm_boot_pairable(&A, &B));
  CHECK_INT(llm_boot_compare(&A, &B, &o, &paired), 0);
  CHECK(paired.paired);
  CHECK_INT(paired.clusters, CASES);
  o.stat = LLM_STAT_MEAN;
  o.pair = 0;
  CHECK_INT(llm_boot_compare(&A, &B, &o, &unpaired), 0);
  CHECK(!unpaired.paired);
  CHECK(fabs(paired.effect - unpaired.effect) < 1e-9); /* same point estimate */
  CHECK(paired.lo < 0.5 && 0.5 < paired.hi);
  CHECK(unpaired.lo < 0.5 && 0.5 < unpaired.hi);
  CHECK((paired.hi - paired.lo) * 5 < unpaired.hi - unpaired.lo);
  /* quantiles pair too */
  o.stat = LLM_STAT_QUANTILE;
  o.q = 95;
  o.pair = -1;
  CHECK_INT(llm_boot_compare(&A, &B, &o, &paired), 0);
  CHECK(paired.paired && paired.lo <= paired.effect && paired.effect <= paired.hi);

  /* one case missing from b, or a value without a key: not pairable */
  B.n = N - REPS;
  CHECK(!llm_boot_pairable(&A, &B));
  B.n = N;
  kb[0] = 0;
  CHECK(!llm_boot_pairable(&A, &B));
}

static void test_edges(void)
{
  double a[3] = {1, 2, 3}, z[3] = {0, 0, 0}, est, lo, hi;
  llm_boot_arm A = {a, NULL, 3, 1}, one = {a, NULL, 1, 1}, none = {NULL, NULL, 0, 1}, Z = {z, NULL, 3, 1};
  llm_boot_opts o = {.stat = LLM_STAT_MEAN, .seed = 1, .pair = -1};
  llm_boot_result r;
  CHECK_INT(llm_boot_compare(&A, &one, &o, &r), 0);
  CHECK(r.effect == 0.5 && isnan(r.lo) && isnan(r.hi)); /* one value: no interval */
  CHECK_INT(llm_boot_compare(&none, &A, &o, &r), 0);
  CHECK(isnan(r.a) && isnan(r.effect) && isnan(r.lo));
  CHECK_INT(llm_boot_compare(&Z, &A, &o, &r), 0);      /* divide by zero */
  CHECK(isnan(r.effect) && isnan(r.lo));
  o.diff = 1;
  CHECK_INT(llm_boot_compare(&Z, &A, &o, &r), 0);      /* a difference is fine */
  CHECK(r.effect == 2 && r.lo >= 1 && r.hi <= 3);
  CHECK_INT(llm_boot_ci(&A, &o, &est, &lo, &hi), 0);
  CHECK(est == 2 && lo >= 1 && hi <= 3 && lo <= hi);
  CHECK_INT(llm_boot_ci(&one, &o, &est, &lo, &hi), 0);
  CHECK(est == 1 && isnan(lo));
}

static void test_weights(void)
{
  /* each kept value of b stands for 3 calls (a 1-in-3 sample): its sum is
   * three times its kept values' sum */
  double a[4] = {1, 1, 1, 1}, b[4] = {1, 1, 1, 1};
  llm_boot_arm A = {a, NULL, 4, 1}, B = {b, NULL, 4, 3};
  llm_boot_opts o = {.stat = LLM_STAT_SUM, .seed = 1, .pair = 0};
  llm_boot_result r;
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r), 0);
  CHECK(r.a == 4 && r.b == 12 && r.effect == 3 && r.lo == 3 && r.hi == 3);
  o.stat = LLM_STAT_MEAN; /* means need no weight */
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r), 0);
  CHECK(r.effect == 1);
}

static void test_subsample(void)
{
  /* more values than max_n: the interval is computed on a subset and
   * flagged; it still holds the true ratio */
  enum { N = 5000 };
  double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  llm_rng rng;
  llm_boot_arm A = {a, NULL, N, 1}, B = {b, NULL, N, 1};
  llm_boot_opts o = {.stat = LLM_STAT_MEAN, .seed = 9, .max_n = 500, .reps = 400};
  llm_boot_result r;
  llm_rng_seed(&rng, 12);
  for (int i = 0; i < N; i++) {
    a[i] = 100 + 20 * llm_rng_unit(&rng);
    b[i] = 2 * (100 + 20 * llm_rng_unit(&rng));
  }
  CHECK_INT(llm_boot_compare(&A, &B, &o, &r), 0);
  CHECK(r.subsampled);
  CHECK(r.lo < 2 && 2 < r.hi);
  free(a);
  free(b);
}

int main(void)
{
  test_stat_of();
  test_constant();
  test_known_difference();
  test_paired();
  test_edges();
  test_weights();
  test_subsample();
  return check_report("bootstrap");
}
