/* The simulator's faults through libcurl: status faults and their
 * headers, dropped, cut, stalled and malformed responses, fault rates and
 * "fail the first N attempts", the prefix cache and the rate limits. */
#include "sim_client.h"

/* ---- faults ------------------------------------------------------------------------------------ */

static void fault_req(const char *fault, const char *extra_hdr, int stream, resp *r)
{
  char h1[96];
  const char *hdrs[3] = {h1, extra_hdr, NULL};
  snprintf(h1, sizeof h1, "x-sim-fault: %s", fault);
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "Tell me about the weather in some detail.",
                    stream ? "\"stream\":true,\"max_tokens\":8" : "\"max_tokens\":8"),
          hdrs, r);
}

static void test_status_faults(void)
{
  static const struct { const char *fault; long status; const char *type, *ctype; } cases[] = {
    {"429", 429, "requests", "application/json"},
    {"insufficient_quota", 429, "insufficient_quota", "application/json"},
    {"400", 400, "invalid_request_error", "application/json"},
    {"500", 500, "server_error", "application/json"},
    {"502", 502, NULL, "text/html"},
    {"503", 503, "server_error", "application/json"},
    {"529", 529, "overloaded_error", "application/json"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    resp r = {0};
    parsed p;
    fault_req(cases[i].fault, NULL, 0, &r);
    CHECK_INT(r.status, cases[i].status);
    CHECK(header(&r, "content-type") &&
          strncmp(header(&r, "content-type"), cases[i].ctype, strlen(cases[i].ctype)) == 0);
    if (cases[i].type) {
      CHECK(parse(&p, r.body.data, r.body.len) != NULL);
      if (p.root) {
        CHECK_STR(str_at(p.root, "error.type"), cases[i].type);
        json_free(p.doc);
      }
    } else {
      CHECK(r.body.data && strstr(r.body.data, "<html>") != NULL);
    }
    resp_free(&r);
  }
  /* retry headers: defaults, and values from the request */
  {
    resp r = {0};
    fault_req("429", NULL, 0, &r);
    CHECK_STR(header(&r, "retry-after"), "1");
    CHECK(header(&r, "retry-after-ms") == NULL);
    resp_free(&r);
    fault_req("429", "x-sim-retry-after-ms: 1500", 0, &r);
    CHECK_STR(header(&r, "retry-after-ms"), "1500");
    resp_free(&r);
    fault_req("insufficient_quota", NULL, 0, &r);
    CHECK(header(&r, "retry-after") == NULL);
    CHECK(strstr(r.body.data, "\"code\":\"insufficient_quota\"") != NULL);
    resp_free(&r);
    fault_req("500", "x-sim-should-retry: false", 0, &r);
    CHECK_STR(header(&r, "x-should-retry"), "false");
    resp_free(&r);
    fault_req("400", "x-sim-should-retry: true", 0, &r);
    CHECK_STR(header(&r, "x-should-retry"), "true");
    resp_free(&r);
    fault_req("500", "x-sim-error-body: empty", 0, &r);
    CHECK_INT(r.status, 500);
    CHECK_INT(r.body.len, 0);
    resp_free(&r);
  }
  /* the same knobs in the body */
  {
    resp r = {0};
    request("POST", "/v1/chat/completions",
            chat_body("gpt-4o-mini", "x", "\"sim\":{\"fault\":\"429\",\"retry_after\":\"2\","
                                          "\"retry_after_ms\":250}"), NULL, &r);
    CHECK_INT(r.status, 429);
    CHECK_STR(header(&r, "retry-after"), "2");
    CHECK_STR(header(&r, "retry-after-ms"), "250");
    resp_free(&r);
  }
}

static void test_connection_faults(void)
{
  resp r = {0};
  events ev;
  /* nothing at all */
  fault_req("drop_before_headers", NULL, 0, &r);
  CHECK_INT(r.rc, CURLE_GOT_NOTHING);
  resp_free(&r);
  /* headers, then the connection closes */
  fault_req("drop_before_body", NULL, 0, &r);
  CHECK_INT(r.rc, CURLE_PARTIAL_FILE);
  CHECK_INT(r.status, 200);
  CHECK_INT(r.body.len, 0);
  resp_free(&r);
  fault_req("drop_before_body", NULL, 1, &r);
  CHECK(r.rc == CURLE_PARTIAL_FILE || r.rc == CURLE_RECV_ERROR);
  CHECK_INT(r.status, 200);
  CHECK_INT(r.body.len, 0);
  resp_free(&r);
  /* part of the body */
  fault_req("drop_mid_stream", NULL, 0, &r);
  CHECK_INT(r.rc, CURLE_PARTIAL_FILE);
  CHECK(r.body.len > 0);
  resp_free(&r);
  fault_req("drop_mid_stream", "x-sim-fault-after: 2", 1, &r);
  CHECK(r.rc == CURLE_PARTIAL_FILE || r.rc == CURLE_RECV_ERROR);
  split_events(&r.body, &ev);
  CHECK_INT(ev.n, 1 + 2); /* the role chunk (with step 0) and two steps: 3 events */
  CHECK(!ev.done);
  events_free(&ev);
  resp_free(&r);
  /* broken JSON */
  fault_req("malformed_json", NULL, 0, &r);
  CHECK_INT(r.rc, CURLE_OK);
  CHECK_INT(r.status, 200);
  {
    parsed p;
    CHECK(parse(&p, r.body.data, r.body.len) == NULL);
  }
  resp_free(&r);
  fault_req("malformed_json", NULL, 1, &r);
  split_events(&r.body, &ev);
  {
    int broken = 0;
    for (size_t i = 0; i < ev.n; i++) {
      parsed p;
      if (!parse(&p, ev.data[i], strlen(ev.data[i])))
        broken++;
      else
        json_free(p.doc);
    }
    CHECK_INT(broken, 1);
  }
  CHECK(ev.done);
  events_free(&ev);
  resp_free(&r);
  /* an error event mid-stream, then the end, without [DONE] */
  fault_req("error_chunk", NULL, 1, &r);
  CHECK_INT(r.rc, CURLE_OK);
  split_events(&r.body, &ev);
  CHECK(ev.n >= 2 && strncmp(ev.data[ev.n - 1], "{\"error\":{", 10) == 0);
  CHECK(!ev.done);
  events_free(&ev);
  resp_free(&r);
  /* a stall: some events, silence for stall_ms, then the server closes */
  fault_req("stall", "x-sim-stall-ms: 300", 1, &r);
  CHECK(r.rc == CURLE_PARTIAL_FILE || r.rc == CURLE_RECV_ERROR);
  CHECK(r.total_ms >= 300);
  split_events(&r.body, &ev);
  CHECK(ev.n >= 1 && !ev.done);
  events_free(&ev);
  resp_free(&r);
  fault_req("stall", "x-sim-stall-ms: 300", 0, &r);
  CHECK_INT(r.rc, CURLE_PARTIAL_FILE);
  CHECK(r.total_ms >= 300);
  resp_free(&r);
  /* slow headers: nothing for header_delay_ms */
  fault_req("slow_headers", "x-sim-header-delay-ms: 200", 1, &r);
  CHECK_INT(r.rc, CURLE_OK);
  CHECK(r.ttfb_ms >= 200);
  resp_free(&r);
}

/* x-sim-fault-attempts: the first N attempts of a logical request fail */
static void test_fault_attempts(void)
{
  static const char *const idem_a[] = {"x-sim-fault: 503", "x-sim-fault-attempts: 2",
                                       "Idempotency-Key: retry-abc", NULL};
  static const char *const by_body[] = {"x-sim-fault: 429", "x-sim-fault-attempts: 1", NULL};
  long got[4];
  for (int i = 0; i < 3; i++) {
    resp r = {0};
    /* another body each time: the key, not the body, ties the attempts */
    char extra[32];
    snprintf(extra, sizeof extra, "\"seed\":%d", i);
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", extra), idem_a, &r);
    got[i] = r.status;
    resp_free(&r);
  }
  CHECK_INT(got[0], 503);
  CHECK_INT(got[1], 503);
  CHECK_INT(got[2], 200);
  for (int i = 0; i < 2; i++) {
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "same body", NULL), by_body,
            &r);
    got[i] = r.status;
    resp_free(&r);
  }
  CHECK_INT(got[0], 429);
  CHECK_INT(got[1], 200);
}

