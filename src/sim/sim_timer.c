/* The simulator's timers: a binary min-heap of deadlines on the monotonic
 * clock. Each waiting request owns one embedded sim_timer, so arming never
 * allocates except to grow the heap. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "heap.h"
#include "sim_server.h"

int64_t sim_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SIM_NS + ts.tv_nsec;
}

#define EARLIER(x, y) ((x)->deadline < (y)->deadline)
/* each timer knows its place, so disarming one is O(log n) */
#define PLACED(a, i) ((a)[i]->index = (i))
LLM_HEAP(timers, sim_timer *, EARLIER, PLACED)

void sim_timer_disarm(sim_timers *ts, sim_timer *t)
{
  size_t i = t->index;
  if (i == SIZE_MAX || i >= ts->n || ts->heap[i] != t)
    return;
  timers_remove(ts->heap, &ts->n, i);
  t->index = SIZE_MAX;
}

int sim_timer_arm(sim_timers *ts, sim_timer *t, int64_t deadline)
{
  sim_timer_disarm(ts, t);
  t->deadline = deadline;
  return timers_push(&ts->heap, &ts->n, &ts->cap, t);
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
