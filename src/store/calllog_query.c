/* The call log's reading side: finding runs, listing runs and calls, and
 * collecting a run's calls into per-group statistics for reports. The
 * collection is one indexed scan in C, so a report over a million calls
 * stays well under two seconds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calllog.h"
#include "buf.h"
#include "fsutil.h"
#include "sqlite_wal.h"
#include "errmsg.h"

sqlite3 *llm_calllog_open_reader(const char *path, int *missing, char *err, size_t n)
{
  sqlite3 *db = NULL;
  int v = 0, writable = 1;
  sqlite3_stmt *st;
  *missing = 0;
  if (!llm_file_exists(path)) {
    *missing = 1;
    llm_errf(err, n, "no call log at %s (no call has been logged yet)", path);
    return NULL;
  }
  /* Read-write when possible (an older schema is migrated); else read
   * only, which also works on read-only storage (sqlite_wal.h). */
  {
    int ro = 0, rc = llm_sqlite_open(path, SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, 5000,
                                     access(path, W_OK) != 0, &db, &ro, NULL, 0);
    if (rc != SQLITE_OK) {
      char why[600];
      llm_sqlite_describe_failure(db, db ? sqlite3_extended_errcode(db) : rc, path, why, sizeof why);
      llm_errf(err, n, "cannot read the call log: %s", why);
      sqlite3_close(db);
      return NULL;
    }
    writable = !ro;
  }
  sqlite3_busy_timeout(db, 5000);
  /* reports scan whole runs: map the file instead of copying it page by
   * page through read() (https://www.sqlite.org/mmap.html) */
  sqlite3_exec(db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    llm_errf(err, n, "cannot read %s: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
  }
  v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (v < LLM_CALLLOG_SCHEMA && !writable) {
    llm_errf(err, n, "%s has an older schema (%d) and is read-only, so it cannot be upgraded", path, v);
    sqlite3_close(db);
    return NULL;
  }
  if (llm_calllog_migrate(db, LLM_CALLLOG_SCHEMA, err, n) != 0) {
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

/* ---- runs ---------------------------------------------------------------------- */

int llm_calllog_find_run(sqlite3 *db, const char *prefix, char *out, size_t n,
                         char *err, size_t errlen)
{
  sqlite3_stmt *st;
  int rc, found = 0;
  const char *sql = prefix && *prefix
    ? "SELECT run_id FROM runs WHERE run_id = ?1 OR substr(run_id, 1, length(?1)) = ?1"
      " ORDER BY run_id = ?1 DESC LIMIT 2"
    : "SELECT run_id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    llm_errf(err, errlen, "call log: %s", sqlite3_errmsg(db));
    return -1;
  }
  if (prefix && *prefix)
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    if (found == 1) {
      /* an exact match sorts first and wins over longer ids it prefixes */
      if (strcmp(out, prefix) == 0)
        break;
      sqlite3_finalize(st);
      return -2;
    }
    snprintf(out, n, "%s", id ? id : "");
    found = 1;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    llm_errf(err, errlen, "call log: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return -1;
  }
  sqlite3_finalize(st);
  return found;
}

struct llm_log_cursor {
  sqlite3_stmt *st;
};

static llm_log_cursor *cursor_new(sqlite3 *db, const char *sql, char *err, size_t n)
{
  llm_log_cursor *c = calloc(1, sizeof *c);
  if (!c) {
    llm_errf(err, n, "out of memory");
    return NULL;
  }
  if (sqlite3_prepare_v2(db, sql, -1, &c->st, NULL) != SQLITE_OK) {
    llm_errf(err, n, "call log: %s", sqlite3_errmsg(db));
    sqlite3_finalize(c->st);
    free(c);
    return NULL;
  }
  return c;
}

llm_log_cursor *llm_log_cursor_wrap(sqlite3_stmt *st, char *err, size_t n)
{
  llm_log_cursor *c = calloc(1, sizeof *c);
  if (!c) {
    llm_errf(err, n, "out of memory");
    sqlite3_finalize(st);
    return NULL;
  }
  c->st = st;
  return c;
}

void llm_log_cursor_free(llm_log_cursor *c)
{
  if (!c)
    return;
  sqlite3_finalize(c->st);
  free(c);
}

/* ---- values as stored ---------------------------------------------------------------
 *
 * The readers take whatever the file holds: this build's writer checks
 * what it stores, but an older one, another program or a hand edit may
 * have put text, a blob, a negative count, 1e308 or inf anywhere. A value
 * that cannot be what its column means reads as NULL (unknown): a report
 * never shows -3e18 tokens, and nothing downstream has to convert an
 * absurd float to an integer. */

#define MAX_TOKENS 1e10      /* as lualib/llm/calls.lua's MAX_TOKENS */
#define MAX_MS 1e12          /* ~30 years */
#define MAX_COST 1e9         /* USD, for one call */
#define MAX_EPOCH 253402300799.0 /* 9999-12-31 */
#define MAX_RETRIES 1e6

/* A number in [0, max] (whole when whole is set), else NAN. */
static double col_in(sqlite3_stmt *st, int i, double max, int whole)
{
  double v;
  int t = sqlite3_column_type(st, i);
  if (t != SQLITE_INTEGER && t != SQLITE_FLOAT)
    return NAN;
  v = sqlite3_column_double(st, i);
  if (!isfinite(v) || v < 0 || v > max || (whole && v != floor(v)))
    return NAN;
  return v;
}

static double col_count(sqlite3_stmt *st, int i) { return col_in(st, i, MAX_TOKENS, 1); }
static double col_ms(sqlite3_stmt *st, int i) { return col_in(st, i, MAX_MS, 0); }
static double col_cost(sqlite3_stmt *st, int i) { return col_in(st, i, MAX_COST, 0); }
static double col_time(sqlite3_stmt *st, int i) { return col_in(st, i, MAX_EPOCH, 0); }

static int col_retries(sqlite3_stmt *st, int i)
{
  double v = col_in(st, i, MAX_RETRIES, 1);
  return isnan(v) ? 0 : (int)v;
}

/* An HTTP status is three digits; anything else is none (0). */
static int col_http_status(sqlite3_stmt *st, int i)
{
  double v = col_in(st, i, 999, 1);
  return isnan(v) || v < 100 ? 0 : (int)v;
}

static int col_flag(sqlite3_stmt *st, int i)
{
  return sqlite3_column_type(st, i) == SQLITE_INTEGER && sqlite3_column_int64(st, i) != 0;
}

/* The same rules in SQL, for the sums over a run. */
#define VALID_COST_SQL \
  "(typeof(c.cost) IN ('integer', 'real') AND c.cost >= 0 AND c.cost <= 1e9)"
#define VALID_START_SQL \
  "(typeof(c.started_at) IN ('integer', 'real') AND c.started_at >= 0" \
  " AND c.started_at <= 253402300799)"
#define VALID_LATENCY_SQL \
  "(typeof(c.latency_ms) IN ('integer', 'real') AND c.latency_ms >= 0 AND c.latency_ms <= 1e12)"

/* The cost of a call is unknown when it is NULL (or unusable), except for
 * cache hits and failed calls without usage, which cost nothing
 * (metrics.c's policy). */
#define COST_UNKNOWN_SQL \
  "(NOT " VALID_COST_SQL " AND c.cache_kind IS NULL AND NOT (c.status = 'error'" \
  " AND coalesce(c.prompt_tokens, 0) = 0 AND coalesce(c.completion_tokens, 0) = 0))"

llm_log_cursor *llm_calllog_runs(sqlite3 *db, int64_t limit, char *err, size_t n)
{
  static const char sql[] =
    "SELECT r.run_id, r.script, r.llmrun_version, r.started_at, r.simulated,"
    " count(c.id), coalesce(sum(c.status != 'ok'), 0), coalesce(sum(c.cache_kind IS NOT NULL), 0),"
    /* total(), not sum(): a float that never overflows */
    " total(CASE WHEN " VALID_COST_SQL " THEN c.cost END), coalesce(sum(" COST_UNKNOWN_SQL "), 0),"
    " min(CASE WHEN " VALID_START_SQL " THEN c.started_at END),"
    " max(CASE WHEN " VALID_START_SQL " THEN c.started_at"
    " + (CASE WHEN " VALID_LATENCY_SQL " THEN c.latency_ms ELSE 0 END) / 1000.0 END),"
    " r.args, r.cwd"
    " FROM (SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1) r"
    " LEFT JOIN calls c ON c.id BETWEEN r.first_call AND r.last_call AND c.run = r.id"
    " GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC";
  llm_log_cursor *c = cursor_new(db, sql, err, n);
  if (c)
    sqlite3_bind_int64(c->st, 1, limit > 0 ? limit : -1);
  return c;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
  return (const char *)sqlite3_column_text(st, i);
}

int llm_log_cursor_next_run(llm_log_cursor *c, llm_run_row *r)
{
  int rc = sqlite3_step(c->st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return -1;
  memset(r, 0, sizeof *r);
  r->run_id = col_text(c->st, 0);
  r->script = col_text(c->st, 1);
  r->version = col_text(c->st, 2);
  r->started_at = col_time(c->st, 3);
  r->simulated = col_flag(c->st, 4);
  r->calls = sqlite3_column_int64(c->st, 5);
  r->errors = sqlite3_column_int64(c->st, 6);
  r->hits = sqlite3_column_int64(c->st, 7);
  r->cost = sqlite3_column_double(c->st, 8);
  if (!isfinite(r->cost))
    r->cost = NAN;
  r->cost_unknown = sqlite3_column_int64(c->st, 9);
  r->first_start = col_time(c->st, 10);
  r->last_end = col_time(c->st, 11);
  r->args = col_text(c->st, 12);
  r->cwd = col_text(c->st, 13);
  return 1;
}

/* ---- calls --------------------------------------------------------------------------- */

#define CALL_COLUMNS LLM_CALLLOG_CALL_COLUMNS

llm_log_cursor *llm_calllog_calls(sqlite3 *db, const char *run_id, int64_t limit,
                                  char *err, size_t n)
{
  static const char all_sql[] =
    "SELECT " CALL_COLUMNS " FROM calls c JOIN runs r ON r.id = c.run"
    " ORDER BY c.id DESC LIMIT ?1";
  static const char run_sql[] =
    "SELECT " CALL_COLUMNS " FROM runs r"
    " JOIN calls c ON c.id BETWEEN r.first_call AND r.last_call AND c.run = r.id"
    " WHERE r.run_id = ?2 ORDER BY c.id DESC LIMIT ?1";
  llm_log_cursor *c = cursor_new(db, run_id ? run_sql : all_sql, err, n);
  if (!c)
    return NULL;
  sqlite3_bind_int64(c->st, 1, limit > 0 ? limit : -1);
  if (run_id)
    sqlite3_bind_text(c->st, 2, run_id, -1, SQLITE_TRANSIENT);
  return c;
}

int llm_log_cursor_next_call(llm_log_cursor *c, llm_log_row *r)
{
  sqlite3_stmt *st = c->st;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return -1;
  memset(r, 0, sizeof *r);
  r->run_id = col_text(st, 0);
  r->tag = col_text(st, 1);
  r->case_id = col_text(st, 2);
  r->model = col_text(st, 3);
  r->provider = col_text(st, 4);
  r->kind = col_text(st, 5);
  r->status = col_text(st, 6);
  r->cache_kind = col_text(st, 7);
  r->error_kind = col_text(st, 8);
  r->request_id = col_text(st, 9);
  r->simulated = col_flag(st, 10);
  r->retries = col_retries(st, 11);
  r->http_status = col_http_status(st, 12);
  r->started_at = col_time(st, 13);
  r->latency_ms = col_ms(st, 14);
  r->ttft_ms = col_ms(st, 15);
  r->cost = col_cost(st, 16);
  r->prompt_tokens = col_count(st, 17);
  r->completion_tokens = col_count(st, 18);
  r->cached_tokens = col_count(st, 19);
  r->cache_creation_tokens = col_count(st, 20);
  r->input_tokens = col_count(st, 21);
  r->client = col_text(st, 22);
  if (sqlite3_column_count(st) >= 26) { /* a search with texts (calllog_search.c) */
    r->prompt_text = col_text(st, 23);
    r->response_text = col_text(st, 24);
    r->error_text = col_text(st, 25);
  }
  return 1;
}

/* ---- collecting a run for a report ------------------------------------------------------- */

/* Per-call samples kept per group for confidence intervals. Counters,
 * totals and percentiles see every call; the intervals resample at most
 * a few thousand values anyway (bootstrap.h), so a uniform sample of this
 * many calls loses nothing there and keeps a million-call report small
 * and fast. */
#define COLLECT_KEEP 30000

/* Groups by key: a small open-addressing table of indexes into the list. */
typedef struct groups {
  llm_log_group *list;
  size_t n, cap;
  size_t *slots, nslots; /* index + 1; 0 = empty */
} groups;

static int groups_rehash(groups *g, size_t nslots)
{
  size_t *s = calloc(nslots, sizeof *s);
  if (!s)
    return -1;
  for (size_t i = 0; i < g->n; i++) {
    const char *k = g->list[i].key;
    size_t h = (size_t)llm_case_key(k, strlen(k)) & (nslots - 1);
    while (s[h])
      h = (h + 1) & (nslots - 1);
    s[h] = i + 1;
  }
  free(g->slots);
  g->slots = s;
  g->nslots = nslots;
  return 0;
}

/* The index of the group for key (created if new), or -1 when out of memory. */
static long group_for(groups *g, const char *key, size_t len)
{
  size_t h;
  llm_log_group *grp;
  if (g->nslots == 0 && groups_rehash(g, 16) != 0)
    return -1;
  h = (size_t)llm_case_key(key, len) & (g->nslots - 1);
  while (g->slots[h]) {
    llm_log_group *c = &g->list[g->slots[h] - 1];
    if (strlen(c->key) == len && memcmp(c->key, key, len) == 0)
      return (long)(g->slots[h] - 1);
    h = (h + 1) & (g->nslots - 1);
  }
  if (llm_grow(&g->list, &g->cap, g->n + 1, sizeof *g->list) != 0)
    return -1;
  grp = &g->list[g->n];
  memset(grp, 0, sizeof *grp);
  grp->key = malloc(len + 1);
  grp->stats = llm_callstats_new(COLLECT_KEEP);
  if (!grp->key || !grp->stats) {
    free(grp->key);
    llm_callstats_free(grp->stats);
    return -1;
  }
  memcpy(grp->key, key, len);
  grp->key[len] = '\0';
  g->n++;
  if (g->n * 2 > g->nslots) {
    if (groups_rehash(g, g->nslots * 2) != 0)
      return -1;
  } else {
    g->slots[h] = g->n;
  }
  return (long)(g->n - 1);
}

void llm_log_groups_free(llm_log_group *g, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(g[i].key);
    llm_callstats_free(g[i].stats);
  }
  free(g);
}

static unsigned flags_of(const char *status, int hit)
{
  unsigned f;
  if (status && strcmp(status, "ok") == 0)
    f = LLM_CALL_OK;
  else if (status && strcmp(status, "partial") == 0)
    f = LLM_CALL_ERROR | LLM_CALL_PARTIAL;
  else
    f = LLM_CALL_ERROR;
  return hit ? f | LLM_CALL_HIT : f;
}

int llm_calllog_collect(sqlite3 *db, const char *run_id, llm_log_group_by by,
                        llm_log_group **out, size_t *nout, char *err, size_t n)
{
  /* a rowid range scan over the run's calls (see the schema in calllog.c) */
  static const char sql[] =
    "SELECT c.tag, c.model, c.status, c.cache_kind IS NOT NULL, c.latency_ms, c.ttft_ms, c.cost,"
    " c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.retries, c.case_id, c.started_at,"
    " c.simulated FROM runs r"
    " JOIN calls c ON c.id BETWEEN r.first_call AND r.last_call AND c.run = r.id"
    " WHERE r.run_id = ?1 ORDER BY c.id";
  sqlite3_stmt *st;
  groups g = {0};
  long last = -1;
  int rc;
  *out = NULL;
  *nout = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    llm_errf(err, n, "call log: %s", sqlite3_errmsg(db));
    return -1;
  }
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    llm_call_sample s;
    const char *key = "";
    size_t klen = 0;
    llm_log_group *grp;
    long gi;
    if (by != LLM_GROUP_NONE) {
      int col = by == LLM_GROUP_TAG ? 0 : 1;
      key = col_text(st, col);
      klen = (size_t)sqlite3_column_bytes(st, col);
      if (!key)
        key = "";
    }
    /* calls come in runs of one group: check the last one first */
    if (last >= 0 && strlen(g.list[last].key) == klen && memcmp(g.list[last].key, key, klen) == 0)
      gi = last;
    else
      gi = group_for(&g, key, klen);
    if (gi < 0) {
      llm_errf(err, n, "out of memory");
      goto fail;
    }
    last = gi;
    grp = &g.list[gi];
    s.flags = flags_of(col_text(st, 2), sqlite3_column_int(st, 3));
    s.latency_ms = col_ms(st, 4);
    s.ttft_ms = col_ms(st, 5);
    s.cost = col_cost(st, 6);
    s.prompt_tokens = col_count(st, 7);
    s.completion_tokens = col_count(st, 8);
    s.cached_tokens = col_count(st, 9);
    s.retries = col_retries(st, 10);
    s.case_id = col_text(st, 11);
    s.case_len = s.case_id ? (size_t)sqlite3_column_bytes(st, 11) : 0;
    s.start = col_time(st, 12);
    if (col_flag(st, 13))
      grp->simulated++;
    llm_callstats_add(grp->stats, &s);
  }
  if (rc != SQLITE_DONE) {
    llm_errf(err, n, "call log: %s", sqlite3_errmsg(db));
    goto fail;
  }
  sqlite3_finalize(st);
  free(g.slots);
  *out = g.list;
  *nout = g.n;
  return 0;
fail:
  sqlite3_finalize(st);
  free(g.slots);
  llm_log_groups_free(g.list, g.n);
  return -1;
}
