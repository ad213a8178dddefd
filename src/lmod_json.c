/* _llm.json: the JSON reader for what servers send.
 *
 *   json.decode(text) -> value    (raises on invalid JSON, as cjson.decode)
 *   json.openai_chat(text) -> the result table of an OpenAI chat completion
 *     body, or nothing when the body is not of the usual shape (see below)
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

/* The parsed document and any scrubbed copy of the text. One holder per
 * Lua state, an upvalue of the readers: a reader frees what it parsed
 * before it returns, and what an error raised while building tables left
 * behind (out of memory) is freed by the next read or the holder's __gc.
 * (A holder per call, to-be-closed, cost an allocation and a metatable
 * set on every response; nothing here can yield or re-enter.) */
#define PARSED_MT "llm.json.parsed"

typedef struct parsed {
  json_doc *doc;
  char *scrubbed;
} parsed;

static void release(parsed *p)
{
  json_free(p->doc);
  free(p->scrubbed);
  p->doc = NULL;
  p->scrubbed = NULL;
}

static int parsed_gc(lua_State *L)
{
  release(lua_touserdata(L, 1));
  return 0;
}

/* Parses text[0 .. len) (a browser's UTF-8 decode first) into the holder:
 * the root, or NULL with err set; raises when memory runs out. */
static const json_value *parse_into(lua_State *L, const char *text, size_t len, json_error *err)
{
  parsed *p = lua_touserdata(L, lua_upvalueindex(1));
  size_t slen;
  int rc;
  release(p);
  rc = json_utf8_scrub(text, len, &p->scrubbed, &slen);
  if (rc < 0)
    luaL_error(L, "not enough memory");
  if (rc > 0) {
    text = p->scrubbed;
    len = slen;
  }
  return json_parse(text, len, &p->doc, err);
}

static int done(lua_State *L, int nresults)
{
  release(lua_touserdata(L, lua_upvalueindex(1)));
  return nresults;
}

static int l_decode(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  json_error err;
  const json_value *root = parse_into(L, text, len, &err);
  if (!root)
    return luaL_error(L, "invalid JSON at byte %d: %s", (int)err.offset + 1, err.message);
  llm_push_json(L, root, 0);
  return done(L, 1);
}

/* ---- json.openai_chat: a chat completion read straight into its result ----
 *
 * Every non-streaming OpenAI-format call reads one of these bodies. Decoding
 * the whole document into tables (a dozen of them, some forty strings) for
 * the Lua parser to pick ten fields from cost more than the rest of the
 * parse; here the parsed tree is walked in C and only the result table is
 * built. The reference is P.parse_chat_lua in lualib/llm/providers/openai.lua:
 * the same fields, by the same rules, give the same values (a test compares
 * the two on every recorded response and on odd shapes). Whatever that
 * parser would treat specially (invalid JSON, an error object, no choices,
 * several choices, a field of an unexpected type) returns nothing, and the
 * caller hands the body to the Lua parser, which also says what is wrong. */

static int absent(const json_value *v) { return !v || v->type == JSON_NULL; }

/* v as P.parse_chat_lua reads `nonnull(v)`: nothing for absent or null,
 * else the value. Sets field k of the table on top. */
static void set_nonnull(lua_State *L, const json_value *v, const char *k)
{
  if (absent(v))
    return;
  llm_push_json(L, v, 0);
  lua_setfield(L, -2, k);
}

/* An object, or "nothing to read" (NULL) for absent/null/false and for an
 * array (a Lua table without such keys reads the same); 0 for anything
 * whose fields the Lua parser would fail to index. */
static int object_or_empty(const json_value *v, const json_value **out)
{
  *out = NULL;
  if (!v || v->type == JSON_NULL || v->type == JSON_FALSE || v->type == JSON_ARRAY)
    return 1;
  if (v->type != JSON_OBJECT)
    return 0;
  *out = v;
  return 1;
}

/* A usage count: absent or null -> def (an integer; -1: leave it out),
 * a number -> itself; 0 for another type (the Lua parser decides). */
static int push_count(lua_State *L, const json_value *v, lua_Integer def)
{
  if (absent(v)) {
    if (def < 0)
      lua_pushnil(L);
    else
      lua_pushinteger(L, def);
    return 1;
  }
  if (v->type != JSON_NUMBER)
    return 0;
  llm_push_json(L, v, 0);
  return 1;
}

