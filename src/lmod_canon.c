/* _llm.canon: the canonical JSON text of a Lua value, which the cache
 * hashes into its keys (lualib/llm/cache_canon.lua says what it is for).
 *
 *   canon.encode(value) -> text | nil, err (an llm.error of kind "cache",
 *                         status "uncacheable", that says why)
 *
 * One spelling per value: object keys in byte order, no spaces, strings
 * escaped one way ("\"", "\\", \b \f \n \r \t, other control bytes as
 * \u00XX, everything else as is), integers and integral floats as
 * integers (1, 1.0 -> "1"; -0.0 -> "0"), other floats in the shortest of
 * %.15g / %.17g that reads back as the same double, NaN and infinities as
 * the strings "NaN", "Infinity", "-Infinity". A table whose keys are
 * exactly 1..n (n > 0) is an array; any other table an object (the empty
 * table is "{}"), whose number keys are written as their text. nil and
 * cjson.null are null. Functions, userdata, threads, keys that are
 * neither strings nor numbers, two keys with the same text and nesting
 * deeper than 64 make the value uncacheable: nil and an error that says why.
 *
 * The walk over Lua values is this binding; the spelling of strings,
 * numbers and key order is the engine src/canon.c (fuzzed alone by
 * tests/fuzz/fuzz_canon.c). It is in C because it runs on every cached
 * call (a few microseconds in Lua, well under one here). */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "lmod_util.h"

#define MAX_DEPTH 64

typedef struct key {
  const char *text;   /* a string key (number keys: buf, as keys move when sorted) */
  size_t len;
  int is_number;      /* a number key: push it back to look the value up */
  int is_integer;
  lua_Integer integer;
  lua_Number number;
  char buf[CANON_NUMBER_MAX]; /* the text of a number key */
} key;

/* The output (src/canon.h) in a userdata kept as an upvalue (freed by
 * __gc), so the walk may push freely (no luaL_Buffer rules) and an error
 * raised midway leaks nothing. */
typedef llm_buf out;

#define SMALL_OBJECT 8 /* keys of smaller objects are sorted on the C stack */
#define KEEP_BYTES (1u << 20) /* a buffer grown past this is freed after use */

static void add(lua_State *L, out *o, const char *s, size_t n)
{
  llm_buf_put(o, s, n);
  if (o->failed)
    luaL_error(L, "not enough memory");
}

static void add_char(lua_State *L, out *o, char c)
{
  llm_buf_putc(o, c);
  if (o->failed)
    luaL_error(L, "not enough memory");
}

static void put_string(lua_State *L, out *o, const char *s, size_t len)
{
  canon_put_string(o, s, len);
  if (o->failed)
    luaL_error(L, "not enough memory");
}

/* The text of the number at idx into buf; returns its length. */
static size_t number_text(lua_State *L, int idx, char *buf)
{
  if (lua_isinteger(L, idx))
    return canon_integer((long long)lua_tointeger(L, idx), buf);
  return canon_number((double)lua_tonumber(L, idx), buf);
}

static const char *key_text(const key *k) { return k->is_number ? k->buf : k->text; }

static int compare_keys(const void *a, const void *b)
{
  const key *x = a, *y = b;
  return canon_key_compare(key_text(x), x->len, key_text(y), y->len);
}

static const char *encode(lua_State *L, int idx, out *o, int depth);

static const char *encode_array(lua_State *L, int idx, out *o, int depth, lua_Unsigned len)
{
  add_char(L, o, '[');
  for (lua_Unsigned i = 1; i <= len; i++) {
    if (i > 1)
      add_char(L, o, ',');
    lua_rawgeti(L, idx, (lua_Integer)i);
    const char *err = encode(L, lua_gettop(L), o, depth + 1);
    lua_pop(L, 1);
    if (err)
      return err;
  }
  add_char(L, o, ']');
  return NULL;
}

