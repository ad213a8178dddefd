/* The cache store (src/store/cache.c, src/store/cache_vectors.c): files and modes,
 * responses with TTL, namespaces, eviction and the memory layer,
 * statistics, embeddings, semantic vectors, audits, the schema and its
 * migrations, and bad files (newer, foreign, corrupt, read-only, full). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "digest.h"
#include "store/cache.h"

static char dir[256];

static const char *tmp_path(const char *name)
{
  static char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return p;
}

static void key_of(const char *s, uint8_t k[32]) { llm_sha256(s, strlen(s), k); }

static llm_cache *open_at(const char *path, size_t memory, int64_t max_bytes)
{
  llm_cache_config cfg = {.path = path, .memory_bytes = memory, .max_bytes = max_bytes};
  int status;
  char err[512];
  llm_cache *c = llm_cache_open(&cfg, &status, err, sizeof err);
  if (!c)
    fprintf(stderr, "open %s: %s (%s)\n", path, err, llm_cache_status_name(status));
  return c;
}

static int mode_of(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static int64_t sql_int(const char *path, const char *q)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    return -1;
  if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

static void sql_exec(const char *path, const char *q)
{
  sqlite3 *db;
  CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
  CHECK_INT(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* ---- files ------------------------------------------------------------------------- */

static void test_default_path_and_modes(void)
{
  char xdg[512], path[512];
  mode_t old = umask(022);
  snprintf(xdg, sizeof xdg, "%s/xdg-cache", dir);
  setenv("XDG_CACHE_HOME", xdg, 1);
  CHECK_INT(llm_cache_default_path(path, sizeof path, 0), 0);
  CHECK(strstr(path, "/xdg-cache/llmrun/cache.db") != NULL);
  llm_cache *c = open_at(NULL, 0, 0);
  CHECK(c != NULL);
  if (!c)
    return;
  CHECK_STR(llm_cache_path(c), path);
  uint8_t k[32];
  key_of("k", k);
  CHECK_INT(llm_cache_put(c, "default", k, "v", 1, 1000, 0), LLM_CACHE_OK);
  char wal[600], shm[600], d[600];
  snprintf(wal, sizeof wal, "%s-wal", path);
  snprintf(shm, sizeof shm, "%s-shm", path);
  snprintf(d, sizeof d, "%s/llmrun", xdg);
  CHECK_INT(mode_of(path), 0600);
  CHECK_INT(mode_of(wal), 0600);
  CHECK_INT(mode_of(shm), 0600);
  CHECK_INT(mode_of(d), 0700);
  CHECK_INT(mode_of(xdg), 0700);
  CHECK_STR(sql_int(path, "PRAGMA journal_mode") == -1 ? "" : "ok", "ok");
  CHECK_INT(llm_cache_schema_version(c), LLM_CACHE_SCHEMA_VERSION);
  llm_cache_close(c);
  CHECK_INT(sql_int(path, "PRAGMA user_version"), LLM_CACHE_SCHEMA_VERSION);
  CHECK_INT(sql_int(path, "PRAGMA application_id"), 0x6c6c6d63);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM migrations"), LLM_CACHE_SCHEMA_VERSION);
  umask(old);
}

/* ---- responses ----------------------------------------------------------------------- */

