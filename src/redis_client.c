/* The asynchronous Redis client: hiredis's async context with its event
 * hooks on our loop, connection management and per-command timeouts.
 * See redis_client.h for the contract. */
#include "redis_client.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_lazy.h"
#include "redis_resolve.h"

#define DEFAULT_CONNECT_TIMEOUT 2.0
#define RESOLVED_FOR 30.0 /* seconds a resolved address is reused for new connections */

struct llm_redis_cmd {
  llm_redis *r;
  llm_redis_done_fn done; /* NULL once abandoned or answered */
  void *ud;
  llm_timer *timer;
  /* while the host name is being resolved: the command, queued */
  char *buf;
  size_t len;
  llm_redis_cmd *next;
};

struct llm_redis_every {
  llm_redis *r;
  char *cmd; /* argv, formatted once */
  size_t len;
  int argc;
  const char **argv;
  size_t *lens;
  double interval;
  llm_timer *timer;
  llm_redis_every *next;
};

struct llm_redis {
  llm_loop *loop;
  llm_redis_url url;
  char where[320];
  double connect_timeout;
  redisAsyncContext *ac; /* NULL while there is no connection */
  unsigned long gen;     /* counts connections, to notice one replaced */
  int fd;                /* the descriptor the loop watches for ac, or -1 */
  unsigned events;       /* LLM_IO_* bits hiredis wants */
  llm_timer *connect_timer;
  double retry_at;   /* no new connection before this (llm_now) */
  double backoff, backoff_min, backoff_max;
  char last_error[256];
  char reset_reason[256]; /* why we closed a connection ourselves */
  size_t pending;         /* commands hiredis holds a callback for */
  llm_redis_every *repeats;
  llm_redis_stats stats;
  int closing;
  llm_resolve *resolving;          /* the host name being resolved, or NULL */
  char address[64];                /* its last address */
  double resolved_at;
  llm_redis_cmd *queue, *queue_tail; /* commands waiting for that */
  size_t queued;
};

/* ---- the command's wire form (RESP arrays of bulk strings) ------------------ */

