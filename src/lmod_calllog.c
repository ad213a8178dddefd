/* _llm.calllog: the call log for Lua (policy lives in lualib/llm/log.lua).
 *
 *   calllog.open(path [, {batch_rows=, batch_ms=}]) -> log | nil, err
 *     log:set_run{run_id=, script=, version=, started_at=, simulated=, args=, cwd=}
 *     log:append{tag=, case=, model=, provider=, kind=, simulated=,
 *                started_at=, latency_ms=, ttft_ms=, prompt_tokens=,
 *                completion_tokens=, cached_tokens=, cache_creation_tokens=,
 *                input_tokens=, cost=, cache_kind=, status=, retries=,
 *                error_kind=, http_status=, request_id=, client=,
 *                prompt=, response=, error=}
 *       (the fields reader:calls gives back; missing ones are stored as NULL;
 *        prompt, response, error: the call's texts, kept in call_texts)
 *       -> nothing, or an err the first time a write failed since the
 *          last one was reported
 *     log:flush() -> true | nil, err     log:dropped()     log:close()
 *   calllog.new_run_id() -> "20261115-142233-3fa9c1"
 *   calllog.reader(path) -> reader | nil, err (err.status "missing": no log yet)
 *     reader:find_run([prefix]) -> id | nil, err (err.status "none" | "ambiguous")
 *     reader:runs(limit) -> {{run_id=, script=, started_at=, calls=, ...}}
 *     reader:calls(run_id | nil, limit) -> {{run_id=, tag=, model=, ...}}
 *     reader:search{run=, tag=, model=, status=, text=, limit=, texts=}
 *       -> the calls that match, newest first by start time; with texts (or
 *          text) each has prompt=, response=, error= when logged
 *     reader:latest_in(cwd) -> the id of the directory's latest run | nil
 *     reader:collect(run_id, "tag" | "model" | "none")
 *       -> {{key=, simulated=, collector=}} in order of first appearance
 *     reader:close()
 *   calllog.schema: the schema version this build writes
 * Runtime failures are llm.error tables of kind "log" (lmod_util.h). */
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lmod_metrics.h"
#include "lmod_util.h"
#include "modules.h"
#include "store/calllog.h"

#define LOG_MT "llm.calllog"
#define READER_MT "llm.calllog.reader"
#define CURSOR_MT "llm.calllog.cursor" /* frees a listing's cursor if an error cuts it short */
#define GROUPS_MT "llm.calllog.groups" /* frees collected groups likewise */

typedef struct { llm_calllog *log; } log_ud;
typedef struct { sqlite3 *db; } reader_ud;

/* ---- writing ---------------------------------------------------------------- */

static llm_calllog *check_log(lua_State *L)
{
  return llm_check_open(L, 1, LOG_MT, "call log");
}

static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  llm_opts o = llm_opts_at(L, 2, "calllog.open");
  llm_calllog_opts co = {0};
  char err[512];
  log_ud *u;
  co.batch_rows = (size_t)llm_opt_integer(&o, "batch_rows", 0, 0, 1 << 20);
  co.batch_ms = (int)llm_opt_integer(&o, "batch_ms", 0, 0, 3600 * 1000);
  u = llm_new_object(L, sizeof *u, LOG_MT);
  u->log = llm_calllog_open(path, &co, err, sizeof err);
  if (!u->log)
    return llm_fail(L, "log", "io", "%s", err);
  return 1;
}

static int g_set_run(lua_State *L)
{
  llm_calllog *log = check_log(L);
  llm_opts o;
  llm_run_info run;
  luaL_checktype(L, 2, LUA_TTABLE);
  o = llm_opts_at(L, 2, "log:set_run");
  run.run_id = llm_opt_string(&o, "run_id", NULL, NULL);
  run.script = llm_opt_string(&o, "script", NULL, NULL);
  run.version = llm_opt_string(&o, "version", NULL, NULL);
  run.args = llm_opt_string(&o, "args", NULL, NULL);
  run.cwd = llm_opt_string(&o, "cwd", NULL, NULL);
  run.started_at = llm_opt_number(&o, "started_at", 0, 0, HUGE_VAL);
  run.simulated = llm_opt_boolean(&o, "simulated", 0);
  luaL_argcheck(L, run.run_id != NULL, 2, "run_id expected");
  llm_calllog_set_run(log, &run);
  return 0;
}

/* The row's field names, interned once in a table that is append's
 * upvalue: each field is then read with a table lookup by a string Lua
 * already has, without lua_getfield's lookup of the C string (26 per
 * call). In the order of enum row_key. */