static void test_responses(void)
{
  const char *path = tmp_path("responses.db");
  llm_cache *c = open_at(path, 1 << 20, 0);
  llm_cache_hit h;
  uint8_t k1[32], k2[32];
  key_of("one", k1);
  key_of("two", k2);
  CHECK(c != NULL);
  if (!c)
    return;
  CHECK_INT(llm_cache_get(c, "ns", k1, 100, &h), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_put(c, "ns", k1, "first", 5, 100, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k1, 100, &h), LLM_CACHE_OK);
  CHECK_MEM(h.data, h.len, "first", 5);
  CHECK_INT(h.from_memory, 1);
  CHECK(h.created == 100);
  /* namespaces are separate */
  CHECK_INT(llm_cache_get(c, "other", k1, 100, &h), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_put(c, "other", k1, "else", 4, 100, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k1, 100, &h), LLM_CACHE_OK);
  CHECK_MEM(h.data, h.len, "first", 5);
  /* replace */
  CHECK_INT(llm_cache_put(c, "ns", k1, "second", 6, 101, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k1, 101, &h), LLM_CACHE_OK);
  CHECK_MEM(h.data, h.len, "second", 6);
  /* TTL, in memory and on disk */
  CHECK_INT(llm_cache_put(c, "ns", k2, "brief", 5, 200, 10), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k2, 209.9, &h), LLM_CACHE_OK);
  CHECK(h.expires == 210);
  CHECK_INT(llm_cache_get(c, "ns", k2, 210, &h), LLM_CACHE_MISS);
  llm_cache_close(c);

  c = open_at(path, 1 << 20, 0);
  CHECK_INT(llm_cache_get(c, "ns", k2, 209, &h), LLM_CACHE_OK);
  CHECK_INT(h.from_memory, 0);
  CHECK_INT(llm_cache_get(c, "ns", k2, 211, &h), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_get(c, "ns", k1, 300, &h), LLM_CACHE_OK);
  CHECK_INT(h.from_memory, 0); /* a new connection reads the disk ... */
  CHECK_INT(llm_cache_get(c, "ns", k1, 300, &h), LLM_CACHE_OK);
  CHECK_INT(h.from_memory, 1); /* ... then memory */
  CHECK_INT(llm_cache_delete(c, "ns", k1), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k1, 300, &h), LLM_CACHE_MISS);
  /* expired entries go with clear(expired_only) */
  int64_t removed = -1;
  CHECK_INT(llm_cache_clear(c, NULL, 1, 300, &removed), LLM_CACHE_OK);
  CHECK_INT(removed, 1);
  CHECK_INT(llm_cache_get(c, "other", k1, 300, &h), LLM_CACHE_OK);
  /* a value with NUL bytes comes back whole */
  CHECK_INT(llm_cache_put(c, "bin", k1, "a\0b\0c", 5, 300, 0), LLM_CACHE_OK);
  llm_cache_close(c);
  c = open_at(path, 0, 0); /* no memory layer */
  CHECK_INT(llm_cache_get(c, "bin", k1, 300, &h), LLM_CACHE_OK);
  CHECK_MEM(h.data, h.len, "a\0b\0c", 5);
  llm_cache_close(c);
}

static void test_huge_and_eviction(void)
{
  const char *path = tmp_path("evict.db");
  llm_cache *c = open_at(path, 64 << 10, 200000);
  llm_cache_hit h;
  uint8_t k[32];
  char name[32], *val = malloc(5 << 20);
  if (!c || !val)
    return;
  /* a 5 MiB response is stored and read back; over max_entry_bytes is refused */
  memset(val, 'x', 5 << 20);
  val[12345] = 'y';
  llm_cache_close(c);
  c = open_at(path, 64 << 10, 0);
  key_of("huge", k);
  CHECK_INT(llm_cache_put(c, "ns", k, val, 5 << 20, 1, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "ns", k, 1, &h), LLM_CACHE_OK);
  CHECK_INT(h.len, 5 << 20);
  CHECK(h.len == (5u << 20) && h.data[12345] == 'y' && h.from_memory == 0);
  llm_cache_close(c);
  llm_cache_config small = {.path = path, .max_entry_bytes = 1000};
  int status;
  c = llm_cache_open(&small, &status, NULL, 0);
  CHECK_INT(llm_cache_put(c, "ns", k, val, 1001, 1, 0), LLM_CACHE_ETOOBIG);
  CHECK(strstr(llm_cache_errmsg(c), "1000-byte limit") != NULL);
  CHECK_INT(llm_cache_clear(c, NULL, 0, 1, NULL), LLM_CACHE_OK);
  llm_cache_close(c);

  /* bounded store: 1,000-byte values under a 200,000-byte bound */
  c = open_at(path, 64 << 10, 200000);
  for (int i = 0; i < 500; i++) {
    snprintf(name, sizeof name, "entry-%d", i);
    key_of(name, k);
    CHECK_INT(llm_cache_put(c, "ns", k, val, 1000, 1000 + i, 0), LLM_CACHE_OK);
  }
  llm_cache_info info;
  CHECK_INT(llm_cache_info_get(c, &info), LLM_CACHE_OK);
  CHECK(info.bytes <= 200000);
  CHECK(info.entries > 100 && info.entries < 200);
  CHECK(info.memory_bytes <= 64 << 10);
  llm_cache_close(c);
  c = open_at(path, 0, 200000);
  key_of("entry-499", k);
  CHECK_INT(llm_cache_get(c, "ns", k, 2000, &h), LLM_CACHE_OK); /* newest kept */
  key_of("entry-0", k);
  CHECK_INT(llm_cache_get(c, "ns", k, 2000, &h), LLM_CACHE_MISS); /* oldest evicted */
  /* the byte counter agrees with the rows */
  CHECK_INT(sql_int(path, "SELECT bytes FROM totals"),
            sql_int(path, "SELECT sum(size) FROM entries"));
  llm_cache_close(c);
  free(val);
}

