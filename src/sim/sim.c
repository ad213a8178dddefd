/* The simulator's server: one thread that owns a libmicrohttpd daemon, a
 * timer heap and an epoll set. See sim.h for the contract.
 *
 * Why libmicrohttpd (MHD) and not libevent's evhttp: both are in Debian,
 * event-driven and hold 10,000 connections on epoll. Measured here with
 * wrk (64 connections, 1 thread, a fixed chat-completion JSON for a POST,
 * 2 shared cores, medians of 5 runs of 4 s) MHD answered ~51,000 req/s and
 * evhttp ~34,000 (a second, busier session: ~21,600 and ~12,400). MHD
 * also hands us the request body as it arrives, so an oversized body gets
 * OpenAI's JSON 413 before it is buffered, while evhttp 2.1 answers 413
 * (and every protocol error) with its own fixed HTML page. evhttp has timers built in; MHD has none, so we run MHD in
 * "external polling" mode inside our own epoll loop with a timerfd, and a
 * delayed response or SSE event is a suspended connection that a timer
 * resumes: no thread per connection, one thread for all.
 *
 * Timing accuracy: deadlines are CLOCK_MONOTONIC nanoseconds and the
 * timerfd is armed with the absolute deadline, so a delay is not rounded
 * to epoll's milliseconds; the lateness left is the loop's own latency.
 * A request's clock starts when the loop pass that read it began, and a
 * stream reports the delay it actually applied (x-sim-ttft-ms) as its
 * headers leave with the first token.
 *
 * Disconnects: MHD does not watch a suspended connection, so while a
 * request waits its socket is also in our epoll set for EPOLLRDHUP; a
 * client that hangs up mid-wait is noticed at once, its timer cancelled
 * and its connection closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mhd_lazy.h"
#include "sim_batch.h"
#include "sim_server.h"
#include "sim_tasks.h"

/* mixed into the seed so that seed 0 does not start the stream at 0 */
#define RNG_SALT 0x5851f42d4c957f2dull

/* epoll tags for the server's own descriptors; requests use their pointer */
static char TAG_MHD, TAG_TIMER, TAG_WAKE;

/* ---- waiting requests ---------------------------------------------------------- */

static void unlink_suspended(sim_req *r)
{
  sim_server *s = r->srv;
  if (r->sprev)
    r->sprev->snext = r->snext;
  else
    s->suspended = r->snext;
  if (r->snext)
    r->snext->sprev = r->sprev;
  r->snext = r->sprev = NULL;
  r->suspended = 0;
}

static void resume(sim_req *r)
{
  if (!r->suspended)
    return;
  unlink_suspended(r);
  MHD_resume_connection(r->conn);
}

static void timer_fired(sim_timer *t)
{
  sim_req *r = (sim_req *)((char *)t - offsetof(sim_req, timer));
  resume(r);
}

void sim_req_watch(sim_req *r)
{
  const union MHD_ConnectionInfo *ci;
  struct epoll_event ev;
  if (r->watched)
    return;
  ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci)
    return;
  r->fd = ci->connect_fd;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLRDHUP; /* hang-ups only: data from the client wakes nobody */
  ev.data.ptr = r;
  if (epoll_ctl(r->srv->ep, EPOLL_CTL_ADD, r->fd, &ev) == 0)
    r->watched = 1;
}

static void unwatch(sim_req *r)
{
  if (r->watched) {
    epoll_ctl(r->srv->ep, EPOLL_CTL_DEL, r->fd, NULL);
    r->watched = 0;
  }
}

enum MHD_Result sim_req_wait_until(sim_req *r, int64_t at)
{
  sim_server *s = r->srv;
  r->timer.fire = timer_fired;
  if (sim_timer_arm(&s->timers, &r->timer, at) != 0)
    return MHD_NO; /* out of memory: drop the connection rather than hang it */
  sim_req_watch(r);
  MHD_suspend_connection(r->conn);
  r->suspended = 1;
  r->sprev = NULL;
  r->snext = s->suspended;
  if (s->suspended)
    s->suspended->sprev = r;
  s->suspended = r;
  return MHD_YES;
}

static void client_hung_up(sim_req *r)
{
  unwatch(r);
  r->client_gone = 1;
  sim_timer_disarm(&r->srv->timers, &r->timer);
  resume(r);
}

