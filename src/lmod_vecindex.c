/* _llm.vecindex: the semantic cache's nearest-neighbour index
 * (store/vecindex.h) on its own, for caches whose vectors live outside sqlite:
 * the shared Redis cache keeps one per process, filled from a Redis
 * stream of additions.
 *
 *   vecindex.new(dim) -> ix
 *   ix:add(id, scope, vec) -> true | false (a zero or non-finite vector)
 *   ix:search(scope, vec) -> id, similarity | nil (no row of that scope)
 *   ix:remove(id) -> bool   ix:count()   ix:dim()   ix:bytes()
 *   vecindex.pack(list) -> float32 bytes   vecindex.unpack(bytes) -> list
 *
 * vec: a list of numbers or packed float32 bytes (the form a Redis
 * stream carries); its length must be the index's dimension. id and
 * scope: integers (a scope is a 64-bit hash, any bit pattern). */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lmod_util.h"
#include "store/vecindex.h"

#define IX_MT "llm.vecindex"
#define MAX_DIM 65536

typedef struct box {
  llm_vecindex *ix;
} box;

static llm_vecindex *check(lua_State *L)
{
  return llm_check_open(L, 1, IX_MT, "vector index");
}

/* The vector at idx as floats, in a buffer kept on the stack (pushed). */
static float *check_vector(lua_State *L, int idx, int dim)
{
  float *v;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len != (size_t)dim * sizeof(float))
      luaL_argerror(L, idx, lua_pushfstring(L, "%d packed floats expected, got %d bytes", dim, (int)len));
    v = lua_newuserdatauv(L, (size_t)dim * sizeof(float), 0);
    memcpy(v, s, len);
    return v;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  if (luaL_len(L, idx) != dim)
    luaL_argerror(L, idx, lua_pushfstring(L, "a vector of %d numbers expected", dim));
  v = lua_newuserdatauv(L, (size_t)dim * sizeof(float), 0);
  for (int i = 0; i < dim; i++) {
    lua_geti(L, idx, i + 1);
    if (!lua_isnumber(L, -1))
      luaL_argerror(L, idx, "a list of numbers expected");
    v[i] = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  return v;
}

static int x_add(lua_State *L)
{
  llm_vecindex *ix = check(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  lua_Integer scope = luaL_checkinteger(L, 3);
  float *v = check_vector(L, 4, llm_vecindex_dim(ix));
  lua_pushboolean(L, llm_vecindex_add(ix, (int64_t)id, (uint64_t)scope, v) == 0);
  return 1;
}

static int x_search(lua_State *L)
{
  llm_vecindex *ix = check(L);
  lua_Integer scope = luaL_checkinteger(L, 2);
  float *q = check_vector(L, 3, llm_vecindex_dim(ix));
  int64_t id;
  float sim;
  if (!llm_vecindex_search(ix, (uint64_t)scope, q, &id, &sim))
    return 0;
  lua_pushinteger(L, (lua_Integer)id);
  lua_pushnumber(L, (lua_Number)sim);
  return 2;
}

static int x_remove(lua_State *L)
{
  llm_vecindex *ix = check(L);
  lua_pushboolean(L, llm_vecindex_remove(ix, (int64_t)luaL_checkinteger(L, 2)));
  return 1;
}

static int x_count(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)llm_vecindex_count(check(L)));
  return 1;
}

static int x_dim(lua_State *L)
{
  lua_pushinteger(L, llm_vecindex_dim(check(L)));
  return 1;
}

static int x_bytes(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)llm_vecindex_bytes(check(L)));
  return 1;
}

static int x_gc(lua_State *L)
{
  box *b = luaL_checkudata(L, 1, IX_MT);
  llm_vecindex_free(b->ix);
  b->ix = NULL;
  return 0;
}

static int l_new(lua_State *L)
{
  lua_Integer dim = luaL_checkinteger(L, 1);
  box *b;
  luaL_argcheck(L, dim >= 1 && dim <= MAX_DIM, 1, "a dimension from 1 to 65536 expected");
  b = llm_new_object(L, sizeof *b, IX_MT);
  b->ix = llm_vecindex_new((int)dim);
  if (!b->ix)
    return luaL_error(L, "vecindex.new: out of memory");
  return 1;
}

static int l_pack(lua_State *L)
{
  lua_Integer n;
  luaL_Buffer b;
  float *out;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n <= MAX_DIM, 1, "too many numbers");
  out = (float *)luaL_buffinitsize(L, &b, (size_t)n * sizeof(float));
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    if (!lua_isnumber(L, -1))
      return luaL_argerror(L, 1, "a list of numbers expected");
    out[i] = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  luaL_pushresultsize(&b, (size_t)n * sizeof(float));
  return 1;
}

static int l_unpack(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  size_t n = len / sizeof(float);
  luaL_argcheck(L, len % sizeof(float) == 0, 1, "packed float32 bytes expected");
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    float f;
    memcpy(&f, s + i * sizeof f, sizeof f);
    lua_pushnumber(L, (lua_Number)f);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static const luaL_Reg methods[] = {
  {"add", x_add},
  {"search", x_search},
  {"remove", x_remove},
  {"count", x_count},
  {"dim", x_dim},
  {"bytes", x_bytes},
  {NULL, NULL}
};

static const luaL_Reg meta[] = {
  {"__gc", x_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"new", l_new},
  {"pack", l_pack},
  {"unpack", l_unpack},
  {NULL, NULL}
};

int luaopen__llm_vecindex(lua_State *L)
{
  llm_class_register(L, IX_MT, meta, methods, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
