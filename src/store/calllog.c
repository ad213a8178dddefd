/* The call log's writing side: the file, the schema and the writer thread
 * (the readers are in calllog_query.c). */
#include "calllog.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "sqlite_wal.h"

#define DEFAULT_BATCH_ROWS 256
#define DEFAULT_BATCH_MS 50
/* A writer that cannot keep up (a disk much slower than the calls) must
 * not eat all memory: rows past this many waiting are dropped, counted. */
#define MAX_PENDING (1u << 20)
/* ...and the calls' texts waiting are bounded in bytes: past this, rows go
 * in without their text rather than hold up to 64 KiB x 3 each in memory */
#define MAX_PENDING_TEXT ((size_t)64 << 20)
#define BUSY_TIMEOUT_MS 5000

/* ---- schema ---------------------------------------------------------------------- */

/* Migration i brings the schema from version i to i + 1. Append only:
 * a released migration never changes. */
static const char *const migrations[LLM_CALLLOG_SCHEMA] = {
  /* 1: runs and their calls */
  "CREATE TABLE runs ("
  "  id INTEGER PRIMARY KEY,"
  "  run_id TEXT NOT NULL UNIQUE,"
  "  script TEXT,"
  "  started_at REAL NOT NULL,"
  "  simulated INTEGER NOT NULL DEFAULT 0,"
  "  pid INTEGER,"
  "  llmrun_version TEXT,"
  /* the rowids of the run's first and last calls: a run's calls are found
   * by a rowid range scan (filtered by run, since processes that log at
   * the same time interleave), which costs inserts nothing, unlike an
   * index on calls(run) */
  "  first_call INTEGER, last_call INTEGER);"
  "CREATE TABLE calls ("
  "  id INTEGER PRIMARY KEY,"
  "  run INTEGER NOT NULL REFERENCES runs(id),"
  "  tag TEXT, case_id TEXT, model TEXT, provider TEXT, kind TEXT,"
  "  simulated INTEGER NOT NULL DEFAULT 0,"
  "  started_at REAL, latency_ms REAL, ttft_ms REAL,"
  "  prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,"
  "  cache_creation_tokens INTEGER, input_tokens INTEGER,"
  "  cost REAL, cache_kind TEXT,"
  "  status TEXT NOT NULL,"
  "  retries INTEGER NOT NULL DEFAULT 0,"
  "  error_kind TEXT, http_status INTEGER, request_id TEXT);",
  /* 2: finding the latest runs */
  "CREATE INDEX runs_by_start ON runs(started_at);",
  /* 3: the client of a call made by the gateway (llmrun serve --proxy) */
  "ALTER TABLE calls ADD COLUMN client TEXT;",
  /* 4: what a run was (its arguments, JSON, and working directory), and
   * each call's text in a table of its own, so that scans of the calls for
   * reports stay as compact as before */
  "ALTER TABLE runs ADD COLUMN args TEXT;"
  "ALTER TABLE runs ADD COLUMN cwd TEXT;"
  "CREATE INDEX runs_by_cwd ON runs(cwd, started_at);"
  "CREATE TABLE call_texts ("
  "  call INTEGER PRIMARY KEY," /* calls.id */
  "  prompt TEXT, response TEXT, error TEXT);",
};

