/* _llm.calllog: the call log for Lua (policy lives in lualib/llm/log.lua).
 *
 *   calllog.open(path [, {batch_rows=, batch_ms=}]) -> log | nil, err
 *     log:set_run{run_id=, script=, version=, started_at=, simulated=, args=, cwd=}
 *     log:append(tag, case, model, provider, kind, simulated, started_at,
 *                latency_ms, ttft_ms, prompt, completion, cached, creation,
 *                input, cost, cache_kind, status, retries, error_kind,
 *                http_status, request_id, prompt_text, response_text, error_text)
 *       -> nothing, or a message the first time a write failed since
 *          the last one was reported
 *     log:flush() -> true | nil, err     log:dropped()     log:close()
 *   calllog.new_run_id() -> "20261115-142233-3fa9c1"
 *   calllog.reader(path) -> reader | nil, err, missing
 *     reader:find_run([prefix]) -> id | nil, "none" | "ambiguous"
 *     reader:runs(limit) -> {{run_id=, script=, started_at=, calls=, ...}}
 *     reader:calls(run_id | nil, limit) -> {{run_id=, tag=, model=, ...}}
 *     reader:search{run=, tag=, model=, status=, text=, limit=, texts=}
 *       -> the calls that match, newest first by start time; with texts (or
 *          text) each has prompt=, response=, error= when logged
 *     reader:latest_in(cwd) -> the id of the directory's latest run | nil
 *     reader:collect(run_id, "tag" | "model" | "none")
 *       -> {{key=, simulated=, collector=}} in order of first appearance
 *     reader:close()
 *   calllog.schema: the schema version this build writes */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "calllog.h"
#include "lmod_class.h"
#include "lmod_metrics.h"
#include "modules.h"

#define LOG_MT "llm.calllog"
#define READER_MT "llm.calllog.reader"

typedef struct { llm_calllog *log; } log_ud;
typedef struct { sqlite3 *db; } reader_ud;

/* ---- writing ---------------------------------------------------------------- */

static llm_calllog *check_log(lua_State *L)
{
  log_ud *u = luaL_checkudata(L, 1, LOG_MT);
  if (!u->log)
    luaL_error(L, "attempt to use a closed call log");
  return u->log;
}

static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  llm_calllog_opts o = {0};
  char err[512];
  log_ud *u;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "batch_rows");
    o.batch_rows = (size_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 2, "batch_ms");
    o.batch_ms = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 2);
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->log = NULL;
  luaL_setmetatable(L, LOG_MT);
  u->log = llm_calllog_open(path, &o, err, sizeof err);
  if (!u->log) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* A string field of the table at t, or NULL. Only a real string is
 * taken: lua_tostring would convert a number in its stack slot, and that
 * converted string would not survive the pop. */
static const char *field_str(lua_State *L, int t, const char *k)
{
  const char *s = NULL;
  if (lua_getfield(L, t, k) == LUA_TSTRING)
    s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the table keeps the string alive */
  return s;
}

static int g_set_run(lua_State *L)
{
  llm_calllog *log = check_log(L);
  llm_run_info run;
  luaL_checktype(L, 2, LUA_TTABLE);
  run.run_id = field_str(L, 2, "run_id");
  run.script = field_str(L, 2, "script");
  run.version = field_str(L, 2, "version");
  run.args = field_str(L, 2, "args");
  run.cwd = field_str(L, 2, "cwd");
  lua_getfield(L, 2, "started_at");
  run.started_at = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 2, "simulated");
  run.simulated = lua_toboolean(L, -1);
  lua_pop(L, 2);
  luaL_argcheck(L, run.run_id != NULL, 2, "run_id expected");
  llm_calllog_set_run(log, &run);
  return 0;
}

static const char *opt_str(lua_State *L, int i)
{
  return lua_type(L, i) == LUA_TNIL || lua_type(L, i) == LUA_TNONE ? NULL : luaL_tolstring(L, i, NULL);
}

static double opt_num(lua_State *L, int i)
{
  return lua_type(L, i) == LUA_TNUMBER ? lua_tonumber(L, i) : NAN;
}