static const char *const ROW_KEYS[] = {
  "tag", "case", "model", "provider", "kind", "cache_kind", "status", "error_kind", "request_id",
  "client", "prompt", "response", "error", "simulated", "started_at", "latency_ms", "ttft_ms",
  "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "input_tokens",
  "cost", "retries", "http_status",
};
enum row_key {
  K_TAG, K_CASE, K_MODEL, K_PROVIDER, K_KIND, K_CACHE_KIND, K_STATUS, K_ERROR_KIND, K_REQUEST_ID,
  K_CLIENT, K_PROMPT, K_RESPONSE, K_ERROR, K_SIMULATED, K_STARTED_AT, K_LATENCY_MS, K_TTFT_MS,
  K_PROMPT_TOKENS, K_COMPLETION_TOKENS, K_CACHED_TOKENS, K_CACHE_CREATION_TOKENS, K_INPUT_TOKENS,
  K_COST, K_RETRIES, K_HTTP_STATUS, K_COUNT
};
_Static_assert(sizeof ROW_KEYS / sizeof ROW_KEYS[0] == K_COUNT, "one name per row key");

/* Pushes row[key] (the row at index 2); returns its type. */
static int row_get(lua_State *L, enum row_key k)
{
  lua_rawgeti(L, lua_upvalueindex(1), (lua_Integer)k + 1);
  return lua_gettable(L, 2);
}

/* A number field, or NaN (stored as NULL) when it is not a number. */
static double num_field(lua_State *L, enum row_key k)
{
  double v = row_get(L, k) == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
  lua_pop(L, 1);
  return v;
}

/* A string field, or NULL; any other value is stored as its text, which
 * stays alive on the stack until append returns (hence no pop here). */
static const char *str_field(lua_State *L, enum row_key k)
{
  int t = row_get(L, k);
  if (t == LUA_TNIL)
    return NULL;
  return t == LUA_TSTRING ? lua_tostring(L, -1) : luaL_tolstring(L, -1, NULL);
}

static int int_field(lua_State *L, enum row_key k)
{
  lua_Integer v = 0;
  if (row_get(L, k) == LUA_TNUMBER)
    v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v < INT_MIN || v > INT_MAX ? 0 : (int)v;
}

/* Hot path, once per call: the row table's fields copied into the C
 * buffer; the writer thread commits them later. */
static int g_append(lua_State *L)
{
  llm_calllog *log = check_log(L);
  llm_log_row r;
  char err[512];
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checkstack(L, 30, "call log row"); /* a string field may take two slots */
  memset(&r, 0, sizeof r);
  r.tag = str_field(L, K_TAG);
  r.case_id = str_field(L, K_CASE);
  r.model = str_field(L, K_MODEL);
  r.provider = str_field(L, K_PROVIDER);
  r.kind = str_field(L, K_KIND);
  r.cache_kind = str_field(L, K_CACHE_KIND);
  r.status = str_field(L, K_STATUS);
  r.error_kind = str_field(L, K_ERROR_KIND);
  r.request_id = str_field(L, K_REQUEST_ID);
  r.client = str_field(L, K_CLIENT);
  r.prompt_text = str_field(L, K_PROMPT);
  r.response_text = str_field(L, K_RESPONSE);
  r.error_text = str_field(L, K_ERROR);
  row_get(L, K_SIMULATED);
  r.simulated = lua_toboolean(L, -1);
  lua_pop(L, 1);
  r.started_at = num_field(L, K_STARTED_AT);
  r.latency_ms = num_field(L, K_LATENCY_MS);
  r.ttft_ms = num_field(L, K_TTFT_MS);
  r.prompt_tokens = num_field(L, K_PROMPT_TOKENS);
  r.completion_tokens = num_field(L, K_COMPLETION_TOKENS);
  r.cached_tokens = num_field(L, K_CACHED_TOKENS);
  r.cache_creation_tokens = num_field(L, K_CACHE_CREATION_TOKENS);
  r.input_tokens = num_field(L, K_INPUT_TOKENS);
  r.cost = num_field(L, K_COST);
  r.retries = int_field(L, K_RETRIES);
  r.http_status = int_field(L, K_HTTP_STATUS);
  if (!r.status)
    r.status = "ok";
  llm_calllog_append(log, &r);
  if (llm_calllog_take_error(log, err, sizeof err)) {
    llm_push_error(L, "log", "io", "%s", err);
    return 1;
  }
  return 0;
}

static int g_flush(lua_State *L)
{
  char err[512];
  if (llm_calllog_flush(check_log(L), err, sizeof err) != 0)
    return llm_fail(L, "log", "io", "%s", err);
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
  return llm_check_open(L, 1, READER_MT, "call log reader");
}

