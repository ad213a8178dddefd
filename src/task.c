/* Tasks and their scheduler. See task.h for the model. */
#include "task.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uservalue slots of a task userdata */
enum { UV_THREAD = 1, UV_OUTCOME = 2, UV_TRACEBACK = 3 };

/* A task waiting in task:wait() for another one. */
typedef struct join {
  llm_wait base;
  llm_sched *s;
  llm_task *waiter, *target;
  struct join *prev, *next;
} join;

struct llm_task {
  llm_sched *s;
  lua_State *co;          /* the coroutine; NULL once finished */
  int ref;                /* registry ref: alive while unfinished or queued */
  unsigned id;
  int status;
  int nargs;              /* arguments waiting on co's stack for the first resume */
  unsigned queued : 1;    /* a resume is posted on the loop */
  unsigned wake_pending : 1;
  unsigned cancel_pending : 1;
  unsigned observed : 1;  /* someone waited on it: failures are not "uncaught" */
  unsigned traced : 1;    /* task_msgh stored the traceback of its failure */
  llm_wait *wait;
  llm_task *parent, *child, *prev_sib, *next_sib;
  join *joiners;
};

struct llm_sched {
  lua_State *L;
  llm_loop *loop;
  llm_task *current;
  lua_State *volatile running; /* the thread running Lua now: read by the signal handler */
  volatile sig_atomic_t interrupt;
  volatile sig_atomic_t hook_on_interrupt; /* stop running Lua on SIGINT? */
  /* Set by an interrupt of foreground work, cleared by
   * llm_sched_interrupt_done: until then the foreground tasks are stopped
   * again wherever they run (see interrupt_hook). */
  volatile sig_atomic_t cancelling;
  llm_task *fg;           /* the task llm_sched_run waits for, or NULL */
  int shielded;           /* depth of llm_sched_shield: interrupts wait */
  int exit_code;          /* llm.exit(code) from any task; -1: none */
  size_t live;
  unsigned next_id;
  int uncaught;
};

static const char SCHED_KEY = 's';
static const char INTERRUPT_KEY = 'i'; /* the error an interrupt raises */
static char YIELD_TOKEN; /* only its address matters */

void *llm_task_yield_token(void) { return (void *)&YIELD_TOKEN; }

/* ---- scheduler lifetime ---------------------------------------------------- */

static int task_gc(lua_State *L);

llm_sched *llm_sched_new(lua_State *L, llm_loop *loop)
{
  llm_sched *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->L = L;
  s->loop = loop;
  s->exit_code = -1;
  lua_pushlightuserdata(L, s);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SCHED_KEY);
  /* The metatable carries __gc so an unobserved failure is reported when
   * its task is collected; lmod_task.c adds the methods. */
  luaL_newmetatable(L, LLM_TASK_METATABLE);
  lua_pushcfunction(L, task_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* Shared with lualib/llm/errors.lua, which fills in __tostring. */
  luaL_newmetatable(L, LLM_ERROR_METATABLE);
  luaL_newmetatable(L, LLM_EXIT_METATABLE);
  lua_pop(L, 2);
  /* One error value for every interrupt, made now: the hook that raises
   * it must not allocate (the interrupt may be stopping a runaway
   * allocation), and pcall recognises it by identity. */
  llm_push_error(L, "cancelled", NULL, "interrupted");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "interrupted");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &INTERRUPT_KEY);
  return s;
}

void llm_sched_free(llm_sched *s) { free(s); }
llm_loop *llm_sched_loop(llm_sched *s) { return s->loop; }
size_t llm_sched_live(const llm_sched *s) { return s->live; }
int llm_sched_uncaught(const llm_sched *s) { return s->uncaught; }
llm_task *llm_sched_current(llm_sched *s) { return s->current; }

llm_sched *llm_sched_of(lua_State *L)
{
  llm_sched *s;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &SCHED_KEY);
  s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

/* ---- task accessors ---------------------------------------------------------- */

static const char *const status_names[] = {
  "ready", "running", "waiting", "done", "failed", "cancelled"
};

