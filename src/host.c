/* The llmrun host: the Lua state, its module search path, the loop and
 * scheduler, and how top-level chunks run as tasks. */
#include "host.h"

#include <lauxlib.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lualib.h>

#include "curl_lazy.h"
#include "fsutil.h"
#include "http.h"
#include "lmod_protect.h"
#include "lmod_util.h"
#include "modules.h"
#include "pool_alloc.h"

/* Lua's memory, counted by limited_alloc: the limit of --max-memory. */
typedef struct memory {
  lua_Alloc alloc; /* Lua's own allocator, which does the work */
  void *alloc_ud;
  size_t used, limit; /* limit 0: none */
  int hit;            /* an allocation was refused; cleared below the limit */
  int retrying;       /* the next growth is Lua's retry after its full collection */
  unsigned long refused; /* allocations refused so far */
} memory;

struct llm_host {
  lua_State *L;
  llm_loop *loop;
  llm_sched *sched;
  memory mem;
  llm_pool *pool; /* the state's small blocks (pool_alloc.h) */
  char lualib[PATH_MAX];
};

static const char HOST_KEY = 'h';

/* The signal handler's only way to the scheduler; never used from Lua. */
static llm_sched *volatile signal_target;
/* The signal being handled (SIGINT, SIGTERM, SIGHUP), until the host is
 * done with it (llm_host_signal_done): a second one meanwhile exits. */
static volatile sig_atomic_t pending_signal;
static struct timespec pending_since; /* monotonic */
static pthread_t main_thread;

lua_State *llm_host_state(llm_host *h) { return h->L; }
llm_sched *llm_host_sched(llm_host *h) { return h->sched; }
const char *llm_host_lualib(const llm_host *h) { return h->lualib; }

/* ---- finding lualib/ -------------------------------------------- */

/* An installed binary finds its files relative to itself, so a moved
 * prefix still works; a binary in the build tree uses the source tree. */
static int find_dir(char *out, size_t n, const char *env, const char *rel,
                    const char *src_sub, const char *probe)
{
  char exe[PATH_MAX], cand[PATH_MAX];
  const char *v = getenv(env);
  ssize_t len;
  int w;
  if (v && v[0]) {
    w = snprintf(out, n, "%s", v);
    return w > 0 && (size_t)w < n ? 0 : -1;
  }
  len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    char *slash;
    exe[len] = '\0';
    if ((slash = strrchr(exe, '/')) != NULL) {
      *slash = '\0'; /* <prefix>/bin */
      if ((slash = strrchr(exe, '/')) != NULL) {
        *slash = '\0'; /* <prefix> */
        w = snprintf(cand, sizeof cand, "%s/%s%s", exe, rel, probe);
        if (w > 0 && (size_t)w < sizeof cand && access(cand, R_OK) == 0) {
          w = snprintf(out, n, "%s/%s", exe, rel);
          return w > 0 && (size_t)w < n ? 0 : -1;
        }
      }
    }
  }
  w = snprintf(out, n, "%s/%s", LLMRUN_SOURCE_DIR, src_sub);
  if (w < 0 || (size_t)w >= n)
    return -1;
  w = snprintf(cand, sizeof cand, "%s%s", out, probe);
  return w > 0 && (size_t)w < sizeof cand && access(cand, R_OK) == 0 ? 0 : -1;
}

/* ---- the Lua side of the host: _llm.host --------------------------------------
 * isatty(name), xdg_dir(kind, create) -> path | nil, err, mkdir_p(path) ->
 * true | nil, err; failures are llm.error tables of kind "io". */

static llm_host *host_of(lua_State *L)
{
  llm_host *h;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &HOST_KEY);
  h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

static int h_isatty(lua_State *L)
{
  static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
  int fd = luaL_checkoption(L, 1, NULL, names);
  lua_pushboolean(L, isatty(fd));
  return 1;
}

static int h_xdg_dir(lua_State *L)
{
  static const char *const kinds[] = {"cache", "data", "state", "config", NULL};
  char path[PATH_MAX];
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  int create = lua_toboolean(L, 2);
  if (llm_xdg_dir(kinds[kind], create, path, sizeof path) != 0)
    return llm_fail(L, "io", NULL, "cannot use the %s directory %s", kinds[kind], path);
  lua_pushstring(L, path);
  return 1;
}

