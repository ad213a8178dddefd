/* The simulator's server, driven through libcurl's easy API on loopback:
 * every endpoint and bad input (malformed JSON, wrong content type, body
 * and header limits, unknown paths and models). Checks are about the
 * protocol, not the words: the model behind the server decides the text.
 * Faults: test_sim_faults.c; timing and connections: test_sim_net.c. */
#include "sim_client.h"

/* ---- endpoints ---------------------------------------------------------------------------- */

static void test_models(void)
{
  resp r = {0};
  parsed p;
  request("GET", "/v1/models", NULL, NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK(parse(&p, r.body.data, r.body.len) != NULL);
  if (p.root) {
    const json_value *data = json_get(p.root, "data");
    int saw_extra = 0, saw_zero = 0;
    CHECK_STR(str_at(p.root, "object"), "list");
    for (size_t i = 0; data && i < data->u.array.n; i++) {
      saw_extra |= strcmp(str_at(&data->u.array.items[i], "id"), "extra-model") == 0;
      saw_zero |= strcmp(str_at(&data->u.array.items[i], "id"), "zero") == 0;
      CHECK_STR(str_at(&data->u.array.items[i], "object"), "model");
    }
    CHECK(data && data->u.array.n == 4);
    CHECK(saw_extra && !saw_zero);
    json_free(p.doc);
  }
  resp_free(&r);
  request("GET", "/v1/models/gpt-4o-mini", NULL, NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK(strstr(r.body.data, "\"id\":\"gpt-4o-mini\"") != NULL);
  resp_free(&r);
}

static void test_chat_json(void)
{
  resp r = {0}, r2 = {0}, r3 = {0};
  parsed p, p2, p3;
  const char *body = chat_body("gpt-4o-mini", "What is 2+2?", "\"seed\":7,\"temperature\":0.2");
  request("POST", "/v1/chat/completions", body, NULL, &r);
  CHECK_INT(r.status, 200);
  CHECK(header(&r, "content-type") && strncmp(header(&r, "content-type"), "application/json", 16) == 0);
  CHECK(header(&r, "x-request-id") && strncmp(header(&r, "x-request-id"), "req_", 4) == 0);
  CHECK(header(&r, "openai-processing-ms") != NULL);
  CHECK(header(&r, "x-sim-ttft-ms") != NULL);
  CHECK(parse(&p, r.body.data, r.body.len) != NULL);
  if (!p.root)
    return;
  CHECK_STR(str_at(p.root, "object"), "chat.completion");
  CHECK(str_at(p.root, "id") && strncmp(str_at(p.root, "id"), "chatcmpl-", 9) == 0);
  CHECK_STR(str_at(p.root, "model"), "gpt-4o-mini");
  CHECK_STR(str_at(p.root, "choices.0.message.role"), "assistant");
  CHECK(str_at(p.root, "choices.0.message.content") != NULL);
  CHECK_STR(str_at(p.root, "choices.0.finish_reason"), "stop");
  CHECK(num_at(p.root, "usage.prompt_tokens") > 0);
  CHECK(num_at(p.root, "usage.completion_tokens") > 0);
  CHECK(num_at(p.root, "usage.total_tokens") ==
        num_at(p.root, "usage.prompt_tokens") + num_at(p.root, "usage.completion_tokens"));
  CHECK(num_at(p.root, "usage.prompt_tokens_details.cached_tokens") == 0);
  CHECK(num_at(p.root, "created") > 1.7e9);

  /* the same request answers the same; another prompt answers otherwise */
  request("POST", "/v1/chat/completions", body, NULL, &r2);
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "Name a colour of the sky at dusk.", "\"seed\":7"), NULL, &r3);
  CHECK(parse(&p2, r2.body.data, r2.body.len) && parse(&p3, r3.body.data, r3.body.len));
  if (p2.root && p3.root) {
    CHECK_STR(str_at(p2.root, "choices.0.message.content"),
              str_at(p.root, "choices.0.message.content"));
    CHECK(strcmp(str_at(p3.root, "choices.0.message.content"),
                 str_at(p.root, "choices.0.message.content")) != 0);
    CHECK(strcmp(str_at(p2.root, "id"), str_at(p.root, "id")) != 0);
    json_free(p2.doc);
    json_free(p3.doc);
  }
  json_free(p.doc);
  resp_free(&r);
  resp_free(&r2);
  resp_free(&r3);
}

