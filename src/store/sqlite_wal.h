/* WAL files and how to open them: switching a file to WAL when other
 * processes may be opening it too, and reading one where sqlite cannot
 * create the -shm file WAL needs (a read-only directory or file system). */
#ifndef LLMRUN_SQLITE_WAL_H
#define LLMRUN_SQLITE_WAL_H

#include <sqlite3.h>
#include <stddef.h>

/* PRAGMA journal_mode=WAL, retried on SQLITE_BUSY for up to timeout_ms.
 * Two connections switching a new file at once can each hold a read lock
 * while wanting the write lock; sqlite then returns SQLITE_BUSY at once
 * instead of calling the busy handler (waiting could deadlock), so the
 * busy timeout alone does not cover this. Returns the sqlite result code. */
int llm_sqlite_use_wal(sqlite3 *db, int timeout_ms);

/* Opens path for reading only (flags: extra SQLITE_OPEN_* bits), and
 * makes sure it can be read: a WAL file in a directory where the -shm
 * file cannot be created (and does not exist, as after a clean close)
 * fails on its first read with "unable to open database file"; it is then
 * opened again as immutable (file:PATH?immutable=1), which reads the file
 * as it is, without locks, so a writer elsewhere is not seen. *immutable
 * tells which happened. Returns the sqlite result code; *db is set even on
 * failure (sqlite3_close it). */
int llm_sqlite_open_readonly(const char *path, int flags, int busy_ms, sqlite3 **db,
                             int *immutable);

/* Opens path read-write unless readonly is set or it turns out it cannot
 * be (a writable file in a directory where the -wal / -shm files cannot be
 * created fails on its first read); then read-only as
 * llm_sqlite_open_readonly does. *opened_readonly tells which, and why
 * says what made a read-write open impossible ("" when readonly was
 * asked). A file that is not a database opens fine here: its first real
 * read says so. Returns the sqlite result code; *db is set even on
 * failure (sqlite3_close it). */
int llm_sqlite_open(const char *path, int flags, int busy_ms, int readonly, sqlite3 **db,
                    int *opened_readonly, char *why, size_t whylen);

/* Is rc the failure of a first read that read-only storage explains
 * (sqlite could not open or create the -wal / -shm files, or write)? */
int llm_sqlite_is_readonly_failure(int rc);

/* A message for a failed open or first read of path that names the real
 * cause: sqlite's "unable to open database file" comes with the errno of
 * whatever file it tried last (often a "No such file or directory" for
 * the -wal file), so the file and its directory are checked here. */
void llm_sqlite_describe_failure(sqlite3 *db, int rc, const char *path, char *out, size_t n);

/* One schema migration inside the caller's open write transaction: runs
 * sql, then sets user_version to version. On failure writes "<what>
 * migration <version> failed: <sqlite's message>" to err, rolls back and
 * returns -1; 0 otherwise. */
int llm_sqlite_migrate_step(sqlite3 *db, const char *sql, int version, const char *what,
                            char *err, size_t n);

#endif
