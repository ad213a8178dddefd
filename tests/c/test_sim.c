/* The simulator's server, driven through libcurl's easy API on loopback:
 * every endpoint, every fault, bad input, latency accuracy, the prefix
 * cache, rate limits, disconnecting clients, idle connections, and a stop
 * with streams in flight (run under ASan for leaks).
 *
 * Checks are about the protocol, not the words: the model behind the
 * server (sim_model.h) decides the text. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "json.h"
#include "sim.h"

static sim_server *srv;
static char base[128];

/* ---- a tiny client ------------------------------------------------------------------ */

typedef struct resp {
  CURLcode rc;
  long status;
  json_buf body, hdrs;
  double ttfb_ms, total_ms;
  long new_conns;
  size_t abort_after; /* > 0: fail the write once this many body bytes came */
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  jb_put(&r->body, p, sz * n);
  if (r->abort_after && r->body.len >= r->abort_after)
    return 0; /* the client walks away */
  return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  jb_put(&r->hdrs, p, sz * n);
  return sz * n;
}

static void resp_free(resp *r)
{
  jb_free(&r->body);
  jb_free(&r->hdrs);
}

/* Value of a response header (case-insensitive), or NULL. */
static const char *header(resp *r, const char *name)
{
  static char val[256];
  const char *p = r->hdrs.data;
  size_t n = strlen(name);
  while (p && *p) {
    const char *eol = strstr(p, "\r\n");
    if (!eol)
      break;
    if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ')
        v++;
      snprintf(val, sizeof val, "%.*s", (int)(eol - v), v);
      return val;
    }
    p = eol + 2;
  }
  return NULL;
}

/* method: "GET" or "POST" (body != NULL). hdrs: NULL-terminated. */
static void request_on(CURL *h, const char *method, const char *path, const char *body,
                       const char *const *hdrs, long timeout_ms, resp *r)
{
  struct curl_slist *sl = NULL;
  char url[256];
  curl_off_t t1 = 0, t2 = 0;
  memset(r, 0, sizeof *r - sizeof r->abort_after);
  jb_init(&r->body);
  jb_init(&r->hdrs);
  snprintf(url, sizeof url, "%s%s", base, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 20000L);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  sl = curl_slist_append(sl, "Expect:");
  if (body && !(hdrs && hdrs[0] && strncasecmp(hdrs[0], "content-type", 12) == 0))
    sl = curl_slist_append(sl, "Content-Type: application/json");
  for (size_t i = 0; hdrs && hdrs[i]; i++)
    sl = curl_slist_append(sl, hdrs[i]);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
  r->rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &t1);
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &t2);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->new_conns);
  r->ttfb_ms = (double)t1 / 1000.0;
  r->total_ms = (double)t2 / 1000.0;
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(sl);
}

static void request(const char *method, const char *path, const char *body,
                    const char *const *hdrs, resp *r)
{
  CURL *h = curl_easy_init();
  size_t abort_after = r->abort_after;
  r->abort_after = abort_after;
  request_on(h, method, path, body, hdrs, 0, r);
  r->abort_after = abort_after;
  curl_easy_cleanup(h);
}

/* ---- JSON and SSE helpers ---------------------------------------------------------------- */

typedef struct parsed {
  json_doc *doc;
  const json_value *root;
} parsed;

static const json_value *parse(parsed *p, const char *s, size_t n)
{
  json_error err;
  p->root = json_parse(s ? s : "", n, &p->doc, &err);
  return p->root;
}

/* Walks "a.b.0.c" through objects and arrays. */
static const json_value *path(const json_value *v, const char *dotted)
{
  char key[64];
  while (v && *dotted) {
    size_t n = strcspn(dotted, ".");
    snprintf(key, sizeof key, "%.*s", (int)n, dotted);
    if (v->type == JSON_ARRAY)
      v = json_at(v, (size_t)atoi(key));
    else
      v = json_get(v, key);
    dotted += n + (dotted[n] == '.');
  }
  return v;
}

static const char *str_at(const json_value *v, const char *dotted)
{
  v = path(v, dotted);
  return v && v->type == JSON_STRING ? v->u.string.ptr : NULL;
}

static double num_at(const json_value *v, const char *dotted)
{
  v = path(v, dotted);
  return v && v->type == JSON_NUMBER ? v->u.number.value : NAN;
}

/* The SSE events of a body, as the server frames them ("data: X\n\n"). */
typedef struct events {
  char *data[4096];
  size_t n;
  int done; /* saw data: [DONE] */
} events;

