/* The server engine's output side: the answers a request gets (whole, or
 * streamed with chunked coding), output buffering with a high-water mark
 * (back-pressure), the error bodies the engine sends, and a request's
 * accessors. See serve.h; the connections and input are serve.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>

#include "json.h"
#include "serve_internal.h"

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
  llm_buf b;
  llm_buf_init(&b);
  if (path && strncmp(path, "/v1/messages", 12) == 0) {
    /* Anthropic: {"type":"error","error":{"type":...,"message":...}} */
    llm_buf_puts(&b, "{\"type\":\"error\",\"error\":{\"type\":");
    json_put_cstring(&b, type);
    llm_buf_puts(&b, ",\"message\":");
    json_put_cstring(&b, message);
    llm_buf_puts(&b, "}}");
  } else {
    llm_buf_puts(&b, "{\"error\":{\"message\":");
    json_put_cstring(&b, message);
    llm_buf_puts(&b, ",\"type\":");
    json_put_cstring(&b, type);
    llm_buf_printf(&b, ",\"param\":null,\"code\":");
    json_put_cstring(&b, status == 413 ? "request_too_large" : status == 503 ? "server_busy"
                         : status == 408 ? "request_timeout" : NULL);
    llm_buf_puts(&b, "}}");
  }
  llm_buf_putc(&b, '\n');
  if (b.failed) {
    llm_buf_free(&b);
    return NULL;
  }
  return llm_buf_take(&b, len);
}

const char *srv_error_type(int status)
{
  if (status == 503 || status == 529)
    return "overloaded_error";
  if (status == 408)
    return "timeout_error";
  if (status == 413)
    return "request_too_large";
  return "invalid_request_error";
}


/* Writes what it can now; 0, or -1 when the connection failed. */
int srv_flush_out(conn *c)
{
  while (c->outoff < c->out.len) {
    ssize_t n = send(c->fd, c->out.data + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
    if (n > 0) {
      c->outoff += (size_t)n;
      if (c->deadline_kind == DL_WRITE)
        srv_set_deadline(c, DL_WRITE, c->srv->o.write_timeout);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    return -1;
  }
  if (c->outoff == c->out.len) {
    c->outoff = 0;
    llm_buf_reset(&c->out);
  }
  return 0;
}

/* Room for extra more bytes of output: what the client took is dropped
 * first. 0, or -1 when out of memory. */
static int out_reserve(conn *c, size_t extra)
{
  if (c->outoff > 0 && c->out.len + extra >= c->out.cap) {
    memmove(c->out.data, c->out.data + c->outoff, c->out.len - c->outoff);
    c->out.len -= c->outoff;
    c->out.data[c->out.len] = '\0';
    c->outoff = 0;
  }
  return llm_buf_reserve(&c->out, extra);
}

/* Sends the pieces, straight to the socket when nothing waits before them;
 * what the socket does not take now is queued. 0, or -1 (connection
 * failed, or out of memory). */
int srv_send_iov(conn *c, struct iovec *iov, int n)
{
  size_t total = 0, sent = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  if (srv_pending_out(c) == 0 && total > 0) {
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
      llm_buf_put(&c->out, p + sent, len - sent); /* room made above */
      sent = 0;
    }
    if (c->deadline_kind != DL_WRITE)
      srv_set_deadline(c, DL_WRITE, c->srv->o.write_timeout);
    srv_set_watch(c);
  }
  return 0;
}

static void answer_done(conn *c, llm_sreq *r)
{
  int keep = r->head.keep_alive && !c->doomed;
  r->state = R_DONE;
  c->srv->st.responses++;
  if (c->srv->st.in_flight > 0 && r->dispatched)
    c->srv->st.in_flight--;
  srv_req_detach(r);
  c->blocked = 0;
  if (!keep) {
    c->close_after = 1;
    c->phase = P_CLOSING;
    if (srv_pending_out(c) == 0) {
      srv_conn_close(c);
      return;
    }
    srv_set_watch(c);
    return;
  }
  c->phase = P_HEAD;
  c->scan = 0;
  if (srv_pending_out(c) == 0)
    srv_set_deadline(c, c->in.len ? DL_HEAD : DL_IDLE,
                 c->in.len ? c->srv->o.header_timeout : c->srv->o.idle_timeout);
  srv_set_watch(c);
  if (c->in.len)
    srv_process_input(c); /* a pipelined request */
}

int srv_write_head(conn *c, llm_sreq *r, int status, const char *const *headers,
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
  rc = srv_send_iov(c, iov, 2);
  free(head);
  return rc;
}

/* The engine answers (and closes) a request it refuses. */
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
  if (srv_write_head(c, r, status, headers, cl, body, len) != 0) {
    srv_client_gone(c);
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
  if (srv_write_head(c, r, status, headers, r->stream_chunked ? "Transfer-Encoding: chunked\r\n" : "",
                 NULL, 0) != 0) {
    srv_client_gone(c);
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
  if (srv_send_iov(c, iov, n) != 0) {
    srv_client_gone(c);
    return -1;
  }
  if (srv_pending_out(c) > c->srv->o.high_water)
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
    if (srv_send_iov(c, &iov, 1) != 0) {
      srv_client_gone(c);
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
    srv_client_gone(c);
    return;
  }
  if (!r->conn)
    srv_req_free(r);
}
