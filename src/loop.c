/* The event loop: epoll driving curl's multi_socket API for I/O, a binary
 * min-heap of timers and a FIFO of callbacks. See loop.h for the contract.
 *
 * Why multi_socket and not curl_multi_poll: curl_multi_perform walks every
 * transfer on each wake-up, so with 64 or 10,000 transfers in flight most
 * of the client's CPU went to looking at idle transfers. With
 * curl_multi_socket_action curl hands us its sockets, epoll says which are
 * ready, and curl only touches the transfers they belong to. */
#include "loop.h"

#include "curl_lazy.h"
#include "heap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct llm_timer {
  double deadline;
  uint64_t seq;      /* start order, so equal deadlines fire FIFO */
  size_t index;      /* position in the heap, for O(log n) stop */
  llm_loop_fn fn;
  void *ud;
};

typedef struct {
  llm_loop_fn fn;
  void *ud;
} callback;

/* Transfers to one host (llm_xfer.host) over the connection cap, waiting
 * for one of its transfers to end. A few hosts are tracked; transfers to
 * others go to curl's own queue. */
#define HOST_SLOTS 16
#define HOST_KEY_MAX 256

typedef struct llm_host_slot {
  char key[HOST_KEY_MAX]; /* "" while free */
  size_t active;          /* its transfers in the multi */
  llm_xfer *head, *tail;  /* waiting, oldest first */
} llm_host_slot;

/* A descriptor watched for llm_loop_watch, found by its number. */
typedef struct {
  llm_loop_io_fn fn;
  void *ud;
  unsigned events;
} io_watch;

struct llm_loop {
  CURLM *multi;
  size_t nxfers;             /* transfers held: in the multi or waiting */
  size_t in_multi;
  size_t peak_in_multi;      /* the most transfers in the multi at once (CURLMOPT_MAXCONNECTS) */
  llm_host_slot hosts[HOST_SLOTS];
  long max_host_connections; /* 0: no limit */
  int epfd;
  double curl_deadline;  /* when curl wants CURL_SOCKET_TIMEOUT; < 0: never */
  int done_waiting;      /* a transfer finished outside a turn: collect it without blocking */
  int watched_fd;        /* the caller's watch_fd currently in epoll, or -1 */

  llm_timer **heap;
  size_t nheap, capheap;
  uint64_t timer_seq;

  callback *ring;    /* ready queue as a growable ring buffer */
  size_t head, count, capring;

  io_watch *io;      /* indexed by fd; fn == NULL: not ours */
  size_t nio, iocap;  /* watched count, array size */

  int wake_r, wake_w; /* self-pipe: signal handlers write, the poll reads */
  volatile sig_atomic_t interrupted;
};

double llm_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- epoll and curl's socket and timer callbacks ---------------------------- */

/* Registered fds carry their number in the event data; the wake pipe and
 * the caller's watch_fd are told apart by number. */
static int watch(llm_loop *loop, int op, int fd, uint32_t events)
{
  struct epoll_event ev = {.events = events, .data.fd = fd};
  return epoll_ctl(loop->epfd, op, fd, &ev);
}

/* curl tells us which sockets to watch for what. socketp remembers
 * whether the socket is already in epoll (ADD vs MOD). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
  llm_loop *loop = userp;
  uint32_t events = 0;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (socketp) {
      epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s, NULL);
      curl_multi_assign(loop->multi, s, NULL);
    }
    return 0;
  }
  if (what & CURL_POLL_IN)
    events |= EPOLLIN;
  if (what & CURL_POLL_OUT)
    events |= EPOLLOUT;
  if (socketp) {
    watch(loop, EPOLL_CTL_MOD, s, events);
  } else if (watch(loop, EPOLL_CTL_ADD, s, events) == 0) {
    curl_multi_assign(loop->multi, s, loop); /* any non-NULL marker */
  }
  return 0;
}

