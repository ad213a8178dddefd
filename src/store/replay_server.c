/* The replayer's server: see replay_server.h for the protocol. One thread
 * runs an epoll loop over the listening socket, the connections, a
 * timerfd (armed, absolute, at the earliest due piece) and an eventfd
 * that asks it to stop. A response is built whole when its request is
 * read (head, chunk framing, body), with a list of segments: "bytes up to
 * offset E may go out at time D". A connection waits in a min-heap keyed
 * by its next segment's time; writes that would block wait for EPOLLOUT. */
#include "replay_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <locale.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "heap.h"
#include "json.h"

#define HEAD_MAX (64u << 10)   /* a request head larger than this is refused */
#define IN_MAX (2 * HEAD_MAX)  /* buffered input past this: not a client of ours */
#define NS 1000000000LL
/* After an instant answer (SPEED 0) the thread polls for this long
 * before it sleeps: an instant replay's client sends its next request
 * within microseconds, and a sleeping thread would have to be woken for
 * each one (the waker pays for it, on the client's thread: a cross-core
 * wake-up, costly in a VM). It yields between polls, or on a busy
 * machine it would take the core from the client (measured with two
 * busy processes at nice 10: 8,900 calls/s polling without yielding,
 * 11,000-12,600 not polling). */
#define INSTANT_AWAKE_NS 200000LL

typedef struct segment {
  int64_t at;      /* CLOCK_MONOTONIC ns */
  size_t end;      /* bytes of out that may be written once at has passed */
} segment;

/* A connection reads a request head, then discards its body, then sends
 * the response (bytes that arrive meanwhile wait in `in`), then reads
 * the next request. */
enum { ST_HEAD, ST_BODY, ST_SEND };

typedef struct conn {
  int fd, state;
  struct conn *prev, *next;  /* every open connection, for stopping */
  /* reading a request */
  llm_buf in;
  size_t body_left;          /* request body bytes still to discard */
  /* answering it */
  char *out;
  size_t out_len, sent, allowed;
  segment *segs;
  size_t nsegs, next_seg;
  int close_after, cut, want_out;
  size_t heap_idx;           /* SIZE_MAX: not waiting on a timer */
  int lost;                  /* to be closed once the current batch of events is done */
  struct conn *next_lost;
} conn;

struct replay_server {
  int listen_fd, ep, timerfd, stopfd, port;
  char url[64];
  pthread_t thread;
  sqlite3 *db;
  sqlite3_stmt *get;
  conn *conns;
  conn *lost;                 /* connections lost while a batch of events was handled */
  conn **heap;
  size_t nheap, capheap;
  int64_t instant_until;      /* poll without sleeping until then (INSTANT_AWAKE_NS) */
  _Atomic uint64_t requests, served, errors, cut, connections, pieces, late_max, late_sum, late_1ms;
};

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ---- the heap of connections waiting for a segment's time --------------------- */

static int64_t due(const conn *c) { return c->segs[c->next_seg].at; }

/* each connection knows its place, so taking it out is O(log n) */
#define DUE_BEFORE(x, y) (due(x) < due(y))
#define CONN_PLACED(a, i) ((a)[i]->heap_idx = (i))
LLM_HEAP(waiting, conn *, DUE_BEFORE, CONN_PLACED)

static int heap_push(replay_server *s, conn *c)
{
  return waiting_push(&s->heap, &s->nheap, &s->capheap, c);
}

static void heap_remove(replay_server *s, conn *c)
{
  size_t i = c->heap_idx;
  if (i == SIZE_MAX)
    return;
  waiting_remove(s->heap, &s->nheap, i);
  c->heap_idx = SIZE_MAX;
}

