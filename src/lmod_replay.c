/* _llm.replay: the replayer server (src/store/replay_server.h) for llm.replay.
 *
 *   replay.start(cassette_path [, port]) -> server | nil, err (an llm.error
 *     of kind "replay": the cassette cannot be opened, or no port to listen on)
 *   server:url() -> "http://127.0.0.1:PORT"
 *   server:stats() -> {requests=, served=, errors=, cut=, connections=,
 *                      pieces=, late_us_max=, late_us_mean=, late_1ms=
 *                      (pieces written more than 1 ms late)}
 *   server:stop()        (also __gc and __close; stopping twice is harmless)
 *
 * The server runs on its own thread; nothing here waits on it except
 * stop, which joins the thread. */
#include <lauxlib.h>

#include "lmod_util.h"
#include "store/replay_server.h"

#define SERVER_MT "llm.replay.server"

typedef struct server {
  replay_server *s;
} server;

static replay_server *check_running(lua_State *L)
{
  return llm_check_open(L, 1, SERVER_MT, "replay server");
}

static int l_start(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer port = luaL_optinteger(L, 2, 0);
  char err[512];
  server *sv;
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "a port from 0 to 65535 expected");
  sv = llm_new_object(L, sizeof *sv, SERVER_MT);
  if (!(sv->s = replay_server_start(path, (int)port, err, sizeof err)))
    return llm_fail(L, "replay", NULL, "%s", err);
  return 1;
}

static int s_url(lua_State *L)
{
  lua_pushstring(L, replay_server_url(check_running(L)));
  return 1;
}

static int s_stats(lua_State *L)
{
  replay_stats st;
  replay_server_stats(check_running(L), &st);
  lua_createtable(L, 0, 8);
  llm_set_integer(L, "requests", (lua_Integer)st.requests);
  llm_set_integer(L, "served", (lua_Integer)st.served);
  llm_set_integer(L, "errors", (lua_Integer)st.errors);
  llm_set_integer(L, "cut", (lua_Integer)st.cut);
  llm_set_integer(L, "connections", (lua_Integer)st.connections);
  llm_set_integer(L, "pieces", (lua_Integer)st.pieces);
  llm_set_integer(L, "late_us_max", (lua_Integer)st.late_us_max);
  llm_set_integer(L, "late_1ms", (lua_Integer)st.late_1ms);
  llm_set_number(L, "late_us_mean", st.pieces ? (double)st.late_us_sum / (double)st.pieces : 0.0);
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
  llm_class_register(L, SERVER_MT, server_metamethods, server_methods, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