static void test_fault_rates(void)
{
  sim_config c;
  sim_fault f500, drop;
  sim_stats before, after;
  int errors = 0;
  const int n = 200;
  base_config(&c);
  sim_fault_parse("500", &f500);
  sim_fault_parse("drop", &drop);
  sim_config_add_fault_rate(&c, &f500, 0.3);
  sim_config_add_fault_rate(&c, &drop, 0.2);
  c.seed = 42;
  sim_server_configure(srv, &c);
  stats(&before);
  for (int i = 0; i < n; i++) {
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), NULL, &r);
    errors += r.status == 500 || r.rc == CURLE_GOT_NOTHING;
    resp_free(&r);
  }
  stats(&after);
  /* 50% expected; a binomial(200, 0.5) is inside 35%..65% all but never */
  CHECK(errors > n * 35 / 100 && errors < n * 65 / 100);
  CHECK_INT(after.faults_total - before.faults_total, errors);
  {
    /* a request may opt out */
    static const char *const none[] = {"x-sim-fault: none", NULL};
    int bad = 0;
    for (int i = 0; i < 20; i++) {
      resp r = {0};
      request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), none, &r);
      bad += r.status != 200;
      resp_free(&r);
    }
    CHECK_INT(bad, 0);
  }
  {
    /* the same seed after a reset: the same draws, request for request */
    char seq[2][21];
    for (int round = 0; round < 2; round++) {
      sim_server_reset(srv);
      for (int i = 0; i < 20; i++) {
        resp r = {0};
        request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), NULL, &r);
        seq[round][i] = r.status == 200 ? '.' : r.status == 500 ? '5' : 'd';
        resp_free(&r);
      }
      seq[round][20] = '\0';
    }
    CHECK_STR(seq[1], seq[0]);
    CHECK(strchr(seq[0], '.') && (strchr(seq[0], '5') || strchr(seq[0], 'd')));
  }
  {
    char *js = sim_server_stats_json(srv, NULL);
    parsed p;
    CHECK(js && parse(&p, js, strlen(js)));
    if (p.root) {
      CHECK(num_at(p.root, "faults.500") > 0);
      CHECK(num_at(p.root, "faults.drop_before_headers") > 0);
      json_free(p.doc);
    }
    free(js);
  }
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}

