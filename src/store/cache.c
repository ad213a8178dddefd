/* The cache store: statements and transactions, responses, the memory
 * layer, eviction. Opening, the schema and its migrations are in
 * cache_open.c, statistics in cache_stats.c, vectors in cache_vectors.c,
 * deferred stores in cache_defer.c. See cache.h for the design. */
#include "cache_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Eviction brings the store down to this share of max_bytes, so that a
 * full store does not evict on every write. */
#define EVICT_TARGET 0.9
#define EVICT_BATCH 64
/* Expired entries are swept at most this often (seconds) by writers. */
#define PURGE_INTERVAL 60.0
/* How often (seconds) the memory layer looks for a clear by another
 * process: the look is a read transaction (~5 us), ten times the cost of
 * a memory hit, so a clear elsewhere is seen within this delay. */
#define SHARED_CHECK_INTERVAL 0.1

/* ---- statuses and errors ---------------------------------------------------------- */

const char *llm_cache_status_name(int status)
{
  switch (status) {
  case LLM_CACHE_OK: return "ok";
  case LLM_CACHE_MISS: return "miss";
  case LLM_CACHE_EIO: return "io";
  case LLM_CACHE_ENOMEM: return "memory";
  case LLM_CACHE_ENEWER: return "newer_schema";
  case LLM_CACHE_ECORRUPT: return "corrupt";
  case LLM_CACHE_EREADONLY: return "readonly";
  case LLM_CACHE_EFULL: return "full";
  case LLM_CACHE_EFOREIGN: return "foreign";
  case LLM_CACHE_ETOOBIG: return "too_big";
  case LLM_CACHE_EMISUSE: return "misuse";
  default: return "unknown";
  }
}

int cache_error(llm_cache *c, int status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
  va_end(ap);
  return status;
}

static int status_of(int rc, int err)
{
  switch (rc & 0xff) {
  case SQLITE_FULL: return LLM_CACHE_EFULL;
  case SQLITE_READONLY: return LLM_CACHE_EREADONLY;
  case SQLITE_CORRUPT: case SQLITE_NOTADB: return LLM_CACHE_ECORRUPT;
  case SQLITE_NOMEM: return LLM_CACHE_ENOMEM;
  case SQLITE_TOOBIG: return LLM_CACHE_ETOOBIG;
  case SQLITE_IOERR: case SQLITE_CANTOPEN:
    /* a file size limit shows as a write error with EFBIG */
    if (err == ENOSPC || err == EFBIG || err == EDQUOT)
      return LLM_CACHE_EFULL;
    if (err == EROFS || err == EACCES || err == EPERM)
      return LLM_CACHE_EREADONLY;
    return LLM_CACHE_EIO;
  default: return LLM_CACHE_EIO;
  }
}

int cache_fail(llm_cache *c, int rc, const char *what)
{
  /* sqlite keeps the errno of some failures only; the C errno right after
   * the failing call still holds it for the others (EFBIG, ENOSPC) */
  int err = sqlite3_system_errno(c->db);
  if (!err && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN))
    err = errno;
  int status = status_of(rc, err);
  if (err && (rc & 0xff) != SQLITE_CONSTRAINT)
    return cache_error(c, status, "%s: %s (%s) in %s", what, sqlite3_errmsg(c->db),
                       strerror(err), c->path);
  return cache_error(c, status, "%s: %s in %s", what, sqlite3_errmsg(c->db), c->path);
}

const char *llm_cache_path(const llm_cache *c) { return c->path; }
const char *llm_cache_errmsg(const llm_cache *c) { return c->errmsg; }
int llm_cache_is_readonly(const llm_cache *c) { return c->readonly; }
const char *llm_cache_readonly_reason(const llm_cache *c) { return c->readonly_why; }
int llm_cache_schema_version(const llm_cache *c) { return c->schema; }

char *cache_keep(llm_cache *c, const void *data, size_t len)
{
  llm_buf_reset(&c->buf);
  llm_buf_put(&c->buf, data, len);
  return c->buf.failed ? NULL : c->buf.data;
}

/* ---- statements -------------------------------------------------------------------- */