static void test_chat_options(void)
{
  resp r = {0};
  parsed p;
  /* max_tokens and max_completion_tokens cut the answer: "length" */
  static const char *const limits[] = {"\"max_tokens\":2", "\"max_completion_tokens\":2"};
  for (int i = 0; i < 2; i++) {
    request("POST", "/v1/chat/completions",
            chat_body("gpt-4o-mini", "Tell me a long story about a lighthouse.", limits[i]),
            NULL, &r);
    CHECK_INT(r.status, 200);
    if (parse(&p, r.body.data, r.body.len)) {
      CHECK_STR(str_at(p.root, "choices.0.finish_reason"), "length");
      CHECK_INT((int)num_at(p.root, "usage.completion_tokens"), 2);
      json_free(p.doc);
    } else {
      CHECK(0);
    }
    resp_free(&r);
  }
  /* n choices, each with its index */
  request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "Hello", "\"n\":3"), NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *ch = json_get(p.root, "choices");
    CHECK(ch && ch->u.array.n == 3);
    for (int i = 0; ch && i < 3; i++)
      CHECK_INT((int)num_at(&ch->u.array.items[i], "index"), i);
    json_free(p.doc);
  }
  resp_free(&r);
  /* logprobs: one entry per completion token */
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "Hello", "\"logprobs\":true,\"top_logprobs\":2"), NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *lp = path(p.root, "choices.0.logprobs.content");
    CHECK(lp && lp->type == JSON_ARRAY &&
          (double)lp->u.array.n == num_at(p.root, "usage.completion_tokens"));
    CHECK(lp && num_at(lp, "0.logprob") <= 0);
    json_free(p.doc);
  }
  resp_free(&r);
  /* a stop sequence never appears in the answer */
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "Write three sentences about rivers.", "\"stop\":[\" \"]"),
          NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    CHECK(str_at(p.root, "choices.0.message.content") &&
          strchr(str_at(p.root, "choices.0.message.content"), ' ') == NULL);
    json_free(p.doc);
  }
  resp_free(&r);
  /* content as an array of parts */
  request("POST", "/v1/chat/completions",
          "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
          "\"text\",\"text\":\"Hi \"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
          "{\"type\":\"text\",\"text\":\"there\"}]}]}", NULL, &r);
  CHECK_INT(r.status, 200);
  resp_free(&r);
}

static void test_chat_stream(void)
{
  static const char *const variants[] = {
    "\"stream\":true,\"seed\":3",
    "\"stream\":true,\"seed\":3,\"stream_options\":{\"include_usage\":true}",
  };
  resp plain = {0};
  parsed pp;
  const char *want;
  request("POST", "/v1/chat/completions",
          chat_body("gpt-4o-mini", "Describe the sea.", "\"seed\":3"), NULL, &plain);
  CHECK(parse(&pp, plain.body.data, plain.body.len) != NULL);
  if (!pp.root)
    return;
  want = str_at(pp.root, "choices.0.message.content");
  for (int v = 0; v < 2; v++) {
    resp r = {0};
    events ev;
    llm_buf text;
    const char *finish;
    int nulls, deltas;
    parsed usage = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "Describe the sea.",
                                                      variants[v]), NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(r.rc, CURLE_OK);
    CHECK(header(&r, "content-type") &&
          strncmp(header(&r, "content-type"), "text/event-stream", 17) == 0);
    split_events(&r.body, &ev);
    CHECK(ev.done);
    CHECK(ev.n >= 3);
    CHECK(ev.n > 0 && strstr(ev.data[0], "\"role\":\"assistant\"") != NULL);
    llm_buf_init(&text);
    deltas = stream_text(&ev, 0, &text, &finish, &nulls, &usage);
    CHECK_STR(text.data ? text.data : "", want);
    CHECK_STR(finish, "stop");
    CHECK_INT(deltas, (int)num_at(pp.root, "usage.completion_tokens"));
    if (v == 1) {
      /* every chunk but the last has usage:null; the last has choices:[] */
      CHECK_INT(nulls, (int)ev.n - 1);
      CHECK(usage.root != NULL);
      if (usage.root) {
        const json_value *ch = json_get(usage.root, "choices");
        CHECK(ch && ch->type == JSON_ARRAY && ch->u.array.n == 0);
        CHECK(num_at(usage.root, "usage.completion_tokens") ==
              num_at(pp.root, "usage.completion_tokens"));
        CHECK(num_at(usage.root, "usage.prompt_tokens") == num_at(pp.root, "usage.prompt_tokens"));
        json_free(usage.doc);
      }
      CHECK(strstr(ev.data[ev.n - 1], "\"choices\":[]") != NULL);
    } else {
      CHECK(strstr(r.body.data, "\"usage\"") == NULL);
    }
    llm_buf_free(&text);
    events_free(&ev);
    resp_free(&r);
  }
  /* n=2 streams: both indexes finish; max_tokens gives "length" */
  {
    resp r = {0};
    events ev;
    llm_buf t0, t1;
    const char *f0, *f1;
    request("POST", "/v1/chat/completions",
            chat_body("gpt-4o-mini", "Describe the sea at length.",
                      "\"stream\":true,\"n\":2,\"max_tokens\":3"), NULL, &r);
    split_events(&r.body, &ev);
    llm_buf_init(&t0);
    llm_buf_init(&t1);
    CHECK_INT(stream_text(&ev, 0, &t0, &f0, NULL, NULL), 3);
    CHECK_STR(f0, "length");
    CHECK_INT(stream_text(&ev, 1, &t1, &f1, NULL, NULL), 3);
    CHECK_STR(f1, "length");
    CHECK(ev.done);
    llm_buf_free(&t0);
    llm_buf_free(&t1);
    events_free(&ev);
    resp_free(&r);
  }
  json_free(pp.doc);
  resp_free(&plain);
}

