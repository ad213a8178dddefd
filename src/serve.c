/* The HTTP/1.1 server engine: listening, connections, reading requests,
 * limits and timeouts. See serve.h for the contract, serve_parse.c for the
 * parsing itself and serve_answer.c for writing answers.
 *
 * One connection answers one request at a time: the next request in its
 * buffer (pipelining) is parsed when the current answer is complete. Time
 * limits are checked by one periodic sweep over the connections, not a
 * timer per request: a request then costs no timer-heap work, and a limit
 * fires at most one tick late. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "serve_internal.h"

/* ---- watching --------------------------------------------------------------- */

static void on_io(void *ud, unsigned events);

void srv_set_watch(conn *c)
{
  unsigned want = 0;
  if (c->phase == P_HEAD || c->phase == P_BODY || (c->phase == P_BUSY && c->in.len < READ_AHEAD))
    want |= LLM_IO_READ;
  if (srv_pending_out(c) > 0)
    want |= LLM_IO_WRITE;
  if (want == c->watching)
    return;
  if (want == 0) {
    llm_loop_unwatch(c->srv->loop, c->fd);
  } else if (llm_loop_watch(c->srv->loop, c->fd, want, on_io, c) != 0) {
    return;
  }
  c->watching = want;
}

void srv_set_deadline(conn *c, int kind, double seconds)
{
  c->deadline_kind = kind;
  c->deadline = kind == DL_NONE ? 0 : llm_now() + seconds;
}

/* ---- requests ------------------------------------------------------------------------ */

void srv_req_free(llm_sreq *r)
{
  free(r->buf);
  free(r);
}

/* The connection lets go of r (answered, or the connection is closing). */
void srv_req_detach(llm_sreq *r)
{
  if (r->conn && r->conn->req == r)
    r->conn->req = NULL;
  r->conn = NULL;
  if (!r->dispatched || r->released)
    srv_req_free(r);
}

/* The answer to r is complete: the connection goes on to the next request
 * (or closes). */
static void refuse(conn *c, int status, const char *message)
{
  const char *path = c->req ? (c->req->buf ? c->req->buf : c->in.data) + c->req->head.target : NULL;
  size_t len = 0;
  char *body = llm_serve_error_body(path, status, srv_error_type(status), message, &len);
  static const char *const busy[] = {"Content-Type: application/json", "Retry-After: 1", NULL};
  static const char *const plain[] = {"Content-Type: application/json", NULL};
  llm_sreq tmp;
  llm_sreq *r = c->req;
  c->srv->st.refused_limit += status != 503;
  if (!r) {
    memset(&tmp, 0, sizeof tmp);
    tmp.head.minor = 1;
    r = &tmp;
  }
  r->head.keep_alive = 0;
  c->doomed = 1;
  if (body) {
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", len);
    srv_write_head(c, r, status, status == 503 ? busy : plain, cl, body, len);
    free(body);
  }
  if (c->req && !c->req->dispatched)
    srv_req_detach(c->req);
  c->close_after = 1;
  c->phase = P_CLOSING;
  llm_buf_reset(&c->in);
  if (srv_pending_out(c) == 0)
    srv_conn_close(c);
  else
    srv_set_watch(c);
}

static void dispatch(conn *c)
{
  llm_sreq *r = c->req;
  size_t end = c->phase == P_BODY && r->head.chunked ? c->chunked.in
                                                     : r->body_off + r->body_len;
  llm_server *srv = c->srv;
  llm_buf rest = LLM_BUF_INIT;
  if (c->doomed) {
    refuse(c, 503, "the server has too many connections; retry shortly");
    return;
  }
  if (r->head.chunked)
    r->body_len = c->chunked.out - r->body_off;
  /* r takes the buffer; bytes after this request stay with the connection */
  if (c->in.len > end) {
    llm_buf_put(&rest, c->in.data + end, c->in.len - end);
    if (rest.failed) {
      refuse(c, 500, "out of memory");
      return;
    }
  }
  r->buf = c->in.data;
  c->in = rest;
  r->buf[r->body_off + r->body_len] = '\0'; /* spare byte: see read_more */
  c->scan = 0;
  c->phase = P_BUSY;
  srv_set_deadline(c, DL_NONE, 0);
  srv_set_watch(c);
  r->state = R_ACTIVE;
  r->dispatched = 1;
  r->received_at = llm_now();
  srv->st.requests++;
  srv->st.in_flight++;
  srv->o.on_request(srv->o.ud, r);
}

