/* The call log engine: private files, rows round-trip, batching by count
 * and by time, migrations in order, a newer schema refused, unwritable
 * and full disks, two writer processes, kill -9 in the middle of a batch
 * (../shared/RELIABILITY.md §A 40, 41, 43-45), and the readers. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store/calllog.h"

static char dir[64];

static void path_of(char *out, size_t n, const char *name)
{
  snprintf(out, n, "%s/%s", dir, name);
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static long long query_int(const char *path, const char *sql)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  else
    fprintf(stderr, "query %s: %s\n", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static int query_text(const char *path, const char *sql, char *out, size_t n)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  int ok = 0;
  out[0] = '\0';
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
      snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
      ok = 1;
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return ok;
}

/* Waits up to 3 s for `want` rows in calls. */
static long long wait_rows(const char *path, long long want)
{
  long long n = -1;
  for (int i = 0; i < 300; i++) {
    n = query_int(path, "SELECT count(*) FROM calls");
    if (n == want)
      break;
    sleep_ms(10);
  }
  return n;
}

static llm_log_row row_of(int i, const char *tag)
{
  static char case_id[32];
  llm_log_row r = {0};
  snprintf(case_id, sizeof case_id, "case-%d", i % 7);
  r.tag = tag;
  r.case_id = case_id;
  r.model = "gpt-4o-mini";
  r.provider = "sim";
  r.kind = "chat";
  r.status = i % 5 == 4 ? "error" : "ok";
  r.error_kind = i % 5 == 4 ? "http" : NULL;
  r.http_status = i % 5 == 4 ? 503 : 0;
  r.cache_kind = i % 5 == 3 ? "exact" : NULL;
  r.request_id = "req_123";
  r.simulated = 1;
  r.retries = i % 3;
  r.started_at = 1700000000.0 + i;
  r.latency_ms = 100 + i;
  r.ttft_ms = 20 + i;
  r.cost = i % 5 == 2 ? NAN : 0.001 * i;
  r.prompt_tokens = 10 + i;
  r.completion_tokens = 5;
  r.cached_tokens = 0;
  r.cache_creation_tokens = NAN;
  r.input_tokens = NAN;
  return r;
}

static llm_calllog *open_log(const char *path, size_t rows, int ms, const char *run_id)
{
  char err[256];
  llm_calllog_opts o = {rows, ms};
  llm_calllog *log = llm_calllog_open(path, &o, err, sizeof err);
  llm_run_info run = {run_id, "test.lua", "0.1.0", 1700000000.0, 1, "[\"--fast\"]", "/tmp/work"};
  if (!log) {
    check_fail(__FILE__, __LINE__, "open %s: %s", path, err);
    return NULL;
  }
  llm_calllog_set_run(log, &run);
  return log;
}

static void test_files_and_rows(void)
{
  char sub[512], path[600], side[700], err[256], text[64];
  struct stat st;
  llm_calllog *log;
  snprintf(sub, sizeof sub, "%s/new/deeper", dir);
  snprintf(path, sizeof path, "%s/runs.db", sub);
  log = open_log(path, 0, 0, "run-A");
  if (!log)
    return;
  CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
  for (int i = 0; i < 10; i++) {
    llm_log_row r = row_of(i, "base");
    CHECK_INT(llm_calllog_append(log, &r), 0);
  }
  CHECK_INT(llm_calllog_flush(log, err, sizeof err), 0);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 10);
  CHECK_INT(query_int(path, "SELECT count(*) FROM runs"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls WHERE cost IS NULL"), 2);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls WHERE input_tokens IS NULL"), 10);
  CHECK_INT(query_int(path, "SELECT http_status FROM calls WHERE status = 'error' LIMIT 1"), 503);
  CHECK_INT(query_int(path, "SELECT prompt_tokens FROM calls ORDER BY id LIMIT 1"), 10);
  CHECK(query_text(path, "SELECT run_id || '|' || script FROM runs", text, sizeof text));
  CHECK_STR(text, "run-A|test.lua");
  CHECK(query_text(path, "PRAGMA journal_mode", text, sizeof text));
  CHECK_STR(text, "wal");
  /* sqlite gives the -wal and -shm files the database's mode */
  snprintf(side, sizeof side, "%s-wal", path);
  CHECK(stat(side, &st) == 0 && (st.st_mode & 0777) == 0600);
  snprintf(side, sizeof side, "%s-shm", path);
  CHECK(stat(side, &st) == 0 && (st.st_mode & 0777) == 0600);
  llm_calllog_close(log);
  CHECK_INT(query_int(path, "PRAGMA user_version"), LLM_CALLLOG_SCHEMA);
  llm_calllog_close(NULL);
}