static void test_embeddings(void)
{
  resp r = {0};
  parsed p;
  float vec[8];
  double dot = 0, n1 = 0, n2 = 0;
  request("POST", "/v1/embeddings",
          "{\"model\":\"text-embedding-3-small\",\"input\":\"the cat sat on the mat\"}", NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *e = path(p.root, "data.0.embedding");
    double norm = 0;
    CHECK_STR(str_at(p.root, "object"), "list");
    CHECK_STR(str_at(p.root, "data.0.object"), "embedding");
    CHECK(e && e->type == JSON_ARRAY && e->u.array.n > 100);
    for (size_t i = 0; e && i < e->u.array.n; i++)
      norm += e->u.array.items[i].u.number.value * e->u.array.items[i].u.number.value;
    CHECK(fabs(norm - 1) < 1e-3);
    CHECK(num_at(p.root, "usage.prompt_tokens") > 0);
    CHECK(num_at(p.root, "usage.total_tokens") == num_at(p.root, "usage.prompt_tokens"));
    json_free(p.doc);
  }
  resp_free(&r);

  /* dimensions and several inputs; similar texts are closer */
  request("POST", "/v1/embeddings",
          "{\"model\":\"text-embedding-3-small\",\"dimensions\":64,\"input\":[\"the cat sat on "
          "the mat\",\"the cat sat on a mat\",\"quarterly revenue grew five percent\"]}",
          NULL, &r);
  CHECK_INT(r.status, 200);
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *a = path(p.root, "data.0.embedding"), *b = path(p.root, "data.1.embedding"),
                     *c = path(p.root, "data.2.embedding");
    double ab = 0, ac = 0;
    CHECK(a && b && c && a->u.array.n == 64 && c->u.array.n == 64);
    CHECK_INT((int)num_at(p.root, "data.2.index"), 2);
    for (size_t i = 0; a && b && c && i < 64; i++) {
      ab += a->u.array.items[i].u.number.value * b->u.array.items[i].u.number.value;
      ac += a->u.array.items[i].u.number.value * c->u.array.items[i].u.number.value;
    }
    CHECK(ab > ac);
    json_free(p.doc);
  }
  resp_free(&r);

  /* base64 carries the same float32 values, little-endian */
  request("POST", "/v1/embeddings",
          "{\"model\":\"text-embedding-3-small\",\"dimensions\":8,\"input\":\"hello\","
          "\"encoding_format\":\"base64\"}", NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    const char *b64 = str_at(p.root, "data.0.embedding");
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char bytes[32];
    size_t nb = 0;
    CHECK(b64 && strlen(b64) == 44);
    for (size_t i = 0; b64 && i + 4 <= strlen(b64); i += 4) {
      unsigned v = 0;
      int pad = 0;
      for (int k = 0; k < 4; k++) {
        const char *q = strchr(tab, b64[i + k]);
        if (b64[i + k] == '=')
          pad++;
        v = v << 6 | (q && b64[i + k] != '=' ? (unsigned)(q - tab) : 0);
      }
      for (int k = 0; k < 3 - pad && nb < sizeof bytes; k++)
        bytes[nb++] = (unsigned char)(v >> (16 - 8 * k));
    }
    CHECK_INT(nb, 32);
    memcpy(vec, bytes, sizeof vec);
    json_free(p.doc);
  }
  resp_free(&r);
  request("POST", "/v1/embeddings",
          "{\"model\":\"text-embedding-3-small\",\"dimensions\":8,\"input\":\"hello\"}", NULL, &r);
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *e = path(p.root, "data.0.embedding");
    for (int i = 0; e && i < 8; i++) {
      double f = e->u.array.items[i].u.number.value;
      dot += f * vec[i];
      n1 += f * f;
      n2 += (double)vec[i] * vec[i];
      CHECK(fabs(f - vec[i]) < 1e-6);
    }
    CHECK(fabs(dot - 1) < 1e-5 && fabs(n1 - 1) < 1e-5 && fabs(n2 - 1) < 1e-5);
    json_free(p.doc);
  }
  resp_free(&r);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void expect_error(const char *method, const char *urlpath, const char *body,
                         const char *const *hdrs, long status, const char *param,
                         const char *fragment)
{
  resp r = {0};
  parsed p;
  request(method, urlpath, body, hdrs, &r);
  if (r.status != status)
    check_fail(__FILE__, __LINE__, "%s %s: status %ld, want %ld (%s)", method, urlpath,
               r.status, status, r.body.data ? r.body.data : "");
  else
    check_passed++;
  if (parse(&p, r.body.data, r.body.len)) {
    const json_value *e = json_get(p.root, "error");
    CHECK(e && str_at(e, "message") && str_at(e, "type"));
    CHECK(json_get(e, "param") && json_get(e, "code")); /* present, maybe null */
    if (param)
      CHECK_STR(str_at(e, "param"), param);
    if (fragment && !(str_at(e, "message") && strstr(str_at(e, "message"), fragment)))
      check_fail(__FILE__, __LINE__, "message lacks '%s': %s", fragment, r.body.data);
    json_free(p.doc);
  } else {
    check_fail(__FILE__, __LINE__, "error body is not JSON: %s", r.body.data);
  }
  CHECK(header(&r, "x-request-id") != NULL);
  resp_free(&r);
}

