/* The REPL, in the shape of lua.c's: a line is first tried as an
 * expression ("return " .. line), then as a statement, and a statement
 * whose syntax error ends at <eof> asks for more lines. Each complete
 * statement runs as a task; Ctrl-C cancels it and returns to the prompt.
 *
 * On a terminal, readline's callback interface lets the event loop keep
 * running (background tasks, transfers) while the prompt waits; readline
 * gives line editing and a history kept in $XDG_STATE_HOME/llmrun/history.
 * On a pipe, lines are read with read(2) and no prompt is printed.
 *
 * A subcommand can borrow all of this (llmrun chat does): it leaves a
 * session table in require("llm.cli").session = {handle = fn(line) ->
 * false to leave, prompt =, history = file name, interrupted = message},
 * and each input line then runs handle(line) as a task instead of Lua,
 * with the same editing, history (its own file) and Ctrl-C (cancels the
 * running line, not the session). */
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "buf.h"
#include "fsutil.h"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define HISTORY_LINES 1000

typedef struct repl {
  llm_host *h;
  lua_State *L;
  int tty;
  int quit;
  int status;             /* the exit status once quit */
  int print_ref;          /* llm.inspect.repl_print */
  llm_buf pending;        /* the statement read so far */
  char history[PATH_MAX]; /* empty: no history file */
  char *rl_line;          /* handed over by the readline callback */
  int rl_got;
  char inbuf[65536];      /* pipe mode: bytes read but not yet consumed */
  size_t inlen;
  int handler_ref;        /* a session's handle(line), or LUA_NOREF: Lua lines */
  const char *prompt1;    /* PROMPT1, or the session's prompt */
  const char *history_name;
  const char *interrupted; /* what Ctrl-C during a line prints */
} repl;

/* readline's line callback takes no user data. */
static repl *rl_owner;

/* ---- the statement buffer ------------------------------------------------ */

static int append(repl *r, const char *s, size_t n)
{
  llm_buf_put(&r->pending, s, n);
  return r->pending.failed ? -1 : 0;
}

static int incomplete(lua_State *L, int status)
{
  static const char mark[] = "<eof>";
  size_t lmsg, lmark = sizeof mark - 1;
  const char *msg;
  if (status != LUA_ERRSYNTAX)
    return 0;
  msg = lua_tolstring(L, -1, &lmsg);
  return lmsg >= lmark && strcmp(msg + lmsg - lmark, mark) == 0;
}

/* ---- running a statement ------------------------------------------------------ */

/* An interrupt was dealt with. Ctrl-C (SIGINT) only cancels: the REPL
 * goes on and a later Ctrl-C is a first one again. SIGTERM and SIGHUP
 * (the terminal went away) end the REPL as they end a script. */
static void interrupt_handled(repl *r)
{
  int sig = llm_host_signal(r->h);
  if (sig == SIGTERM || sig == SIGHUP) {
    r->quit = 1;
    r->status = llm_host_interrupted_status(r->h);
    return;
  }
  llm_host_signal_done(r->h);
}

static void print_results(repl *r, int n)
{
  lua_State *L = r->L;
  if (n <= 0)
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->print_ref);
  lua_insert(L, -(n + 1));
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    fprintf(stderr, "llmrun: error printing the result: %s\n",
            luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
  }
}

/* Runs the function below its nargs arguments on top of the stack as the
 * line's task: a compiled statement (results printed), or a session's
 * handler (a first result of false ends the session). */
static void run_task(repl *r, int nargs)
{
  lua_State *L = r->L;
  llm_sched *s = llm_host_sched(r->h);
  llm_task *t = llm_task_spawn(s, L, nargs);
  int res, n;
  if (!t) {
    fputs("llmrun: out of memory\n", stderr);
    return;
  }
  llm_task_observe(t);
  res = llm_sched_run(s, t, -1);
  if (res == LLM_RUN_INTERRUPTED || (res == LLM_RUN_DONE && llm_sched_take_interrupt(s))) {
    if (!llm_task_finished(t))
      llm_task_cancel(s, t);
    fprintf(stderr, "\n%s\n", r->interrupted);
    interrupt_handled(r);
    if (llm_task_status(t) == LLM_TASK_FAILED) { /* failed meanwhile */
      lua_pop(L, 1);
      return;
    }
  } else if (res == LLM_RUN_STUCK) {
    fputs("llmrun: this line waits for tasks that can never finish; cancelled\n", stderr);
    llm_task_cancel(s, t);
  } else if (res == LLM_RUN_ERROR) {
    fputs("llmrun: the event loop failed\n", stderr);
  }
  if (llm_sched_exit_code(s) >= 0) { /* llm.exit: leave the REPL */
    r->quit = 1;
    r->status = llm_sched_exit_code(s);
    lua_pop(L, 1);
    return;
  }
  if (r->quit) { /* SIGTERM or SIGHUP */
    lua_pop(L, 1);
    return;
  }
  if (llm_task_finished(t)) {
    n = llm_task_push_outcome(L, -1);
    if (lua_toboolean(L, -n) && r->handler_ref != LUA_NOREF) {
      if (n > 1 && lua_isboolean(L, -n + 1) && !lua_toboolean(L, -n + 1))
        r->quit = 1; /* handle(line) returned false: leave */
      lua_pop(L, n);
    } else if (lua_toboolean(L, -n)) {
      lua_remove(L, -n);
      print_results(r, n - 1);
    } else if (llm_task_status(t) == LLM_TASK_FAILED) {
      llm_host_report_error(L, -2, lua_tostring(L, -1));
      lua_pop(L, n);
    } else {
      lua_pop(L, n);
    }
  }
  lua_pop(L, 1);
  fflush(stdout);
  /* collect now, so a background task that failed unobserved is reported
   * at the prompt where its line ran, not at some later collection */
  lua_gc(L, LUA_GCCOLLECT);
}