static void arm_timer(replay_server *s)
{
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (s->nheap > 0) {
    int64_t at = due(s->heap[0]);
    if (at <= 0)
      at = 1; /* 0 would disarm */
    its.it_value.tv_sec = at / NS;
    its.it_value.tv_nsec = at % NS;
  }
  timerfd_settime(s->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- connections ------------------------------------------------------------------- */

static void conn_free(replay_server *s, conn *c)
{
  heap_remove(s, c);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  llm_buf_free(&c->in);
  free(c->out);
  free(c->segs);
  free(c);
}

static void watch(replay_server *s, conn *c, int out)
{
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0);
  ev.data.ptr = c;
  c->want_out = out;
  epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void reset_response(conn *c)
{
  free(c->out);
  free(c->segs);
  c->out = NULL;
  c->segs = NULL;
  c->out_len = c->sent = c->allowed = 0;
  c->nsegs = c->next_seg = 0;
  c->cut = 0;
}

/* ---- building a response ------------------------------------------------------------- */

static const char *reason(int status)
{
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 529: return "Overloaded";
  default: return status < 400 ? "OK" : "Error";
  }
}

/* Headers the replayer sets itself (framing) or that would break it. */
static int skipped_header(const char *name)
{
  return strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0 ||
         strcasecmp(name, "connection") == 0 || strcasecmp(name, "keep-alive") == 0;
}

/* A header name or value must not be able to end the head early. */
static int clean_field(const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
      return 0;
  return 1;
}

static int add_segment(conn *c, int64_t at, size_t *cap)
{
  if (llm_grow(&c->segs, cap, c->nsegs + 1, sizeof *c->segs) != 0)
    return -1;
  /* never earlier than the segment before: bytes go out in order */
  if (c->nsegs > 0 && at < c->segs[c->nsegs - 1].at)
    at = c->segs[c->nsegs - 1].at;
  c->segs[c->nsegs].at = at;
  c->segs[c->nsegs].end = c->out_len;
  c->nsegs++;
  return 0;
}

static int take_buffer(conn *c, llm_buf *b)
{
  if (b->failed)
    return -1;
  c->out = llm_buf_take(b, &c->out_len);
  return 0;
}

/* A reply of the replayer's own (no recording behind it). */
static int build_error(replay_server *s, conn *c, int status, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static int build_error(replay_server *s, conn *c, int status, const char *fmt, ...)
{
  char msg[300];
  llm_buf body, b;
  size_t cap = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  llm_buf_init(&body);
  llm_buf_puts(&body, "{\"error\":{\"message\":");
  json_put_cstring(&body, msg);
  llm_buf_puts(&body, ",\"type\":\"llmrun_replay\",\"param\":null,\"code\":null}}\n");
  llm_buf_init(&b);
  llm_buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
            status, reason(status), body.len);
  llm_buf_put(&b, body.data, body.len);
  llm_buf_free(&body);
  atomic_fetch_add(&s->errors, 1);
  if (take_buffer(c, &b) != 0)
    return -1;
  return add_segment(c, now_ns(), &cap);
}

/* The recorded response of exchange id, paced from t0 at speed. */
static int build_replay(replay_server *s, conn *c, long long id, int64_t t0, double speed)
{
  sqlite3_stmt *q = s->get;
  int rc, status;
  const char *headers, *chunks_text, *body, *error;
  size_t body_len, off = 0, cap = 0;
  double headers_ms, end_ms;
  json_doc *hdoc = NULL, *cdoc = NULL;
  const json_value *hv = NULL, *cv = NULL;
  json_error jerr;
  llm_buf b;
  int result = -1;

  sqlite3_reset(q);
  sqlite3_bind_int64(q, 1, id);
  rc = sqlite3_step(q);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(q);
    if (rc == SQLITE_DONE)
      return build_error(s, c, 404, "the cassette has no exchange %lld", id);
    return build_error(s, c, 500, "reading exchange %lld: %s", id, sqlite3_errmsg(s->db));
  }
  status = sqlite3_column_int(q, 0);
  headers = (const char *)sqlite3_column_text(q, 1);
  body = sqlite3_column_blob(q, 2);
  body_len = (size_t)sqlite3_column_bytes(q, 2);
  chunks_text = (const char *)sqlite3_column_text(q, 3);
  headers_ms = sqlite3_column_double(q, 4);
  end_ms = sqlite3_column_double(q, 5);
  error = (const char *)sqlite3_column_text(q, 6);

  if (status < 100 || status > 999) {
    sqlite3_reset(q);
    return build_error(s, c, 500, "exchange %lld has no HTTP response to replay (status %d)", id, status);
  }
  if (headers && !(hv = json_parse(headers, strlen(headers), &hdoc, &jerr))) {
    sqlite3_reset(q);
    return build_error(s, c, 500, "exchange %lld is damaged: its headers are not JSON (%s)", id, jerr.message);
  }
  if (chunks_text && !(cv = json_parse(chunks_text, strlen(chunks_text), &cdoc, &jerr))) {
    json_free(hdoc);
    sqlite3_reset(q);
    return build_error(s, c, 500, "exchange %lld is damaged: its chunks are not JSON (%s)", id, jerr.message);
  }
  if (cv) { /* the pieces must add up to the body, or it is not this body */
    size_t sum = 0;
    int ok = cv->type == JSON_ARRAY;
    for (size_t i = 0; ok && i < cv->u.array.n; i++) {
      const json_value *it = &cv->u.array.items[i], *n = json_at(it, 1);
      int64_t len;
      ok = it->type == JSON_ARRAY && json_at(it, 0) && json_at(it, 0)->type == JSON_NUMBER && n &&
           json_int64(n, &len) && len >= 0;
      sum += ok ? (size_t)len : 0;
    }
    if (!ok || sum != body_len) {
      json_free(hdoc);
      json_free(cdoc);
      sqlite3_reset(q);
      return build_error(s, c, 500, "exchange %lld is damaged: its chunks do not add up to its body", id);
    }
  }

  llm_buf_init(&b);
  llm_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
  if (hv && hv->type == JSON_OBJECT)
    for (size_t i = 0; i < hv->u.object.n; i++) {
      const json_member *m = &hv->u.object.members[i];
      if (m->value.type != JSON_STRING || skipped_header(m->key) || !clean_field(m->key, m->key_len) ||
          !clean_field(m->value.u.string.ptr, m->value.u.string.len))
        continue;
      llm_buf_put(&b, m->key, m->key_len);
      llm_buf_puts(&b, ": ");
      llm_buf_put(&b, m->value.u.string.ptr, m->value.u.string.len);
      llm_buf_puts(&b, "\r\n");
    }
  llm_buf_printf(&b, "x-llmrun-replayed: %lld\r\nTransfer-Encoding: chunked\r\n\r\n", id);
  c->cut = error != NULL;
#define AT(ms) (speed > 0 ? t0 + (int64_t)((ms) * 1e6 / speed) : t0)
  c->out_len = b.len; /* add_segment reads the end from out_len */
  if (add_segment(c, AT(headers_ms), &cap) != 0)
    goto done;
  {
    size_t n = cv ? cv->u.array.n : (body_len > 0 ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
      double ms = end_ms;
      int64_t len = (int64_t)body_len;
      if (cv) {
        ms = json_at(json_at(cv, i), 0)->u.number.value;
        json_int64(json_at(json_at(cv, i), 1), &len);
      }
      if (len > 0) {
        llm_buf_printf(&b, "%llx\r\n", (unsigned long long)len);
        llm_buf_put(&b, body + off, (size_t)len);
        llm_buf_puts(&b, "\r\n");
        off += (size_t)len;
      }
      if (i + 1 == n && !c->cut)
        llm_buf_puts(&b, "0\r\n\r\n"); /* the end goes with the last piece */
      c->out_len = b.len;
      if (add_segment(c, AT(ms), &cap) != 0)
        goto done;
    }
    if (n == 0 && !c->cut) {
      llm_buf_puts(&b, "0\r\n\r\n");
      c->out_len = b.len;
      if (add_segment(c, AT(end_ms > headers_ms ? end_ms : headers_ms), &cap) != 0)
        goto done;
    } else if (c->cut) { /* the recording's transfer failed here: close then */
      if (add_segment(c, AT(end_ms), &cap) != 0)
        goto done;
    }
  }
#undef AT
  if (b.failed)
    goto done;
  c->out = llm_buf_take(&b, &c->out_len);
  result = 0;
  atomic_fetch_add(&s->served, 1);
  if (c->cut)
    atomic_fetch_add(&s->cut, 1);
done:
  if (result != 0)
    llm_buf_free(&b);
  json_free(hdoc);
  json_free(cdoc);
  sqlite3_reset(q);
  return result;
}

