/* The llmrun host: one Lua state with llmrun's modules, an event loop and
 * a task scheduler, plus the rules for running top-level chunks (script,
 * -e code, REPL lines) as tasks and reporting their errors. */
#ifndef LLMRUN_HOST_H
#define LLMRUN_HOST_H

#include <lua.h>

#include "task.h"

/* Exit statuses, as clig.dev and the shells expect them. */
enum { LLM_EXIT_OK = 0, LLM_EXIT_FAIL = 1, LLM_EXIT_USAGE = 2, LLM_EXIT_SIGINT = 130 };

typedef struct llm_host llm_host;

/* NULL with a message on stderr when the host cannot start. */
llm_host *llm_host_new(void);
/* Cancels what still runs (with a warning when warn_running), runs the
 * exit hooks, closes the state (reporting uncaught task errors) and
 * returns the exit status adjusted for those errors. */
int llm_host_close(llm_host *h, int status, int warn_running);

lua_State *llm_host_state(llm_host *h);
llm_sched *llm_host_sched(llm_host *h);
const char *llm_host_lualib(const llm_host *h);

/* Runs the function on top of the stack, below its nargs arguments, as a
 * task until it finishes. Errors print as "llmrun: msg" plus traceback.
 * Returns LLM_EXIT_OK, LLM_EXIT_FAIL, or 128 + the signal that
 * interrupted it (130 for SIGINT, 143 SIGTERM, 129 SIGHUP). */
int llm_host_run_main(llm_host *h, int nargs);

/* The smallest memory limit: below it nothing would run. */
#define LLM_MIN_MEMORY_LIMIT ((size_t)1 << 20)

/* Limits the Lua state's memory (the script's data; not curl's, sqlite's
 * or the simulator's buffers) to bytes, 0 for none. A growth past it
 * fails with Lua's memory error, reported as "memory limit exceeded".
 * -1 when bytes is under LLM_MIN_MEMORY_LIMIT. */
int llm_host_set_memory_limit(llm_host *h, size_t bytes);
/* "512M", "2G", "1.5g", "100000000", "64MiB" (K, M, G, T are powers of
 * 1024) -> bytes; -1 when it is not a size. */
int llm_parse_size(const char *text, size_t *out);

/* Prints a task's error value and traceback to stderr. */
void llm_host_report_error(lua_State *L, int err_idx, const char *traceback);

/* SIGINT, SIGTERM and SIGHUP go to the scheduler (llm_sched_interrupt):
 * the first cancels the running work; a second before
 * llm_host_signal_done exits at once with 128 + its number. */
void llm_host_catch_signals(llm_host *h);
/* The signal being handled, or 0. */
int llm_host_signal(const llm_host *h);
/* The interrupted work is dealt with (the REPL is back at its prompt). */
void llm_host_signal_done(llm_host *h);
/* 128 + the signal being handled (130 when none). */
int llm_host_interrupted_status(const llm_host *h);

#endif