int llm_task_status(const llm_task *t) { return t->status; }
const char *llm_task_status_name(const llm_task *t) { return status_names[t->status]; }
unsigned llm_task_id(const llm_task *t) { return t->id; }
int llm_task_finished(const llm_task *t) { return t->status >= LLM_TASK_DONE; }
void llm_task_observe(llm_task *t) { t->observed = 1; }
llm_wait *llm_task_waiting_for(const llm_task *t) { return t->wait; }

llm_task *llm_task_check(lua_State *L, int idx)
{
  return luaL_checkudata(L, idx, LLM_TASK_METATABLE);
}

/* Only valid while the task holds its registry ref (unfinished or
 * queued); otherwise callers have the userdata on a stack already. */
void llm_task_push(lua_State *L, llm_task *t)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref);
}

/* ---- family tree: cancelling a task cancels what it spawned --------------- */

static void link_child(llm_task *parent, llm_task *t)
{
  t->parent = parent;
  t->prev_sib = NULL;
  t->next_sib = parent->child;
  if (parent->child)
    parent->child->prev_sib = t;
  parent->child = t;
}

static void unlink_child(llm_task *t)
{
  if (!t->parent)
    return;
  if (t->prev_sib)
    t->prev_sib->next_sib = t->next_sib;
  else
    t->parent->child = t->next_sib;
  if (t->next_sib)
    t->next_sib->prev_sib = t->prev_sib;
  t->parent = t->prev_sib = t->next_sib = NULL;
}

/* A finished task's running children move to its parent, so cancelling
 * an ancestor (Ctrl-C on a REPL line) still reaches them. */
static void reparent_children(llm_task *t)
{
  while (t->child) {
    llm_task *c = t->child;
    unlink_child(c);
    if (t->parent)
      link_child(t->parent, c);
  }
}

/* ---- running ------------------------------------------------------------------ */

static void resume_cb(void *ud);

static void enqueue(llm_sched *s, llm_task *t)
{
  if (t->queued)
    return;
  if (llm_loop_post(s->loop, resume_cb, t) != 0) {
    /* Out of memory for the queue: nothing sane is left to do. */
    fputs("llmrun: out of memory scheduling a task\n", stderr);
    abort();
  }
  t->queued = 1;
}

static void release_if_idle(llm_sched *s, llm_task *t)
{
  if (llm_task_finished(t) && !t->queued && t->ref != LUA_NOREF) {
    int ref = t->ref;
    t->ref = LUA_NOREF;
    luaL_unref(s->L, LUA_REGISTRYINDEX, ref);
  }
}

static void wake_joiners(llm_sched *s, llm_task *t)
{
  while (t->joiners) {
    join *j = t->joiners;
    t->joiners = j->next;
    if (j->next)
      j->next->prev = NULL;
    j->prev = j->next = NULL;
    j->target = NULL; /* done: cancel() now only frees */
    t->observed = 1;
    llm_task_wake(s, j->waiter);
  }
}

static void join_cancel(llm_wait *w)
{
  join *j = (join *)w;
  if (j->target) {
    if (j->prev)
      j->prev->next = j->next;
    else
      j->target->joiners = j->next;
    if (j->next)
      j->next->prev = j->prev;
  }
  free(j);
}

llm_wait *llm_task_join(llm_sched *s, llm_task *target, llm_task *waiter)
{
  join *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->base.cancel = join_cancel;
  j->s = s;
  j->waiter = waiter;
  j->target = target;
  j->next = target->joiners;
  if (j->next)
    j->next->prev = j;
  target->joiners = j;
  return &j->base;
}

void llm_task_free_wait(llm_wait *w) { free(w); }

/* Common end of a task, after its outcome was stored. */
static void finish(llm_sched *s, llm_task *t, int status)
{
  lua_State *L = s->L;
  if (t->wait) { /* a wait that never reached the scheduler */
    llm_wait *w = t->wait;
    t->wait = NULL;
    w->cancel(w);
  }
  t->status = status;
  llm_task_push(L, t);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, UV_THREAD); /* let the coroutine be collected */
  lua_pop(L, 1);
  t->co = NULL;
  s->live--;
  reparent_children(t);
  unlink_child(t);
  wake_joiners(s, t);
  release_if_idle(s, t);
}