static void split_events(const json_buf *b, events *ev)
{
  const char *p = b->data ? b->data : "";
  memset(ev, 0, sizeof *ev);
  for (;;) {
    const char *end = strstr(p, "\n\n");
    if (!end || ev->n == 4096)
      break;
    if (strncmp(p, "data: ", 6) == 0) {
      size_t n = (size_t)(end - p - 6);
      if (n == 6 && strncmp(p + 6, "[DONE]", 6) == 0)
        ev->done = 1;
      else
        ev->data[ev->n++] = strndup(p + 6, n);
    }
    p = end + 2;
  }
}

static void events_free(events *ev)
{
  for (size_t i = 0; i < ev->n; i++)
    free(ev->data[i]);
}

/* Joins the content deltas of choice `index`; counts chunks and checks
 * each against the chunk shape. Returns the number of content deltas. */
static int stream_text(events *ev, int index, json_buf *text, const char **finish,
                       int *usage_nulls, parsed *usage_chunk)
{
  int deltas = 0;
  static char fin[32];
  *finish = NULL;
  if (usage_nulls)
    *usage_nulls = 0;
  for (size_t i = 0; i < ev->n; i++) {
    parsed p;
    const json_value *ch;
    if (!parse(&p, ev->data[i], strlen(ev->data[i])))
      continue;
    if (usage_nulls && path(p.root, "usage") && path(p.root, "usage")->type == JSON_NULL)
      (*usage_nulls)++;
    ch = path(p.root, "choices.0");
    if (!ch && usage_chunk && path(p.root, "usage") &&
        path(p.root, "usage")->type == JSON_OBJECT) {
      *usage_chunk = p;
      continue;
    }
    CHECK_STR(str_at(p.root, "object"), "chat.completion.chunk");
    if (ch && (int)num_at(ch, "index") == index) {
      const char *c = str_at(ch, "delta.content");
      if (c && c[0]) {
        jb_puts(text, c);
        deltas++;
      }
      if (str_at(ch, "finish_reason")) {
        snprintf(fin, sizeof fin, "%s", str_at(ch, "finish_reason"));
        *finish = fin;
      }
    }
    json_free(p.doc);
  }
  return deltas;
}

static const char *chat_body(const char *model, const char *content, const char *extra)
{
  static char buf[8192];
  snprintf(buf, sizeof buf, "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":"
           "\"Be brief.\"},{\"role\":\"user\",\"content\":\"%s\"}]%s%s}",
           model, content, extra && extra[0] ? "," : "", extra ? extra : "");
  return buf;
}

static void stats(sim_stats *st) { sim_server_stats(srv, st); }

static void restart(const sim_config *cfg)
{
  char err[256];
  sim_options o = {0};
  if (srv)
    sim_server_stop(srv);
  srv = sim_server_start(&o, cfg, err, sizeof err);
  if (!srv) {
    fprintf(stderr, "cannot start the simulator: %s\n", err);
    exit(1);
  }
  snprintf(base, sizeof base, "%s", sim_server_url(srv));
}

static void base_config(sim_config *c)
{
  sim_config_init(c);
  sim_config_add_profile(c, "gpt-4o-mini", 0, 0, 0);
  sim_config_add_profile(c, "slow-model", 150, 100, 0);
  sim_config_add_profile(c, "text-embedding-3-small", 0, 0, 0);
  sim_config_add_model(c, "extra-model");
}

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
    json_buf text;
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
    jb_init(&text);
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
    jb_free(&text);
    events_free(&ev);
    resp_free(&r);
  }
  /* n=2 streams: both indexes finish; max_tokens gives "length" */
  {
    resp r = {0};
    events ev;
    json_buf t0, t1;
    const char *f0, *f1;
    request("POST", "/v1/chat/completions",
            chat_body("gpt-4o-mini", "Describe the sea at length.",
                      "\"stream\":true,\"n\":2,\"max_tokens\":3"), NULL, &r);
    split_events(&r.body, &ev);
    jb_init(&t0);
    jb_init(&t1);
    CHECK_INT(stream_text(&ev, 0, &t0, &f0, NULL, NULL), 3);
    CHECK_STR(f0, "length");
    CHECK_INT(stream_text(&ev, 1, &t1, &f1, NULL, NULL), 3);
    CHECK_STR(f1, "length");
    CHECK(ev.done);
    jb_free(&t0);
    jb_free(&t1);
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
      jb_init(&r.body);
      jb_init(&r.hdrs);
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
  }
  sim_config_free(&c);
  base_config(&c);
  sim_server_configure(srv, &c);
  sim_config_free(&c);
}

