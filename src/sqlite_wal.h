/* Switching a sqlite file to WAL when other processes may be opening it too. */
#ifndef LLMRUN_SQLITE_WAL_H
#define LLMRUN_SQLITE_WAL_H

#include <sqlite3.h>

/* PRAGMA journal_mode=WAL, retried on SQLITE_BUSY for up to timeout_ms.
 * Two connections switching a new file at once can each hold a read lock
 * while wanting the write lock; sqlite then returns SQLITE_BUSY at once
 * instead of calling the busy handler (waiting could deadlock), so the
 * busy timeout alone does not cover this. Returns the sqlite result code. */
int llm_sqlite_use_wal(sqlite3 *db, int timeout_ms);

#endif
