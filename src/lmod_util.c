/* The helpers every Lua binding shares (see lmod_util.h). */
#include "lmod_util.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- runtime failures ------------------------------------------------------------------ */

static void push_error_v(lua_State *L, const char *kind, const char *status, const char *fmt,
                         va_list ap)
{
  lua_createtable(L, 0, status ? 3 : 2);
  /* the registry's llm.error, created here when no host made it first (a
   * binding used alone, as by the fuzzers): the same table either way */
  luaL_newmetatable(L, LLM_ERROR_METATABLE);
  lua_setmetatable(L, -2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushvfstring(L, fmt, ap);
  lua_setfield(L, -2, "message");
  if (status) {
    lua_pushstring(L, status);
    lua_setfield(L, -2, "status");
  }
}

void llm_push_error(lua_State *L, const char *kind, const char *status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  push_error_v(L, kind, status, fmt, ap);
  va_end(ap);
}

int llm_fail(lua_State *L, const char *kind, const char *status, const char *fmt, ...)
{
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  push_error_v(L, kind, status, fmt, ap);
  va_end(ap);
  return 2;
}

/* ---- option tables ----------------------------------------------------------------------- */

llm_opts llm_opts_at(lua_State *L, int idx, const char *what)
{
  llm_opts o = {L, 0, what};
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    o.t = lua_absindex(L, idx);
  }
  return o;
}

void llm_opts_only(const llm_opts *o, const char *const names[])
{
  lua_State *L = o->L;
  if (!o->t)
    return;
  lua_pushnil(L);
  while (lua_next(L, o->t)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    size_t i = 0;
    while (key && names[i] && strcmp(names[i], key) != 0)
      i++;
    if (!key || !names[i])
      luaL_error(L, "%s: unknown key '%s'", o->what, key ? key : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
}

/* Pushes field `name`; returns its type (LUA_TNIL without a table). */
static int get(const llm_opts *o, const char *name)
{
  if (!o->t) {
    lua_pushnil(o->L);
    return LUA_TNIL;
  }
  return lua_getfield(o->L, o->t, name);
}

lua_Integer llm_opt_integer(const llm_opts *o, const char *name, lua_Integer def,
                            lua_Integer min, lua_Integer max)
{
  lua_State *L = o->L;
  int t = get(o, name), ok = 0;
  lua_Integer v = def;
  if (t != LUA_TNIL) {
    if (t == LUA_TNUMBER)
      v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min || v > max) {
      if (max == LUA_MAXINTEGER)
        luaL_error(L, "%s: '%s' must be an integer >= %I", o->what, name, min);
      luaL_error(L, "%s: '%s' must be an integer from %I to %I", o->what, name, min, max);
    }
  }
  lua_pop(L, 1);
  return v;
}

lua_Number llm_opt_number(const llm_opts *o, const char *name, lua_Number def, lua_Number min,
                          lua_Number max)
{
  lua_State *L = o->L;
  int t = get(o, name);
  lua_Number v = def;
  if (t != LUA_TNIL) {
    v = lua_tonumber(L, -1);
    if (t != LUA_TNUMBER || !(v >= min && v <= max)) { /* NaN fails too */
      if (max == HUGE_VAL)
        luaL_error(L, "%s: '%s' must be a number >= %f", o->what, name, min);
      luaL_error(L, "%s: '%s' must be a number from %f to %f", o->what, name, min, max);
    }
  }
  lua_pop(L, 1);
  return v;
}

const char *llm_opt_string(const llm_opts *o, const char *name, const char *def, size_t *len)
{
  lua_State *L = o->L;
  int t = get(o, name);
  const char *s = def;
  if (len)
    *len = def ? strlen(def) : 0;
  if (t == LUA_TSTRING)
    s = lua_tolstring(L, -1, len); /* the table keeps the string alive */
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: '%s' must be a string, not a %s", o->what, name, luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

int llm_opt_boolean(const llm_opts *o, const char *name, int def)
{
  int v = get(o, name) == LUA_TNIL ? def : lua_toboolean(o->L, -1);
  lua_pop(o->L, 1);
  return v;
}

int llm_opt_choice(const llm_opts *o, const char *name, int def, const char *const names[])
{
  lua_State *L = o->L;
  int t = get(o, name), v = def;
  if (t != LUA_TNIL) {
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : "";
    for (v = 0; names[v] && strcmp(names[v], s) != 0; v++)
      ;
    if (!names[v]) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; names[i]; i++) {
        luaL_addstring(&b, i ? ", " : "");
        luaL_addstring(&b, names[i]);
      }
      luaL_pushresult(&b);
      luaL_error(L, "%s: '%s' must be one of %s", o->what, name, lua_tostring(L, -1));
    }
  }
  lua_pop(L, 1);
  return v;
}

int llm_opt_table(const llm_opts *o, const char *name)
{
  int t = get(o, name);
  if (t == LUA_TTABLE)
    return 1;
  if (t != LUA_TNIL)
    luaL_error(o->L, "%s: '%s' must be a table, not a %s", o->what, name, luaL_typename(o->L, -1));
  lua_pop(o->L, 1);
  return 0;
}

/* ---- result tables ------------------------------------------------------------------------ */

void llm_set_integer(lua_State *L, const char *k, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void llm_set_number(lua_State *L, const char *k, double v)
{
  if (isfinite(v)) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
  }
}

void llm_set_count(lua_State *L, const char *k, double v)
{
  if (v == floor(v) && fabs(v) < 9007199254740992.0)
    llm_set_integer(L, k, (lua_Integer)v);
  else
    llm_set_number(L, k, v);
}

void llm_set_string(lua_State *L, const char *k, const char *v)
{
  if (v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
  }
}

void llm_set_boolean(lua_State *L, const char *k, int v)
{
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* ---- classes ----------------------------------------------------------------------------------- */

static void set_funcs(lua_State *L, const luaL_Reg *fns, void *upvalue)
{
  if (upvalue)
    lua_pushlightuserdata(L, upvalue);
  luaL_setfuncs(L, fns, upvalue ? 1 : 0);
}

void llm_class_register(lua_State *L, const char *name, const luaL_Reg *meta,
                        const luaL_Reg *methods, void *upvalue)
{
  luaL_newmetatable(L, name);
  if (meta)
    set_funcs(L, meta, upvalue);
  if (methods) {
    lua_newtable(L);
    set_funcs(L, methods, upvalue);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void *llm_new_object(lua_State *L, size_t size, const char *name)
{
  void *p = lua_newuserdatauv(L, size, 0);
  memset(p, 0, size);
  luaL_setmetatable(L, name);
  return p;
}

void *llm_check_open(lua_State *L, int idx, const char *name, const char *what)
{
  void *p = *(void **)luaL_checkudata(L, idx, name);
  if (!p)
    luaL_error(L, "attempt to use a closed %s", what);
  return p;
}

int llm_has_class(lua_State *L, int idx, const char *name)
{
  int yes;
  if (!lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, name);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}