static void store_outcome(llm_sched *s, llm_task *t, int slot)
{
  /* value on top of s->L */
  llm_task_push(s->L, t);
  lua_insert(s->L, -2);
  lua_setiuservalue(s->L, -2, slot);
  lua_pop(s->L, 1);
}

static void finish_ok(llm_sched *s, llm_task *t, int nres)
{
  lua_State *L = s->L;
  lua_createtable(L, nres, 1);
  lua_xmove(t->co, L, nres);
  for (int i = nres; i >= 1; i--)  /* r1..ri sit above the table */
    lua_rawseti(L, -i - 1, i);
  lua_pushinteger(L, nres);
  lua_setfield(L, -2, "n");
  store_outcome(s, t, UV_OUTCOME);
  finish(s, t, LLM_TASK_DONE);
}

int llm_sched_exit_code(const llm_sched *s) { return s->exit_code; }

static void interrupt_hook(lua_State *L, lua_Debug *ar);

/* Is the value at idx the error an interrupt raises? */
static int is_interrupt(lua_State *L, int idx)
{
  int yes;
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &INTERRUPT_KEY);
  yes = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return yes;
}

/* While an interrupt is being handled, Lua code that runs in a task
 * (its __close handlers, code that caught the interrupt) is stopped
 * again after this many instructions: enough for a guard that releases
 * what it holds, and ~1 ms for a loop. */
#define CANCEL_HOOK_COUNT 100000

static void arm_interrupt(lua_State *co, int count)
{
  if (count == 1)
    lua_sethook(co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
  else
    lua_sethook(co, interrupt_hook, LUA_MASKCOUNT, count);
}

/* Closes t's coroutine, running its pending __close handlers, as
 * interruptible as the task itself: s->running points at it meanwhile,
 * and while an interrupt is handled the handlers get a bounded budget. */
static void close_thread(llm_sched *s, llm_task *t)
{
  lua_State *prev = s->running;
  if (s->cancelling && lua_gethook(t->co) != interrupt_hook)
    arm_interrupt(t->co, CANCEL_HOOK_COUNT);
  s->running = t->co;
  lua_resetthread(t->co);
  s->running = prev;
}

static void finish_error(llm_sched *s, llm_task *t)
{
  lua_State *L = s->L;
  int status = LLM_TASK_FAILED;
  /* error object on top of co. task_body caught it, ran the __close
   * handlers and raised it again, after task_msgh kept the traceback of
   * where it happened; a memory error calls no handler and has none. */
  if (!t->traced) {
    lua_pushliteral(L, "");
    store_outcome(s, t, UV_TRACEBACK);
  }
  close_thread(s, t); /* nothing is left to close: only frees the stack */
  lua_xmove(t->co, L, 1);
  if (is_interrupt(L, -1)) {
    /* stopped by an interrupt: cancelled, not an error to report */
    status = LLM_TASK_CANCELLED;
    t->observed = 1;
  } else if (llm_has_class(L, -1, LLM_EXIT_METATABLE) && s->exit_code < 0) {
    /* llm.exit(code) in any task ends the run with that code */
    lua_getfield(L, -1, "code");
    s->exit_code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    t->observed = 1;
  }
  store_outcome(s, t, UV_OUTCOME);
  finish(s, t, status);
}

static void push_cancelled_error(lua_State *L)
{
  llm_push_error(L, "cancelled", NULL, "task cancelled");
}

static void kill_task(llm_sched *s, llm_task *t);

/* Is t the task llm_sched_run waits for, or one it spawned? */
static int is_foreground(const llm_sched *s, const llm_task *t)
{
  for (; t; t = t->parent)
    if (t == s->fg)
      return 1;
  return 0;
}

static void step(llm_sched *s, llm_task *t)
{
  int nres = 0, st, nargs = t->nargs;
  llm_task *prev = s->current;
  lua_State *prev_running = s->running;

  t->nargs = 0;
  /* The continuation that runs now owns (and frees) what it waited for. */
  t->wait = NULL;
  t->status = LLM_TASK_RUNNING;
  /* foreground work resumed while an interrupt is handled stops at once */
  if (s->cancelling && is_foreground(s, t))
    arm_interrupt(t->co, 1);
  s->current = t;
  s->running = t->co;
  st = lua_resume(t->co, NULL, nargs, &nres);
  s->running = prev_running;
  s->current = prev;
  /* an interrupt armed just as the task yielded must not fire on its
   * next, unrelated resume; while the interrupt is handled it stays, so
   * closing the task (kill_task) is interruptible too */
  if (!s->cancelling && lua_gethook(t->co) == interrupt_hook)
    lua_sethook(t->co, NULL, 0, 0);

  if (st == LUA_YIELD) {
    int ours = nres >= 1 && lua_touserdata(t->co, -1) == &YIELD_TOKEN;
    lua_pop(t->co, nres);
    if (t->cancel_pending) {
      /* cancelled while it ran (by itself or a task it woke): it is
       * suspended now, so kill_task can close it instead of deferring */
      t->cancel_pending = 0;
      t->status = LLM_TASK_READY;
      kill_task(s, t);
    } else if (ours && t->wait && !t->wake_pending) {
      t->status = LLM_TASK_WAITING;
    } else {
      /* woken before it yielded, or a plain coroutine.yield() at the top
       * of a task: run again on the next turn */
      t->wake_pending = 0;
      t->status = LLM_TASK_READY;
      enqueue(s, t);
    }
  } else if (st == LUA_OK) {
    finish_ok(s, t, nres);
  } else {
    finish_error(s, t);
  }
}

static void resume_cb(void *ud)
{
  llm_task *t = ud;
  llm_sched *s = t->s;
  t->queued = 0;
  if (t->status == LLM_TASK_READY)
    step(s, t);
  else
    release_if_idle(s, t);
}

/* ---- spawning ------------------------------------------------------------------ */

/* The message handler of task_body: keeps the traceback of where the
 * error happened (the stack is still intact here) in the task. The last
 * line is task_body's own frame, which says nothing: it is cut. */
static int task_msgh(lua_State *L)
{
  llm_sched *s = llm_sched_of(L);
  llm_task *t = s ? s->current : NULL;
  const char *tb, *cut;
  if (!t || t->co != L)
    return 1;
  tb = (luaL_traceback(L, L, NULL, 1), lua_tostring(L, -1));
  cut = strrchr(tb, '\n');
  if (cut && strcmp(cut, "\n\t[C]: in ?") == 0) {
    lua_pushlstring(L, tb, (size_t)(cut - tb));
    lua_remove(L, -2);
  }
  llm_task_push(L, t);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, UV_TRACEBACK);
  lua_pop(L, 1);
  t->traced = 1;
  return 1; /* the error, unchanged */
}

