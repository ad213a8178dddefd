/* The event loop: one curl_multi handle, a timer heap and a ready queue.
 *
 * Everything that waits in llmrun waits here: HTTP transfers are easy
 * handles on the shared multi, sleeps are timers, and work that must run
 * "soon but not now" (waking a task) goes on the ready queue. The loop knows
 * nothing about Lua; the task scheduler (task.c) drives it.
 *
 * Single-threaded: only llm_loop_interrupt() may be called from a signal
 * handler or another thread. */
#ifndef LLMRUN_LOOP_H
#define LLMRUN_LOOP_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct llm_loop llm_loop;
typedef struct llm_timer llm_timer;
typedef void (*llm_loop_fn)(void *ud);

/* A transfer handed to the loop. The owner embeds this struct in its own
 * and sets done(); the loop calls done() exactly once, after curl finished
 * the transfer and the handle was removed from the multi. */
typedef struct llm_xfer {
  CURL *easy;
  void (*done)(struct llm_xfer *x, CURLcode rc);
  /* Set by the owner, or NULL: "host:port" when the transfer needs a
   * connection of its own (plain http: HTTP/1.1, no multiplexing). The
   * loop then holds such transfers beyond the host connection cap in its
   * own FIFO, not in curl's queue: libcurl 7.88 does work in proportion
   * to its queue on every finished transfer (10,000 calls at once took 4x
   * as long). Transfers that may multiplex (https: HTTP/2) are left to
   * curl, which can put many on one connection. */
  const char *host;
  /* private to the loop */
  struct llm_xfer *next, *prev;
  struct llm_host_slot *slot;
  int waiting;
} llm_xfer;

llm_loop *llm_loop_new(void);
void llm_loop_free(llm_loop *loop);
/* The shared multi handle, created (and libcurl loaded) on first use;
 * NULL when libcurl cannot be loaded. */
CURLM *llm_loop_multi(llm_loop *loop);

/* At most this many connections to one host (name and port) at once;
 * more transfers wait in curl's queue for a connection to free up, so a
 * burst of 10,000 calls does not open 10,000 sockets (a server that
 * accepts a few thousand would refuse the rest). HTTP/2 multiplexes many
 * transfers over each connection. 0: no limit. The default is the
 * official OpenAI SDK's pool size. */
#define LLM_LOOP_DEFAULT_HOST_CONNECTIONS 1000
long llm_loop_max_host_connections(const llm_loop *loop);
void llm_loop_set_max_host_connections(llm_loop *loop, long n);

/* Monotonic clock in seconds (CLOCK_MONOTONIC, nanosecond source). */
double llm_now(void);

/* Timers fire once, in deadline order (ties in start order). The handle is
 * valid until the callback starts or llm_timer_stop() returns. */
llm_timer *llm_timer_start(llm_loop *loop, double delay_s, llm_loop_fn fn, void *ud);
void llm_timer_stop(llm_loop *loop, llm_timer *t);

/* Queue fn(ud) to run on the next turn of the loop, in FIFO order.
 * Returns 0, or -1 when out of memory. */
int llm_loop_post(llm_loop *loop, llm_loop_fn fn, void *ud);

/* Transfers: add registers x->easy with the multi (or, past the host
 * connection cap, holds it until a transfer to that host ends); remove
 * aborts it without calling done(). */
int llm_loop_add_xfer(llm_loop *loop, llm_xfer *x);
void llm_loop_remove_xfer(llm_loop *loop, llm_xfer *x);
/* Transfers held in the loop's FIFOs, waiting for a connection. */
size_t llm_loop_waiting(const llm_loop *loop);

/* Lets curl start newly added transfers at once (connect, or send on a
 * kept-alive connection) instead of on the loop's next turn: the request
 * leaves before the calling task goes on, which keeps measured latency
 * honest. Runs only C callbacks, never Lua. */
void llm_loop_start_now(llm_loop *loop);

/* Descriptors of our own (a server's listening and client sockets) beside
 * curl's: fn(ud, events) runs from the loop turn when fd is ready, with
 * LLM_IO_* bits. watch adds fd or changes what it waits for; unwatch
 * before closing it. Returns 0, or -1 (errno set). */
enum { LLM_IO_READ = 1, LLM_IO_WRITE = 2, LLM_IO_HUP = 4 };
typedef void (*llm_loop_io_fn)(void *ud, unsigned events);
int llm_loop_watch(llm_loop *loop, int fd, unsigned events, llm_loop_io_fn fn, void *ud);
void llm_loop_unwatch(llm_loop *loop, int fd);

/* Work the loop can still do: timers + transfers + queued callbacks +
 * watched descriptors. */
size_t llm_loop_pending(const llm_loop *loop);

/* One turn: wait for I/O, a timer, an interrupt or watch_fd (if >= 0) to
 * become readable, for at most max_wait seconds (< 0: no limit; the wait is
 * 0 while callbacks are queued), then dispatch finished transfers, due
 * timers and the callbacks queued before this turn. Returns a bit set of
 * LLM_LOOP_* flags, or -1 when curl failed. */
enum { LLM_LOOP_INTERRUPTED = 1, LLM_LOOP_FD_READY = 2 };
int llm_loop_run_once(llm_loop *loop, double max_wait, int watch_fd);

/* 1 while the loop waits with nanosecond timeouts (epoll_pwait2); 0 once
 * the kernel refused it and waits are rounded up to milliseconds. */
int llm_loop_fine_timers(void);

/* Async-signal-safe: make the current or next wait return at once with
 * LLM_LOOP_INTERRUPTED. */
void llm_loop_interrupt(llm_loop *loop);

#endif
