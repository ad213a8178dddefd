/* Building a large Lua sequence of integers from a C array, for bindings
 * that return many numbers at once (llm.tokens.encode's ids).
 *
 *   llm_push_u32_array(L, ids, n);   -- pushes {ids[0], ..., ids[n-1]}
 *
 * The table is presized (array part only) and its length is exactly n. A
 * memory error raises, as lua_createtable does, so the caller keeps its C
 * array where the garbage collector frees it (a boxed userdata). */
#ifndef LLMRUN_LMOD_INTARRAY_H
#define LLMRUN_LMOD_INTARRAY_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Pushes a new table holding v[0..n) as integers at 1..n. Raises for n
 * over INT_MAX (lua_createtable's limit) or when out of memory. */
void llm_push_u32_array(lua_State *L, const uint32_t *v, size_t n);

/* Whether llm_push_u32_array stores into the table's array directly (1)
 * or through lua_rawseti (0): see lmod_intarray.c. For tests and
 * benchmarks; the result is the same table either way. */
int llm_u32_array_direct(lua_State *L);

/* The lua_rawseti way, always (what the direct way must equal). */
void llm_push_u32_array_api(lua_State *L, const uint32_t *v, size_t n);

#endif
