/* The Redis client engine (src/redis_client.c) without Lua: URL parsing,
 * then against a real redis-server (tests/tools/redis_server.sh): replies
 * in order from a pipeline, a timeout that resets the connection, a
 * refused connection and the backoff after it, abandoned commands,
 * repeating commands and the drain at exit. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "redis_client.h"

/* ---- URLs ---------------------------------------------------------------------- */

static void test_urls(void)
{
  static const struct {
    const char *url;
    const char *host, *socket, *user, *password;
    int port, db;
    const char *error; /* a part of the message, or NULL for success */
  } cases[] = {
    {"redis://localhost", "localhost", "", "", "", 6379, 0, NULL},
    {"redis://10.0.0.5:7000/3", "10.0.0.5", "", "", "", 7000, 3, NULL},
    {"redis://:pw@h/1", "h", "", "", "pw", 6379, 1, NULL},
    {"redis://u:p%40ss%3A@h:1/2", "h", "", "u", "p@ss:", 1, 2, NULL},
    {"redis://secret@h", "h", "", "", "secret", 6379, 0, NULL},
    {"redis://[::1]:6390", "::1", "", "", "", 6390, 0, NULL},
    {"redis://", "127.0.0.1", "", "", "", 6379, 0, NULL},
    {"unix:///run/r.sock?db=5", "", "/run/r.sock", "", "", 6379, 5, NULL},
    {"rediss://h", NULL, NULL, NULL, NULL, 0, 0, "TLS"},
    {"http://h", NULL, NULL, NULL, NULL, 0, 0, "expected redis://"},
    {"redis://h:0", NULL, NULL, NULL, NULL, 0, 0, "port"},
    {"redis://h:65536", NULL, NULL, NULL, NULL, 0, 0, "port"},
    {"redis://h/x", NULL, NULL, NULL, NULL, 0, 0, "database number"},
    {"redis://h?x=1", NULL, NULL, NULL, NULL, 0, 0, "query"},
    {"redis://:%4@h", NULL, NULL, NULL, NULL, 0, 0, "escaped"},
    {"redis://[::1", NULL, NULL, NULL, NULL, 0, 0, "unclosed"},
    {"unix://relative", NULL, NULL, NULL, NULL, 0, 0, "absolute"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    llm_redis_url u;
    char err[300] = "";
    int rc = llm_redis_parse_url(cases[i].url, &u, err, sizeof err);
    if (cases[i].error) {
      CHECK_INT(rc, -1);
      if (!strstr(err, cases[i].error))
        check_fail(__FILE__, __LINE__, "%s: '%s' lacks '%s'", cases[i].url, err, cases[i].error);
      CHECK(!strstr(err, "secret"));
      continue;
    }
    CHECK_INT(rc, 0);
    CHECK_STR(u.host, cases[i].host);
    CHECK_STR(u.socket, cases[i].socket);
    CHECK_STR(u.user, cases[i].user);
    CHECK_STR(u.password, cases[i].password);
    CHECK_INT(u.port, cases[i].port);
    CHECK_INT(u.db, cases[i].db);
  }
  {
    llm_redis_url u;
    char err[100], shown[200];
    CHECK_INT(llm_redis_parse_url("redis://:secret@h:1/2", &u, err, sizeof err), 0);
    llm_redis_url_display(&u, shown, sizeof shown);
    CHECK_STR(shown, "redis://h:1/2");
  }
}

/* ---- against a server --------------------------------------------------------------- */

static int port, server_pid;
static char dir[] = "/tmp/llmrun-redis-XXXXXX";

static int start_server(void)
{
  char cmd[600], line[100];
  const char *root = getenv("LLMRUN_SOURCE_DIR");
  FILE *p;
  if (!mkdtemp(dir))
    return -1;
  snprintf(cmd, sizeof cmd, "bash %s/tests/tools/redis_server.sh %s 60 0", root ? root : ".", dir);
  p = popen(cmd, "r");
  if (!p)
    return -1;
  if (!fgets(line, sizeof line, p) || sscanf(line, "%d %d", &port, &server_pid) != 2) {
    pclose(p);
    return -1;
  }
  pclose(p);
  return 0;
}

static void stop_server(void)
{
  char cmd[200];
  snprintf(cmd, sizeof cmd, "kill %d; sleep 0.2; rm -rf %s", server_pid, dir);
  if (system(cmd) != 0) {
  }
}

typedef struct result {
  int done, status;
  int type;
  long long integer;
  char str[400];
} result;

static void on_done(void *ud, const redisReply *reply, int status, const char *message)
{
  result *r = ud;
  r->done++;
  r->status = status;
  if (reply) {
    r->type = reply->type;
    r->integer = reply->integer;
    if (reply->str)
      snprintf(r->str, sizeof r->str, "%s", reply->str);
  } else {
    snprintf(r->str, sizeof r->str, "%s", message ? message : "");
  }
}

static int send_cmd(llm_redis *r, double timeout, result *res, int argc, const char **argv)
{
  size_t lens[8];
  char err[300];
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  memset(res, 0, sizeof *res);
  if (llm_redis_command(r, argc, argv, lens, timeout, on_done, res, NULL, err, sizeof err) != 0) {
    snprintf(res->str, sizeof res->str, "%s", err);
    return -1;
  }
  return 0;
}

static void wait_for(llm_loop *loop, const int *done, int want, double limit)
{
  double t0 = llm_now();
  while (*done < want && llm_now() - t0 < limit)
    llm_loop_run_once(loop, 0.05, -1);
}

static void test_pipeline(llm_loop *loop, const llm_redis_url *u)
{
  llm_redis *r = llm_redis_new(loop, u, 1);
  static result res[100];
  const char *del[] = {"DEL", "c:n"};
  result d;
  int done = 0;
  send_cmd(r, 1, &d, 2, del);
  /* given in one turn: written together, answered in order */
  for (int i = 0; i < 100; i++) {
    const char *incr[] = {"INCR", "c:n"};
    send_cmd(r, 1, &res[i], 2, incr);
  }
  for (int spins = 0; spins < 200 && done < 100; spins++) {
    llm_loop_run_once(loop, 0.05, -1);
    done = 0;
    for (int i = 0; i < 100; i++)
      done += res[i].done;
  }
  CHECK_INT(done, 100);
  for (int i = 0; i < 100; i++)
    if (res[i].integer != i + 1)
      check_fail(__FILE__, __LINE__, "INCR %d answered %lld", i, res[i].integer);
  {
    const char *bad[] = {"LPUSH", "c:n", "x"};
    result e;
    send_cmd(r, 1, &e, 3, bad);
    wait_for(loop, &e.done, 1, 2);
    CHECK_INT(e.status, LLM_REDIS_OK);
    CHECK_INT(e.type, REDIS_REPLY_ERROR);
    CHECK(strstr(e.str, "WRONGTYPE") != NULL);
  }
  CHECK(llm_redis_connected(r));
  CHECK_INT(llm_redis_pending(r), 0);
  llm_redis_free(r);
}

static void test_timeout_and_reset(llm_loop *loop, const llm_redis_url *u)
{
  llm_redis *r = llm_redis_new(loop, u, 1);
  const char *blpop[] = {"BLPOP", "c:never", "2"};
  const char *ping[] = {"PING"};
  result a, b;
  llm_redis_stats st;
  double t0 = llm_now();
  llm_redis_set_backoff(r, 0.05, 0.1);
  send_cmd(r, 0.1, &a, 3, blpop);
  send_cmd(r, 0, &b, 1, ping); /* behind it on the same connection */
  wait_for(loop, &a.done, 1, 3);
  CHECK_INT(a.status, LLM_REDIS_ETIMEOUT);
  CHECK(llm_now() - t0 < 1.0);
  wait_for(loop, &b.done, 1, 3);
  CHECK_INT(b.status, LLM_REDIS_ETRANSPORT); /* the reset took it along */
  CHECK(strstr(b.str, "timed out") != NULL);
  llm_redis_get_stats(r, &st);
  CHECK_INT(st.timeouts, 1);
  /* during the backoff: refused at once; after it: fine */
  CHECK_INT(send_cmd(r, 1, &b, 1, ping), -1);
  CHECK(strstr(b.str, "next try") != NULL);
  usleep(120000);
  CHECK_INT(send_cmd(r, 1, &b, 1, ping), 0);
  wait_for(loop, &b.done, 1, 3);
  CHECK_STR(b.str, "PONG");
  llm_redis_free(r);
}

static void test_refused_and_abandoned(llm_loop *loop, const llm_redis_url *u)
{
  llm_redis_url closed = *u;
  llm_redis *r;
  const char *ping[] = {"PING"};
  llm_redis_cmd *c;
  size_t lens[1] = {4};
  char err[300];
  result a, b;
  closed.port = 1; /* nothing listens there */
  r = llm_redis_new(loop, &closed, 1);
  send_cmd(r, 1, &a, 1, ping);
  wait_for(loop, &a.done, 1, 3);
  CHECK_INT(a.status, LLM_REDIS_ETRANSPORT);
  CHECK(strstr(a.str, "refused") != NULL);
  CHECK_INT(send_cmd(r, 1, &b, 1, ping), -1);
  CHECK(strstr(b.str, "unreachable") != NULL);
  llm_redis_free(r);

  /* an abandoned command's callback never runs */
  r = llm_redis_new(loop, u, 1);
  memset(&a, 0, sizeof a);
  CHECK_INT(llm_redis_command(r, 1, ping, lens, 1, on_done, &a, &c, err, sizeof err), 0);
  llm_redis_cmd_abandon(c);
  send_cmd(r, 1, &b, 1, ping);
  wait_for(loop, &b.done, 1, 3);
  CHECK_INT(a.done, 0);
  CHECK_STR(b.str, "PONG");
  llm_redis_free(r);
}

/* A host name is resolved on a thread: commands given meanwhile queue and
 * go out once connected; a name that does not resolve fails them. */
static void test_host_names(llm_loop *loop, const llm_redis_url *u)
{
  llm_redis_url named = *u;
  llm_redis *r;
  const char *ping[] = {"PING"};
  const char *echo[] = {"ECHO", "queued"};
  result a, b;
  snprintf(named.host, sizeof named.host, "localhost");
  r = llm_redis_new(loop, &named, 1);
  CHECK_INT(send_cmd(r, 2, &a, 1, ping), 0);
  CHECK_INT(send_cmd(r, 2, &b, 2, echo), 0);
  CHECK_INT(llm_redis_pending(r), 2);
  wait_for(loop, &b.done, 1, 3);
  CHECK_INT(a.done, 1);
  CHECK_STR(a.str, "PONG");
  CHECK_STR(b.str, "queued");
  llm_redis_free(r);

  snprintf(named.host, sizeof named.host, "no-such-host.invalid");
  r = llm_redis_new(loop, &named, 1);
  CHECK_INT(send_cmd(r, 2, &a, 1, ping), 0);
  wait_for(loop, &a.done, 1, 10);
  CHECK_INT(a.status, LLM_REDIS_ETRANSPORT);
  if (!strstr(a.str, "cannot resolve"))
    check_fail(__FILE__, __LINE__, "'%s' lacks 'cannot resolve'", a.str);
  /* closed while resolving: the queued command fails, nothing leaks */
  llm_redis_free(r);
  named = *u;
  snprintf(named.host, sizeof named.host, "localhost");
  r = llm_redis_new(loop, &named, 1);
  CHECK_INT(send_cmd(r, 2, &a, 1, ping), 0);
  llm_redis_free(r);
  CHECK_INT(a.done, 1);
  CHECK_INT(a.status, LLM_REDIS_ETRANSPORT);
}

static void test_every_and_drain(llm_loop *loop, const llm_redis_url *u)
{
  llm_redis *r = llm_redis_new(loop, u, 1);
  const char *incr[] = {"INCR", "c:every"};
  const char *get[] = {"GET", "c:every"};
  size_t lens[2] = {4, 7};
  llm_redis_every *e = llm_redis_every_start(r, 0.02, 2, incr, lens);
  double t0 = llm_now();
  result g;
  while (llm_now() - t0 < 0.15)
    llm_loop_run_once(loop, 0.02, -1);
  llm_redis_every_stop(e);
  send_cmd(r, 1, &g, 2, get);
  wait_for(loop, &g.done, 1, 2);
  CHECK(atoi(g.str) >= 3 && atoi(g.str) <= 9);
  /* writes given without turning the loop: the drain sends them */
  for (int i = 0; i < 500; i++) {
    const char *rpush[] = {"RPUSH", "c:drain", "x"};
    size_t l[3] = {5, 7, 1};
    char err[100];
    llm_redis_command(r, 3, rpush, l, 0, NULL, NULL, NULL, err, sizeof err);
  }
  CHECK_INT(llm_redis_pending(r), 500);
  CHECK_INT(llm_redis_drain(r, 2), 0);
  {
    const char *llen[] = {"LLEN", "c:drain"};
    send_cmd(r, 1, &g, 2, llen);
    wait_for(loop, &g.done, 1, 2);
    CHECK_INT(g.integer, 500);
  }
  llm_redis_free(r);
}

int main(void)
{
  llm_loop *loop = llm_loop_new();
  llm_redis_url u;
  char err[200];
  test_urls();
  if (start_server() != 0) {
    check_fail(__FILE__, __LINE__, "cannot start redis-server (scripts/setup installs it)");
    return check_report("test_redis_client");
  }
  snprintf(err, sizeof err, "redis://127.0.0.1:%d/2", port);
  CHECK_INT(llm_redis_parse_url(err, &u, err, sizeof err), 0);
  test_pipeline(loop, &u);
  test_timeout_and_reset(loop, &u);
  test_refused_and_abandoned(loop, &u);
  test_host_names(loop, &u);
  test_every_and_drain(loop, &u);
  stop_server();
  llm_loop_free(loop);
  return check_report("test_redis_client");
}