/* ---- latency --------------------------------------------------------------------------- */

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
  applied = header(&r, "x-sim-ttft-ms") ? atof(header(&r, "x-sim-ttft-ms")) : -1;
  CHECK(applied >= 150 && applied < 170);
  CHECK(fabs(r.ttfb_ms - applied) < 10);
  CHECK(r.total_ms >= 150 + 10 * 10 - 2); /* 11 tokens: 10 gaps of 10 ms */
  resp_free(&r);
  /* per request: a header, and the body's sim object */
  request("POST", "/v1/chat/completions", chat_body("slow-model", "x", "\"stream\":true"),
          ttft_hdr, &r);
  applied = atof(header(&r, "x-sim-ttft-ms") ? header(&r, "x-sim-ttft-ms") : "-1");
  CHECK(applied >= 80 && applied < 95);
  resp_free(&r);
  request("POST", "/v1/chat/completions",
          chat_body("slow-model", "x", "\"sim\":{\"ttft_ms\":30,\"tokens_per_s\":0}"), NULL, &r);
  CHECK(r.total_ms >= 30 && r.total_ms < 120);
  CHECK(atof(header(&r, "x-sim-ttft-ms") ? header(&r, "x-sim-ttft-ms") : "-1") == 30);
  resp_free(&r);
  request("POST", "/v1/chat/completions", chat_body("slow-model", "x", NULL), zero_hdr, &r);
  CHECK(r.total_ms < 50);
  CHECK_STR(header(&r, "x-sim-profile"), "zero");
  resp_free(&r);
}

/* Over many streams on one keep-alive connection, what the client sees
 * as its time to first byte matches what the server says it applied. */
static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void test_ttft_accuracy(void)
{
  sim_server_reset(srv);
  static const char *const hdrs[] = {"x-sim-ttft-ms: 20", NULL};
  enum { N = 40 };
  CURL *h = curl_easy_init();
  double diff[N];
  int ok = 0;
  for (int i = 0; i < N; i++) {
    resp r = {0};
    request_on(h, "POST", "/v1/chat/completions",
               chat_body("gpt-4o-mini", "x", "\"stream\":true,\"max_tokens\":2"), hdrs, 0, &r);
    if (i > 0 && header(&r, "x-sim-ttft-ms")) /* the first one also connects */
      diff[ok++] = fabs(r.ttfb_ms - atof(header(&r, "x-sim-ttft-ms")));
    resp_free(&r);
  }
  curl_easy_cleanup(h);
  CHECK_INT(ok, N - 1);
  qsort(diff, (size_t)ok, sizeof *diff, cmp_double);
  printf("ttft: client vs applied over %d streams: median |diff| %.3f ms, worst %.3f ms\n", ok,
         diff[ok / 2], diff[ok - 1]);
  /* the median, not the mean: a shared CI machine may pause any one call */
  CHECK(diff[ok / 2] < 1.0);
  {
    sim_stats st;
    stats(&st);
    printf("ttft: server lateness against plan: mean %.3f ms, max %.3f ms\n",
           st.ttft_late_mean_ms, st.ttft_late_max_ms);
    CHECK(st.ttft_late_mean_ms < 2.0);
  }
}

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
  json_buf b;
  jb_init(&b);
  jb_puts(&b, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"");
  for (int i = 0; i < words; i++)
    jb_printf(&b, "%s%s", i ? " " : "", w[(i * 7 + i / 10) % 10]);
  jb_printf(&b, "\"},{\"role\":\"user\",\"content\":\"%s\"}]}", tail);
  return jb_take(&b, NULL);
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
    jb_init(&r[i].body);
    jb_init(&r[i].hdrs);
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
  sim_config c;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  base_config(&c);
  restart(&c);
  sim_config_free(&c);

  test_models();
  test_chat_json();
  test_chat_options();
  test_chat_stream();
  test_embeddings();
  test_bad_input();
  test_body_limit();
  test_strict();
  test_latency();
  test_ttft_accuracy();
  test_status_faults();
  test_connection_faults();
  test_fault_attempts();
  test_fault_rates();
  test_prefix_cache();
  test_rate_limit();
  test_disconnect_mid_stream();
  test_keep_alive();
  test_idle_connections();
  test_stop_in_flight();
  test_loopback_only();

  sim_server_stop(srv);
  curl_global_cleanup();
  return check_report("sim");
}