/* ---- prefix cache and rate limits ---------------------------------------------------------------- */

static char *long_prompt(int words, const char *tail)
{
  static const char *const w[] = {"river", "stone", "lantern", "orchard", "copper", "meadow",
                                  "harbor", "violet", "thunder", "saddle"};
  llm_buf b;
  llm_buf_init(&b);
  llm_buf_puts(&b, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"");
  for (int i = 0; i < words; i++)
    llm_buf_printf(&b, "%s%s", i ? " " : "", w[(i * 7 + i / 10) % 10]);
  llm_buf_printf(&b, "\"},{\"role\":\"user\",\"content\":\"%s\"}]}", tail);
  return llm_buf_take(&b, NULL);
}

static double cached_of(const char *body, double *prompt)
{
  resp r = {0};
  parsed p;
  double c = -1;
  request("POST", "/v1/chat/completions", body, NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    c = num_at(p.root, "usage.prompt_tokens_details.cached_tokens");
    *prompt = num_at(p.root, "usage.prompt_tokens");
    json_free(p.doc);
  }
  resp_free(&r);
  return c;
}

static void test_prefix_cache(void)
{
  char *a = long_prompt(3000, "first question"), *b = long_prompt(3000, "another question"),
       *s = long_prompt(20, "short");
  double pa, pb, ps, c;
  sim_config cfg;
  sim_server_reset(srv);
  CHECK(cached_of(a, &pa) == 0);
  CHECK(pa >= 1024);
  c = cached_of(a, &pa); /* the same prompt again */
  CHECK(c >= 1024 && fmod(c, 128) == 0 && c <= pa && pa - c < 128 + 64);
  c = cached_of(b, &pb); /* the same long prefix, another question */
  CHECK(c >= 1024 && fmod(c, 128) == 0 && c < pb);
  CHECK(cached_of(s, &ps) == 0 && cached_of(s, &ps) == 0); /* under 1,024 tokens */
  /* entries expire after cache_ttl_s of inactivity */
  base_config(&cfg);
  cfg.cache_ttl_s = 0.05;
  sim_server_configure(srv, &cfg);
  usleep(100000);
  CHECK(cached_of(a, &pa) == 0);
  sim_config_free(&cfg);
  base_config(&cfg);
  sim_server_configure(srv, &cfg);
  sim_config_free(&cfg);
  free(a);
  free(b);
  free(s);
}

static void test_rate_limit(void)
{
  sim_config c;
  int limited = 0, ok = 0;
  base_config(&c);
  c.rate_rpm = 3;
  sim_server_configure(srv, &c);
  sim_server_reset(srv);
  for (int i = 0; i < 4; i++) {
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), NULL, &r);
    if (r.status == 200) {
      ok++;
      CHECK_STR(header(&r, "x-ratelimit-limit-requests"), "3");
      CHECK(header(&r, "x-ratelimit-remaining-requests") != NULL);
      CHECK(header(&r, "x-ratelimit-reset-requests") != NULL);
    } else if (r.status == 429) {
      limited++;
      CHECK(header(&r, "retry-after") && atoi(header(&r, "retry-after")) >= 1);
      CHECK(header(&r, "retry-after-ms") != NULL);
      CHECK(strstr(r.body.data, "rate_limit_exceeded") != NULL);
    }
    resp_free(&r);
  }
  CHECK_INT(ok, 3);
  CHECK_INT(limited, 1);
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}


int main(void)
{
  sim_test_begin();
  test_status_faults();
  test_connection_faults();
  test_fault_attempts();
  test_fault_rates();
  test_prefix_cache();
  test_rate_limit();
  return sim_test_end("sim_faults");
}
