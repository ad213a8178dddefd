/* The call log: one sqlite row per model call (success, failure or cache
 * hit), in $XDG_DATA_HOME/llmrun/runs.db, plus one row per run (process).
 *
 * Writing is off the caller's path: llm_calllog_append copies the row into
 * a buffer and returns; a writer thread commits buffered rows in one
 * transaction when batch_rows are waiting, batch_ms after the first of
 * them, on llm_calllog_flush, and at close. A crash (even kill -9) loses
 * only rows not yet committed: those of the calls that finished in the
 * last batch_ms (50 ms by default; scripts/torture measures it); a
 * committed batch is whole, and the file
 * stays consistent (WAL, synchronous=NORMAL, BEGIN IMMEDIATE, busy_timeout:
 * see ../shared/RELIABILITY.md §C.6).
 *
 * The file and its directory are made private (0600, 0700) before sqlite
 * first opens them; sqlite gives the -wal and -shm files the database's
 * mode. The schema version is PRAGMA user_version; migrations run once, in
 * order, each in its own transaction, and a newer schema is refused.
 *
 * Nothing here ever sees an API key: rows hold names, numbers and ids. */
#ifndef LLMRUN_CALLLOG_H
#define LLMRUN_CALLLOG_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

/* The schema this build writes and reads. */
#define LLM_CALLLOG_SCHEMA 4

typedef struct llm_calllog llm_calllog;

typedef struct llm_calllog_opts {
  size_t batch_rows;  /* commit once this many rows wait; 0: 256 */
  int batch_ms;       /* ...or this long after the first waiting row; 0: 50 */
} llm_calllog_opts;

/* The run (process) the rows belong to. */
typedef struct llm_run_info {
  const char *run_id;   /* llm_calllog_new_run_id() */
  const char *script;
  const char *version;  /* llmrun's */
  double started_at;    /* wall clock, epoch seconds */
  int simulated;
  const char *args;     /* the script's arguments as a JSON array; NULL: none */
  const char *cwd;      /* the working directory */
} llm_run_info;

/* One call. NULL strings and NaN numbers are stored as NULL. */
typedef struct llm_log_row {
  const char *run_id;   /* filled by the readers; ignored by append */
  const char *tag, *case_id, *model, *provider, *kind;
  const char *status;   /* "ok" | "error" | "partial" | "cancelled" */
  const char *cache_kind, *error_kind, *request_id;
  const char *client;   /* who asked, for calls a gateway made ("127.0.0.1:5432") */
  int simulated;
  int retries;
  int http_status;      /* 0: none */
  double started_at, latency_ms, ttft_ms, cost;
  double prompt_tokens, completion_tokens, cached_tokens;
  double cache_creation_tokens, input_tokens;
  /* the call's text (table call_texts; NULL: not logged): the prompt as
   * "role: content" lines, the answer, the error message */
  const char *prompt_text, *response_text, *error_text;
} llm_log_row;

/* ---- writing ------------------------------------------------------------------- */

/* Opens (creating it and its directory if needed) the log at path. NULL
 * with a message in err on failure: a directory or file that cannot be
 * created or written, a schema newer than this build. */
llm_calllog *llm_calllog_open(const char *path, const llm_calllog_opts *o,
                              char *err, size_t errlen);
/* Sets the run written (once) before the first row. Call before append. */
void llm_calllog_set_run(llm_calllog *log, const llm_run_info *run);
/* Copies the row into the buffer. 0, or -1 when out of memory. */
int llm_calllog_append(llm_calllog *log, const llm_log_row *row);
/* Waits until every row appended so far is committed (or dropped).
 * 0, or -1 if a commit failed since the last call (message in err). */
int llm_calllog_flush(llm_calllog *log, char *err, size_t errlen);
/* Rows lost to failed commits so far. When a new failure happened since
 * the last call, copies its message to err and returns 1, else 0. Cheap:
 * meant to be polled on each append. */
int llm_calllog_take_error(llm_calllog *log, char *err, size_t errlen);
uint64_t llm_calllog_dropped(const llm_calllog *log);
/* Flushes, stops the writer and closes. NULL is fine. */
void llm_calllog_close(llm_calllog *log);

/* "20261115-142233-3fa9c1": UTC start time and 24 random bits. */
void llm_calllog_new_run_id(char *out, size_t n);

/* Brings db to schema version `upto` (at most LLM_CALLLOG_SCHEMA).
 * 0, or -1 with a message (a newer schema is refused). For tests and the
 * openers. */
