/* The HTTP/1.1 server engine: listening, connections, reading requests,
 * writing answers, limits and timeouts. See serve.h for the contract and
 * serve_parse.c for the parsing itself.
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

#include "json.h"
#include "serve_parse.h"

#define READ_CHUNK 16384
/* While a request is being answered, its connection is read only this far
 * ahead (pipelined requests); past it a departure is noticed later. */
#define READ_AHEAD (64 * 1024)
/* Clients over the cap still get their 503 (their request is read first so
 * the answer is not lost to a reset), up to this many more. */
#define OVERFLOW_CONNECTIONS 64

enum phase { P_HEAD, P_BODY, P_BUSY, P_CLOSING };
enum rstate { R_READING, R_ACTIVE, R_STREAMING, R_DONE };

struct llm_sreq {
  llm_server *srv;
  struct conn *conn;       /* NULL once the connection is gone */
  char *buf;               /* head + body, owned once dispatched */
  llm_head head;
  size_t body_off, body_len;
  char client[64];
  double received_at;
  int state;
  int aborted, released, dispatched;
  int stream_chunked;      /* the streamed answer uses chunked coding */
  int head_only;           /* HEAD: no body bytes */
  void *ud;
};

typedef struct conn {
  llm_server *srv;
  int fd;
  int phase;
  unsigned watching;       /* LLM_IO_* we asked the loop for */
  char client[64];
  char *in;                /* bytes read, not yet part of a dispatched request */
  size_t inlen, incap, scan;
  llm_chunked chunked;
  llm_sreq *req;           /* being read, or being answered */
  char *out;               /* output the client has not taken yet */
  size_t outoff, outlen, outcap;
  double deadline;         /* 0: none */
  int deadline_kind;       /* what happens when it passes */
  int close_after;         /* close once the output is flushed */
  int doomed;              /* over the connection cap: refuse its request */
  int blocked;             /* a writer waits for the output to drain */
  struct conn *prev, *next;
} conn;

enum { DL_NONE, DL_HEAD, DL_BODY, DL_IDLE, DL_WRITE };

struct llm_server {
  llm_loop *loop;
  llm_server_opts o;
  int fd;
  int port;
  conn *conns;
  llm_timer *tick;
  double tick_s;
  llm_server_stats st;
};

static void conn_close(conn *c);
static void client_gone(conn *c);
static void process_input(conn *c);

/* ---- errors the engine answers itself ------------------------------------------------ */