static int task_body_k(lua_State *L, int status, lua_KContext ctx)
{
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L); /* the error, after the __close handlers ran */
  return lua_gettop(L) - 1; /* the results, above the handler */
}

/* Every task runs its function through this protected call, so a failure
 * unwinds inside the coroutine: its __close handlers run there with hooks
 * enabled (an error thrown from a hook, like the interrupt, leaves them
 * off in a coroutine it escapes from, and a looping __close could then
 * never be stopped). */
static int task_body(lua_State *L)
{
  lua_pushcfunction(L, task_msgh);
  lua_insert(L, 1); /* handler, function, arguments */
  return task_body_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0, task_body_k), 0);
}

llm_task *llm_task_spawn(llm_sched *s, lua_State *L, int nargs)
{
  lua_State *co;
  llm_task *t;

  if (!lua_checkstack(L, 4))
    return NULL;
  co = lua_newthread(L);
  lua_insert(L, -(nargs + 2));  /* thread below function and arguments */
  lua_pushcfunction(co, task_body);
  lua_xmove(L, co, nargs + 1);  /* task_body(function, arguments...) */
  t = lua_newuserdatauv(L, sizeof *t, 3);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, LLM_TASK_METATABLE);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, UV_THREAD);
  lua_remove(L, -2);

  t->s = s;
  t->co = co;
  t->nargs = nargs + 1;
  t->id = ++s->next_id;
  t->status = LLM_TASK_READY;
  if (s->current)
    link_child(s->current, t);
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->live++;
  enqueue(s, t);
  return t;
}

/* ---- waiting ---------------------------------------------------------------------- */

