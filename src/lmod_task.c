/* _llm.loop: the Lua face of the scheduler (task.c): tasks and what they
 * wait on. The C primitives are few: spawn, wait, cancel, sleep, now,
 * current, shield, and suspend/wake for the Lua combinators (llm.map,
 * semaphores, race...) in lualib/llm/async.lua. Named lmod_task.c for the
 * engine it binds; the module keeps its Lua name, _llm.loop. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "lmod_util.h"
#include "task.h"

#define SCHED(L) ((llm_sched *)lua_touserdata(L, lua_upvalueindex(1)))

static llm_task *check_task(lua_State *L) { return llm_task_check(L, 1); }

/* ---- spawn / current ------------------------------------------------------- */

static int l_spawn(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (!llm_task_spawn(SCHED(L), L, lua_gettop(L) - 1))
    return luaL_error(L, "llm.spawn: out of memory");
  return 1;
}

static int l_current(lua_State *L)
{
  llm_task *t = llm_sched_current(SCHED(L));
  if (!t)
    return 0;
  llm_task_push(L, t);
  return 1;
}

static int l_now(lua_State *L)
{
  lua_pushnumber(L, llm_now());
  return 1;
}

/* Wall-clock time (CLOCK_REALTIME) in seconds since the epoch, with
 * sub-millisecond resolution: for timestamps in logs, not for durations. */
static int l_wallclock(lua_State *L)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  return 1;
}

/* loop.shield(fn, ...) -> fn(...): an interrupt (Ctrl-C, SIGTERM) waits
 * until fn returns, then stops the task. fn must not yield. For work that
 * must be whole, such as a call's finish hooks (its cache entry and its
 * call log row go together). */
static int l_shield(lua_State *L)
{
  llm_sched *s = SCHED(L);
  int st;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  llm_sched_shield(s, 1);
  st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  llm_sched_shield(s, 0);
  if (st != LUA_OK)
    return lua_error(L);
  if (llm_sched_stopping(L)) { /* the interrupt that waited */
    llm_sched_push_interrupt(L);
    return lua_error(L);
  }
  return lua_gettop(L);
}

/* ---- sleep ------------------------------------------------------------------- */

typedef struct sleep_op {
  llm_wait base;
  llm_sched *s;
  llm_task *task;
  llm_timer *timer;
} sleep_op;

static void sleep_fired(void *ud)
{
  sleep_op *op = ud;
  op->timer = NULL;
  llm_task_wake(op->s, op->task);
}

static void sleep_cancel(llm_wait *w)
{
  sleep_op *op = (sleep_op *)w;
  llm_timer_stop(llm_sched_loop(op->s), op->timer);
  free(op);
}

static int sleep_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)L;
  (void)status;
  free((sleep_op *)ctx);
  return 0;
}

static int l_sleep(lua_State *L)
{
  llm_sched *s = SCHED(L);
  lua_Number sec = luaL_checknumber(L, 1);
  sleep_op *op;
  llm_task *t;
  luaL_argcheck(L, sec >= 0 && !isinf(sec), 1, "expected a finite number of seconds >= 0");
  t = llm_task_check_can_wait(L, s, "llm.sleep"); /* raises before we allocate */
  op = malloc(sizeof *op);
  if (!op)
    return luaL_error(L, "llm.sleep: out of memory");
  op->base.cancel = sleep_cancel;
  op->s = s;
  op->task = t;
  op->timer = llm_timer_start(llm_sched_loop(s), sec, sleep_fired, op);
  if (!op->timer) {
    free(op);
    return luaL_error(L, "llm.sleep: out of memory");
  }
  return llm_task_suspend(L, s, &op->base, (lua_KContext)op, sleep_done);
}

/* ---- suspend / wake: the building block of Lua-level synchronisation ---- */

typedef struct park_op {
  llm_wait base;
} park_op;

static void park_cancel(llm_wait *w) { free(w); }

static int park_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)L;
  (void)status;
  free((park_op *)ctx);
  return 0;
}

static int l_suspend(lua_State *L)
{
  llm_sched *s = SCHED(L);
  park_op *op;
  llm_task_check_can_wait(L, s, "llm.suspend");
  op = malloc(sizeof *op);
  if (!op)
    return luaL_error(L, "llm.suspend: out of memory");
  op->base.cancel = park_cancel;
  return llm_task_suspend(L, s, &op->base, (lua_KContext)op, park_done);
}

