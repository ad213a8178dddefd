/* The record of submitted batches: see batchstore.h. */
#include "batchstore.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "sqlite_wal.h"

#define BUSY_TIMEOUT_MS 5000

struct llm_batchstore {
  sqlite3 *db;
};

/* Migration i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[LLM_BATCHSTORE_SCHEMA] = {
  "CREATE TABLE batches ("
  "  id INTEGER PRIMARY KEY,"
  "  batch_id TEXT NOT NULL,"
  "  hash TEXT NOT NULL,"
  "  provider TEXT NOT NULL, base_url TEXT NOT NULL, model TEXT,"
  "  input_file TEXT, status TEXT,"
  "  requests INTEGER NOT NULL, first INTEGER NOT NULL DEFAULT 1,"
  "  created_at REAL NOT NULL, updated_at REAL,"
  "  script TEXT, run_id TEXT,"
  "  forgotten INTEGER NOT NULL DEFAULT 0,"
  "  UNIQUE(batch_id, base_url));"
  "CREATE INDEX batches_by_hash ON batches(hash);",
};

static int version_of(sqlite3 *db, int *v)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    *v = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Each migration once, under the write lock, even with several openers. */
static int migrate(sqlite3 *db, char *err, size_t n)
{
  for (;;) {
    int v = 0;
    if (version_of(db, &v) != SQLITE_OK)
      goto sqlerr;
    if (v > LLM_BATCHSTORE_SCHEMA) {
      llm_errf(err, n, "the batch record has schema version %d, newer than this llmrun "
          "understands (%d): upgrade llmrun", v, LLM_BATCHSTORE_SCHEMA);
      return -1;
    }
    if (v == LLM_BATCHSTORE_SCHEMA)
      return 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      goto sqlerr;
    if (version_of(db, &v) != SQLITE_OK)
      goto rollback;
    if (v < LLM_BATCHSTORE_SCHEMA &&
        llm_sqlite_migrate_step(db, migrations[v], v + 1, "batch record", err, n) != 0)
      return -1;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
      goto rollback;
  }
rollback:
  llm_errf(err, n, "batch record: %s", sqlite3_errmsg(db));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
sqlerr:
  llm_errf(err, n, "batch record: %s", sqlite3_errmsg(db));
  return -1;
}