/* ---- reading requests ------------------------------------------------------------------ */

/* The value of header name in the head (NUL-terminated, lines end in
 * CRLF), copied to out; 0 when found. */
static int head_value(const char *head, const char *name, char *out, size_t n)
{
  size_t nl = strlen(name);
  const char *p = strstr(head, "\r\n");
  while (p && p[2] != '\r' && p[2] != '\0') {
    const char *line = p + 2, *end = strstr(line, "\r\n");
    if (!end)
      return -1;
    if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      size_t len;
      while (*v == ' ' || *v == '\t')
        v++;
      len = (size_t)(end - v);
      while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
      if (len >= n)
        len = n - 1;
      memcpy(out, v, len);
      out[len] = '\0';
      return 0;
    }
    p = end;
  }
  return -1;
}

/* A whole head is in c->in.data[0 .. head_len): decide the response. */
static int handle_head(replay_server *s, conn *c, size_t head_len)
{
  char value[256];
  long long id;
  double t0s = 0, speed = 1;
  int64_t arrived = now_ns(), t0;
  int n;
  c->in.data[head_len - 1] = '\0'; /* the head's last LF: the head is a C string now */
  atomic_fetch_add(&s->requests, 1);
  c->close_after = head_value(c->in.data, "connection", value, sizeof value) == 0 &&
                   strcasecmp(value, "close") == 0;
  c->body_left = 0;
  if (head_value(c->in.data, "content-length", value, sizeof value) == 0)
    c->body_left = (size_t)strtoull(value, NULL, 10);
  if (head_value(c->in.data, "transfer-encoding", value, sizeof value) == 0) {
    c->close_after = 1; /* a chunked upload is not read: answer and close */
    return build_error(s, c, 400, "the replayer reads request bodies with a Content-Length only");
  }
  if (head_value(c->in.data, "x-llmrun-replay", value, sizeof value) != 0)
    return build_error(s, c, 400, "no x-llmrun-replay header: this server only answers llmrun's replays "
                       "(see llm.replay)");
  n = sscanf(value, "%lld %lf %lf", &id, &t0s, &speed);
  if (n < 1 || speed < 0 || t0s < 0)
    return build_error(s, c, 400, "a bad x-llmrun-replay header (want: ID T0 SPEED)");
  t0 = (int64_t)(t0s * 1e9);
  /* no start time, or one from another clock (not within a minute of
   * now): count from the request's arrival */
  if (t0 <= 0 || t0 > arrived + 60 * NS || t0 < arrived - 60 * NS)
    t0 = arrived;
  if (speed == 0)
    s->instant_until = arrived + INSTANT_AWAKE_NS;
  return build_replay(s, c, id, t0, speed);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Writes out[sent .. allowed); returns -1 when the connection is lost. */
static int flush_out(replay_server *s, conn *c)
{
  while (c->sent < c->allowed) {
    ssize_t w = send(c->fd, c->out + c->sent, c->allowed - c->sent, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!c->want_out)
          watch(s, c, 1);
        return 0;
      }
      return -1;
    }
    c->sent += (size_t)w;
  }
  if (c->want_out)
    watch(s, c, 0);
  return 0;
}

