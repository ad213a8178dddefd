/* libFuzzer harness for JSON as llmrun reads it from servers, in Lua:
 * _llm.json.decode (src/lmod_json.c over src/json.c), compared with
 * lua-cjson, and the cache key's walk over what it gives (src/lmod_canon.c).
 * For every input:
 *   - nothing crashes, leaks or trips a sanitizer;
 *   - every string decoded is valid UTF-8 (invalid bytes and lone
 *     surrogates become U+FFFD);
 *   - when both readers accept a UTF-8 input, they give the same value
 *     (numbers compared as doubles: the response reader keeps integers
 *     as integers, cjson makes floats);
 *   - the canonical text of a decoded value, decoded and spelled again,
 *     is the same text (one spelling per value).
 * Built and run by tests/fuzz/CMakeLists.txt and scripts/fuzz_all. */
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int luaopen__llm_json(lua_State *L);
int luaopen__llm_canon(lua_State *L);

static lua_State *L;
static int decode_ref, cjson_ref, canon_ref;

static void die(const char *what)
{
  fprintf(stderr, "fuzz_json_lua: %s\n", what);
  abort();
}

static int ref_function(lua_CFunction open, const char *field)
{
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, field);
  lua_remove(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void setup(void)
{
  L = luaL_newstate();
  luaL_openlibs(L);
  decode_ref = ref_function(luaopen__llm_json, "decode");
  cjson_ref = ref_function(luaopen_cjson, "decode");
  canon_ref = ref_function(luaopen__llm_canon, "encode");
}

/* Calls registry function ref on the string s; 1 with the result on the
 * stack, or 0 (nothing pushed) when it raised or returned nil. */
static int call(int ref, const char *s, size_t len)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_pushlstring(L, s, len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static void all_utf8(int idx, int depth)
{
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n, m;
    char *copy = NULL;
    const char *s = lua_tolstring(L, idx, &n);
    if (json_utf8_scrub(s, n, &copy, &m) != 0)
      die("a decoded string is not UTF-8");
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > 200)
    return;
  if (!lua_checkstack(L, 4)) /* liblua is not instrumented: never overflow its stack */
    die("Lua stack");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    all_utf8(-2, depth + 1);
    all_utf8(-1, depth + 1);
    lua_pop(L, 1);
  }
}

static int same(int a, int b, int depth)
{
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b))
    return 0;
  switch (lua_type(L, a)) {
  case LUA_TNUMBER: return (double)lua_tonumber(L, a) == (double)lua_tonumber(L, b);
  case LUA_TTABLE: {
    int ok = 1;
    if (depth > 200)
      return 1;
    if (!lua_checkstack(L, 4))
      die("Lua stack");
    lua_pushnil(L);
    while (ok && lua_next(L, a)) { /* every key of a is in b, same value */
      lua_pushvalue(L, -2);
      lua_rawget(L, b);
      ok = same(-2, -1, depth + 1);
      lua_pop(L, 2);
    }
    if (!ok) {
      lua_pop(L, 1); /* the key lua_next left */
      return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, b)) { /* and b has no other key */
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawget(L, a);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 2);
        return 0;
      }
      lua_pop(L, 1);
    }
    return 1;
  }
  default: return lua_rawequal(L, a, b);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  char *scrubbed = NULL;
  size_t slen;
  int utf8, base;
  if (!L)
    setup();
  base = lua_gettop(L);
  utf8 = json_utf8_scrub(s, size, &scrubbed, &slen) == 0;
  free(scrubbed);
  if (call(decode_ref, s, size)) {
    int v = lua_gettop(L);
    all_utf8(v, 0);
    if (utf8 && call(cjson_ref, s, size) && !same(v, -1, 0))
      die("the response reader and cjson read one text as different values");
    lua_settop(L, v);
    lua_rawgeti(L, LUA_REGISTRYINDEX, canon_ref);
    lua_pushvalue(L, v);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1)) {
      size_t n1, n2;
      const char *c1 = lua_tolstring(L, -1, &n1), *c2;
      if (!call(decode_ref, c1, n1))
        die("a canonical text is not JSON");
      lua_rawgeti(L, LUA_REGISTRYINDEX, canon_ref);
      lua_insert(L, -2);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1))
        die("a canonical text's value cannot be spelled again");
      c2 = lua_tolstring(L, -1, &n2);
      if (n1 != n2 || memcmp(c1, c2, n1) != 0)
        die("two canonical spellings for one value");
    }
  }
  lua_settop(L, base);
  return 0;
}
