/* pcall, xpcall and coroutine.resume that cannot swallow an interrupt.
 *
 * Ctrl-C raises an error in the running code (task.c's interrupt hook).
 * With the stock functions, `while true do pcall(f) end` catches that
 * error and goes on forever. These versions behave exactly like the stock
 * ones, except that in a thread being stopped by an interrupt
 * (llm_sched_stopping) a caught error is raised again as the interrupt,
 * whatever it became on the way (an xpcall handler may have turned it
 * into a traceback string). coroutine.resume also keeps the scheduler's
 * idea of the running thread right, so an interrupt reaches code running
 * inside a user's coroutine.
 *
 * The success path costs what the stock functions cost: the check runs
 * only when an error was caught. Installed by the host before the llm
 * library loads, so lualib's own pcalls are these too. */
#include <lauxlib.h>

#include "lmod_protect.h"
#include "task.h"

/* The continuation of pcall and xpcall (lua_pcallk), also called
 * directly when f did not yield. `extra` is how many stack slots below
 * the results are not results (xpcall's handler). */
static int finish_pcall(lua_State *L, int status, lua_KContext extra)
{
  if (status != LUA_OK && status != LUA_YIELD) {
    if (llm_sched_stopping(L)) {
      llm_sched_push_interrupt(L);
      return lua_error(L);
    }
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2); /* the error */
    return 2;
  }
  return lua_gettop(L) - (int)extra; /* true, then f's results */
}

static int p_pcall(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1); /* the first result on success */
  lua_insert(L, 1);      /* below f and its arguments */
  return finish_pcall(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall), 0);
}

static int p_xpcall(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1); /* stack: f, handler, args..., true */
  lua_pushvalue(L, 1);   /* f */
  lua_rotate(L, 3, 2);   /* f, handler, true, f, args... */
  return finish_pcall(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall), 2);
}

/* coroutine.resume's checks: only a suspended coroutine can resume. */
static const char *cannot_resume(lua_State *L, lua_State *co)
{
  lua_Debug ar;
  if (L == co)
    return "cannot resume non-suspended coroutine";
  switch (lua_status(co)) {
  case LUA_YIELD:
    return NULL;
  case LUA_OK:
    if (lua_getstack(co, 0, &ar)) /* it is running a function: it resumed another */
      return "cannot resume non-suspended coroutine";
    if (lua_gettop(co) == 0)
      return "cannot resume dead coroutine";
    return NULL; /* not started yet */
  default:
    return "cannot resume dead coroutine";
  }
}

static int p_resume(lua_State *L)
{
  lua_State *co = lua_tothread(L, 1);
  const char *why;
  int nargs, nres, st;
  luaL_argexpected(L, co, 1, "coroutine");
  nargs = lua_gettop(L) - 1;
  if ((why = cannot_resume(L, co)) != NULL || !lua_checkstack(co, nargs)) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, why ? why : "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, nargs);
  st = llm_sched_resume(L, co, nargs, &nres);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  if (llm_sched_stopping(L)) {
    llm_sched_push_interrupt(L);
    return lua_error(L);
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1); /* the error */
  return 2;
}

void llm_protect_install(lua_State *L)
{
  lua_pushcfunction(L, p_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, p_xpcall);
  lua_setglobal(L, "xpcall");
  lua_getglobal(L, "coroutine");
  if (lua_istable(L, -1)) {
    lua_pushcfunction(L, p_resume);
    lua_setfield(L, -2, "resume");
  }
  lua_pop(L, 1);
}
