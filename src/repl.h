/* The REPL: lua.c's read-eval-print loop, where each line runs as a task
 * so it can wait on the loop (llm.sleep, model calls), and the loop keeps
 * running background tasks while the prompt waits for input. */
#ifndef LLMRUN_REPL_H
#define LLMRUN_REPL_H

#include "host.h"

/* Returns an exit status when the user leaves (Ctrl-D, os.exit aside). */
int llm_repl_run(llm_host *h);

#endif
