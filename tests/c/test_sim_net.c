/* The simulator's timing and connections: latency profiles and per
 * request knobs, TTFT accuracy against what the server says it applied,
 * clients that disconnect, keep-alive, many idle connections, a stop with
 * streams in flight (run under ASan for leaks), loopback-only binding. */
#include "sim_client.h"

/* ---- latency --------------------------------------------------------------------------- */

/* Profiles and per-request knobs set the planned delays exactly; the
 * applied ones are never early. (Precision is test_ttft_accuracy's job:
 * single requests here include connecting, and bounds stay loose for
 * loaded machines.) */
static void test_latency(void)
{
  static const char *const ttft_hdr[] = {"x-sim-ttft-ms: 80", NULL};
  static const char *const zero_hdr[] = {"x-sim-profile: zero", NULL};
  resp r = {0};
  double applied;
  /* the profile: 150 ms, then 100 tokens/s */
  request("POST", "/v1/chat/completions",
          chat_body("slow-model", "Count to ten.", "\"stream\":true,\"max_tokens\":11"), NULL, &r);
  CHECK_STR(header(&r, "x-sim-profile"), "slow-model");
  CHECK_STR(header(&r, "x-sim-ttft-planned-ms"), "150.000");
  applied = header(&r, "x-sim-ttft-ms") ? atof(header(&r, "x-sim-ttft-ms")) : -1;
  CHECK(applied >= 150 && applied < 400);
  CHECK(r.ttfb_ms >= applied - 0.5);
  CHECK(r.total_ms >= 150 + 10 * 10 - 1); /* 11 tokens: 10 gaps of 10 ms */
  resp_free(&r);
  /* per request: a header, and the body's sim object */
  request("POST", "/v1/chat/completions", chat_body("slow-model", "x", "\"stream\":true"),
          ttft_hdr, &r);
  CHECK_STR(header(&r, "x-sim-ttft-planned-ms"), "80.000");
  applied = atof(header(&r, "x-sim-ttft-ms") ? header(&r, "x-sim-ttft-ms") : "-1");
  CHECK(applied >= 80 && applied < 330);
  resp_free(&r);
  request("POST", "/v1/chat/completions",
          chat_body("slow-model", "x", "\"sim\":{\"ttft_ms\":30,\"tokens_per_s\":0}"), NULL, &r);
  CHECK(r.total_ms >= 30 && r.total_ms < 1000);
  CHECK_STR(header(&r, "x-sim-ttft-ms"), "30.000"); /* JSON responses: the plan */
  resp_free(&r);
  request("POST", "/v1/chat/completions", chat_body("slow-model", "x", NULL), zero_hdr, &r);
  CHECK_STR(header(&r, "x-sim-ttft-ms"), "0.000");
  CHECK_STR(header(&r, "x-sim-profile"), "zero");
  CHECK(r.total_ms < 1000);
  resp_free(&r);
}

/* Prefill time grows the TTFT with the prompt beyond 1,000 tokens, less
 * what the prefix cache serves; model names match lower-case and without
 * a provider prefix. */
