/* The cache store under processes that die or compete (RELIABILITY.md
 * §A 40-41): kill -9 in the middle of batches of writes leaves an intact
 * file holding each batch whole or not at all; two processes writing
 * 1,000 entries each at the same time both finish with no SQLITE_BUSY
 * and nothing lost. */
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "digest.h"
#include "store/cache.h"

static char dir[256];

static llm_cache *open_at(const char *path)
{
  int status;
  char err[512];
  llm_cache *c = llm_cache_open(&(llm_cache_config){.path = path, .memory_bytes = 1 << 20},
                                &status, err, sizeof err);
  if (!c)
    fprintf(stderr, "open: %s\n", err);
  return c;
}

/* Writes batches of 40 embeddings (one transaction each) and single
 * responses until killed; says so on `ready` after the first batch. */
static void writer_forever(const char *path, int seed, int ready)
{
  llm_cache *c = open_at(path);
  float vec[64];
  const float *vecs[40];
  int lens[40];
  uint8_t hashes[40][32];
  char name[64];
  if (!c)
    _exit(3);
  for (int j = 0; j < 64; j++)
    vec[j] = (float)(j + seed);
  for (int i = 0; i < 40; i++) {
    vecs[i] = vec;
    lens[i] = 64;
  }
  for (int b = 0;; b++) {
    snprintf(name, sizeof name, "batch-%d-%d", seed, b);
    for (int i = 0; i < 40; i++) {
      char t[96];
      snprintf(t, sizeof t, "%s/%d", name, i);
      llm_sha256(t, strlen(t), hashes[i]);
    }
    if (llm_cache_embed_put(c, name, 0, 40, (const uint8_t (*)[32])hashes, vecs, lens, b) != 0)
      _exit(4);
    llm_sha256(name, strlen(name), hashes[0]);
    if (llm_cache_put(c, "resp", hashes[0], name, strlen(name), b, 0) != 0)
      _exit(5);
    if (b == 0 && write(ready, "r", 1) != 1)
      _exit(6);
  }
}

static void test_kill_mid_batch(void)
{
  char path[512];
  snprintf(path, sizeof path, "%s/killed.db", dir);
  srand((unsigned)time(NULL));
  for (int round = 0; round < 6; round++) {
    int fds[2];
    char r;
    CHECK_INT(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      writer_forever(path, round, fds[1]);
    }
    close(fds[1]);
    /* kill it at a random moment once it is writing (slow builds start late) */
    CHECK_INT(read(fds[0], &r, 1), 1);
    close(fds[0]);
    struct timespec ts = {0, (1 + rand() % 100) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

    llm_cache *c = open_at(path);
    char ic[256] = "";
    CHECK(c != NULL);
    if (!c)
      return;
    CHECK_INT(llm_cache_integrity(c, ic, sizeof ic), LLM_CACHE_OK);
    CHECK_STR(ic, "ok");
    llm_cache_close(c);
    /* every batch is whole: 40 rows or none */
    sqlite3 *db;
    sqlite3_stmt *st;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*), min(n), max(n) FROM "
                                 "(SELECT model, count(*) AS n FROM embeddings GROUP BY model)",
                                 -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    int batches = sqlite3_column_int(st, 0);
    CHECK(batches > 0);
    CHECK_INT(sqlite3_column_int(st, 1), 40);
    CHECK_INT(sqlite3_column_int(st, 2), 40);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
}

/* One of the two writers: waits at the barrier, then 1,000 puts. Exits
 * with the number of failed writes (BUSY or any other). */
static void writer_1000(const char *path, int who, int barrier)
{
  llm_cache *c = open_at(path);
  char go, name[64];
  uint8_t k[32];
  int failed = 0;
  if (!c)
    _exit(200);
  if (read(barrier, &go, 1) != 1)
    _exit(201);
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "w%d-%d", who, i);
    llm_sha256(name, strlen(name), k);
    int s = llm_cache_put(c, "race", k, name, strlen(name), i, 0);
    if (s != LLM_CACHE_OK) {
      if (failed++ == 0)
        fprintf(stderr, "writer %d: %s\n", who, llm_cache_errmsg(c));
    }
    if (i % 10 == 0)
      llm_cache_count(c, "race", LLM_CC_STORES, 10);
  }
  llm_cache_close(c);
  _exit(failed > 199 ? 199 : failed);
}

static void test_two_writers(void)
{
  char path[512];
  int fds[2];
  pid_t pids[2];
  snprintf(path, sizeof path, "%s/race.db", dir);
  llm_cache_close(open_at(path)); /* create it: both writers then only open */
  CHECK_INT(pipe(fds), 0);
  fflush(NULL);
  for (int w = 0; w < 2; w++) {
    pids[w] = fork();
    if (pids[w] == 0) {
      close(fds[1]);
      writer_1000(path, w, fds[0]);
    }
  }
  close(fds[0]);
  CHECK_INT(write(fds[1], "gg", 2), 2); /* both start at once */
  close(fds[1]);
  for (int w = 0; w < 2; w++) {
    int ws;
    waitpid(pids[w], &ws, 0);
    CHECK(WIFEXITED(ws));
    CHECK_INT(WEXITSTATUS(ws), 0);
  }
  llm_cache *c = open_at(path);
  llm_cache_info info;
  char ic[256];
  CHECK_INT(llm_cache_info_get(c, &info), LLM_CACHE_OK);
  CHECK_INT(info.entries, 2000);
  CHECK_INT(llm_cache_integrity(c, ic, sizeof ic), LLM_CACHE_OK);
  CHECK_STR(ic, "ok");
  llm_cache_close(c);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/llmrun-test-cachec-XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  test_kill_mid_batch();
  test_two_writers();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_report("cache_concurrency");
}
