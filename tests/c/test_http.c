/* The HTTP transfer engine against the scripted server: bodies, headers,
 * keep-alive, every way a connection can fail, timeouts, stalls, and
 * back-pressure on streams. */
#include <stdlib.h>

#include "check.h"
#include "http.h"
#include "mock_http.h"

typedef struct result {
  int done, headers_calls, refuse_first;
  char got[65536];
  size_t got_len;
  double first_chunk_t;
} result;

static void on_done(void *ud, llm_http *h) { (void)h; ((result *)ud)->done++; }
static void on_headers(void *ud, llm_http *h) { (void)h; ((result *)ud)->headers_calls++; }

static int sink(void *ud, const char *data, size_t len, double now)
{
  result *r = ud;
  if (r->refuse_first) { /* back-pressure once: the same bytes must come again */
    r->refuse_first = 0;
    return 0;
  }
  if (r->first_chunk_t == 0)
    r->first_chunk_t = now;
  if (r->got_len + len < sizeof r->got) {
    memcpy(r->got + r->got_len, data, len);
    r->got_len += len;
  }
  return 1;
}

static llm_loop *loop;

/* Runs one transfer to its end; resumes a refused stream as a reader would. */
static llm_http *run(mock_http *m, const char *path, llm_http_request *req, result *r)
{
  char url[128], err[256] = "";
  llm_http *h;
  double give_up;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", m ? mock_http_port(m) : 1, path);
  req->url = url;
  req->on_done = on_done;
  req->on_headers = on_headers;
  req->ud = r;
  h = llm_http_start(loop, req, err, sizeof err);
  if (!h) {
    fprintf(stderr, "start failed: %s\n", err);
    return NULL;
  }
  give_up = llm_now() + 10;
  while (!r->done && llm_now() < give_up) {
    llm_loop_run_once(loop, 0.05, -1);
    llm_http_resume(h);
  }
  return h;
}

static void test_simple_get(void)
{
  mock_http *m = mock_http_start("status 200 OK\nheader X-Request-Id: req_123\n"
                                 "header Content-Type: application/json\nbody {\"ok\":true}\n");
  llm_http_request req = {.method = "GET"};
  result r = {0};
  llm_http *h = run(m, "/v1/models", &req, &r);
  size_t len;
  const char *body = llm_http_body(h, &len);
  llm_http_times t = llm_http_timing(h);
  CHECK_INT(r.done, 1);
  CHECK_INT(r.headers_calls, 1);
  CHECK_INT(llm_http_state(h), LLM_HTTP_DONE);
  CHECK_INT(llm_http_status(h), 200);
  CHECK_STR(llm_http_header(h, "x-request-id"), "req_123");
  CHECK_STR(llm_http_header(h, "content-type"), "application/json");
  CHECK(llm_http_header(h, "X-Request-Id") == NULL); /* names are lower-cased */
  CHECK_MEM(body, len, "{\"ok\":true}", 11);
  CHECK(t.start > 0 && t.start <= t.headers && t.headers <= t.first_byte && t.first_byte <= t.end);
  llm_http_free(h);
  mock_http_stop(m);
}

static void test_post_body_headers_and_keepalive(void)
{
  mock_http *m = mock_http_start("status 200 OK\nbody one\n---\nstatus 201 Created\nbody two\n");
  const char *hdrs[] = {"Content-Type: application/json", "Authorization: Bearer sk-test", NULL};
  llm_http_request req = {.method = "POST", .headers = hdrs, .body = "{\"a\":1}", .body_len = 7};
  result r1 = {0}, r2 = {0};
  llm_http *h1 = run(m, "/v1/chat/completions", &req, &r1);
  llm_http *h2 = run(m, "/v1/chat/completions", &req, &r2);
  char *text = mock_http_request_text(m, 0);
  CHECK_INT(llm_http_status(h1), 200);
  CHECK_INT(llm_http_status(h2), 201);
  CHECK(text && strstr(text, "POST /v1/chat/completions HTTP/1.1\r\n") == text);
  CHECK(text && strstr(text, "\r\n\r\n{\"a\":1}") != NULL);
  CHECK(text && strstr(text, "Authorization: Bearer sk-test\r\n") != NULL);
  CHECK(text && strstr(text, "Expect:") == NULL);
  CHECK_INT(mock_http_connections(m), 1); /* the second request reused it */
  free(text);
  llm_http_free(h1);
  llm_http_free(h2);
  mock_http_stop(m);
}