/* Lets out every segment that is due. */
static void release_due(replay_server *s, conn *c, int64_t now)
{
  while (c->next_seg < c->nsegs && c->segs[c->next_seg].at <= now) {
    uint64_t late = (uint64_t)((now - c->segs[c->next_seg].at) / 1000), max;
    c->allowed = c->segs[c->next_seg].end;
    c->next_seg++;
    atomic_fetch_add(&s->pieces, 1);
    atomic_fetch_add(&s->late_sum, late);
    if (late > 1000)
      atomic_fetch_add(&s->late_1ms, 1);
    max = atomic_load(&s->late_max);
    if (late > max)
      atomic_store(&s->late_max, late); /* only this thread writes it */
  }
}

static int process_input(replay_server *s, conn *c);

/* Moves a response on: what is due goes out; a finished one makes room
 * for the next request (or closes). 0, or -1 to close the connection. */
static int progress(replay_server *s, conn *c)
{
  heap_remove(s, c);
  release_due(s, c, now_ns());
  if (flush_out(s, c) != 0)
    return -1;
  if (c->next_seg < c->nsegs)
    return heap_push(s, c); /* more at a later time */
  if (c->sent < c->out_len)
    return 0;                /* waiting for the socket (EPOLLOUT) */
  if (c->close_after || c->cut)
    return -1;
  reset_response(c);
  c->state = ST_HEAD;
  return process_input(s, c); /* a pipelined request may be waiting */
}

