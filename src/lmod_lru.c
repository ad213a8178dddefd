/* _llm.lru: the in-memory LRU (cache_lru.h) for caches kept outside
 * sqlite: the shared Redis cache keeps one in front of Redis, so a hot
 * entry costs a hash lookup instead of a round trip.
 *
 *   lru.new(budget_bytes) -> map
 *   map:get(key [, now]) -> value, created | nil     (now: epoch seconds,
 *       default the wall clock; an expired entry is a miss)
 *   map:put(key, value, created, expires) -> true | false (larger than the
 *       budget, or out of memory); expires 0 = never
 *   map:del(key)   map:clear()   map:info() -> {bytes=, count=, budget=} */
#include <lauxlib.h>
#include <time.h>

#include "lmod_util.h"
#include "store/cache_lru.h"

#define LRU_MT "llm.lru"

typedef struct box {
  llm_lru *m;
} box;

static llm_lru *check(lua_State *L)
{
  return llm_check_open(L, 1, LRU_MT, "LRU map");
}

static double wallclock(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int m_get(lua_State *L)
{
  llm_lru *m = check(L);
  size_t klen;
  const char *k = luaL_checklstring(L, 2, &klen);
  double now = lua_isnoneornil(L, 3) ? wallclock() : (double)luaL_checknumber(L, 3);
  llm_lru_value v;
  if (!llm_lru_get(m, k, klen, now, &v))
    return 0;
  lua_pushlstring(L, v.data, v.len);
  lua_pushnumber(L, v.created);
  return 2;
}

static int m_put(lua_State *L)
{
  llm_lru *m = check(L);
  size_t klen, vlen;
  const char *k = luaL_checklstring(L, 2, &klen);
  const char *v = luaL_checklstring(L, 3, &vlen);
  double created = (double)luaL_checknumber(L, 4);
  double expires = (double)luaL_optnumber(L, 5, 0);
  if (llm_lru_put(m, k, klen, v, vlen, created, expires) != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* an entry larger than the whole budget is not kept */
  lua_pushboolean(L, llm_lru_get(m, k, klen, created, &(llm_lru_value){0}) ||
                         (expires > 0 && expires <= created));
  return 1;
}

static int m_del(lua_State *L)
{
  size_t klen;
  llm_lru *m = check(L);
  const char *k = luaL_checklstring(L, 2, &klen);
  llm_lru_del(m, k, klen);
  return 0;
}

static int m_clear(lua_State *L)
{
  llm_lru_clear(check(L));
  return 0;
}

static int m_info(lua_State *L)
{
  llm_lru *m = check(L);
  lua_createtable(L, 0, 3);
  llm_set_integer(L, "bytes", (lua_Integer)llm_lru_bytes(m));
  llm_set_integer(L, "count", (lua_Integer)llm_lru_count(m));
  llm_set_integer(L, "budget", (lua_Integer)llm_lru_budget(m));
  return 1;
}

static int m_gc(lua_State *L)
{
  box *b = luaL_checkudata(L, 1, LRU_MT);
  llm_lru_free(b->m);
  b->m = NULL;
  return 0;
}

static int l_new(lua_State *L)
{
  lua_Integer budget = luaL_checkinteger(L, 1);
  box *b;
  luaL_argcheck(L, budget >= 0, 1, "a budget in bytes >= 0 expected");
  b = llm_new_object(L, sizeof *b, LRU_MT);
  b->m = llm_lru_new((size_t)budget);
  if (!b->m)
    return luaL_error(L, "lru.new: out of memory");
  return 1;
}

static const luaL_Reg methods[] = {
  {"get", m_get},
  {"put", m_put},
  {"del", m_del},
  {"clear", m_clear},
  {"info", m_info},
  {NULL, NULL}
};

static const luaL_Reg meta[] = {
  {"__gc", m_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"new", l_new},
  {NULL, NULL}
};

int luaopen__llm_lru(lua_State *L)
{
  llm_class_register(L, LRU_MT, meta, methods, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