/* Hot path: positional arguments, copied into the C buffer. */
static int g_append(lua_State *L)
{
  llm_calllog *log = check_log(L);
  llm_log_row r;
  char err[512];
  memset(&r, 0, sizeof r);
  r.tag = opt_str(L, 2);
  r.case_id = opt_str(L, 3);
  r.model = opt_str(L, 4);
  r.provider = opt_str(L, 5);
  r.kind = opt_str(L, 6);
  r.simulated = lua_toboolean(L, 7);
  r.started_at = opt_num(L, 8);
  r.latency_ms = opt_num(L, 9);
  r.ttft_ms = opt_num(L, 10);
  r.prompt_tokens = opt_num(L, 11);
  r.completion_tokens = opt_num(L, 12);
  r.cached_tokens = opt_num(L, 13);
  r.cache_creation_tokens = opt_num(L, 14);
  r.input_tokens = opt_num(L, 15);
  r.cost = opt_num(L, 16);
  r.cache_kind = opt_str(L, 17);
  r.status = opt_str(L, 18);
  r.retries = (int)luaL_optinteger(L, 19, 0);
  r.error_kind = opt_str(L, 20);
  r.http_status = (int)luaL_optinteger(L, 21, 0);
  r.request_id = opt_str(L, 22);
  r.prompt_text = opt_str(L, 23);
  r.response_text = opt_str(L, 24);
  r.error_text = opt_str(L, 25);
  if (!r.status)
    r.status = "ok";
  llm_calllog_append(log, &r);
  if (llm_calllog_take_error(log, err, sizeof err)) {
    lua_pushstring(L, err);
    return 1;
  }
  return 0;
}

static int g_flush(lua_State *L)
{
  char err[512];
  if (llm_calllog_flush(check_log(L), err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int g_dropped(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)llm_calllog_dropped(check_log(L)));
  return 1;
}

static int g_close(lua_State *L)
{
  log_ud *u = luaL_checkudata(L, 1, LOG_MT);
  llm_calllog_close(u->log);
  u->log = NULL;
  return 0;
}

static int g_tostring(lua_State *L)
{
  log_ud *u = luaL_checkudata(L, 1, LOG_MT);
  lua_pushstring(L, u->log ? "call log" : "call log (closed)");
  return 1;
}

static int l_new_run_id(lua_State *L)
{
  char id[64];
  llm_calllog_new_run_id(id, sizeof id);
  lua_pushstring(L, id);
  return 1;
}

/* ---- reading -------------------------------------------------------------------- */

static sqlite3 *check_reader(lua_State *L)
{
  reader_ud *u = luaL_checkudata(L, 1, READER_MT);
  if (!u->db)
    luaL_error(L, "attempt to use a closed call log reader");
  return u->db;
}

static int l_reader(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char err[512];
  int missing = 0;
  reader_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->db = NULL;
  luaL_setmetatable(L, READER_MT);
  u->db = llm_calllog_open_reader(path, &missing, err, sizeof err);
  if (!u->db) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    lua_pushboolean(L, missing);
    return 3;
  }
  return 1;
}

static int r_find_run(lua_State *L)
{
  sqlite3 *db = check_reader(L);
  const char *prefix = luaL_optstring(L, 2, NULL);
  char id[256], err[512];
  int rc = llm_calllog_find_run(db, prefix, id, sizeof id, err, sizeof err);
  if (rc == 1) {
    lua_pushstring(L, id);
    return 1;
  }
  if (rc == -1)
    return luaL_error(L, "%s", err);
  luaL_pushfail(L);
  lua_pushstring(L, rc == -2 ? "ambiguous" : "none");
  return 2;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  if (v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
  }
}

static void set_num(lua_State *L, const char *k, double v)
{
  if (isfinite(v)) {
    if (v == floor(v) && fabs(v) < 9e15)
      lua_pushinteger(L, (lua_Integer)v);
    else
      lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
  }
}

/* Cursors are freed by __gc if a Lua error cuts a listing short. */
typedef struct { llm_log_cursor *c; } cursor_ud;

static int cursor_gc(lua_State *L)
{
  cursor_ud *u = lua_touserdata(L, 1);
  llm_log_cursor_free(u->c);
  u->c = NULL;
  return 0;
}