static void test_bad_input(void)
{
  static const char *const text_plain[] = {"Content-Type: text/plain", NULL};
  static const char *const bad_knob[] = {"x-sim-ttft-ms: soon", NULL};
  static const char *const bad_fault[] = {"x-sim-fault: meteor", NULL};
  expect_error("POST", "/v1/chat/completions", "{\"model\":", NULL, 400, NULL, "parse the JSON");
  expect_error("POST", "/v1/chat/completions", "[1,2]", NULL, 400, NULL, "JSON object");
  expect_error("POST", "/v1/chat/completions", "{\"model\":\"gpt-4o-mini\"}", NULL, 400,
               "messages", "'messages'");
  expect_error("POST", "/v1/chat/completions", "{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
               NULL, 400, "messages", "empty array");
  expect_error("POST", "/v1/chat/completions",
               "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
               NULL, 400, "messages[0]", "robot");
  expect_error("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               NULL, 400, "model", "model");
  expect_error("POST", "/v1/chat/completions",
               chat_body("gpt-4o-mini", "x", "\"stream_options\":{\"include_usage\":true}"), NULL,
               400, "stream_options", "stream");
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", "\"n\":0"), NULL,
               400, "n", NULL);
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", "\"temperature\":3"),
               NULL, 400, "temperature", NULL);
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), text_plain,
               415, NULL, "Content-Type");
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), bad_knob,
               400, "ttft_ms", "x-sim-ttft-ms");
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), bad_fault,
               400, "sim.fault", "meteor");
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", "\"sim\":{\"ttft\":1}"),
               NULL, 400, "sim", "sim.ttft");
  expect_error("POST", "/v1/nothing", "{}", NULL, 404, NULL, "Invalid URL (POST /v1/nothing)");
  expect_error("GET", "/v1/chat/completions", NULL, NULL, 405, NULL, "POST");
  expect_error("POST", "/v1/embeddings", "{\"model\":\"text-embedding-3-small\"}", NULL, 400,
               "input", NULL);
  expect_error("POST", "/v1/embeddings",
               "{\"model\":\"text-embedding-3-small\",\"input\":\"x\",\"dimensions\":0}", NULL, 400,
               "dimensions", NULL);
  expect_error("POST", "/v1/embeddings",
               "{\"model\":\"text-embedding-3-small\",\"input\":\"x\",\"encoding_format\":\"hex\"}",
               NULL, 400, "encoding_format", NULL);
  expect_error("POST", "/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":[\"\"]}",
               NULL, 400, "input", NULL);

  /* a request head over the 8 KiB pool: MHD's own 431, then all is well */
  {
    static char big[9100];
    const char *hdrs[] = {big, NULL};
    resp r = {0};
    memcpy(big, "x-big: ", 7);
    memset(big + 7, 'a', 9000);
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), hdrs, &r);
    CHECK_INT(r.status, 431);
    resp_free(&r);
    memset(big + 7, 'a', 4000); /* 4 KB of headers are fine */
    big[4007] = '\0';
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), hdrs, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
  }
  /* the server is still fine, and answers content types with parameters */
  {
    static const char *const charset[] = {"Content-Type: application/json; charset=utf-8", NULL};
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini", "x", NULL), charset, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
  }
}