/* Parses what the buffer holds: a head, then the body. */
void srv_process_input(conn *c)
{
  llm_server *srv = c->srv;
  if (c->phase == P_HEAD) {
    size_t end;
    const char *why = NULL;
    int status;
    llm_sreq *r;
    if (c->in.len == 0)
      return;
    if (c->deadline_kind != DL_HEAD)
      srv_set_deadline(c, DL_HEAD, srv->o.header_timeout);
    end = llm_head_end(c->in.data, c->in.len, &c->scan);
    if (end == 0) {
      if (c->in.len > srv->o.max_header_bytes)
        refuse(c, 431, "the request head is too large");
      return;
    }
    if (end > srv->o.max_header_bytes) {
      refuse(c, 431, "the request head is too large");
      return;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
      refuse(c, 500, "out of memory");
      return;
    }
    r->srv = srv;
    r->conn = c;
    memcpy(r->client, c->client, sizeof r->client);
    c->req = r;
    status = llm_head_parse(c->in.data, end, &r->head, &why);
    if (status) {
      r->head.target = 0;
      c->req = NULL;
      srv_req_free(r);
      refuse(c, status, why);
      return;
    }
    r->head_only = strcmp(c->in.data + r->head.method, "HEAD") == 0;
    r->body_off = end;
    if (r->head.content_length > 0 && (uint64_t)r->head.content_length > srv->o.max_body_bytes) {
      refuse(c, 413, "the request body is too large");
      return;
    }
    if (r->head.chunked) {
      llm_chunked_init(&c->chunked, end);
    } else {
      r->body_len = r->head.content_length > 0 ? (size_t)r->head.content_length : 0;
    }
    c->phase = P_BODY;
    srv_set_deadline(c, DL_BODY, srv->o.body_timeout);
    if (r->head.expect_continue && !c->doomed) {
      int complete = r->head.chunked ? 0 : c->in.len >= end + r->body_len;
      if (!complete) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof cont - 1};
        if (srv_send_iov(c, &iov, 1) != 0) {
          srv_conn_close(c);
          return;
        }
      }
    }
  }
  if (c->phase == P_BODY) {
    llm_sreq *r = c->req;
    if (r->head.chunked) {
      int rc = llm_chunked_step(&c->chunked, c->in.data, c->in.len, srv->o.max_body_bytes);
      if (rc == -1) {
        refuse(c, 400, "malformed chunked request body");
        return;
      }
      if (rc == -2) {
        refuse(c, 413, "the request body is too large");
        return;
      }
      if (rc == 1)
        dispatch(c);
    } else if (c->in.len >= r->body_off + r->body_len) {
      dispatch(c);
    }
  }
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Reads what the socket has. 1: got bytes, 0: nothing now, -1: the client
 * closed or the connection failed. One spare byte is always kept after
 * the data, so a dispatched request's body can be NUL-terminated. */
static int read_more(conn *c)
{
  int got = 0;
  for (;;) {
    ssize_t n;
    size_t room;
    /* room for a useful read: a whole chunk at first, then at least a
     * quarter of one (the buffer doubles) */
    if (llm_buf_reserve(&c->in, c->in.cap ? READ_CHUNK / 4 : READ_CHUNK) != 0)
      return -1;
    room = c->in.cap - c->in.len - 1;
    n = recv(c->fd, c->in.data + c->in.len, room, 0);
    if (n > 0) {
      c->in.len += (size_t)n;
      c->in.data[c->in.len] = '\0';
      got = 1;
      if (c->phase == P_BUSY && c->in.len >= READ_AHEAD)
        return 1;
      /* less than the room: the socket had no more (the usual request
       * comes whole in one read). The watch is level-triggered, so bytes
       * that arrive meanwhile are reported again; a recv that would only
       * say EAGAIN was a syscall per request. */
      if ((size_t)n < room)
        return 1;
      continue;
    }
    if (n == 0)
      return -1;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return got;
    return -1;
  }
}

