/* _llm.tok: the Lua face of the BPE tokenizer (bpe.h). Every function
 * takes an encoding name ("o200k_base", ...); lualib/llm/tokens.lua maps
 * models to encodings and adds chat counting and truncation on top.
 * Misuse (a bad argument, an unknown encoding, an id that is no token)
 * raises; running out of memory returns nil, err (an llm.error of kind
 * "tokens", lmod_util.h). */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "bpe/bpe.h"
#include "lmod_intarray.h"
#include "lmod_util.h"

static const llm_bpe *check_encoding(lua_State *L, int arg)
{
  const char *name = luaL_checkstring(L, arg);
  char err[160];
  const llm_bpe *e = llm_bpe_get(name, err, sizeof err);
  if (!e)
    luaL_argerror(L, arg, err);
  return e;
}

static unsigned check_flags(lua_State *L, int arg)
{
  return lua_toboolean(L, arg) ? LLM_BPE_SPECIAL : 0;
}

static int out_of_memory(lua_State *L)
{
  return llm_fail(L, "tokens", "memory", "out of memory");
}

/* Encoded ids live in a box on the stack while Lua builds the result, so
 * a memory error raised meanwhile cannot leak them (the box's __gc frees). */
#define IDS_BOX "llm.tok.ids"

static int box_gc(lua_State *L)
{
  llm_bpe_ids_free(luaL_checkudata(L, 1, IDS_BOX));
  return 0;
}

static llm_bpe_ids *encode_boxed(lua_State *L, const llm_bpe *e, const char *text, size_t len,
                                 unsigned flags)
{
  llm_bpe_ids *ids = llm_new_object(L, sizeof *ids, IDS_BOX);
  /* room for a typical text's ids up front (English runs ~4.5 bytes a
   * token): most encodes never grow the array */
  if (llm_grow(&ids->ids, &ids->cap, len / 3 + 16, sizeof *ids->ids) != 0)
    return NULL;
  return llm_bpe_encode(e, text, len, flags, ids) == 0 ? ids : NULL;
}

/* count(text, encoding [, special]) -> n */
static int l_count(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const llm_bpe *e = check_encoding(L, 2);
  size_t n = llm_bpe_count(e, text, len, check_flags(L, 3));
  if (n == (size_t)-1)
    return out_of_memory(L);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* encode(text, encoding [, special]) -> {id, ...} */
static int l_encode(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const llm_bpe *e = check_encoding(L, 2);
  llm_bpe_ids *ids = encode_boxed(L, e, text, len, check_flags(L, 3));
  if (!ids || ids->n > (size_t)INT_MAX)
    return out_of_memory(L);
  /* presized: each id is one store into the array part (lmod_intarray.c) */
  llm_push_u32_array(L, ids->ids, ids->n);
  llm_bpe_ids_free(ids);
  return 1;
}

/* ids_text(text, encoding, special, sep) -> "id<sep>id..." without a Lua
 * table in between (the CLI's --ids on large files). */
static int l_ids_text(lua_State *L)
{
  size_t len, seplen;
  const char *text = luaL_checklstring(L, 1, &len);
  const llm_bpe *e = check_encoding(L, 2);
  unsigned flags = check_flags(L, 3);
  const char *sep = luaL_optlstring(L, 4, " ", &seplen);
  llm_bpe_ids *ids = encode_boxed(L, e, text, len, flags);
  luaL_Buffer b;
  if (!ids)
    return out_of_memory(L);
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < ids->n; i++) {
    char num[16];
    int k = snprintf(num, sizeof num, "%lu", (unsigned long)ids->ids[i]);
    if (i)
      luaL_addlstring(&b, sep, seplen);
    luaL_addlstring(&b, num, (size_t)k);
  }
  luaL_pushresult(&b);
  llm_bpe_ids_free(ids);
  return 1;
}

/* decode({id, ...}, encoding) -> text */
static int l_decode(lua_State *L)
{
  const llm_bpe *e;
  lua_Integer n;
  uint32_t *ids;
  char err[160], *text;
  size_t len;
  luaL_checktype(L, 1, LUA_TTABLE);
  e = check_encoding(L, 2);
  n = luaL_len(L, 1);
  /* a userdata array: freed by the GC even when a bad id raises */
  ids = lua_newuserdatauv(L, (n > 0 ? (size_t)n : 1) * sizeof *ids, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    int isint;
    lua_Integer id = (lua_rawgeti(L, 1, i), lua_tointegerx(L, -1, &isint));
    lua_pop(L, 1);
    if (!isint || id < 0 || id >= (lua_Integer)llm_bpe_n_vocab(e))
      return luaL_error(L, "bad token id at position %d for %s", (int)i, llm_bpe_name(e));
    ids[i - 1] = (uint32_t)id;
  }
  text = llm_bpe_decode(e, ids, (size_t)n, &len, err, sizeof err);
  if (!text)
    return luaL_error(L, "%s", err);
  lua_pushlstring(L, text, len); /* on a memory error here text leaks once */
  free(text);
  return 1;
}

/* head_bytes / tail_bytes(text, encoding, max_tokens [, special]) -> n */
static int cut(lua_State *L, int tail)
{
  size_t len, n;
  const char *text = luaL_checklstring(L, 1, &len);
  const llm_bpe *e = check_encoding(L, 2);
  lua_Integer max = luaL_checkinteger(L, 3);
  unsigned flags = check_flags(L, 4);
  luaL_argcheck(L, max >= 0, 3, "expected a token count >= 0");
  n = tail ? llm_bpe_tail_bytes(e, text, len, (size_t)max, flags)
           : llm_bpe_head_bytes(e, text, len, (size_t)max, flags);
  if (n == (size_t)-1)
    return out_of_memory(L);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int l_head_bytes(lua_State *L) { return cut(L, 0); }
static int l_tail_bytes(lua_State *L) { return cut(L, 1); }

/* n_vocab(encoding) -> one past the highest token id */
static int l_n_vocab(lua_State *L)
{
  lua_pushinteger(L, llm_bpe_n_vocab(check_encoding(L, 1)));
  return 1;
}

static const luaL_Reg funcs[] = {
  {"count", l_count},
  {"encode", l_encode},
  {"ids_text", l_ids_text},
  {"decode", l_decode},
  {"head_bytes", l_head_bytes},
  {"tail_bytes", l_tail_bytes},
  {"n_vocab", l_n_vocab},
  {NULL, NULL}
};

static const luaL_Reg box_metamethods[] = {
  {"__gc", box_gc},
  {NULL, NULL}
};

int luaopen__llm_tok(lua_State *L)
{
  llm_class_register(L, IDS_BOX, box_metamethods, NULL, NULL);
  luaL_newlib(L, funcs);
  lua_createtable(L, 0, 0);
  for (int i = 0; llm_bpe_builtin_names[i]; i++) {
    lua_pushstring(L, llm_bpe_builtin_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "encodings");
  return 1;
}
