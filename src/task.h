/* Tasks: Lua coroutines scheduled on the event loop.
 *
 * Every piece of Lua code llmrun runs (the script's main chunk, a REPL line,
 * each llm.spawn) is a task. A C primitive that must wait (a sleep, a
 * transfer, a join) registers what it waits for as an llm_wait, then yields
 * the task with `return llm_task_suspend(...)`; when the operation finishes
 * its C callback calls llm_task_wake(), the loop resumes the task, and the
 * primitive's continuation builds the results. Lua never runs inside an I/O
 * or timer callback: those only queue the resume.
 *
 * Cancelling a task cancels its pending operation (llm_wait.cancel), closes
 * its coroutine (running pending __close handlers) and cancels its children;
 * whoever waits on it sees `false, {kind="cancelled"}`. */
#ifndef LLMRUN_TASK_H
#define LLMRUN_TASK_H

#include <lua.h>

#include "lmod_util.h" /* LLM_ERROR_METATABLE: the errors tasks end with */
#include "loop.h"

typedef struct llm_sched llm_sched;
typedef struct llm_task llm_task;

/* What a waiting task waits for, embedded first in the primitive's own
 * state. cancel() undoes the operation (stop the timer, abort the transfer),
 * releases the state, and must not wake the task. */
typedef struct llm_wait {
  void (*cancel)(struct llm_wait *w);
} llm_wait;

enum llm_task_status {
  LLM_TASK_READY, LLM_TASK_RUNNING, LLM_TASK_WAITING,
  LLM_TASK_DONE, LLM_TASK_FAILED, LLM_TASK_CANCELLED
};

enum llm_run_result {
  LLM_RUN_DONE,        /* the awaited task finished */
  LLM_RUN_INTERRUPTED, /* SIGINT, SIGTERM or SIGHUP (see llm_sched_interrupt) */
  LLM_RUN_FD_READY,    /* the watched descriptor is readable */
  LLM_RUN_STUCK,       /* tasks wait, but nothing pending can ever wake them */
  LLM_RUN_ERROR,       /* the loop failed (curl) */
  LLM_RUN_EXIT         /* a task called llm.exit(code): llm_sched_exit_code */
};

#define LLM_TASK_METATABLE "llm.task"
#define LLM_EXIT_METATABLE "llm.exit"   /* llm.exit(code) unwinds with one */

/* The scheduler lives as long as the Lua state; L must be its main thread. */
llm_sched *llm_sched_new(lua_State *L, llm_loop *loop);
void llm_sched_free(llm_sched *s);
llm_loop *llm_sched_loop(llm_sched *s);
/* The scheduler registered for state L (by llm_sched_new). */
llm_sched *llm_sched_of(lua_State *L);

/* Pops a function and its nargs arguments from L, pushes a new task that
 * will run it on the loop's next turn. The running task becomes its
 * parent. Returns NULL (and pushes nothing) when out of memory. */
llm_task *llm_task_spawn(llm_sched *s, lua_State *L, int nargs);
llm_task *llm_task_check(lua_State *L, int idx);
void llm_task_push(lua_State *L, llm_task *t);
llm_task *llm_sched_current(llm_sched *s);

int llm_task_status(const llm_task *t);
const char *llm_task_status_name(const llm_task *t);
unsigned llm_task_id(const llm_task *t);
int llm_task_finished(const llm_task *t);
/* Marks a failure as seen, so it is not reported as uncaught. */
void llm_task_observe(llm_task *t);
/* For the finished task at idx: pushes `true, results...`, or
 * `false, err, traceback` when it failed or was cancelled; returns the
 * count and marks the outcome as seen. */
int llm_task_push_outcome(lua_State *L, int idx);

/* For primitives. Raises a Lua error that names `what` and says what to do
 * when the caller is not a task or cannot yield here (inside require, a
 * table.sort comparator, __gc...). Returns the running task. */
llm_task *llm_task_check_can_wait(lua_State *L, llm_sched *s, const char *what);
/* Yields the running task until llm_task_wake(); then k(L, LUA_YIELD, ctx)
 * runs in the task and returns its results. Use as `return ...`. */
