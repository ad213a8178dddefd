/* The asynchronous Redis client: hiredis's async context with its event
 * hooks on our loop, connection management and per-command timeouts.
 * See redis_client.h for the contract. */
#include "redis_client_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiredis_lazy.h"

#define DEFAULT_CONNECT_TIMEOUT 2.0
#define RESOLVED_FOR 30.0 /* seconds a resolved address is reused for new connections */
#define MAX_CONNS LLM_RCLUSTER_MAX_NODES /* a cluster client's node connections */

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

/* ---- commands ---------------------------------------------------------------------- */

llm_redis_cmd *llm_rconn_cmd_new(llm_redis *top, char *buf, size_t len, llm_redis_done_fn done,
                                 void *ud)
{
  llm_redis_cmd *c = calloc(1, sizeof *c);
  if (!c) {
    free(buf);
    return NULL;
  }
  c->r = c->top = top;
  c->buf = buf;
  c->len = len;
  c->done = done;
  c->ud = ud;
  return c;
}

static void cmd_free(llm_redis_cmd *c)
{
  free(c->buf);
  free(c);
}

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

void llm_rconn_end(llm_redis_cmd *c, const redisReply *reply, int status, const char *message)
{
  if (c->done && status != LLM_REDIS_OK)
    c->r->stats.failed++;
  finish(c, reply, status, message);
  cmd_free(c);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
  llm_redis_cmd *c = privdata;
  llm_redis *r = c->r;
  const redisReply *rep = reply;
  r->pending--;
  if (rep) {
    r->stats.replies++;
    /* a cluster node pointing elsewhere: the command goes there */
    if (rep->type == REDIS_REPLY_ERROR && llm_rcluster_redirect(c, rep))
      return;
    finish(c, rep, LLM_REDIS_OK, NULL);
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
    if (r->parent)
      llm_rcluster_node_failed(r->parent);
    finish(c, NULL, LLM_REDIS_ETRANSPORT, msg);
  }
  cmd_free(c);
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
    if (!sent)
      llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, message ? message : "connection closed");
    c = next;
  }
}

int llm_rconn_dispatch(llm_redis *r, llm_redis_cmd *c, double timeout)
{
  c->r = r;
  if (r->ac) {
    if (redisAsyncFormattedCommand(r->ac, on_reply, c, c->buf, c->len) != REDIS_OK)
      return -1;
    r->pending++;
    r->stats.commands++;
  } else if (r->resolving) {
    enqueue(r, c);
  } else {
    return -1;
  }
  if (timeout > 0)
    c->timer = llm_timer_start(r->loop, timeout, command_timed_out, c);
  return 0;
}

/* Sends (or queues) c; on failure c is freed. */
static int dispatch_timed(llm_redis *r, llm_redis_cmd *c, double timeout)
{
  if (llm_rconn_dispatch(r, c, timeout) != 0) {
    cmd_free(c);
    return -1;
  }
  return 0;
}

