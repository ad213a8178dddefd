/* llmrun's command line: options in lua.c's shape, plus subcommands that
 * live in lualib/llm/cli/<name>.lua. Exit codes: 0 ok, 1 failure,
 * 2 usage error, 128 + the signal when interrupted (130 SIGINT, 143
 * SIGTERM, 129 SIGHUP). */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "host.h"
#include "repl.h"

static const char usage_text[] =
  "usage: llmrun [options] [script [args]]\n"
  "       llmrun COMMAND [args]\n"
  "\n"
  "Runs a Lua 5.4 script with the llm library loaded as the global `llm`.\n"
  "With no script and a terminal on stdin, starts the REPL.\n"
  "\n"
  "options:\n"
  "  -e CODE        run CODE (may be repeated)\n"
  "  -i FILE        run FILE, then enter the REPL (-i alone: after -e code)\n"
  "  -l NAME        require library NAME into global NAME\n"
  "  --dry-run      run against the simulator with no delay and print the\n"
  "                 estimated tokens and cost per model of a real run\n"
  "  --max-memory SIZE  limit the script's Lua memory (512M, 2G; also\n"
  "                 LLMRUN_MAX_MEMORY): past it the script fails with\n"
  "                 \"memory limit exceeded\"\n"
  "  -              run the script read from stdin\n"
  "  --             stop handling options\n"
  "  -v, --version  print the version and exit\n"
  "  -h, --help     print this help and exit\n"
  "\n"
  "commands (llmrun COMMAND --help for each):\n"
  "%s"
  "\n"
  "The simulator is the provider when no API key is set; see README.md.\n";

/* ---- arguments ------------------------------------------------------------ */

typedef struct {
  int script;       /* index of the script in argv, or 0 */
  const char *max_memory; /* --max-memory, or NULL */
  int interactive;  /* -i */
  int has_e;        /* -e or -l given */
  int version;
} options;

static int usage_error(const char *fmt, const char *arg)
{
  fputs("llmrun: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\nTry 'llmrun --help' for more information.\n", stderr);
  return -1;
}

/* Like lua.c's collectargs: returns 0, 1 for --help, or -1 on a usage error. */
static int collect_options(int argc, char **argv, options *o)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o->script = i;
      return 0;
    }
    if (strcmp(a, "-") == 0) {
      o->script = i;
      return 0;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc)
        o->script = i + 1;
      return 0;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
      return 1;
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0)
      o->version = 1;
    else if (strcmp(a, "-i") == 0)
      o->interactive = 1;
    else if (strcmp(a, "--dry-run") == 0)
      setenv("LLMRUN_DRY_RUN", "1", 1); /* read by lualib/llm/init.lua */
    else if (strcmp(a, "--max-memory") == 0) {
      if (i + 1 >= argc)
        return usage_error("option '%s' needs an argument", a);
      o->max_memory = argv[++i];
    } else if (strncmp(a, "--max-memory=", 13) == 0)
      o->max_memory = a + 13;
    else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (i + 1 >= argc)
        return usage_error("option '%s' needs an argument", a);
      o->has_e = 1;
      i++;
    } else if (a[1] == 'e' || a[1] == 'l') {
      o->has_e = 1; /* -eCODE, -lNAME */
    } else {
      return usage_error("unrecognized option '%s'", a);
    }
  }
  return 0;
}

/* arg table as lua.c builds it: script at 0, its arguments from 1,
 * the interpreter and options at negative indices. */
