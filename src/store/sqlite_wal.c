/* WAL files: the switch to WAL with retries, and reading one from
 * read-only storage. See sqlite_wal.h. */
#include "sqlite_wal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int llm_sqlite_use_wal(sqlite3 *db, int timeout_ms)
{
  /* the pid staggers the retries of two processes that collided */
  long step_us = 500 + (long)(getpid() % 7) * 250;
  long waited_us = 0;
  for (;;) {
    int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if ((rc & 0xff) != SQLITE_BUSY || waited_us >= (long)timeout_ms * 1000)
      return rc;
    struct timespec ts = {0, step_us * 1000};
    nanosleep(&ts, NULL);
    waited_us += step_us;
    if (step_us < 20000)
      step_us *= 2;
  }
}

int llm_sqlite_is_readonly_failure(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_CANTOPEN:  /* the -shm or -wal file cannot be created */
  case SQLITE_READONLY:  /* SQLITE_READONLY_CANTINIT and friends */
  case SQLITE_IOERR:     /* SQLITE_IOERR_SHMOPEN / _SHMSIZE */
  case SQLITE_PERM:
    return 1;
  default:
    return 0;
  }
}

/* file:PATH?immutable=1 with PATH percent-encoded where a URI needs it */
static int immutable_uri(const char *path, char *out, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t j = 0;
  const char *tail = "?immutable=1";
  if (n < 6)
    return -1;
  memcpy(out, "file:", 5);
  j = 5;
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#' || *p < 0x21 || *p >= 0x7f) {
      if (j + 3 >= n)
        return -1;
      out[j++] = '%';
      out[j++] = hex[*p >> 4];
      out[j++] = hex[*p & 15];
    } else {
      if (j + 1 >= n)
        return -1;
      out[j++] = (char)*p;
    }
  }
  if (j + strlen(tail) + 1 > n)
    return -1;
  strcpy(out + j, tail);
  return 0;
}

static int probe(sqlite3 *db)
{
  return sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
}

int llm_sqlite_open_readonly(const char *path, int flags, int busy_ms, sqlite3 **db,
                             int *immutable)
{
  char uri[4200];
  int rc;
  *immutable = 0;
  rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | flags, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_busy_timeout(*db, busy_ms);
  rc = probe(*db);
  if (rc == SQLITE_OK || !llm_sqlite_is_readonly_failure(sqlite3_extended_errcode(*db)))
    return rc;
  if (immutable_uri(path, uri, sizeof uri) != 0)
    return rc;
  sqlite3_close(*db);
  *db = NULL;
  rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | flags, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = probe(*db);
  if (rc == SQLITE_OK)
    *immutable = 1;
  return rc;
}

int llm_sqlite_open(const char *path, int flags, int busy_ms, int readonly, sqlite3 **db,
                    int *opened_readonly, char *why, size_t whylen)
{
  int rc, immutable;
  *opened_readonly = 0;
  if (why && whylen)
    why[0] = '\0';
  if (!readonly) {
    rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | flags, NULL);
    if (rc != SQLITE_OK)
      return rc;
    sqlite3_busy_timeout(*db, busy_ms);
    rc = probe(*db);
    if (rc == SQLITE_OK || !llm_sqlite_is_readonly_failure(sqlite3_extended_errcode(*db)))
      return SQLITE_OK;
    if (why && whylen)
      llm_sqlite_describe_failure(*db, sqlite3_extended_errcode(*db), path, why, whylen);
    sqlite3_close(*db);
    *db = NULL;
  }
  *opened_readonly = 1;
  return llm_sqlite_open_readonly(path, flags, busy_ms, db, &immutable);
}

void llm_sqlite_describe_failure(sqlite3 *db, int rc, const char *path, char *out, size_t n)
{
  char dir[4096];
  const char *slash = strrchr(path, '/');
  const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY ||
      (rc & 0xff) == SQLITE_PERM || (rc & 0xff) == SQLITE_IOERR) {
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (slash == path)
      len = 1;
    if (len == 0) {
      dir[0] = '.';
      dir[1] = '\0';
    } else if (len < sizeof dir) {
      memcpy(dir, path, len);
      dir[len] = '\0';
    } else {
      dir[0] = '\0';
    }
    if (access(path, R_OK) != 0) {
      snprintf(out, n, "cannot read %s: %s", path, strerror(errno));
      return;
    }
    if (access(path, W_OK) != 0) {
      snprintf(out, n, "%s cannot be written (%s) and could not be read either: %s",
               path, strerror(errno), msg);
      return;
    }
    if (dir[0] && access(dir, W_OK) != 0) {
      snprintf(out, n, "cannot create files in %s beside %s (%s), as sqlite needs for "
               "its -wal and -shm files: %s", dir, path, strerror(errno), msg);
      return;
    }
  }
  snprintf(out, n, "%s: %s", path, msg);
}

int llm_sqlite_migrate_step(sqlite3 *db, const char *sql, int version, const char *what,
                            char *err, size_t n)
{
  char *msg = NULL, pragma[48];
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK) {
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
    rc = sqlite3_exec(db, pragma, NULL, NULL, &msg);
  }
  if (rc == SQLITE_OK)
    return 0;
  snprintf(err, n, "%s migration %d failed: %s", what, version, msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}
