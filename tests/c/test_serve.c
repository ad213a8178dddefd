/* The HTTP server engine (serve.c, serve_parse.c): request heads and
 * chunked bodies byte by byte, then the engine on a real loopback socket
 * driven by a client thread: keep-alive, pipelining, chunked bodies,
 * Expect: 100-continue, size limits, header and body timeouts, the
 * connection cap, streamed answers, and a client that leaves. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"
#include "serve.h"
#include "serve_parse.h"

/* ---- parsing ------------------------------------------------------------------------- */

static void test_head(void)
{
  static const struct { const char *text; int status; } cases[] = {
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
    {"POST /v1/chat/completions HTTP/1.0\nContent-Length: 3\n\n", 0},
    {"GET / HTTP/2.0\r\n\r\n", 505},
    {"GET /\r\n\r\n", 400},
    {"G@T / HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[512];
    size_t scan = 0, len = strlen(cases[i].text), end = 0;
    llm_head h;
    const char *why = NULL;
    memcpy(buf, cases[i].text, len + 1);
    /* the end is found whichever way the bytes arrive */
    for (size_t n = 1; n <= len && !end; n++)
      end = llm_head_end(buf, n, &scan);
    CHECK_INT(end, len);
    CHECK_INT(llm_head_parse(buf, end, &h, &why), cases[i].status);
  }
  {
    char buf[] = "POST /a?b=1 HTTP/1.1\r\nX-Llmrun-Tag:  t1 \r\nConnection: close\r\n"
                 "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n";
    llm_head h;
    const char *why;
    size_t scan = 0, end = llm_head_end(buf, strlen(buf), &scan);
    CHECK_INT(llm_head_parse(buf, end, &h, &why), 0);
    CHECK_STR(buf + h.method, "POST");
    CHECK_STR(buf + h.target, "/a?b=1");
    CHECK_STR(buf + h.name[0], "x-llmrun-tag");
    CHECK_STR(buf + h.value[0], "t1");
    CHECK_INT(h.content_length, 12);
    CHECK_INT(h.keep_alive, 0);
    CHECK_INT(h.expect_continue, 1);
  }
}

static void test_chunked(void)
{
  const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  size_t len = strlen(body);
  /* fed whole and in every split: the same body, the same end */
  for (size_t split = 1; split <= len; split++) {
    char buf[128];
    llm_chunked c;
    int rc = 0;
    memcpy(buf, body, len);
    llm_chunked_init(&c, 0);
    rc = llm_chunked_step(&c, buf, split, 1000);
    if (rc == 0)
      rc = llm_chunked_step(&c, buf, len, 1000);
    CHECK_INT(rc, 1);
    CHECK_MEM(buf, c.out, "hello, world", 12);
    CHECK_INT(c.in, len - 4);
  }
  {
    char buf[64] = "zz\r\n";
    llm_chunked c;
    llm_chunked_init(&c, 0);
    CHECK_INT(llm_chunked_step(&c, buf, 4, 100), -1);
    strcpy(buf, "ff\r\n");
    llm_chunked_init(&c, 0);
    CHECK_INT(llm_chunked_step(&c, buf, 4, 100), -2);
  }
}

/* ---- the engine ------------------------------------------------------------------------ */

typedef struct owner {
  llm_loop *loop;
  llm_server *srv;
  int requests, aborts, streaming_left;
  llm_sreq *held;          /* a request left unanswered (abort test) */
  llm_sreq *stream;        /* a streamed answer in progress */
  llm_sreq *flood;         /* a big answer written as the client takes it */
  size_t flood_sent, flood_first_block;
  int drains;
} owner;

#define FLOOD_TOTAL (32u << 20) /* well past what the kernel buffers on loopback */

/* Writes until the engine says the client is behind (or all is sent). */
static void flood_more(owner *o)
{
  static char chunk[65536];
  while (o->flood && o->flood_sent < FLOOD_TOTAL && !llm_sreq_blocked(o->flood)) {
    llm_sreq_write(o->flood, chunk, sizeof chunk);
    o->flood_sent += sizeof chunk;
  }
  if (o->flood && llm_sreq_blocked(o->flood) && !o->flood_first_block)
    o->flood_first_block = o->flood_sent;
  if (o->flood && o->flood_sent >= FLOOD_TOTAL) {
    llm_sreq_end(o->flood);
    llm_sreq_release(o->flood);
    o->flood = NULL;
  }
}

static void on_drain(void *ud, llm_sreq *r)
{
  owner *o = ud;
  if (r == o->flood) {
    o->drains++;
    flood_more(o);
  }
}

static void stream_more(void *ud)
{
  owner *o = ud;
  if (!o->stream)
    return;
  if (llm_sreq_aborted(o->stream)) {
    llm_sreq_release(o->stream);
    o->stream = NULL;
    return;
  }
  if (o->streaming_left-- > 0) {
    llm_sreq_write(o->stream, "data: x\n\n", 9);
    llm_timer_start(o->loop, 0.002, stream_more, o);
  } else {
    llm_sreq_end(o->stream);
    llm_sreq_release(o->stream);
    o->stream = NULL;
  }
}

static void on_request(void *ud, llm_sreq *r)
{
  owner *o = ud;
  const char *target = llm_sreq_target(r);
  static const char *const h[] = {"Content-Type: text/plain", NULL};
  o->requests++;
  if (strcmp(target, "/hold") == 0) {
    o->held = r;
    return;
  }
  if (strcmp(target, "/flood") == 0) {
    llm_sreq_start(r, 200, h);
    o->flood = r;
    flood_more(o);
    return;
  }
  if (strcmp(target, "/stream") == 0) {
    llm_sreq_start(r, 200, h);
    o->stream = r;
    o->streaming_left = 3;
    stream_more(o);
    return;
  }
  {
    size_t len;
    const char *body = llm_sreq_body(r, &len);
    char out[256];
    const char *tag = llm_sreq_header(r, "x-tag");
    int n = snprintf(out, sizeof out, "%s %s %zu:%.*s tag=%s", llm_sreq_method(r), target, len,
                     (int)(len < 40 ? len : 40), body, tag ? tag : "-");
    llm_sreq_respond(r, 200, h, out, (size_t)n);
    llm_sreq_release(r);
  }
}

static void on_abort(void *ud, llm_sreq *r)
{
  owner *o = ud;
  o->aborts++;
  if (r == o->held) {
    llm_sreq_release(r);
    o->held = NULL;
  }
}

typedef struct client_job {
  int port;
  const char *send;        /* bytes to send (NULL: none) */
  size_t send_len;
  double pause_after;      /* seconds to wait after sending before reading */
  int close_early;         /* close after sending, without reading */
  const char *send2;       /* sent after send, gap seconds later (NULL: none) */
  double gap;
  char got[8192];
  size_t got_len, total;   /* total: every byte received, kept or not */
  volatile int done;
} client_job;

static int connect_to(int port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), small = 16384;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* a small window, so a client that does not read is felt soon */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *client_main(void *ud)
{
  client_job *j = ud;
  int fd = connect_to(j->port);
  if (fd >= 0) {
    if (j->send)
      send(fd, j->send, j->send_len, MSG_NOSIGNAL);
    if (j->send2) {
      usleep((useconds_t)(j->gap * 1e6));
      send(fd, j->send2, strlen(j->send2), MSG_NOSIGNAL);
    }
    if (j->pause_after > 0)
      usleep((useconds_t)(j->pause_after * 1e6));
    if (!j->close_early) {
      ssize_t n;
      char sink[65536];
      while (j->got_len < sizeof j->got - 1 &&
             (n = recv(fd, j->got + j->got_len, sizeof j->got - 1 - j->got_len, 0)) > 0) {
        j->got_len += (size_t)n;
        j->total += (size_t)n;
      }
      while ((n = recv(fd, sink, sizeof sink, 0)) > 0)
        j->total += (size_t)n;
    }
    close(fd);
  }
  j->got[j->got_len] = '\0';
  j->done = 1;
  return NULL;
}

/* Runs the loop until the client thread is done (at most 10 s). */
static void run_client(owner *o, client_job *j)
{
  pthread_t th;
  double until = llm_now() + 10;
  j->port = llm_server_port(o->srv);
  if (!j->send_len && j->send)
    j->send_len = strlen(j->send);
  pthread_create(&th, NULL, client_main, j);
  while (!j->done && llm_now() < until)
    llm_loop_run_once(o->loop, 0.01, -1);
  pthread_join(th, NULL);
  /* let the server notice a close */
  for (int i = 0; i < 5; i++)
    llm_loop_run_once(o->loop, 0.005, -1);
}

static owner *start(llm_server_opts *opts)
{
  static owner o;
  char err[256];
  memset(&o, 0, sizeof o);
  o.loop = llm_loop_new();
  opts->on_request = on_request;
  opts->on_abort = on_abort;
  opts->on_drain = on_drain;
  opts->ud = &o;
  o.srv = llm_server_start(o.loop, opts, err, sizeof err);
  CHECK(o.srv != NULL);
  return &o;
}

static void stop(owner *o)
{
  llm_server_free(o->srv);
  llm_loop_free(o->loop);
}

static int count(const char *hay, const char *needle)
{
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static void test_engine(void)
{
  llm_server_opts opts = {0};
  owner *o;
  opts.max_body_bytes = 1000;
  opts.max_header_bytes = 2000;
  opts.header_timeout = 0.3;
  opts.body_timeout = 0.3;
  opts.idle_timeout = 0.5;
  o = start(&opts);
  {
    /* keep-alive + pipelining: three requests in one write, answered in order */
    client_job j = {.send = "GET /a HTTP/1.1\r\nX-Tag: one\r\n\r\n"
                            "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n"};
    run_client(o, &j);
    CHECK_INT(count(j.got, "HTTP/1.1 200 OK"), 3);
    CHECK(strstr(j.got, "GET /a 0: tag=one") != NULL);
    CHECK(strstr(j.got, "POST /b 5:hello") != NULL);
    CHECK(strstr(j.got, "POST /c 3:abc") != NULL);
    CHECK(strstr(j.got, "Connection: close") != NULL);
    CHECK(strstr(j.got, "GET /a") < strstr(j.got, "POST /b"));
  }
  {
    /* a request in two pieces, the second later: a read that got less than
     * it had room for stops there (no recv only to hear EAGAIN), and the
     * rest is read when it comes */
    client_job j = {.send = "POST /late HTTP/1.1\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello",
                    .send2 = " world", .gap = 0.05};
    run_client(o, &j);
    CHECK(strstr(j.got, "POST /late 11:hello world") != NULL);
  }
  {
    client_job j = {.send = "POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"};
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 413", 12) == 0);
    CHECK(strstr(j.got, "\"request_too_large\"") != NULL);
  }
  {
    /* Anthropic's error shape under /v1/messages */
    client_job j = {.send = "POST /v1/messages HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"};
    run_client(o, &j);
    CHECK(strstr(j.got, "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\"") != NULL);
  }
  {
    static char big[3000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    client_job j = {.send = big, .send_len = sizeof big};
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 431", 12) == 0);
  }
  {
    /* a slow client: half a head, then nothing */
    client_job j = {.send = "GET / HTTP/1.1\r\nHost"};
    double t0 = llm_now();
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 408", 12) == 0);
    CHECK(llm_now() - t0 < 2);
  }
  {
    client_job j = {.send = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"};
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 408", 12) == 0);
    CHECK(strstr(j.got, "body took too long") != NULL);
  }
  {
    client_job j = {.send = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
                    .pause_after = 0.05};
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
  }
  {
    client_job j = {.send = "GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n"};
    run_client(o, &j);
    CHECK(strstr(j.got, "Transfer-Encoding: chunked") != NULL);
    CHECK_INT(count(j.got, "9\r\ndata: x\n\n\r\n"), 3);
    CHECK(strstr(j.got, "0\r\n\r\n") != NULL);
  }
  {
    /* back-pressure: a client that reads late holds the writer back (the
     * engine queues about its high-water mark, not the whole answer) and
     * gets everything once it reads */
    client_job j = {.send = "GET /flood HTTP/1.1\r\nConnection: close\r\n\r\n", .pause_after = 0.3};
    run_client(o, &j);
    CHECK(o->flood_first_block > 0);
    CHECK(o->flood_first_block < FLOOD_TOTAL / 2);
    CHECK(o->drains >= 1);
    CHECK(o->flood == NULL);
    CHECK(j.total > FLOOD_TOTAL);
  }
  {
    /* a client that leaves while its request is being answered */
    int before = o->aborts;
    client_job j = {.send = "GET /hold HTTP/1.1\r\n\r\n", .pause_after = 0.05, .close_early = 1};
    run_client(o, &j);
    CHECK_INT(o->aborts, before + 1);
    CHECK(o->held == NULL);
  }
  {
    llm_server_stats st;
    llm_server_get_stats(o->srv, &st);
    CHECK(st.timeouts >= 2);
    CHECK(st.refused_limit >= 3);
    CHECK_INT(st.aborted, 1);
  }
  stop(o);

  /* the connection cap: the client over it gets 503 */
  memset(&opts, 0, sizeof opts);
  opts.max_connections = 1;
  o = start(&opts);
  {
    int first = connect_to(llm_server_port(o->srv));
    client_job j = {.send = "GET / HTTP/1.1\r\n\r\n"};
    for (int i = 0; i < 5; i++)
      llm_loop_run_once(o->loop, 0.005, -1);
    run_client(o, &j);
    CHECK(strncmp(j.got, "HTTP/1.1 503", 12) == 0);
    CHECK(strstr(j.got, "Retry-After: 1") != NULL);
    close(first);
  }
  stop(o);

  /* a body larger than a read: reads that fill their room go on reading */
  memset(&opts, 0, sizeof opts);
  o = start(&opts);
  {
    static char big[100000];
    int head = snprintf(big, sizeof big, "POST /whole HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
                        90000);
    memset(big + head, 'b', 90000);
    {
      client_job j = {.send = big, .send_len = (size_t)head + 90000};
      run_client(o, &j);
      CHECK(strstr(j.got, "POST /whole 90000:bbbb") != NULL);
    }
  }
  stop(o);
}

int main(void)
{
  test_head();
  test_chunked();
  test_engine();
  return check_report("serve");
}
