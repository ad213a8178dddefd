/* _llm.json: the JSON reader for what servers send.
 *
 *   json.decode(text) -> value    (raises on invalid JSON, as cjson.decode)
 *
 * Response bodies and stream events are read with the project's strict
 * reader (src/json.c) rather than lua-cjson, which cannot be configured
 * to do what a browser does: an escaped lone surrogate (\ud800) becomes
 * U+FFFD instead of failing the whole response (or the rest of a
 * stream), NaN, Infinity and hex literals are rejected instead of read,
 * and invalid UTF-8 bytes become U+FFFD (as a browser's UTF-8 decode does
 * before JSON.parse). One reader, so the simulator and the client agree.
 *
 * The values are what lua-cjson gives, so callers need not change: null
 * is cjson.null (a NULL light userdata), objects and arrays are tables.
 * One difference on purpose: an integer literal that fits 64 bits is a
 * Lua integer (cjson makes every number a float, so a count of 42 would
 * print as "42.0"). */
#include <lauxlib.h>
#include <stdlib.h>

#include "json.h"
#include "lmod_json.h"
#include "lmod_util.h"

void llm_push_json(lua_State *L, const json_value *v, int null_as_nil)
{
  int64_t i;
  switch (v->type) {
  case JSON_NULL:
    if (null_as_nil)
      lua_pushnil(L);
    else
      lua_pushlightuserdata(L, NULL); /* == cjson.null */
    break;
  case JSON_TRUE: lua_pushboolean(L, 1); break;
  case JSON_FALSE: lua_pushboolean(L, 0); break;
  case JSON_NUMBER:
    if (json_int64(v, &i))
      lua_pushinteger(L, (lua_Integer)i);
    else
      lua_pushnumber(L, v->u.number.value);
    break;
  case JSON_STRING: lua_pushlstring(L, v->u.string.ptr, v->u.string.len); break;
  case JSON_ARRAY:
    luaL_checkstack(L, 2, "JSON nesting");
    lua_createtable(L, (int)v->u.array.n, 0);
    for (size_t k = 0; k < v->u.array.n; k++) {
      llm_push_json(L, &v->u.array.items[k], null_as_nil);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    break;
  case JSON_OBJECT:
    luaL_checkstack(L, 3, "JSON nesting");
    lua_createtable(L, 0, (int)v->u.object.n);
    for (size_t k = 0; k < v->u.object.n; k++) {
      const json_member *m = &v->u.object.members[k];
      lua_pushlstring(L, m->key, m->key_len);
      llm_push_json(L, &m->value, null_as_nil);
      lua_rawset(L, -3); /* duplicates: the last one wins, as in cjson */
    }
    break;
  }
}

/* The parsed document and any scrubbed copy of the text, released by
 * __close/__gc so an error raised while building tables leaks nothing. */
#define PARSED_MT "llm.json.parsed"

typedef struct parsed {
  json_doc *doc;
  char *scrubbed;
} parsed;

static int parsed_free(lua_State *L)
{
  parsed *p = lua_touserdata(L, 1);
  json_free(p->doc);
  free(p->scrubbed);
  p->doc = NULL;
  p->scrubbed = NULL;
  return 0;
}

static int l_decode(lua_State *L)
{
  size_t len, slen;
  const char *text = luaL_checklstring(L, 1, &len);
  parsed *p = llm_new_object(L, sizeof *p, PARSED_MT);
  const json_value *root;
  json_error err;
  int rc;
  lua_toclose(L, -1);
  rc = json_utf8_scrub(text, len, &p->scrubbed, &slen);
  if (rc < 0)
    return luaL_error(L, "not enough memory");
  if (rc > 0) {
    text = p->scrubbed;
    len = slen;
  }
  root = json_parse(text, len, &p->doc, &err);
  if (!root)
    return luaL_error(L, "invalid JSON at byte %d: %s", (int)err.offset + 1, err.message);
  llm_push_json(L, root, 0);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"decode", l_decode},
  {NULL, NULL}
};

static const luaL_Reg parsed_metamethods[] = {
  {"__close", parsed_free},
  {"__gc", parsed_free},
  {NULL, NULL}
};

int luaopen__llm_json(lua_State *L)
{
  llm_class_register(L, PARSED_MT, parsed_metamethods, NULL, NULL);
  luaL_newlib(L, funcs);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