static void run_statement(repl *r) { run_task(r, 0); }

static void remember(repl *r, const char *stmt)
{
  if (!r->tty)
    return;
  add_history(stmt);
  if (r->history[0])
    append_history(1, r->history);
}

/* Feeds one input line; returns the prompt to show next. */
static const char *feed(repl *r, const char *line)
{
  lua_State *L = r->L;
  int st;
  if (r->handler_ref != LUA_NOREF) { /* a session: the line goes to its handler */
    if (line[0])
      remember(r, line);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->handler_ref);
    lua_pushstring(L, line);
    run_task(r, 1);
    return r->prompt1;
  }
  if (r->pending.len == 0) {
    /* lua.c's addreturn: try the line as an expression first */
    const char *expr = line[0] == '=' ? line + 1 : line;
    lua_pushfstring(L, "return %s;", expr);
    st = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    lua_remove(L, -2);
    if (st == LUA_OK) {
      remember(r, line);
      run_statement(r);
      return r->prompt1;
    }
    lua_pop(L, 1);
  } else if (append(r, "\n", 1) != 0) {
    fputs("llmrun: out of memory\n", stderr);
    llm_buf_reset(&r->pending);
    return r->prompt1;
  }
  if (append(r, line, strlen(line)) != 0) {
    fputs("llmrun: out of memory\n", stderr);
    llm_buf_reset(&r->pending);
    return r->prompt1;
  }
  st = luaL_loadbuffer(L, r->pending.data, r->pending.len, "=stdin");
  if (incomplete(L, st)) {
    lua_pop(L, 1);
    return PROMPT2;
  }
  remember(r, r->pending.data);
  llm_buf_reset(&r->pending);
  if (st != LUA_OK) {
    fprintf(stderr, "llmrun: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    run_statement(r);
  }
  return r->prompt1;
}

/* ---- terminal: readline in callback mode ----------------------------------------- */

static void on_rl_line(char *line)
{
  repl *r = rl_owner;
  /* remove the handler now, or readline prints the next prompt before the
   * line has even run */
  rl_callback_handler_remove();
  r->rl_line = line;
  r->rl_got = 1;
}

static void open_history(repl *r)
{
  char dir[PATH_MAX];
  int fd;
  r->history[0] = '\0';
  if (llm_xdg_dir("state", 1, dir, sizeof dir) != 0)
    return;
  if (snprintf(r->history, sizeof r->history, "%s/%s", dir, r->history_name) >=
      (int)sizeof r->history) {
    r->history[0] = '\0';
    return;
  }
  /* create it private (0600) before readline appends to it */
  fd = open(r->history, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    r->history[0] = '\0';
    return;
  }
  close(fd);
  read_history(r->history);
}

static void run_tty(repl *r)
{
  llm_sched *s = llm_host_sched(r->h);
  const char *prompt = r->prompt1;
  rl_owner = r;
  rl_readline_name = "llmrun";
  rl_catch_signals = 0; /* SIGINT belongs to the scheduler */
  using_history();
  open_history(r);
  rl_callback_handler_install(prompt, on_rl_line);
  while (!r->quit) {
    int res = llm_sched_run(s, NULL, STDIN_FILENO);
    if (res == LLM_RUN_EXIT)
      break;
    if (res == LLM_RUN_INTERRUPTED) {
      interrupt_handled(r);
      if (r->quit)
        break;
      /* Ctrl-C at the prompt: drop the partial input */
      llm_buf_reset(&r->pending);
      prompt = r->prompt1;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 0);
      rl_crlf();
      rl_callback_handler_install(prompt, on_rl_line);
      continue;
    }
    if (res == LLM_RUN_ERROR)
      break;
    rl_callback_read_char();
    if (!r->rl_got)
      continue;
    r->rl_got = 0;
    if (!r->rl_line) { /* Ctrl-D */
      fputc('\n', stdout);
      break;
    }
    prompt = feed(r, r->rl_line);
    free(r->rl_line);
    r->rl_line = NULL;
    rl_callback_handler_install(prompt, on_rl_line);
  }
  rl_callback_handler_remove();
  if (r->history[0])
    history_truncate_file(r->history, HISTORY_LINES);
}