/* ---- statistics and clearing ------------------------------------------------------------ */

typedef struct seen {
  int n;
  char names[8][32];
  llm_cache_ns_stats s[8];
} seen;

static int collect(void *ud, const llm_cache_ns_stats *s)
{
  seen *x = ud;
  if (x->n < 8) {
    snprintf(x->names[x->n], 32, "%s", s->ns);
    x->s[x->n] = *s;
    x->n++;
  }
  return 0;
}

static void test_stats_and_clear(void)
{
  const char *path = tmp_path("stats.db");
  llm_cache *c = open_at(path, 1 << 20, 0), *c2;
  uint8_t k[32];
  llm_cache_hit h;
  seen x = {0};
  if (!c)
    return;
  key_of("a", k);
  CHECK_INT(llm_cache_count(c, "alpha", LLM_CC_HITS_EXACT, 2), LLM_CACHE_OK);
  CHECK_INT(llm_cache_count(c, "alpha", LLM_CC_COST_SAVED, 0.25), LLM_CACHE_OK);
  CHECK_INT(llm_cache_count(c, "beta", LLM_CC_MISSES, 1), LLM_CACHE_OK);
  CHECK_INT(llm_cache_count(c, "beta", 99, 1), LLM_CACHE_EMISUSE);
  /* pending counts show before they are written */
  CHECK_INT(llm_cache_stats(c, NULL, collect, &x), LLM_CACHE_OK);
  CHECK_INT(x.n, 2);
  CHECK_STR(x.names[0], "alpha");
  CHECK(x.s[0].counts.v[LLM_CC_HITS_EXACT] == 2);
  CHECK_INT(llm_cache_put(c, "alpha", k, "v", 1, 1, 0), LLM_CACHE_OK); /* writes them too */
  CHECK_INT(sql_int(path, "SELECT hits_exact FROM stats WHERE ns = 'alpha'"), 2);
  CHECK_INT(llm_cache_count(c, "alpha", LLM_CC_HITS_EXACT, 1), LLM_CACHE_OK);
  llm_cache_close(c); /* flushes */
  CHECK_INT(sql_int(path, "SELECT hits_exact FROM stats WHERE ns = 'alpha'"), 3);
  CHECK_INT(sql_int(path, "SELECT cost_saved * 100 FROM stats WHERE ns = 'alpha'"), 25);

  c = open_at(path, 1 << 20, 0);
  memset(&x, 0, sizeof x);
  CHECK_INT(llm_cache_stats(c, "alpha", collect, &x), LLM_CACHE_OK);
  CHECK_INT(x.n, 1);
  CHECK_INT(x.s[0].entries, 1);
  CHECK(x.s[0].counts.v[LLM_CC_HITS_EXACT] == 3);
  /* another connection clears the store: this one's memory layer notices */
  CHECK_INT(llm_cache_get(c, "alpha", k, 2, &h), LLM_CACHE_OK);
  CHECK_INT(llm_cache_get(c, "alpha", k, 2, &h), LLM_CACHE_OK);
  CHECK_INT(h.from_memory, 1);
  c2 = open_at(path, 0, 0);
  CHECK_INT(llm_cache_clear(c2, "alpha", 0, 2, NULL), LLM_CACHE_OK);
  usleep(120 * 1000); /* the memory layer looks for clears every 0.1 s */
  CHECK_INT(llm_cache_get(c, "alpha", k, 2, &h), LLM_CACHE_MISS);
  memset(&x, 0, sizeof x);
  CHECK_INT(llm_cache_stats(c2, NULL, collect, &x), LLM_CACHE_OK);
  CHECK_INT(x.n, 1);
  CHECK_STR(x.names[0], "beta");
  CHECK_INT(llm_cache_clear(c2, NULL, 0, 2, NULL), LLM_CACHE_OK);
  memset(&x, 0, sizeof x);
  CHECK_INT(llm_cache_stats(c2, NULL, collect, &x), LLM_CACHE_OK);
  CHECK_INT(x.n, 0);
  llm_cache_close(c2);
  llm_cache_close(c);
}