/* The working directory (runs record it, so `llmrun report` can pick the
 * latest run of the directory it is called in). */
static int h_cwd(lua_State *L)
{
  char path[PATH_MAX];
  if (!getcwd(path, sizeof path))
    return luaL_fileresult(L, 0, ".");
  lua_pushstring(L, path);
  return 1;
}

static int h_mkdir_p(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  if (llm_mkdir_p(path, 0700) != 0)
    return llm_fail(L, "io", NULL, "%s: %s", path, strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* Functions run when llmrun exits (llm.on_exit), kept in the registry so
 * that neither C nor the library reaches for the global `llm` to find
 * them. on_exit(fn) appends; run_exit_hooks runs them last first. */
static char EXIT_HOOKS_KEY;

static int h_on_exit(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &EXIT_HOOKS_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &EXIT_HOOKS_KEY);
  }
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

int luaopen__llm_host(lua_State *L)
{
  static const luaL_Reg funcs[] = {
    {"on_exit", h_on_exit},
    {"isatty", h_isatty},
    {"xdg_dir", h_xdg_dir},
    {"mkdir_p", h_mkdir_p},
    {"cwd", h_cwd},
    {NULL, NULL}
  };
  llm_host *h = host_of(L);
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LLMRUN_VERSION);
  lua_setfield(L, -2, "version");
  if (h) {
    lua_pushstring(L, h->lualib);
    lua_setfield(L, -2, "lualib");
  }
  return 1;
}

/* ---- the memory limit -------------------------------------------------------------- */

/* Once the limit has refused an allocation, this much more is allowed so
 * that the error can travel, be reported (a traceback is built) and the
 * tasks be closed: refusing those too would turn a clean failure into
 * sqlite's or Lua's "unprotected error" abort. */
#define MEMORY_RESERVE ((size_t)1 << 20)

/* What a full collection must bring the live data under, for a script
 * at the limit to go on: a table that only grows would otherwise free a
 * little garbage at each refusal and go on, one full collection per few
 * allocations, for seconds (minutes on a loaded machine). */
#define MEMORY_GO_ON(limit) ((limit) / 20 * 19)

/* Counts every block of the Lua state and refuses a growth past the
 * limit: Lua then collects in full and tries again; when the collection
 * left the live data within 5% of the limit, the retry is refused too and
 * Lua raises its memory error, which fails the script like any error. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  memory *m = ud;
  size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
  void *p;
  if (nsize == 0) {
    m->used -= old;
    if (m->hit && m->used < m->limit)
      m->hit = 0;
    return m->alloc(m->alloc_ud, ptr, osize, 0);
  }
  if (m->limit && nsize > old) {
    size_t cap = m->limit + (m->hit ? MEMORY_RESERVE : 0);
    int after_gc = m->retrying;
    m->retrying = 0;
    if (m->used - old + nsize > cap ||
        (after_gc && !m->hit && m->used - old + nsize > MEMORY_GO_ON(m->limit))) {
      m->hit = 1;
      m->retrying = 1;
      m->refused++;
      return NULL;
    }
  }
  p = m->alloc(m->alloc_ud, ptr, osize, nsize);
  if (p)
    m->used = m->used - old + nsize;
  return p;
}

int llm_parse_size(const char *text, size_t *out)
{
  char *end;
  double v, mult = 1;
  errno = 0;
  v = strtod(text, &end);
  if (end == text || errno || !(v > 0))
    return -1;
  switch (*end) {
  case 'k': case 'K': mult = 1024.0; end++; break;
  case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
  case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
  case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
  default: break;
  }
  if (mult > 1 && *end == 'i')
    end++;
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end != '\0' || v * mult >= 9.2e18)
    return -1;
  *out = (size_t)(v * mult);
  return 0;
}

int llm_host_set_memory_limit(llm_host *h, size_t bytes)
{
  if (bytes != 0 && bytes < LLM_MIN_MEMORY_LIMIT)
    return -1;
  h->mem.limit = bytes;
  h->mem.hit = 0;
  return 0;
}

/* The memory record of L, when the host's allocator runs it. */
static memory *memory_of(lua_State *L)
{
  void *ud;
  return lua_getallocf(L, &ud) == limited_alloc ? ud : NULL;
}