int llm_calllog_migrate(sqlite3 *db, int upto, char *err, size_t errlen);

/* ---- reading ------------------------------------------------------------------ */

/* Opens an existing log for queries (migrating an older schema when it
 * can write). NULL with a message; *missing set to 1 when there is no log. */
sqlite3 *llm_calllog_open_reader(const char *path, int *missing, char *err, size_t errlen);

/* Finds a run by its id or a unique prefix of it (NULL or "": the latest).
 * 1 with the id in out, 0 when none matches, -2 when the prefix is
 * ambiguous, -1 on a database error (message in err). */
int llm_calllog_find_run(sqlite3 *db, const char *prefix, char *out, size_t n,
                         char *err, size_t errlen);

/* A cursor over runs (newest first) or calls (newest first; of one run
 * when run_id is not NULL). limit 0: all. */
typedef struct llm_log_cursor llm_log_cursor;

typedef struct llm_run_row {
  const char *run_id, *script, *version;
  const char *args, *cwd;  /* NULL for runs logged before schema 4 */
  double started_at;
  int simulated;
  int64_t calls, errors, hits;
  double cost;           /* of the calls with a known cost */
  int64_t cost_unknown;
  double first_start, last_end;
} llm_run_row;

llm_log_cursor *llm_calllog_runs(sqlite3 *db, int64_t limit, char *err, size_t errlen);
llm_log_cursor *llm_calllog_calls(sqlite3 *db, const char *run_id, int64_t limit,
                                  char *err, size_t errlen);
/* 1 with the next row (valid until the next call), 0 at the end, -1 on
 * an error. Use the function that matches the cursor. */
int llm_log_cursor_next_run(llm_log_cursor *c, llm_run_row *out);
/* The columns a call cursor reads, in order (r: runs, c: calls). */
#define LLM_CALLLOG_CALL_COLUMNS \
  "r.run_id, c.tag, c.case_id, c.model, c.provider, c.kind, c.status, c.cache_kind," \
  " c.error_kind, c.request_id, c.simulated, c.retries, c.http_status, c.started_at," \
  " c.latency_ms, c.ttft_ms, c.cost, c.prompt_tokens, c.completion_tokens, c.cached_tokens," \
  " c.cache_creation_tokens, c.input_tokens, c.client"

/* A cursor over a prepared statement that selects LLM_CALLLOG_CALL_COLUMNS
 * (then, optionally, prompt, response, error); it owns st.
 * NULL (st finalized) when out of memory. */
llm_log_cursor *llm_log_cursor_wrap(sqlite3_stmt *st, char *err, size_t n);
int llm_log_cursor_next_call(llm_log_cursor *c, llm_log_row *out);
void llm_log_cursor_free(llm_log_cursor *c);

/* Collects the calls of a run into one llm_callstats per group. */
typedef enum llm_log_group_by { LLM_GROUP_NONE, LLM_GROUP_TAG, LLM_GROUP_MODEL } llm_log_group_by;

typedef struct llm_log_group {
  char *key;                 /* the tag or model; "" for none */
  llm_callstats *stats;
  uint64_t simulated;        /* calls made to a simulated model */
} llm_log_group;

/* 0 with *groups (in order of first appearance; free with
 * llm_log_groups_free), or -1 with a message. */
int llm_calllog_collect(sqlite3 *db, const char *run_id, llm_log_group_by by,
                        llm_log_group **groups, size_t *ngroups, char *err, size_t errlen);
void llm_log_groups_free(llm_log_group *g, size_t n);

/* ---- searching (calllog_search.c) ----------------------------------------------- */

/* Which calls `llmrun logs` shows. NULL / 0 fields do not filter. */
typedef struct llm_log_filter {
  const char *run_id;   /* an exact id (resolve prefixes with llm_calllog_find_run) */
  const char *tag, *model, *status;
  const char *text;     /* a substring of the prompt, answer or error (any case) */
  int64_t limit;        /* the newest this many; 0: all */
  int with_text;        /* the rows carry prompt_text, response_text, error_text */
} llm_log_filter;

/* The calls that pass f, newest first by start time; read them with
 * llm_log_cursor_next_call. NULL with a message on failure. */
llm_log_cursor *llm_calllog_search(sqlite3 *db, const llm_log_filter *f, char *err, size_t n);

/* The latest run started in directory cwd: 1 with its id in out, 0 when
 * there is none, -1 on an error. */
int llm_calllog_latest_in(sqlite3 *db, const char *cwd, char *out, size_t n, char *err,
                          size_t errlen);

#endif
