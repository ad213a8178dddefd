/* One HTTP transfer on the shared multi handle. See http.h. */
#include "http.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "buf.h"
#include "curl_lazy.h"

#define DEFAULT_CONNECT_TIMEOUT 5.0        /* the official SDKs' value */
#define DEFAULT_MAX_BODY (64u << 20)
#define POOL_MAX 256

/* Finished easy handles kept for reuse: curl_easy_reset on a used handle
 * costs less than curl_easy_cleanup + curl_easy_init (about 10% of a
 * small request's CPU). Single-threaded, like the loop. */
static CURL *pool[POOL_MAX];
static int pool_n;

static CURL *easy_get(void)
{
  if (pool_n > 0) {
    CURL *e = pool[--pool_n];
    curl_easy_reset(e);
    return e;
  }
  return curl_easy_init();
}

static void easy_put(CURL *e)
{
  if (pool_n < POOL_MAX)
    pool[pool_n++] = e;
  else
    curl_easy_cleanup(e);
}

/* Parsed URLs, by URL string: a model sends every call to the same one
 * or two URLs, and handing curl a parsed CURLU skips re-parsing the string
 * on each transfer. Entries live until exit (a transfer may be using
 * one); when the table is full, further URLs are passed as strings. */
#define URLS_MAX 64
static struct {
  char *text;
  CURLU *u;
  char *host; /* plain http: "host:port" (llm_xfer.host); else NULL */
} urls[URLS_MAX];
static int urls_n;

/* "host:port" of a plain http URL (one transfer per connection), else NULL. */
static char *host_key(CURLU *u)
{
  char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && strcmp(scheme, "http") == 0 &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
      (key = malloc(strlen(host) + strlen(port) + 2)) != NULL)
    snprintf(key, strlen(host) + strlen(port) + 2, "%s:%s", host, port);
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  return key;
}

/* The parsed URL, and its host key in *host (NULL when unknown). */
static CURLU *parsed_url(const char *text, const char **host)
{
  CURLU *u;
  *host = NULL;
  for (int i = 0; i < urls_n; i++)
    if (strcmp(urls[i].text, text) == 0) {
      *host = urls[i].host;
      return urls[i].u;
    }
  if (urls_n == URLS_MAX || !(u = curl_url()))
    return NULL;
  if (curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK || !(urls[urls_n].text = strdup(text))) {
    curl_url_cleanup(u); /* let curl report the bad URL itself */
    return NULL;
  }
  *host = urls[urls_n].host = host_key(u);
  urls[urls_n++].u = u;
  return u;
}

int llm_http_check_url(const char *url, char *err, size_t errlen)
{
  size_t n = strlen(url);
  if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
    size_t scheme = strcspn(url, ":/");
    snprintf(err, errlen, "only http:// and https:// URLs are allowed (this one starts '%.*s')",
             (int)(scheme < 16 ? scheme : 16), url);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) {
      snprintf(err, errlen, "the URL contains a space or a control character");
      return -1;
    }
  const char *host;
  if (!parsed_url(url, &host)) {
    CURLU *u = curl_url();
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    if (u)
      curl_url_cleanup(u);
    if (rc != CURLUE_OK) {
      snprintf(err, errlen, "malformed URL (%s)",
               rc == CURLUE_OUT_OF_MEMORY ? "out of memory" : "curl cannot parse it");
      return -1;
    }
  }
  return 0;
}

void llm_http_pool_drain(void)
{
  while (pool_n > 0)
    curl_easy_cleanup(pool[--pool_n]);
  while (urls_n > 0) {
    urls_n--;
    curl_url_cleanup(urls[urls_n].u);
    free(urls[urls_n].text);
    free(urls[urls_n].host);
  }
}

/* Response headers live in one buffer as "name\0value\0" pairs, found
 * through offsets: two allocations per transfer at most, not two per
 * header. */
typedef struct header {
  size_t name, value;   /* offsets into hbuf */
} header;

struct llm_http {
  llm_xfer x;                 /* first: the loop hands this back in done() */
  llm_loop *loop;
  struct curl_slist *req_headers; /* with the body copy: one block (own_request) */
  size_t body_at;             /* the body copy's offset in that block */
  char curl_err[CURL_ERROR_SIZE];
  char message[CURL_ERROR_SIZE + 128];

