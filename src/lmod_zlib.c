/* _llm.zlib: compressing values the shared cache stores (zlib_lazy.h).
 *
 *   zlib.deflate(s [, level]) -> compressed | nil, err   (level 1..9, default 1:
 *       the cache trades ratio for speed; JSON still shrinks 3-5x)
 *   zlib.inflate(s, size) -> s | nil, err    (size: the original length)
 *
 * err: an llm.error of kind "zlib" (lmod_util.h), status "unavailable"
 * (libz cannot be loaded), "corrupt" (a damaged value, or an implausible
 * size: a cache treats it as a miss) or "error". */
#include <lauxlib.h>
#include <stdlib.h>

#include "lmod_util.h"
#include "zlib_lazy.h"

#define MAX_INFLATED ((size_t)1 << 30)

static int fail(lua_State *L, const char *status, const char *msg)
{
  return llm_fail(L, "zlib", status, "%s", msg);
}

static int l_deflate(lua_State *L)
{
  size_t len, outlen;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer level = luaL_optinteger(L, 2, 1);
  char err[256];
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, level >= 1 && level <= 9, 2, "a level from 1 to 9 expected");
  if (llm_zlib_load(err, sizeof err) != 0)
    return fail(L, "unavailable", err);
  outlen = llm_zlib_bound(len);
  out = luaL_buffinitsize(L, &b, outlen);
  if (llm_zlib_compress(out, &outlen, s, len, (int)level) != 0)
    return fail(L, "error", "compressing failed");
  luaL_pushresultsize(&b, outlen);
  return 1;
}

static int l_inflate(lua_State *L)
{
  size_t len, outlen;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer size = luaL_checkinteger(L, 2);
  char err[256];
  luaL_Buffer b;
  char *out;
  if (size < 0 || (size_t)size > MAX_INFLATED)
    return fail(L, "corrupt", "implausible original size");
  if (llm_zlib_load(err, sizeof err) != 0)
    return fail(L, "unavailable", err);
  outlen = (size_t)size;
  out = luaL_buffinitsize(L, &b, outlen ? outlen : 1);
  if (llm_zlib_uncompress(out, &outlen, s, len) != 0 || outlen != (size_t)size)
    return fail(L, "corrupt", "damaged compressed value");
  luaL_pushresultsize(&b, outlen);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"deflate", l_deflate},
  {"inflate", l_inflate},
  {NULL, NULL}
};

int luaopen__llm_zlib(lua_State *L)
{
  luaL_newlib(L, funcs);
  return 1;
}
