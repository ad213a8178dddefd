/* Building a large Lua sequence of integers (see lmod_intarray.h).
 *
 * Why not simply lua_rawseti per element: on this project's 2-core Xeon,
 * lua_pushinteger + lua_rawseti cost ~5 ns an element (five calls:
 * index2value, luaH_setint, luaH_getint, a stack-protector check each)
 * against ~10 ns a token for counting scripts.txt (1.1 bytes a token), so
 * building llm.tokens.encode's table alone took 0.5x of the count's time
 * and the whole encode ~2x (issue 14 asks for at most 1.5x). Storing
 * straight into the presized array part costs ~1-2 ns an element, most of
 * it Lua's own nil-filling in lua_createtable and the memory traffic.
 *
 * How: Lua 5.4 (every release, 5.4.0 to 5.4.8) lays out a table as
 * {CommonHeader: next, tt, marked; flags; lsizenode; alimit; TValue *array;
 * ...} and a TValue as {Value value_; lu_byte tt_}, an integer's tag being
 * LUA_VNUMINT (3) (lobject.h). That layout is private to Lua, so it is
 * used only when it is proven: compiled against Lua 5.4, running Lua 5.4
 * (lua_version), and a probe at first use that writes a small table both
 * ways and reads it back both ways (lua_rawseti then the array; the array
 * then lua_rawgeti and lua_rawlen). Otherwise every store goes through
 * lua_rawseti, with the same result.
 *
 * Why the direct stores are sound: lua_createtable(L, n, 0) gives an array
 * part of exactly n slots and an empty hash part, so with every slot set
 * the length is n; integers are not collectable, so no GC barrier is owed
 * (lua_rawseti's barrier does nothing for them either); nothing between
 * lua_createtable and the last store allocates, so the array cannot move. */
#include "lmod_intarray.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#if LUA_VERSION_NUM == 504

/* Mirrors of lobject.h's TValue and of the start of its Table (5.4). */
typedef union {
  void *gc, *p;
  lua_CFunction f;
  lua_Integer i;
  lua_Number n;
  unsigned char ub;
} lua54_value;

typedef struct {
  lua54_value value_;
  unsigned char tt_;
} lua54_tvalue;

typedef struct {
  void *next;
  unsigned char tt, marked, flags, lsizenode;
  unsigned int alimit;
  lua54_tvalue *array;
} lua54_table;

#define LUA54_VNUMINT 3  /* makevariant(LUA_TNUMBER, 0) */
#define LUA54_VEMPTY 16  /* makevariant(LUA_TNIL, 1): a free array slot */

/* The array part of the table at the top of the stack. */
static lua54_tvalue *array_of(lua_State *L)
{
  lua54_tvalue *a;
  memcpy(&a, (const char *)lua_topointer(L, -1) + offsetof(lua54_table, array), sizeof a);
  return a;
}

/* Last slot first: lua_createtable has just filled the array with nils
 * and, for a large table, its collection step has just read it from the
 * first slot to the last, so the last slots are the ones still in cache
 * (~10% less time than first slot first on a table larger than L2). */
static void store_direct(lua54_tvalue *a, const uint32_t *v, size_t n)
{
  for (size_t i = n; i-- > 0;) {
    a[i].value_.i = (lua_Integer)v[i];
    a[i].tt_ = LUA54_VNUMINT;
  }
}

/* Whether the direct stores give the table lua_rawseti would: 1 or 0. */
static int probe(lua_State *L)
{
  static const uint32_t v[4] = { 0x89abcdefu, 0, 1, UINT32_MAX };
  lua54_tvalue *a;
  int ok = 1;
  if (lua_version(L) != 504)
    return 0;
  luaL_checkstack(L, 2, "probing the table layout");
  /* lua_rawseti, then read the array */
  llm_push_u32_array_api(L, v, 4);
  a = array_of(L);
  for (int i = 0; i < 4 && ok; i++)
    ok = a && a[i].tt_ == LUA54_VNUMINT && a[i].value_.i == (lua_Integer)v[i];
  lua_pop(L, 1);
  if (!ok)
    return 0;
  /* the array, then read it back through the API */
  lua_createtable(L, 4, 0);
  a = array_of(L);
  for (int i = 0; i < 4 && ok; i++)
    ok = a[i].tt_ == LUA54_VEMPTY;
  if (ok) {
    store_direct(a, v, 4);
    ok = lua_rawlen(L, -1) == 4;
    for (int i = 0; i < 4 && ok; i++) {
      int isint;
      lua_Integer x = (lua_rawgeti(L, -1, i + 1), lua_tointegerx(L, -1, &isint));
      ok = isint && x == (lua_Integer)v[i];
      lua_pop(L, 1);
    }
    ok = lua_rawgeti(L, -1, 5) == LUA_TNIL && ok; /* and nothing past them */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

#endif

/* 0: not probed yet; 1: direct; -1: lua_rawseti. The same in every state
 * and thread of the process (it depends on the Lua linked), so a race
 * between two first uses only probes twice. */
static atomic_int direct_state;

int llm_u32_array_direct(lua_State *L)
{
  int s = atomic_load_explicit(&direct_state, memory_order_relaxed);
#if LUA_VERSION_NUM == 504
  if (s == 0) {
    s = probe(L) ? 1 : -1;
    atomic_store_explicit(&direct_state, s, memory_order_relaxed);
  }
#else
  (void)L;
  s = -1;
#endif
  return s == 1;
}

void llm_push_u32_array_api(lua_State *L, const uint32_t *v, size_t n)
{
  if (n > INT_MAX)
    luaL_error(L, "too many integers for one table (%zu)", n);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)v[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

void llm_push_u32_array(lua_State *L, const uint32_t *v, size_t n)
{
#if LUA_VERSION_NUM == 504
  if (n > 0 && n <= INT_MAX && llm_u32_array_direct(L)) {
    lua_createtable(L, (int)n, 0);
    store_direct(array_of(L), v, n);
    return;
  }
#endif
  llm_push_u32_array_api(L, v, n);
}