llm_task *llm_task_check_can_wait(lua_State *L, llm_sched *s, const char *what)
{
  llm_task *t = s->current;
  if (!t)
    luaL_error(L, "%s must be called from a task (the script body, a REPL "
                  "line or a function given to llm.spawn)", what);
  if (!lua_isyieldable(L))
    luaL_error(L, "%s cannot wait here: this code runs inside require, a "
                  "metamethod such as __gc or __tostring, a table.sort "
                  "comparator, a string.gsub callback or another C function "
                  "that cannot be suspended; call it from the script body "
                  "or from a function run with llm.spawn instead", what);
  if (t->wait)
    luaL_error(L, "%s: the task is already waiting", what);
  return t;
}

int llm_task_suspend(lua_State *L, llm_sched *s, llm_wait *w, lua_KContext ctx,
                     lua_KFunction k)
{
  llm_task *t = s->current;
  t->wait = w;
  t->wake_pending = 0;
  lua_pushlightuserdata(L, &YIELD_TOKEN);
  return lua_yieldk(L, 1, ctx, k);
}

void llm_task_wake(llm_sched *s, llm_task *t)
{
  if (t->status == LLM_TASK_WAITING) {
    t->status = LLM_TASK_READY;
    enqueue(s, t);
  } else if (t->status == LLM_TASK_RUNNING) {
    t->wake_pending = 1;
  }
}

void llm_task_abandon_wait(llm_task *t)
{
  llm_wait *w = t->wait;
  if (w) {
    t->wait = NULL;
    w->cancel(w);
  }
}

/* ---- cancelling ------------------------------------------------------------------- */

static void kill_task(llm_sched *s, llm_task *t)
{
  llm_task *c, *next;
  if (llm_task_finished(t))
    return;
  for (c = t->child; c; c = next) {
    next = c->next_sib;
    kill_task(s, c);
  }
  llm_task_abandon_wait(t);
  if (t->status == LLM_TASK_RUNNING) { /* ends when it next yields */
    t->cancel_pending = 1;
    return;
  }
  /* Close the coroutine so its pending to-be-closed variables run. */
  if (t->co)
    close_thread(s, t);
  push_cancelled_error(s->L);
  store_outcome(s, t, UV_OUTCOME);
  t->observed = 1; /* cancellation is not an error to report */
  finish(s, t, LLM_TASK_CANCELLED);
}

int llm_task_cancel(llm_sched *s, llm_task *t)
{
  kill_task(s, t);
  return t->status == LLM_TASK_RUNNING;
}

void llm_sched_cancel_all(llm_sched *s)
{
  /* Every unfinished task holds a registry ref. Collect them into a table
   * first (killing edits the registry, and the table keeps the userdata
   * alive while later kills run), then kill each. */
  lua_State *L = s->L;
  lua_Integer n = 0;
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX) != 0) {
    llm_task *t = luaL_testudata(L, -1, LLM_TASK_METATABLE);
    if (t && !llm_task_finished(t))
      lua_rawseti(L, -3, ++n);
    else
      lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    kill_task(s, lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- outcome ---------------------------------------------------------------------- */

int llm_task_push_outcome(lua_State *L, int idx)
{
  llm_task *t = llm_task_check(L, idx);
  idx = lua_absindex(L, idx);
  t->observed = 1;
  if (t->status == LLM_TASK_DONE) {
    lua_Integer n;
    lua_pushboolean(L, 1);
    lua_getiuservalue(L, idx, UV_OUTCOME);
    lua_getfield(L, -1, "n");
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, (int)n, "too many results");
    for (lua_Integer i = 1; i <= n; i++)
      lua_rawgeti(L, -1 - (int)(i - 1), i);
    lua_remove(L, -(int)n - 1);
    return (int)n + 1;
  }
  lua_pushboolean(L, 0);
  lua_getiuservalue(L, idx, UV_OUTCOME);
  lua_getiuservalue(L, idx, UV_TRACEBACK);
  return 3;
}

/* ---- the run loop -------------------------------------------------------------------- */

int llm_sched_run(llm_sched *s, llm_task *until, int watch_fd)
{
  /* Ctrl-C stops running Lua code only while something the user waits
   * for runs (a script, a REPL line); at the prompt it must not kill a
   * background task that happens to be running. */
  s->hook_on_interrupt = until != NULL;
  s->fg = until;
  for (;;) {
    int flags;
    if (until ? llm_task_finished(until) : (watch_fd < 0 && s->live == 0))
      return LLM_RUN_DONE;
    if (s->exit_code >= 0)
      return LLM_RUN_EXIT;
    if (llm_sched_take_interrupt(s))
      return LLM_RUN_INTERRUPTED;
    if (llm_loop_pending(s->loop) == 0 && watch_fd < 0)
      return LLM_RUN_STUCK;
    flags = llm_loop_run_once(s->loop, -1, watch_fd);
    if (flags < 0)
      return LLM_RUN_ERROR;
    /* an interrupt wins over input that arrived in the same turn */
    if (llm_sched_take_interrupt(s))
      return LLM_RUN_INTERRUPTED;
    if (flags & LLM_LOOP_FD_READY)
      return LLM_RUN_FD_READY;
  }
}

/* Raises the interrupt in the running code, then keeps watching that
 * thread until the interrupt is handled: code that catches the error (a
 * pcall in a loop: lmod_protect.c raises it again at once) or runs after
 * it (a looping __close) is stopped again after CANCEL_HOOK_COUNT
 * instructions. The error value exists already: raising allocates
 * nothing. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
  llm_sched *s = llm_sched_of(L);
  (void)ar;
  if (!s || !s->cancelling) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  arm_interrupt(L, CANCEL_HOOK_COUNT);
  if (s->shielded)
    return; /* raised when the shield ends (llm_sched_shield) */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &INTERRUPT_KEY);
  lua_error(L);
}

