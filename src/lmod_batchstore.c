/* _llm.batchstore: the record of submitted batches (src/batchstore.h) for
 * Lua. Policy (where the file lives, when to resume) is in
 * lualib/llm/batch_store.lua.
 *
 *   batchstore.open(path) -> store | nil, err
 *   store:put{batch_id=, hash=, provider=, base_url=, model=, input_file=,
 *             status=, requests=, first=, created_at=, updated_at=,
 *             script=, run_id=}              -> true | nil, err
 *   store:set_status(batch_id, base_url|nil, status, now) -> changed | nil, err
 *   store:forget(hash)                       -> true | nil, err
 *   store:by_hash(hash [, limit])            -> {rec...} newest first | nil, err
 *   store:by_id(id_or_prefix [, limit])      -> {rec...} | nil, err
 *   store:all([limit])                       -> {rec...} | nil, err
 *   store:close()
 * A rec has the fields of put plus forgotten (boolean). */
#include <lauxlib.h>
#include <string.h>

#include "batchstore.h"
#include "lmod_class.h"
#include "modules.h"

#define STORE_MT "llm.batchstore"

typedef struct { llm_batchstore *s; } store_ud;

static llm_batchstore *check_store(lua_State *L)
{
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  if (!u->s)
    luaL_error(L, "attempt to use a closed batch record");
  return u->s;
}

static int fail(lua_State *L, const char *err)
{
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char err[512];
  store_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  luaL_setmetatable(L, STORE_MT);
  if (!(u->s = llm_batchstore_open(path, err, sizeof err)))
    return fail(L, err);
  return 1;
}

/* A string field of the table at t, or NULL (the table keeps it alive). */
static const char *field_str(lua_State *L, int t, const char *k)
{
  const char *s = NULL;
  if (lua_getfield(L, t, k) == LUA_TSTRING)
    s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

static double field_num(lua_State *L, int t, const char *k, double dflt)
{
  double d = dflt;
  if (lua_getfield(L, t, k) == LUA_TNUMBER)
    d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return d;
}

static int s_put(lua_State *L)
{
  llm_batchstore *s = check_store(L);
  llm_batch_rec r;
  char err[512];
  luaL_checktype(L, 2, LUA_TTABLE);
  memset(&r, 0, sizeof r);
  r.batch_id = field_str(L, 2, "batch_id");
  r.hash = field_str(L, 2, "hash");
  r.provider = field_str(L, 2, "provider");
  r.base_url = field_str(L, 2, "base_url");
  luaL_argcheck(L, r.batch_id && r.hash && r.provider && r.base_url, 2,
                "batch_id, hash, provider and base_url are required");
  r.model = field_str(L, 2, "model");
  r.input_file = field_str(L, 2, "input_file");
  r.status = field_str(L, 2, "status");
  r.script = field_str(L, 2, "script");
  r.run_id = field_str(L, 2, "run_id");
  r.requests = (int64_t)field_num(L, 2, "requests", 0);
  r.first = (int64_t)field_num(L, 2, "first", 1);
  r.created_at = field_num(L, 2, "created_at", 0);
  r.updated_at = field_num(L, 2, "updated_at", 0);
  if (llm_batchstore_put(s, &r, err, sizeof err) != 0)
    return fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int s_set_status(lua_State *L)
{
  llm_batchstore *s = check_store(L);
  const char *id = luaL_checkstring(L, 2), *base = luaL_optstring(L, 3, NULL);
  const char *status = luaL_checkstring(L, 4);
  char err[512];
  int rc = llm_batchstore_set_status(s, id, base, status, luaL_checknumber(L, 5), err, sizeof err);
  if (rc < 0)
    return fail(L, err);
  lua_pushboolean(L, rc > 0);
  return 1;
}

static int s_forget(lua_State *L)
{
  char err[512];
  if (llm_batchstore_forget(check_store(L), luaL_checkstring(L, 2), err, sizeof err) != 0)
    return fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  if (!v)
    return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* Appends one record to the list at the top of the stack. */
static int push_rec(void *ud, const llm_batch_rec *r)
{
  lua_State *L = ud;
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_createtable(L, 0, 14);
  set_str(L, "batch_id", r->batch_id);
  set_str(L, "hash", r->hash);
  set_str(L, "provider", r->provider);
  set_str(L, "base_url", r->base_url);
  set_str(L, "model", r->model);
  set_str(L, "input_file", r->input_file);
  set_str(L, "status", r->status);
  set_str(L, "script", r->script);
  set_str(L, "run_id", r->run_id);
  lua_pushinteger(L, (lua_Integer)r->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)r->first);
  lua_setfield(L, -2, "first");
  lua_pushnumber(L, r->created_at);
  lua_setfield(L, -2, "created_at");
  lua_pushnumber(L, r->updated_at);
  lua_setfield(L, -2, "updated_at");
  lua_pushboolean(L, r->forgotten);
  lua_setfield(L, -2, "forgotten");
  lua_rawseti(L, -2, n + 1);
  return 0;
}

static int query(lua_State *L, llm_batch_query q, const char *arg, lua_Integer limit)
{
  llm_batchstore *s = check_store(L);
  char err[512];
  lua_checkstack(L, 8);
  lua_newtable(L);
  if (llm_batchstore_query(s, q, arg, limit, push_rec, L, err, sizeof err) != 0)
    return fail(L, err);
  return 1;
}

static int s_by_hash(lua_State *L)
{
  const char *h = luaL_checkstring(L, 2);
  return query(L, LLM_BATCH_BY_HASH, h, luaL_optinteger(L, 3, 0));
}

static int s_by_id(lua_State *L)
{
  const char *id = luaL_checkstring(L, 2);
  return query(L, LLM_BATCH_BY_ID, id, luaL_optinteger(L, 3, 0));
}

static int s_all(lua_State *L)
{
  return query(L, LLM_BATCH_ALL, NULL, luaL_optinteger(L, 2, 0));
}

static int s_close(lua_State *L)
{
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  llm_batchstore_close(u->s);
  u->s = NULL;
  return 0;
}

static int s_tostring(lua_State *L)
{
  store_ud *u = luaL_checkudata(L, 1, STORE_MT);
  lua_pushstring(L, u->s ? "batch record" : "batch record (closed)");
  return 1;
}

static const luaL_Reg store_methods[] = {
  {"put", s_put},
  {"set_status", s_set_status},
  {"forget", s_forget},
  {"by_hash", s_by_hash},
  {"by_id", s_by_id},
  {"all", s_all},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg store_metamethods[] = {
  {"__gc", s_close},
  {"__close", s_close},
  {"__tostring", s_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"open", l_open},
  {NULL, NULL}
};

int luaopen__llm_batchstore(lua_State *L)
{
  llm_new_class(L, STORE_MT, store_metamethods, store_methods);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_BATCHSTORE_SCHEMA);
  lua_setfield(L, -2, "schema");
  return 1;
}