/* ---- reading requests (continued) ------------------------------------------------------------ */

/* Drops the first n bytes of b. */
static void consume(llm_buf *b, size_t n)
{
  if (n == 0)
    return;
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

/* Works through what is buffered in c->in. 0, or -1 to close. */
static int process_input(replay_server *s, conn *c)
{
  for (;;) {
    if (c->state == ST_HEAD) {
      char *end = NULL;
      char *in = c->in.data;
      for (size_t i = 3; i < c->in.len; i++)
        if (in[i] == '\n' && in[i - 1] == '\r' && in[i - 2] == '\n' && in[i - 3] == '\r') {
          end = in + i + 1;
          break;
        }
      if (!end)
        return c->in.len > HEAD_MAX ? -1 : 0;
      if (handle_head(s, c, (size_t)(end - in)) != 0)
        return -1;
      consume(&c->in, (size_t)(end - in));
      c->state = ST_BODY;
    }
    if (c->state == ST_BODY) {
      size_t k = c->body_left < c->in.len ? c->body_left : c->in.len;
      consume(&c->in, k);
      c->body_left -= k;
      if (c->body_left > 0)
        return 0;
      /* the whole request is in: the answer may start */
      c->state = ST_SEND;
      return progress(s, c);
    }
    return 0; /* sending: later bytes wait their turn */
  }
}

/* Reads what is there; returns -1 when the connection should close. */
static int on_readable(replay_server *s, conn *c)
{
  for (;;) {
    ssize_t r;
    if (c->in.len >= IN_MAX)
      return -1; /* more than a head and a pipelined request: not a client of ours */
    if (llm_buf_reserve(&c->in, 4096) != 0)
      return -1;
    /* up to the capacity less the NUL the buffer keeps */
    r = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1);
    if (r == 0)
      return -1; /* the client left (also while a response was waiting) */
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return process_input(s, c);
      return -1;
    }
    c->in.len += (size_t)r;
    c->in.data[c->in.len] = '\0';
    /* a head, then a body of any size, are taken as they come (the body
     * is discarded piece by piece); while a response goes out, bytes of
     * a next request wait in the buffer */
    if (c->state != ST_SEND && process_input(s, c) != 0)
      return -1;
  }
}

/* Moves on every connection whose next piece is due. Within a batch of
 * events (defer), a connection lost here is only marked: a later event
 * of the batch may name it, so it is freed after the batch. */
static void fire_timers(replay_server *s, int defer)
{
  int64_t now = now_ns();
  while (s->nheap > 0 && due(s->heap[0]) <= now) {
    conn *c = s->heap[0];
    if (progress(s, c) == 0)
      continue;
    heap_remove(s, c); /* progress may fail with c still placed */
    if (!defer) {
      conn_free(s, c);
    } else if (!c->lost) {
      c->lost = 1;
      c->next_lost = s->lost;
      s->lost = c;
    }
  }
}

/* ---- the thread ------------------------------------------------------------------------------ */

static void accept_all(replay_server *s)
{
  for (;;) {
    struct epoll_event ev;
    conn *c;
    int one = 1, fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!(c = calloc(1, sizeof *c))) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->heap_idx = SIZE_MAX;
    c->next = s->conns;
    if (s->conns)
      s->conns->prev = c;
    s->conns = c;
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      conn_free(s, c);
      continue;
    }
    atomic_fetch_add(&s->connections, 1);
  }
}