llm_batchstore *llm_batchstore_open(const char *path, char *err, size_t n)
{
  llm_batchstore *s;
  if (llm_create_private(path, err, n) != 0)
    return NULL;
  if (!(s = calloc(1, sizeof *s))) {
    llm_errf(err, n, "out of memory");
    return NULL;
  }
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
      SQLITE_OK) {
    llm_errf(err, n, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  if (llm_sqlite_use_wal(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
    llm_errf(err, n, "batch record %s: %s", path, sqlite3_errmsg(s->db));
    goto fail;
  }
  if (migrate(s->db, err, n) != 0)
    goto fail;
  return s;
fail:
  sqlite3_close(s->db);
  free(s);
  return NULL;
}

void llm_batchstore_close(llm_batchstore *s)
{
  if (!s)
    return;
  sqlite3_close(s->db);
  free(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

/* Runs one statement that returns no rows; -1 with a message, else the
 * number of rows changed. */
static int run(llm_batchstore *s, sqlite3_stmt *st, char *err, size_t n)
{
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    llm_errf(err, n, "batch record: %s", sqlite3_errmsg(s->db));
    return -1;
  }
  return sqlite3_changes(s->db);
}

static sqlite3_stmt *prepare(llm_batchstore *s, const char *sql, char *err, size_t n)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    llm_errf(err, n, "batch record: %s", sqlite3_errmsg(s->db));
    return NULL;
  }
  return st;
}

int llm_batchstore_put(llm_batchstore *s, const llm_batch_rec *r, char *err, size_t n)
{
  sqlite3_stmt *st = prepare(s,
    "INSERT OR REPLACE INTO batches(batch_id, hash, provider, base_url, model, input_file,"
    " status, requests, first, created_at, updated_at, script, run_id, forgotten)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", err, n);
  if (!st)
    return -1;
  bind_text(st, 1, r->batch_id);
  bind_text(st, 2, r->hash);
  bind_text(st, 3, r->provider);
  bind_text(st, 4, r->base_url);
  bind_text(st, 5, r->model);
  bind_text(st, 6, r->input_file);
  bind_text(st, 7, r->status);
  sqlite3_bind_int64(st, 8, r->requests);
  sqlite3_bind_int64(st, 9, r->first);
  sqlite3_bind_double(st, 10, r->created_at);
  sqlite3_bind_double(st, 11, r->updated_at > 0 ? r->updated_at : r->created_at);
  bind_text(st, 12, r->script);
  bind_text(st, 13, r->run_id);
  sqlite3_bind_int(st, 14, r->forgotten != 0);
  return run(s, st, err, n) < 0 ? -1 : 0;
}

int llm_batchstore_set_status(llm_batchstore *s, const char *batch_id, const char *base_url,
                              const char *status, double now, char *err, size_t n)
{
  sqlite3_stmt *st = prepare(s,
    "UPDATE batches SET status = ?1, updated_at = ?2 WHERE batch_id = ?3"
    " AND (?4 IS NULL OR base_url = ?4)", err, n);
  if (!st)
    return -1;
  bind_text(st, 1, status);
  sqlite3_bind_double(st, 2, now);
  bind_text(st, 3, batch_id);
  bind_text(st, 4, base_url);
  return run(s, st, err, n);
}

int llm_batchstore_forget(llm_batchstore *s, const char *hash, char *err, size_t n)
{
  sqlite3_stmt *st = prepare(s, "UPDATE batches SET forgotten = 1 WHERE hash = ?1", err, n);
  if (!st)
    return -1;
  bind_text(st, 1, hash);
  return run(s, st, err, n) < 0 ? -1 : 0;
}

int llm_batchstore_query(llm_batchstore *s, llm_batch_query q, const char *arg, int64_t limit,
                         int (*fn)(void *ud, const llm_batch_rec *r), void *ud, char *err,
                         size_t n)
{
  static const char cols[] =
    "SELECT batch_id, hash, provider, base_url, model, input_file, status, script, run_id,"
    " requests, first, created_at, updated_at, forgotten FROM batches ";
  char sql[512];
  sqlite3_stmt *st;
  int rc;
  int64_t seen = 0;
  const char *where = q == LLM_BATCH_BY_HASH ? "WHERE hash = ?1 AND forgotten = 0 "
                    : q == LLM_BATCH_BY_ID ? "WHERE substr(batch_id, 1, length(?1)) = ?1 "
                    : "";
  snprintf(sql, sizeof sql, "%s%sORDER BY created_at DESC, id DESC", cols, where);
  if (!(st = prepare(s, sql, err, n)))
    return -1;
  if (q != LLM_BATCH_ALL)
    bind_text(st, 1, arg ? arg : "");
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    llm_batch_rec r;
    r.batch_id = (const char *)sqlite3_column_text(st, 0);
    r.hash = (const char *)sqlite3_column_text(st, 1);
    r.provider = (const char *)sqlite3_column_text(st, 2);
    r.base_url = (const char *)sqlite3_column_text(st, 3);
    r.model = (const char *)sqlite3_column_text(st, 4);
    r.input_file = (const char *)sqlite3_column_text(st, 5);
    r.status = (const char *)sqlite3_column_text(st, 6);
    r.script = (const char *)sqlite3_column_text(st, 7);
    r.run_id = (const char *)sqlite3_column_text(st, 8);
    r.requests = sqlite3_column_int64(st, 9);
    r.first = sqlite3_column_int64(st, 10);
    r.created_at = sqlite3_column_double(st, 11);
    r.updated_at = sqlite3_column_double(st, 12);
    r.forgotten = sqlite3_column_int(st, 13);
    if (fn(ud, &r) != 0 || (limit > 0 && ++seen >= limit)) {
      rc = SQLITE_DONE;
      break;
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    llm_errf(err, n, "batch record: %s", sqlite3_errmsg(s->db));
    return -1;
  }
  return 0;
}
