/* _llm.sqlite: a small sqlite binding for files whose schema lives in Lua
 * (the cassettes of llm.record / llm.replay, lualib/llm/cassette.lua).
 *
 *   sqlite.open(path, mode) -> db | nil, err
 *       mode "r": read-only; "rw": an existing file; "create": made if
 *       missing (0600, its directories 0700). Writable files use WAL and
 *       synchronous=NORMAL.
 *   db:exec(sql, ...) -> changes, last_insert_rowid | nil, err
 *   db:query(sql, ...) -> {{column = value, ...}, ...} | nil, err
 *   db:script(sql) -> true | nil, err   (several statements, no parameters)
 *   db:path(), db:close()
 *   sqlite.blob(s) -> a parameter bound as a BLOB (a plain string is TEXT)
 *
 * Parameters: nil (NULL), booleans (0/1), integers, floats, strings,
 * sqlite.blob(s). Columns come back as integers, floats, strings (TEXT
 * and BLOB alike) or nil. A statement is prepared once per connection
 * and reused (the SQL text is the cache key). Misuse (a bad argument)
 * raises; a runtime failure (I/O, a damaged file, a syntax error in SQL
 * that came from elsewhere) returns nil, err: an llm.error of kind
 * "sqlite" whose status is sqlite's primary result code as a word
 * ("notadb", "corrupt", "busy", "readonly", "full", "cantopen", "ioerr",
 * "constraint", "error"...), or "missing" for a file open does not find
 * (lmod_util.h). */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "lmod_util.h"
#include "store/sqlite_wal.h"

#define DB_MT "llm.sqlite.db"
#define BLOB_MT "llm.sqlite.blob"
#define BUSY_MS 5000
#define STMT_CACHE 48

typedef struct cached_stmt {
  char *sql;
  sqlite3_stmt *stmt;
} cached_stmt;

typedef struct db {
  sqlite3 *db;
  char *path;
  cached_stmt stmts[STMT_CACHE];
  int nstmts, next_evict;
} db;

static db *check_db(lua_State *L)
{
  llm_check_open(L, 1, DB_MT, "sqlite database");
  return lua_touserdata(L, 1);
}

static const char *code_name(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_NOTADB: return "notadb";
  case SQLITE_CORRUPT: return "corrupt";
  case SQLITE_BUSY: return "busy";
  case SQLITE_LOCKED: return "locked";
  case SQLITE_READONLY: return "readonly";
  case SQLITE_FULL: return "full";
  case SQLITE_CANTOPEN: return "cantopen";
  case SQLITE_IOERR: return "ioerr";
  case SQLITE_CONSTRAINT: return "constraint";
  case SQLITE_NOMEM: return "nomem";
  case SQLITE_PERM: return "perm";
  case SQLITE_MISMATCH: return "mismatch";
  case SQLITE_TOOBIG: return "toobig";
  default: return "error";
  }
}

static int push_fail(lua_State *L, const char *msg, int rc)
{
  return llm_fail(L, "sqlite", code_name(rc), "%s", msg);
}

static int fail_db(lua_State *L, db *d, int rc)
{
  return push_fail(L, sqlite3_errmsg(d->db), rc);
}

/* ---- opening -------------------------------------------------------------------- */

/* The file is made 0600 (its directory 0700) before sqlite sees it:
 * sqlite would create it 0644 minus the umask, and gives the -wal and
 * -shm files the database file's mode. */
static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  static const char *const modes[] = {"r", "rw", "create", NULL};
  int mode = luaL_checkoption(L, 2, "r", modes), rc, flags;
  char err[PATH_MAX + 128];
  db *d;
  if (mode < 2 && !llm_file_exists(path))
    return llm_fail(L, "sqlite", "missing", "no such file: %s", path);
  if (mode == 2 && llm_create_private(path, err, sizeof err) != 0)
    return push_fail(L, err, SQLITE_CANTOPEN);
  d = llm_new_object(L, sizeof *d, DB_MT);
  flags = (mode == 0 ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX |
          SQLITE_OPEN_NOFOLLOW;
  rc = sqlite3_open_v2(path, &d->db, flags, NULL);
  if (rc != SQLITE_OK) {
    int n = push_fail(L, d->db ? sqlite3_errmsg(d->db) : "out of memory", rc);
    sqlite3_close(d->db);
    d->db = NULL;
    return n;
  }
  d->path = strdup(path);
  sqlite3_extended_result_codes(d->db, 1);
  sqlite3_busy_timeout(d->db, BUSY_MS);
  if (mode > 0) {
    /* reading the header first tells a file that is not a database
     * ("notadb") from one we cannot switch to WAL */
    rc = sqlite3_exec(d->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      rc = llm_sqlite_use_wal(d->db, BUSY_MS);
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(d->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      int n = fail_db(L, d, rc);
      sqlite3_close(d->db);
      d->db = NULL;
      return n;
    }
  }
  return 1;
}

/* ---- statements ------------------------------------------------------------------- */

static sqlite3_stmt *prepared(db *d, const char *sql, int *rc)
{
  cached_stmt *c;
  sqlite3_stmt *stmt;
  for (int i = 0; i < d->nstmts; i++)
    if (strcmp(d->stmts[i].sql, sql) == 0) {
      sqlite3_reset(d->stmts[i].stmt);
      sqlite3_clear_bindings(d->stmts[i].stmt);
      *rc = SQLITE_OK;
      return d->stmts[i].stmt;
    }
  *rc = sqlite3_prepare_v2(d->db, sql, -1, &stmt, NULL);
  if (*rc != SQLITE_OK)
    return NULL;
  {
    char *copy = strdup(sql);
    if (!copy) {
      sqlite3_finalize(stmt);
      *rc = SQLITE_NOMEM;
      return NULL;
    }
    if (d->nstmts < STMT_CACHE) {
      c = &d->stmts[d->nstmts++];
    } else { /* full: replace entries in turn */
      c = &d->stmts[d->next_evict];
      d->next_evict = (d->next_evict + 1) % STMT_CACHE;
      sqlite3_finalize(c->stmt);
      free(c->sql);
    }
    c->sql = copy;
    c->stmt = stmt;
  }
  return stmt;
}

/* Binds arguments first..top to stmt's parameters. */
static void bind_args(lua_State *L, sqlite3_stmt *stmt, int first)
{
  int top = lua_gettop(L), n = sqlite3_bind_parameter_count(stmt);
  if (top - first + 1 != n)
    luaL_error(L, "sqlite: the statement has %d parameters, %d values given", n, top - first + 1);
  for (int i = first; i <= top; i++) {
    int p = i - first + 1;
    size_t len;
    const char *s;
    switch (lua_type(L, i)) {
    case LUA_TNIL: sqlite3_bind_null(stmt, p); break;
    case LUA_TBOOLEAN: sqlite3_bind_int(stmt, p, lua_toboolean(L, i)); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, i))
        sqlite3_bind_int64(stmt, p, (sqlite3_int64)lua_tointeger(L, i));
      else
        sqlite3_bind_double(stmt, p, lua_tonumber(L, i));
      break;
    case LUA_TSTRING:
      s = lua_tolstring(L, i, &len);
      sqlite3_bind_text64(stmt, p, s, len, SQLITE_STATIC, SQLITE_UTF8);
      break;
    default:
      if (luaL_testudata(L, i, BLOB_MT)) {
        lua_getiuservalue(L, i, 1);
        s = lua_tolstring(L, -1, &len);
        lua_pop(L, 1); /* the userdata keeps the string alive */
        sqlite3_bind_blob64(stmt, p, s, len, SQLITE_STATIC);
      } else {
        luaL_argerror(L, i, "nil, boolean, number, string or sqlite.blob expected");
      }
    }
  }
}