static void *server_main(void *arg)
{
  replay_server *s = arg;
  struct epoll_event evs[256];
  locale_t cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0); /* json.h: numbers in the C locale */
  if (cloc)
    uselocale(cloc);
  /* timerfd wake-ups without the default 50 us of slack: a piece is due
   * at its recorded time, not within a window after it */
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  for (;;) {
    int n = epoll_wait(s->ep, evs, 256, 0);
    while (n == 0 && now_ns() < s->instant_until) {
      sched_yield(); /* polling must not keep another thread (the client's) off this core */
      n = epoll_wait(s->ep, evs, 256, 0);
    }
    if (n == 0)
      n = epoll_wait(s->ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &s->stopfd)
        goto out;
      if (p == &s->listen_fd) {
        accept_all(s);
      } else if (p == &s->timerfd) {
        uint64_t ticks;
        ssize_t r = read(s->timerfd, &ticks, sizeof ticks);
        (void)r;
      } else {
        conn *c = p;
        int lost = 0;
        if (c->lost)
          continue;
        if (evs[i].events & EPOLLOUT)
          lost = progress(s, c) != 0;
        if (!lost && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
          lost = on_readable(s, c) != 0;
        if (lost)
          conn_free(s, c);
      }
      /* a batch of requests must not hold back a piece that is due */
      if (s->nheap > 0 && i + 1 < n)
        fire_timers(s, 1);
    }
    while (s->lost) {
      conn *c = s->lost;
      s->lost = c->next_lost;
      conn_free(s, c);
    }
    fire_timers(s, 0);
    arm_timer(s);
  }
out:
  uselocale(LC_GLOBAL_LOCALE);
  if (cloc)
    freelocale(cloc);
  return NULL;
}

/* ---- starting and stopping --------------------------------------------------------------------- */

static int add_fd(int ep, int fd, void *tag)
{
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.ptr = tag;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

replay_server *replay_server_start(const char *cassette_path, int port, char *err, size_t errlen)
{
  replay_server *s = calloc(1, sizeof *s);
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  int one = 1;
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->listen_fd = s->ep = s->timerfd = s->stopfd = -1;
  if (sqlite3_open_v2(cassette_path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, "SELECT status, headers, body, chunks, headers_ms, end_ms, error "
                         "FROM exchanges WHERE id = ?1", -1, &s->get, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot read the cassette %s: %s", cassette_path,
             s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(s->db, 5000);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)port);
  if ((s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
      setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(s->listen_fd, 4096) != 0 ||
      getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
    snprintf(err, errlen, "cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    goto fail;
  }
  s->port = ntohs(addr.sin_port);
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
  if ((s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
      (s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
      (s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
      add_fd(s->ep, s->listen_fd, &s->listen_fd) != 0 || add_fd(s->ep, s->timerfd, &s->timerfd) != 0 ||
      add_fd(s->ep, s->stopfd, &s->stopfd) != 0) {
    snprintf(err, errlen, "cannot set up the replayer's event loop: %s", strerror(errno));
    goto fail;
  }
  if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
    snprintf(err, errlen, "cannot start the replayer's thread");
    goto fail;
  }
  return s;
fail:
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  if (s->ep >= 0)
    close(s->ep);
  if (s->timerfd >= 0)
    close(s->timerfd);
  if (s->stopfd >= 0)
    close(s->stopfd);
  sqlite3_finalize(s->get);
  sqlite3_close(s->db);
  free(s);
  return NULL;
}

const char *replay_server_url(const replay_server *s) { return s->url; }

void replay_server_stats(replay_server *s, replay_stats *out)
{
  out->requests = atomic_load(&s->requests);
  out->served = atomic_load(&s->served);
  out->errors = atomic_load(&s->errors);
  out->cut = atomic_load(&s->cut);
  out->connections = atomic_load(&s->connections);
  out->pieces = atomic_load(&s->pieces);
  out->late_us_max = atomic_load(&s->late_max);
  out->late_us_sum = atomic_load(&s->late_sum);
  out->late_1ms = atomic_load(&s->late_1ms);
}

void replay_server_stop(replay_server *s)
{
  uint64_t one = 1;
  ssize_t w;
  if (!s)
    return;
  w = write(s->stopfd, &one, sizeof one);
  (void)w;
  pthread_join(s->thread, NULL);
  while (s->conns)
    conn_free(s, s->conns);
  free(s->heap);
  close(s->listen_fd);
  close(s->ep);
  close(s->timerfd);
  close(s->stopfd);
  sqlite3_finalize(s->get);
  sqlite3_close(s->db);
  free(s);
}