/* curl asks to be called with CURL_SOCKET_TIMEOUT after timeout_ms (-1:
 * cancel). Never call curl back from here: just note the deadline. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  llm_loop *loop = userp;
  (void)multi;
  loop->curl_deadline = timeout_ms < 0 ? -1 : llm_now() + (double)timeout_ms / 1000.0;
  return 0;
}

llm_loop *llm_loop_new(void)
{
  llm_loop *loop = calloc(1, sizeof *loop);
  int fds[2];
  if (!loop)
    return NULL;
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    free(loop);
    return NULL;
  }
  loop->wake_r = fds[0];
  loop->wake_w = fds[1];
  loop->curl_deadline = -1;
  loop->watched_fd = -1;
  loop->max_host_connections = LLM_LOOP_DEFAULT_HOST_CONNECTIONS;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0 || watch(loop, EPOLL_CTL_ADD, loop->wake_r, EPOLLIN) != 0) {
    llm_loop_free(loop);
    return NULL;
  }
  return loop;
}

void llm_loop_free(llm_loop *loop)
{
  if (!loop)
    return;
  for (size_t i = 0; i < loop->nheap; i++)
    free(loop->heap[i]);
  free(loop->heap);
  free(loop->ring);
  free(loop->io);
  if (loop->multi)
    curl_multi_cleanup(loop->multi);
  if (loop->epfd >= 0)
    close(loop->epfd);
  close(loop->wake_r);
  close(loop->wake_w);
  free(loop);
}

/* Created on the first transfer, so a script that makes no HTTP call never
 * loads libcurl (see curl_lazy.h). */
CURLM *llm_loop_multi(llm_loop *loop)
{
  if (!loop->multi && llm_curl_load(NULL, 0) == 0) {
    loop->multi = curl_multi_init();
    if (loop->multi) {
      curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
      curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
      curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
      curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
      curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, loop->max_host_connections);
    }
  }
  return loop->multi;
}

long llm_loop_max_host_connections(const llm_loop *loop) { return loop->max_host_connections; }

static void promote(llm_loop *loop, llm_host_slot *s);

void llm_loop_set_max_host_connections(llm_loop *loop, long n)
{
  loop->max_host_connections = n < 0 ? 0 : n;
  for (size_t i = 0; i < HOST_SLOTS; i++) /* a higher cap lets waiting ones go */
    promote(loop, &loop->hosts[i]);
  if (loop->multi)
    curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, loop->max_host_connections);
}

size_t llm_loop_pending(const llm_loop *loop)
{
  return loop->nheap + loop->nxfers + loop->count + loop->nio;
}

/* ---- descriptors of our own ------------------------------------------------ */

static uint32_t epoll_events(unsigned events)
{
  return ((events & LLM_IO_READ) ? (EPOLLIN | EPOLLRDHUP) : 0) |
         ((events & LLM_IO_WRITE) ? EPOLLOUT : 0);
}

int llm_loop_watch(llm_loop *loop, int fd, unsigned events, llm_loop_io_fn fn, void *ud)
{
  io_watch *w;
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  if ((size_t)fd >= loop->iocap) {
    size_t old = loop->iocap;
    if (llm_grow(&loop->io, &loop->iocap, (size_t)fd + 1, sizeof *loop->io) != 0)
      return -1;
    memset(loop->io + old, 0, (loop->iocap - old) * sizeof *loop->io);
  }
  w = &loop->io[fd];
  if (w->fn) {
    if (w->events != events && watch(loop, EPOLL_CTL_MOD, fd, epoll_events(events)) != 0)
      return -1;
  } else {
    if (watch(loop, EPOLL_CTL_ADD, fd, epoll_events(events)) != 0)
      return -1;
    loop->nio++;
  }
  w->fn = fn;
  w->ud = ud;
  w->events = events;
  return 0;
}

void llm_loop_unwatch(llm_loop *loop, int fd)
{
  if (fd < 0 || (size_t)fd >= loop->iocap || !loop->io[fd].fn)
    return;
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
  loop->io[fd].fn = NULL;
  loop->nio--;
}

/* ---- timer heap ---------------------------------------------------------- */

static int timer_before(const llm_timer *a, const llm_timer *b)
{
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline;
  return a->seq < b->seq;
}

/* each timer knows its place, so stopping one is O(log n) */
#define TIMER_PLACED(a, i) ((a)[i]->index = (i))
LLM_HEAP(timers, llm_timer *, timer_before, TIMER_PLACED)