/* A dispatched request whose answer will never complete: its owner is
 * told (unless it let go already), then the connection lets go of it. */
static void abort_req(conn *c, llm_sreq *r)
{
  llm_server *srv = c->srv;
  int blocked = c->blocked;
  r->aborted = 1;
  srv->st.aborted++;
  if (srv->st.in_flight > 0)
    srv->st.in_flight--;
  if (!r->released) {
    if (srv->o.on_abort)
      srv->o.on_abort(srv->o.ud, r);
    if (blocked && srv->o.on_drain)
      srv->o.on_drain(srv->o.ud, r);
  }
  srv_req_detach(r);
}

void srv_client_gone(conn *c)
{
  srv_conn_close(c);
}

static void on_io(void *ud, unsigned events)
{
  conn *c = ud;
  if (events & LLM_IO_WRITE) {
    if (srv_flush_out(c) != 0) {
      srv_client_gone(c);
      return;
    }
    if (srv_pending_out(c) == 0) {
      if (c->close_after) {
        srv_conn_close(c);
        return;
      }
      if (c->deadline_kind == DL_WRITE)
        srv_set_deadline(c, c->phase == P_HEAD ? DL_IDLE : DL_NONE,
                     c->phase == P_HEAD ? c->srv->o.idle_timeout : 0);
    }
    srv_set_watch(c);
    if (c->blocked && c->req && srv_pending_out(c) <= c->srv->o.high_water / 2) {
      c->blocked = 0;
      if (c->srv->o.on_drain)
        c->srv->o.on_drain(c->srv->o.ud, c->req);
    }
  }
  if (events & (LLM_IO_READ | LLM_IO_HUP)) {
    int rc;
    if (c->phase == P_CLOSING) {
      /* drain and drop what a refused client still sends */
      char sink[4096];
      while (recv(c->fd, sink, sizeof sink, 0) > 0) {
      }
      return;
    }
    rc = read_more(c);
    if (rc < 0) {
      srv_client_gone(c);
      return;
    }
    if (c->phase == P_BUSY) {
      srv_set_watch(c);
      return;
    }
    if (rc > 0)
      srv_process_input(c);
  }
}

/* ---- connections ----------------------------------------------------------------------- */

void srv_conn_close(conn *c)
{
  llm_server *srv = c->srv;
  if (c->req) {
    llm_sreq *r = c->req;
    if (r->dispatched && r->state != R_DONE)
      abort_req(c, r);
    else
      srv_req_detach(r);
  }
  if (c->watching)
    llm_loop_unwatch(srv->loop, c->fd);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->st.connections--;
  llm_buf_free(&c->in);
  llm_buf_free(&c->out);
  free(c);
}

static void format_client(const struct sockaddr_storage *ss, char *out, size_t n)
{
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf(out, n, "[%s]:%u", host, ntohs(a->sin6_port));
  } else {
    snprintf(out, n, "unix");
  }
}