/* ---- embeddings, semantic vectors, audits --------------------------------------------- */

static void test_embeddings(void)
{
  const char *path = tmp_path("emb.db");
  llm_cache *c = open_at(path, 0, 0);
  uint8_t h[3][32];
  float v0[4] = {1, 2, 3, 4}, v1[4] = {-1, 0.5f, 0, 1e-7f}, v2[2] = {9, 8};
  const float *vecs[3] = {v0, v1, v2}, *got;
  int lens[3] = {4, 4, 2}, dim;
  if (!c)
    return;
  key_of("hello", h[0]);
  key_of("world", h[1]);
  key_of("short", h[2]);
  CHECK_INT(llm_cache_embed_get(c, "m", 0, h[0], 1, &got, &dim), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_embed_put(c, "m", 0, 3, (const uint8_t (*)[32])h, vecs, lens, 1), LLM_CACHE_OK);
  CHECK_INT(llm_cache_embed_get(c, "m", 0, h[1], 1, &got, &dim), LLM_CACHE_OK);
  CHECK_INT(dim, 4);
  CHECK_MEM(got, sizeof(float) * 4, v1, sizeof v1);
  CHECK_INT(llm_cache_embed_get(c, "m", 0, h[2], 1, &got, &dim), LLM_CACHE_OK);
  CHECK_INT(dim, 2);
  CHECK_INT(llm_cache_embed_get(c, "m", 256, h[0], 1, &got, &dim), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_embed_get(c, "other", 0, h[0], 1, &got, &dim), LLM_CACHE_MISS);
  llm_cache_close(c);
}