static const char *encode_table(lua_State *L, int idx, out *o, int depth)
{
  lua_Unsigned len = lua_rawlen(L, idx);
  size_t count = 0, n = 0;
  int sequence = 1;
  key small[SMALL_OBJECT], *keys = small;
  const char *err = NULL;
  if (depth > MAX_DEPTH)
    return "nested too deeply";
  luaL_checkstack(L, 6, "nested too deeply");
  /* a sequence has exactly the keys 1..len */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (sequence) {
      lua_Integer k;
      if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1 || (lua_Unsigned)k > len)
        sequence = 0;
    }
  }
  if (sequence && count == len && len > 0)
    return encode_array(L, idx, o, depth, len);
  /* an object: its keys as text, in byte order */
  if (count > SMALL_OBJECT)
    keys = lua_newuserdatauv(L, count * sizeof *keys, 0); /* popped below */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    key *k = &keys[n++];
    lua_pop(L, 1);
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING) { /* the string stays alive as a key of the table */
      k->text = lua_tolstring(L, -1, &k->len);
      k->is_number = 0;
    } else if (t == LUA_TNUMBER) {
      k->is_number = 1;
      k->is_integer = lua_isinteger(L, -1);
      k->integer = lua_tointeger(L, -1);
      k->number = lua_tonumber(L, -1);
      k->len = number_text(L, -1, k->buf);
      k->text = NULL;
    } else {
      lua_pop(L, 1);
      err = "a table key that is neither a string nor a number";
      goto done;
    }
  }
  if (n > 1)
    qsort(keys, n, sizeof *keys, compare_keys);
  add_char(L, o, '{');
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && compare_keys(&keys[i - 1], &keys[i]) == 0) {
      err = "two keys with the same text";
      goto done;
    }
    if (i > 0)
      add_char(L, o, ',');
    put_string(L, o, key_text(&keys[i]), keys[i].len);
    add_char(L, o, ':');
    if (!keys[i].is_number)
      lua_pushlstring(L, keys[i].text, keys[i].len);
    else if (keys[i].is_integer)
      lua_pushinteger(L, keys[i].integer);
    else
      lua_pushnumber(L, keys[i].number);
    lua_rawget(L, idx);
    err = encode(L, lua_gettop(L), o, depth + 1);
    lua_pop(L, 1);
    if (err)
      goto done;
  }
  add_char(L, o, '}');
done:
  if (keys != small)
    lua_pop(L, 1);
  return err;
}

/* Appends the value at idx; NULL, or why it cannot be encoded. */
static const char *encode(lua_State *L, int idx, out *o, int depth)
{
  char num[CANON_NUMBER_MAX];
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    put_string(L, o, s, len);
    return NULL;
  }
  case LUA_TNUMBER:
    add(L, o, num, number_text(L, idx, num));
    return NULL;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx))
      add(L, o, "true", 4);
    else
      add(L, o, "false", 5);
    return NULL;
  case LUA_TNIL:
  case LUA_TNONE:
    add(L, o, "null", 4);
    return NULL;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
      add(L, o, "null", 4);
      return NULL;
    }
    return "a value of type userdata";
  case LUA_TTABLE:
    return encode_table(L, idx, o, depth);
  case LUA_TFUNCTION: return "a value of type function";
  case LUA_TUSERDATA: return "a value of type userdata";
  case LUA_TTHREAD: return "a value of type thread";
  default: return "a value of an unknown type";
  }
}

static int l_encode(lua_State *L)
{
  out *o = lua_touserdata(L, lua_upvalueindex(1));
  const char *err;
  lua_settop(L, 1);
  llm_buf_reset(o); /* also forgets a memory failure of an earlier call */
  err = encode(L, 1, o, 0);
  if (err)
    llm_fail(L, "cache", "uncacheable", "cannot be cached: %s", err);
  else
    lua_pushlstring(L, o->data ? o->data : "", o->len);
  if (o->cap > KEEP_BYTES) /* after the copy: a big buffer is not kept */
    llm_buf_free(o);
  return err ? 2 : 1;
}

static int out_gc(lua_State *L)
{
  llm_buf_free(lua_touserdata(L, 1));
  return 0;
}

static const luaL_Reg funcs[] = {
  {"encode", l_encode},
  {NULL, NULL}
};

int luaopen__llm_canon(lua_State *L)
{
  luaL_newlibtable(L, funcs);
  out *o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, out_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  luaL_setfuncs(L, funcs, 1);
  return 1;
}