static cursor_ud *push_cursor(lua_State *L)
{
  cursor_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->c = NULL;
  if (luaL_newmetatable(L, "llm.calllog.cursor")) {
    lua_pushcfunction(L, cursor_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return u;
}

static int r_runs(lua_State *L)
{
  sqlite3 *db = check_reader(L);
  lua_Integer limit = luaL_optinteger(L, 2, 0);
  char err[512];
  cursor_ud *cu = push_cursor(L);
  llm_run_row run;
  int rc, i = 0;
  cu->c = llm_calllog_runs(db, limit, err, sizeof err);
  if (!cu->c)
    return luaL_error(L, "%s", err);
  lua_newtable(L);
  while ((rc = llm_log_cursor_next_run(cu->c, &run)) == 1) {
    lua_createtable(L, 0, 12);
    set_str(L, "run_id", run.run_id);
    set_str(L, "script", run.script);
    set_str(L, "version", run.version);
    set_str(L, "args", run.args);
    set_str(L, "cwd", run.cwd);
    set_num(L, "started_at", run.started_at);
    lua_pushboolean(L, run.simulated);
    lua_setfield(L, -2, "simulated");
    set_num(L, "calls", (double)run.calls);
    set_num(L, "errors", (double)run.errors);
    set_num(L, "hits", (double)run.hits);
    set_num(L, "cost", run.cost);
    set_num(L, "cost_unknown", (double)run.cost_unknown);
    set_num(L, "first_start", run.first_start);
    set_num(L, "last_end", run.last_end);
    lua_seti(L, -2, ++i);
  }
  if (rc < 0)
    return luaL_error(L, "call log: %s", sqlite3_errmsg(db));
  return 1;
}

/* The rows of a call cursor as a list of tables. */
static int push_calls(lua_State *L, sqlite3 *db, cursor_ud *cu)
{
  llm_log_row r;
  int rc, i = 0;
  lua_newtable(L);
  while ((rc = llm_log_cursor_next_call(cu->c, &r)) == 1) {
    lua_createtable(L, 0, 22);
    set_str(L, "run_id", r.run_id);
    set_str(L, "tag", r.tag);
    set_str(L, "case", r.case_id);
    set_str(L, "model", r.model);
    set_str(L, "provider", r.provider);
    set_str(L, "kind", r.kind);
    set_str(L, "status", r.status);
    set_str(L, "cache_kind", r.cache_kind);
    set_str(L, "error_kind", r.error_kind);
    set_str(L, "request_id", r.request_id);
    lua_pushboolean(L, r.simulated);
    lua_setfield(L, -2, "simulated");
    set_num(L, "retries", r.retries);
    if (r.http_status)
      set_num(L, "http_status", r.http_status);
    set_num(L, "started_at", r.started_at);
    set_num(L, "latency_ms", r.latency_ms);
    set_num(L, "ttft_ms", r.ttft_ms);
    set_num(L, "cost", r.cost);
    set_num(L, "prompt_tokens", r.prompt_tokens);
    set_num(L, "completion_tokens", r.completion_tokens);
    set_num(L, "cached_tokens", r.cached_tokens);
    set_num(L, "cache_creation_tokens", r.cache_creation_tokens);
    set_num(L, "input_tokens", r.input_tokens);
    set_str(L, "prompt", r.prompt_text);
    set_str(L, "response", r.response_text);
    set_str(L, "error", r.error_text);
    lua_seti(L, -2, ++i);
  }
  if (rc < 0)
    return luaL_error(L, "call log: %s", sqlite3_errmsg(db));
  return 1;
}

static int r_calls(lua_State *L)
{
  sqlite3 *db = check_reader(L);
  const char *run_id = luaL_optstring(L, 2, NULL);
  lua_Integer limit = luaL_optinteger(L, 3, 0);
  char err[512];
  cursor_ud *cu = push_cursor(L);
  cu->c = llm_calllog_calls(db, run_id, limit, err, sizeof err);
  if (!cu->c)
    return luaL_error(L, "%s", err);
  return push_calls(L, db, cu);
}

static int r_search(lua_State *L)
{
  sqlite3 *db = check_reader(L);
  llm_log_filter f;
  char err[512];
  cursor_ud *cu;
  memset(&f, 0, sizeof f);
  luaL_checktype(L, 2, LUA_TTABLE);
  f.run_id = field_str(L, 2, "run");
  f.tag = field_str(L, 2, "tag");
  f.model = field_str(L, 2, "model");
  f.status = field_str(L, 2, "status");
  f.text = field_str(L, 2, "text");
  lua_getfield(L, 2, "limit");
  f.limit = (int64_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 2, "texts");
  f.with_text = lua_toboolean(L, -1);
  lua_pop(L, 2);
  cu = push_cursor(L);
  cu->c = llm_calllog_search(db, &f, err, sizeof err);
  if (!cu->c)
    return luaL_error(L, "%s", err);
  return push_calls(L, db, cu);
}

static int r_latest_in(lua_State *L)
{
  sqlite3 *db = check_reader(L);
  const char *cwd = luaL_checkstring(L, 2);
  char id[256], err[512];
  int rc = llm_calllog_latest_in(db, cwd, id, sizeof id, err, sizeof err);
  if (rc < 0)
    return luaL_error(L, "%s", err);
  if (rc == 0) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushstring(L, id);
  return 1;
}

typedef struct { llm_log_group *g; size_t n; } groups_ud;

static int groups_gc(lua_State *L)
{
  groups_ud *u = lua_touserdata(L, 1);
  llm_log_groups_free(u->g, u->n);
  u->g = NULL;
  u->n = 0;
  return 0;
}

static int r_collect(lua_State *L)
{
  static const char *const bys[] = {"none", "tag", "model", NULL};
  sqlite3 *db = check_reader(L);
  const char *run_id = luaL_checkstring(L, 2);
  llm_log_group_by by = (llm_log_group_by)luaL_checkoption(L, 3, "tag", bys);
  char err[512];
  groups_ud *gu = lua_newuserdatauv(L, sizeof *gu, 0);
  gu->g = NULL;
  gu->n = 0;
  if (luaL_newmetatable(L, "llm.calllog.groups")) {
    lua_pushcfunction(L, groups_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if (llm_calllog_collect(db, run_id, by, &gu->g, &gu->n, err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  lua_createtable(L, (int)gu->n, 0);
  for (size_t i = 0; i < gu->n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, gu->g[i].key);
    lua_setfield(L, -2, "key");
    lua_pushinteger(L, (lua_Integer)gu->g[i].simulated);
    lua_setfield(L, -2, "simulated");
    llm_push_collector(L, gu->g[i].stats);
    gu->g[i].stats = NULL; /* the userdata owns it now */
    lua_setfield(L, -2, "collector");
    lua_seti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int r_close(lua_State *L)
{
  reader_ud *u = luaL_checkudata(L, 1, READER_MT);
  sqlite3_close_v2(u->db); /* waits for cursors the GC has not finalized yet */
  u->db = NULL;
  return 0;
}

static int r_tostring(lua_State *L)
{
  reader_ud *u = luaL_checkudata(L, 1, READER_MT);
  lua_pushstring(L, u->db ? "call log reader" : "call log reader (closed)");
  return 1;
}

/* ---- tables ---------------------------------------------------------------------- */

static const luaL_Reg log_methods[] = {
  {"set_run", g_set_run},
  {"append", g_append},
  {"flush", g_flush},
  {"dropped", g_dropped},
  {"close", g_close},
  {NULL, NULL}
};

static const luaL_Reg log_metamethods[] = {
  {"__gc", g_close},
  {"__close", g_close},
  {"__tostring", g_tostring},
  {NULL, NULL}
};

static const luaL_Reg reader_methods[] = {
  {"find_run", r_find_run},
  {"runs", r_runs},
  {"calls", r_calls},
  {"search", r_search},
  {"latest_in", r_latest_in},
  {"collect", r_collect},
  {"close", r_close},
  {NULL, NULL}
};

static const luaL_Reg reader_metamethods[] = {
  {"__gc", r_close},
  {"__close", r_close},
  {"__tostring", r_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"open", l_open},
  {"reader", l_reader},
  {"new_run_id", l_new_run_id},
  {NULL, NULL}
};

int luaopen__llm_calllog(lua_State *L)
{
  /* collectors handed out by reader:collect need their class */
  luaL_requiref(L, "_llm.metrics", luaopen__llm_metrics, 0);
  lua_pop(L, 1);
  llm_new_class(L, LOG_MT, log_metamethods, log_methods);
  llm_new_class(L, READER_MT, reader_metamethods, reader_methods);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_CALLLOG_SCHEMA);
  lua_setfield(L, -2, "schema");
  return 1;
}
