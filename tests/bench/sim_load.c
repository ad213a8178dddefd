/* A load client for the simulator (benchmarks, not ctest): N concurrent
 * streaming chat completions over N connections with libcurl's multi
 * interface, all started at once, each with a fixed time to first token.
 * Reports completions (streams that reached data: [DONE]), errors, wall
 * time, and how the client's time to first byte compares with the TTFT the
 * server says it applied (x-sim-ttft-ms), after subtracting connect time.
 *
 *   built as the sim_load target (build/tests/bench/sim_load);
 *   sim_load URL N TTFT_MS [MAX_SECONDS] [MAX_TOKENS] [ROUNDS]
 *
 * With ROUNDS > 1 the same N handles run again, reusing the connections of
 * the first round, so later rounds measure streams without connection
 * set-up (one report per round).
 *
 * Loopback only (refuses other URLs); bounded in count (N <= 20000) and in
 * time (MAX_SECONDS, default 120). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

typedef struct stream {
  CURL *e;
  int done_marker;        /* saw "data: [DONE]" */
  char tail[16];          /* last bytes, to find [DONE] across writes */
  size_t bytes;
  double applied_ms;      /* x-sim-ttft-ms */
} stream;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  stream *s = ud;
  size_t len = sz * n, k = strlen(s->tail), h = len < 15 ? len : 15;
  char joint[32];
  /* the marker may straddle two writes: look at the seam and in this write */
  memcpy(joint, s->tail, k);
  memcpy(joint + k, p, h);
  if (memmem(joint, k + h, "data: [DONE]", 12) || memmem(p, len, "data: [DONE]", 12))
    s->done_marker = 1;
  /* the new tail: the last 15 bytes of everything so far */
  if (len >= 15) {
    memcpy(s->tail, p + len - 15, 15);
    s->tail[15] = '\0';
  } else {
    size_t total = k + len, drop = total > 15 ? total - 15 : 0;
    memcpy(joint + k, p, len);
    memmove(s->tail, joint + drop, total - drop);
    s->tail[total - drop] = '\0';
  }
  s->bytes += len;
  return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  stream *s = ud;
  size_t len = sz * n;
  if (len > 14 && strncasecmp(p, "x-sim-ttft-ms:", 14) == 0)
    s->applied_ms = atof(p + 14);
  return len;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(int round, int n, int completed, int errors, double wall, double *diff,
                   int with_applied)
{
  if (round > 0)
    printf("round %d: streams %d, completed %d, errors %d, unfinished %d, wall %.2f s\n", round,
           n, completed, errors, n - completed - errors, wall);
  else
    printf("all rounds but the first (warm connections): %d streams\n", n);
  if (with_applied) {
    double sum = 0, asum = 0;
    qsort(diff, (size_t)with_applied, sizeof *diff, cmp);
    for (int i = 0; i < with_applied; i++) {
      sum += diff[i];
      asum += fabs(diff[i]);
    }
    printf("  client TTFT (first byte - request sent) minus applied x-sim-ttft-ms, %d streams: "
           "mean %.3f ms, mean |d| %.3f ms, median %.3f ms, p99 %.3f ms, max %.3f ms\n",
           with_applied, sum / with_applied, asum / with_applied, diff[with_applied / 2],
           diff[(int)(with_applied * 0.99)], diff[with_applied - 1]);
  }
  fflush(stdout);
}