static int l_reader(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char err[512];
  int missing = 0;
  reader_ud *u = llm_new_object(L, sizeof *u, READER_MT);
  u->db = llm_calllog_open_reader(path, &missing, err, sizeof err);
  if (!u->db)
    return llm_fail(L, "log", missing ? "missing" : "io", "%s", err);
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
  if (rc == -2)
    return llm_fail(L, "log", "ambiguous", "more than one run id starts with '%s'", prefix);
  if (prefix)
    return llm_fail(L, "log", "none", "no run id starts with '%s'", prefix);
  return llm_fail(L, "log", "none", "no runs logged yet");
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
  return llm_new_object(L, sizeof(cursor_ud), CURSOR_MT);
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
    llm_set_string(L, "run_id", run.run_id);
    llm_set_string(L, "script", run.script);
    llm_set_string(L, "version", run.version);
    llm_set_string(L, "args", run.args);
    llm_set_string(L, "cwd", run.cwd);
    llm_set_count(L, "started_at", run.started_at);
    llm_set_boolean(L, "simulated", run.simulated);
    llm_set_count(L, "calls", (double)run.calls);
    llm_set_count(L, "errors", (double)run.errors);
    llm_set_count(L, "hits", (double)run.hits);
    llm_set_count(L, "cost", run.cost);
    llm_set_count(L, "cost_unknown", (double)run.cost_unknown);
    llm_set_count(L, "first_start", run.first_start);
    llm_set_count(L, "last_end", run.last_end);
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
    lua_createtable(L, 0, 23);
    llm_set_string(L, "run_id", r.run_id);
    llm_set_string(L, "tag", r.tag);
    llm_set_string(L, "case", r.case_id);
    llm_set_string(L, "model", r.model);
    llm_set_string(L, "provider", r.provider);
    llm_set_string(L, "kind", r.kind);
    llm_set_string(L, "status", r.status);
    llm_set_string(L, "cache_kind", r.cache_kind);
    llm_set_string(L, "error_kind", r.error_kind);
    llm_set_string(L, "request_id", r.request_id);
    llm_set_string(L, "client", r.client);
    llm_set_boolean(L, "simulated", r.simulated);
    llm_set_count(L, "retries", r.retries);
    if (r.http_status)
      llm_set_count(L, "http_status", r.http_status);
    llm_set_count(L, "started_at", r.started_at);
    llm_set_count(L, "latency_ms", r.latency_ms);
    llm_set_count(L, "ttft_ms", r.ttft_ms);
    llm_set_count(L, "cost", r.cost);
    llm_set_count(L, "prompt_tokens", r.prompt_tokens);
    llm_set_count(L, "completion_tokens", r.completion_tokens);
    llm_set_count(L, "cached_tokens", r.cached_tokens);
    llm_set_count(L, "cache_creation_tokens", r.cache_creation_tokens);
    llm_set_count(L, "input_tokens", r.input_tokens);
    llm_set_string(L, "prompt", r.prompt_text);
    llm_set_string(L, "response", r.response_text);
    llm_set_string(L, "error", r.error_text);
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
  static const char *const known[] = {"run", "tag", "model", "status", "text", "limit", "texts",
                                      NULL};
  sqlite3 *db = check_reader(L);
  llm_log_filter f;
  llm_opts o;
  char err[512];
  cursor_ud *cu;
  memset(&f, 0, sizeof f);
  luaL_checktype(L, 2, LUA_TTABLE);
  o = llm_opts_at(L, 2, "reader:search");
  llm_opts_only(&o, known);
  f.run_id = llm_opt_string(&o, "run", NULL, NULL);
  f.tag = llm_opt_string(&o, "tag", NULL, NULL);
  f.model = llm_opt_string(&o, "model", NULL, NULL);
  f.status = llm_opt_string(&o, "status", NULL, NULL);
  f.text = llm_opt_string(&o, "text", NULL, NULL);
  f.limit = (int64_t)llm_opt_integer(&o, "limit", 0, 0, LUA_MAXINTEGER);
  f.with_text = llm_opt_boolean(&o, "texts", 0);
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
  groups_ud *gu = llm_new_object(L, sizeof *gu, GROUPS_MT);
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
  /* append: set in luaopen, with its upvalue */
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

static const luaL_Reg cursor_metamethods[] = {
  {"__gc", cursor_gc},
  {NULL, NULL}
};

static const luaL_Reg groups_metamethods[] = {
  {"__gc", groups_gc},
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
  llm_class_register(L, LOG_MT, log_metamethods, log_methods, NULL);
  /* append gets the interned row keys as its upvalue */
  luaL_getmetatable(L, LOG_MT);
  lua_getfield(L, -1, "__index");
  lua_createtable(L, K_COUNT, 0);
  for (int i = 0; i < K_COUNT; i++) {
    lua_pushstring(L, ROW_KEYS[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcclosure(L, g_append, 1);
  lua_setfield(L, -2, "append");
  lua_pop(L, 2);
  llm_class_register(L, READER_MT, reader_metamethods, reader_methods, NULL);
  llm_class_register(L, CURSOR_MT, cursor_metamethods, NULL, NULL);
  llm_class_register(L, GROUPS_MT, groups_metamethods, NULL, NULL);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_CALLLOG_SCHEMA);
  lua_setfield(L, -2, "schema");
  return 1;
}
