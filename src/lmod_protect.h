/* pcall, xpcall and coroutine.resume that an interrupt cannot be caught
 * by for good (see lmod_protect.c). */
#ifndef LLMRUN_LMOD_PROTECT_H
#define LLMRUN_LMOD_PROTECT_H

#include <lua.h>

/* Replaces the globals pcall and xpcall and coroutine.resume in L. */
void llm_protect_install(lua_State *L);

#endif