void sim_req_release_wait(sim_req *r)
{
  unwatch(r);
  sim_timer_disarm(&r->srv->timers, &r->timer);
  if (r->suspended) /* MHD completes no suspended request; keep the list sane anyway */
    unlink_suspended(r);
}

void sim_count_fault(sim_server *s, const sim_fault *f)
{
  size_t slot = f->kind;
  if (f->kind == SIM_FAULT_NONE)
    return;
  if (f->kind == SIM_FAULT_STATUS && f->status >= 400 && f->status <= 599)
    slot = SIM_FAULT_SLOT_STATUS_BASE + (size_t)(f->status - 400);
  atomic_fetch_add(&s->fault_counts[slot], 1);
  atomic_fetch_add(&s->faults_total, 1);
}

/* ---- connections ------------------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
  sim_server *s = cls;
  (void)c;
  (void)socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    uint64_t open = atomic_fetch_add(&s->conn_open, 1) + 1;
    uint64_t peak = atomic_load(&s->conn_peak);
    atomic_fetch_add(&s->conn_total, 1);
    if (open > peak)
      atomic_store(&s->conn_peak, open);
  } else {
    atomic_fetch_sub(&s->conn_open, 1);
  }
}

/* ---- commands from other threads ------------------------------------------------------ */

static void reset_counters(sim_server *s)
{
  atomic_store(&s->requests, 0);
  atomic_store(&s->r2xx, 0);
  atomic_store(&s->r4xx, 0);
  atomic_store(&s->r5xx, 0);
  atomic_store(&s->chat, 0);
  atomic_store(&s->messages, 0);
  atomic_store(&s->streams, 0);
  atomic_store(&s->embeddings, 0);
  atomic_store(&s->streams_completed, 0);
  atomic_store(&s->client_disconnects, 0);
  atomic_store(&s->rate_limited, 0);
  atomic_store(&s->faults_total, 0);
  atomic_store(&s->prompt_tokens, 0);
  atomic_store(&s->completion_tokens, 0);
  atomic_store(&s->cached_tokens, 0);
  atomic_store(&s->conn_peak, atomic_load(&s->conn_open));
  atomic_store(&s->ttft_late_us_sum, 0);
  atomic_store(&s->ttft_late_us_max, 0);
  atomic_store(&s->ttft_late_n, 0);
  for (size_t i = 0; i < SIM_FAULT_SLOTS; i++)
    atomic_store(&s->fault_counts[i], 0);
}

static void take_commands(sim_server *s)
{
  sim_config *old = NULL;
  pthread_mutex_lock(&s->mu);
  if (s->pending_cfg) {
    old = malloc(sizeof *old);
    if (old)
      *old = s->cfg;
    else
      sim_config_free(&s->cfg);
    /* a new seed restarts the random stream (jitter, fault draws) */
    if (s->pending_cfg->seed != s->cfg.seed)
      s->rng = s->pending_cfg->seed ^ RNG_SALT;
    s->cfg = *s->pending_cfg;
    free(s->pending_cfg);
    s->pending_cfg = NULL;
  }
  if (s->pending_reset) {
    s->pending_reset = 0;
    reset_counters(s);
    s->rng = s->cfg.seed ^ RNG_SALT;
    sim_cache_clear(s->cache);
    sim_attempts_clear(s->attempts);
    sim_batches_clear(s->batches);
    memset(&s->rl, 0, sizeof s->rl);
  }
  if (s->pending_stop)
    s->stopping = 1;
  s->done_seq = s->cmd_seq;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (old) {
    sim_config_free(old);
    free(old);
  }
}

/* Runs under s->mu; waits until the server thread has taken it. */
static void send_command(sim_server *s)
{
  uint64_t one = 1, seq = ++s->cmd_seq;
  ssize_t w = write(s->wakefd, &one, sizeof one);
  (void)w; /* an eventfd write only fails when the counter would overflow */
  while (s->done_seq < seq)
    pthread_cond_wait(&s->cv, &s->mu);
}

