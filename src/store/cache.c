/* The cache store: opening, the schema and its migrations, responses,
 * eviction. Statistics are in cache_stats.c, vectors in cache_vectors.c.
 * See cache.h for the design. */
#include "cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "sqlite_wal.h"

/* PRAGMA application_id of an llmrun cache ("llmc"), so a file of some
 * other program is recognised and left alone. */
#define APP_ID 0x6c6c6d63
#define DEFAULT_BUSY_MS 5000
#define DEFAULT_MAX_ENTRY (64u << 20)
/* Eviction brings the store down to this share of max_bytes, so that a
 * full store does not evict on every write. */
#define EVICT_TARGET 0.9
#define EVICT_BATCH 64
/* Bytes of the file read through a memory map. */
#define MMAP_BYTES "268435456"
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

/* ---- opening ------------------------------------------------------------------------ */

int llm_cache_default_path(char *out, size_t n, int create_dir)
{
  char dir[PATH_MAX];
  int w;
  if (llm_xdg_dir("cache", create_dir, dir, sizeof dir) != 0)
    return -1;
  w = snprintf(out, n, "%s/cache.db", dir);
  if (w < 0 || (size_t)w >= n) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

/* Migrations, in order. Each runs once, in one transaction with the
 * version bump; each statement is also safe to run again. Never edit a
 * released one: add the next. */
static const struct migration {
  int version;
  const char *name;
  const char *sql;
} migrations[] = {
  {1, "responses",
   "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;"
   "INSERT OR IGNORE INTO meta VALUES ('generation', 0);"
   "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
   "  applied_at REAL NOT NULL);"
   "CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);"
   "INSERT OR IGNORE INTO totals VALUES (1, 0);"
   "CREATE TABLE IF NOT EXISTS entries (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
   "  size INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL DEFAULT 0,"
   "  UNIQUE (ns, key));"
   "CREATE INDEX IF NOT EXISTS entries_by_created ON entries (created);"
   "CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires) WHERE expires > 0;"
   "CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN"
   "  UPDATE totals SET bytes = bytes + new.size WHERE id = 1; END;"
   "CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN"
   "  UPDATE totals SET bytes = bytes - old.size WHERE id = 1; END;"
   "CREATE TRIGGER IF NOT EXISTS entries_resized AFTER UPDATE OF size ON entries BEGIN"
   "  UPDATE totals SET bytes = bytes - old.size + new.size WHERE id = 1; END;"
   "CREATE TABLE IF NOT EXISTS stats (ns TEXT PRIMARY KEY,"
   "  hits_exact REAL NOT NULL DEFAULT 0, hits_semantic REAL NOT NULL DEFAULT 0,"
   "  hits_shared REAL NOT NULL DEFAULT 0, misses REAL NOT NULL DEFAULT 0,"
   "  stores REAL NOT NULL DEFAULT 0, skipped REAL NOT NULL DEFAULT 0,"
   "  errors REAL NOT NULL DEFAULT 0, tokens_saved REAL NOT NULL DEFAULT 0,"
   "  cost_saved REAL NOT NULL DEFAULT 0, time_saved_ms REAL NOT NULL DEFAULT 0) WITHOUT ROWID;"},
  {2, "embeddings",
   "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, dims INTEGER NOT NULL,"
   "  text BLOB NOT NULL, vec BLOB NOT NULL, created REAL NOT NULL, UNIQUE (model, dims, text));"
   "CREATE INDEX IF NOT EXISTS embeddings_by_created ON embeddings (created);"
   "CREATE TRIGGER IF NOT EXISTS embeddings_added AFTER INSERT ON embeddings BEGIN"
   "  UPDATE totals SET bytes = bytes + length(new.vec) + 64 WHERE id = 1; END;"
   "CREATE TRIGGER IF NOT EXISTS embeddings_removed AFTER DELETE ON embeddings BEGIN"
   "  UPDATE totals SET bytes = bytes - length(old.vec) - 64 WHERE id = 1; END;"
   "CREATE TRIGGER IF NOT EXISTS embeddings_resized AFTER UPDATE OF vec ON embeddings BEGIN"
   "  UPDATE totals SET bytes = bytes - length(old.vec) + length(new.vec) WHERE id = 1; END;"},
  {3, "semantic",
   "CREATE TABLE IF NOT EXISTS semantic (id INTEGER PRIMARY KEY, ns TEXT NOT NULL,"
   "  space TEXT NOT NULL, scope INTEGER NOT NULL, key BLOB NOT NULL, vec BLOB NOT NULL,"
   "  prompt TEXT, created REAL NOT NULL);"
   "CREATE INDEX IF NOT EXISTS semantic_by_space ON semantic (ns, space, id);"
   "CREATE INDEX IF NOT EXISTS semantic_by_key ON semantic (ns, key);"
   "CREATE TRIGGER IF NOT EXISTS semantic_added AFTER INSERT ON semantic BEGIN"
   "  UPDATE totals SET bytes = bytes + length(new.vec) + length(coalesce(new.prompt, '')) + 64"
   "  WHERE id = 1; END;"
   "CREATE TRIGGER IF NOT EXISTS semantic_removed AFTER DELETE ON semantic BEGIN"
   "  UPDATE totals SET bytes = bytes - length(old.vec) - length(coalesce(old.prompt, '')) - 64"
   "  WHERE id = 1; END;"
   /* a vector is only worth keeping while the response it points at is */
   "CREATE TRIGGER IF NOT EXISTS semantic_follows_entries AFTER DELETE ON entries BEGIN"
   "  DELETE FROM semantic WHERE ns = old.ns AND key = old.key; END;"
   "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, ns TEXT NOT NULL,"
   "  similarity REAL NOT NULL, differs INTEGER NOT NULL, weight REAL NOT NULL,"
   "  created REAL NOT NULL);"
   "CREATE INDEX IF NOT EXISTS audit_by_ns ON audit (ns, similarity);"},
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static int pragma_int(llm_cache *c, const char *pragma, int64_t *out)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(c->db, pragma, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cache_fail(c, rc, "reading the database header");
  rc = sqlite3_step(st);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return cache_fail(c, rc, "reading the database header");
  return LLM_CACHE_OK;
}

static int exec(llm_cache *c, const char *text, const char *what)
{
  int rc = sqlite3_exec(c->db, text, NULL, NULL, NULL);
  return rc == SQLITE_OK ? LLM_CACHE_OK : cache_fail(c, rc, what);
}

static int refuse_newer(llm_cache *c, int64_t version)
{
  return cache_error(c, LLM_CACHE_ENEWER,
    "%s was written by a newer llmrun (cache schema %lld; this llmrun knows up to %d): "
    "refusing to use it. Upgrade llmrun, or give this one another cache file "
    "(llm.cache.open{path = ...})", c->path, (long long)version, LLM_CACHE_SCHEMA_VERSION);
}

/* Is this file ours (or empty)? Reading the header also finds a file that
 * is not a database at all. */
static int not_a_cache(llm_cache *c, const char *detail)
{
  return cache_error(c, LLM_CACHE_ECORRUPT, "%s is not a usable sqlite database (%s): move it "
                     "away or delete it, and llmrun will start a new cache", c->path, detail);
}

static int check_identity(llm_cache *c, int64_t *version)
{
  int64_t app, tables;
  int status = pragma_int(c, "PRAGMA application_id", &app);
  if (status == LLM_CACHE_ECORRUPT)
    return not_a_cache(c, sqlite3_errmsg(c->db));
  if (status != LLM_CACHE_OK)
    return status;
  if ((status = pragma_int(c, "PRAGMA user_version", version)) != LLM_CACHE_OK)
    return status;
  if (app == APP_ID)
    return LLM_CACHE_OK;
  if (app == 0 && *version == 0) {
    status = pragma_int(c, "SELECT count(*) FROM sqlite_schema", &tables);
    if (status != LLM_CACHE_OK)
      return status;
    if (tables == 0)
      return LLM_CACHE_OK; /* new and empty */
  }
  return cache_error(c, LLM_CACHE_EFOREIGN, "%s is a database of some other program "
                     "(application_id %lld): not touching it", c->path, (long long)app);
}

static int migrate(llm_cache *c, int target)
{
  int64_t version;
  char text[256];
  int status = cache_begin(c);
  if (status != LLM_CACHE_OK)
    return status;
  /* another process may have migrated while we waited for the lock */
  if ((status = pragma_int(c, "PRAGMA user_version", &version)) != LLM_CACHE_OK)
    goto fail;
  if (version > LLM_CACHE_SCHEMA_VERSION) {
    status = refuse_newer(c, version);
    goto fail;
  }
  for (int i = 0; i < NMIGRATIONS; i++) {
    const struct migration *m = &migrations[i];
    if (m->version <= version || m->version > target)
      continue;
    if ((status = exec(c, m->sql, m->name)) != LLM_CACHE_OK)
      goto fail;
    snprintf(text, sizeof text, "INSERT OR REPLACE INTO migrations VALUES (%d, '%s', "
             "(julianday('now') - 2440587.5) * 86400.0)", m->version, m->name);
    if ((status = exec(c, text, "recording a migration")) != LLM_CACHE_OK)
      goto fail;
    snprintf(text, sizeof text, "PRAGMA user_version = %d", m->version);
    if ((status = exec(c, text, "setting the schema version")) != LLM_CACHE_OK)
      goto fail;
    version = m->version;
  }
  snprintf(text, sizeof text, "PRAGMA application_id = %d", APP_ID);
  if ((status = exec(c, text, "marking the file")) != LLM_CACHE_OK)
    goto fail;
  status = cache_commit(c);
  if (status == LLM_CACHE_OK)
    c->schema = (int)version;
  return status;
fail:
  cache_rollback(c);
  return status;
}

/* Creates the file 0600 (and missing directories 0700) before sqlite
 * sees it: sqlite would create it 0644 minus the umask, and gives the -wal
 * and -shm files the mode of the database file. */
static int create_private(llm_cache *c)
{
  char dir[PATH_MAX];
  const char *slash = strrchr(c->path, '/');
  int fd;
  if (slash && slash != c->path) {
    size_t n = (size_t)(slash - c->path);
    if (n >= sizeof dir)
      return cache_error(c, LLM_CACHE_EIO, "path too long: %s", c->path);
    memcpy(dir, c->path, n);
    dir[n] = '\0';
    if (llm_mkdir_p(dir, 0700) != 0)
      return cache_error(c, errno == EACCES || errno == EROFS ? LLM_CACHE_EREADONLY : LLM_CACHE_EIO,
                         "cannot create the directory %s: %s", dir, strerror(errno));
  }
  fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return LLM_CACHE_OK;
  }
  if ((errno == EACCES || errno == EROFS || errno == EPERM) && llm_file_exists(c->path)) {
    c->readonly = 1; /* an existing file we may still read */
    snprintf(c->readonly_why, sizeof c->readonly_why, "%s cannot be written: %s", c->path,
             strerror(errno));
    return LLM_CACHE_OK;
  }
  return cache_error(c, errno == EACCES || errno == EROFS || errno == EPERM
                     ? LLM_CACHE_EREADONLY : errno == ENOSPC ? LLM_CACHE_EFULL : LLM_CACHE_EIO,
                     "cannot create %s: %s", c->path, strerror(errno));
}

static int open_db(llm_cache *c, const llm_cache_config *cfg)
{
  int64_t version;
  int target = cfg->schema_limit > 0 && cfg->schema_limit < LLM_CACHE_SCHEMA_VERSION
               ? cfg->schema_limit : LLM_CACHE_SCHEMA_VERSION;
  int status, rc, ro;
  int busy = cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : DEFAULT_BUSY_MS;
  char why[sizeof c->readonly_why];

  c->readonly = cfg->readonly;
  if (c->readonly && !llm_file_exists(c->path))
    return cache_error(c, LLM_CACHE_MISS, "no cache at %s", c->path);
  if (!c->readonly && (status = create_private(c)) != LLM_CACHE_OK)
    return status;
  /* read-only storage: read what is there (sqlite_wal.h) */
  rc = llm_sqlite_open(c->path, SQLITE_OPEN_NOMUTEX, busy, c->readonly, &c->db, &ro, why,
                       sizeof why);
  if (rc != SQLITE_OK) {
    int code = c->db ? sqlite3_extended_errcode(c->db) : rc;
    if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
      return not_a_cache(c, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    llm_sqlite_describe_failure(c->db, code, c->path, why, sizeof why);
    return cache_error(c, LLM_CACHE_EIO, "cannot read the cache: %s", why);
  }
  if (ro && !c->readonly) {
    c->readonly = 1;
    snprintf(c->readonly_why, sizeof c->readonly_why, "%s", why);
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, busy);
  if (sqlite3_db_readonly(c->db, "main") == 1 && !c->readonly) {
    c->readonly = 1;
    snprintf(c->readonly_why, sizeof c->readonly_why, "%s is read-only", c->path);
  }

  if ((status = check_identity(c, &version)) != LLM_CACHE_OK)
    return status;
  if (version > LLM_CACHE_SCHEMA_VERSION)
    return refuse_newer(c, version);
  if (!c->readonly) {
    /* WAL is a property of the file (it stays set); synchronous is per connection */
    rc = llm_sqlite_use_wal(c->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : DEFAULT_BUSY_MS);
    if (rc != SQLITE_OK) {
      cache_fail(c, rc, "switching to WAL");
      if (version >= target) {
        c->readonly = 1; /* e.g. a read-only directory: reads still work */
        snprintf(c->readonly_why, sizeof c->readonly_why, "%s", c->errmsg);
      }
      else
        return LLM_CACHE_EREADONLY;
    }
  }
  exec(c, "PRAGMA synchronous = NORMAL", "setting synchronous");
  /* reads through a memory map (no read() and copy per page), as
   * diskcache does; sqlite falls back to read() where mmap is unavailable */
  exec(c, "PRAGMA mmap_size = " MMAP_BYTES, "setting mmap_size");
  c->schema = (int)version;
  if (version < target) {
    if (c->readonly)
      return cache_error(c, LLM_CACHE_EREADONLY, "%s needs its schema upgraded (%lld to %d) "
                         "but is read-only", c->path, (long long)version, target);
    if ((status = migrate(c, target)) != LLM_CACHE_OK)
      return status;
  }
  return LLM_CACHE_OK;
}

llm_cache *llm_cache_open(const llm_cache_config *cfg, int *status, char *err, size_t errlen)
{
  llm_cache_config none = {0};
  char def[PATH_MAX];
  llm_cache *c;
  int st;
  if (!cfg)
    cfg = &none;
  *status = LLM_CACHE_ENOMEM;
  if (err && errlen)
    snprintf(err, errlen, "out of memory");
  c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (!cfg->path || !cfg->path[0]) {
    if (llm_cache_default_path(def, sizeof def, !cfg->readonly) != 0) {
      *status = LLM_CACHE_EIO;
      if (err && errlen)
        snprintf(err, errlen, "cannot use the cache directory: %s", strerror(errno));
      free(c);
      return NULL;
    }
  }
  c->path = strdup(cfg->path && cfg->path[0] ? cfg->path : def);
  c->max_bytes = cfg->max_bytes;
  c->defer_puts = cfg->defer_puts;
  c->max_entry_bytes = cfg->max_entry_bytes ? cfg->max_entry_bytes : DEFAULT_MAX_ENTRY;
  c->data_version = -1;
  if (!c->path)
    goto fail_mem;
  if (cfg->memory_bytes && !(c->lru = llm_lru_new(cfg->memory_bytes)))
    goto fail_mem;
  st = open_db(c, cfg);
  if (st != LLM_CACHE_OK) {
    *status = st;
    if (err && errlen)
      snprintf(err, errlen, "%s", c->errmsg);
    llm_cache_close(c);
    return NULL;
  }
  *status = LLM_CACHE_OK;
  return c;
fail_mem:
  llm_cache_close(c);
  return NULL;
}

void llm_cache_close(llm_cache *c)
{
  if (!c)
    return;
  if (c->db) {
    llm_cache_write_deferred(c);
    llm_cache_flush(c);
    for (int i = 0; i < S_COUNT; i++)
      sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
  }
  cache_drop_spaces(c);
  cache_defer_free(c);
  for (int i = 0; i < c->npending; i++)
    free(c->pending[i].ns);
  free(c->pending);
  llm_lru_free(c->lru);
  llm_buf_free(&c->buf);
  free(c->path);
  free(c);
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