int llm_task_suspend(lua_State *L, llm_sched *s, llm_wait *w, lua_KContext ctx,
                     lua_KFunction k);
/* Ends the wait of t; called by the operation when it completes. The
 * llm_wait stays registered until the task runs again, so an operation
 * must remember that it completed: a cancel() after completion (the task
 * was cancelled before it could run) only frees. The continuation frees
 * the state when the task does run. */
void llm_task_wake(llm_sched *s, llm_task *t);
/* A wait that ends when target finishes (for task:wait); NULL when out
 * of memory. Free it with llm_task_free_wait() in the continuation. */
llm_wait *llm_task_join(llm_sched *s, llm_task *target, llm_task *waiter);
void llm_task_free_wait(llm_wait *w);
/* The operation t waits for, or NULL. */
llm_wait *llm_task_waiting_for(const llm_task *t);
/* Cancels and clears t's pending operation without waking it, for a
 * wait that could not reach the scheduler. */
void llm_task_abandon_wait(llm_task *t);

/* Cancel t (and its children). A running task is cancelled when it next
 * yields; llm_task_cancel returns 1 in that case, else 0. */
int llm_task_cancel(llm_sched *s, llm_task *t);
/* Cancel every unfinished task. */
void llm_sched_cancel_all(llm_sched *s);
/* Count of unfinished tasks. */
size_t llm_sched_live(const llm_sched *s);

/* Run the loop until `until` finishes, SIGINT arrives, or watch_fd (if
 * >= 0) is readable. With until == NULL and no watch_fd: until no task is
 * left. With until == NULL and a watch_fd: only the fd or SIGINT end it
 * (the REPL waiting for input while background tasks run). */
int llm_sched_run(llm_sched *s, llm_task *until, int watch_fd);

/* The code given to llm.exit by any task, or -1. */
int llm_sched_exit_code(const llm_sched *s);

/* Async-signal-safe: make llm_sched_run return LLM_RUN_INTERRUPTED and,
 * while it waits for a task (a script, a REPL line), stop the running Lua
 * code at the next instruction hook with the interrupt error (an
 * llm.error, kind "cancelled", interrupted = true). Until
 * llm_sched_interrupt_done, foreground work stays interrupted: caught
 * errors are raised again (see llm_sched_stopping), foreground tasks that
 * resume stop at once, and __close handlers that run meanwhile get a
 * bounded budget of instructions. C code (string.find on a pathological
 * pattern) cannot be stopped this way: the host's second signal is the
 * answer there. */
void llm_sched_interrupt(llm_sched *s);
int llm_sched_take_interrupt(llm_sched *s);
/* The interrupted work has been dealt with (the REPL is back at its
 * prompt): code runs normally again. */
void llm_sched_interrupt_done(llm_sched *s);
/* Is the thread L being stopped by an interrupt? pcall, xpcall and
 * coroutine.resume (lmod_protect.c) then raise the interrupt again
 * instead of returning the error they caught. */
int llm_sched_stopping(lua_State *L);
/* Opens (on = 1) or closes (on = 0) a section that an interrupt does
 * not cut: the hook waits until the outermost section closes, then the
 * caller raises the interrupt if llm_sched_stopping(L). For short,
 * non-yielding work that must be whole (a call's finish: cache entry and
 * call log row together). */
void llm_sched_shield(llm_sched *s, int on);
/* Pushes the interrupt error value. */
void llm_sched_push_interrupt(lua_State *L);
/* lua_resume(co, from, ...) for coroutine.resume: keeps the scheduler's
 * idea of the running thread right, so an interrupt reaches code running
 * in a user coroutine, and passes an interrupt that stopped co on to the
 * code that resumed it. */
int llm_sched_resume(lua_State *from, lua_State *co, int nargs, int *nres);

/* Failed tasks nobody waited on are reported on stderr as "uncaught error
 * in task" when collected; this returns how many were reported. */
int llm_sched_uncaught(const llm_sched *s);

/* The value a task yields to reach the scheduler through user coroutines
 * (see lualib/llm/init.lua, which wraps coroutine.resume and .wrap). */
void *llm_task_yield_token(void);

#endif