llm_timer *llm_timer_start(llm_loop *loop, double delay_s, llm_loop_fn fn, void *ud)
{
  llm_timer *t = malloc(sizeof *t);
  if (!t)
    return NULL;
  if (!(delay_s > 0)) /* also catches NaN */
    delay_s = 0;
  t->deadline = llm_now() + delay_s;
  t->seq = loop->timer_seq++;
  t->fn = fn;
  t->ud = ud;
  if (timers_push(&loop->heap, &loop->nheap, &loop->capheap, t) != 0) {
    free(t);
    return NULL;
  }
  return t;
}

void llm_timer_stop(llm_loop *loop, llm_timer *t)
{
  if (!t)
    return;
  timers_remove(loop->heap, &loop->nheap, t->index);
  free(t);
}

static void fire_due_timers(llm_loop *loop)
{
  double now = llm_now();
  while (loop->nheap > 0 && loop->heap[0]->deadline <= now) {
    llm_timer *t = timers_pop(loop->heap, &loop->nheap);
    t->fn(t->ud);
    free(t);
  }
}

/* ---- ready queue ----------------------------------------------------------- */

int llm_loop_post(llm_loop *loop, llm_loop_fn fn, void *ud)
{
  if (loop->count == loop->capring) {
    size_t cap = loop->capring ? loop->capring * 2 : 256;
    callback *r = malloc(cap * sizeof *r);
    if (!r)
      return -1;
    /* unroll the ring into the new array, oldest first */
    for (size_t i = 0; i < loop->count; i++)
      r[i] = loop->ring[(loop->head + i) % loop->capring];
    free(loop->ring);
    loop->ring = r;
    loop->head = 0;
    loop->capring = cap;
  }
  loop->ring[(loop->head + loop->count) % loop->capring] = (callback){fn, ud};
  loop->count++;
  return 0;
}

/* Run only what was queued before this call: callbacks that queue more
 * work (a task waking another) must not starve I/O and timers. */
static void run_ready(llm_loop *loop)
{
  size_t n = loop->count;
  while (n-- > 0 && loop->count > 0) {
    callback cb = loop->ring[loop->head];
    loop->head = (loop->head + 1) % loop->capring;
    loop->count--;
    cb.fn(cb.ud);
  }
}

/* ---- transfers --------------------------------------------------------------- */

static llm_host_slot *slot_for(llm_loop *loop, const char *host)
{
  llm_host_slot *free_slot = NULL;
  if (strlen(host) >= HOST_KEY_MAX)
    return NULL;
  for (size_t i = 0; i < HOST_SLOTS; i++) {
    llm_host_slot *s = &loop->hosts[i];
    if (strcmp(s->key, host) == 0 && s->key[0])
      return s;
    if (!free_slot && (!s->key[0] || (s->active == 0 && !s->head)))
      free_slot = s;
  }
  if (free_slot) {
    snprintf(free_slot->key, sizeof free_slot->key, "%s", host);
    free_slot->active = 0;
    free_slot->head = free_slot->tail = NULL;
  }
  return free_slot;
}

static int cap_reached(const llm_loop *loop, const llm_host_slot *s)
{
  return loop->max_host_connections > 0 && s->active >= (size_t)loop->max_host_connections;
}

static int to_multi(llm_loop *loop, llm_xfer *x)
{
  if (curl_multi_add_handle(loop->multi, x->easy) != CURLM_OK)
    return -1;
  loop->in_multi++;
  if (x->slot)
    x->slot->active++;
  /* curl's default cap on idle connections is 4x the transfers in the
   * multi at the moment one finishes, so each dip in concurrency (a burst
   * of answers being handled, a sequential phase) closes connections the
   * next burst must open again: a TCP (and TLS) handshake each, about 5%
   * of the calls of a steady 64-way run here. Keep curl's own rule, but
   * at the busiest moment so far (4x, as curl has it, leaves room for
   * other hosts used in turn); idle ones still age out (max_idle_reuse,
   * curl's dead-connection pruning). At most 1,000 (the default per-host
   * cap, or the cap when set higher): a burst of 10,000 with the cap
   * lifted must not leave 10,000 idle TLS sessions held for the run. */
  if (loop->in_multi > loop->peak_in_multi) {
    long keep, most = loop->max_host_connections > LLM_LOOP_DEFAULT_HOST_CONNECTIONS
                        ? loop->max_host_connections : LLM_LOOP_DEFAULT_HOST_CONNECTIONS;
    loop->peak_in_multi = loop->in_multi;
    keep = 4 * (long)loop->peak_in_multi;
    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, keep < most ? keep : most);
  }
  return 0;
}

