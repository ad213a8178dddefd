/* The REPL: lua.c's read-eval-print loop, where each line runs as a task
 * so it can wait on the loop (llm.sleep, model calls), and the loop keeps
 * running background tasks while the prompt waits for input. */
#ifndef LLMRUN_REPL_H
#define LLMRUN_REPL_H

#include "host.h"

/* Returns an exit status when the user leaves (Ctrl-D, os.exit aside). */
int llm_repl_run(llm_host *h);

/* After a subcommand that ended with status: when it left a session in
 * require("llm.cli").session ({handle = fn(line), prompt =, history =,
 * interrupted =}), reads lines as the REPL does (editing, history in its
 * own file, Ctrl-C cancels the running line) and runs handle(line) as a
 * task for each, until Ctrl-D or handle returns false. Returns status
 * otherwise. */
int llm_repl_run_session(llm_host *h, int status);

#endif
