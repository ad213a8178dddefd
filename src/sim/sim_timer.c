/* The simulator's timers: a binary min-heap of deadlines on the monotonic
 * clock. Each waiting request owns one embedded sim_timer, so arming never
 * allocates except to grow the heap. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "sim_server.h"

int64_t sim_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SIM_NS + ts.tv_nsec;
}

static void place(sim_timers *ts, size_t i, sim_timer *t)
{
  ts->heap[i] = t;
  t->index = i;
}

static void sift_up(sim_timers *ts, size_t i)
{
  sim_timer *t = ts->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (ts->heap[parent]->deadline <= t->deadline)
      break;
    place(ts, i, ts->heap[parent]);
    i = parent;
  }
  place(ts, i, t);
}

static void sift_down(sim_timers *ts, size_t i)
{
  sim_timer *t = ts->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= ts->n)
      break;
    if (c + 1 < ts->n && ts->heap[c + 1]->deadline < ts->heap[c]->deadline)
      c++;
    if (t->deadline <= ts->heap[c]->deadline)
      break;
    place(ts, i, ts->heap[c]);
    i = c;
  }
  place(ts, i, t);
}

void sim_timer_disarm(sim_timers *ts, sim_timer *t)
{
  size_t i = t->index;
  sim_timer *last;
  if (i == SIZE_MAX || i >= ts->n || ts->heap[i] != t)
    return;
  t->index = SIZE_MAX;
  last = ts->heap[--ts->n];
  if (i == ts->n)
    return;
  place(ts, i, last);
  sift_down(ts, i);
  sift_up(ts, last->index);
}

int sim_timer_arm(sim_timers *ts, sim_timer *t, int64_t deadline)
{
  sim_timer_disarm(ts, t);
  if (ts->n == ts->cap) {
    size_t cap = ts->cap ? ts->cap * 2 : 256;
    sim_timer **nh = realloc(ts->heap, cap * sizeof *nh);
    if (!nh)
      return -1;
    ts->heap = nh;
    ts->cap = cap;
  }
  t->deadline = deadline;
  place(ts, ts->n++, t);
  sift_up(ts, t->index);
  return 0;
}

sim_timer *sim_timers_pop_due(sim_timers *ts, int64_t now)
{
  sim_timer *t;
  if (ts->n == 0 || ts->heap[0]->deadline > now)
    return NULL;
  t = ts->heap[0];
  sim_timer_disarm(ts, t);
  return t;
}

int64_t sim_timers_next(const sim_timers *ts)
{
  return ts->n ? ts->heap[0]->deadline : INT64_MAX;
}

void sim_timers_free(sim_timers *ts)
{
  free(ts->heap);
  ts->heap = NULL;
  ts->n = ts->cap = 0;
}
