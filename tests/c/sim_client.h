/* Shared by the simulator's C tests (test_sim*.c): a tiny libcurl client,
 * JSON and SSE helpers, and a server started per test program. Static
 * inline, so each test uses what it needs without unused warnings. */
#ifndef LLMRUN_TEST_SIM_CLIENT_H
#define LLMRUN_TEST_SIM_CLIENT_H

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
#include "sim/sim.h"

static sim_server *srv;
static char base[128];

/* ---- a tiny client ------------------------------------------------------------------ */

typedef struct resp {
  CURLcode rc;
  long status;
  llm_buf body, hdrs;
  double ttfb_ms, total_ms;
  long new_conns;
  size_t abort_after; /* > 0: fail the write once this many body bytes came */
} resp;

static inline size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  llm_buf_put(&r->body, p, sz * n);
  if (r->abort_after && r->body.len >= r->abort_after)
    return 0; /* the client walks away */
  return sz * n;
}

static inline size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  resp *r = ud;
  llm_buf_put(&r->hdrs, p, sz * n);
  return sz * n;
}

static inline void resp_free(resp *r)
{
  llm_buf_free(&r->body);
  llm_buf_free(&r->hdrs);
}

/* Value of a response header (case-insensitive), or NULL. */
static inline const char *header(resp *r, const char *name)
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
static inline void request_on(CURL *h, const char *method, const char *path, const char *body,
                       const char *const *hdrs, long timeout_ms, resp *r)
{
  struct curl_slist *sl = NULL;
  char url[256];
  curl_off_t t1 = 0, t2 = 0;
  memset(r, 0, sizeof *r - sizeof r->abort_after);
  llm_buf_init(&r->body);
  llm_buf_init(&r->hdrs);
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

static inline void request(const char *method, const char *path, const char *body,
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

static inline const json_value *parse(parsed *p, const char *s, size_t n)
{
  json_error err;
  p->root = json_parse(s ? s : "", n, &p->doc, &err);
  return p->root;
}

/* Walks "a.b.0.c" through objects and arrays. */
static inline const json_value *path(const json_value *v, const char *dotted)
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

static inline const char *str_at(const json_value *v, const char *dotted)
{
  v = path(v, dotted);
  return v && v->type == JSON_STRING ? v->u.string.ptr : NULL;
}

static inline double num_at(const json_value *v, const char *dotted)
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

static inline void split_events(const llm_buf *b, events *ev)
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

static inline void events_free(events *ev)
{
  for (size_t i = 0; i < ev->n; i++)
    free(ev->data[i]);
}

/* Joins the content deltas of choice `index`; counts chunks and checks
 * each against the chunk shape. Returns the number of content deltas. */
static inline int stream_text(events *ev, int index, llm_buf *text, const char **finish,
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
        llm_buf_puts(text, c);
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

static inline const char *chat_body(const char *model, const char *content, const char *extra)
{
  static char buf[8192];
  snprintf(buf, sizeof buf, "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":"
           "\"Be brief.\"},{\"role\":\"user\",\"content\":\"%s\"}]%s%s}",
           model, content, extra && extra[0] ? "," : "", extra ? extra : "");
  return buf;
}

static inline void stats(sim_stats *st) { sim_server_stats(srv, st); }

static inline void restart(const sim_config *cfg)
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

static inline void base_config(sim_config *c)
{
  sim_config_init(c);
  sim_config_add_profile(c, "gpt-4o-mini", 0, 0, 0);
  sim_config_add_profile(c, "slow-model", 150, 100, 0);
  sim_config_add_profile(c, "text-embedding-3-small", 0, 0, 0);
  sim_config_add_model(c, "extra-model");
}


/* Starts libcurl and the shared server with base_config(). */
static inline void sim_test_begin(void)
{
  sim_config c;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  base_config(&c);
  restart(&c);
  sim_config_free(&c);
}

static inline int sim_test_end(const char *suite)
{
  if (srv)
    sim_server_stop(srv);
  srv = NULL;
  curl_global_cleanup();
  return check_report(suite);
}

#endif