static void test_prefill_and_names(void)
{
  sim_config c;
  sim_profile *p;
  llm_buf body;
  resp r = {0};
  parsed pj;
  double planned1, planned2, prompt = 0, cached = 0;
  base_config(&c);
  p = sim_config_add_profile(&c, "prefill-model", 10, 0, 0);
  p->prefill_ms_per_1k = 100;
  sim_server_configure(srv, &c);
  sim_server_reset(srv);
  llm_buf_init(&body);
  llm_buf_puts(&body, "{\"model\":\"sim/Prefill-Model-2025\",\"stream\":true,"
                 "\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
                 "\"content\":\"");
  for (int i = 0; i < 2500; i++)
    llm_buf_puts(&body, i % 2 ? "lantern " : "orchard ");
  llm_buf_puts(&body, "\"}]}");
  for (int round = 0; round < 2; round++) {
    events ev;
    request("POST", "/v1/chat/completions", body.data, NULL, &r);
    CHECK_STR(header(&r, "x-sim-profile"), "prefill-model");
    split_events(&r.body, &ev);
    if (ev.n > 0 && parse(&pj, ev.data[ev.n - 1], strlen(ev.data[ev.n - 1]))) {
      prompt = num_at(pj.root, "usage.prompt_tokens");
      cached = num_at(pj.root, "usage.prompt_tokens_details.cached_tokens");
      json_free(pj.doc);
    }
    if (round == 0) {
      planned1 = atof(header(&r, "x-sim-ttft-planned-ms") ? header(&r, "x-sim-ttft-planned-ms") : "0");
      CHECK(prompt > 2000);
      CHECK(fabs(planned1 - (10 + 100 * (prompt - 1000) / 1000)) < 0.01);
    } else {
      planned2 = atof(header(&r, "x-sim-ttft-planned-ms") ? header(&r, "x-sim-ttft-planned-ms") : "0");
      CHECK(cached >= 1024);
      CHECK(fabs(planned2 - (10 + 100 * fmax(0, prompt - cached - 1000) / 1000)) < 0.01);
      CHECK(planned2 < planned1);
    }
    events_free(&ev);
    resp_free(&r);
  }
  llm_buf_free(&body);
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Over many streams on one keep-alive connection, what the client sees
 * as its time to first byte matches what the server says it applied
 * (x-sim-ttft-ms), and the server applies what it planned within its
 * timer's precision (x-sim-ttft-planned-ms). Medians, not means: a shared
 * CI machine may pause any one call, or the server thread, for a while.
 * A busy machine (other builds, under the sanitizers) can slow a whole
 * round of 40 streams, so a round over the bounds is measured again, up
 * to three rounds: a real delay in the server or the client is in every
 * round, and an early byte fails any round. */
typedef struct ttft_round {
  int ok;
  double diff_median, diff_worst, late_median, late_min;
} ttft_round;

static ttft_round ttft_measure(void)
{
  static const char *const hdrs[] = {"x-sim-ttft-ms: 20", NULL};
  enum { N = 40 };
  CURL *h = curl_easy_init();
  double diff[N], late[N];
  ttft_round t = {0};
  sim_server_reset(srv);
  for (int i = 0; i < N; i++) {
    resp r = {0};
    request_on(h, "POST", "/v1/chat/completions",
               chat_body("gpt-4o-mini", "x", "\"stream\":true,\"max_tokens\":2"), hdrs, 0, &r);
    if (i > 0 && header(&r, "x-sim-ttft-ms") && header(&r, "x-sim-ttft-planned-ms")) {
      double applied = atof(header(&r, "x-sim-ttft-ms"));
      late[t.ok] = applied - atof(header(&r, "x-sim-ttft-planned-ms"));
      diff[t.ok++] = fabs(r.ttfb_ms - applied); /* the first request also connected */
    }
    resp_free(&r);
  }
  curl_easy_cleanup(h);
  CHECK_INT(t.ok, N - 1);
  if (t.ok == 0)
    return t;
  qsort(diff, (size_t)t.ok, sizeof *diff, cmp_double);
  qsort(late, (size_t)t.ok, sizeof *late, cmp_double);
  t.diff_median = diff[t.ok / 2];
  t.diff_worst = diff[t.ok - 1];
  t.late_median = late[t.ok / 2];
  t.late_min = late[0];
  return t;
}

static void test_ttft_accuracy(void)
{
  ttft_round t;
  sim_stats st;
  for (int round = 1;; round++) {
    t = ttft_measure();
    stats(&st);
    printf("ttft (round %d): client vs applied over %d streams: median |diff| %.3f ms, worst "
           "%.3f ms; server lateness: median %.3f ms, mean %.3f ms, max %.3f ms\n", round, t.ok,
           t.diff_median, t.diff_worst, t.late_median, st.ttft_late_mean_ms, st.ttft_late_max_ms);
    CHECK(t.late_min >= 0); /* never early, in any round */
    if ((t.diff_median < 1.0 && t.late_median < 1.0) || round == 3)
      break;
  }
  CHECK(t.diff_median < 1.0);
  CHECK(t.late_median < 1.0); /* not rounded to milliseconds or worse */
}

/* ---- connections ------------------------------------------------------------------------- */

static void wait_open(uint64_t want, int ms)
{
  sim_stats st;
  for (int i = 0; i < ms; i++) {
    stats(&st);
    if (st.connections_open == want)
      return;
    usleep(1000);
  }
  stats(&st);
  CHECK_INT(st.connections_open, want);
}

static void test_disconnect_mid_stream(void)
{
  static const char *const slow[] = {"x-sim-tokens-per-s: 20", "x-sim-ttft-ms: 0", NULL};
  sim_stats before, after;
  resp r = {0};
  wait_open(0, 2000); /* earlier requests are completed, so the counts settle */
  stats(&before);
  r.abort_after = 1; /* gone after the first bytes of the body */
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "A long answer, please.", "\"stream\":true"), slow, &r);
  CHECK_INT(r.rc, CURLE_WRITE_ERROR);
  resp_free(&r);
  wait_open(0, 2000);
  stats(&after);
  CHECK_INT(after.client_disconnects - before.client_disconnects, 1);
  CHECK_INT(after.streams_completed, before.streams_completed);
  /* and a client that times out during the TTFT */
  {
    CURL *h = curl_easy_init();
    static const char *const wait_long[] = {"x-sim-ttft-ms: 5000", NULL};
    request_on(h, "POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", "\"stream\":true"),
               wait_long, 100, &r);
    CHECK_INT(r.rc, CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(h);
    resp_free(&r);
    wait_open(0, 2000);
  }
  request("GET", "/sim/stats", NULL, NULL, &r);
  CHECK_INT(r.status, 200);
  resp_free(&r);
}