static void create_arg_table(lua_State *L, int argc, char **argv, int script)
{
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* --max-memory, else LLMRUN_MAX_MEMORY: 0, or -1 after a usage error. */
static int apply_memory_limit(llm_host *h, const char *opt)
{
  const char *v = opt ? opt : getenv("LLMRUN_MAX_MEMORY");
  size_t bytes;
  if (!v || !v[0])
    return 0;
  if (llm_parse_size(v, &bytes) != 0) {
    fprintf(stderr, "llmrun: %s: '%s' is not a size (say 512M, 2G or a number of bytes)\n",
            opt ? "--max-memory" : "LLMRUN_MAX_MEMORY", v);
    return -1;
  }
  if (llm_host_set_memory_limit(h, bytes) != 0) {
    fprintf(stderr, "llmrun: %s: %s is below the smallest limit, %zu bytes (1M)\n",
            opt ? "--max-memory" : "LLMRUN_MAX_MEMORY", v, (size_t)LLM_MIN_MEMORY_LIMIT);
    return -1;
  }
  return 0;
}

/* ---- running ----------------------------------------------------------------- */

/* The loaded chunk sits below its nargs arguments. */
static int run_loaded(llm_host *h, int load_status, int nargs)
{
  lua_State *L = llm_host_state(h);
  if (load_status != LUA_OK) {
    fprintf(stderr, "llmrun: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1 + nargs);
    return LLM_EXIT_FAIL;
  }
  return llm_host_run_main(h, nargs);
}

static int run_string(llm_host *h, const char *code, const char *name)
{
  lua_State *L = llm_host_state(h);
  return run_loaded(h, luaL_loadbuffer(L, code, strlen(code), name), 0);
}

static int run_require(llm_host *h, const char *name)
{
  lua_State *L = llm_host_state(h);
  /* the name goes in as a value, not pasted into code: "my-mod" or a
   * long name must not turn into a syntax error */
  static const char code[] = "local name = ... _G[name] = require(name)";
  luaL_loadbuffer(L, code, sizeof code - 1, "=(command line)");
  lua_pushstring(L, name);
  return llm_host_run_main(h, 1);
}

/* -e and -l, in order, before the script. */
static int run_options(llm_host *h, int argc, char **argv, int last)
{
  for (int i = 1; i < last; i++) {
    const char *a = argv[i], *v;
    int st;
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
      continue;
    v = a[2] ? a + 2 : argv[++i];
    st = a[1] == 'e' ? run_string(h, v, "=(command line)") : run_require(h, v);
    if (st != LLM_EXIT_OK)
      return st;
  }
  (void)argc;
  return LLM_EXIT_OK;
}

static int run_script(llm_host *h, int argc, char **argv, int script)
{
  lua_State *L = llm_host_state(h);
  const char *fname = argv[script];
  int st, nargs = argc - script - 1;
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
    fname = NULL; /* stdin */
  st = luaL_loadfile(L, fname);
  if (st == LUA_ERRFILE && script == 1 && fname && !strpbrk(fname, "./\\") &&
      !llm_file_exists(fname)) {
    /* a word that is neither a command nor a file: most likely a typo */
    fprintf(stderr, "llmrun: unknown command '%s' (and no file of that name)\n"
                    "Try 'llmrun --help' for the commands.\n", fname);
    lua_pop(L, 1);
    return LLM_EXIT_USAGE;
  }
  if (st == LUA_ERRFILE) {
    fprintf(stderr, "llmrun: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LLM_EXIT_USAGE;
  }
  luaL_checkstack(L, nargs + 3, "too many arguments to script");
  for (int i = script + 1; i < argc; i++)
    lua_pushstring(L, argv[i]);
  return run_loaded(h, st, nargs);
}

/* ---- subcommands ------------------------------------------------------------------ */

/* A command is a file lualib/llm/cli/<name>.lua exporting main(args). */
static int is_command(const char *lualib, const char *name)
{
  char path[PATH_MAX];
  if (!name[0] || strpbrk(name, "./\\") != NULL)
    return 0;
  snprintf(path, sizeof path, "%s/llm/cli/%s.lua", lualib, name);
  return llm_file_exists(path);
}

static int run_command(llm_host *h, int argc, char **argv)
{
  lua_State *L = llm_host_state(h);
  static const char code[] =
    "local name, args = ... return require('llm.cli').run(name, args)";
  luaL_loadbuffer(L, code, sizeof code - 1, "=llmrun");
  lua_pushstring(L, argv[1]);
  lua_createtable(L, argc - 2, 0);
  for (int i = 2; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  create_arg_table(L, argc, argv, 1);
  return llm_host_run_main(h, 2);
}

static void print_help(llm_host *h)
{
  lua_State *L = h ? llm_host_state(h) : NULL;
  const char *cmds = "";
  if (L) {
    static const char code[] = "return require('llm.cli').summary()";
    if (luaL_loadbuffer(L, code, sizeof code - 1, "=llmrun") == LUA_OK &&
        lua_pcall(L, 0, 1, 0) == LUA_OK && lua_isstring(L, -1))
      cmds = lua_tostring(L, -1);
  }
  printf(usage_text, cmds);
}

int main(int argc, char **argv)
{
  options o = {0};
  llm_host *h;
  int help, status = LLM_EXIT_OK, command;

  help = collect_options(argc, argv, &o);
  if (help < 0)
    return LLM_EXIT_USAGE;
  if (o.version && help == 0) {
    printf("llmrun %s (%s)\n", LLMRUN_VERSION, LUA_RELEASE);
    return LLM_EXIT_OK;
  }
  h = llm_host_new();
  if (!h)
    return LLM_EXIT_FAIL;
  if (help) {
    print_help(h);
    return llm_host_close(h, LLM_EXIT_OK, 0);
  }
  if (apply_memory_limit(h, o.max_memory) != 0) {
    llm_host_close(h, LLM_EXIT_OK, 0);
    return LLM_EXIT_USAGE;
  }
  llm_host_catch_signals(h);

  command = argc > 1 && is_command(llm_host_lualib(h), argv[1]);
  if (command) /* a command may go on reading lines (llmrun chat) */
    return llm_host_close(h, llm_repl_run_session(h, run_command(h, argc, argv)), 1);

  create_arg_table(llm_host_state(h), argc, argv, o.script ? o.script : 0);
  status = run_options(h, argc, argv, o.script ? o.script : argc);
  if (status == LLM_EXIT_OK && o.script)
    status = run_script(h, argc, argv, o.script);
  if (status == LLM_EXIT_OK && !o.script && !o.has_e && !o.interactive) {
    if (isatty(STDIN_FILENO))
      o.interactive = 1;
    else
      status = run_loaded(h, luaL_loadfile(llm_host_state(h), NULL), 0);
  }
  if (status == LLM_EXIT_OK && o.interactive)
    status = llm_repl_run(h);
  return llm_host_close(h, status, !o.interactive);
}
