/* Shared by the bindings that hand parsed JSON (json.h) to Lua: _llm.json
 * for what servers send, _llm.sim for its statistics. */
#ifndef LLMRUN_LMOD_JSON_H
#define LLMRUN_LMOD_JSON_H

#include <lua.h>

#include "json.h"

/* Pushes v as Lua values: objects and arrays as tables, integers that fit
 * 64 bits as Lua integers (cjson would make every count a float), null as
 * nil when null_as_nil, else as cjson.null (a NULL light userdata). */
void llm_push_json(lua_State *L, const json_value *v, int null_as_nil);

#endif
