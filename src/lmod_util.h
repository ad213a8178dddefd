/* What every Lua binding (src/lmod_*.c) shares: the one way a runtime
 * failure reaches Lua, the readers of option tables, and class
 * registration. So all bindings fail alike, read options alike and build
 * their userdata alike.
 *
 *   Runtime failures return nil, err, where err is an llm.error table:
 *   {kind=, message= [, status=]} with the registry's "llm.error"
 *   metatable, the one lualib/llm/errors.lua completes (__tostring,
 *   __name), so llm.error.is(err) holds and print(err) reads well. Kinds
 *   name the subsystem that failed ("cache", "log", "sim", "tokens", "io")
 *   or the transfer's failure ("transport", "timeout", "parse",
 *   "cancelled"); status, where given, the reason within it ("busy",
 *   "readonly", "missing"...). Misuse (a wrong argument or option) raises.
 *
 *   Options: llm_opts_at(L, idx, "llm.cache.open") starts reading the table
 *   at idx (nil: every option takes its default); llm_opt_* read one field
 *   each, and raise "<what>: '<name>' must be ..." for a value of the wrong
 *   type or range. Strings stay valid while the table is on the stack.
 *
 *   Results: llm_set_* fill the fields of a table being returned.
 *
 *   Classes: llm_class_register names a metatable with its metamethods and
 *   methods (functions may share one upvalue, a light userdata such as the
 *   scheduler); llm_new_object makes a zeroed userdata of a class. */
#ifndef LLMRUN_LMOD_UTIL_H
#define LLMRUN_LMOD_UTIL_H

#include <lauxlib.h>
#include <stddef.h>

#define LLM_ERROR_METATABLE "llm.error" /* typed errors: {kind=, message=...} */

/* ---- runtime failures ------------------------------------------------------------------ */

/* Pushes an llm.error {kind=, message= [, status=]}; status may be NULL. */
void llm_push_error(lua_State *L, const char *kind, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Pushes nil and that error, and returns 2:
 *   return llm_fail(L, "cache", "io", "%s", message); */
int llm_fail(lua_State *L, const char *kind, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- option tables ----------------------------------------------------------------------- */

typedef struct llm_opts {
  lua_State *L;
  int t;            /* absolute index of the table; 0: none, every option its default */
  const char *what; /* the table's name in messages: "llm.cache.open", "sim config" */
} llm_opts;

/* The options at idx: a table, or nil/none; anything else raises. */
llm_opts llm_opts_at(lua_State *L, int idx, const char *what);
/* Raises on a key not among names (NULL-terminated): a misspelt option is
 * misuse, not something to ignore. */
void llm_opts_only(const llm_opts *o, const char *const names[]);

/* A number (an integral one for llm_opt_integer) from min to max, or def
 * when the field is nil. llm_opt_number takes math.huge when max is
 * HUGE_VAL. */
lua_Integer llm_opt_integer(const llm_opts *o, const char *name, lua_Integer def,
                            lua_Integer min, lua_Integer max);
lua_Number llm_opt_number(const llm_opts *o, const char *name, lua_Number def, lua_Number min,
                          lua_Number max);
/* A string (numbers are not converted), or def; len may be NULL. */
const char *llm_opt_string(const llm_opts *o, const char *name, const char *def, size_t *len);
/* The field's truth (any value counts, as in Lua), or def when nil. */
int llm_opt_boolean(const llm_opts *o, const char *name, int def);
/* The index in names (NULL-terminated) of a string field, or def when nil. */
int llm_opt_choice(const llm_opts *o, const char *name, int def, const char *const names[]);
/* Pushes the field when it is a table and returns 1; returns 0 (nothing
 * pushed) when it is nil; raises otherwise. */
int llm_opt_table(const llm_opts *o, const char *name);

/* ---- result tables ------------------------------------------------------------------------
 * Set t[k] on the table at the top of the stack. Unknown values never reach
 * Lua as NaN or infinities: the field is left out (nil). */

void llm_set_integer(lua_State *L, const char *k, lua_Integer v);
void llm_set_number(lua_State *L, const char *k, double v);   /* skips NaN, inf */
/* A count kept as a double (sqlite, sums of weights): integral values (below
 * 2^53) as Lua integers, so 42 prints as 42, not 42.0; skips NaN, inf. */
void llm_set_count(lua_State *L, const char *k, double v);
void llm_set_string(lua_State *L, const char *k, const char *v); /* skips NULL */
void llm_set_boolean(lua_State *L, const char *k, int v);

/* ---- classes ----------------------------------------------------------------------------------- */

/* Creates the metatable `name` with the metamethods `meta` and an __index
 * table of `methods` (either may be NULL). With upvalue not NULL, every
 * function gets it as its one upvalue (a light userdata). Leaves the stack
 * as it was. */
void llm_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *methods, void *upvalue);
/* Pushes a new userdata of `size` zeroed bytes with the class's metatable. */
void *llm_new_object(lua_State *L, size_t size, const char *name);
/* For a class whose userdata starts with the engine object's pointer (NULL
 * once closed): that pointer, for the object at idx; raises on another
 * type, and "attempt to use a closed <what>" after close. */
void *llm_check_open(lua_State *L, int idx, const char *name, const char *what);
/* Does the value at idx (any type: errors are tables) have the class's
 * metatable? */
int llm_has_class(lua_State *L, int idx, const char *name);

#endif