static size_t read_zeros(char *buf, size_t sz, size_t n, void *ud)
{
  size_t *left = ud, k = sz * n < *left ? sz * n : *left;
  memset(buf, ' ', k);
  *left -= k;
  return k;
}

static void test_body_limit(void)
{
  sim_config c;
  char *big;
  size_t n = 5000;
  base_config(&c);
  c.max_body_bytes = 4096;
  sim_server_configure(srv, &c);
  big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"a\":1}", 7);
  big[n] = '\0';
  /* with a Content-Length: refused before the body is read */
  expect_error("POST", "/v1/chat/completions", big, NULL, 413, NULL, "4096");
  /* chunked, no length: refused once the limit is crossed */
  {
    CURL *h = curl_easy_init();
    struct curl_slist *sl = NULL;
    char url[256];
    size_t left = 100000;
    long status = 0;
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    sl = curl_slist_append(sl, "Content-Type: application/json");
    sl = curl_slist_append(sl, "Transfer-Encoding: chunked");
    sl = curl_slist_append(sl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_zeros);
    curl_easy_setopt(h, CURLOPT_READDATA, &left);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    {
      resp r = {0};
      llm_buf_init(&r.body);
      llm_buf_init(&r.hdrs);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
      curl_easy_perform(h);
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      /* curl may see the reset while still sending; when it read the
       * answer it must be the 413 */
      CHECK(status == 413 || status == 0);
      if (status == 413)
        CHECK(r.body.data && strstr(r.body.data, "request_too_large"));
      resp_free(&r);
    }
    curl_slist_free_all(sl);
    curl_easy_cleanup(h);
  }
  free(big);
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}

static void test_strict(void)
{
  sim_config c;
  base_config(&c);
  c.strict = 1;
  sim_config_add_profile(&c, "claude-", 100, 50, 0);
  sim_server_configure(srv, &c);
  expect_error("POST", "/v1/chat/completions", chat_body("gpt-9-imaginary", "x", NULL), NULL,
               404, NULL, "gpt-9-imaginary");
  expect_error("POST", "/v1/embeddings", "{\"model\":\"embed-9\",\"input\":\"x\"}", NULL, 404,
               NULL, "embed-9");
  expect_error("GET", "/v1/models/gpt-9-imaginary", NULL, NULL, 404, "model", NULL);
  {
    resp r = {0};
    request("POST", "/v1/chat/completions", chat_body("extra-model", "x", NULL), NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    /* a dated name is known through its profile's prefix, as is a
     * "family-" prefix entry, which itself is no model id */
    request("POST", "/v1/chat/completions", chat_body("gpt-4o-mini-2024-07-18", "x", NULL), NULL,
            &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    request("POST", "/v1/chat/completions", chat_body("claude-haiku-9", "x", NULL), NULL, &r);
    CHECK_INT(r.status, 200);
    resp_free(&r);
    request("GET", "/v1/models", NULL, NULL, &r);
    CHECK(r.body.data && strstr(r.body.data, "\"claude-\"") == NULL);
    resp_free(&r);
  }
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}


int main(void)
{
  sim_test_begin();
  test_models();
  test_chat_json();
  test_chat_options();
  test_chat_stream();
  test_embeddings();
  test_bad_input();
  test_body_limit();
  test_strict();
  return sim_test_end("sim");
}