  int state, error, curl_code;
  int sends;                  /* times curl was about to send the request */
  int resend_refused;         /* curl wanted to send it again: refused */
  int in_multi, headers_done, paused;
  long status;

  header *headers;
  size_t nheaders, capheaders;
  llm_buf hbuf;               /* the headers' names and values */

  llm_buf body;
  size_t max_body;

  double timeout, stall_timeout, last_byte; /* last_byte: or the last touch */
  int stall_on_touch;
  llm_timer *timer;           /* header deadline, then the stall watch */

  llm_http_sink sink, tap;
  llm_http_notify on_headers, on_done;
  void *ud;
  llm_http_times t;
};

/* ---- response headers --------------------------------------------------- */

static void clear_headers(llm_http *h)
{
  h->nheaders = 0;
  h->hbuf.len = 0;
}

/* A control byte in a header value (ESC, BEL...; never valid there, RFC
 * 9110 allows only tab) is kept as the text \xHH: values such as
 * x-request-id end up printed on terminals and stored in the call log. */
static int is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

/* Might any of these 8 bytes be a control byte (< 0x20, or 0x7f)? A zero
 * byte in x shows in (x - 0x01..) & ~x & 0x80..; bytes >= 0x80 are never
 * flagged. (Tabs are flagged too, and then looked at one by one.) */
static int maybe_ctl8(const char *s)
{
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t w, del;
  memcpy(&w, s, 8);
  del = w ^ (ones * 0x7f);
  return ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs) != 0;
}

static int hbuf_put(llm_http *h, const char *s, size_t n, int lower)
{
  size_t need = n, i = 0;
  while (i + 8 <= n && !maybe_ctl8(s + i))
    i += 8;
  for (; i < n; i++)
    if (is_ctl((unsigned char)s[i]))
      need += 3;
  llm_buf *b = &h->hbuf;
  if (llm_buf_reserve(b, need + 1) != 0) /* the string and its NUL */
    return -1;
  if (need == n && !lower) {
    memcpy(b->data + b->len, s, n);
  } else {
    for (size_t i = 0, o = b->len; i < n; i++) {
      unsigned char c = (unsigned char)s[i];
      if (is_ctl(c)) {
        snprintf(b->data + o, 5, "\\x%02x", c);
        o += 4;
      } else {
        /* ASCII lower case (header names are tokens), whatever the locale */
        b->data[o++] = lower && c >= 'A' && c <= 'Z' ? (char)(c + 32) : (char)c;
      }
    }
  }
  b->data[b->len + need] = '\0';
  b->len += need + 1;
  b->data[b->len] = '\0';
  return 0;
}

static int add_header(llm_http *h, const char *line, size_t n)
{
  const char *colon = memchr(line, ':', n), *v, *end = line + n;
  header *hd;
  if (!colon)
    return 0; /* not a field line; ignore */
  while (end > colon + 1 && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  v = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  if (llm_grow(&h->headers, &h->capheaders, h->nheaders + 1, sizeof *h->headers) != 0)
    return -1;
  /* room for a usual response's headers at once, not five doublings from 64 */
  if (h->hbuf.cap == 0 && llm_buf_reserve(&h->hbuf, 1024) != 0)
    return -1;
  hd = &h->headers[h->nheaders];
  hd->name = h->hbuf.len;
  if (hbuf_put(h, line, (size_t)(colon - line), 1) != 0)
    return -1;
  hd->value = h->hbuf.len;
  if (hbuf_put(h, v, (size_t)(end - v), 0) != 0)
    return -1;
  h->nheaders++;
  return 0;
}

static void stop_timer(llm_http *h)
{
  if (h->timer) {
    llm_timer_stop(h->loop, h->timer);
    h->timer = NULL;
  }
}

static void fail(llm_http *h, int error, const char *msg);
static void watch_stall(void *ud);

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
  llm_http *h = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    clear_headers(h); /* a new response: 1xx before the final one */
    return len;
  }
  if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(h->x.easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && !h->headers_done) {
      h->status = code;
      h->headers_done = 1;
      h->t.headers = llm_now();
      /* headers in time: from here on only a stall can time out, and the
       * wait for the first body byte counts (a server may go silent
       * right after its headers) */
      stop_timer(h);
      if (h->stall_timeout > 0) {
        h->last_byte = h->t.headers;
        h->timer = llm_timer_start(h->loop, h->stall_timeout, watch_stall, h);
      }
      if (h->on_headers)
        h->on_headers(h->ud, h);
    }
    return len;
  }
  if (add_header(h, data, len) != 0) {
    h->error = LLM_HTTP_E_MEMORY;
    return 0;
  }
  return len;
}

