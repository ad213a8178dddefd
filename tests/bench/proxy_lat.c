/* Latency through gateways, as a user measures it: one client, one
 * kept-alive connection per target, the targets interleaved request by
 * request (target order rotated each round), so drift on a shared machine
 * hits all of them alike. For scripts/bench_proxy.
 *
 *   proxy_lat N MODE TARGET...
 *     MODE: chat (JSON), stream (SSE; the time to the first body byte is the
 *           TTFT), hit (the same request every time: cache hits)
 *     TARGET: name=url[|Header: value|...]
 *   Prints per target: p50, p90, p99 of the total time (and TTFT for
 *   stream) in microseconds, then per-block medians (10 blocks) so the
 *   script can put an interval on differences.
 *
 * Every request but in "hit" mode carries a unique prompt (a counter, and
 * the run's own number: a later run, e.g. the streamed one after the JSON
 * one, must not find the earlier run's answers), so a gateway's cache
 * misses and forwards. Loopback only; N <= 100000. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 8
#define BLOCKS 10

typedef struct target {
  const char *name;
  char url[512];
  struct curl_slist *headers;
  CURL *e;
  double *total, *ttfb;
  int fails;
} target;

typedef struct xfer {
  double t0, first;
} xfer;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  xfer *x = ud;
  (void)p;
  if (x->first == 0 && sz * n > 0)
    x->first = now_s();
  return sz * n;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
  double *c = malloc(sizeof *c * (size_t)n), r;
  memcpy(c, v, sizeof *c * (size_t)n);
  qsort(c, (size_t)n, sizeof *c, cmp);
  r = c[(int)(p * (n - 1) + 0.5)];
  free(c);
  return r;
}

int main(int argc, char **argv)
{
  int n, nt = 0, stream, hit;
  target t[MAX_TARGETS];
  char body[512];
  unsigned run = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
  if (argc < 4) {
    fprintf(stderr, "usage: proxy_lat N chat|stream|hit name=url[|Header: v]...\n");
    return 2;
  }
  n = atoi(argv[1]);
  if (n < BLOCKS || n > 100000)
    return 2;
  stream = strcmp(argv[2], "stream") == 0;
  hit = strcmp(argv[2], "hit") == 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  for (int i = 3; i < argc && nt < MAX_TARGETS; i++, nt++) {
    char *spec = strdup(argv[i]), *eq = strchr(spec, '='), *bar;
    target *x = &t[nt];
    memset(x, 0, sizeof *x);
    if (!eq)
      return 2;
    *eq = '\0';
    x->name = spec;
    bar = strchr(eq + 1, '|');
    if (bar)
      *bar = '\0';
    snprintf(x->url, sizeof x->url, "%s", eq + 1);
    if (strncmp(x->url, "http://127.0.0.1:", 17) != 0) {
      fprintf(stderr, "proxy_lat: loopback URLs only\n");
      return 2;
    }
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    x->headers = curl_slist_append(x->headers, "Authorization: Bearer sk-bench");
    while (bar) {
      char *h = bar + 1;
      bar = strchr(h, '|');
      if (bar)
        *bar = '\0';
      x->headers = curl_slist_append(x->headers, h);
    }
    x->e = curl_easy_init();
    curl_easy_setopt(x->e, CURLOPT_URL, x->url);
    curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->e, CURLOPT_TCP_NODELAY, 1L);
    x->total = calloc((size_t)n, sizeof(double));
    x->ttfb = calloc((size_t)n, sizeof(double));
  }
  /* warm-up: connections open, caches of code and data warm */
  for (int w = 0; w < 20; w++)
    for (int k = 0; k < nt; k++) {
      xfer xf = {0};
      snprintf(body, sizeof body,
               "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,%s\"messages\":[{\"role\":\"user\","
               "\"content\":\"Name three primes. (run %u, warm %d)\"}]}",
               stream ? "\"stream\":true," : "", run, hit ? 0 : w);
      curl_easy_setopt(t[k].e, CURLOPT_WRITEDATA, &xf);
      curl_easy_setopt(t[k].e, CURLOPT_POSTFIELDS, body);
      curl_easy_perform(t[k].e);
    }
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < nt; j++) {
      target *x = &t[(i + j) % nt];
      xfer xf = {0};
      long code = 0;
      snprintf(body, sizeof body,
               "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,%s\"messages\":[{\"role\":\"user\","
               "\"content\":\"Name three primes. (run %u, request %d)\"}]}",
               stream ? "\"stream\":true," : "", run, hit ? 0 : i + 1000);
      curl_easy_setopt(x->e, CURLOPT_WRITEDATA, &xf);
      curl_easy_setopt(x->e, CURLOPT_POSTFIELDS, body);
      xf.t0 = now_s();
      if (curl_easy_perform(x->e) != CURLE_OK)
        x->fails++;
      curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
      if (code != 200)
        x->fails++;
      x->total[i] = (now_s() - xf.t0) * 1e6;
      x->ttfb[i] = xf.first > 0 ? (xf.first - xf.t0) * 1e6 : x->total[i];
    }
  }
  for (int k = 0; k < nt; k++) {
    target *x = &t[k];
    printf("%s total_p50 %.1f total_p90 %.1f total_p99 %.1f", x->name, pct(x->total, n, 0.5),
           pct(x->total, n, 0.9), pct(x->total, n, 0.99));
    if (stream)
      printf(" ttft_p50 %.1f ttft_p99 %.1f", pct(x->ttfb, n, 0.5), pct(x->ttfb, n, 0.99));
    printf(" fails %d\n", x->fails);
    /* per block: the p50 and p99 of that tenth of the run */
    printf("%s blocks", x->name);
    for (int b = 0; b < BLOCKS; b++) {
      int per = n / BLOCKS;
      double *v = stream ? x->ttfb : x->total;
      printf(" %.1f:%.1f", pct(v + b * per, per, 0.5), pct(v + b * per, per, 0.99));
    }
    printf("\n");
  }
  for (int k = 0; k < nt; k++) {
    curl_easy_cleanup(t[k].e);
    curl_slist_free_all(t[k].headers);
    free(t[k].total);
    free(t[k].ttfb);
    free((char *)t[k].name);
  }
  curl_global_cleanup();
  return 0;
}