/* wake(task) -> true if the task was suspended by suspend() and is now
 * ready, false otherwise (finished, running, or waiting on something else). */
static int l_wake(lua_State *L)
{
  llm_task *t = check_task(L);
  llm_wait *w = llm_task_waiting_for(t);
  int woke = w && w->cancel == park_cancel && llm_task_status(t) == LLM_TASK_WAITING;
  if (woke)
    llm_task_wake(SCHED(L), t);
  lua_pushboolean(L, woke);
  return 1;
}

/* Called by the coroutine wrappers when a wait started inside a user
 * coroutine cannot travel up to the scheduler. */
static int l_abandon(lua_State *L)
{
  llm_task *t = llm_sched_current(SCHED(L));
  if (t)
    llm_task_abandon_wait(t);
  return 0;
}

/* ---- task methods ------------------------------------------------------------ */

static int wait_done(lua_State *L, int status, lua_KContext ctx)
{
  (void)status;
  llm_task_free_wait((llm_wait *)ctx);
  return llm_task_push_outcome(L, 1);
}

static int t_wait(lua_State *L)
{
  llm_task *t = check_task(L);
  llm_sched *s = SCHED(L);
  llm_task *me;
  llm_wait *w;
  if (llm_task_finished(t))
    return llm_task_push_outcome(L, 1);
  me = llm_task_check_can_wait(L, s, "task:wait");
  if (me == t)
    return luaL_error(L, "task:wait: a task cannot wait for itself");
  w = llm_task_join(s, t, me);
  if (!w)
    return luaL_error(L, "task:wait: out of memory");
  return llm_task_suspend(L, s, w, (lua_KContext)w, wait_done);
}

static int t_cancel(lua_State *L)
{
  llm_task *t = check_task(L);
  llm_sched *s = SCHED(L);
  if (llm_task_cancel(s, t) && lua_isyieldable(L)) {
    /* a task cancelling itself stops here */
    return llm_task_suspend(L, s, NULL, 0, NULL);
  }
  return 0;
}

static int t_close(lua_State *L)
{
  llm_task *t = check_task(L);
  if (!llm_task_finished(t) && llm_sched_current(SCHED(L)) != t)
    llm_task_cancel(SCHED(L), t);
  return 0;
}

static int t_status(lua_State *L)
{
  lua_pushstring(L, llm_task_status_name(check_task(L)));
  return 1;
}

static int t_id(lua_State *L)
{
  lua_pushinteger(L, llm_task_id(check_task(L)));
  return 1;
}

static int t_tostring(lua_State *L)
{
  llm_task *t = check_task(L);
  lua_pushfstring(L, "task %d (%s)", (int)llm_task_id(t), llm_task_status_name(t));
  return 1;
}

static const luaL_Reg task_methods[] = {
  {"wait", t_wait},
  {"cancel", t_cancel},
  {"status", t_status},
  {"id", t_id},
  {NULL, NULL}
};

static const luaL_Reg task_metamethods[] = {
  {"__close", t_close},
  {"__tostring", t_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"spawn", l_spawn},
  {"current", l_current},
  {"now", l_now},
  {"wallclock", l_wallclock},
  {"shield", l_shield},
  {"sleep", l_sleep},
  {"suspend", l_suspend},
  {"wake", l_wake},
  {"abandon", l_abandon},
  {NULL, NULL}
};

int luaopen__llm_loop(lua_State *L)
{
  llm_sched *s = llm_sched_of(L);
  if (!s)
    return luaL_error(L, "_llm.loop needs the llmrun host");

  /* the metatable task.c made (with __gc) gets its methods */
  llm_class_register(L, LLM_TASK_METATABLE, task_metamethods, task_methods, s);

  luaL_newlibtable(L, funcs);
  lua_pushlightuserdata(L, s);
  luaL_setfuncs(L, funcs, 1);
  lua_pushlightuserdata(L, llm_task_yield_token());
  lua_setfield(L, -2, "yield_token");
  luaL_getmetatable(L, LLM_ERROR_METATABLE);
  lua_setfield(L, -2, "error_metatable");
  luaL_getmetatable(L, LLM_EXIT_METATABLE);
  lua_setfield(L, -2, "exit_metatable");
  return 1;
}