/* ---- creating the state ----------------------------------------------------------- */

/* The state is made with lua_newstate (for its allocator), so the two
 * things luaL_newstate would set are set here, as lauxlib sets them: a
 * panic that says what went wrong, and warnings off until "@on". */
static int panic(lua_State *L)
{
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "llmrun: PANIC: unprotected error in call to Lua API (%s)\n", msg ? msg : "error object is not a string");
  return 0; /* Lua aborts */
}

static void warn_on(void *ud, const char *msg, int tocont);
static void warn_off(void *ud, const char *msg, int tocont);

/* A control message ("@on", "@off"); anything else starting with "@" is
 * ignored, as lauxlib does. 1 when msg was one. */
static int warn_control(lua_State *L, const char *msg, int tocont)
{
  if (tocont || *msg != '@')
    return 0;
  if (strcmp(msg, "@off") == 0)
    lua_setwarnf(L, warn_off, L);
  else if (strcmp(msg, "@on") == 0)
    lua_setwarnf(L, warn_on, L);
  return 1;
}

static void warn_cont(void *ud, const char *msg, int tocont)
{
  fputs(msg, stderr);
  if (tocont)
    return;
  fputs("\n", stderr);
  lua_setwarnf((lua_State *)ud, warn_on, ud);
}

static void warn_on(void *ud, const char *msg, int tocont)
{
  if (warn_control(ud, msg, tocont))
    return;
  fputs("Lua warning: ", stderr);
  lua_setwarnf((lua_State *)ud, warn_cont, ud);
  warn_cont(ud, msg, tocont);
}

static void warn_off(void *ud, const char *msg, int tocont)
{
  warn_control(ud, msg, tocont);
}

static void preload(lua_State *L)
{
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = llm_preloaded_modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

/* lualib first, so `require "llm"` is always ours; then whatever
 * LUA_PATH_5_4 / LUA_PATH (already applied by luaopen_package) says. */
static void set_path(lua_State *L, const char *lualib)
{
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lualib, lualib, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static int boot(lua_State *L)
{
  llm_host *h = lua_touserdata(L, 1);
  luaL_openlibs(L);
  llm_protect_install(L); /* before lualib captures pcall */
  preload(L);
  set_path(L, h->lualib);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "llm");
  lua_call(L, 1, 1);
  lua_setglobal(L, "llm");
  return 0;
}

llm_host *llm_host_new(void)
{
  llm_host *h = calloc(1, sizeof *h);
  if (!h) {
    fputs("llmrun: out of memory\n", stderr);
    return NULL;
  }
  if (find_dir(h->lualib, sizeof h->lualib, "LLMRUN_LUALIB", LLMRUN_REL_LUALIB,
               "lualib", "/llm/init.lua") != 0) {
    fprintf(stderr, "llmrun: cannot find the Lua library (looked for "
                    "llm/init.lua beside the binary and in %s); set LLMRUN_LUALIB\n",
            h->lualib);
    free(h);
    return NULL;
  }
  /* A peer closing a socket must be an error return, not a dead process. */
  signal(SIGPIPE, SIG_IGN);
  h->pool = llm_pool_new();
  h->L = h->pool ? lua_newstate(llm_pool_alloc, h->pool) : NULL;
  if (h->L) {
    lua_atpanic(h->L, panic);
    lua_setwarnf(h->L, warn_off, h->L);
    /* count from here on: what lua_newstate took so far is the start */
    h->mem.alloc = lua_getallocf(h->L, &h->mem.alloc_ud);
    h->mem.used = (size_t)lua_gc(h->L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(h->L, LUA_GCCOUNTB, 0);
    lua_setallocf(h->L, limited_alloc, &h->mem);
  }
  h->loop = h->L ? llm_loop_new() : NULL;
  h->sched = h->loop ? llm_sched_new(h->L, h->loop) : NULL;
  if (!h->sched) {
    fputs("llmrun: cannot create the Lua state or the event loop\n", stderr);
    if (h->L)
      lua_close(h->L);
    llm_pool_free(h->pool);
    llm_loop_free(h->loop);
    free(h);
    return NULL;
  }
  lua_pushlightuserdata(h->L, h);
  lua_rawsetp(h->L, LUA_REGISTRYINDEX, &HOST_KEY);

  lua_pushcfunction(h->L, boot);
  lua_pushlightuserdata(h->L, h);
  if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "llmrun: cannot load the llm library: %s\n",
            lua_tostring(h->L, -1));
    llm_host_close(h, LLM_EXIT_FAIL, 0);
    return NULL;
  }
  return h;
}