static void test_semantic_and_audit(void)
{
  const char *path = tmp_path("sem.db");
  llm_cache *c = open_at(path, 1 << 20, 0), *c2;
  llm_cache_sem_hit hit;
  uint8_t k1[32], k2[32], k3[32];
  float a[3] = {1, 0, 0}, b[3] = {0, 1, 0}, near_a[3] = {0.9f, 0.1f, 0};
  int64_t id1 = 0, id2 = 0;
  if (!c)
    return;
  key_of("resp-a", k1);
  key_of("resp-b", k2);
  key_of("resp-c", k3);
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, a, 3, &hit), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_put(c, "ns", k1, "A", 1, 1, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_put(c, "ns", k2, "B", 1, 1, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_sem_add(c, "ns", "emb|3", 1, k1, a, 3, "prompt a", 1, &id1), LLM_CACHE_OK);
  CHECK_INT(llm_cache_sem_add(c, "ns", "emb|3", 1, k2, b, 3, "prompt b", 1, &id2), LLM_CACHE_OK);
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, near_a, 3, &hit), LLM_CACHE_OK);
  CHECK_MEM(hit.key, 32, k1, 32);
  CHECK_STR(hit.prompt, "prompt a");
  CHECK(fabs(hit.similarity - 0.9f / sqrtf(0.82f)) < 1e-5);
  /* other scope, namespace or space: nothing */
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 2, near_a, 3, &hit), LLM_CACHE_MISS);
  CHECK_INT(llm_cache_sem_search(c, "ns2", "emb|3", 1, near_a, 3, &hit), LLM_CACHE_MISS);
  /* a row added by another connection is found at the next search */
  c2 = open_at(path, 0, 0);
  float c_vec[3] = {0, 0, 1};
  CHECK_INT(llm_cache_put(c2, "ns", k3, "C", 1, 1, 0), LLM_CACHE_OK);
  CHECK_INT(llm_cache_sem_add(c2, "ns", "emb|3", 1, k3, c_vec, 3, NULL, 1, NULL), LLM_CACHE_OK);
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, c_vec, 3, &hit), LLM_CACHE_OK);
  CHECK_MEM(hit.key, 32, k3, 32);
  CHECK(hit.prompt == NULL);
  /* deleting a response deletes its vector; the stale row in memory is skipped */
  CHECK_INT(llm_cache_delete(c2, "ns", k1), LLM_CACHE_OK);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM semantic"), 2);
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, a, 3, &hit), LLM_CACHE_OK);
  CHECK(memcmp(hit.key, k1, 32) != 0);
  CHECK_INT(llm_cache_sem_remove(c, "ns", "emb|3", hit.id), LLM_CACHE_OK);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM semantic"), 1);
  /* vectors persist and load on open */
  llm_cache_close(c2);
  llm_cache_close(c);
  c = open_at(path, 0, 0);
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, a, 3, &hit), LLM_CACHE_OK);
  /* a query of another dimension in the same space is misuse */
  float four[4] = {1, 1, 1, 1};
  CHECK_INT(llm_cache_sem_search(c, "ns", "emb|3", 1, four, 4, &hit), LLM_CACHE_EMISUSE);

  /* audit: near misses observed fully (weight 1), hits sampled at 1/4 (weight 4) */
  CHECK_INT(llm_cache_audit_add(c, "ns", 0.85, 1, 1, 5), LLM_CACHE_OK);
  CHECK_INT(llm_cache_audit_add(c, "ns", 0.88, 0, 1, 5), LLM_CACHE_OK);
  CHECK_INT(llm_cache_audit_add(c, "ns", 0.93, 1, 4, 5), LLM_CACHE_OK);
  CHECK_INT(llm_cache_audit_add(c, "ns", 0.97, 0, 4, 5), LLM_CACHE_OK);
  CHECK_INT(llm_cache_audit_add(c, "ns", 0.99, 0, 4, 5), LLM_CACHE_OK);
  CHECK_INT(llm_cache_audit_add(c, "other", 0.99, 1, 1, 5), LLM_CACHE_OK);
  double th[4] = {0.80, 0.90, 0.95, 0.995};
  llm_cache_audit_row rows[4];
  CHECK_INT(llm_cache_audit_table(c, "ns", th, 4, rows), LLM_CACHE_OK);
  CHECK_INT(rows[0].samples, 5);
  CHECK_INT(rows[0].differed, 2);
  CHECK(fabs(rows[0].false_hit_rate - 5.0 / 14.0) < 1e-12); /* (1 + 4) / (1 + 1 + 12) */
  CHECK_INT(rows[1].samples, 3);
  CHECK(fabs(rows[1].false_hit_rate - 1.0 / 3.0) < 1e-12);
  CHECK_INT(rows[2].samples, 2);
  CHECK(rows[2].false_hit_rate == 0);
  CHECK_INT(rows[3].samples, 0);
  CHECK(isnan(rows[3].false_hit_rate));
  llm_cache_close(c);
}

/* ---- schema ---------------------------------------------------------------------------- */