/* ---- response body ---------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
  llm_http *h = ud;
  size_t len = size * n;
  double now = llm_now();
  if (h->t.first_byte == 0) {
    h->t.first_byte = now;
    if (h->stall_timeout > 0 && !h->timer)
      h->timer = llm_timer_start(h->loop, h->stall_timeout, watch_stall, h);
  }
  if (!h->stall_on_touch)
    h->last_byte = now;
  if (h->sink) {
    if (!h->sink(h->ud, data, len, now)) {
      h->paused = 1;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (h->tap)
      h->tap(h->ud, data, len, now);
    return len;
  }
  if (h->body.len + len > h->max_body) {
    h->error = LLM_HTTP_E_TOO_LARGE;
    return 0;
  }
  llm_buf_put(&h->body, data, len);
  if (h->body.failed) {
    h->error = LLM_HTTP_E_MEMORY;
    return 0;
  }
  if (h->tap)
    h->tap(h->ud, data, len, now);
  return len;
}

/* ---- timers: header deadline and stall watch ------------------------------------ */

static void header_deadline(void *ud)
{
  llm_http *h = ud;
  char msg[96];
  h->timer = NULL;
  snprintf(msg, sizeof msg, "no response headers within %g s", h->timeout);
  fail(h, LLM_HTTP_E_TIMEOUT, msg);
}

/* Re-arms itself at last_byte + stall_timeout, so a busy stream costs
 * one timer per stall period, not one per chunk. A transfer we paused
 * ourselves is waiting on its reader, not stalled. */
static void watch_stall(void *ud)
{
  llm_http *h = ud;
  double idle = llm_now() - h->last_byte;
  h->timer = NULL;
  if (h->paused || idle < h->stall_timeout) {
    double again = h->paused ? h->stall_timeout : h->stall_timeout - idle;
    h->timer = llm_timer_start(h->loop, again, watch_stall, h);
    return;
  }
  {
    char msg[96];
    snprintf(msg, sizeof msg, "stream stalled: no data for %g s", h->stall_timeout);
    fail(h, LLM_HTTP_E_STALLED, msg);
  }
}

/* ---- one send per transfer ------------------------------------------------ */

/* libcurl (before 8.16's CURLOPT_FORBID_RETRY_ON_REUSE) re-sends a request
 * on a fresh connection, silently, when a kept-alive connection it reused
 * dies with nothing received (Curl_retry_request: "Connection died,
 * retrying a fresh connect", up to 5 times), and likewise for an HTTP/2
 * stream the server refused. The server may have received and acted on
 * the first copy, so a POST can reach it more often than the caller's
 * retry policy allows and counts. curl calls the pre-request callback
 * right before each send, the re-sends included (it goes back through
 * CONNECT and DO), so the second call is refused: the transfer fails with
 * CURLE_ABORTED_BY_CALLBACK and the caller decides whether to retry,
 * counting the attempt. */
static int before_send(void *ud, char *ip, char *local_ip, int port, int local_port)
{
  llm_http *h = ud;
  (void)ip, (void)local_ip, (void)port, (void)local_port;
  if (h->sends > 0) {
    h->resend_refused = 1;
    return CURL_PREREQFUNC_ABORT;
  }
  h->sends++;
  return CURL_PREREQFUNC_OK;
}

/* ---- ending ------------------------------------------------------------------------- */

static void finish(llm_http *h, int state)
{
  stop_timer(h);
  h->state = state;
  h->t.end = llm_now();
  if (h->on_done)
    h->on_done(h->ud, h);
}

/* Ends a running transfer with an error of ours (timeouts, stalls). */
static void fail(llm_http *h, int error, const char *msg)
{
  if (h->in_multi) {
    llm_loop_remove_xfer(h->loop, &h->x);
    h->in_multi = 0;
  }
  h->error = error;
  snprintf(h->message, sizeof h->message, "%s", msg);
  finish(h, LLM_HTTP_FAILED);
}

