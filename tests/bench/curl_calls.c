/* The floor for scripts/bench_calls: the same non-streaming chat requests
 * llmrun's calls benchmark makes (tests/bench/calls_client.lua), at the same
 * concurrency against the same server, made by libcurl's multi interface
 * alone, driven the way llmrun's loop drives it (curl_multi_socket_action
 * on epoll, handles and connections reused). No JSON, no Lua, no tasks:
 * what is left is what any libcurl client pays, and llmrun's CPU per call is
 * reported as a ratio to it.
 *
 *   curl_calls URL N CONCURRENCY      (URL: the base, ".../v1")
 *
 * Prints one line of JSON in calls_client.lua's shape: calls, concurrency,
 * errors, wall_s, calls_per_s, cpu_us_per_call (process CPU, user + system,
 * of the timed calls), peak_rss_mb. Like the Lua client, 4 calls warm the
 * connections and code paths first. Loopback only; at most 1,000,000
 * calls, 120 s. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_S 120

static const char BODY[] = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,"
                           "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                           "{\"role\":\"user\",\"content\":\"Name three primes.\"}]}";

typedef struct run {
  CURLM *multi;
  int epfd;
  long timeout_ms; /* curl's timer: -1 none */
  long left;       /* calls not started yet */
  long done, errors;
} run;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* The body is received and dropped: a client reads it, but parsing it is
 * llmrun's work, not libcurl's. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return size * n;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
  run *r = ud;
  struct epoll_event ev = {0};
  (void)e;
  (void)sockp;
  ev.data.fd = fd;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
    return 0;
  }
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
  (void)m;
  ((run *)ud)->timeout_ms = timeout_ms;
  return 0;
}

/* Finished transfers: count them, and start the next call on the same
 * handle (its connection is reused from the multi's pool). */
static void collect(run *r)
{
  CURLMsg *msg;
  int queued;
  while ((msg = curl_multi_info_read(r->multi, &queued)) != NULL) {
    long status = 0;
    CURL *e = msg->easy_handle;
    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    r->done++;
    if (msg->data.result != CURLE_OK || status != 200)
      r->errors++;
    curl_multi_remove_handle(r->multi, e);
    if (r->left > 0) {
      r->left--;
      curl_multi_add_handle(r->multi, e);
    }
  }
}

/* Makes `calls` calls, at most `conc` at once, on the handles given. */
static int make_calls(run *r, CURL **handles, int conc, long calls, double deadline)
{
  struct epoll_event evs[64];
  int running = 0;
  r->left = calls;
  r->done = 0;
  for (int i = 0; i < conc && r->left > 0; i++, r->left--)
    curl_multi_add_handle(r->multi, handles[i]);
  curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  while (r->done < calls) {
    int n = epoll_wait(r->epfd, evs, 64, r->timeout_ms < 0 ? 100 : (int)r->timeout_ms);
    if (now_s() > deadline)
      return -1;
    if (n <= 0) {
      curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    } else {
      for (int i = 0; i < n; i++) {
        int mask = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                   (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(r->multi, evs[i].data.fd, mask, &running);
      }
    }
    collect(r);
  }
  return 0;
}

int main(int argc, char **argv)
{
  const char *base = argc > 3 ? argv[1] : NULL;
  long n = argc > 3 ? atol(argv[2]) : 0;
  int conc = argc > 3 ? atoi(argv[3]) : 0;
  char url[512];
  struct curl_slist *hdrs = NULL;
  CURL **handles;
  run r = {0};
  double t0, c0, wall, cpu, deadline;
  struct rusage ru;
  if (!base || n <= 0 || n > 1000000 || conc <= 0 || conc > 10000) {
    fprintf(stderr, "usage: curl_calls URL N CONCURRENCY (N <= 1e6, CONCURRENCY <= 1e4)\n");
    return 2;
  }
  if (strncmp(base, "http://127.0.0.1:", 17) != 0 && strncmp(base, "http://localhost:", 17) != 0) {
    fprintf(stderr, "curl_calls: loopback URLs only\n");
    return 2;
  }
  snprintf(url, sizeof url, "%s/chat/completions", base);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  r.multi = curl_multi_init();
  r.epfd = epoll_create1(EPOLL_CLOEXEC);
  r.timeout_ms = -1;
  curl_multi_setopt(r.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(r.multi, CURLMOPT_SOCKETDATA, &r);
  curl_multi_setopt(r.multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(r.multi, CURLMOPT_TIMERDATA, &r);
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, "Authorization: Bearer sk-bench");
  handles = calloc((size_t)conc, sizeof *handles);
  for (int i = 0; i < conc; i++) {
    CURL *e = handles[i] = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, BODY);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(sizeof BODY - 1));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)MAX_S);
  }
  deadline = now_s() + MAX_S;
  if (make_calls(&r, handles, conc < 4 ? conc : 4, 4, deadline) != 0) /* warm up */
    goto timeout;
  r.errors = 0;
  t0 = now_s();
  c0 = cpu_s();
  if (make_calls(&r, handles, conc, n, deadline) != 0)
    goto timeout;
  cpu = cpu_s() - c0;
  wall = now_s() - t0;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"calls\":%ld,\"concurrency\":%d,\"errors\":%ld,\"wall_s\":%.4f,\"calls_per_s\":%.1f,"
         "\"cpu_us_per_call\":%.2f,\"peak_rss_mb\":%.1f}\n",
         n, conc, r.errors, wall, (double)n / wall, cpu / (double)n * 1e6, ru.ru_maxrss / 1024.0);
  for (int i = 0; i < conc; i++)
    curl_easy_cleanup(handles[i]);
  free(handles);
  curl_slist_free_all(hdrs);
  curl_multi_cleanup(r.multi);
  curl_global_cleanup();
  return r.errors ? 1 : 0;
timeout:
  fprintf(stderr, "curl_calls: not done within %d s\n", MAX_S);
  return 1;
}