static int user_version(sqlite3 *db, int *v)
{
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *v = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int newer_schema(int v, char *err, size_t n)
{
  llm_errf(err, n,
      "the call log has schema version %d, newer than this llmrun understands (%d): "
      "upgrade llmrun, or point XDG_DATA_HOME elsewhere",
      v, LLM_CALLLOG_SCHEMA);
  return -1;
}

/* A schema-3 file with the call_texts table and no calls.client column? */
static int texts_without_client(sqlite3 *db)
{
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                         " AND name = 'call_texts'),"
                         " (SELECT count(*) FROM pragma_table_info('calls') WHERE name = 'client')",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  if (sqlite3_step(st) == SQLITE_ROW)
    found = sqlite3_column_int(st, 0) > 0 && sqlite3_column_int(st, 1) == 0;
  sqlite3_finalize(st);
  return found;
}

int llm_calllog_migrate(sqlite3 *db, int upto, char *err, size_t n)
{
  if (upto > LLM_CALLLOG_SCHEMA)
    upto = LLM_CALLLOG_SCHEMA;
  for (;;) {
    int v = 0, rc;
    char *msg = NULL;
    if (user_version(db, &v) != SQLITE_OK)
      goto sqlerr;
    if (v > LLM_CALLLOG_SCHEMA)
      return newer_schema(v, err, n);
    if (v >= upto)
      return 0;
    /* Another process may be migrating too: take the write lock, then
     * look again, so each migration runs exactly once. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      goto sqlerr;
    if (user_version(db, &v) != SQLITE_OK)
      goto rollback;
    if (v == 3 && upto > 3 && texts_without_client(db)) {
      /* the schema 3 of a development build (issue 15's branch) had the
       * texts of migration 4 and not the client column of 3: add that
       * column, and it is schema 4 */
      rc = sqlite3_exec(db, "ALTER TABLE calls ADD COLUMN client TEXT;"
                            "PRAGMA user_version = 4;", NULL, NULL, &msg);
      if (rc != SQLITE_OK) {
        llm_errf(err, n, "call log migration 4 failed: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
      }
    } else if (v < upto &&
               llm_sqlite_migrate_step(db, migrations[v], v + 1, "call log", err, n) != 0) {
      return -1;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
      goto rollback;
  }
rollback:
  llm_errf(err, n, "call log migration failed: %s", sqlite3_errmsg(db));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
sqlerr:
  llm_errf(err, n, "call log: %s", sqlite3_errmsg(db));
  return -1;
}

/* ---- the row buffer -------------------------------------------------------------- */

enum { S_TAG, S_CASE, S_MODEL, S_PROVIDER, S_KIND, S_STATUS, S_CACHE, S_ERRKIND, S_REQID, S_CLIENT,
       NSTR_CALL, S_PROMPT = NSTR_CALL, S_RESPONSE, S_ERRTEXT, NSTR };
enum { N_START, N_LATENCY, N_TTFT, N_COST, N_PROMPT, N_COMPLETION, N_CACHED, N_CREATION,
       N_INPUT, NNUM };
#define NO_STR ((size_t)-1)

typedef struct srow {
  size_t str[NSTR];   /* offsets into the arena, or NO_STR */
  double num[NNUM];
  int simulated, retries, http_status;
} srow;

typedef struct rowbuf {
  srow *rows;
  size_t n, cap;
  llm_buf arena;      /* the rows' strings, each with its NUL */
} rowbuf;

static size_t arena_put(rowbuf *b, const char *s)
{
  size_t len, off;
  if (!s)
    return NO_STR;
  len = strlen(s) + 1;
  off = b->arena.len;
  llm_buf_put(&b->arena, s, len);
  if (b->arena.failed) {
    b->arena.failed = 0; /* this row is lost, not every row until the next batch */
    return NO_STR - 1;
  }
  return off;
}

static int rowbuf_push(rowbuf *b, const llm_log_row *r)
{
  const char *strs[NSTR] = {r->tag, r->case_id, r->model, r->provider, r->kind,
                            r->status, r->cache_kind, r->error_kind, r->request_id, r->client,
                            r->prompt_text, r->response_text, r->error_text};
  srow *s;
  if (llm_grow(&b->rows, &b->cap, b->n + 1, sizeof *b->rows) != 0)
    return -1;
  s = &b->rows[b->n];
  for (int i = 0; i < NSTR; i++) {
    s->str[i] = arena_put(b, strs[i]);
    if (s->str[i] == NO_STR - 1)
      return -1;
  }
  s->num[N_START] = r->started_at;
  s->num[N_LATENCY] = r->latency_ms;
  s->num[N_TTFT] = r->ttft_ms;
  s->num[N_COST] = r->cost;
  s->num[N_PROMPT] = r->prompt_tokens;
  s->num[N_COMPLETION] = r->completion_tokens;
  s->num[N_CACHED] = r->cached_tokens;
  s->num[N_CREATION] = r->cache_creation_tokens;
  s->num[N_INPUT] = r->input_tokens;
  s->simulated = r->simulated;
  s->retries = r->retries;
  s->http_status = r->http_status;
  b->n++;
  return 0;
}

static void rowbuf_clear(rowbuf *b)
{
  b->n = 0;
  llm_buf_reset(&b->arena);
}

static void rowbuf_free(rowbuf *b)
{
  free(b->rows);
  llm_buf_free(&b->arena);
}

/* ---- the log ------------------------------------------------------------------------ */

struct llm_calllog {
  sqlite3 *db;
  sqlite3_stmt *ins_call, *ins_run, *upd_run, *ins_text;
  llm_calllog_opts o;

  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  rowbuf pending, writing;        /* pending: the callers'; writing: the thread's */
  struct timespec first_pending;  /* monotonic time of pending's first row */
  uint64_t appended, committed;   /* rows handed over / settled (written or dropped) */
  int flush_waiters, stopping;

  /* the run: written once, before the first row */
  char *run_id, *script, *version, *args, *cwd;
  double run_started;
  int run_simulated, run_set;
  sqlite3_int64 run_rowid;        /* 0 until written */

  /* failures, reported by the thread and taken by the callers */
  uint64_t dropped;
  int error_new, error_flush;
  char error[256];
};

static const char insert_call_sql[] =
  "INSERT INTO calls(run, tag, case_id, model, provider, kind, status, cache_kind,"
  " error_kind, request_id, client, started_at, latency_ms, ttft_ms, cost, prompt_tokens,"
  " completion_tokens, cached_tokens, cache_creation_tokens, input_tokens, simulated,"
  " retries, http_status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static const char update_run_sql[] =
  "UPDATE runs SET first_call = coalesce(first_call, ?1), last_call = ?2 WHERE id = ?3";

static const char insert_run_sql[] =
  "INSERT INTO runs(run_id, script, started_at, simulated, pid, llmrun_version, args, cwd)"
  " VALUES (?,?,?,?,?,?,?,?)";

static const char insert_text_sql[] =
  "INSERT INTO call_texts(call, prompt, response, error) VALUES (?,?,?,?)";

static int setup_connection(sqlite3 *db, char *err, size_t n)
{
  char *msg = NULL;
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  if (llm_sqlite_use_wal(db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, &msg) != SQLITE_OK) {
    llm_errf(err, n, "call log: %s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static void *writer_main(void *arg);

llm_calllog *llm_calllog_open(const char *path, const llm_calllog_opts *o, char *err, size_t n)
{
  llm_calllog *log;
  pthread_condattr_t ca;
  int v = 0;
  if (llm_create_private(path, err, n) != 0)
    return NULL;
  log = calloc(1, sizeof *log);
  if (!log) {
    llm_errf(err, n, "out of memory");
    return NULL;
  }
  if (o)
    log->o = *o;
  if (log->o.batch_rows == 0)
    log->o.batch_rows = DEFAULT_BATCH_ROWS;
  if (log->o.batch_ms <= 0)
    log->o.batch_ms = DEFAULT_BATCH_MS;
  if (sqlite3_open_v2(path, &log->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL)
      != SQLITE_OK) {
    llm_errf(err, n, "cannot open %s: %s", path, log->db ? sqlite3_errmsg(log->db) : "out of memory");
    goto fail;
  }
  /* NOMUTEX above: the connection is used by one thread at a time (this
   * one until the writer starts, then only the writer), so sqlite's
   * per-call connection mutex would be pure cost */
  sqlite3_busy_timeout(log->db, BUSY_TIMEOUT_MS); /* before the first read */
  /* Refuse a newer schema before changing anything in the file. */
  if (user_version(log->db, &v) != SQLITE_OK) {
    char why[600];
    llm_sqlite_describe_failure(log->db, sqlite3_extended_errcode(log->db), path, why, sizeof why);
    llm_errf(err, n, "cannot use the call log: %s", why);
    goto fail;
  }
  if (v > LLM_CALLLOG_SCHEMA) {
    newer_schema(v, err, n);
    goto fail;
  }
  if (setup_connection(log->db, err, n) != 0 ||
      llm_calllog_migrate(log->db, LLM_CALLLOG_SCHEMA, err, n) != 0)
    goto fail;
  if (sqlite3_prepare_v3(log->db, insert_call_sql, -1, SQLITE_PREPARE_PERSISTENT,
                         &log->ins_call, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(log->db, insert_run_sql, -1, SQLITE_PREPARE_PERSISTENT,
                         &log->ins_run, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(log->db, update_run_sql, -1, SQLITE_PREPARE_PERSISTENT,
                         &log->upd_run, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(log->db, insert_text_sql, -1, SQLITE_PREPARE_PERSISTENT,
                         &log->ins_text, NULL) != SQLITE_OK) {
    llm_errf(err, n, "call log: %s", sqlite3_errmsg(log->db));
    goto fail;
  }
  pthread_mutex_init(&log->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&log->work, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&log->done, NULL);
  if (pthread_create(&log->thread, NULL, writer_main, log) != 0) {
    llm_errf(err, n, "call log: cannot start the writer thread");
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->work);
    pthread_cond_destroy(&log->done);
    goto fail;
  }
  log->thread_started = 1;
  return log;
fail:
  sqlite3_finalize(log->ins_call);
  sqlite3_finalize(log->ins_run);
  sqlite3_finalize(log->upd_run);
  sqlite3_finalize(log->ins_text);
  sqlite3_close(log->db);
  free(log);
  return NULL;
}

static char *dupstr(const char *s)
{
  char *d;
  if (!s)
    return NULL;
  d = malloc(strlen(s) + 1);
  if (d)
    strcpy(d, s);
  return d;
}

void llm_calllog_set_run(llm_calllog *log, const llm_run_info *run)
{
  pthread_mutex_lock(&log->mu);
  if (!log->run_set) {
    log->run_id = dupstr(run->run_id);
    log->script = dupstr(run->script);
    log->version = dupstr(run->version);
    log->args = dupstr(run->args);
    log->cwd = dupstr(run->cwd);
    log->run_started = run->started_at;
    log->run_simulated = run->simulated;
    log->run_set = 1;
  }
  pthread_mutex_unlock(&log->mu);
}

void llm_calllog_new_run_id(char *out, size_t n)
{
  time_t now = time(NULL);
  struct tm tm;
  unsigned r = 0;
  char stamp[32];
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
    r = (unsigned)now ^ ((unsigned)getpid() << 8) ^ (unsigned)clock();
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  snprintf(out, n, "%s-%06x", stamp, r & 0xffffffu);
}

static void monotonic(struct timespec *ts) { clock_gettime(CLOCK_MONOTONIC, ts); }

int llm_calllog_append(llm_calllog *log, const llm_log_row *row)
{
  int rc = 0;
  llm_log_row bare;
  pthread_mutex_lock(&log->mu);
  if (log->pending.arena.len > MAX_PENDING_TEXT &&
      (row->prompt_text || row->response_text || row->error_text)) {
    bare = *row;
    bare.prompt_text = bare.response_text = bare.error_text = NULL;
    row = &bare;
  }
  if (log->pending.n >= MAX_PENDING) {
    log->dropped++;
    if (!__atomic_load_n(&log->error_new, __ATOMIC_RELAXED))
      snprintf(log->error, sizeof log->error, "the call log writer fell behind; rows dropped");
    __atomic_store_n(&log->error_new, 1, __ATOMIC_RELAXED);
    rc = -1;
  } else if (rowbuf_push(&log->pending, row) != 0) {
    log->dropped++;
    rc = -1;
  } else {
    log->appended++;
    if (log->pending.n == 1) {
      monotonic(&log->first_pending);
      pthread_cond_signal(&log->work);
    } else if (log->pending.n >= log->o.batch_rows) {
      pthread_cond_signal(&log->work);
    }
  }
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/* ---- the writer thread ---------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const rowbuf *b, size_t off)
{
  if (off == NO_STR)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_text(st, i, b->arena.data + off, -1, SQLITE_STATIC);
}

static void bind_num(sqlite3_stmt *st, int i, double v, int integer)
{
  if (isnan(v))
    sqlite3_bind_null(st, i);
  else if (integer && v >= -9e18 && v <= 9e18)
    sqlite3_bind_int64(st, i, (sqlite3_int64)v);
  else
    sqlite3_bind_double(st, i, v);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static int write_run(llm_calllog *log, const char *run_id, const char *script,
                     const char *version, double started, int simulated)
{
  sqlite3_stmt *st = log->ins_run;
  int rc;
  sqlite3_bind_text(st, 1, run_id ? run_id : "unknown", -1, SQLITE_STATIC);
  if (script)
    sqlite3_bind_text(st, 2, script, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 2);
  sqlite3_bind_double(st, 3, started);
  sqlite3_bind_int(st, 4, simulated);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)getpid());
  if (version)
    sqlite3_bind_text(st, 6, version, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 6);
  /* set once before the first row, never changed: read without the lock
   * as the other run fields are */
  bind_opt_text(st, 7, log->args);
  bind_opt_text(st, 8, log->cwd);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE)
    return -1;
  log->run_rowid = sqlite3_last_insert_rowid(log->db);
  return 0;
}

/* The call just inserted: its text, when it has any. */
static int write_text(llm_calllog *log, const rowbuf *b, const srow *r, sqlite3_int64 call)
{
  sqlite3_stmt *st = log->ins_text;
  int rc;
  if (r->str[S_PROMPT] == NO_STR && r->str[S_RESPONSE] == NO_STR && r->str[S_ERRTEXT] == NO_STR)
    return 0;
  sqlite3_bind_int64(st, 1, call);
  bind_text(st, 2, b, r->str[S_PROMPT]);
  bind_text(st, 3, b, r->str[S_RESPONSE]);
  bind_text(st, 4, b, r->str[S_ERRTEXT]);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* Inserts the rows, then records the run's call rowid range. */
static int write_rows(llm_calllog *log, const rowbuf *b)
{
  sqlite3_stmt *st = log->ins_call;
  sqlite3_int64 first = 0, last = 0;
  int rc;
  for (size_t i = 0; i < b->n; i++) {
    const srow *r = &b->rows[i];
    sqlite3_bind_int64(st, 1, log->run_rowid);
    for (int k = 0; k < NSTR_CALL; k++)
      bind_text(st, 2 + k, b, r->str[k]);
    for (int k = 0; k < NNUM; k++)
      bind_num(st, 2 + NSTR_CALL + k, r->num[k], k >= N_PROMPT);
    sqlite3_bind_int(st, 2 + NSTR_CALL + NNUM, r->simulated != 0);
    sqlite3_bind_int(st, 3 + NSTR_CALL + NNUM, r->retries);
    if (r->http_status)
      sqlite3_bind_int(st, 4 + NSTR_CALL + NNUM, r->http_status);
    else
      sqlite3_bind_null(st, 4 + NSTR_CALL + NNUM);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
      return -1;
    last = sqlite3_last_insert_rowid(log->db);
    if (i == 0)
      first = last;
    if (write_text(log, b, r, last) != 0)
      return -1;
  }
  if (b->n == 0)
    return 0;
  st = log->upd_run;
  sqlite3_bind_int64(st, 1, first);
  sqlite3_bind_int64(st, 2, last);
  sqlite3_bind_int64(st, 3, log->run_rowid);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* Why the last sqlite call on db failed, with the errno behind an I/O
 * error ("database or disk is full", "disk I/O error (File too large)").
 * Taken before the ROLLBACK, whose own failure (sqlite may have rolled
 * back already: "cannot rollback - no transaction is active") would
 * replace the message. */
static void failure_of(sqlite3 *db, char *out, size_t n)
{
  int saved = errno; /* of the failing call: sqlite keeps only some (not EFBIG) */
  int sys = sqlite3_system_errno(db);
  int code = sqlite3_errcode(db) & 0xff;
  if (!sys && (code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN))
    sys = saved;
  if (sys)
    llm_errf(out, n, "%s (%s)", sqlite3_errmsg(db), strerror(sys));
  else
    llm_errf(out, n, "%s", sqlite3_errmsg(db));
}

/* One transaction: the run row if not yet written, then the rows. Called
 * without the lock; the run fields are read under it by the caller. On
 * failure, the reason is in why. */
static int commit_batch(llm_calllog *log, const rowbuf *b, const char *run_id,
                        const char *script, const char *version, double started, int simulated,
                        char *why, size_t whylen)
{
  sqlite3_int64 run_before = log->run_rowid;
  if (sqlite3_exec(log->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    failure_of(log->db, why, whylen);
    return -1;
  }
  if ((log->run_rowid == 0 && write_run(log, run_id, script, version, started, simulated) != 0) ||
      write_rows(log, b) != 0 ||
      sqlite3_exec(log->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    failure_of(log->db, why, whylen);
    if (!sqlite3_get_autocommit(log->db))
      sqlite3_exec(log->db, "ROLLBACK", NULL, NULL, NULL);
    log->run_rowid = run_before;
    return -1;
  }
  return 0;
}

static int deadline_passed(const struct timespec *first, int ms, struct timespec *deadline)
{
  struct timespec now;
  deadline->tv_sec = first->tv_sec + ms / 1000;
  deadline->tv_nsec = first->tv_nsec + (long)(ms % 1000) * 1000000L;
  if (deadline->tv_nsec >= 1000000000L) {
    deadline->tv_sec++;
    deadline->tv_nsec -= 1000000000L;
  }
  monotonic(&now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void *writer_main(void *arg)
{
  llm_calllog *log = arg;
  pthread_mutex_lock(&log->mu);
  for (;;) {
    uint64_t target;
    rowbuf tmp;
    int failed = 0;
    char why[200] = "";
    while (log->pending.n == 0 && !log->stopping)
      pthread_cond_wait(&log->work, &log->mu);
    if (log->pending.n == 0 && log->stopping)
      break;
    /* Wait for a full batch, its deadline, a flush or the end. */
    while (log->pending.n < log->o.batch_rows && !log->stopping && log->flush_waiters == 0) {
      struct timespec deadline;
      if (deadline_passed(&log->first_pending, log->o.batch_ms, &deadline))
        break;
      pthread_cond_timedwait(&log->work, &log->mu, &deadline);
    }
    tmp = log->writing;
    log->writing = log->pending;
    log->pending = tmp;
    rowbuf_clear(&log->pending);
    target = log->appended;
    {
      /* the run fields never change once set, so reading them here and
       * using them unlocked below is safe */
      const char *run_id = log->run_id, *script = log->script, *version = log->version;
      double started = log->run_started;
      int simulated = log->run_simulated;
      pthread_mutex_unlock(&log->mu);
      failed = commit_batch(log, &log->writing, run_id, script, version, started, simulated,
                            why, sizeof why);
      pthread_mutex_lock(&log->mu);
    }
    if (failed) {
      log->dropped += log->writing.n;
      snprintf(log->error, sizeof log->error, "cannot write the call log: %s", why);
      __atomic_store_n(&log->error_new, 1, __ATOMIC_RELAXED);
      log->error_flush = 1;
    }
    rowbuf_clear(&log->writing);
    log->committed = target;
    pthread_cond_broadcast(&log->done);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

int llm_calllog_flush(llm_calllog *log, char *err, size_t n)
{
  int rc = 0;
  pthread_mutex_lock(&log->mu);
  {
    uint64_t target = log->appended;
    log->flush_waiters++;
    pthread_cond_signal(&log->work);
    while (log->committed < target)
      pthread_cond_wait(&log->done, &log->mu);
    log->flush_waiters--;
  }
  if (log->error_flush) {
    llm_errf(err, n, "%s", log->error);
    log->error_flush = 0;
    rc = -1;
  }
  pthread_mutex_unlock(&log->mu);
  return rc;
}

int llm_calllog_take_error(llm_calllog *log, char *err, size_t n)
{
  int got = 0;
  /* an unlocked peek first: the common case costs one load */
  if (!__atomic_load_n(&log->error_new, __ATOMIC_RELAXED))
    return 0;
  pthread_mutex_lock(&log->mu);
  if (__atomic_load_n(&log->error_new, __ATOMIC_RELAXED)) {
    llm_errf(err, n, "%s", log->error);
    __atomic_store_n(&log->error_new, 0, __ATOMIC_RELAXED);
    got = 1;
  }
  pthread_mutex_unlock(&log->mu);
  return got;
}

uint64_t llm_calllog_dropped(const llm_calllog *log)
{
  uint64_t d;
  pthread_mutex_lock((pthread_mutex_t *)&log->mu);
  d = log->dropped;
  pthread_mutex_unlock((pthread_mutex_t *)&log->mu);
  return d;
}

void llm_calllog_close(llm_calllog *log)
{
  if (!log)
    return;
  if (log->thread_started) {
    pthread_mutex_lock(&log->mu);
    log->stopping = 1;
    pthread_cond_signal(&log->work);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->work);
    pthread_cond_destroy(&log->done);
  }
  sqlite3_finalize(log->ins_call);
  sqlite3_finalize(log->ins_run);
  sqlite3_finalize(log->upd_run);
  sqlite3_finalize(log->ins_text);
  sqlite3_close(log->db);
  rowbuf_free(&log->pending);
  rowbuf_free(&log->writing);
  free(log->run_id);
  free(log->script);
  free(log->version);
  free(log->args);
  free(log->cwd);
  free(log);
}