static void test_keep_alive(void)
{
  CURL *h = curl_easy_init();
  resp r1 = {0}, r2 = {0};
  request_on(h, "POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), NULL, 0, &r1);
  request_on(h, "POST", "/v1/chat/completions",
             chat_body("gpt-4o-mini", "x", "\"stream\":true"), NULL, 0, &r2);
  CHECK_INT(r1.new_conns, 1);
  CHECK_INT(r2.new_conns, 0); /* the second reused the connection */
  resp_free(&r1);
  resp_free(&r2);
  curl_easy_cleanup(h);
  wait_open(0, 2000);
}

static void test_idle_connections(void)
{
  enum { N = 2000 };
  static int fds[N];
  struct sockaddr_in a;
  sim_stats st;
  int opened = 0;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)sim_server_port(srv));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < N; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0)
      opened++;
  }
  CHECK_INT(opened, N);
  wait_open(N, 3000);
  stats(&st);
  CHECK(st.connections_peak >= N);
  {
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", "\"stream\":true"),
            NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
  }
  for (int i = 0; i < N; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  wait_open(0, 3000);
}

/* Stopping with streams waiting (suspended) and connections idle must
 * close everything and leak nothing. */
static void test_stop_in_flight(void)
{
  static const char *const hdrs[] = {"x-sim-ttft-ms: 10000", "Content-Type: application/json",
                                     NULL};
  CURLM *m = curl_multi_init();
  CURL *e[3];
  struct curl_slist *sl = NULL;
  resp r[3];
  char url[256];
  int running = 1;
  double t0;
  struct timespec ts;
  sim_config c;
  for (int i = 0; hdrs[i]; i++)
    sl = curl_slist_append(sl, hdrs[i]);
  snprintf(url, sizeof url, "%s/v1/chat/completions", base);
  for (int i = 0; i < 3; i++) {
    memset(&r[i], 0, sizeof r[i]);
    llm_buf_init(&r[i].body);
    llm_buf_init(&r[i].hdrs);
    e[i] = curl_easy_init();
    curl_easy_setopt(e[i], CURLOPT_URL, url);
    curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e[i], CURLOPT_COPYPOSTFIELDS,
                     chat_body("gpt-4o-mini", "x", i == 2 ? "\"stream\":false" : "\"stream\":true"));
    curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &r[i]);
    curl_multi_add_handle(m, e[i]);
  }
  for (int i = 0; i < 30; i++) { /* let the requests arrive and wait */
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 10, NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t0 = ts.tv_sec + ts.tv_nsec * 1e-9;
  sim_server_stop(srv);
  srv = NULL;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  CHECK(ts.tv_sec + ts.tv_nsec * 1e-9 - t0 < 1.0); /* did not wait for the 10 s */
  for (int i = 0; i < 200 && running; i++) {
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 10, NULL);
  }
  CHECK_INT(running, 0);
  for (int i = 0; i < 3; i++) {
    long status = 0;
    curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status);
    CHECK(status == 0); /* no response came */
    curl_multi_remove_handle(m, e[i]);
    curl_easy_cleanup(e[i]);
    resp_free(&r[i]);
  }
  curl_slist_free_all(sl);
  curl_multi_cleanup(m);
  base_config(&c);
  restart(&c);
  sim_config_free(&c);
}

static void test_loopback_only(void)
{
  char err[256];
  sim_options o = {0};
  sim_server *s;
  o.host = "0.0.0.0";
  s = sim_server_start(&o, NULL, err, sizeof err);
  CHECK(s == NULL && strstr(err, "loopback") != NULL);
  o.host = "::1";
  s = sim_server_start(&o, NULL, err, sizeof err);
  if (s) { /* IPv6 may be off in a container */
    CHECK(strncmp(sim_server_url(s), "http://[::1]:", 13) == 0);
    sim_server_stop(s);
  }
  o.host = "127.0.0.1";
  o.port = sim_server_port(srv); /* taken */
  s = sim_server_start(&o, NULL, err, sizeof err);
  CHECK(s == NULL && strstr(err, "cannot listen") != NULL);
}


int main(void)
{
  sim_test_begin();
  test_latency();
  test_prefill_and_names();
  test_ttft_accuracy();
  test_disconnect_mid_stream();
  test_keep_alive();
  test_idle_connections();
  test_stop_in_flight();
  test_loopback_only();
  return sim_test_end("sim_net");
}