void llm_sched_interrupt(llm_sched *s)
{
  lua_State *co = s->running;
  s->interrupt = 1;
  /* As lua.c does: a hook is the only safe way into running Lua code. */
  if (s->hook_on_interrupt) {
    s->cancelling = 1;
    if (co)
      arm_interrupt(co, 1);
  }
  llm_loop_interrupt(s->loop);
}

void llm_sched_interrupt_done(llm_sched *s) { s->cancelling = 0; }

int llm_sched_stopping(lua_State *L)
{
  llm_sched *s;
  if (lua_gethook(L) != interrupt_hook)
    return 0;
  s = llm_sched_of(L);
  return s && s->cancelling && !s->shielded;
}

void llm_sched_shield(llm_sched *s, int on)
{
  s->shielded += on ? 1 : -1;
}

void llm_sched_push_interrupt(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &INTERRUPT_KEY);
}

int llm_sched_resume(lua_State *from, lua_State *co, int nargs, int *nres)
{
  llm_sched *s = llm_sched_of(from);
  lua_State *prev;
  int st;
  if (!s)
    return lua_resume(co, from, nargs, nres);
  prev = s->running;
  if (s->cancelling && lua_gethook(from) == interrupt_hook && lua_gethook(co) != interrupt_hook)
    arm_interrupt(co, CANCEL_HOOK_COUNT);
  s->running = co;
  st = lua_resume(co, from, nargs, nres);
  s->running = prev;
  /* the interrupt landed in co: the code that resumed it stops too */
  if (s->cancelling && lua_gethook(co) == interrupt_hook && lua_gethook(from) != interrupt_hook)
    arm_interrupt(from, 1);
  return st;
}

int llm_sched_take_interrupt(llm_sched *s)
{
  int was = s->interrupt;
  s->interrupt = 0;
  return was;
}

/* ---- collection ------------------------------------------------------------------------ */

static int task_gc(lua_State *L)
{
  llm_task *t = luaL_checkudata(L, 1, LLM_TASK_METATABLE);
  if (t->status == LLM_TASK_FAILED && !t->observed) {
    t->observed = 1;
    t->s->uncaught++;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, UV_OUTCOME);   /* 2 */
    lua_getiuservalue(L, 1, UV_TRACEBACK); /* 3 */
    fprintf(stderr, "llmrun: uncaught error in task %u: %s\n%s\n", t->id,
            luaL_tolstring(L, 2, NULL), lua_isstring(L, 3) ? lua_tostring(L, 3) : "");
    fflush(stderr);
    lua_settop(L, 1);
  }
  return 0;
}