static void test_schema(void)
{
  const char *path = tmp_path("old.db");
  llm_cache_config cfg = {.path = path, .schema_limit = 1};
  llm_cache_hit h;
  uint8_t k[32];
  int status;
  char err[512];
  key_of("kept", k);
  llm_cache *c = llm_cache_open(&cfg, &status, err, sizeof err);
  CHECK(c != NULL);
  if (!c)
    return;
  CHECK_INT(llm_cache_schema_version(c), 1);
  CHECK_INT(llm_cache_put(c, "ns", k, "old", 3, 1, 0), LLM_CACHE_OK);
  llm_cache_close(c);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'embeddings'"), 0);
  /* the current build migrates it once, in order, keeping the data */
  c = open_at(path, 0, 0);
  CHECK_INT(llm_cache_schema_version(c), LLM_CACHE_SCHEMA_VERSION);
  CHECK_INT(llm_cache_get(c, "ns", k, 1, &h), LLM_CACHE_OK);
  CHECK_MEM(h.data, h.len, "old", 3);
  llm_cache_close(c);
  CHECK_INT(sql_int(path, "SELECT group_concat(version) FROM (SELECT version FROM migrations ORDER BY version)"), 1);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM migrations"), 3);
  int64_t applied = sql_int(path, "SELECT CAST(applied_at * 1000 AS INTEGER) FROM migrations WHERE version = 3");
  c = open_at(path, 0, 0); /* nothing more to do: applied_at unchanged */
  llm_cache_close(c);
  CHECK_INT(sql_int(path, "SELECT CAST(applied_at * 1000 AS INTEGER) FROM migrations WHERE version = 3"), applied);

  /* a newer schema is refused, and the file left as it was */
  sql_exec(path, "PRAGMA user_version = 99");
  c = llm_cache_open(&(llm_cache_config){.path = path}, &status, err, sizeof err);
  CHECK(c == NULL);
  CHECK_INT(status, LLM_CACHE_ENEWER);
  CHECK(strstr(err, "newer llmrun") && strstr(err, "schema 99"));
  CHECK_INT(sql_int(path, "PRAGMA user_version"), 99);
  CHECK_INT(sql_int(path, "SELECT count(*) FROM entries"), 1);

  /* some other program's database */
  const char *foreign = tmp_path("foreign.db");
  sql_exec(foreign, "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine')");
  c = llm_cache_open(&(llm_cache_config){.path = foreign}, &status, err, sizeof err);
  CHECK(c == NULL);
  CHECK_INT(status, LLM_CACHE_EFOREIGN);
  CHECK_INT(sql_int(foreign, "SELECT count(*) FROM notes"), 1);
}

/* ---- bad files -------------------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len, long offset)
{
  FILE *f = fopen(path, offset < 0 ? "wb" : "r+b");
  CHECK(f != NULL);
  if (!f)
    return;
  if (offset > 0)
    fseek(f, offset, SEEK_SET);
  fwrite(data, 1, len, f);
  fclose(f);
}

static void test_corrupt(void)
{
  const char *path = tmp_path("garbage.db");
  char junk[8192], err[512];
  int status;
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (char)(i * 7 + 13);
  write_file(path, junk, sizeof junk, -1);
  llm_cache *c = llm_cache_open(&(llm_cache_config){.path = path}, &status, err, sizeof err);
  CHECK(c == NULL);
  CHECK_INT(status, LLM_CACHE_ECORRUPT);
  CHECK(strstr(err, "not a usable sqlite database") != NULL);

  /* a real cache whose pages get damaged: operations fail, nothing crashes */
  path = tmp_path("damaged.db");
  c = open_at(path, 0, 0);
  char name[32], val[3000];
  uint8_t k[32];
  memset(val, 'v', sizeof val);
  for (int i = 0; i < 200; i++) {
    snprintf(name, sizeof name, "e%d", i);
    key_of(name, k);
    llm_cache_put(c, "ns", k, val, sizeof val, 1, 0);
  }
  llm_cache_close(c);
  sql_exec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
  struct stat st;
  stat(path, &st);
  for (long off = 4096 * 2; off + 4096 < st.st_size; off += 4096 * 3)
    write_file(path, junk, 4096, off);
  c = llm_cache_open(&(llm_cache_config){.path = path}, &status, err, sizeof err);
  if (c) {
    int failures = 0;
    llm_cache_hit h;
    for (int i = 0; i < 200; i++) {
      snprintf(name, sizeof name, "e%d", i);
      key_of(name, k);
      int g = llm_cache_get(c, "ns", k, 1, &h);
      failures += g < 0;
      CHECK(g == LLM_CACHE_OK || g == LLM_CACHE_MISS || g < 0);
    }
    key_of("new", k);
    int p = llm_cache_put(c, "ns", k, val, sizeof val, 1, 0);
    char ic[256];
    llm_cache_integrity(c, ic, sizeof ic);
    CHECK(strcmp(ic, "ok") != 0);
    CHECK(failures > 0 || p < 0);
    llm_cache_close(c);
  } else {
    CHECK_INT(status, LLM_CACHE_ECORRUPT);
  }
}

