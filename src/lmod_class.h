/* Shared by the Lua bindings: registering a typed userdata's class. */
#ifndef LLMRUN_LMOD_CLASS_H
#define LLMRUN_LMOD_CLASS_H

#include <lauxlib.h>

/* Creates the named metatable with metamethods `meta` and an __index
 * table of `methods` (either may be NULL). Leaves the stack as it was. */
void llm_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

#endif