/* ---- running chunks as tasks ------------------------------------------------------------ */

void llm_host_report_error(lua_State *L, int err_idx, const char *traceback)
{
  const char *msg;
  memory *m = memory_of(L);
  err_idx = lua_absindex(L, err_idx);
  if (m && m->limit && m->refused && lua_type(L, err_idx) == LUA_TSTRING &&
      strcmp(lua_tostring(L, err_idx), "not enough memory") == 0) {
    /* Lua says "not enough memory": say which memory and why */
    fprintf(stderr, "llmrun: memory limit exceeded: the script needed more than %.1f MiB "
                    "of Lua memory (--max-memory or LLMRUN_MAX_MEMORY)\n",
            (double)m->limit / (1024.0 * 1024.0));
    if (traceback && traceback[0])
      fprintf(stderr, "%s\n", traceback);
    fflush(stderr);
    return;
  }
  if (luaL_callmeta(L, err_idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    msg = lua_tostring(L, -1);
  else if (lua_type(L, err_idx) == LUA_TSTRING || lua_type(L, err_idx) == LUA_TNUMBER)
    msg = lua_pushstring(L, lua_tostring(L, err_idx));
  else
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, err_idx));
  fprintf(stderr, "llmrun: %s\n", msg);
  if (traceback && traceback[0])
    fprintf(stderr, "%s\n", traceback);
  fflush(stderr);
  lua_pop(L, 1);
}

/* SIGINT, SIGTERM and SIGHUP: the first cancels the running work (the
 * scheduler stops Lua code at its next instruction and keeps stopping it,
 * see task.h); the host then runs the exit hooks (the call log's flush)
 * and exits with 128 + the signal. A second one before the host is done
 * with the first exits at once: it is the way out of C code that no hook
 * reaches (string.find on a pathological pattern) and of a hung exit
 * hook. Threads that are not the main one (the call log writer, the
 * simulator, curl's resolver) pass the signal to it, so the scheduler is
 * only touched from the thread that runs Lua. */
#define REPEAT_MS 100

static void on_signal(int sig)
{
  int saved = errno;
  llm_sched *s = signal_target;
  if (!pthread_equal(pthread_self(), main_thread)) {
    pthread_kill(main_thread, sig);
    errno = saved;
    return;
  }
  if (pending_signal) {
    static const char msg[] = "\nllmrun: interrupted again: exiting now\n";
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* the same signal twice within REPEAT_MS is one: `timeout` and
     * `kill -- -PGID` deliver it to the process and to its group */
    if ((now.tv_sec - pending_since.tv_sec) * 1000.0 +
        (now.tv_nsec - pending_since.tv_nsec) / 1e6 < REPEAT_MS) {
      errno = saved;
      return;
    }
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
    }
    _exit(128 + sig);
  }
  clock_gettime(CLOCK_MONOTONIC, &pending_since);
  pending_signal = sig;
  if (s)
    llm_sched_interrupt(s);
  errno = saved;
}

void llm_host_catch_signals(llm_host *h)
{
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaddset(&sa.sa_mask, sigs[i]); /* one handler at a time */
  main_thread = pthread_self();
  signal_target = h->sched;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old;
    /* nohup's ignored SIGHUP stays ignored */
    if (sigs[i] == SIGHUP && sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(sigs[i], &sa, NULL);
  }
}

int llm_host_signal(const llm_host *h)
{
  (void)h;
  return pending_signal;
}

void llm_host_signal_done(llm_host *h)
{
  pending_signal = 0;
  llm_sched_interrupt_done(h->sched);
}

static const char *signal_name(int sig)
{
  switch (sig) {
  case SIGTERM: return " (SIGTERM)";
  case SIGHUP: return " (SIGHUP)";
  default: return "";
  }
}

int llm_host_interrupted_status(const llm_host *h)
{
  int sig = llm_host_signal(h);
  return 128 + (sig ? sig : SIGINT);
}