static const char *const sql[S_COUNT] = {
  [S_BEGIN] = "BEGIN IMMEDIATE",
  [S_COMMIT] = "COMMIT",
  [S_ROLLBACK] = "ROLLBACK",
  [S_GET] = "SELECT value, created, expires FROM entries WHERE ns = ?1 AND key = ?2",
  [S_PUT] = "INSERT INTO entries (ns, key, value, size, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, size = excluded.size, "
            "created = excluded.created, expires = excluded.expires",
  [S_DELETE] = "DELETE FROM entries WHERE ns = ?1 AND key = ?2",
  [S_DATA_VERSION] = "PRAGMA data_version",
  [S_GENERATION] = "SELECT value FROM meta WHERE name = 'generation'",
  [S_BUMP_GENERATION] = "UPDATE meta SET value = value + 1 WHERE name = 'generation'",
  [S_TOTAL_BYTES] = "SELECT bytes FROM totals WHERE id = 1",
  [S_PURGE_EXPIRED] = "DELETE FROM entries WHERE expires > 0 AND expires <= ?1",
  [S_OLDEST_ENTRY] = "SELECT MIN(created) FROM entries",
  [S_OLDEST_EMBEDDING] = "SELECT MIN(created) FROM embeddings",
  [S_EVICT_ENTRIES] = "DELETE FROM entries WHERE rowid IN "
                      "(SELECT rowid FROM entries ORDER BY created LIMIT ?1)",
  [S_EVICT_EMBEDDINGS] = "DELETE FROM embeddings WHERE rowid IN "
                         "(SELECT rowid FROM embeddings ORDER BY created LIMIT ?1)",
  [S_STATS_UPSERT] =
    "INSERT INTO stats (ns, hits_exact, hits_semantic, hits_shared, misses, stores, skipped, "
    "errors, tokens_saved, cost_saved, time_saved_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
    "ON CONFLICT (ns) DO UPDATE SET hits_exact = hits_exact + excluded.hits_exact, "
    "hits_semantic = hits_semantic + excluded.hits_semantic, hits_shared = hits_shared + excluded.hits_shared, "
    "misses = misses + excluded.misses, stores = stores + excluded.stores, "
    "skipped = skipped + excluded.skipped, errors = errors + excluded.errors, "
    "tokens_saved = tokens_saved + excluded.tokens_saved, cost_saved = cost_saved + excluded.cost_saved, "
    "time_saved_ms = time_saved_ms + excluded.time_saved_ms",
  [S_EMB_GET] = "SELECT vec FROM embeddings WHERE model = ?1 AND dims = ?2 AND text = ?3",
  [S_EMB_PUT] = "INSERT INTO embeddings (model, dims, text, vec, created) VALUES (?1, ?2, ?3, ?4, ?5) "
                "ON CONFLICT (model, dims, text) DO UPDATE SET vec = excluded.vec, created = excluded.created",
  [S_SEM_ADD] = "INSERT INTO semantic (ns, space, scope, key, vec, prompt, created) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
  [S_SEM_LOAD] = "SELECT id, scope, vec FROM semantic WHERE ns = ?1 AND space = ?2 AND id > ?3 ORDER BY id",
  [S_SEM_DELETE] = "DELETE FROM semantic WHERE id = ?1",
  [S_AUDIT_ADD] = "INSERT INTO audit (ns, similarity, differs, weight, created) VALUES (?1, ?2, ?3, ?4, ?5)",
};

sqlite3_stmt *cache_stmt(llm_cache *c, int id)
{
  if (!c->st[id]) {
    int rc = sqlite3_prepare_v3(c->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
    if (rc != SQLITE_OK) {
      cache_fail(c, rc, "preparing a statement");
      c->st[id] = NULL;
      return NULL;
    }
  }
  return c->st[id];
}

/* Runs a statement that returns no rows (or ignores them); resets it. */
int cache_run(llm_cache *c, sqlite3_stmt *st, const char *what)
{
  int rc, status = LLM_CACHE_OK;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE)
    status = cache_fail(c, rc, what); /* before the reset, which forgets errno */
  sqlite3_reset(st);
  return status;
}

