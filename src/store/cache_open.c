/* Opening the cache store: its file (private, in a private directory),
 * sqlite's settings, the file's identity, the schema and its migrations;
 * and closing it. The rest of the store is in cache.c. */
#include "cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
/* Bytes of the file read through a memory map. */
#define MMAP_BYTES "268435456"

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