static void test_batching(void)
{
  char path[512], err[256];
  llm_calllog *log;
  path_of(path, sizeof path, "batch.db");
  /* by count: nothing is written until a batch of 10 waits */
  log = open_log(path, 10, 600000, "run-B");
  if (!log)
    return;
  for (int i = 0; i < 5; i++) {
    llm_log_row r = row_of(i, "t");
    llm_calllog_append(log, &r);
  }
  sleep_ms(150);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 0);
  for (int i = 5; i < 10; i++) {
    llm_log_row r = row_of(i, "t");
    llm_calllog_append(log, &r);
  }
  CHECK_INT(wait_rows(path, 10), 10);
  for (int i = 10; i < 13; i++) {
    llm_log_row r = row_of(i, "t");
    llm_calllog_append(log, &r);
  }
  sleep_ms(150);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 10); /* the last 3 wait */
  CHECK_INT(llm_calllog_flush(log, err, sizeof err), 0);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 13);
  llm_calllog_close(log);

  /* by time: three rows appear without a flush once the deadline passes */
  log = open_log(path, 1000, 50, "run-C");
  if (!log)
    return;
  for (int i = 0; i < 3; i++) {
    llm_log_row r = row_of(i, "t");
    llm_calllog_append(log, &r);
  }
  CHECK_INT(wait_rows(path, 16), 16);
  /* close commits what waits */
  {
    llm_log_row r = row_of(3, "t");
    llm_calllog_append(log, &r);
  }
  llm_calllog_close(log);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 17);
  CHECK_INT(query_int(path, "SELECT count(*) FROM runs"), 2);
}