static char *format_command(int argc, const char **argv, const size_t *lens, size_t *out_len)
{
  size_t n = 16;
  char *buf, *p;
  for (int i = 0; i < argc; i++)
    n += lens[i] + 32;
  buf = malloc(n);
  if (!buf)
    return NULL;
  p = buf + sprintf(buf, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++) {
    p += sprintf(p, "$%zu\r\n", lens[i]);
    memcpy(p, argv[i], lens[i]);
    p += lens[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  *out_len = (size_t)(p - buf);
  return buf;
}

/* ---- hiredis's event hooks, on our loop ----------------------------------------- */

static void on_io(void *ud, unsigned events)
{
  llm_redis *r = ud;
  redisAsyncContext *ac = r->ac;
  unsigned long gen = r->gen;
  if (!ac)
    return;
  if (events & (LLM_IO_READ | LLM_IO_HUP))
    redisAsyncHandleRead(ac);
  /* the read may have ended the connection (its cleanup hook ran) */
  if (r->ac == ac && r->gen == gen && (events & LLM_IO_WRITE))
    redisAsyncHandleWrite(ac);
}

static void update_watch(llm_redis *r)
{
  if (r->fd < 0)
    return;
  if (r->events)
    llm_loop_watch(r->loop, r->fd, r->events, on_io, r);
  else
    llm_loop_unwatch(r->loop, r->fd);
}

static void ev_add_read(void *p) { llm_redis *r = p; r->events |= LLM_IO_READ; update_watch(r); }
static void ev_del_read(void *p) { llm_redis *r = p; r->events &= ~(unsigned)LLM_IO_READ; update_watch(r); }
static void ev_add_write(void *p) { llm_redis *r = p; r->events |= LLM_IO_WRITE; update_watch(r); }
static void ev_del_write(void *p) { llm_redis *r = p; r->events &= ~(unsigned)LLM_IO_WRITE; update_watch(r); }

/* hiredis is done with the context (closed by either side, or a failed
 * connect): forget it and decide when the next connection may be tried. */
static void ev_cleanup(void *p)
{
  llm_redis *r = p;
  if (r->fd >= 0)
    llm_loop_unwatch(r->loop, r->fd);
  r->fd = -1;
  r->events = 0;
  r->ac = NULL;
  if (r->connect_timer) {
    llm_timer_stop(r->loop, r->connect_timer);
    r->connect_timer = NULL;
  }
  r->stats.disconnects++;
  r->retry_at = llm_now() + r->backoff;
  r->backoff = r->backoff * 2 > r->backoff_max ? r->backoff_max : r->backoff * 2;
}

/* ---- connection ------------------------------------------------------------------ */

static void note_error(llm_redis *r, const char *what, const char *detail)
{
  snprintf(r->last_error, sizeof r->last_error, "%s%s%s", what, detail && *detail ? ": " : "",
           detail ? detail : "");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
  llm_redis *r = ac->data;
  if (status != REDIS_OK) {
    note_error(r, "cannot connect", ac->errstr);
    return; /* hiredis frees the context next; ev_cleanup follows */
  }
  if (r->connect_timer) {
    llm_timer_stop(r->loop, r->connect_timer);
    r->connect_timer = NULL;
  }
  r->stats.connects++;
  r->backoff = r->backoff_min;
  r->last_error[0] = '\0';
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
  llm_redis *r = ac->data;
  if (status != REDIS_OK)
    note_error(r, "connection lost", ac->errstr);
}

/* Closes the connection from our side; pending commands end with reason. */
static void reset(llm_redis *r, const char *reason)
{
  if (!r->ac)
    return;
  snprintf(r->reset_reason, sizeof r->reset_reason, "%s", reason);
  note_error(r, reason, NULL);
  redisAsyncFree(r->ac); /* deferred by hiredis when inside its callback */
}

static void connect_timed_out(void *ud)
{
  llm_redis *r = ud;
  char why[128];
  r->connect_timer = NULL;
  snprintf(why, sizeof why, "connecting timed out after %.1f s", r->connect_timeout);
  reset(r, why);
}

static void handshake_done(void *ud, const redisReply *reply, int status, const char *message);

static int send_raw(llm_redis *r, const char *cmd, size_t len, double timeout,
                    llm_redis_done_fn done, void *ud, llm_redis_cmd **out);

static int send_argv(llm_redis *r, int argc, const char **argv, double timeout,
                     llm_redis_done_fn done, void *ud)
{
  size_t lens[4], len;
  char *cmd;
  int rc;
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  cmd = format_command(argc, argv, lens, &len);
  if (!cmd)
    return -1;
  rc = send_raw(r, cmd, len, timeout, done, ud, NULL);
  free(cmd);
  return rc;
}

/* Opens a connection and queues AUTH and SELECT ahead of everything else.
 * 0, or -1 with the reason in r->last_error. */
static int open_connection(llm_redis *r, const char *address)
{
  char err[256];
  redisAsyncContext *ac;
  if (llm_hiredis_load(err, sizeof err) != 0) {
    note_error(r, err, NULL);
    return -1;
  }
  ac = r->url.socket[0] ? redisAsyncConnectUnix(r->url.socket)
                        : redisAsyncConnect(address, r->url.port);
  if (!ac) {
    note_error(r, "out of memory", NULL);
    return -1;
  }
  if (ac->err) {
    note_error(r, "cannot connect", ac->errstr);
    redisAsyncFree(ac); /* never attached: no cleanup hook runs */
    r->retry_at = llm_now() + r->backoff;
    r->backoff = r->backoff * 2 > r->backoff_max ? r->backoff_max : r->backoff * 2;
    return -1;
  }
  r->ac = ac;
  r->gen++;
  r->fd = ac->c.fd;
  r->events = 0;
  r->reset_reason[0] = '\0';
  ac->data = r;
  ac->ev.data = r;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  r->connect_timer = llm_timer_start(r->loop, r->connect_timeout, connect_timed_out, r);
  if (r->url.password[0]) {
    const char *auth[3] = {"AUTH", r->url.user, r->url.password};
    if (r->url.user[0])
      send_argv(r, 3, auth, 0, handshake_done, r);
    else {
      auth[1] = r->url.password;
      send_argv(r, 2, auth, 0, handshake_done, r);
    }
  }
  if (r->url.db) {
    char db[16];
    const char *sel[2] = {"SELECT", db};
    snprintf(db, sizeof db, "%d", r->url.db);
    send_argv(r, 2, sel, 0, handshake_done, r);
  }
  return 0;
}

/* A refused AUTH or SELECT makes the connection useless: close it, so
 * the commands behind it fail with the reason instead of NOAUTH. */
static void handshake_done(void *ud, const redisReply *reply, int status, const char *message)
{
  llm_redis *r = ud;
  (void)message;
  if (status == LLM_REDIS_OK && reply && reply->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "AUTH or SELECT refused: %.150s", reply->str);
    reset(r, why);
  }
}

/* ---- commands ---------------------------------------------------------------------- */

static void finish(llm_redis_cmd *c, const redisReply *reply, int status, const char *message)
{
  llm_redis_done_fn done = c->done;
  c->done = NULL;
  if (c->timer) {
    llm_timer_stop(c->r->loop, c->timer);
    c->timer = NULL;
  }
  if (done)
    done(c->ud, reply, status, message);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
  llm_redis_cmd *c = privdata;
  llm_redis *r = c->r;
  r->pending--;
  if (reply) {
    r->stats.replies++;
    finish(c, reply, LLM_REDIS_OK, NULL);
  } else {
    /* the connection went: say why, in the words we have */
    char msg[640];
    const char *why = r->reset_reason[0] ? r->reset_reason
                      : ac->err           ? ac->errstr
                      : r->closing        ? "the client was closed"
                                          : "connection closed";
    snprintf(msg, sizeof msg, "redis at %.320s: %.255s", r->where, why);
    if (c->done)
      r->stats.failed++;
    finish(c, NULL, LLM_REDIS_ETRANSPORT, msg);
  }
  free(c);
}

static void command_timed_out(void *ud)
{
  llm_redis_cmd *c = ud;
  llm_redis *r = c->r;
  char msg[400];
  c->timer = NULL;
  r->stats.timeouts++;
  snprintf(msg, sizeof msg, "redis at %.320s did not answer in time", r->where);
  finish(c, NULL, LLM_REDIS_ETIMEOUT, msg);
  reset(r, "a command timed out; connection reset");
}

static int send_raw(llm_redis *r, const char *cmd, size_t len, double timeout,
                    llm_redis_done_fn done, void *ud, llm_redis_cmd **out)
{
  llm_redis_cmd *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  c->r = r;
  c->done = done;
  c->ud = ud;
  if (redisAsyncFormattedCommand(r->ac, on_reply, c, cmd, len) != REDIS_OK) {
    free(c);
    return -1;
  }
  r->pending++;
  r->stats.commands++;
  if (timeout > 0)
    c->timer = llm_timer_start(r->loop, timeout, command_timed_out, c);
  if (out)
    *out = c;
  return 0;
}

/* ---- commands waiting for a host name ---------------------------------------------- */

static void enqueue(llm_redis *r, llm_redis_cmd *c)
{
  c->next = NULL;
  if (r->queue_tail)
    r->queue_tail->next = c;
  else
    r->queue = c;
  r->queue_tail = c;
  r->queued++;
}

/* Hands the queued commands to the new connection, or fails them all
 * (message != NULL). */
static void flush_queue(llm_redis *r, const char *message)
{
  llm_redis_cmd *c = r->queue;
  r->queue = r->queue_tail = NULL;
  r->queued = 0;
  while (c) {
    llm_redis_cmd *next = c->next;
    int sent = 0;
    if (c->done && !message && r->ac &&
        redisAsyncFormattedCommand(r->ac, on_reply, c, c->buf, c->len) == REDIS_OK) {
      r->pending++;
      r->stats.commands++;
      sent = 1;
    }
    free(c->buf);
    c->buf = NULL;
    if (!sent) {
      if (c->done)
        r->stats.failed++;
      finish(c, NULL, LLM_REDIS_ETRANSPORT, message ? message : "connection closed");
      free(c);
    }
    c = next;
  }
}

static void on_resolved(void *ud, const char *address, const char *error)
{
  llm_redis *r = ud;
  char msg[640];
  r->resolving = NULL;
  if (address) {
    snprintf(r->address, sizeof r->address, "%s", address);
    r->resolved_at = llm_now();
    if (open_connection(r, address) == 0) {
      flush_queue(r, NULL);
      return;
    }
  } else {
    note_error(r, error, NULL);
    r->retry_at = llm_now() + r->backoff;
    r->backoff = r->backoff * 2 > r->backoff_max ? r->backoff_max : r->backoff * 2;
  }
  snprintf(msg, sizeof msg, "redis at %.320s is unreachable (%.255s)", r->where, r->last_error);
  flush_queue(r, msg);
}

/* A connection to send on: the open one, one being made (the host name
 * resolving: commands queue), or a new one unless we are waiting out a
 * backoff. 0, or -1 with a message in err. */
static int ensure_connection(llm_redis *r, char *err, size_t errlen)
{
  double now;
  if (r->ac || r->resolving)
    return 0;
  if (r->closing) {
    snprintf(err, errlen, "redis at %s: the client was closed", r->where);
    return -1;
  }
  now = llm_now();
  if (now < r->retry_at) {
    snprintf(err, errlen, "redis at %.320s is unreachable (%.255s); next try in %.2f s", r->where,
             r->last_error[0] ? r->last_error : "no connection", r->retry_at - now);
    return -1;
  }
  if (r->url.socket[0] || llm_resolve_is_address(r->url.host)) {
    if (open_connection(r, r->url.host) == 0)
      return 0;
  } else if (r->address[0] && now - r->resolved_at < RESOLVED_FOR) {
    if (open_connection(r, r->address) == 0)
      return 0;
  } else {
    r->resolving = llm_resolve_start(r->loop, r->url.host, on_resolved, r);
    if (r->resolving)
      return 0;
    note_error(r, "cannot start resolving the host name", NULL);
  }
  snprintf(err, errlen, "redis at %.320s is unreachable (%.255s)", r->where, r->last_error);
  return -1;
}

/* Sends cmd now, or queues a copy while the host name resolves. */
static int send_or_queue(llm_redis *r, const char *cmd, size_t len, double timeout,
                         llm_redis_done_fn done, void *ud, llm_redis_cmd **out)
{
  llm_redis_cmd *c;
  if (r->ac)
    return send_raw(r, cmd, len, timeout, done, ud, out);
  c = calloc(1, sizeof *c);
  if (!c || !(c->buf = malloc(len))) {
    free(c);
    return -1;
  }
  memcpy(c->buf, cmd, len);
  c->len = len;
  c->r = r;
  c->done = done;
  c->ud = ud;
  if (timeout > 0)
    c->timer = llm_timer_start(r->loop, timeout, command_timed_out, c);
  enqueue(r, c);
  if (out)
    *out = c;
  return 0;
}

int llm_redis_command(llm_redis *r, int argc, const char **argv, const size_t *lens,
                      double timeout, llm_redis_done_fn done, void *ud, llm_redis_cmd **out,
                      char *err, size_t errlen)
{
  size_t len;
  char *cmd;
  int rc;
  if (ensure_connection(r, err, errlen) != 0) {
    r->stats.refused++;
    return -1;
  }
  cmd = format_command(argc, argv, lens, &len);
  if (!cmd) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rc = send_or_queue(r, cmd, len, timeout, done, ud, out);
  free(cmd);
  if (rc != 0)
    snprintf(err, errlen, "redis at %s: the connection is closing", r->where);
  return rc;
}

void llm_redis_flush(llm_redis *r)
{
  if (r->ac && (r->ac->c.flags & REDIS_CONNECTED) && (r->events & LLM_IO_WRITE))
    redisAsyncHandleWrite(r->ac);
}

void llm_redis_cmd_abandon(llm_redis_cmd *c)
{
  if (!c)
    return;
  c->done = NULL;
  if (c->timer) {
    llm_timer_stop(c->r->loop, c->timer);
    c->timer = NULL;
  }
}

/* ---- repeating commands -------------------------------------------------------------- */

static void every_tick(void *ud)
{
  llm_redis_every *e = ud;
  llm_redis *r = e->r;
  char err[320];
  e->timer = NULL;
  if (ensure_connection(r, err, sizeof err) == 0)
    send_or_queue(r, e->cmd, e->len, e->interval * 4, NULL, NULL, NULL);
  e->timer = llm_timer_start(r->loop, e->interval, every_tick, e);
}

llm_redis_every *llm_redis_every_start(llm_redis *r, double interval, int argc, const char **argv,
                                       const size_t *lens)
{
  llm_redis_every *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->cmd = format_command(argc, argv, lens, &e->len);
  if (!e->cmd) {
    free(e);
    return NULL;
  }
  e->r = r;
  e->interval = interval > 0.001 ? interval : 0.001;
  e->timer = llm_timer_start(r->loop, e->interval, every_tick, e);
  if (!e->timer) {
    free(e->cmd);
    free(e);
    return NULL;
  }
  e->next = r->repeats;
  r->repeats = e;
  return e;
}

void llm_redis_every_stop(llm_redis_every *e)
{
  llm_redis_every **p;
  if (!e)
    return;
  for (p = &e->r->repeats; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      break;
    }
  if (e->timer)
    llm_timer_stop(e->r->loop, e->timer);
  free(e->cmd);
  free(e);
}

/* ---- the client ------------------------------------------------------------------------ */

llm_redis *llm_redis_new(llm_loop *loop, const llm_redis_url *url, double connect_timeout)
{
  llm_redis *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->loop = loop;
  r->url = *url;
  r->fd = -1;
  r->connect_timeout = connect_timeout > 0 ? connect_timeout : DEFAULT_CONNECT_TIMEOUT;
  r->backoff_min = r->backoff = 0.05;
  r->backoff_max = 2.0;
  llm_redis_url_display(url, r->where, sizeof r->where);
  return r;
}

void llm_redis_set_backoff(llm_redis *r, double min_s, double max_s)
{
  r->backoff_min = r->backoff = min_s > 0 ? min_s : 0;
  r->backoff_max = max_s > r->backoff_min ? max_s : r->backoff_min;
}

void llm_redis_free(llm_redis *r)
{
  if (!r)
    return;
  r->closing = 1;
  while (r->repeats)
    llm_redis_every_stop(r->repeats);
  if (r->resolving) {
    char msg[400];
    llm_resolve_cancel(r->resolving);
    r->resolving = NULL;
    snprintf(msg, sizeof msg, "redis at %.320s: the client was closed", r->where);
    flush_queue(r, msg);
  }
  if (r->ac)
    redisAsyncFree(r->ac); /* pending commands end; ev_cleanup forgets ac */
  if (r->connect_timer)
    llm_timer_stop(r->loop, r->connect_timer);
  /* a password does not outlive its client in our memory */
  memset(&r->url, 0, sizeof r->url);
  free(r);
}

size_t llm_redis_drain(llm_redis *r, double timeout)
{
  double deadline = llm_now() + timeout;
  while (r->ac && r->pending > 0) {
    redisAsyncContext *ac = r->ac;
    double left = deadline - llm_now();
    struct pollfd pfd = {.fd = ac->c.fd, .events = POLLIN};
    int n;
    if (left <= 0)
      break;
    if (r->events & LLM_IO_WRITE)
      pfd.events |= POLLOUT;
    n = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (n < 0 && errno != EINTR)
      break;
    if (n <= 0)
      continue;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
      redisAsyncHandleRead(ac);
    if (r->ac == ac && (pfd.revents & POLLOUT))
      redisAsyncHandleWrite(ac);
  }
  return r->pending;
}

size_t llm_redis_pending(const llm_redis *r) { return r->pending + r->queued; }
int llm_redis_connected(const llm_redis *r) { return r->ac && (r->ac->c.flags & REDIS_CONNECTED); }
const char *llm_redis_last_error(const llm_redis *r) { return r->last_error; }
const char *llm_redis_where(const llm_redis *r) { return r->where; }
void llm_redis_get_stats(const llm_redis *r, llm_redis_stats *out) { *out = r->stats; }
