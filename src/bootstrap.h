/* Bootstrap confidence intervals for comparing two sets of measurements
 * (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993: the
 * percentile interval, ch. 13).
 *
 * Each arm is a list of values, each optionally tagged with the key of the
 * case it measured (0: none). When both arms measured exactly the same
 * cases, the comparison is paired: each replicate draws cases with
 * replacement and takes all of those cases' values from both arms (a
 * cluster bootstrap, so repeats of a case stay together and the case-to-
 * case spread cancels out). Otherwise each arm is resampled on its own.
 *
 * The effect is stat(b) / stat(a) (ratio) or stat(b) - stat(a) (diff),
 * its interval the (1-level)/2 and (1+level)/2 percentiles of the
 * replicates' effects. Replicates are reproducible: the same seed gives
 * the same interval.
 *
 * Cost is bounded: an arm with more than max_n values (default 3,000) is
 * first reduced to a random subset of that size for the interval (paired:
 * a random subset of the cases holding about that many values); the point
 * estimate still uses every value. Such an interval has the subset's
 * width, wider than the full data would give (conservative), and is
 * centred on the full data's estimate; `subsampled` says so. */
#ifndef LLMRUN_BOOTSTRAP_H
#define LLMRUN_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

typedef enum llm_stat {
  LLM_STAT_MEAN,
  LLM_STAT_SUM,       /* per case set: only meaningful when paired */
  LLM_STAT_QUANTILE   /* nearest rank, as in metrics.h */
} llm_stat;

typedef struct llm_boot_arm {
  const double *v;       /* finite values */
  const uint64_t *key;   /* case keys, or NULL (then no pairing) */
  size_t n;
  double weight;         /* calls each value stands for (a uniform sample
                            of the calls: calls / values); 0 means 1. Only
                            LLM_STAT_SUM uses it. */
} llm_boot_arm;

typedef struct llm_boot_opts {
  llm_stat stat;
  double q;       /* LLM_STAT_QUANTILE: percentile in [0, 100] */
  int diff;       /* 0: effect = b / a; 1: effect = b - a */
  int pair;       /* -1: pair when possible; 0: never */
  int reps;       /* replicates; 0: 1000 */
  double level;   /* confidence level; 0: 0.95 */
  uint64_t seed;
  size_t max_n;   /* 0: 3,000 */
} llm_boot_opts;

typedef struct llm_boot_result {
  double a, b;               /* the statistic of each arm, on all values */
  double effect, lo, hi;     /* NaN when it cannot be computed */
  int paired;
  size_t clusters;           /* cases, when paired */
  int reps_used;             /* replicates with a defined effect */
  int subsampled;
} llm_boot_result;

/* The statistic of n values (NaN for none). scratch: room for n doubles
 * (QUANTILE reorders a copy there); may be NULL for MEAN and SUM. */
double llm_stat_of(const double *v, size_t n, llm_stat stat, double q, double *scratch);

/* 1 when every value of both arms has a case key and both arms cover the
 * same set of cases. */
int llm_boot_pairable(const llm_boot_arm *a, const llm_boot_arm *b);

/* Compares b against a. 0, or -1 when out of memory. An arm with fewer
 * than 2 values gets no interval (lo = hi = NaN). */
int llm_boot_compare(const llm_boot_arm *a, const llm_boot_arm *b,
                     const llm_boot_opts *o, llm_boot_result *r);

/* A confidence interval for one arm's statistic (diff and pair ignored). */
int llm_boot_ci(const llm_boot_arm *a, const llm_boot_opts *o,
                double *estimate, double *lo, double *hi);

#endif