static int send_argv(llm_redis *r, int argc, const char **argv, double timeout,
                     llm_redis_done_fn done, void *ud)
{
  size_t lens[4], len;
  llm_redis_cmd *c;
  char *cmd;
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  cmd = format_command(argc, argv, lens, &len);
  if (!cmd || !(c = llm_rconn_cmd_new(r, cmd, len, done, ud)))
    return -1;
  return dispatch_timed(r, c, timeout);
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

int llm_rconn_usable(const llm_redis *r)
{
  return r->ac || r->resolving || llm_now() >= r->retry_at;
}

/* A connection to send on: the open one, one being made (the host name
 * resolving: commands queue), or a new one unless we are waiting out a
 * backoff. 0, or -1 with a message in err. */
int llm_rconn_ensure(llm_redis *r, char *err, size_t errlen)
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

/* Sends the formatted command buf (taken over) to the connection for its
 * slot. 0, or -1 with a message in err (done() never called). */
static int route_and_send(llm_redis *r, char *buf, size_t len, int slot, double timeout,
                          llm_redis_done_fn done, void *ud, llm_redis_cmd **out, char *err,
                          size_t errlen)
{
  llm_redis *conn = llm_rcluster_route(r, slot);
  llm_redis_cmd *c;
  if (llm_rconn_ensure(conn, err, errlen) != 0) {
    free(buf);
    r->stats.refused++;
    if (conn != r)
      llm_rcluster_node_failed(r);
    return -1;
  }
  c = llm_rconn_cmd_new(r, buf, len, done, ud);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (dispatch_timed(conn, c, timeout) != 0) {
    snprintf(err, errlen, "redis at %.200s: the connection is closing", conn->where);
    return -1;
  }
  if (out)
    *out = c;
  return 0;
}

int llm_redis_command(llm_redis *r, int argc, const char **argv, const size_t *lens,
                      double timeout, llm_redis_done_fn done, void *ud, llm_redis_cmd **out,
                      char *err, size_t errlen)
{
  int slot = r->cluster ? llm_redis_command_slot(argc, argv, lens) : -1;
  return llm_redis_command_at(r, slot, argc, argv, lens, timeout, done, ud, out, err, errlen);
}

int llm_redis_command_at(llm_redis *r, int slot, int argc, const char **argv, const size_t *lens,
                         double timeout, llm_redis_done_fn done, void *ud, llm_redis_cmd **out,
                         char *err, size_t errlen)
{
  size_t len;
  char *cmd = format_command(argc, argv, lens, &len);
  if (!cmd) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return route_and_send(r, cmd, len, slot < 16384 ? slot : -1, timeout, done, ud, out, err,
                        errlen);
}

static void flush_one(llm_redis *r)
{
  if (r->ac && (r->ac->c.flags & REDIS_CONNECTED) && (r->events & LLM_IO_WRITE))
    redisAsyncHandleWrite(r->ac);
}

void llm_redis_flush(llm_redis *r)
{
  llm_redis *nodes[MAX_CONNS];
  size_t n = llm_rcluster_nodes(r, nodes, MAX_CONNS);
  flush_one(r);
  for (size_t i = 0; i < n; i++)
    flush_one(nodes[i]);
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
  char *buf = malloc(e->len);
  e->timer = NULL;
  if (buf) {
    memcpy(buf, e->cmd, e->len);
    /* a failure (down, backing off) is retried at the next tick */
    route_and_send(r, buf, e->len, e->slot, e->interval * 4, NULL, NULL, NULL, err, sizeof err);
  }
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
  e->slot = llm_redis_command_slot(argc, argv, lens);
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

llm_redis *llm_rconn_new_node(llm_redis *top, const char *host, int port)
{
  llm_redis_url u = top->url;
  llm_redis *n;
  snprintf(u.host, sizeof u.host, "%s", host);
  u.port = port;
  u.socket[0] = '\0';
  n = llm_redis_new(top->loop, &u, top->connect_timeout);
  memset(&u, 0, sizeof u);
  if (!n)
    return NULL;
  n->parent = top;
  n->backoff_min = n->backoff = top->backoff_min;
  n->backoff_max = top->backoff_max;
  return n;
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
  llm_rcluster_free(r); /* the nodes' connections: their commands end too */
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

static size_t pending_all(const llm_redis *r, llm_redis **nodes, size_t n)
{
  size_t p = r->pending;
  for (size_t i = 0; i < n; i++)
    p += nodes[i]->pending;
  return p;
}

/* Polls every connection of the client (a cluster's nodes too: a
 * redirected write moves to another) until nothing is pending. */
size_t llm_redis_drain(llm_redis *r, double timeout)
{
  double deadline = llm_now() + timeout;
  llm_redis *conns[MAX_CONNS + 1];
  size_t n = 1 + llm_rcluster_nodes(r, conns + 1, MAX_CONNS);
  conns[0] = r;
  while (pending_all(r, conns + 1, n - 1) > 0) {
    struct pollfd pfd[MAX_CONNS + 1];
    llm_redis *who[MAX_CONNS + 1];
    size_t k = 0;
    double left = deadline - llm_now();
    int got;
    if (left <= 0)
      break;
    for (size_t i = 0; i < n; i++) {
      if (!conns[i]->ac)
        continue;
      who[k] = conns[i];
      pfd[k].fd = conns[i]->ac->c.fd;
      pfd[k].events = POLLIN | ((conns[i]->events & LLM_IO_WRITE) ? POLLOUT : 0);
      pfd[k].revents = 0;
      k++;
    }
    if (k == 0)
      break;
    got = poll(pfd, (nfds_t)k, (int)(left * 1000) + 1);
    if (got < 0 && errno != EINTR)
      break;
    for (size_t i = 0; got > 0 && i < k; i++) {
      redisAsyncContext *ac = who[i]->ac;
      if (!ac || ac->c.fd != pfd[i].fd)
        continue;
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
        redisAsyncHandleRead(ac);
      if (who[i]->ac == ac && (pfd[i].revents & POLLOUT))
        redisAsyncHandleWrite(ac);
    }
    n = 1 + llm_rcluster_nodes(r, conns + 1, MAX_CONNS); /* a redirection may add one */
  }
  return pending_all(r, conns + 1, n - 1);
}

size_t llm_redis_pending(const llm_redis *r)
{
  llm_redis *nodes[MAX_CONNS];
  size_t n = llm_rcluster_nodes(r, nodes, MAX_CONNS), p = r->pending + r->queued;
  for (size_t i = 0; i < n; i++)
    p += nodes[i]->pending + nodes[i]->queued;
  return p;
}

int llm_redis_connected(const llm_redis *r)
{
  llm_redis *nodes[MAX_CONNS];
  size_t n = llm_rcluster_nodes(r, nodes, MAX_CONNS);
  if (r->ac && (r->ac->c.flags & REDIS_CONNECTED))
    return 1;
  for (size_t i = 0; i < n; i++)
    if (nodes[i]->ac && (nodes[i]->ac->c.flags & REDIS_CONNECTED))
      return 1;
  return 0;
}

/* The client's own failure, else a node's (a cluster node down). */
const char *llm_redis_last_error(const llm_redis *r)
{
  llm_redis *nodes[MAX_CONNS];
  size_t n = llm_rcluster_nodes(r, nodes, MAX_CONNS);
  for (size_t i = 0; !r->last_error[0] && i < n; i++)
    if (nodes[i]->last_error[0])
      return nodes[i]->last_error;
  return r->last_error;
}

const char *llm_redis_where(const llm_redis *r) { return r->where; }
int llm_redis_is_cluster(const llm_redis *r) { return r->cluster != NULL; }

void llm_redis_get_stats(const llm_redis *r, llm_redis_stats *out)
{
  *out = r->stats;
  llm_rcluster_stats(r, out);
}