/* Hands waiting transfers to curl while their host is under the cap. A
 * failed add (out of memory) leaves the rest waiting for the next turn. */
static void promote(llm_loop *loop, llm_host_slot *s)
{
  while (s->head && !cap_reached(loop, s)) {
    llm_xfer *x = s->head;
    if (to_multi(loop, x) != 0)
      return;
    s->head = x->next;
    if (s->head)
      s->head->prev = NULL;
    else
      s->tail = NULL;
    x->waiting = 0;
  }
}

int llm_loop_add_xfer(llm_loop *loop, llm_xfer *x)
{
  if (!llm_loop_multi(loop))
    return -1;
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  x->next = x->prev = NULL;
  x->waiting = 0;
  x->slot = x->host ? slot_for(loop, x->host) : NULL;
  if (x->slot && cap_reached(loop, x->slot)) {
    x->waiting = 1;
    x->prev = x->slot->tail;
    if (x->slot->tail)
      x->slot->tail->next = x;
    else
      x->slot->head = x;
    x->slot->tail = x;
  } else if (to_multi(loop, x) != 0) {
    return -1;
  }
  loop->nxfers++;
  return 0;
}

size_t llm_loop_waiting(const llm_loop *loop) { return loop->nxfers - loop->in_multi; }

void llm_loop_start_now(llm_loop *loop)
{
  int running;
  if (loop->multi) {
    loop->curl_deadline = -1;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    /* a transfer can fail at once (refused, bad URL); curl then has no
     * socket or timer left to wake us, so the next turn must not block */
    if ((size_t)running < loop->in_multi)
      loop->done_waiting = 1;
  }
}

void llm_loop_remove_xfer(llm_loop *loop, llm_xfer *x)
{
  llm_host_slot *s = x->slot;
  if (x->waiting) { /* never reached curl: out of the FIFO */
    if (x->prev)
      x->prev->next = x->next;
    else
      s->head = x->next;
    if (x->next)
      x->next->prev = x->prev;
    else
      s->tail = x->prev;
    x->waiting = 0;
    loop->nxfers--;
    return;
  }
  if (curl_multi_remove_handle(loop->multi, x->easy) != CURLM_OK)
    return;
  loop->nxfers--;
  loop->in_multi--;
  if (s) {
    s->active--;
    promote(loop, s);
  }
}

/* Hands finished transfers to their owners. */
static void collect_done(llm_loop *loop)
{
  int left;
  CURLMsg *msg;
  loop->done_waiting = 0;
  while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
    llm_xfer *x = NULL;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE)
      continue;
    rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    llm_loop_remove_xfer(loop, x);
    x->done(x, rc);
  }
}

