/* Searching the call log for `llmrun logs`: the calls of a run, a tag, a
 * model or a status, or whose prompt, answer or error holds a text, newest
 * first by start time; and the latest run of a working directory, for
 * `llmrun report` with no run named. The texts live in call_texts, joined
 * only when asked for, so a search without them scans what it always did. */
#include <stdio.h>
#include <string.h>

#include "calllog.h"

static void say(char *err, size_t n, const char *msg, sqlite3 *db)
{
  if (err && n)
    snprintf(err, n, "call log: %s: %s", msg, sqlite3_errmsg(db));
}

llm_log_cursor *llm_calllog_search(sqlite3 *db, const llm_log_filter *f, char *err, size_t n)
{
  char sql[2048];
  size_t len = 0;
  sqlite3_stmt *st = NULL;
  int texts = f->with_text || (f->text && *f->text);
#define ADD(s) (len += (size_t)snprintf(sql + len, sizeof sql - len, "%s", s))
  ADD("SELECT " LLM_CALLLOG_CALL_COLUMNS);
  if (texts)
    ADD(", t.prompt, t.response, t.error");
  /* one run: its rowid range, as llm_calllog_calls scans it */
  if (f->run_id)
    ADD(" FROM runs r JOIN calls c ON c.id BETWEEN r.first_call AND r.last_call AND c.run = r.id");
  else
    ADD(" FROM calls c JOIN runs r ON r.id = c.run");
  if (texts)
    ADD(" LEFT JOIN call_texts t ON t.call = c.id");
  ADD(" WHERE 1");
  if (f->run_id)
    ADD(" AND r.run_id = :run");
  if (f->tag)
    ADD(" AND c.tag = :tag");
  if (f->model)
    ADD(" AND c.model = :model");
  if (f->status)
    ADD(" AND c.status = :status");
  if (f->text && *f->text)
    ADD(" AND (instr(lower(t.prompt), lower(:q)) OR instr(lower(t.response), lower(:q))"
        " OR instr(lower(t.error), lower(:q)))");
  ADD(" ORDER BY c.started_at DESC, c.id DESC LIMIT :limit");
#undef ADD
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    say(err, n, "cannot search", db);
    return NULL;
  }
#define BIND(name, v) \
  if (v) sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1, SQLITE_TRANSIENT)
  BIND(":run", f->run_id);
  BIND(":tag", f->tag);
  BIND(":model", f->model);
  BIND(":status", f->status);
  if (f->text && *f->text)
    BIND(":q", f->text);
#undef BIND
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"), f->limit > 0 ? f->limit : -1);
  return llm_log_cursor_wrap(st, err, n);
}

int llm_calllog_latest_in(sqlite3 *db, const char *cwd, char *out, size_t n, char *err,
                          size_t errlen)
{
  sqlite3_stmt *st;
  int rc, found = 0;
  if (sqlite3_prepare_v2(db, "SELECT run_id FROM runs WHERE cwd = ?1"
                             " ORDER BY started_at DESC, id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
    say(err, errlen, "cannot find runs", db);
    return -1;
  }
  sqlite3_bind_text(st, 1, cwd, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(out, n, "%s", id ? id : "");
    found = 1;
  } else if (rc != SQLITE_DONE) {
    say(err, errlen, "cannot find runs", db);
    found = -1;
  }
  sqlite3_finalize(st);
  return found;
}