static void test_readonly(void)
{
  const char *path = tmp_path("ro.db");
  llm_cache *c = open_at(path, 0, 0);
  uint8_t k[32];
  llm_cache_hit h;
  int status;
  char err[512];
  key_of("x", k);
  CHECK_INT(llm_cache_put(c, "ns", k, "val", 3, 1, 0), LLM_CACHE_OK);
  llm_cache_close(c);
  /* opened read-only: reads work, writes say why they fail */
  c = llm_cache_open(&(llm_cache_config){.path = path, .readonly = 1}, &status, err, sizeof err);
  CHECK(c != NULL);
  if (c) {
    CHECK_INT(llm_cache_is_readonly(c), 1);
    CHECK_INT(llm_cache_get(c, "ns", k, 1, &h), LLM_CACHE_OK);
    CHECK_INT(llm_cache_put(c, "ns", k, "new", 3, 1, 0), LLM_CACHE_EREADONLY);
    CHECK(strstr(llm_cache_errmsg(c), "read-only") != NULL);
    llm_cache_close(c);
  }
  c = llm_cache_open(&(llm_cache_config){.path = tmp_path("none.db"), .readonly = 1}, &status,
                     err, sizeof err);
  CHECK(c == NULL);
  CHECK_INT(status, LLM_CACHE_MISS);
  CHECK(access(tmp_path("none.db"), F_OK) != 0); /* not created */

  if (geteuid() == 0) {
    printf("note: running as root, so file modes cannot make the cache read-only; "
           "the read-only mode above stands in for them\n");
    return;
  }
  /* a file without write permission, in a directory without it */
  chmod(path, 0400);
  c = open_at(path, 0, 0);
  CHECK(c != NULL);
  if (c) {
    CHECK_INT(llm_cache_get(c, "ns", k, 1, &h), LLM_CACHE_OK);
    CHECK(llm_cache_put(c, "ns", k, "new", 3, 1, 0) < 0);
    llm_cache_close(c);
  }
  chmod(path, 0600);
  char rodir[512];
  snprintf(rodir, sizeof rodir, "%s/rodir", dir);
  mkdir(rodir, 0500);
  char inside[600];
  snprintf(inside, sizeof inside, "%s/cache.db", rodir);
  c = llm_cache_open(&(llm_cache_config){.path = inside}, &status, err, sizeof err);
  CHECK(c == NULL);
  CHECK_INT(status, LLM_CACHE_EREADONLY);
  chmod(rodir, 0700);
}

/* A file size limit makes writes fail the way a full disk does. */
static void test_full(void)
{
  const char *path = tmp_path("full.db");
  llm_cache *c = open_at(path, 0, 0);
  uint8_t k[32];
  char val[4000];
  memset(val, 'f', sizeof val);
  key_of("before", k);
  CHECK_INT(llm_cache_put(c, "ns", k, "kept", 4, 1, 0), LLM_CACHE_OK);
  llm_cache_close(c);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {256 * 1024, 256 * 1024};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    llm_cache *cc = open_at(path, 0, 0);
    int status = LLM_CACHE_OK;
    char name[32];
    for (int i = 0; i < 1000 && status == LLM_CACHE_OK; i++) {
      snprintf(name, sizeof name, "fill-%d", i);
      key_of(name, k);
      status = llm_cache_put(cc, "ns", k, val, sizeof val, 1, 0);
    }
    if (status != LLM_CACHE_OK)
      fprintf(stderr, "(expected) %s\n", llm_cache_errmsg(cc));
    llm_cache_close(cc);
    _exit(status == LLM_CACHE_EFULL ? 0 : 10 - status);
  }
  int ws;
  waitpid(pid, &ws, 0);
  CHECK(WIFEXITED(ws));
  CHECK_INT(WEXITSTATUS(ws), 0);
  c = open_at(path, 0, 0);
  char ic[256];
  CHECK_INT(llm_cache_integrity(c, ic, sizeof ic), LLM_CACHE_OK);
  CHECK_STR(ic, "ok");
  llm_cache_hit h;
  key_of("before", k);
  CHECK_INT(llm_cache_get(c, "ns", k, 1, &h), LLM_CACHE_OK);
  llm_cache_close(c);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/llmrun-test-cache-XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  test_default_path_and_modes();
  test_responses();
  test_huge_and_eviction();
  test_stats_and_clear();
  test_embeddings();
  test_semantic_and_audit();
  test_schema();
  test_corrupt();
  test_readonly();
  test_full();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_report("cache");
}
