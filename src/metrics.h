/* Measurement engines: a latency histogram with bounded-error percentiles,
 * and a per-variant call collector (counters, histograms and the per-call
 * samples that bootstrap confidence intervals need).
 *
 * Percentiles use the nearest-rank definition: the p-th percentile of n
 * values is the value at rank ceil(p/100 * n) (1-based) in sorted order,
 * so it is always one of the observed values (p = 0 gives the minimum).
 *
 * Accuracy: up to `exact_max` values (default 65,536) are kept and the
 * percentiles are exact. Past that the histogram answers: values fall in
 * log-linear buckets (each power of two split into 128 equal sub-buckets,
 * the layout of HdrHistogram), and a percentile is the midpoint of the
 * bucket that holds the exact nearest-rank value, clamped to the observed
 * [min, max]. A value v in the octave [2^k, 2^(k+1)) lies in a bucket of
 * width w = 2^k/128, so the midpoint is within w/2 = 2^k/256 <= v/256 of
 * it: the relative error is at most 1/256 = 0.39% (llm_hist_error_bound).
 * Zero is counted exactly. min, max, mean and stdev are always exact (mean
 * and variance by Welford's method; stdev is the sample standard deviation,
 * n - 1 in the denominator, 0 for one value; it overflows to infinity
 * only when values come within a few orders of magnitude of DBL_MAX).
 *
 * Only finite values >= 0 are recorded; NaN, infinities and negative
 * values are refused and counted in `rejected`. */
#ifndef LLMRUN_METRICS_H
#define LLMRUN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define LLM_HIST_EXACT_MAX 65536
#define LLM_HIST_SUB_BUCKETS 128

typedef struct llm_hist llm_hist;

typedef struct llm_summary {
  uint64_t count;     /* values recorded */
  uint64_t rejected;  /* NaN, infinite or negative values refused */
  int exact;          /* 1 when the percentiles below are exact */
  double min, max, mean, stdev;
  double p50, p90, p95, p99;
} llm_summary;

/* exact_max: how many values to keep for exact percentiles (0: the
 * default). NULL when out of memory. */
llm_hist *llm_hist_new(size_t exact_max);
void llm_hist_free(llm_hist *h);
void llm_hist_reset(llm_hist *h);
/* 0, or -1 when v was refused (not finite, or negative) or memory ran out
 * (the value is then still counted in the buckets). */
int llm_hist_add(llm_hist *h, double v);
uint64_t llm_hist_count(const llm_hist *h);
int llm_hist_is_exact(const llm_hist *h);
/* p in [0, 100]; NaN when the histogram is empty. */
double llm_hist_percentile(llm_hist *h, double p);
/* Every field; percentiles and stats are NaN when empty (count 0). */
void llm_hist_summary(llm_hist *h, llm_summary *out);
/* Upper bound of the relative error of percentiles in histogram mode. */
double llm_hist_error_bound(void);
/* The nearest rank of percentile p among n values: 1..n (n > 0). */
uint64_t llm_nearest_rank(double p, uint64_t n);

/* ---- the call collector ---------------------------------------------------- */

enum {
  LLM_CALL_OK = 1,       /* the call succeeded */
  LLM_CALL_ERROR = 2,    /* it failed (with or without partial output) */
  LLM_CALL_PARTIAL = 4,  /* a stream cut short: some output, then an error */
  LLM_CALL_HIT = 8       /* answered from a cache: no model call was made */
};

/* One finished call, as the collector needs it. Unknown numbers are NaN;
 * token counts of calls that used none (or hits) are 0. */
typedef struct llm_call_sample {
  unsigned flags;        /* LLM_CALL_* */
  double latency_ms;     /* model latency, or the lookup time of a hit */
  double ttft_ms;
  double cost;           /* USD; NaN: unknown */
  double start;          /* wall clock, epoch seconds; NaN: unknown */
  double prompt_tokens, completion_tokens, cached_tokens;
  double retries;
  const char *case_id;   /* NULL: none */
  size_t case_len;
} llm_call_sample;

typedef struct llm_callstats llm_callstats;

typedef struct llm_callstats_totals {
  uint64_t calls, ok, errors, partial, hits;
  uint64_t cost_unknown;      /* calls (not hits) whose cost is unknown */
  uint64_t retries;
  double cost;                /* sum of the known costs */
  double prompt_tokens, completion_tokens, cached_tokens;
  double first_start, last_end; /* wall-clock span of the calls; NaN if none */
  llm_summary latency;        /* successful model calls (hits excluded) */
  llm_summary ttft;           /* successful model calls with a TTFT */
  llm_summary lookup;         /* cache hits: lookup time */
} llm_callstats_totals;

/* Columns of per-call values for resampling. */
typedef enum llm_column {
  LLM_COL_LATENCY,     /* successful model calls */
  LLM_COL_TTFT,        /* successful model calls with a TTFT */
  LLM_COL_LOOKUP,      /* cache hits */
  LLM_COL_COST,        /* every call with a known cost (hits cost 0) */
  LLM_COL_TOKENS,      /* prompt + completion, every call (hits 0) */
  LLM_COL_PROMPT,
  LLM_COL_COMPLETION,
  LLM_COL_ERROR,       /* 1 for a failed call, else 0 */
  LLM_COL_HIT,         /* 1 for a cache hit, else 0 */
  LLM_COL_COUNT_
} llm_column;

/* keep_max: per-call samples kept for resampling (0: 100,000); past it a
 * uniform reservoir sample of that size is kept (Algorithm R). Counters,
 * totals and percentiles always see every call. */
llm_callstats *llm_callstats_new(size_t keep_max);
void llm_callstats_free(llm_callstats *cs);
void llm_callstats_reset(llm_callstats *cs);
/* 0, or -1 when out of memory (the counters are still updated). */
int llm_callstats_add(llm_callstats *cs, const llm_call_sample *s);
void llm_callstats_summary(llm_callstats *cs, llm_callstats_totals *out);
uint64_t llm_callstats_calls(const llm_callstats *cs);
/* The histogram behind LLM_COL_LATENCY, LLM_COL_TTFT or LLM_COL_LOOKUP. */
llm_hist *llm_callstats_hist(llm_callstats *cs, llm_column col);

/* A column of the kept samples: values and case keys (0: no case), newly
 * allocated (free both with free()). *n may be 0 (then both are NULL).
 * 0, or -1 when out of memory. */
int llm_callstats_column(const llm_callstats *cs, llm_column col,
                         double **values, uint64_t **keys, size_t *n);
/* 1 when the kept samples are a uniform sample rather than all calls. */
int llm_callstats_sampled(const llm_callstats *cs);
/* Calls per kept sample (1 unless sampled): scales sums of a column. */
double llm_callstats_weight(const llm_callstats *cs);

/* The key of a case id: a 64-bit FNV-1a hash, never 0. */
uint64_t llm_case_key(const char *id, size_t len);

#endif