static void on_done(llm_xfer *x, CURLcode rc)
{
  llm_http *h = (llm_http *)x;
  h->in_multi = 0;
  h->curl_code = (int)rc;
  if (rc == CURLE_OK) {
    finish(h, LLM_HTTP_DONE);
    return;
  }
  if (h->error == LLM_HTTP_OK) {
    if (rc == CURLE_OPERATION_TIMEDOUT)
      h->error = LLM_HTTP_E_TIMEOUT;
    else if (rc == CURLE_OUT_OF_MEMORY)
      h->error = LLM_HTTP_E_MEMORY;
    else
      h->error = LLM_HTTP_E_TRANSPORT;
  }
  if (h->error == LLM_HTTP_E_TOO_LARGE)
    snprintf(h->message, sizeof h->message, "response body over %zu bytes", h->max_body);
  else if (h->resend_refused)
    snprintf(h->message, sizeof h->message,
             "the connection closed after the request was sent, with no response "
             "(a kept-alive connection the server had dropped); not re-sent");
  else
    snprintf(h->message, sizeof h->message, "curl error %d: %s%s%s", (int)rc,
             curl_easy_strerror(rc), h->curl_err[0] ? ": " : "", h->curl_err);
  finish(h, LLM_HTTP_FAILED);
}

/* ---- starting -------------------------------------------------------------------------- */

/* Thousands of concurrent connections need more descriptors than the
 * usual soft limit of 1024; take what the hard limit allows, once. */
static void raise_fd_limit(void)
{
  static int done;
  struct rlimit rl;
  if (done)
    return;
  done = 1;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static long ms(double seconds) { return (long)(seconds * 1000.0 + 0.5); }

/* The request's header list and a copy of its body, in one allocation
 * (not two per header line and one for the body): the list's nodes, then
 * the lines, then the body. curl only reads a CURLOPT_HTTPHEADER list, and
 * its owner frees it, so it can be laid out as we like. */
static int own_request(llm_http *h, const llm_http_request *req)
{
  /* no "Expect: 100-continue" round trip before large bodies */
  static const char expect[] = "Expect:";
  size_t n = 1, bytes = sizeof expect;
  struct curl_slist *nodes;
  char *o;
  for (const char *const *p = req->headers; p && *p; p++, n++)
    bytes += strlen(*p) + 1;
  if (req->extra_header) {
    n++;
    bytes += strlen(req->extra_header) + 1;
  }
  nodes = malloc(n * sizeof *nodes + bytes + (req->body ? req->body_len + 1 : 0));
  if (!nodes)
    return -1;
  o = (char *)(nodes + n);
  n = 0;
  for (const char *const *p = req->headers; p && *p; p++) {
    size_t len = strlen(*p) + 1;
    nodes[n].data = memcpy(o, *p, len);
    o += len;
    nodes[n].next = &nodes[n + 1];
    n++;
  }
  if (req->extra_header) {
    size_t len = strlen(req->extra_header) + 1;
    nodes[n].data = memcpy(o, req->extra_header, len);
    o += len;
    nodes[n].next = &nodes[n + 1];
    n++;
  }
  nodes[n].data = memcpy(o, expect, sizeof expect);
  nodes[n].next = NULL;
  o += sizeof expect;
  if (req->body && req->body_len)
    memcpy(o, req->body, req->body_len);
  h->req_headers = nodes;
  h->body_at = (size_t)(o - (char *)nodes);
  return 0;
}

static char *request_body(llm_http *h) { return (char *)h->req_headers + h->body_at; }

llm_http *llm_http_start(llm_loop *loop, const llm_http_request *req, char *err, size_t errlen)
{
  llm_http *h;
  CURL *e;
  if (llm_curl_load(err, errlen) != 0 ||
      (!req->url_checked && llm_http_check_url(req->url, err, errlen) != 0))
    return NULL;
  raise_fd_limit();
  h = calloc(1, sizeof *h);
  e = h ? easy_get() : NULL;
  if (!e) {
    free(h);
    snprintf(err, errlen, "out of memory starting a transfer");
    return NULL;
  }
  h->x.easy = e;
  h->x.done = on_done;
  h->loop = loop;
  h->sink = req->sink;
  h->tap = req->tap;
  h->on_headers = req->on_headers;
  h->on_done = req->on_done;
  h->ud = req->ud;
  h->max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
  h->timeout = req->timeout;
  h->stall_timeout = req->stall_timeout;
  h->stall_on_touch = req->stall_on_touch;

  if (own_request(h, req) != 0)
    goto oom;

  {
    CURLU *u = parsed_url(req->url, &h->x.host);
    if (u)
      curl_easy_setopt(e, CURLOPT_CURLU, u);
    else
      curl_easy_setopt(e, CURLOPT_URL, req->url);
  }
  /* http and https only, on this transfer and any redirect it might
   * follow: a base URL of file:///etc/passwd or dict://host:port must not
   * read files or reach other services. (The _STR options are 7.85+; the
   * bitmask, option 181/182, is the older spelling of the same.) */
  if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
    curl_easy_setopt(e, (CURLoption)181, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(e, (CURLoption)182, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  } else {
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  }
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method ? req->method : "GET");
  if (req->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request_body(h));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->req_headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "llmrun/" LLMRUN_VERSION);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->curl_err);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, before_send);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, h);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   ms(req->connect_timeout > 0 ? req->connect_timeout : DEFAULT_CONNECT_TIMEOUT));
  if (strncmp(req->url, "https:", 6) == 0) {
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* prefer multiplexing on HTTP/2 */
    /* Compressed bodies save bandwidth to a remote API; on a local server
     * (the simulator, Ollama, vLLM) the decoder setup is pure cost, about
     * a tenth of curl's work for a small request. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  }
  if (req->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (req->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
  if (req->max_idle_reuse > 0)
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)ceil(req->max_idle_reuse));

  /* A buffered transfer may take `timeout` in all. A stream only has to
   * start (send its headers) in time; after that the stall watch guards it. */
  if (req->timeout > 0) {
    if (!req->sink)
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(req->timeout));
    else if (!(h->timer = llm_timer_start(loop, req->timeout, header_deadline, h)))
      goto oom;
  }

  h->t.start = llm_now();
  if (llm_loop_add_xfer(loop, &h->x) != 0) {
    snprintf(err, errlen, "cannot add the transfer to the event loop");
    llm_http_free(h);
    return NULL;
  }
  h->in_multi = 1;
  llm_loop_start_now(loop);
  return h;