int main(int argc, char **argv)
{
  const char *url;
  int n, ttft, max_s, max_tokens, rounds, running = 0, all_done = 1;
  char body[256], hdr[64], endpoint[512];
  struct curl_slist *hdrs = NULL;
  struct rlimit rl;
  CURLM *m;
  stream *st;
  double *diff, *warm; /* warm: rounds 2.. together */
  int nwarm = 0, quiet;
  if (argc < 4) {
    fprintf(stderr, "usage: sim_load URL N TTFT_MS [MAX_SECONDS] [MAX_TOKENS] [ROUNDS]\n");
    return 2;
  }
  url = argv[1];
  n = atoi(argv[2]);
  ttft = atoi(argv[3]);
  max_s = argc > 4 ? atoi(argv[4]) : 120;
  max_tokens = argc > 5 ? atoi(argv[5]) : 16;
  rounds = argc > 6 ? atoi(argv[6]) : 1;
  if (strncmp(url, "http://127.", 11) != 0 && strncmp(url, "http://[::1]", 12) != 0) {
    fprintf(stderr, "sim_load: loopback URLs only\n");
    return 2;
  }
  if (n < 1 || n > 20000 || max_s < 1 || max_s > 600 || rounds < 1 || rounds > 1000) {
    fprintf(stderr, "sim_load: N must be 1..20000, MAX_SECONDS 1..600, ROUNDS 1..1000\n");
    return 2;
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)n + 64)
    fprintf(stderr, "sim_load: warning: RLIMIT_NOFILE %llu < N + 64\n",
            (unsigned long long)rl.rlim_cur);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  snprintf(endpoint, sizeof endpoint, "%s/chat/completions", url);
  snprintf(body, sizeof body, "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"max_tokens\":%d,"
           "\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about lighthouses.\"}]}",
           max_tokens);
  snprintf(hdr, sizeof hdr, "x-sim-ttft-ms: %d", ttft);
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, hdr);
  hdrs = curl_slist_append(hdrs, "x-sim-tokens-per-s: 100");
  hdrs = curl_slist_append(hdrs, "Expect:");
  m = curl_multi_init();
  st = calloc((size_t)n, sizeof *st);
  diff = calloc((size_t)n, sizeof *diff);
  warm = calloc((size_t)n * (size_t)rounds, sizeof *warm);
  quiet = rounds > 10; /* many rounds: the summary says it */
  for (int i = 0; i < n; i++) {
    CURL *e = curl_easy_init();
    st[i].e = e;
    curl_easy_setopt(e, CURLOPT_URL, endpoint);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &st[i]);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &st[i]);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &st[i]);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)max_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)max_s);
  }
  for (int round = 1; round <= rounds && all_done; round++) {
    int completed = 0, errors = 0, with_applied = 0;
    double t0;
    for (int i = 0; i < n; i++) {
      st[i].done_marker = 0;
      st[i].tail[0] = '\0';
      st[i].applied_ms = 0;
      curl_multi_add_handle(m, st[i].e);
    }
    t0 = now_s();
    do {
      CURLMsg *msg;
      int left;
      curl_multi_perform(m, &running);
      while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        stream *s;
        long status = 0;
        if (msg->msg != CURLMSG_DONE)
          continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (msg->data.result == CURLE_OK && status == 200 && s->done_marker) {
          curl_off_t pre = 0, first = 0;
          completed++;
          curl_easy_getinfo(msg->easy_handle, CURLINFO_PRETRANSFER_TIME_T, &pre);
          curl_easy_getinfo(msg->easy_handle, CURLINFO_STARTTRANSFER_TIME_T, &first);
          if (s->applied_ms > 0)
            diff[with_applied++] = (double)(first - pre) / 1000.0 - s->applied_ms;
        } else {
          if (errors < 5)
            fprintf(stderr, "error: %s (status %ld)\n", curl_easy_strerror(msg->data.result),
                    status);
          errors++;
        }
      }
      if (running)
        curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running && now_s() - t0 < max_s + 5);
    if (round > 1) {
      memcpy(warm + nwarm, diff, (size_t)with_applied * sizeof *diff);
      nwarm += with_applied;
    }
    if (!quiet || completed != n)
      report(round, n, completed, errors, now_s() - t0, diff, with_applied);
    for (int i = 0; i < n; i++)
      curl_multi_remove_handle(m, st[i].e);
    all_done = completed == n;
  }
  if (rounds > 1 && nwarm > 0) {
    report(0, n * (rounds - 1), nwarm, 0, 0, warm, nwarm);
  }
  for (int i = 0; i < n; i++)
    curl_easy_cleanup(st[i].e);
  curl_multi_cleanup(m);
  curl_slist_free_all(hdrs);
  free(st);
  free(diff);
  free(warm);
  curl_global_cleanup();
  return all_done ? 0 : 1;
}
