/* lmod_intarray: the table llm_push_u32_array builds (by direct stores
 * into the array part where the probe allows it) is the one lua_rawseti
 * builds: the same length for 0, 1 and many integers, the same values,
 * no other keys, and an ordinary table afterwards (it survives full
 * collections, grows, and Lua code reads it). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "lmod_intarray.h"

/* Checks the table at the top of the stack holds exactly v[0..n). */
static void check_table(lua_State *L, const uint32_t *v, size_t n, const char *what)
{
  size_t bad = 0, keys = 0;
  CHECK_INT(lua_rawlen(L, -1), n);
  CHECK_INT(luaL_len(L, -1), n);
  for (size_t i = 0; i < n; i++) {
    int isint;
    lua_Integer x = (lua_rawgeti(L, -1, (lua_Integer)i + 1), lua_tointegerx(L, -1, &isint));
    if (!isint || x != (lua_Integer)v[i])
      bad++;
    lua_pop(L, 1);
  }
  if (bad)
    check_fail(__FILE__, __LINE__, "%s: %zu of %zu values differ", what, bad, n);
  CHECK_INT(lua_rawgeti(L, -1, (lua_Integer)n + 1), LUA_TNIL);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    keys++;
    lua_pop(L, 1);
  }
  CHECK_INT(keys, n);
}

/* Lua code sees the same sequence: ipairs visits n values summing to sum. */
static void check_from_lua(lua_State *L, size_t n, lua_Integer sum)
{
  static const char code[] =
    "local t = ... local n, s = 0, 0 for _, x in ipairs(t) do n = n + 1 s = s + x end return n, s";
  CHECK_INT(luaL_loadstring(L, code), LUA_OK);
  lua_pushvalue(L, -2);
  CHECK_INT(lua_pcall(L, 1, 2, 0), LUA_OK);
  CHECK_INT(lua_tointeger(L, -2), n);
  CHECK_INT(lua_tointeger(L, -1), sum);
  lua_pop(L, 2);
}

int main(void)
{
  static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 17, 1000, 300000 };
  lua_State *L = luaL_newstate();
  uint32_t *v = malloc(300000 * sizeof *v);
  uint32_t x = 2463534242u;
  luaL_openlibs(L);
  for (size_t i = 0; i < 300000; i++) { /* xorshift32, with the extremes first */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v[i] = i == 0 ? UINT32_MAX : i == 1 ? 0 : x;
  }
  /* the fast way is in use: it is what makes llm.tokens.encode cheap */
#if LUA_VERSION_NUM == 504
  CHECK(llm_u32_array_direct(L));
#endif
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    size_t n = sizes[k];
    lua_Integer sum = 0;
    int top = lua_gettop(L);
    for (size_t i = 0; i < n; i++)
      sum += v[i];
    llm_push_u32_array(L, v, n);
    check_table(L, v, n, "direct");
    check_from_lua(L, n, sum);
    /* kept alive across full collections, it stays whole */
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    check_table(L, v, n, "after collections");
    /* and it grows as any table does */
    lua_pushinteger(L, 7);
    lua_rawseti(L, -2, (lua_Integer)n + 1);
    CHECK_INT(lua_rawlen(L, -1), n + 1);
    lua_pop(L, 1);
    /* the lua_rawseti way gives the same */
    llm_push_u32_array_api(L, v, n);
    check_table(L, v, n, "api");
    lua_pop(L, 1);
    CHECK_INT(lua_gettop(L), top);
  }
  /* many tables made and dropped while the collector runs */
  for (int r = 0; r < 200; r++) {
    llm_push_u32_array(L, v, 1000 + (size_t)r);
    if (r % 50 == 0)
      check_table(L, v, 1000 + (size_t)r, "churn");
    lua_pop(L, 1);
  }
  lua_close(L);
  free(v);
  return check_report("lmod_intarray");
}