/* The first column of the first row as an integer (def when no row). */
int64_t cache_scalar(llm_cache *c, sqlite3_stmt *st, int64_t def, int *status)
{
  int rc = sqlite3_step(st);
  int64_t v = def;
  *status = LLM_CACHE_OK;
  if (rc == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else if (rc != SQLITE_DONE)
    *status = cache_fail(c, rc, "reading");
  sqlite3_reset(st);
  return v;
}

/* ---- transactions --------------------------------------------------------------- */

int cache_begin(llm_cache *c)
{
  sqlite3_stmt *st;
  if (c->readonly)
    return cache_error(c, LLM_CACHE_EREADONLY, "%s is read-only", c->path);
  if (c->ndeferred && !c->writing_deferred) { /* waiting puts come first */
    int status = llm_cache_write_deferred(c);
    if (status != LLM_CACHE_OK)
      return status;
  }
  st = cache_stmt(c, S_BEGIN);
  if (!st)
    return LLM_CACHE_EIO;
  c->stats_in_txn = 0;
  return cache_run(c, st, "starting a write");
}

void cache_rollback(llm_cache *c)
{
  sqlite3_stmt *st = cache_stmt(c, S_ROLLBACK);
  if (st && !sqlite3_get_autocommit(c->db)) {
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  c->stats_in_txn = 0;
}

int cache_commit(llm_cache *c)
{
  sqlite3_stmt *st = cache_stmt(c, S_COMMIT);
  int status = st ? cache_run(c, st, "committing") : LLM_CACHE_EIO;
  if (status != LLM_CACHE_OK) {
    cache_rollback(c);
    return status;
  }
  if (c->stats_in_txn) {
    /* the counts are on disk now: forget them here */
    for (int i = 0; i < c->npending; i++) {
      memset(&c->pending[i].counts, 0, sizeof c->pending[i].counts);
      c->pending[i].dirty = 0;
    }
    c->stats_in_txn = 0;
  }
  return LLM_CACHE_OK;
}


/* ---- the memory layer ----------------------------------------------------------------- */

/* Key of an entry in the LRU: 'r', namespace, NUL, hash. */
static size_t lru_key(char *out, size_t cap, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE])
{
  size_t n = strlen(ns);
  if (n + 2 + LLM_CACHE_KEY_SIZE > cap)
    return 0;
  out[0] = 'r';
  memcpy(out + 1, ns, n + 1);
  memcpy(out + n + 2, key, LLM_CACHE_KEY_SIZE);
  return n + 2 + LLM_CACHE_KEY_SIZE;
}

/* Another process committed: if it cleared the store (the generation
 * moved), what memory holds may be gone on disk. Any write by another
 * connection moves data_version; only a clear moves the generation.
 * Looked at no more often than SHARED_CHECK_INTERVAL. */
void cache_check_generation(llm_cache *c)
{
  sqlite3_stmt *st;
  struct timespec ts;
  int status;
  int64_t dv, gen;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  if (c->data_version >= 0 && t - c->last_shared_check < SHARED_CHECK_INTERVAL)
    return;
  c->last_shared_check = t;
  if (!(st = cache_stmt(c, S_DATA_VERSION)))
    return;
  dv = cache_scalar(c, st, -1, &status);
  if (status != LLM_CACHE_OK || dv == c->data_version)
    return;
  c->data_version = dv;
  st = cache_stmt(c, S_GENERATION);
  if (!st)
    return;
  gen = cache_scalar(c, st, 0, &status);
  if (status == LLM_CACHE_OK && gen != c->generation) {
    c->generation = gen;
    if (c->lru)
      llm_lru_clear(c->lru);
    cache_drop_spaces(c);
  }
}

/* ---- responses ----------------------------------------------------------------------- */

int llm_cache_get(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                  double now, llm_cache_hit *hit)
{
  char lk[512];
  size_t lklen = 0;
  sqlite3_stmt *st;
  int rc;
  if (c->lru) {
    llm_lru_value v;
    cache_check_generation(c);
    lklen = lru_key(lk, sizeof lk, ns, key);
    if (lklen && llm_lru_get(c->lru, lk, lklen, now, &v)) {
      hit->data = v.data;
      hit->len = v.len;
      hit->created = v.created;
      hit->expires = v.expires;
      hit->from_memory = 1;
      c->memory_hits++;
      return LLM_CACHE_OK;
    }
  }
  if (c->ndeferred) {
    const deferred_put *d = cache_defer_find(c, ns, key);
    if (d) {
      if (d->expires > 0 && d->expires <= now) {
        c->misses++;
        return LLM_CACHE_MISS;
      }
      if (!(hit->data = cache_keep(c, d->data, d->len)))
        return cache_error(c, LLM_CACHE_ENOMEM, "out of memory reading %s", c->path);
      hit->len = d->len;
      hit->created = d->created;
      hit->expires = d->expires;
      hit->from_memory = 1;
      c->memory_hits++;
      return LLM_CACHE_OK;
    }
  }
  st = cache_stmt(c, S_GET);
  if (!st)
    return LLM_CACHE_EIO;
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, key, LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    double expires = sqlite3_column_double(st, 2);
    if (expires > 0 && expires <= now) {
      sqlite3_reset(st);
      c->misses++;
      return LLM_CACHE_MISS;
    }
    const void *data = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    hit->data = cache_keep(c, data, len);
    hit->len = len;
    hit->created = sqlite3_column_double(st, 1);
    hit->expires = expires;
    hit->from_memory = 0;
    sqlite3_reset(st);
    if (!hit->data)
      return cache_error(c, LLM_CACHE_ENOMEM, "out of memory reading %s", c->path);
    if (lklen)
      llm_lru_put(c->lru, lk, lklen, hit->data, len, hit->created, expires);
    c->disk_hits++;
    return LLM_CACHE_OK;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return cache_fail(c, rc, "looking up a response");
  c->misses++;
  return LLM_CACHE_MISS;
}

int cache_insert(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                 const void *data, size_t len, double now, double expires)
{
  sqlite3_stmt *st = cache_stmt(c, S_PUT);
  if (!st)
    return LLM_CACHE_EIO;
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, key, LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
  sqlite3_bind_blob64(st, 3, data, len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)(len + strlen(ns) + LLM_CACHE_KEY_SIZE + 24));
  sqlite3_bind_double(st, 5, now);
  sqlite3_bind_double(st, 6, expires);
  return cache_run(c, st, "storing a response");
}

