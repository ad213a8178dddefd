/* The C modules llmrun preloads, so `require` finds them without a search:
 * lua-cjson and the _llm.* bindings. Add a binding here and in modules.c. */
#ifndef LLMRUN_MODULES_H
#define LLMRUN_MODULES_H

#include <lauxlib.h>

extern const luaL_Reg llm_preloaded_modules[];

int luaopen__llm_loop(lua_State *L);
int luaopen__llm_host(lua_State *L);
int luaopen__llm_http(lua_State *L);
int luaopen__llm_tok(lua_State *L);
int luaopen__llm_metrics(lua_State *L);
int luaopen__llm_calllog(lua_State *L);
int luaopen__llm_sim(lua_State *L);
int luaopen__llm_cache(lua_State *L);
int luaopen__llm_canon(lua_State *L);
int luaopen__llm_json(lua_State *L);
int luaopen__llm_batchstore(lua_State *L);
int luaopen__llm_sqlite(lua_State *L);
int luaopen__llm_replay(lua_State *L);
int luaopen__llm_serve(lua_State *L);
int luaopen__llm_redis(lua_State *L);
int luaopen__llm_lru(lua_State *L);
int luaopen__llm_vecindex(lua_State *L);
int luaopen__llm_zlib(lua_State *L);

#endif
