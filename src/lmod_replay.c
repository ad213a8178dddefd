/* _llm.replay: the replayer server (src/replay_server.h) for llm.replay.
 *
 *   replay.start(cassette_path [, port]) -> server | nil, message
 *   server:url() -> "http://127.0.0.1:PORT"
 *   server:stats() -> {requests=, served=, errors=, cut=, connections=,
 *                      pieces=, late_us_max=, late_us_mean=}
 *   server:stop()        (also __gc and __close; stopping twice is harmless)
 *
 * The server runs on its own thread; nothing here waits on it except
 * stop, which joins the thread. */
#include <lauxlib.h>

#include "replay_server.h"

#define SERVER_MT "llm.replay.server"

typedef struct server {
  replay_server *s;
} server;

static replay_server *check_running(lua_State *L)
{
  server *sv = luaL_checkudata(L, 1, SERVER_MT);
  if (!sv->s)
    luaL_error(L, "attempt to use a stopped replay server");
  return sv->s;
}

static int l_start(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer port = luaL_optinteger(L, 2, 0);
  char err[512];
  server *sv;
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "a port from 0 to 65535 expected");
  sv = lua_newuserdatauv(L, sizeof *sv, 0);
  sv->s = NULL;
  luaL_setmetatable(L, SERVER_MT);
  sv->s = replay_server_start(path, (int)port, err, sizeof err);
  if (!sv->s) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int s_url(lua_State *L)
{
  lua_pushstring(L, replay_server_url(check_running(L)));
  return 1;
}

static void set_int(lua_State *L, const char *k, uint64_t v)
{
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static int s_stats(lua_State *L)
{
  replay_stats st;
  replay_server_stats(check_running(L), &st);
  lua_createtable(L, 0, 8);
  set_int(L, "requests", st.requests);
  set_int(L, "served", st.served);
  set_int(L, "errors", st.errors);
  set_int(L, "cut", st.cut);
  set_int(L, "connections", st.connections);
  set_int(L, "pieces", st.pieces);
  set_int(L, "late_us_max", st.late_us_max);
  lua_pushnumber(L, st.pieces ? (double)st.late_us_sum / (double)st.pieces : 0.0);
  lua_setfield(L, -2, "late_us_mean");
  return 1;
}

static int s_stop(lua_State *L)
{
  server *sv = luaL_checkudata(L, 1, SERVER_MT);
  if (sv->s) {
    replay_server_stop(sv->s);
    sv->s = NULL;
  }
  return 0;
}

static int s_tostring(lua_State *L)
{
  server *sv = luaL_checkudata(L, 1, SERVER_MT);
  if (sv->s)
    lua_pushfstring(L, "replay server (%s)", replay_server_url(sv->s));
  else
    lua_pushliteral(L, "replay server (stopped)");
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"url", s_url},
  {"stats", s_stats},
  {"stop", s_stop},
  {NULL, NULL}
};

static const luaL_Reg server_metamethods[] = {
  {"__gc", s_stop},
  {"__close", s_stop},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"start", l_start},
  {NULL, NULL}
};

int luaopen__llm_replay(lua_State *L)
{
  luaL_newmetatable(L, SERVER_MT);
  luaL_setfuncs(L, server_metamethods, 0);
  luaL_newlibtable(L, server_methods);
  luaL_setfuncs(L, server_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