static void on_accept(void *ud, unsigned events)
{
  llm_server *srv = ud;
  (void)events;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int one = 1;
    conn *c;
    int fd = accept4(srv->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; /* EAGAIN, or out of descriptors: the next turn tries again */
    if (srv->st.connections >= srv->o.max_connections + OVERFLOW_CONNECTIONS) {
      srv->st.refused_busy++;
      close(fd);
      continue;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->srv = srv;
    c->fd = fd;
    c->phase = P_HEAD;
    format_client(&ss, c->client, sizeof c->client);
    if (srv->st.connections >= srv->o.max_connections) {
      c->doomed = 1;
      srv->st.refused_busy++;
    }
    c->next = srv->conns;
    if (c->next)
      c->next->prev = c;
    srv->conns = c;
    srv->st.connections++;
    srv->st.connections_total++;
    if (srv->st.connections > srv->st.connections_peak)
      srv->st.connections_peak = srv->st.connections;
    srv_set_deadline(c, DL_HEAD, srv->o.header_timeout);
    srv_set_watch(c);
  }
}

/* The periodic check of every connection's time limit. */
static void on_tick(void *ud)
{
  llm_server *srv = ud;
  double now = llm_now();
  conn *c = srv->conns, *next;
  srv->tick = NULL;
  for (; c; c = next) {
    next = c->next;
    if (c->deadline <= 0 || now < c->deadline)
      continue;
    srv->st.timeouts++;
    switch (c->deadline_kind) {
    case DL_HEAD:
      if (c->in.len == 0) { /* nothing sent yet: just close */
        srv_conn_close(c);
        break;
      }
      refuse(c, 408, "the request head took too long to arrive");
      break;
    case DL_BODY:
      refuse(c, 408, "the request body took too long to arrive");
      break;
    default: /* idle, or a client that stopped taking its answer */
      srv_client_gone(c);
      break;
    }
  }
  srv->tick = llm_timer_start(srv->loop, srv->tick_s, on_tick, srv);
}

/* ---- the server -------------------------------------------------------------------------- */

static double or_default(double v, double d) { return v > 0 ? v : d; }

llm_server *llm_server_start(llm_loop *loop, const llm_server_opts *opts, char *err, size_t errlen)
{
  llm_server *srv = calloc(1, sizeof *srv);
  struct addrinfo hints = {0}, *ai = NULL;
  char port[16];
  int rc, one = 1;
  double least;
  if (!srv) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  srv->loop = loop;
  srv->o = *opts;
  srv->o.max_connections = opts->max_connections ? opts->max_connections : 1024;
  srv->o.max_header_bytes = opts->max_header_bytes ? opts->max_header_bytes : 64 * 1024;
  srv->o.max_body_bytes = opts->max_body_bytes ? opts->max_body_bytes : 32u << 20;
  srv->o.header_timeout = or_default(opts->header_timeout, 10);
  srv->o.body_timeout = or_default(opts->body_timeout, 60);
  srv->o.idle_timeout = or_default(opts->idle_timeout, 60);
  srv->o.write_timeout = or_default(opts->write_timeout, 60);
  srv->o.high_water = opts->high_water ? opts->high_water : 256 * 1024;
  srv->fd = -1;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(port, sizeof port, "%d", opts->port);
  rc = getaddrinfo(opts->host ? opts->host : "127.0.0.1", port, &hints, &ai);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", opts->host, gai_strerror(rc));
    free(srv);
    return NULL;
  }
  srv->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (srv->fd < 0 || setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(srv->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(srv->fd, 1024) != 0) {
    snprintf(err, errlen, "cannot listen on %s port %d: %s", opts->host ? opts->host : "127.0.0.1",
             opts->port, strerror(errno));
    if (srv->fd >= 0)
      close(srv->fd);
    freeaddrinfo(ai);
    free(srv);
    return NULL;
  }
  freeaddrinfo(ai);
  {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(srv->fd, (struct sockaddr *)&ss, &sl);
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  if (llm_loop_watch(loop, srv->fd, LLM_IO_READ, on_accept, srv) != 0) {
    snprintf(err, errlen, "cannot watch the listening socket: %s", strerror(errno));
    close(srv->fd);
    free(srv);
    return NULL;
  }
  /* a limit fires at most a quarter of the shortest one late */
  least = srv->o.header_timeout;
  if (srv->o.body_timeout < least)
    least = srv->o.body_timeout;
  if (srv->o.idle_timeout < least)
    least = srv->o.idle_timeout;
  if (srv->o.write_timeout < least)
    least = srv->o.write_timeout;
  srv->tick_s = least / 4 < 0.01 ? 0.01 : least / 4 > 1 ? 1 : least / 4;
  srv->tick = llm_timer_start(loop, srv->tick_s, on_tick, srv);
  return srv;
}

void llm_server_free(llm_server *srv)
{
  if (!srv)
    return;
  /* the owner is closing the server: no on_abort for what it holds */
  srv->o.on_abort = NULL;
  srv->o.on_drain = NULL;
  while (srv->conns)
    srv_conn_close(srv->conns);
  if (srv->tick)
    llm_timer_stop(srv->loop, srv->tick);
  llm_loop_unwatch(srv->loop, srv->fd);
  close(srv->fd);
  free(srv);
}

int llm_server_port(const llm_server *srv) { return srv->port; }

void llm_server_get_stats(const llm_server *srv, llm_server_stats *out) { *out = srv->st; }