oom:
  snprintf(err, errlen, "out of memory starting a transfer");
  llm_http_free(h);
  return NULL;
}

void llm_http_abort(llm_http *h)
{
  if (h->state != LLM_HTTP_RUNNING)
    return;
  if (h->in_multi) {
    llm_loop_remove_xfer(h->loop, &h->x);
    h->in_multi = 0;
  }
  stop_timer(h);
  h->state = LLM_HTTP_ABORTED;
  h->t.end = llm_now();
}

void llm_http_free(llm_http *h)
{
  if (!h)
    return;
  llm_http_abort(h);
  stop_timer(h);
  easy_put(h->x.easy);
  free(h->req_headers);
  free(h->headers);
  llm_buf_free(&h->hbuf);
  llm_buf_free(&h->body);
  free(h);
}

void llm_http_touch(llm_http *h, double now) { h->last_byte = now; }

void llm_http_resume(llm_http *h)
{
  if (h->paused && h->state == LLM_HTTP_RUNNING) {
    h->paused = 0;
    curl_easy_pause(h->x.easy, CURLPAUSE_CONT); /* may call the sink at once */
  }
}

/* ---- accessors -------------------------------------------------------------------------------- */

int llm_http_state(const llm_http *h) { return h->state; }
int llm_http_headers_done(const llm_http *h) { return h->headers_done; }
long llm_http_status(const llm_http *h) { return h->status; }
size_t llm_http_header_count(const llm_http *h) { return h->nheaders; }
int llm_http_error(const llm_http *h) { return h->error; }
const char *llm_http_error_message(const llm_http *h) { return h->message; }
int llm_http_curl_code(const llm_http *h) { return h->curl_code; }
int llm_http_sent(const llm_http *h) { return h->sends; }
llm_http_times llm_http_timing(const llm_http *h) { return h->t; }

void llm_http_header_at(const llm_http *h, size_t i, const char **name, const char **value)
{
  *name = h->hbuf.data + h->headers[i].name;
  *value = h->hbuf.data + h->headers[i].value;
}

const char *llm_http_header(const llm_http *h, const char *name)
{
  for (size_t i = h->nheaders; i-- > 0;)
    if (strcmp(h->hbuf.data + h->headers[i].name, name) == 0)
      return h->hbuf.data + h->headers[i].value;
  return NULL;
}

const char *llm_http_body(const llm_http *h, size_t *len)
{
  *len = h->body.len;
  return h->body.data ? h->body.data : "";
}
