#include "sqlite_wal.h"

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