int llm_cache_put(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE],
                  const void *data, size_t len, double now, double ttl)
{
  double expires = ttl > 0 ? now + ttl : 0;
  int status;
  if (len > c->max_entry_bytes)
    return cache_error(c, LLM_CACHE_ETOOBIG, "a value of %zu bytes is over the %zu-byte limit "
                       "for one entry", len, c->max_entry_bytes);
  if (c->defer_puts) {
    if (c->readonly)
      return cache_error(c, LLM_CACHE_EREADONLY, "%s is read-only", c->path);
    status = cache_defer_add(c, ns, key, data, len, now, expires);
  } else {
    if ((status = cache_begin(c)) != LLM_CACHE_OK)
      return status;
    if ((status = cache_insert(c, ns, key, data, len, now, expires)) != LLM_CACHE_OK ||
        (status = cache_before_commit(c, now)) != LLM_CACHE_OK) {
      cache_rollback(c);
      return status;
    }
    status = cache_commit(c);
  }
  if (status != LLM_CACHE_OK)
    return status;
  if (c->lru) {
    char lk[512];
    size_t lklen = lru_key(lk, sizeof lk, ns, key);
    if (lklen)
      llm_lru_put(c->lru, lk, lklen, data, len, now, expires);
  }
  return LLM_CACHE_OK;
}

int llm_cache_delete(llm_cache *c, const char *ns, const uint8_t key[LLM_CACHE_KEY_SIZE])
{
  sqlite3_stmt *st;
  int status;
  if (c->lru) {
    char lk[512];
    size_t lklen = lru_key(lk, sizeof lk, ns, key);
    if (lklen)
      llm_lru_del(c->lru, lk, lklen);
  }
  if ((status = cache_begin(c)) != LLM_CACHE_OK)
    return status;
  st = cache_stmt(c, S_DELETE);
  if (!st) {
    cache_rollback(c);
    return LLM_CACHE_EIO;
  }
  sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, key, LLM_CACHE_KEY_SIZE, SQLITE_STATIC);
  if ((status = cache_run(c, st, "deleting a response")) != LLM_CACHE_OK) {
    cache_rollback(c);
    return status;
  }
  return cache_commit(c);
}

/* Runs a one-off statement with an optional text and number parameter. */
static int run_sql(llm_cache *c, const char *text, const char *s1, double d2, int64_t *changes)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(c->db, text, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "preparing");
  if (s1 && sqlite3_bind_parameter_index(st, "?1"))
    sqlite3_bind_text(st, 1, s1, -1, SQLITE_TRANSIENT);
  if (sqlite3_bind_parameter_index(st, "?2"))
    sqlite3_bind_double(st, 2, d2);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    ;
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return cache_fail(c, rc, "clearing");
  if (changes)
    *changes += sqlite3_changes(c->db);
  return LLM_CACHE_OK;
}

