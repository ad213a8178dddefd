/* _llm.batchstore: the record of submitted batches (src/store/batchstore.h) for
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
 * A rec has the fields of put plus forgotten (boolean). A put with a field
 * of the wrong type, or one put does not know, raises. Runtime failures
 * return nil, err: an llm.error of kind "batch_store" (lmod_util.h). */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "lmod_util.h"
#include "modules.h"
#include "store/batchstore.h"

#define STORE_MT "llm.batchstore"

typedef struct { llm_batchstore *s; } store_ud;

static llm_batchstore *check_store(lua_State *L)
{
  return llm_check_open(L, 1, STORE_MT, "batch record");
}

/* The engine's failures are the file's (I/O, a lock held too long, a
 * newer schema): kind "batch_store", the message from sqlite or the OS. */
static int fail(lua_State *L, const char *err)
{
  return llm_fail(L, "batch_store", NULL, "%s", err);
}

static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char err[512];
  store_ud *u = llm_new_object(L, sizeof *u, STORE_MT);
  if (!(u->s = llm_batchstore_open(path, err, sizeof err)))
    return fail(L, err);
  return 1;
}

static const char *const rec_keys[] = {
  "batch_id", "hash", "provider", "base_url", "model", "input_file", "status", "requests",
  "first", "created_at", "updated_at", "script", "run_id", NULL,
};

static int s_put(lua_State *L)
{
  llm_batchstore *s = check_store(L);
  llm_batch_rec r;
  char err[512];
  llm_opts o;
  luaL_checktype(L, 2, LUA_TTABLE);
  o = llm_opts_at(L, 2, "batch record");
  llm_opts_only(&o, rec_keys);
  memset(&r, 0, sizeof r);
  r.batch_id = llm_opt_string(&o, "batch_id", NULL, NULL);
  r.hash = llm_opt_string(&o, "hash", NULL, NULL);
  r.provider = llm_opt_string(&o, "provider", NULL, NULL);
  r.base_url = llm_opt_string(&o, "base_url", NULL, NULL);
  luaL_argcheck(L, r.batch_id && r.hash && r.provider && r.base_url, 2,
                "batch_id, hash, provider and base_url are required");
  r.model = llm_opt_string(&o, "model", NULL, NULL);
  r.input_file = llm_opt_string(&o, "input_file", NULL, NULL);
  r.status = llm_opt_string(&o, "status", NULL, NULL);
  r.script = llm_opt_string(&o, "script", NULL, NULL);
  r.run_id = llm_opt_string(&o, "run_id", NULL, NULL);
  r.requests = (int64_t)llm_opt_integer(&o, "requests", 0, 0, LUA_MAXINTEGER);
  r.first = (int64_t)llm_opt_integer(&o, "first", 1, 0, LUA_MAXINTEGER);
  r.created_at = llm_opt_number(&o, "created_at", 0, 0, HUGE_VAL);
  r.updated_at = llm_opt_number(&o, "updated_at", 0, 0, HUGE_VAL);
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

/* Appends one record to the list at the top of the stack. */
static int push_rec(void *ud, const llm_batch_rec *r)
{
  lua_State *L = ud;
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_createtable(L, 0, 14);
  llm_set_string(L, "batch_id", r->batch_id);
  llm_set_string(L, "hash", r->hash);
  llm_set_string(L, "provider", r->provider);
  llm_set_string(L, "base_url", r->base_url);
  llm_set_string(L, "model", r->model);
  llm_set_string(L, "input_file", r->input_file);
  llm_set_string(L, "status", r->status);
  llm_set_string(L, "script", r->script);
  llm_set_string(L, "run_id", r->run_id);
  llm_set_integer(L, "requests", (lua_Integer)r->requests);
  llm_set_integer(L, "first", (lua_Integer)r->first);
  llm_set_number(L, "created_at", r->created_at);
  llm_set_number(L, "updated_at", r->updated_at);
  llm_set_boolean(L, "forgotten", r->forgotten);
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
  llm_class_register(L, STORE_MT, store_metamethods, store_methods, NULL);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, LLM_BATCHSTORE_SCHEMA);
  lua_setfield(L, -2, "schema");
  return 1;
}