static void test_failures(void)
{
  static const struct {
    const char *name, *script, *message_part;
    int error;
  } cases[] = {
    {"reset before headers", "reset\n", "curl error", LLM_HTTP_E_TRANSPORT},
    {"closed before headers", "close\n", "curl error 52", LLM_HTTP_E_TRANSPORT},
    {"body cut short", "raw HTTP/1.1 200 OK\\r\\nContent-Length: 100\\r\\n\\r\\nabc\nclose\n",
     "curl error 18", LLM_HTTP_E_TRANSPORT},
    {"garbage status line", "raw XYZ\\r\\n\\r\\n\nclose\n", "curl error", LLM_HTTP_E_TRANSPORT},
    {"slow headers", "sleep 1\nstatus 200\nbody late\n", "curl error 28", LLM_HTTP_E_TIMEOUT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mock_http *m = mock_http_start(cases[i].script);
    llm_http_request req = {.method = "GET", .timeout = 0.3};
    result r = {0};
    llm_http *h = run(m, "/", &req, &r);
    if (llm_http_error(h) != cases[i].error)
      fprintf(stderr, "case '%s': error %d, message %s\n", cases[i].name,
              llm_http_error(h), llm_http_error_message(h));
    CHECK_INT(r.done, 1);
    CHECK_INT(llm_http_state(h), LLM_HTTP_FAILED);
    CHECK_INT(llm_http_error(h), cases[i].error);
    CHECK(strstr(llm_http_error_message(h), cases[i].message_part) != NULL);
    llm_http_free(h);
    mock_http_stop(m);
  }
}

static void test_connection_refused(void)
{
  llm_http_request req = {.method = "GET"};
  result r = {0};
  llm_http *h = run(NULL, "/", &req, &r); /* port 1: nothing listens */
  CHECK_INT(llm_http_error(h), LLM_HTTP_E_TRANSPORT);
  CHECK_INT(llm_http_curl_code(h), 7);
  CHECK(strstr(llm_http_error_message(h), "Couldn't connect") != NULL);
  llm_http_free(h);
}

static void test_stream_chunks_and_pause(void)
{
  mock_http *m = mock_http_start("status 200 OK\nheader Content-Type: text/event-stream\n"
                                 "chunked\nchunk data: one\\n\\n\nsleep 0.05\n"
                                 "chunk data: two\\n\\n\nend\n");
  llm_http_request req = {.method = "POST", .sink = sink};
  result r = {.refuse_first = 1};
  llm_http *h = run(m, "/stream", &req, &r);
  llm_http_times t = llm_http_timing(h);
  CHECK_INT(llm_http_state(h), LLM_HTTP_DONE);
  CHECK_MEM(r.got, r.got_len, "data: one\n\ndata: two\n\n", 22);
  CHECK(r.first_chunk_t >= t.first_byte && r.first_chunk_t < t.end);
  CHECK(t.end - t.first_byte >= 0.04);
  llm_http_free(h);
  mock_http_stop(m);
}

static void test_stream_stall_and_header_timeout(void)
{
  mock_http *m = mock_http_start("status 200 OK\nchunked\nchunk data: partial\\n\\n\nstall\n"
                                 "---\nsleep 2\nstatus 200\nbody late\n");
  llm_http_request req = {.method = "GET", .sink = sink, .stall_timeout = 0.3, .timeout = 0.3};
  result r1 = {0}, r2 = {0};
  llm_http *h = run(m, "/stall", &req, &r1);
  double took;
  CHECK_INT(llm_http_error(h), LLM_HTTP_E_STALLED);
  CHECK(strstr(llm_http_error_message(h), "stalled") != NULL);
  CHECK_MEM(r1.got, r1.got_len, "data: partial\n\n", 15);
  llm_http_free(h);
  took = llm_now();
  h = run(m, "/slow", &req, &r2);
  took = llm_now() - took;
  CHECK_INT(llm_http_error(h), LLM_HTTP_E_TIMEOUT);
  CHECK(strstr(llm_http_error_message(h), "no response headers") != NULL);
  CHECK(took < 1.5);
  llm_http_free(h);
  mock_http_stop(m);
}

static void test_body_cap_and_informational(void)
{
  mock_http *m = mock_http_start("status 200\nbody 0123456789abcdef\n---\n"
                                 "raw HTTP/1.1 100 Continue\\r\\nX-Early: 1\\r\\n\\r\\n"
                                 "HTTP/1.1 200 OK\\r\\nX-Final: 2\\r\\nContent-Length: 2\\r\\n\\r\\nok\n");
  llm_http_request req = {.method = "GET", .max_body = 8};
  result r1 = {0}, r2 = {0};
  llm_http *h = run(m, "/big", &req, &r1);
  CHECK_INT(llm_http_error(h), LLM_HTTP_E_TOO_LARGE);
  llm_http_free(h);
  h = run(m, "/informational", &req, &r2);
  CHECK_INT(llm_http_status(h), 200);
  CHECK(llm_http_header(h, "x-early") == NULL);
  CHECK_STR(llm_http_header(h, "x-final"), "2");
  CHECK_INT(r2.headers_calls, 1);
  llm_http_free(h);
  mock_http_stop(m);
}

static void test_abort(void)
{
  mock_http *m = mock_http_start("sleep 0.5\nstatus 200\nbody x\n");
  llm_http_request req = {.method = "GET", .on_done = on_done};
  result r = {0};
  char url[64], err[128];
  llm_http *h;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", mock_http_port(m));
  req.url = url;
  req.ud = &r;
  h = llm_http_start(loop, &req, err, sizeof err);
  llm_loop_run_once(loop, 0.05, -1);
  llm_http_abort(h);
  CHECK_INT(llm_http_state(h), LLM_HTTP_ABORTED);
  llm_loop_run_once(loop, 0.05, -1);
  CHECK_INT(r.done, 0); /* no notification after an abort */
  llm_http_free(h);
  mock_http_stop(m);
}

/* libcurl re-sends a request on its own when a kept-alive connection
 * turns out dead after the request went out (nothing came back): a POST
 * would reach the server twice behind the caller's back. The transfer
 * must fail instead, after exactly one send, and say so. */
static void test_no_silent_resend_on_dead_reused_connection(void)
{
  mock_http *m = mock_http_start("status 200 OK\nbody warm\n---\nclose\n");
  llm_http_request req = {.method = "POST", .body = "{\"a\":1}", .body_len = 7};
  result r1 = {0}, r2 = {0};
  llm_http *h1 = run(m, "/v1/chat/completions", &req, &r1);
  llm_http *h2 = run(m, "/v1/chat/completions", &req, &r2);
  CHECK_INT(llm_http_status(h1), 200);
  CHECK_INT(r2.done, 1);
  CHECK_INT(llm_http_state(h2), LLM_HTTP_FAILED);
  CHECK_INT(llm_http_error(h2), LLM_HTTP_E_TRANSPORT);
  CHECK_INT(mock_http_requests(m), 2); /* warm-up + one send, no silent re-send */
  CHECK(llm_http_sent(h2));
  CHECK(strstr(llm_http_error_message(h2), "not re-sent") != NULL);
  llm_http_free(h1);
  llm_http_free(h2);
  mock_http_stop(m);
}

/* Only http and https: a file:, dict: or malformed URL never starts. */
static void test_only_http_urls(void)
{
  static const char *const bad[] = {"file:///etc/hostname", "dict://127.0.0.1:1/", "ftp://h/",
                                    "gopher://h/", "http://[::1", "http://a b/", "/relative"};
  llm_http_request req = {.method = "GET", .on_done = on_done};
  char err[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    req.url = bad[i];
    err[0] = '\0';
    CHECK(llm_http_start(loop, &req, err, sizeof err) == NULL);
    CHECK(err[0] != '\0');
    CHECK(llm_http_check_url(bad[i], err, sizeof err) == -1);
  }
  CHECK(llm_http_check_url("http://127.0.0.1:8080/v1", err, sizeof err) == 0);
  CHECK(llm_http_check_url("HTTPS://api.openai.com/v1/chat/completions", err, sizeof err) == 0);
}

/* stall_on_touch: bytes alone (SSE comments) do not keep a transfer
 * alive; only the owner's touches do. */
static void test_stall_counts_touches_not_bytes(void)
{
  mock_http *m = mock_http_start("status 200 OK\nchunked\nrepeat 100 0.05 : keepalive\\n\\n\nend\n");
  llm_http_request req = {.method = "GET", .sink = sink, .stall_timeout = 0.3, .stall_on_touch = 1};
  result r = {0};
  double t0 = llm_now();
  llm_http *h = run(m, "/keepalive", &req, &r);
  CHECK_INT(llm_http_error(h), LLM_HTTP_E_STALLED);
  CHECK(llm_now() - t0 < 2.0); /* the server would go on for 5 s */
  CHECK(r.got_len > 0);        /* bytes did come */
  llm_http_free(h);
  mock_http_stop(m);
}

static llm_http *start_get(mock_http *m, result *r)
{
  llm_http_request req = {.method = "GET", .on_done = on_done, .ud = r};
  char url[64], err[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", mock_http_port(m));
  req.url = url;
  return llm_http_start(loop, &req, err, sizeof err);
}

/* Past the host connection cap, plain-http transfers wait in the loop's
 * FIFO (src/loop.h says why): never more than the cap at the server, in
 * order, a waiting one can be aborted, and a higher cap lets them go. */
static void test_host_cap_waits(void)
{
  mock_http *m = mock_http_start("sleep 0.2\nstatus 200\nbody x\n");
  result r[5] = {{0}};
  llm_http *h[5];
  long before = llm_loop_max_host_connections(loop);
  double give_up;
  int done;
  llm_loop_set_max_host_connections(loop, 2);
  for (int i = 0; i < 5; i++)
    h[i] = start_get(m, &r[i]);
  CHECK_INT(llm_loop_waiting(loop), 3);
  for (int i = 0; i < 3; i++)
    llm_loop_run_once(loop, 0.02, -1);
  CHECK_INT(mock_http_requests(m), 2);
  llm_http_abort(h[3]); /* still waiting: out of the queue, never sent */
  CHECK_INT(llm_loop_waiting(loop), 2);
  give_up = llm_now() + 10;
  do {
    llm_loop_run_once(loop, 0.05, -1);
    done = r[0].done + r[1].done + r[2].done + r[4].done;
  } while (done < 4 && llm_now() < give_up);
  CHECK_INT(done, 4);
  CHECK_INT(r[3].done, 0);
  CHECK_INT(mock_http_requests(m), 4);
  CHECK(mock_http_connections(m) <= 2); /* the waiting ones reused them */
  for (int i = 0; i < 5; i++)
    llm_http_free(h[i]);

  /* a higher cap starts the waiting ones at once */
  llm_loop_set_max_host_connections(loop, 1);
  memset(r, 0, sizeof r);
  for (int i = 0; i < 3; i++)
    h[i] = start_get(m, &r[i]);
  llm_loop_run_once(loop, 0.02, -1);
  CHECK_INT(llm_loop_waiting(loop), 2);
  llm_loop_set_max_host_connections(loop, 3);
  CHECK_INT(llm_loop_waiting(loop), 0);
  give_up = llm_now() + 10;
  while (r[0].done + r[1].done + r[2].done < 3 && llm_now() < give_up)
    llm_loop_run_once(loop, 0.05, -1);
  CHECK_INT(r[0].done + r[1].done + r[2].done, 3);
  CHECK(llm_now() < give_up);
  for (int i = 0; i < 3; i++)
    llm_http_free(h[i]);
  llm_loop_set_max_host_connections(loop, before);
  mock_http_stop(m);
}

int main(void)
{
  loop = llm_loop_new();
  test_simple_get();
  test_post_body_headers_and_keepalive();
  test_failures();
  test_connection_refused();
  test_stream_chunks_and_pause();
  test_stream_stall_and_header_timeout();
  test_body_cap_and_informational();
  test_abort();
  test_no_silent_resend_on_dead_reused_connection();
  test_only_http_urls();
  test_stall_counts_touches_not_bytes();
  test_host_cap_waits();
  llm_loop_free(loop);
  llm_http_pool_drain();
  return check_report("http");
}