int sim_server_configure(sim_server *s, const sim_config *cfg)
{
  sim_config *copy = malloc(sizeof *copy);
  if (!copy || sim_config_copy(copy, cfg) != 0) {
    free(copy);
    return -1;
  }
  pthread_mutex_lock(&s->mu);
  if (s->pending_cfg) { /* cannot happen: commands are synchronous */
    sim_config_free(s->pending_cfg);
    free(s->pending_cfg);
  }
  s->pending_cfg = copy;
  send_command(s);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void sim_server_reset(sim_server *s)
{
  pthread_mutex_lock(&s->mu);
  s->pending_reset = 1;
  send_command(s);
  pthread_mutex_unlock(&s->mu);
}

/* ---- the loop ----------------------------------------------------------------------- */

static void arm_timerfd(sim_server *s, int64_t deadline, int64_t *armed)
{
  struct itimerspec its;
  if (deadline == *armed)
    return;
  memset(&its, 0, sizeof its);
  if (deadline != INT64_MAX) {
    if (deadline <= 0)
      deadline = 1; /* 0 would disarm */
    its.it_value.tv_sec = deadline / SIM_NS;
    its.it_value.tv_nsec = deadline % SIM_NS;
  }
  timerfd_settime(s->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
  *armed = deadline;
}

static void drain(int fd)
{
  uint64_t v;
  while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
    ;
}

static void run_timers(sim_server *s)
{
  int64_t now = sim_now_ns();
  sim_timer *t;
  while ((t = sim_timers_pop_due(&s->timers, now)) != NULL)
    t->fire(t);
}

static void shut_down(sim_server *s)
{
  /* MHD must not be stopped with suspended connections: resume them all
   * as aborted, so the handler and readers end them. */
  while (s->suspended) {
    sim_req *r = s->suspended;
    r->client_gone = 1;
    sim_timer_disarm(&s->timers, &r->timer);
    resume(r);
  }
  MHD_stop_daemon(s->mhd);
  s->mhd = NULL;
}

static void *server_main(void *arg)
{
  sim_server *s = arg;
  struct epoll_event evs[256];
  int64_t armed = INT64_MAX;
  /* JSON numbers must use '.', whatever setlocale() another thread calls */
  locale_t cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  if (cloc)
    uselocale(cloc);
  for (;;) {
    MHD_UNSIGNED_LONG_LONG mhd_to;
    int timeout = -1, n;
    take_commands(s);
    if (s->stopping)
      break;
    run_timers(s);
    s->pass_start = sim_now_ns();
    MHD_run(s->mhd);
    arm_timerfd(s, sim_timers_next(&s->timers), &armed);
    if (MHD_get_timeout(s->mhd, &mhd_to) == MHD_YES)
      timeout = mhd_to > 60000 ? 60000 : (int)mhd_to;
    n = epoll_wait(s->ep, evs, (int)(sizeof evs / sizeof *evs), timeout);
    for (int i = 0; i < n; i++) {
      void *tag = evs[i].data.ptr;
      if (tag == &TAG_WAKE)
        drain(s->wakefd);
      else if (tag == &TAG_TIMER) {
        drain(s->timerfd);
        armed = INT64_MAX; /* it fired: re-arm even for the same deadline */
      } else if (tag != &TAG_MHD)
        client_hung_up(tag);
    }
  }
  shut_down(s);
  uselocale(LC_GLOBAL_LOCALE);
  if (cloc)
    freelocale(cloc);
  return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

static int parse_host(const char *host, int allow_remote, struct sockaddr_storage *ss,
                      int *v6, char *urlhost, size_t n, char *err, size_t errlen)
{
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  int loopback;
  memset(ss, 0, sizeof *ss);
  if (!host || !host[0] || strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    *v6 = 0;
    loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    snprintf(urlhost, n, "%s", host);
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    *v6 = 1;
    loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    snprintf(urlhost, n, "[%s]", host);
  } else {
    snprintf(err, errlen, "not a numeric IP address: %s (use 127.0.0.1 or ::1)", host);
    return -1;
  }
  if (!loopback && !allow_remote) {
    snprintf(err, errlen, "refusing to listen on %s: not a loopback address "
                          "(allow_remote permits it)", host);
    return -1;
  }
  return 0;
}

/* The simulator must hold 10,000 connections, each a descriptor. */
static uint64_t raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

static int add_fd(int ep, int fd, void *tag)
{
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = tag;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void free_server(sim_server *s)
{
  if (s->mhd)
    MHD_stop_daemon(s->mhd);
  if (s->ep >= 0)
    close(s->ep);
  if (s->timerfd >= 0)
    close(s->timerfd);
  if (s->wakefd >= 0)
    close(s->wakefd);
  sim_timers_free(&s->timers);
  sim_cache_free(s->cache);
  sim_attempts_free(s->attempts);
  sim_batches_free(s->batches);
  sim_tasks_free(s->tasks);
  sim_config_free(&s->cfg);
  if (s->pending_cfg) {
    sim_config_free(s->pending_cfg);
    free(s->pending_cfg);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

sim_server *sim_server_start(const sim_options *opt, const sim_config *cfg, char *err,
                             size_t errlen)
{
  static const sim_options defaults = {NULL, 0, 0, 0};
  struct sockaddr_storage ss;
  char urlhost[64];
  int v6, idle;
  uint64_t conn_limit;
  const union MHD_DaemonInfo *info;
  sim_server *s;
  if (!opt)
    opt = &defaults;
  if (llm_mhd_load(err, errlen) != 0)
    return NULL;
  if (parse_host(opt->host, opt->allow_remote, &ss, &v6, urlhost, sizeof urlhost, err,
                 errlen) != 0)
    return NULL;
  if (opt->port < 0 || opt->port > 65535) {
    snprintf(err, errlen, "bad port %d", opt->port);
    return NULL;
  }
  if (v6)
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)opt->port);
  else
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)opt->port);

  s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->ep = s->timerfd = s->wakefd = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (cfg ? sim_config_copy(&s->cfg, cfg) != 0 : (sim_config_init(&s->cfg), 0)) {
    snprintf(err, errlen, "out of memory");
    free_server(s);
    return NULL;
  }
  s->rng = s->cfg.seed ^ RNG_SALT;
  /* ids must differ between servers and processes, whatever their seed:
   * they come from this nonce, never from the seeded stream */
  if (getrandom(&s->id_nonce, sizeof s->id_nonce, GRND_NONBLOCK) != sizeof s->id_nonce)
    s->id_nonce = (uint64_t)sim_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
  s->cache = sim_cache_new();
  s->attempts = sim_attempts_new();
  s->batches = sim_batches_new();
  s->tasks = sim_tasks_new();
  s->nofile = raise_nofile();
  s->started = sim_now_ns();
  s->ep = epoll_create1(EPOLL_CLOEXEC);
  s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!s->cache || !s->attempts || !s->batches || !s->tasks || s->ep < 0 || s->timerfd < 0 || s->wakefd < 0) {
    snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
    free_server(s);
    return NULL;
  }
  /* Keep descriptors for the process's own use (curl, sqlite, files). */
  conn_limit = s->nofile > 20064 ? 20000 : (s->nofile > 128 ? s->nofile - 64 : 64);
  idle = opt->idle_timeout_s > 0 ? opt->idle_timeout_s : 300;
  s->mhd = MHD_start_daemon(
    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0), (uint16_t)opt->port,
    NULL, NULL, sim_http_handle, s,
    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
    MHD_OPTION_NOTIFY_COMPLETED, sim_http_completed, s,
    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
    MHD_OPTION_CONNECTION_LIMIT, (unsigned)conn_limit,
    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)idle,
    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
    /* A connection's memory pool holds the request head and the response
     * head; MHD clears it before each request. 8 KiB (default 32) is ample
     * for API headers and keeps 10,000 streams small (measured: 158 MB
     * peak RSS instead of 327 MB together with the 2 KiB reader blocks of
     * sim_stream.c). Larger request heads get 431 from MHD. */
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
    MHD_OPTION_END);
  if (!s->mhd) {
    snprintf(err, errlen, "cannot listen on %s port %d (in use, or not an address of this "
                          "machine)", urlhost, opt->port);
    free_server(s);
    return NULL;
  }
  info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : opt->port;
  snprintf(s->url, sizeof s->url, "http://%s:%d", urlhost, s->port);
  info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info || add_fd(s->ep, info->epoll_fd, &TAG_MHD) != 0 ||
      add_fd(s->ep, s->timerfd, &TAG_TIMER) != 0 || add_fd(s->ep, s->wakefd, &TAG_WAKE) != 0 ||
      pthread_create(&s->thread, NULL, server_main, s) != 0) {
    snprintf(err, errlen, "cannot start the server thread");
    free_server(s);
    return NULL;
  }
  return s;
}