static void push_column(lua_State *L, sqlite3_stmt *stmt, int c)
{
  switch (sqlite3_column_type(stmt, c)) {
  case SQLITE_INTEGER: lua_pushinteger(L, (lua_Integer)sqlite3_column_int64(stmt, c)); break;
  case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(stmt, c)); break;
  case SQLITE_TEXT:
    lua_pushlstring(L, (const char *)sqlite3_column_text(stmt, c), (size_t)sqlite3_column_bytes(stmt, c));
    break;
  case SQLITE_BLOB: {
    const void *p = sqlite3_column_blob(stmt, c);
    lua_pushlstring(L, p ? p : "", (size_t)sqlite3_column_bytes(stmt, c));
    break;
  }
  default: lua_pushnil(L);
  }
}

static int d_exec(lua_State *L)
{
  db *d = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  int rc;
  sqlite3_stmt *stmt = prepared(d, sql, &rc);
  if (!stmt)
    return fail_db(L, d, rc);
  bind_args(L, stmt, 3);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE)
    return fail_db(L, d, rc);
  lua_pushinteger(L, sqlite3_changes(d->db));
  lua_pushinteger(L, (lua_Integer)sqlite3_last_insert_rowid(d->db));
  return 2;
}

static int d_query(lua_State *L)
{
  db *d = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  int rc, ncol, res;
  lua_Integer nrows = 0;
  sqlite3_stmt *stmt = prepared(d, sql, &rc);
  if (!stmt)
    return fail_db(L, d, rc);
  bind_args(L, stmt, 3);
  ncol = sqlite3_column_count(stmt);
  lua_newtable(L);
  res = lua_gettop(L);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (int c = 0; c < ncol; c++) {
      push_column(L, stmt, c);
      lua_setfield(L, -2, sqlite3_column_name(stmt, c));
    }
    lua_rawseti(L, res, ++nrows);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (rc != SQLITE_DONE)
    return fail_db(L, d, rc);
  return 1;
}

static int d_script(lua_State *L)
{
  db *d = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return fail_db(L, d, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int d_path(lua_State *L)
{
  lua_pushstring(L, check_db(L)->path);
  return 1;
}

static int d_close(lua_State *L)
{
  db *d = luaL_checkudata(L, 1, DB_MT);
  for (int i = 0; i < d->nstmts; i++) {
    sqlite3_finalize(d->stmts[i].stmt);
    free(d->stmts[i].sql);
  }
  d->nstmts = 0;
  if (d->db) {
    sqlite3_close(d->db);
    d->db = NULL;
  }
  free(d->path);
  d->path = NULL;
  return 0;
}

static int d_tostring(lua_State *L)
{
  db *d = luaL_checkudata(L, 1, DB_MT);
  lua_pushfstring(L, "sqlite database (%s)", d->db ? d->path : "closed");
  return 1;
}

static int l_blob(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, BLOB_MT);
  return 1;
}

static const luaL_Reg db_methods[] = {
  {"exec", d_exec},
  {"query", d_query},
  {"script", d_script},
  {"path", d_path},
  {"close", d_close},
  {NULL, NULL}
};

static const luaL_Reg db_metamethods[] = {
  {"__gc", d_close},
  {"__close", d_close},
  {"__tostring", d_tostring},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"open", l_open},
  {"blob", l_blob},
  {NULL, NULL}
};

int luaopen__llm_sqlite(lua_State *L)
{
  llm_class_register(L, DB_MT, db_metamethods, db_methods, NULL);
  llm_class_register(L, BLOB_MT, NULL, NULL, NULL);
  luaL_newlib(L, funcs);
  return 1;
}