/* P.usage: pushes the llmrun usage table of u (an object), or returns 0. */
static int push_openai_usage(lua_State *L, const json_value *u)
{
  const json_value *pd, *cd;
  int top = lua_gettop(L);
  if (!object_or_empty(json_get(u, "prompt_tokens_details"), &pd) ||
      !object_or_empty(json_get(u, "completion_tokens_details"), &cd))
    return 0;
  lua_createtable(L, 0, 6);
  if (!push_count(L, json_get(u, "prompt_tokens"), 0) ||      /* top + 2 */
      !push_count(L, json_get(u, "completion_tokens"), 0)) {  /* top + 3 */
    lua_settop(L, top);
    return 0;
  }
  {
    const json_value *total = json_get(u, "total_tokens");
    if (absent(total)) { /* prompt + completion, with Lua's integer/float rules */
      lua_pushvalue(L, top + 2);
      lua_pushvalue(L, top + 3);
      lua_arith(L, LUA_OPADD);
    } else if (!push_count(L, total, 0)) {
      lua_settop(L, top);
      return 0;
    }
  }
  lua_setfield(L, top + 1, "total_tokens");
  lua_setfield(L, top + 1, "completion_tokens");
  lua_setfield(L, top + 1, "prompt_tokens");
  if (!push_count(L, json_get(pd, "cached_tokens"), 0)) {
    lua_settop(L, top);
    return 0;
  }
  lua_setfield(L, -2, "cached_tokens");
  if (!push_count(L, json_get(pd, "cache_write_tokens"), -1)) {
    lua_settop(L, top);
    return 0;
  }
  lua_setfield(L, -2, "cache_creation_tokens");
  if (!push_count(L, json_get(cd, "reasoning_tokens"), 0)) {
    lua_settop(L, top);
    return 0;
  }
  lua_setfield(L, -2, "reasoning_tokens");
  return 1;
}

/* The body of P.parse_chat_lua for the usual shape; 0 (the stack as it
 * was) for anything else. */
static int push_openai_chat(lua_State *L, const json_value *doc)
{
  const json_value *choices, *first, *msg, *content, *v;
  int top = lua_gettop(L);
  if (doc->type != JSON_OBJECT)
    return 0;
  v = json_get(doc, "error");
  if (v && v->type != JSON_NULL && v->type != JSON_FALSE)
    return 0;
  choices = json_get(doc, "choices");
  if (!choices || choices->type != JSON_ARRAY || choices->u.array.n != 1)
    return 0; /* several choices: r.choices shares tables with r's fields */
  first = json_at(choices, 0);
  if (first->type != JSON_OBJECT || !object_or_empty(json_get(first, "message"), &msg))
    return 0;
  content = json_get(msg, "content");
  if (!absent(content) && content->type != JSON_STRING)
    return 0; /* a number or a list of parts: common.text decides */
  /* room for llm.model's measured fields too (latency, request id...):
   * one allocation, no rehash when it adds them */
  lua_createtable(L, 0, 24);
  if (absent(content))
    lua_pushliteral(L, "");
  else
    lua_pushlstring(L, content->u.string.ptr, content->u.string.len);
  lua_setfield(L, -2, "text");
  v = json_get(first, "logprobs");
  if (v && v->type == JSON_OBJECT) { /* `type(lp) == "table" and nonnull(lp.content) or nil` */
    v = json_get(v, "content");
    if (v && v->type != JSON_FALSE)
      set_nonnull(L, v, "logprobs");
  }
  set_nonnull(L, json_get(msg, "tool_calls"), "tool_calls");
  set_nonnull(L, json_get(first, "finish_reason"), "finish_reason");
  v = json_get(doc, "usage");
  if (v && v->type == JSON_ARRAY) {
    lua_settop(L, top);
    return 0;
  }
  if (v && v->type == JSON_OBJECT) {
    if (!push_openai_usage(L, v)) {
      lua_settop(L, top);
      return 0;
    }
    lua_setfield(L, -2, "usage");
  }
  set_nonnull(L, json_get(doc, "model"), "model");
  set_nonnull(L, json_get(doc, "id"), "id");
  set_nonnull(L, json_get(doc, "system_fingerprint"), "system_fingerprint");
  set_nonnull(L, json_get(doc, "service_tier"), "service_tier");
  /* message_extras */
  set_nonnull(L, json_get(msg, "refusal"), "refusal");
  v = json_get(msg, "reasoning_content");
  if (!v || v->type == JSON_NULL || v->type == JSON_FALSE)
    v = json_get(msg, "reasoning");
  if (v && v->type == JSON_STRING) {
    lua_pushlstring(L, v->u.string.ptr, v->u.string.len);
    lua_setfield(L, -2, "reasoning");
  }
  v = json_get(msg, "annotations");
  if (v && v->type == JSON_ARRAY && v->u.array.n > 0) {
    llm_push_json(L, v, 0);
    lua_setfield(L, -2, "citations");
  }
  return 1;
}

static int l_openai_chat(lua_State *L)
{
  size_t len;
  const char *text = lua_tolstring(L, 1, &len);
  const json_value *root;
  json_error err;
  if (lua_type(L, 1) != LUA_TSTRING)
    return 0;
  root = parse_into(L, text, len, &err);
  return done(L, root && push_openai_chat(L, root) ? 1 : 0);
}

static const luaL_Reg funcs[] = {
  {"decode", l_decode},
  {"openai_chat", l_openai_chat},
  {NULL, NULL}
};

static const luaL_Reg parsed_metamethods[] = {
  {"__gc", parsed_gc},
  {NULL, NULL}
};

int luaopen__llm_json(lua_State *L)
{
  llm_class_register(L, PARSED_MT, parsed_metamethods, NULL, NULL);
  luaL_newlibtable(L, funcs);
  llm_new_object(L, sizeof(parsed), PARSED_MT); /* the holder, shared as upvalue 1 */
  luaL_setfuncs(L, funcs, 1);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
