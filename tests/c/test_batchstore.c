/* The batch record engine (batchstore.h): a private file in a private
 * directory, rows round-trip, the lookups (by hash without forgotten rows,
 * by id or prefix, all newest first), status updates, replacing a row,
 * a newer schema refused, and two processes writing at once. */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/batchstore.h"
#include "check.h"

static char dir[64];

typedef struct seen {
  int n;
  char ids[8][64], status[8][32];
  long long requests[8];
  int forgotten[8];
} seen;

static int collect(void *ud, const llm_batch_rec *r)
{
  seen *s = ud;
  if (s->n < 8) {
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", r->batch_id);
    snprintf(s->status[s->n], sizeof s->status[0], "%s", r->status ? r->status : "");
    s->requests[s->n] = r->requests;
    s->forgotten[s->n] = r->forgotten;
  }
  s->n++;
  return 0;
}

static seen query(llm_batchstore *st, llm_batch_query q, const char *arg, int64_t limit)
{
  seen s;
  char err[256];
  memset(&s, 0, sizeof s);
  CHECK_INT(llm_batchstore_query(st, q, arg, limit, collect, &s, err, sizeof err), 0);
  return s;
}

static llm_batch_rec rec(const char *id, const char *hash, double at)
{
  llm_batch_rec r;
  memset(&r, 0, sizeof r);
  r.batch_id = id;
  r.hash = hash;
  r.provider = "openai";
  r.base_url = "https://api.openai.com/v1";
  r.model = "gpt-4o-mini";
  r.status = "validating";
  r.requests = 10;
  r.first = 1;
  r.created_at = at;
  return r;
}

static void test_rows(void)
{
  char path[128], err[256];
  struct stat sb;
  llm_batchstore *st;
  llm_batch_rec a = rec("batch_aaa1", "h1", 100), b = rec("batch_aab2", "h1", 200),
                c = rec("batch_ccc3", "h2", 300);
  seen s;
  snprintf(path, sizeof path, "%s/sub/batches.db", dir);
  st = llm_batchstore_open(path, err, sizeof err);
  CHECK(st != NULL);
  if (!st)
    return;
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
  snprintf(path, sizeof path, "%s/sub", dir);
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);
  CHECK_INT(llm_batchstore_put(st, &a, err, sizeof err), 0);
  CHECK_INT(llm_batchstore_put(st, &b, err, sizeof err), 0);
  CHECK_INT(llm_batchstore_put(st, &c, err, sizeof err), 0);
  /* by hash: newest first */
  s = query(st, LLM_BATCH_BY_HASH, "h1", 0);
  CHECK_INT(s.n, 2);
  CHECK_STR(s.ids[0], "batch_aab2");
  CHECK_STR(s.ids[1], "batch_aaa1");
  s = query(st, LLM_BATCH_BY_HASH, "h1", 1);
  CHECK_INT(s.n, 1);
  /* by id prefix (an underscore is not a wildcard) */
  s = query(st, LLM_BATCH_BY_ID, "batch_aa", 0);
  CHECK_INT(s.n, 2);
  s = query(st, LLM_BATCH_BY_ID, "batch%", 0);
  CHECK_INT(s.n, 0);
  s = query(st, LLM_BATCH_BY_ID, "batch_ccc3", 0);
  CHECK_INT(s.n, 1);
  s = query(st, LLM_BATCH_ALL, NULL, 0);
  CHECK_INT(s.n, 3);
  CHECK_STR(s.ids[0], "batch_ccc3");
  /* status */
  CHECK_INT(llm_batchstore_set_status(st, "batch_ccc3", NULL, "completed", 400, err, sizeof err), 1);
  CHECK_INT(llm_batchstore_set_status(st, "batch_nope", NULL, "completed", 400, err, sizeof err), 0);
  CHECK_INT(llm_batchstore_set_status(st, "batch_ccc3", "http://other", "failed", 400, err, sizeof err), 0);
  s = query(st, LLM_BATCH_BY_ID, "batch_ccc3", 0);
  CHECK_STR(s.status[0], "completed");
  /* forgotten rows are not found by hash, still listed */
  CHECK_INT(llm_batchstore_forget(st, "h1", err, sizeof err), 0);
  s = query(st, LLM_BATCH_BY_HASH, "h1", 0);
  CHECK_INT(s.n, 0);
  s = query(st, LLM_BATCH_ALL, NULL, 0);
  CHECK_INT(s.n, 3);
  CHECK_INT(s.forgotten[2], 1);
  /* the same batch id and base URL: replaced, not doubled */
  c.requests = 7;
  CHECK_INT(llm_batchstore_put(st, &c, err, sizeof err), 0);
  s = query(st, LLM_BATCH_BY_ID, "batch_ccc3", 0);
  CHECK_INT(s.n, 1);
  CHECK_INT(s.requests[0], 7);
  llm_batchstore_close(st);
  /* it persists */
  snprintf(path, sizeof path, "%s/sub/batches.db", dir);
  st = llm_batchstore_open(path, err, sizeof err);
  CHECK(st != NULL);
  s = query(st, LLM_BATCH_ALL, NULL, 0);
  CHECK_INT(s.n, 3);
  llm_batchstore_close(st);
}

static void test_newer_schema(void)
{
  char path[128], err[256];
  sqlite3 *db;
  snprintf(path, sizeof path, "%s/newer.db", dir);
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(llm_batchstore_open(path, err, sizeof err) == NULL);
  CHECK(strstr(err, "newer") != NULL);
}

static void test_two_processes(void)
{
  char path[128], err[256];
  llm_batchstore *st;
  pid_t pids[2];
  seen s;
  snprintf(path, sizeof path, "%s/shared.db", dir);
  for (int p = 0; p < 2; p++) {
    if ((pids[p] = fork()) == 0) {
      llm_batchstore *mine = llm_batchstore_open(path, err, sizeof err);
      int bad = !mine;
      for (int i = 0; mine && i < 50; i++) {
        char id[32];
        llm_batch_rec r;
        snprintf(id, sizeof id, "batch_p%d_%d", p, i);
        r = rec(id, "h", i);
        bad |= llm_batchstore_put(mine, &r, err, sizeof err) != 0;
      }
      llm_batchstore_close(mine);
      _exit(bad);
    }
  }
  for (int p = 0; p < 2; p++) {
    int status = 0;
    waitpid(pids[p], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  st = llm_batchstore_open(path, err, sizeof err);
  CHECK(st != NULL);
  if (!st)
    return;
  s = query(st, LLM_BATCH_BY_HASH, "h", 0);
  CHECK_INT(s.n, 100);
  llm_batchstore_close(st);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/llmrun-batchstore-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_rows();
  test_newer_schema();
  test_two_processes();
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  }
  return check_report("batchstore");
}