static void curl_timeout_due(llm_loop *loop)
{
  int running;
  if (loop->multi && loop->curl_deadline >= 0 && loop->curl_deadline <= llm_now()) {
    loop->curl_deadline = -1;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
}

/* ---- one turn -------------------------------------------------------------------- */

void llm_loop_interrupt(llm_loop *loop)
{
  int saved = errno;
  loop->interrupted = 1;
  /* a full pipe already guarantees a wakeup, so EAGAIN is fine */
  if (write(loop->wake_w, "x", 1) < 0) {
  }
  errno = saved;
}

/* Seconds until the loop must wake (ready work: 0; at most an hour). */
static double wait_s(const llm_loop *loop, double max_wait)
{
  double wait = max_wait, now = 0;
  if (loop->count > 0 || loop->interrupted || loop->done_waiting)
    return 0;
  if (loop->nheap > 0 || loop->curl_deadline >= 0)
    now = llm_now();
  if (loop->nheap > 0) {
    double d = loop->heap[0]->deadline - now;
    if (d < 0)
      d = 0;
    if (wait < 0 || d < wait)
      wait = d;
  }
  if (loop->curl_deadline >= 0) {
    double d = loop->curl_deadline - now;
    if (d < 0)
      d = 0;
    if (wait < 0 || d < wait)
      wait = d;
  }
  if (wait < 0 || wait > 3600)
    return 3600;
  return wait;
}

/* epoll_wait counts whole milliseconds, so a timer due in 2.05 ms fired at
 * 3 ms: up to 1 ms late (a paced request, a replayed chunk, llm.sleep).
 * epoll_pwait2 (Linux 5.11) takes nanoseconds. Where the kernel lacks it
 * (ENOSYS) or a seccomp filter refuses it (EPERM), the rest of the run
 * uses epoll_wait, rounding up: waking early would only spin until the
 * deadline. */
static _Atomic int no_pwait2;

int llm_loop_fine_timers(void) { return !no_pwait2; }

static int wait_events(llm_loop *loop, struct epoll_event *events, double wait)
{
  if (!no_pwait2) {
    struct timespec ts;
    int n;
    ts.tv_sec = (time_t)wait;
    ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
    n = epoll_pwait2(loop->epfd, events, MAX_EVENTS, &ts, NULL);
    if (n >= 0 || (errno != ENOSYS && errno != EPERM))
      return n;
    no_pwait2 = 1;
  }
  return epoll_wait(loop->epfd, events, MAX_EVENTS, (int)ceil(wait * 1000.0));
}

/* The caller's fd joins the epoll set while it is being watched. */
static void set_watch_fd(llm_loop *loop, int fd)
{
  if (fd == loop->watched_fd)
    return;
  if (loop->watched_fd >= 0)
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->watched_fd, NULL);
  loop->watched_fd = -1;
  if (fd >= 0 && watch(loop, EPOLL_CTL_ADD, fd, EPOLLIN) == 0)
    loop->watched_fd = fd;
}

int llm_loop_run_once(llm_loop *loop, double max_wait, int watch_fd)
{
  struct epoll_event events[MAX_EVENTS];
  int n, flags = 0, running;
  char drain[64];

  set_watch_fd(loop, watch_fd);
  /* epoll refuses regular files and /dev/null (EPERM); they never block,
   * so such an fd is ready now (and a bad one lets the caller's read fail) */
  if (watch_fd >= 0 && loop->watched_fd != watch_fd)
    flags |= LLM_LOOP_FD_READY;
  n = wait_events(loop, events, (flags & LLM_LOOP_FD_READY) ? 0 : wait_s(loop, max_wait));
  if (n < 0 && errno != EINTR)
    return -1;
  for (int i = 0; i < n; i++) {
    int fd = events[i].data.fd;
    uint32_t e = events[i].events;
    if (fd == loop->wake_r) {
      while (read(loop->wake_r, drain, sizeof drain) > 0) {
      }
    } else if (fd == loop->watched_fd && fd == watch_fd) {
      flags |= LLM_LOOP_FD_READY;
    } else if ((size_t)fd < loop->iocap && loop->io[fd].fn) {
      /* one of ours; a handler may have unwatched it earlier in this batch,
       * which the check above sees */
      io_watch *w = &loop->io[fd];
      w->fn(w->ud, ((e & (EPOLLIN | EPOLLRDHUP)) ? LLM_IO_READ : 0) |
                   ((e & EPOLLOUT) ? LLM_IO_WRITE : 0) |
                   ((e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) ? LLM_IO_HUP : 0));
    } else if (loop->multi) {
      int mask = ((e & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((e & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                 ((e & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(loop->multi, fd, mask, &running);
    }
  }
  if (loop->interrupted) {
    loop->interrupted = 0;
    flags |= LLM_LOOP_INTERRUPTED;
  }
  if (loop->multi) {
    curl_timeout_due(loop);
    collect_done(loop);
  }
  fire_due_timers(loop);
  run_ready(loop);
  return flags;
}