void sim_server_stop(sim_server *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->pending_stop = 1;
  send_command(s);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  free_server(s);
}

const char *sim_server_url(const sim_server *s) { return s->url; }
int sim_server_port(const sim_server *s) { return s->port; }

/* ---- stats -------------------------------------------------------------------------------- */

void sim_server_stats(sim_server *s, sim_stats *o)
{
  memset(o, 0, sizeof *o);
  o->requests = atomic_load(&s->requests);
  o->responses_2xx = atomic_load(&s->r2xx);
  o->responses_4xx = atomic_load(&s->r4xx);
  o->responses_5xx = atomic_load(&s->r5xx);
  o->chat = atomic_load(&s->chat);
  o->messages = atomic_load(&s->messages);
  o->streams = atomic_load(&s->streams);
  o->embeddings = atomic_load(&s->embeddings);
  o->streams_completed = atomic_load(&s->streams_completed);
  o->client_disconnects = atomic_load(&s->client_disconnects);
  o->rate_limited = atomic_load(&s->rate_limited);
  o->faults_total = atomic_load(&s->faults_total);
  o->prompt_tokens = atomic_load(&s->prompt_tokens);
  o->completion_tokens = atomic_load(&s->completion_tokens);
  o->cached_tokens = atomic_load(&s->cached_tokens);
  o->connections_open = atomic_load(&s->conn_open);
  o->connections_peak = atomic_load(&s->conn_peak);
  o->connections_total = atomic_load(&s->conn_total);
  o->nofile_limit = s->nofile;
  {
    uint64_t n = atomic_load(&s->ttft_late_n);
    /* to the microsecond, as measured */
    o->ttft_late_mean_ms =
      n ? round((double)atomic_load(&s->ttft_late_us_sum) / (double)n) / 1000 : 0;
    o->ttft_late_max_ms = (double)atomic_load(&s->ttft_late_us_max) / 1000;
  }
  o->uptime_s = (double)(sim_now_ns() - s->started) / SIM_NS;
}