static void test_migrations(void)
{
  char path[512], err[256];
  sqlite3 *db;
  llm_calllog *log;
  path_of(path, sizeof path, "old.db");
  /* a log written by a build that knew only schema 1 */
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK_INT(llm_calllog_migrate(db, 1, err, sizeof err), 0);
  CHECK(sqlite3_exec(db, "INSERT INTO runs(run_id, started_at) VALUES ('old-run', 1);"
                         "INSERT INTO calls(run, status, model) VALUES (1, 'ok', 'm');",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  CHECK_INT(query_int(path, "PRAGMA user_version"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'runs_by_start'"), 0);

  log = open_log(path, 0, 0, "new-run");
  if (!log)
    return;
  CHECK_INT(query_int(path, "PRAGMA user_version"), LLM_CALLLOG_SCHEMA);
  CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'runs_by_start'"), 1);
  /* 3: the gateway's client column, NULL for the old rows */
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls WHERE client IS NULL"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'call_texts'"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 1); /* old rows kept */
  /* schema 4: a run's arguments and directory, a call's text in call_texts */
  {
    llm_log_row r = row_of(1, "t");
    r.prompt_text = "user: What is 2 + 2?";
    r.response_text = "4";
    llm_calllog_append(log, &r);
    r = row_of(2, "t"); /* no text: no row in call_texts */
    llm_calllog_append(log, &r);
  }
  llm_calllog_close(log);
  CHECK_INT(query_int(path, "SELECT count(*) FROM call_texts"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM call_texts t JOIN calls c ON c.id = t.call"
                            " WHERE t.prompt = 'user: What is 2 + 2?' AND t.response = '4'"
                            " AND t.error IS NULL AND c.case_id = 'case-1'"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM runs WHERE run_id = 'new-run'"
                            " AND args = '[\"--fast\"]' AND cwd = '/tmp/work'"), 1);
  CHECK_INT(query_int(path, "SELECT count(*) FROM runs WHERE run_id = 'old-run' AND cwd IS NULL"), 1);
  /* idempotent: migrating again changes nothing */
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK_INT(llm_calllog_migrate(db, LLM_CALLLOG_SCHEMA, err, sizeof err), 0);
  sqlite3_close(db);
  CHECK_INT(query_int(path, "PRAGMA user_version"), LLM_CALLLOG_SCHEMA);
}

/* Files older builds left: main's schema 2 (before the client column) and
 * 3 (client, no texts), and the schema 3 of issue 15's development branch
 * (texts, no client). Each opens, migrates to the current schema with the
 * client column and the texts, keeps its rows, and takes new ones. */
static void test_old_schemas(void)
{
  static const char branch_schema_3[] =
    "ALTER TABLE runs ADD COLUMN args TEXT;"
    "ALTER TABLE runs ADD COLUMN cwd TEXT;"
    "CREATE INDEX runs_by_cwd ON runs(cwd, started_at);"
    "CREATE TABLE call_texts (call INTEGER PRIMARY KEY, prompt TEXT, response TEXT, error TEXT);"
    "PRAGMA user_version = 3;";
  static const struct { const char *name; int upto; const char *extra; } olds[] = {
    {"main-2.db", 2, NULL},
    {"main-3.db", 3, NULL},
    {"branch-3.db", 2, branch_schema_3},
  };
  for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
    char path[512], err[256];
    sqlite3 *db;
    llm_calllog *log;
    path_of(path, sizeof path, olds[i].name);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT(llm_calllog_migrate(db, olds[i].upto, err, sizeof err), 0);
    if (olds[i].extra)
      CHECK(sqlite3_exec(db, olds[i].extra, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "INSERT INTO runs(run_id, started_at) VALUES ('old-run', 1);"
                           "INSERT INTO calls(run, status, model) VALUES (1, 'ok', 'm');",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    log = open_log(path, 0, 0, "new-run");
    if (!log)
      continue;
    {
      llm_log_row r = row_of(1, "t");
      r.client = "127.0.0.1:5000";
      r.prompt_text = "user: hi";
      llm_calllog_append(log, &r);
    }
    llm_calllog_close(log);
    CHECK_INT(query_int(path, "PRAGMA user_version"), LLM_CALLLOG_SCHEMA);
    CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 2);
    CHECK_INT(query_int(path, "SELECT count(*) FROM calls WHERE client = '127.0.0.1:5000'"), 1);
    CHECK_INT(query_int(path, "SELECT count(*) FROM call_texts WHERE prompt = 'user: hi'"), 1);
    CHECK_INT(query_int(path, "SELECT count(*) FROM runs WHERE cwd = '/tmp/work'"), 1);
    /* a reader opens it too, and migrating again changes nothing */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT(llm_calllog_migrate(db, LLM_CALLLOG_SCHEMA, err, sizeof err), 0);
    sqlite3_close(db);
    CHECK_INT(query_int(path, "PRAGMA user_version"), LLM_CALLLOG_SCHEMA);
  }
}

static void test_newer_schema(void)
{
  char path[512], err[256] = "";
  sqlite3 *db;
  int missing;
  llm_calllog_opts o = {0};
  path_of(path, sizeof path, "future.db");
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(llm_calllog_open(path, &o, err, sizeof err) == NULL);
  CHECK(strstr(err, "schema version 99") != NULL);
  CHECK(strstr(err, "newer than this llmrun") != NULL);
  err[0] = '\0';
  CHECK(llm_calllog_open_reader(path, &missing, err, sizeof err) == NULL);
  CHECK(strstr(err, "newer") != NULL && !missing);
  CHECK_INT(query_int(path, "PRAGMA user_version"), 99); /* untouched */
}

static void test_unwritable(void)
{
  char path[512], err[256] = "";
  llm_calllog_opts o = {0};
  int missing;
  /* a directory that cannot be created, even by root */
  CHECK(llm_calllog_open("/proc/llmrun-test/runs.db", &o, err, sizeof err) == NULL);
  CHECK(strstr(err, "cannot create") != NULL);
  /* a path under a regular file */
  path_of(path, sizeof path, "plainfile");
  fclose(fopen(path, "w"));
  path_of(path, sizeof path, "plainfile/runs.db");
  CHECK(llm_calllog_open(path, &o, err, sizeof err) == NULL);
  if (geteuid() != 0) {
    char ro[128], inside[160];
    path_of(ro, sizeof ro, "ro");
    mkdir(ro, 0500);
    snprintf(inside, sizeof inside, "%s/runs.db", ro);
    CHECK(llm_calllog_open(inside, &o, err, sizeof err) == NULL);
  }
  path_of(path, sizeof path, "none.db");
  CHECK(llm_calllog_open_reader(path, &missing, err, sizeof err) == NULL);
  CHECK(missing && strstr(err, "no call log") != NULL);
}

/* A disk that fills up while writing (RLIMIT_FSIZE, in a child): commits
 * fail, rows are counted as dropped, the error is reported once, and the
 * process goes on. */
static void test_full_disk(void)
{
  char path[512];
  pid_t pid;
  int status;
  path_of(path, sizeof path, "full.db");
  pid = fork();
  if (pid == 0) {
    struct rlimit rl = {64 * 1024, 64 * 1024};
    char err[256];
    llm_calllog *log;
    int reported = 0;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    log = open_log(path, 50, 600000, "run-full");
    if (!log)
      _exit(10);
    for (int i = 0; i < 5000; i++) {
      llm_log_row r = row_of(i, "padding-padding-padding-padding-padding");
      llm_calllog_append(log, &r);
      if (i % 50 == 49)
        llm_calllog_flush(log, err, sizeof err);
      reported += llm_calllog_take_error(log, err, sizeof err);
    }
    llm_calllog_flush(log, err, sizeof err);
    reported += llm_calllog_take_error(log, err, sizeof err);
    if (llm_calllog_dropped(log) == 0)
      _exit(11);
    if (reported < 1 || strstr(err, "cannot write the call log") == NULL)
      _exit(12);
    llm_calllog_close(log);
    _exit(0);
  }
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK_INT(WEXITSTATUS(status), 0);
  {
    char text[32];
    CHECK(query_text(path, "PRAGMA integrity_check", text, sizeof text));
    CHECK_STR(text, "ok");
  }
}

static void child_writes(const char *path, const char *run_id, int n, int batch)
{
  llm_calllog *log = open_log(path, (size_t)batch, 5, run_id);
  char err[256];
  if (!log)
    _exit(1);
  for (int i = 0; i < n; i++) {
    llm_log_row r = row_of(i, run_id);
    llm_calllog_append(log, &r);
  }
  if (llm_calllog_flush(log, err, sizeof err) != 0 || llm_calllog_dropped(log) != 0)
    _exit(2);
  llm_calllog_close(log);
  _exit(0);
}

static void test_two_processes(void)
{
  char path[512];
  pid_t a, b;
  int sa, sb;
  path_of(path, sizeof path, "two.db");
  if ((a = fork()) == 0)
    child_writes(path, "proc-a", 1000, 7);
  if ((b = fork()) == 0)
    child_writes(path, "proc-b", 1000, 11);
  waitpid(a, &sa, 0);
  waitpid(b, &sb, 0);
  CHECK(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
  CHECK(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
  CHECK_INT(query_int(path, "SELECT count(*) FROM calls"), 2000);
  CHECK_INT(query_int(path, "SELECT count(*) FROM runs"), 2);
  /* the runs' rowid ranges may overlap: the readers still keep them apart */
  {
    char err[256];
    int missing;
    sqlite3 *db = llm_calllog_open_reader(path, &missing, err, sizeof err);
    llm_log_group *g;
    size_t ng;
    llm_log_cursor *c;
    llm_log_row row;
    int n = 0;
    CHECK(db != NULL);
    CHECK_INT(llm_calllog_collect(db, "proc-a", LLM_GROUP_NONE, &g, &ng, err, sizeof err), 0);
    CHECK_INT(ng, 1);
    if (ng == 1)
      CHECK_INT(llm_callstats_calls(g[0].stats), 1000);
    llm_log_groups_free(g, ng);
    c = llm_calllog_calls(db, "proc-b", 0, err, sizeof err);
    while (llm_log_cursor_next_call(c, &row) == 1) {
      if (strcmp(row.tag, "proc-b") != 0)
        n = -100000;
      n++;
    }
    CHECK_INT(n, 1000);
    llm_log_cursor_free(c);
    sqlite3_close(db);
  }
}

/* kill -9 while batches are being committed: the file stays consistent,
 * every batch is whole or absent, and every flushed batch survives. */
static void test_kill_mid_batch(void)
{
  enum { GROUP = 200, ROUNDS = 6 };
  char path[512], text[32];
  long long flushed_total = 0;
  path_of(path, sizeof path, "killed.db");
  for (int round = 0; round < ROUNDS; round++) {
    int fds[2];
    pid_t pid;
    long long flushed = 0, got;
    char run_id[32];
    CHECK(pipe(fds) == 0);
    snprintf(run_id, sizeof run_id, "killed-%d", round);
    pid = fork();
    if (pid == 0) {
      /* batches only on flush: each transaction is one group */
      llm_calllog *log = open_log(path, 1u << 30, 600000, run_id);
      char err[256], tag[32];
      close(fds[0]);
      if (!log)
        _exit(1);
      for (int g = 0; g < 100000; g++) {
        snprintf(tag, sizeof tag, "g%d", g);
        for (int i = 0; i < GROUP; i++) {
          llm_log_row r = row_of(i, tag);
          llm_calllog_append(log, &r);
        }
        if (llm_calllog_flush(log, err, sizeof err) == 0)
          if (write(fds[1], "x", 1) != 1)
            _exit(3);
      }
      _exit(2);
    }
    close(fds[1]);
    sleep_ms(40 + 37 * round);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    {
      char buf[4096];
      ssize_t r;
      while ((r = read(fds[0], buf, sizeof buf)) > 0)
        flushed += r;
    }
    close(fds[0]);
    flushed_total += flushed;
    CHECK(query_text(path, "PRAGMA integrity_check", text, sizeof text));
    CHECK_STR(text, "ok");
    if (query_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'calls'") == 0) {
      /* killed before its first commit (a slow start on a busy machine) */
      CHECK_INT(flushed_total, 0);
      continue;
    }
    got = query_int(path, "SELECT count(*) FROM (SELECT tag FROM calls GROUP BY run, tag"
                          " HAVING count(*) != 200)");
    CHECK_INT(got, 0);
    got = query_int(path, "SELECT count(*) FROM calls");
    CHECK(got % GROUP == 0);
    CHECK(got >= flushed_total * GROUP);
  }
  printf("kill -9: %lld flushed groups survived %d kills\n", flushed_total, ROUNDS);
  CHECK(flushed_total > 0);
}

static void test_readers(void)
{
  char path[512], err[256], id[64];
  int missing;
  sqlite3 *db;
  llm_calllog *log;
  llm_log_cursor *c;
  llm_run_row run;
  llm_log_row row;
  llm_log_group *groups;
  size_t ng;
  int n;
  path_of(path, sizeof path, "read.db");
  const char *ids[] = {"20260101-000000-aaaaaa", "20260102-000000-bbbbbb", "20260102-000000-bbbbbc"};
  for (int k = 0; k < 3; k++) {
    llm_calllog_opts o = {0};
    llm_run_info ri = {ids[k], "s.lua", "0.1.0", 1700000000.0 + k, 0, NULL, k == 1 ? "/a" : "/b"};
    log = llm_calllog_open(path, &o, err, sizeof err);
    if (!log) {
      check_fail(__FILE__, __LINE__, "open: %s", err);
      return;
    }
    llm_calllog_set_run(log, &ri);
    for (int i = 0; i < 10 * (k + 1); i++) {
      llm_log_row r = row_of(i, i % 2 ? "after" : "before");
      llm_calllog_append(log, &r);
    }
    llm_calllog_close(log);
  }
  db = llm_calllog_open_reader(path, &missing, err, sizeof err);
  CHECK(db != NULL);
  if (!db)
    return;
  CHECK_INT(llm_calllog_find_run(db, NULL, id, sizeof id, err, sizeof err), 1);
  CHECK_STR(id, ids[2]);
  CHECK_INT(llm_calllog_find_run(db, "20260101", id, sizeof id, err, sizeof err), 1);
  CHECK_STR(id, ids[0]);
  CHECK_INT(llm_calllog_find_run(db, "20260102", id, sizeof id, err, sizeof err), -2);
  CHECK_INT(llm_calllog_find_run(db, "nope", id, sizeof id, err, sizeof err), 0);
  CHECK_INT(llm_calllog_find_run(db, ids[1], id, sizeof id, err, sizeof err), 1);
  CHECK_STR(id, ids[1]);

  c = llm_calllog_runs(db, 2, err, sizeof err);
  n = 0;
  while (llm_log_cursor_next_run(c, &run) == 1) {
    if (n == 0) {
      CHECK_STR(run.run_id, ids[2]);
      CHECK_INT(run.calls, 30);
      CHECK_INT(run.errors, 6);   /* i % 5 == 4 */
      CHECK_INT(run.hits, 6);     /* i % 5 == 3 */
      CHECK_INT(run.cost_unknown, 6); /* i % 5 == 2 */
    }
    n++;
  }
  CHECK_INT(n, 2);
  llm_log_cursor_free(c);

  c = llm_calllog_calls(db, ids[0], 3, err, sizeof err);
  n = 0;
  while (llm_log_cursor_next_call(c, &row) == 1) {
    if (n == 0) { /* newest first */
      CHECK_STR(row.tag, "after");
      CHECK_STR(row.run_id, ids[0]);
      CHECK(row.latency_ms == 109);
      CHECK(isnan(row.input_tokens));
    }
    n++;
  }
  CHECK_INT(n, 3);
  llm_log_cursor_free(c);

  CHECK_INT(llm_calllog_collect(db, ids[2], LLM_GROUP_TAG, &groups, &ng, err, sizeof err), 0);
  CHECK_INT(ng, 2);
  if (ng == 2) {
    llm_callstats_totals t;
    CHECK_STR(groups[0].key, "before");
    CHECK_STR(groups[1].key, "after");
    llm_callstats_summary(groups[0].stats, &t);
    CHECK_INT(t.calls, 15);
    CHECK_INT(groups[0].simulated, 15);
  }
  llm_log_groups_free(groups, ng);
  CHECK_INT(llm_calllog_collect(db, "missing-run", LLM_GROUP_NONE, &groups, &ng, err, sizeof err), 0);
  CHECK_INT(ng, 0);
  llm_log_groups_free(groups, ng);
  sqlite3_close(db);
}

static void test_run_id(void)
{
  char a[64], b[64];
  llm_calllog_new_run_id(a, sizeof a);
  llm_calllog_new_run_id(b, sizeof b);
  CHECK_INT(strlen(a), 22);
  CHECK(a[8] == '-' && a[15] == '-');
  CHECK(strcmp(a, b) != 0);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/llmrun-calllog-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_files_and_rows();
  test_batching();
  test_migrations();
  test_old_schemas();
  test_newer_schema();
  test_unwritable();
  test_full_disk();
  test_two_processes();
  test_kill_mid_batch();
  test_readers();
  test_run_id();
  {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  }
  return check_report("calllog");
}