int llm_cache_clear(llm_cache *c, const char *ns, int expired_only, double now, int64_t *removed)
{
  int64_t n = 0;
  int status = cache_begin(c);
  if (status != LLM_CACHE_OK)
    return status;
  if (expired_only) {
    status = run_sql(c, ns ? "DELETE FROM entries WHERE ns = ?1 AND expires > 0 AND expires <= ?2"
                           : "DELETE FROM entries WHERE expires > 0 AND expires <= ?2", ns, now, &n);
  } else if (ns) {
    status = run_sql(c, "DELETE FROM entries WHERE ns = ?1", ns, 0, &n);
    if (status == LLM_CACHE_OK && c->schema >= 3)
      status = run_sql(c, "DELETE FROM semantic WHERE ns = ?1", ns, 0, NULL);
    if (status == LLM_CACHE_OK && c->schema >= 3)
      status = run_sql(c, "DELETE FROM audit WHERE ns = ?1", ns, 0, NULL);
    if (status == LLM_CACHE_OK)
      status = run_sql(c, "DELETE FROM stats WHERE ns = ?1", ns, 0, NULL);
  } else {
    status = run_sql(c, "DELETE FROM entries", NULL, 0, &n);
    if (status == LLM_CACHE_OK && c->schema >= 2)
      status = run_sql(c, "DELETE FROM embeddings", NULL, 0, NULL);
    if (status == LLM_CACHE_OK && c->schema >= 3)
      status = run_sql(c, "DELETE FROM semantic", NULL, 0, NULL);
    if (status == LLM_CACHE_OK && c->schema >= 3)
      status = run_sql(c, "DELETE FROM audit", NULL, 0, NULL);
    if (status == LLM_CACHE_OK)
      status = run_sql(c, "DELETE FROM stats", NULL, 0, NULL);
  }
  if (status == LLM_CACHE_OK) {
    sqlite3_stmt *st = cache_stmt(c, S_BUMP_GENERATION);
    status = st ? cache_run(c, st, "clearing") : LLM_CACHE_EIO;
  }
  if (status != LLM_CACHE_OK) {
    cache_rollback(c);
    return status;
  }
  if ((status = cache_commit(c)) != LLM_CACHE_OK)
    return status;
  if (!expired_only) {
    /* pending counts of what was cleared go too */
    for (int i = 0; i < c->npending; i++)
      if (!ns || strcmp(c->pending[i].ns, ns) == 0) {
        memset(&c->pending[i].counts, 0, sizeof c->pending[i].counts);
        c->pending[i].dirty = 0;
      }
  }
  if (c->lru)
    llm_lru_clear(c->lru);
  cache_drop_spaces(c);
  if (removed)
    *removed = n;
  return LLM_CACHE_OK;
}

/* ---- eviction and statistics, inside a write ------------------------------------------- */

static double min_created(llm_cache *c, int id, int *status)
{
  sqlite3_stmt *st = cache_stmt(c, id);
  double v = INFINITY;
  int rc;
  *status = LLM_CACHE_OK;
  if (!st) {
    *status = LLM_CACHE_EIO;
    return v;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    v = sqlite3_column_double(st, 0);
  else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    *status = cache_fail(c, rc, "evicting");
  sqlite3_reset(st);
  return v;
}

static int evict(llm_cache *c, double now)
{
  sqlite3_stmt *st;
  int status;
  int64_t total, target;
  if (now - c->last_purge >= PURGE_INTERVAL) {
    c->last_purge = now;
    if (!(st = cache_stmt(c, S_PURGE_EXPIRED)))
      return LLM_CACHE_EIO;
    sqlite3_bind_double(st, 1, now);
    if ((status = cache_run(c, st, "removing expired entries")) != LLM_CACHE_OK)
      return status;
  }
  if (c->max_bytes <= 0)
    return LLM_CACHE_OK;
  if (!(st = cache_stmt(c, S_TOTAL_BYTES)))
    return LLM_CACHE_EIO;
  total = cache_scalar(c, st, 0, &status);
  if (status != LLM_CACHE_OK || total <= c->max_bytes)
    return status;
  target = (int64_t)((double)c->max_bytes * EVICT_TARGET);
  /* bounded: each round removes up to EVICT_BATCH rows or stops */
  for (int round = 0; round < 100000 && total > target; round++) {
    double e = min_created(c, S_OLDEST_ENTRY, &status), m = INFINITY;
    if (status != LLM_CACHE_OK)
      return status;
    if (c->schema >= 2 && (m = min_created(c, S_OLDEST_EMBEDDING, &status), status != LLM_CACHE_OK))
      return status;
    if (isinf(e) && isinf(m))
      break;
    if (!(st = cache_stmt(c, e <= m ? S_EVICT_ENTRIES : S_EVICT_EMBEDDINGS)))
      return LLM_CACHE_EIO;
    sqlite3_bind_int(st, 1, EVICT_BATCH);
    if ((status = cache_run(c, st, "evicting")) != LLM_CACHE_OK)
      return status;
    if (!(st = cache_stmt(c, S_TOTAL_BYTES)))
      return LLM_CACHE_EIO;
    total = cache_scalar(c, st, 0, &status);
    if (status != LLM_CACHE_OK)
      return status;
  }
  return LLM_CACHE_OK;
}

int cache_before_commit(llm_cache *c, double now)
{
  int status = evict(c, now);
  if (status != LLM_CACHE_OK)
    return status;
  return cache_write_stats(c);
}
