#include "modules.h"

#include <lua-cjson.h>

int luaopen_cjson_safe(lua_State *L); /* exported by lua-cjson, not in its header */

const luaL_Reg llm_preloaded_modules[] = {
  {"cjson", luaopen_cjson},
  {"cjson.safe", luaopen_cjson_safe},
  {"_llm.loop", luaopen__llm_loop},
  {"_llm.host", luaopen__llm_host},
  {"_llm.http", luaopen__llm_http},
  {"_llm.tok", luaopen__llm_tok},
  {"_llm.metrics", luaopen__llm_metrics},
  {"_llm.calllog", luaopen__llm_calllog},
  {"_llm.sim", luaopen__llm_sim},
  {"_llm.cache", luaopen__llm_cache},
  {"_llm.canon", luaopen__llm_canon},
  {"_llm.json", luaopen__llm_json},
  {"_llm.batchstore", luaopen__llm_batchstore},
  {"_llm.sqlite", luaopen__llm_sqlite},
  {"_llm.replay", luaopen__llm_replay},
  {"_llm.serve", luaopen__llm_serve},
  {"_llm.redis", luaopen__llm_redis},
  {"_llm.lru", luaopen__llm_lru},
  {"_llm.vecindex", luaopen__llm_vecindex},
  {"_llm.zlib", luaopen__llm_zlib},
  {NULL, NULL}
};