int llm_host_run_main(llm_host *h, int nargs)
{
  lua_State *L = h->L;
  llm_task *t = llm_task_spawn(h->sched, L, nargs);
  int r, status = LLM_EXIT_OK;
  if (!t) {
    fputs("llmrun: out of memory\n", stderr);
    return LLM_EXIT_FAIL;
  }
  llm_task_observe(t); /* its error is reported here, not as "uncaught" */
  r = llm_sched_run(h->sched, t, -1);
  if (r == LLM_RUN_INTERRUPTED || llm_sched_take_interrupt(h->sched)) {
    llm_sched_cancel_all(h->sched);
    fprintf(stderr, "llmrun: interrupted%s\n", signal_name(llm_host_signal(h)));
    lua_pop(L, 1);
    return llm_host_interrupted_status(h);
  }
  if (r == LLM_RUN_STUCK) {
    fputs("llmrun: the script waits for tasks that can never finish "
          "(each is waiting on another, or on llm.suspend with nobody to wake it)\n",
          stderr);
    llm_sched_cancel_all(h->sched);
    lua_pop(L, 1);
    return LLM_EXIT_FAIL;
  }
  if (r == LLM_RUN_EXIT) { /* llm.exit in another task */
    llm_sched_cancel_all(h->sched);
    lua_pop(L, 1);
    return llm_sched_exit_code(h->sched);
  }
  if (r == LLM_RUN_ERROR) {
    fputs("llmrun: the event loop failed\n", stderr);
    lua_pop(L, 1);
    return LLM_EXIT_FAIL;
  }
  if (llm_task_status(t) != LLM_TASK_DONE) {
    int n = llm_task_push_outcome(L, -1);
    if (llm_has_class(L, -2, LLM_EXIT_METATABLE)) {
      lua_getfield(L, -2, "code");
      status = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    } else {
      llm_host_report_error(L, -2, lua_tostring(L, -1));
      status = LLM_EXIT_FAIL;
    }
    lua_pop(L, n);
  }
  lua_pop(L, 1);
  return status;
}

/* ---- shutting down -------------------------------------------------------------------------- */

/* Runs every exit hook, even after one fails (each under its own pcall),
 * then raises the first error. They run outside any task: they cannot
 * wait. */
static int run_exit_hooks(lua_State *L)
{
  int first_err = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &EXIT_HOOKS_KEY) != LUA_TTABLE)
    return 0;
  lua_pushnil(L); /* they run once */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &EXIT_HOOKS_KEY);
  for (lua_Integer i = (lua_Integer)lua_rawlen(L, 1); i >= 1; i--) {
    lua_rawgeti(L, 1, i);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      if (!first_err)
        first_err = lua_gettop(L); /* keep the first message on the stack */
      else
        lua_pop(L, 1);
    }
  }
  if (first_err)
    return lua_error(L); /* the top is the first message */
  return 0;
}

int llm_host_close(llm_host *h, int status, int warn_running)
{
  size_t running = llm_sched_live(h->sched);
  if (running > 0) {
    if (warn_running)
      fprintf(stderr, "llmrun: %zu task%s still running when the script ended "
                      "%s cancelled (wait for a task with task:wait() to let it finish)\n",
              running, running == 1 ? "" : "s", running == 1 ? "was" : "were");
    llm_sched_cancel_all(h->sched);
  }
  lua_pushcfunction(h->L, run_exit_hooks);
  if (lua_pcall(h->L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "llmrun: error in an exit hook: %s\n", lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    if (status == LLM_EXIT_OK)
      status = LLM_EXIT_FAIL;
  }
  /* a signal that came while the script ended normally still counts */
  if (status == LLM_EXIT_OK && llm_host_signal(h))
    status = llm_host_interrupted_status(h);
  signal_target = NULL;
  lua_close(h->L); /* collects tasks: unobserved failures are reported now */
  llm_pool_free(h->pool);
  if (llm_sched_uncaught(h->sched) > 0 && status == LLM_EXIT_OK)
    status = LLM_EXIT_FAIL;
  llm_sched_free(h->sched);
  llm_loop_free(h->loop);
  llm_http_pool_drain();
  llm_curl_cleanup();
  free(h);
  return status;
}
