/* A Lua C module as a user would build one (a shared object that does not
 * link liblua: the Lua API comes from the program that loads it), for
 * tests/cli/test_c_modules.sh: llmrun links Lua statically and must still
 * export the API (-Wl,-E) so that `require` can load such modules from
 * package.cpath. */
#include <lauxlib.h>

static int add(lua_State *L)
{
  lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
  return 1;
}

int luaopen_llmrun_probe(lua_State *L)
{
  static const luaL_Reg funcs[] = {{"add", add}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LUA_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