char *sim_server_stats_json(sim_server *s, size_t *len)
{
  static const struct { const char *name; size_t off; } fields[] = {
#define F(x) {#x, offsetof(sim_stats, x)}
    F(requests), F(responses_2xx), F(responses_4xx), F(responses_5xx), F(chat), F(messages),
    F(streams),
    F(embeddings), F(streams_completed), F(client_disconnects), F(rate_limited),
    F(faults_total), F(prompt_tokens), F(completion_tokens), F(cached_tokens),
    F(connections_open), F(connections_peak), F(connections_total), F(nofile_limit),
#undef F
  };
  sim_stats st;
  llm_buf b;
  int first = 1;
  sim_server_stats(s, &st);
  llm_buf_init(&b);
  llm_buf_puts(&b, "{\"object\":\"sim.stats\"");
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    llm_buf_printf(&b, ",\"%s\":", fields[i].name);
    json_put_int(&b, (int64_t) * (const uint64_t *)((const char *)&st + fields[i].off));
  }
  llm_buf_puts(&b, ",\"uptime_s\":");
  json_put_double(&b, st.uptime_s);
  llm_buf_puts(&b, ",\"ttft_late_mean_ms\":");
  json_put_double(&b, st.ttft_late_mean_ms);
  llm_buf_puts(&b, ",\"ttft_late_max_ms\":");
  json_put_double(&b, st.ttft_late_max_ms);
  llm_buf_puts(&b, ",\"faults\":{");
  for (size_t i = 0; i < SIM_FAULT_SLOTS; i++) {
    uint64_t n = atomic_load(&s->fault_counts[i]);
    sim_fault f;
    char name[32];
    if (!n)
      continue;
    if (i >= SIM_FAULT_SLOT_STATUS_BASE) {
      f.kind = SIM_FAULT_STATUS;
      f.status = (int)(i - SIM_FAULT_SLOT_STATUS_BASE) + 400;
    } else {
      f.kind = (sim_fault_kind)i;
      f.status = 0;
    }
    llm_buf_printf(&b, "%s\"%s\":", first ? "" : ",", sim_fault_name(&f, name, sizeof name));
    json_put_int(&b, (int64_t)n);
    first = 0;
  }
  llm_buf_putc(&b, '}');
  sim_batch_stats_json(s, &b);
  llm_buf_putc(&b, '}');
  if (b.failed) {
    llm_buf_free(&b);
    return NULL;
  }
  return llm_buf_take(&b, len);
}

sim_tasks *sim_server_tasks(sim_server *s)
{
  return s->tasks;
}
