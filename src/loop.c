/* The event loop: curl_multi_poll for I/O, a binary min-heap of timers and a
 * FIFO of callbacks. See loop.h for the contract. */
#include "loop.h"

#include "curl_lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

struct llm_loop {
  CURLM *multi;
  size_t nxfers;

  llm_timer **heap;
  size_t nheap, capheap;
  uint64_t timer_seq;

  callback *ring;    /* ready queue as a growable ring buffer */
  size_t head, count, capring;

  int wake_r, wake_w; /* self-pipe: signal handlers write, the poll reads */
  volatile sig_atomic_t interrupted;
};

double llm_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
  if (loop->multi)
    curl_multi_cleanup(loop->multi);
  close(loop->wake_r);
  close(loop->wake_w);
  free(loop);
}

/* Created on the first transfer, so a script that makes no HTTP call never
 * loads libcurl (see curl_lazy.h). */
CURLM *llm_loop_multi(llm_loop *loop)
{
  if (!loop->multi && llm_curl_load(NULL, 0) == 0)
    loop->multi = curl_multi_init();
  return loop->multi;
}

size_t llm_loop_pending(const llm_loop *loop)
{
  return loop->nheap + loop->nxfers + loop->count;
}

/* ---- timer heap ---------------------------------------------------------- */

static int timer_before(const llm_timer *a, const llm_timer *b)
{
  if (a->deadline != b->deadline)
    return a->deadline < b->deadline;
  return a->seq < b->seq;
}

static void heap_set(llm_loop *loop, size_t i, llm_timer *t)
{
  loop->heap[i] = t;
  t->index = i;
}

static void heap_up(llm_loop *loop, size_t i)
{
  llm_timer *t = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!timer_before(t, loop->heap[parent]))
      break;
    heap_set(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_set(loop, i, t);
}

static void heap_down(llm_loop *loop, size_t i)
{
  llm_timer *t = loop->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= loop->nheap)
      break;
    if (child + 1 < loop->nheap && timer_before(loop->heap[child + 1], loop->heap[child]))
      child++;
    if (!timer_before(loop->heap[child], t))
      break;
    heap_set(loop, i, loop->heap[child]);
    i = child;
  }
  heap_set(loop, i, t);
}

static void heap_remove(llm_loop *loop, size_t i)
{
  llm_timer *last = loop->heap[--loop->nheap];
  if (i == loop->nheap)
    return;
  heap_set(loop, i, last);
  heap_up(loop, i);
  heap_down(loop, last->index);
}

llm_timer *llm_timer_start(llm_loop *loop, double delay_s, llm_loop_fn fn, void *ud)
{
  llm_timer *t;
  if (loop->nheap == loop->capheap) {
    size_t cap = loop->capheap ? loop->capheap * 2 : 64;
    llm_timer **h = realloc(loop->heap, cap * sizeof *h);
    if (!h)
      return NULL;
    loop->heap = h;
    loop->capheap = cap;
  }
  t = malloc(sizeof *t);
  if (!t)
    return NULL;
  if (!(delay_s > 0)) /* also catches NaN */
    delay_s = 0;
  t->deadline = llm_now() + delay_s;
  t->seq = loop->timer_seq++;
  t->fn = fn;
  t->ud = ud;
  loop->nheap++;
  heap_set(loop, loop->nheap - 1, t);
  heap_up(loop, loop->nheap - 1);
  return t;
}

void llm_timer_stop(llm_loop *loop, llm_timer *t)
{
  if (!t)
    return;
  heap_remove(loop, t->index);
  free(t);
}

static void fire_due_timers(llm_loop *loop)
{
  double now = llm_now();
  while (loop->nheap > 0 && loop->heap[0]->deadline <= now) {
    llm_timer *t = loop->heap[0];
    heap_remove(loop, 0);
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

int llm_loop_add_xfer(llm_loop *loop, llm_xfer *x)
{
  if (!llm_loop_multi(loop))
    return -1;
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  if (curl_multi_add_handle(loop->multi, x->easy) != CURLM_OK)
    return -1;
  loop->nxfers++;
  return 0;
}

void llm_loop_remove_xfer(llm_loop *loop, llm_xfer *x)
{
  if (curl_multi_remove_handle(loop->multi, x->easy) == CURLM_OK)
    loop->nxfers--;
}

static int drive_transfers(llm_loop *loop)
{
  int running, left;
  CURLMsg *msg;
  if (curl_multi_perform(loop->multi, &running) != CURLM_OK)
    return -1;
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
  return 0;
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

static int wait_ms(const llm_loop *loop, double max_wait)
{
  double wait = max_wait;
  if (loop->count > 0 || loop->interrupted)
    return 0;
  if (loop->nheap > 0) {
    double d = loop->heap[0]->deadline - llm_now();
    if (d < 0)
      d = 0;
    if (wait < 0 || d < wait)
      wait = d;
  }
  if (wait < 0 || wait > 3600)
    return 3600 * 1000; /* curl_multi_poll also stops at curl's own timeouts */
  /* round up: waking early would only spin until the deadline */
  return (int)ceil(wait * 1000.0);
}

/* The same wait without curl: poll(2) on our own descriptors. */
static int wait_for_fds(struct curl_waitfd *fds, unsigned nfds, int timeout_ms)
{
  struct pollfd p[2];
  int n;
  for (unsigned i = 0; i < nfds; i++)
    p[i] = (struct pollfd){.fd = fds[i].fd, .events = POLLIN};
  n = poll(p, nfds, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -1;
  for (unsigned i = 0; i < nfds; i++)
    fds[i].revents = p[i].revents ? CURL_WAIT_POLLIN : 0;
  return 0;
}

int llm_loop_run_once(llm_loop *loop, double max_wait, int watch_fd)
{
  struct curl_waitfd fds[2];
  unsigned nfds = 1;
  int flags = 0;
  char drain[64];

  fds[0] = (struct curl_waitfd){.fd = loop->wake_r, .events = CURL_WAIT_POLLIN};
  if (watch_fd >= 0)
    fds[nfds++] = (struct curl_waitfd){.fd = watch_fd, .events = CURL_WAIT_POLLIN};

  if (loop->multi) {
    if (curl_multi_poll(loop->multi, fds, nfds, wait_ms(loop, max_wait), NULL) != CURLM_OK)
      return -1;
  } else if (wait_for_fds(fds, nfds, wait_ms(loop, max_wait)) != 0) {
    return -1;
  }
  if (fds[0].revents)
    while (read(loop->wake_r, drain, sizeof drain) > 0) {
    }
  if (loop->interrupted) {
    loop->interrupted = 0;
    flags |= LLM_LOOP_INTERRUPTED;
  }
  if (nfds > 1 && fds[1].revents)
    flags |= LLM_LOOP_FD_READY;

  if (loop->nxfers > 0 && drive_transfers(loop) != 0)
    return -1;
  fire_due_timers(loop);
  run_ready(loop);
  return flags;
}