static const char *reason(int status)
{
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 499: return "Client Closed Request";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 529: return "Overloaded";
  default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

char *llm_serve_error_body(const char *path, int status, const char *type,
                           const char *message, size_t *len)
{
  json_buf b;
  jb_init(&b);
  if (path && strncmp(path, "/v1/messages", 12) == 0) {
    /* Anthropic: {"type":"error","error":{"type":...,"message":...}} */
    jb_puts(&b, "{\"type\":\"error\",\"error\":{\"type\":");
    json_put_cstring(&b, type);
    jb_puts(&b, ",\"message\":");
    json_put_cstring(&b, message);
    jb_puts(&b, "}}");
  } else {
    jb_puts(&b, "{\"error\":{\"message\":");
    json_put_cstring(&b, message);
    jb_puts(&b, ",\"type\":");
    json_put_cstring(&b, type);
    jb_printf(&b, ",\"param\":null,\"code\":");
    json_put_cstring(&b, status == 413 ? "request_too_large" : status == 503 ? "server_busy"
                         : status == 408 ? "request_timeout" : NULL);
    jb_puts(&b, "}}");
  }
  jb_putc(&b, '\n');
  if (b.failed) {
    jb_free(&b);
    return NULL;
  }
  return jb_take(&b, len);
}

static const char *error_type(int status)
{
  if (status == 503 || status == 529)
    return "overloaded_error";
  if (status == 408)
    return "timeout_error";
  if (status == 413)
    return "request_too_large";
  return "invalid_request_error";
}

/* ---- watching and output --------------------------------------------------------------- */

static void on_io(void *ud, unsigned events);

static void set_watch(conn *c)
{
  unsigned want = 0;
  if (c->phase == P_HEAD || c->phase == P_BODY || (c->phase == P_BUSY && c->inlen < READ_AHEAD))
    want |= LLM_IO_READ;
  if (c->outlen > c->outoff)
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

static void set_deadline(conn *c, int kind, double seconds)
{
  c->deadline_kind = kind;
  c->deadline = kind == DL_NONE ? 0 : llm_now() + seconds;
}

static size_t pending_out(const conn *c) { return c->outlen - c->outoff; }

/* Writes what it can now; 0, or -1 when the connection failed. */
static int flush_out(conn *c)
{
  while (c->outoff < c->outlen) {
    ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
    if (n > 0) {
      c->outoff += (size_t)n;
      if (c->deadline_kind == DL_WRITE)
        set_deadline(c, DL_WRITE, c->srv->o.write_timeout);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    return -1;
  }
  if (c->outoff == c->outlen)
    c->outoff = c->outlen = 0;
  return 0;
}

static int out_reserve(conn *c, size_t extra)
{
  if (c->outoff > 0 && c->outoff == c->outlen)
    c->outoff = c->outlen = 0;
  if (c->outlen + extra > c->outcap) {
    size_t cap = c->outcap ? c->outcap : 4096;
    char *n;
    if (c->outoff > 0) { /* compact first */
      memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
      c->outlen -= c->outoff;
      c->outoff = 0;
    }
    while (cap < c->outlen + extra)
      cap *= 2;
    if (cap > c->outcap) {
      n = realloc(c->out, cap);
      if (!n)
        return -1;
      c->out = n;
      c->outcap = cap;
    }
  }
  return 0;
}

/* Sends the pieces, straight to the socket when nothing waits before them;
 * what the socket does not take now is queued. 0, or -1 (connection
 * failed, or out of memory). */
static int send_iov(conn *c, struct iovec *iov, int n)
{
  size_t total = 0, sent = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  if (pending_out(c) == 0 && total > 0) {
    ssize_t w;
    do
      w = writev(c->fd, iov, n);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      return -1;
    if (w > 0)
      sent = (size_t)w;
  }
  if (sent < total) {
    if (out_reserve(c, total - sent) != 0)
      return -1;
    for (int i = 0; i < n; i++) {
      size_t len = iov[i].iov_len;
      const char *p = iov[i].iov_base;
      if (sent >= len) {
        sent -= len;
        continue;
      }
      memcpy(c->out + c->outlen, p + sent, len - sent);
      c->outlen += len - sent;
      sent = 0;
    }
    if (c->deadline_kind != DL_WRITE)
      set_deadline(c, DL_WRITE, c->srv->o.write_timeout);
    set_watch(c);
  }
  return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

static void req_free(llm_sreq *r)
{
  free(r->buf);
  free(r);
}

/* The connection lets go of r (answered, or the connection is closing). */
static void req_detach(llm_sreq *r)
{
  if (r->conn && r->conn->req == r)
    r->conn->req = NULL;
  r->conn = NULL;
  if (!r->dispatched || r->released)
    req_free(r);
}

/* The answer to r is complete: the connection goes on to the next request
 * (or closes). */
static void answer_done(conn *c, llm_sreq *r)
{
  int keep = r->head.keep_alive && !c->doomed;
  r->state = R_DONE;
  c->srv->st.responses++;
  if (c->srv->st.in_flight > 0 && r->dispatched)
    c->srv->st.in_flight--;
  req_detach(r);
  c->blocked = 0;
  if (!keep) {
    c->close_after = 1;
    c->phase = P_CLOSING;
    if (pending_out(c) == 0) {
      conn_close(c);
      return;
    }
    set_watch(c);
    return;
  }
  c->phase = P_HEAD;
  c->scan = 0;
  if (pending_out(c) == 0)
    set_deadline(c, c->inlen ? DL_HEAD : DL_IDLE,
                 c->inlen ? c->srv->o.header_timeout : c->srv->o.idle_timeout);
  set_watch(c);
  if (c->inlen)
    process_input(c); /* a pipelined request */
}

static int write_head(conn *c, llm_sreq *r, int status, const char *const *headers,
                      const char *framing, const char *body, size_t len)
{
  char *head;
  size_t hl = 0, cap = 160;
  struct iovec iov[2];
  int rc;
  if (headers)
    for (const char *const *h = headers; *h; h++)
      cap += strlen(*h) + 2;
  head = malloc(cap + 128);
  if (!head)
    return -1;
  hl = (size_t)snprintf(head, cap, "HTTP/1.%d %d %s\r\n", r->head.minor, status, reason(status));
  if (headers)
    for (const char *const *h = headers; *h; h++) {
      size_t n = strlen(*h);
      memcpy(head + hl, *h, n);
      memcpy(head + hl + n, "\r\n", 2);
      hl += n + 2;
    }
  hl += (size_t)snprintf(head + hl, cap + 128 - hl, "%s%s\r\n", framing,
                         !r->head.keep_alive || c->doomed ? "Connection: close\r\n"
                         : r->head.minor == 0 ? "Connection: keep-alive\r\n" : "");
  iov[0].iov_base = head;
  iov[0].iov_len = hl;
  iov[1].iov_base = (void *)body;
  iov[1].iov_len = body && !r->head_only ? len : 0;
  rc = send_iov(c, iov, 2);
  free(head);
  return rc;
}

/* The engine answers (and closes) a request it refuses. */
static void refuse(conn *c, int status, const char *message)
{
  const char *path = c->req ? (c->req->buf ? c->req->buf : c->in) + c->req->head.target : NULL;
  size_t len = 0;
  char *body = llm_serve_error_body(path, status, error_type(status), message, &len);
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
    write_head(c, r, status, status == 503 ? busy : plain, cl, body, len);
    free(body);
  }
  if (c->req && !c->req->dispatched)
    req_detach(c->req);
  c->close_after = 1;
  c->phase = P_CLOSING;
  c->inlen = 0;
  if (pending_out(c) == 0)
    conn_close(c);
  else
    set_watch(c);
}

static void dispatch(conn *c)
{
  llm_sreq *r = c->req;
  size_t end = c->phase == P_BODY && r->head.chunked ? c->chunked.in
                                                     : r->body_off + r->body_len;
  llm_server *srv = c->srv;
  if (c->doomed) {
    refuse(c, 503, "the server has too many connections; retry shortly");
    return;
  }
  if (r->head.chunked)
    r->body_len = c->chunked.out - r->body_off;
  /* r takes the buffer; bytes after this request stay with the connection */
  r->buf = c->in;
  if (c->inlen > end) {
    size_t rest = c->inlen - end, cap = rest < 4096 ? 4096 : rest;
    char *n = malloc(cap);
    if (!n) {
      r->buf = NULL;
      refuse(c, 500, "out of memory");
      return;
    }
    memcpy(n, c->in + end, rest);
    c->in = n;
    c->inlen = rest;
    c->incap = cap;
  } else {
    c->in = NULL;
    c->inlen = c->incap = 0;
  }
  r->buf[r->body_off + r->body_len] = '\0'; /* spare byte: see read_more */
  c->scan = 0;
  c->phase = P_BUSY;
  set_deadline(c, DL_NONE, 0);
  set_watch(c);
  r->state = R_ACTIVE;
  r->dispatched = 1;
  r->received_at = llm_now();
  srv->st.requests++;
  srv->st.in_flight++;
  srv->o.on_request(srv->o.ud, r);
}

/* Parses what the buffer holds: a head, then the body. */
static void process_input(conn *c)
{
  llm_server *srv = c->srv;
  if (c->phase == P_HEAD) {
    size_t end;
    const char *why = NULL;
    int status;
    llm_sreq *r;
    if (c->inlen == 0)
      return;
    if (c->deadline_kind != DL_HEAD)
      set_deadline(c, DL_HEAD, srv->o.header_timeout);
    end = llm_head_end(c->in, c->inlen, &c->scan);
    if (end == 0) {
      if (c->inlen > srv->o.max_header_bytes)
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
    status = llm_head_parse(c->in, end, &r->head, &why);
    if (status) {
      r->head.target = 0;
      c->req = NULL;
      req_free(r);
      refuse(c, status, why);
      return;
    }
    r->head_only = strcmp(c->in + r->head.method, "HEAD") == 0;
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
    set_deadline(c, DL_BODY, srv->o.body_timeout);
    if (r->head.expect_continue && !c->doomed) {
      int complete = r->head.chunked ? 0 : c->inlen >= end + r->body_len;
      if (!complete) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof cont - 1};
        if (send_iov(c, &iov, 1) != 0) {
          conn_close(c);
          return;
        }
      }
    }
  }
  if (c->phase == P_BODY) {
    llm_sreq *r = c->req;
    if (r->head.chunked) {
      int rc = llm_chunked_step(&c->chunked, c->in, c->inlen, srv->o.max_body_bytes);
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
    } else if (c->inlen >= r->body_off + r->body_len) {
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
    if (c->incap - c->inlen < READ_CHUNK / 4 + 1) {
      size_t cap = c->incap ? c->incap * 2 : READ_CHUNK;
      char *nb = realloc(c->in, cap);
      if (!nb)
        return -1;
      c->in = nb;
      c->incap = cap;
    }
    n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen - 1, 0);
    if (n > 0) {
      c->inlen += (size_t)n;
      got = 1;
      if (c->phase == P_BUSY && c->inlen >= READ_AHEAD)
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
  req_detach(r);
}

static void client_gone(conn *c)
{
  conn_close(c);
}

static void on_io(void *ud, unsigned events)
{
  conn *c = ud;
  if (events & LLM_IO_WRITE) {
    if (flush_out(c) != 0) {
      client_gone(c);
      return;
    }
    if (pending_out(c) == 0) {
      if (c->close_after) {
        conn_close(c);
        return;
      }
      if (c->deadline_kind == DL_WRITE)
        set_deadline(c, c->phase == P_HEAD ? DL_IDLE : DL_NONE,
                     c->phase == P_HEAD ? c->srv->o.idle_timeout : 0);
    }
    set_watch(c);
    if (c->blocked && c->req && pending_out(c) <= c->srv->o.high_water / 2) {
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
      client_gone(c);
      return;
    }
    if (c->phase == P_BUSY) {
      set_watch(c);
      return;
    }
    if (rc > 0)
      process_input(c);
  }
}

/* ---- connections ----------------------------------------------------------------------- */

static void conn_close(conn *c)
{
  llm_server *srv = c->srv;
  if (c->req) {
    llm_sreq *r = c->req;
    if (r->dispatched && r->state != R_DONE)
      abort_req(c, r);
    else
      req_detach(r);
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
  free(c->in);
  free(c->out);
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
    set_deadline(c, DL_HEAD, srv->o.header_timeout);
    set_watch(c);
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
      if (c->inlen == 0) { /* nothing sent yet: just close */
        conn_close(c);
        break;
      }
      refuse(c, 408, "the request head took too long to arrive");
      break;
    case DL_BODY:
      refuse(c, 408, "the request body took too long to arrive");
      break;
    default: /* idle, or a client that stopped taking its answer */
      client_gone(c);
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
    conn_close(srv->conns);
  if (srv->tick)
    llm_timer_stop(srv->loop, srv->tick);
  llm_loop_unwatch(srv->loop, srv->fd);
  close(srv->fd);
  free(srv);
}

int llm_server_port(const llm_server *srv) { return srv->port; }

void llm_server_get_stats(const llm_server *srv, llm_server_stats *out) { *out = srv->st; }

/* ---- a request's accessors and answers ------------------------------------------------------ */

const char *llm_sreq_method(const llm_sreq *r) { return r->buf + r->head.method; }
const char *llm_sreq_target(const llm_sreq *r) { return r->buf + r->head.target; }
int llm_sreq_minor_version(const llm_sreq *r) { return r->head.minor; }
size_t llm_sreq_header_count(const llm_sreq *r) { return r->head.nheaders; }
const char *llm_sreq_client(const llm_sreq *r) { return r->client; }
double llm_sreq_received_at(const llm_sreq *r) { return r->received_at; }
int llm_sreq_aborted(const llm_sreq *r) { return r->aborted; }
void llm_sreq_set_ud(llm_sreq *r, void *ud) { r->ud = ud; }
void *llm_sreq_ud(const llm_sreq *r) { return r->ud; }

void llm_sreq_header_at(const llm_sreq *r, size_t i, const char **name, const char **value)
{
  *name = r->buf + r->head.name[i];
  *value = r->buf + r->head.value[i];
}

const char *llm_sreq_header(const llm_sreq *r, const char *name)
{
  for (size_t i = 0; i < r->head.nheaders; i++)
    if (strcmp(r->buf + r->head.name[i], name) == 0)
      return r->buf + r->head.value[i];
  return NULL;
}

const char *llm_sreq_body(const llm_sreq *r, size_t *len)
{
  *len = r->body_len;
  return r->buf + r->body_off;
}

static conn *live_conn(llm_sreq *r)
{
  return r->aborted || !r->conn ? NULL : r->conn;
}

int llm_sreq_respond(llm_sreq *r, int status, const char *const *headers,
                     const char *body, size_t len)
{
  conn *c = live_conn(r);
  char cl[48];
  if (!c || r->state != R_ACTIVE)
    return -1;
  snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", len);
  if (write_head(c, r, status, headers, cl, body, len) != 0) {
    client_gone(c);
    return -1;
  }
  answer_done(c, r);
  return 0;
}

int llm_sreq_start(llm_sreq *r, int status, const char *const *headers)
{
  conn *c = live_conn(r);
  if (!c || r->state != R_ACTIVE)
    return -1;
  r->stream_chunked = r->head.minor >= 1;
  if (!r->stream_chunked)
    r->head.keep_alive = 0; /* HTTP/1.0: the end of the body is the close */
  if (write_head(c, r, status, headers, r->stream_chunked ? "Transfer-Encoding: chunked\r\n" : "",
                 NULL, 0) != 0) {
    client_gone(c);
    return -1;
  }
  r->state = R_STREAMING;
  return 0;
}

int llm_sreq_write(llm_sreq *r, const char *data, size_t len)
{
  conn *c = live_conn(r);
  char size[24];
  struct iovec iov[3];
  int n = 0;
  if (!c || r->state != R_STREAMING)
    return -1;
  if (len == 0 || r->head_only)
    return 0;
  if (r->stream_chunked) {
    iov[n].iov_base = size;
    iov[n++].iov_len = (size_t)snprintf(size, sizeof size, "%zx\r\n", len);
  }
  iov[n].iov_base = (void *)data;
  iov[n++].iov_len = len;
  if (r->stream_chunked) {
    iov[n].iov_base = "\r\n";
    iov[n++].iov_len = 2;
  }
  if (send_iov(c, iov, n) != 0) {
    client_gone(c);
    return -1;
  }
  if (pending_out(c) > c->srv->o.high_water)
    c->blocked = 1;
  return 0;
}

int llm_sreq_end(llm_sreq *r)
{
  conn *c = live_conn(r);
  if (!c || r->state != R_STREAMING)
    return -1;
  if (r->stream_chunked && !r->head_only) {
    struct iovec iov = {"0\r\n\r\n", 5};
    if (send_iov(c, &iov, 1) != 0) {
      client_gone(c);
      return -1;
    }
  }
  answer_done(c, r);
  return 0;
}

int llm_sreq_blocked(const llm_sreq *r)
{
  return !r->aborted && r->conn && r->conn->blocked;
}

void llm_sreq_release(llm_sreq *r)
{
  conn *c = live_conn(r);
  if (r->released)
    return;
  r->released = 1;
  if (c && r->state == R_ACTIVE) {
    static const char *const h[] = {"Content-Type: application/json", NULL};
    size_t len = 0;
    char *body = llm_serve_error_body(r->buf + r->head.target, 500, "api_error",
                                      "the request was not answered", &len);
    llm_sreq_respond(r, 500, h, body ? body : "", body ? len : 0);
    free(body);
    return; /* answering detached and freed it */
  }
  if (c && r->state == R_STREAMING) {
    /* a stream its owner dropped: the client must not take it as complete */
    client_gone(c);
    return;
  }
  if (!r->conn)
    req_free(r);
}