/* ---- pipe: plain lines --------------------------------------------------------------- */

/* Returns 1 with a line (NUL-terminated, newline removed) in *line, 0 at
 * EOF. Waits through the loop, so background tasks keep running. */
static int read_line(repl *r, char **line, size_t *used)
{
  llm_sched *s = llm_host_sched(r->h);
  for (;;) {
    char *nl = memchr(r->inbuf, '\n', r->inlen);
    ssize_t n;
    if (nl || r->inlen == sizeof r->inbuf - 1) {
      size_t len = nl ? (size_t)(nl - r->inbuf) : r->inlen;
      r->inbuf[len] = '\0';
      *line = r->inbuf;
      *used = nl ? len + 1 : len;
      return 1;
    }
    int res = llm_sched_run(s, NULL, STDIN_FILENO);
    if (res == LLM_RUN_EXIT)
      return 0;
    if (res == LLM_RUN_INTERRUPTED) {
      interrupt_handled(r);
      if (r->quit)
        return 0;
      llm_buf_reset(&r->pending);
      continue;
    }
    n = read(STDIN_FILENO, r->inbuf + r->inlen, sizeof r->inbuf - 1 - r->inlen);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (r->inlen == 0)
        return 0;
      r->inbuf[r->inlen] = '\0'; /* last line without a newline */
      *line = r->inbuf;
      *used = r->inlen;
      return 1;
    }
    r->inlen += (size_t)n;
  }
}

static void run_pipe(repl *r)
{
  char *line;
  size_t used;
  while (!r->quit && read_line(r, &line, &used)) {
    char *copy = strdup(line);
    memmove(r->inbuf, r->inbuf + used, r->inlen - used);
    r->inlen -= used;
    if (!copy)
      break;
    feed(r, copy);
    free(copy);
    fflush(stdout);
  }
}

static void repl_init(repl *r, llm_host *h)
{
  memset(r, 0, sizeof *r);
  r->h = h;
  r->L = llm_host_state(h);
  r->tty = isatty(STDIN_FILENO);
  r->print_ref = LUA_NOREF;
  r->handler_ref = LUA_NOREF;
  r->prompt1 = PROMPT1;
  r->history_name = "history";
  r->interrupted = "interrupted";
}

static int repl_finish(repl *r)
{
  llm_sched *s = llm_host_sched(r->h);
  luaL_unref(r->L, LUA_REGISTRYINDEX, r->print_ref);
  luaL_unref(r->L, LUA_REGISTRYINDEX, r->handler_ref);
  llm_buf_free(&r->pending);
  if (r->quit && r->status) /* SIGTERM, SIGHUP: 128 + the signal */
    return r->status;
  return llm_sched_exit_code(s) >= 0 ? llm_sched_exit_code(s) : LLM_EXIT_OK;
}

int llm_repl_run(llm_host *h)
{
  repl r;
  lua_State *L = llm_host_state(h);
  repl_init(&r, h);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "llm.inspect");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "llmrun: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LLM_EXIT_FAIL;
  }
  lua_getfield(L, -1, "repl_print");
  r.print_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  if (r.tty) {
    printf("llmrun %s (%s) - Ctrl-D to exit, Ctrl-C to cancel a running line\n",
           LLMRUN_VERSION, LUA_RELEASE);
    run_tty(&r);
  } else {
    run_pipe(&r);
  }
  return repl_finish(&r);
}

/* A string field of the table on top of the stack, copied into buf
 * (dflt when absent or too long). */
static const char *string_field(lua_State *L, const char *name, char *buf, size_t size,
                                const char *dflt)
{
  const char *v;
  lua_getfield(L, -1, name);
  v = lua_tostring(L, -1);
  if (v && strlen(v) < size) {
    memcpy(buf, v, strlen(v) + 1);
    dflt = buf;
  }
  lua_pop(L, 1);
  return dflt;
}

int llm_repl_run_session(llm_host *h, int status)
{
  repl r;
  lua_State *L = llm_host_state(h);
  char prompt[64], history[64], interrupted[160];
  if (status != LLM_EXIT_OK || llm_sched_exit_code(llm_host_sched(h)) >= 0)
    return status;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "llm.cli");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 3);
    return status;
  }
  lua_getfield(L, -1, "session");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 4);
    return status;
  }
  repl_init(&r, h);
  lua_getfield(L, -1, "handle");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 5);
    fputs("llmrun: the command's session has no handle function\n", stderr);
    return LLM_EXIT_FAIL;
  }
  r.handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r.prompt1 = string_field(L, "prompt", prompt, sizeof prompt, PROMPT1);
  r.interrupted = string_field(L, "interrupted", interrupted, sizeof interrupted, "interrupted");
  r.history_name = string_field(L, "history", history, sizeof history, "history");
  if (strpbrk(r.history_name, "/\\") || r.history_name[0] == '.')
    r.history_name = "history"; /* a file name in the state directory, nothing else */
  lua_pop(L, 4);
  if (r.tty)
    run_tty(&r);
  else
    run_pipe(&r);
  return repl_finish(&r);
}
