/* Cache engine benchmark (scripts/bench_cache builds and runs it):
 *   1. exact lookups: p50/p99 of llm_cache_get over 10,000 stored ~1 KB
 *      responses, from the memory layer and from sqlite (no memory layer);
 *   2. semantic lookups: p50/p99 of one query over 100,000 stored
 *      256-dimension vectors, for the bare index scan and for
 *      llm_cache_sem_search (scan + the row's key from sqlite); and the
 *      cost of adding one vector (what a semantic-cache miss adds).
 * Each operation is timed alone with CLOCK_MONOTONIC (p50, p99, min: on a
 * shared machine the min shows what the code does when left alone). Usage:
 *   cache_bench DIR [vectors=100000] [dims=256] */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "store/cache.h"
#include "store/vecindex.h"

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[(int)(p * (n - 1) + 0.5)];
}

static unsigned rng = 12345;
static unsigned next_rand(void)
{
  rng = rng * 1103515245u + 12345u;
  return rng >> 8;
}

static llm_cache *open_or_die(const char *path, size_t memory)
{
  int status;
  char err[512];
  llm_cache *c = llm_cache_open(&(llm_cache_config){.path = path, .memory_bytes = memory},
                                &status, err, sizeof err);
  if (!c) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return c;
}

static void key_of(int i, uint8_t k[32])
{
  char name[32];
  snprintf(name, sizeof name, "request-%d", i);
  llm_sha256(name, strlen(name), k);
}

static void bench_exact(const char *dir)
{
  enum { N = 10000, LOOKUPS = 20000 };
  char path[512], value[1024];
  uint8_t k[32];
  static double t[LOOKUPS];
  snprintf(path, sizeof path, "%s/exact.db", dir);
  memset(value, 'v', sizeof value);
  llm_cache *c = open_or_die(path, 0);
  for (int i = 0; i < N; i++) {
    key_of(i, k);
    llm_cache_put(c, "default", k, value, sizeof value, 1, 0);
  }
  llm_cache_close(c);
  for (int layer = 0; layer < 2; layer++) {
    c = open_or_die(path, layer ? 64u << 20 : 0);
    llm_cache_hit h;
    if (layer) /* warm the memory layer */
      for (int i = 0; i < N; i++) {
        key_of(i, k);
        llm_cache_get(c, "default", k, 2, &h);
      }
    int misses = 0;
    for (int j = 0; j < LOOKUPS; j++) {
      key_of((int)(next_rand() % N), k);
      double t0 = now();
      int s = llm_cache_get(c, "default", k, 2, &h);
      t[j] = (now() - t0) * 1e6;
      misses += s != LLM_CACHE_OK || h.from_memory != layer;
    }
    printf("exact_%s_us p50=%.2f p99=%.2f (%d lookups, %d entries, %d wrong)\n",
           layer ? "memory" : "sqlite", pct(t, LOOKUPS, 0.5), pct(t, LOOKUPS, 0.99), LOOKUPS, N,
           misses);
    llm_cache_close(c);
  }
}

/* Fills the semantic table directly, in one transaction (the engine's
 * own add path is one transaction per vector: timed separately below). */
static void fill_semantic(const char *path, int n, int dims, llm_vecindex *ix)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  float *v = malloc(sizeof(float) * (size_t)dims);
  uint8_t k[32];
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO semantic (ns, space, scope, key, vec, prompt, created) "
                         "VALUES ('default', 'bench', 7, ?1, ?2, NULL, 1)", -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "fill: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < dims; j++)
      v[j] = (float)((int)(next_rand() % 2001) - 1000);
    key_of(i, k);
    sqlite3_bind_blob(st, 1, k, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, v, dims * (int)sizeof(float), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      fprintf(stderr, "fill: %s\n", sqlite3_errmsg(db));
      exit(1);
    }
    sqlite3_reset(st);
    llm_vecindex_add(ix, i + 1, 7, v);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  free(v);
}

static void bench_semantic(const char *dir, int n, int dims)
{
  enum { QUERIES = 200, ADDS = 300 };
  static double t_ix[QUERIES], t_full[QUERIES], t_add[ADDS];
  double t0;
  char path[512];
  float *v = malloc(sizeof(float) * (size_t)dims);
  uint8_t k[32];
  llm_vecindex *ix = llm_vecindex_new(dims);
  llm_cache_sem_hit hit;
  snprintf(path, sizeof path, "%s/semantic.db", dir);
  llm_cache_close(open_or_die(path, 0)); /* the schema */
  t0 = now();
  fill_semantic(path, n, dims, ix);
  printf("semantic_fill_s=%.2f (%d vectors of %d dims, one transaction)\n", now() - t0, n, dims);
  llm_cache *c = open_or_die(path, 0);
  t0 = now();
  llm_cache_sem_search(c, "default", "bench", 7, v, dims, &hit); /* loads the matrix */
  printf("semantic_load_s=%.3f (sqlite into the in-memory matrix)\n", now() - t0);
  for (int q = 0; q < QUERIES; q++) {
    for (int j = 0; j < dims; j++)
      v[j] = (float)((int)(next_rand() % 2001) - 1000);
    int64_t id;
    float sim;
    t0 = now();
    llm_vecindex_search(ix, 7, v, &id, &sim);
    t_ix[q] = (now() - t0) * 1e3;
    t0 = now();
    llm_cache_sem_search(c, "default", "bench", 7, v, dims, &hit);
    t_full[q] = (now() - t0) * 1e3;
  }
  /* pct sorts: the minimum is then element 0 (read after, not in the same call) */
  double s50 = pct(t_ix, QUERIES, 0.5), s99 = pct(t_ix, QUERIES, 0.99);
  double f50 = pct(t_full, QUERIES, 0.5), f99 = pct(t_full, QUERIES, 0.99);
  printf("semantic_scan_ms p50=%.2f p99=%.2f min=%.2f kernel=%s (%d queries over %d vectors)\n",
         s50, s99, t_ix[0], llm_vec_kernel(), QUERIES, n);
  printf("semantic_lookup_ms p50=%.2f p99=%.2f min=%.2f (llm_cache_sem_search: scan + sqlite)\n",
         f50, f99, t_full[0]);
  for (int a = 0; a < ADDS; a++) {
    for (int j = 0; j < dims; j++)
      v[j] = (float)((int)(next_rand() % 2001) - 1000);
    key_of(n + a, k);
    t0 = now();
    if (llm_cache_sem_add(c, "default", "bench", 7, k, v, dims, NULL, 2, NULL) != LLM_CACHE_OK) {
      fprintf(stderr, "sem_add: %s\n", llm_cache_errmsg(c));
      exit(1);
    }
    t_add[a] = (now() - t0) * 1e6;
  }
  printf("semantic_add_us p50=%.0f p99=%.0f (one vector, one transaction)\n", pct(t_add, ADDS, 0.5),
         pct(t_add, ADDS, 0.99));
  llm_cache_close(c);
  llm_vecindex_free(ix);
  free(v);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: cache_bench DIR [vectors] [dims]\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 100000, dims = argc > 3 ? atoi(argv[3]) : 256;
  bench_exact(argv[1]);
  bench_semantic(argv[1], n, dims);
  return 0;
}
