/* Drives the REPL through a pseudo-terminal, as a user would: multi-line
 * input, expression printing, Ctrl-C during a long wait, in loops that
 * catch the interrupt with pcall or loop in __close, at the prompt, a
 * second Ctrl-C that leaves when C code cannot be stopped, SIGTERM,
 * Ctrl-D to leave, and the history file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "loop.h"

static int master = -1;
static pid_t child;
static char out[65536];
static size_t outlen;

static void start_repl(const char *state_dir)
{
  struct winsize ws = {.ws_row = 40, .ws_col = 200};
  child = forkpty(&master, NULL, NULL, &ws);
  if (child == 0) {
    setenv("XDG_STATE_HOME", state_dir, 1);
    setenv("TERM", "xterm", 1);
    execl(LLMRUN_BINARY, "llmrun", (char *)NULL);
    _exit(127);
  }
}

/* Reads until `want` shows up in the output after `from`, or timeout. */
static int expect(const char *want, size_t from, double timeout)
{
  double end = llm_now() + timeout;
  for (;;) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    double left = end - llm_now();
    out[outlen] = '\0';
    if (strstr(out + from, want))
      return 1;
    if (left <= 0 || outlen + 1 >= sizeof out)
      return 0;
    if (poll(&p, 1, (int)(left * 1000) + 1) > 0) {
      ssize_t n = read(master, out + outlen, sizeof out - 1 - outlen);
      if (n <= 0)
        return 0;
      outlen += (size_t)n;
    }
  }
}

/* Waits up to `timeout` s for the REPL to exit (reading its output
 * meanwhile, so it never blocks on a full terminal). */
static int wait_child(int *status, double timeout)
{
  double end = llm_now() + timeout;
  while (llm_now() < end) {
    if (waitpid(child, status, WNOHANG) == child)
      return 1;
    expect("\x01never", outlen, 0.02);
  }
  kill(child, SIGKILL);
  waitpid(child, status, 0);
  return 0;
}

/* The offset just past the first s in the output from mark (or outlen):
 * where to look for what comes after it. */
static size_t past(const char *s, size_t mark)
{
  const char *at = strstr(out + mark, s);
  return at ? (size_t)(at - out) + strlen(s) : outlen;
}

static void send_keys(const char *s)
{
  ssize_t n = write(master, s, strlen(s));
  (void)n;
}

int main(void)
{
  char state[] = "/tmp/llmrun-repl-XXXXXX", hist[256];
  size_t mark;
  double t0;
  int status = 0;
  FILE *f;

  if (!mkdtemp(state)) {
    perror("mkdtemp");
    return 1;
  }
  start_repl(state);
  CHECK(child > 0);
  CHECK(expect("> ", 0, 5));

  /* a multi-line function, then a call printing its result */
  mark = outlen;
  send_keys("function f()\n");
  CHECK(expect(">> ", mark, 2));
  send_keys("return 3 end\n");
  mark = outlen;
  send_keys("f()\n");
  CHECK(expect("3\r\n", mark, 2));

  /* expressions and tables are pretty-printed; =expr works as in lua.c */
  mark = outlen;
  send_keys("{a=1, b={1,2}}\n");
  CHECK(expect("{ a = 1, b = { 1, 2 } }", mark, 2));
  mark = outlen;
  send_keys("=1+1\n");
  CHECK(expect("2\r\n", mark, 2));

  /* errors print and the REPL continues */
  mark = outlen;
  send_keys("error('oops')\n");
  CHECK(expect("oops", mark, 2));

  /* Ctrl-C cancels a long wait and returns to the prompt within 0.5 s */
  send_keys("llm.sleep(100)\n");
  usleep(200 * 1000);
  mark = outlen;
  t0 = llm_now();
  send_keys("\x03");
  CHECK(expect("interrupted", mark, 2));
  CHECK(expect("> ", mark, 2));
  CHECK(llm_now() - t0 < 0.5);

  /* Ctrl-C in a busy pure-Lua loop stops it too */
  send_keys("while true do end\n");
  usleep(200 * 1000);
  mark = outlen;
  send_keys("\x03");
  CHECK(expect("interrupted", mark, 2));

  /* Ctrl-C stops a loop that catches the interrupt with pcall, and one
   * whose __close loops too; the REPL goes on */
  send_keys("while true do pcall(function() while true do end end) end\n");
  usleep(200 * 1000);
  mark = outlen;
  send_keys("\x03");
  CHECK(expect("interrupted", mark, 2));
  send_keys("do local g <close> = setmetatable({}, {__close = function() while true do end end}) "
            "while true do end end\n");
  usleep(200 * 1000);
  mark = outlen;
  send_keys("\x03");
  CHECK(expect("interrupted", mark, 2));
  mark = outlen;
  send_keys("print('still', 6*7)\n");
  CHECK(expect("still\t42", mark, 2));
  mark = past("still\t42", mark);

  /* Ctrl-C at the prompt drops the partial line. Each key is typed once
   * the REPL shows it is ready for it, as a person would: the prompt after
   * the last output, the echo of the partial line, the new prompt (keys
   * typed before readline is back are echoed and buffered by the terminal,
   * and a Ctrl-C then is the previous line's). Kept,
   * "12 +" would make the next line an arithmetic error after its print. */
  CHECK(expect("> ", mark, 5));
  mark = outlen;
  send_keys("12 +");
  CHECK(expect("12 +", mark, 5));
  mark = outlen;
  send_keys("\x03");
  CHECK(expect("> ", mark, 5));
  mark = outlen;
  send_keys("print('after', 40+2)\n");
  CHECK(expect("after\t42", mark, 5));
  CHECK(expect("> ", mark, 2));
  CHECK(strstr(out + mark, "arithmetic") == NULL);

  /* background tasks keep running while the prompt waits */
  send_keys("bg = llm.spawn(function() llm.sleep(0.1) return 'bg done' end)\n");
  usleep(300 * 1000);
  mark = outlen;
  send_keys("bg:status()\n");
  CHECK(expect("\"done\"", mark, 2));

  /* Ctrl-D leaves with status 0 */
  send_keys("\x04");
  t0 = llm_now();
  while (waitpid(child, &status, WNOHANG) == 0 && llm_now() - t0 < 3)
    usleep(10 * 1000);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* the history file exists, is private and holds the lines */
  snprintf(hist, sizeof hist, "%s/llmrun/history", state);
  {
    struct stat st;
    CHECK(stat(hist, &st) == 0 && (st.st_mode & 0777) == 0600);
  }
  f = fopen(hist, "r");
  CHECK(f != NULL);
  if (f) {
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    CHECK(strstr(buf, "print('after', 40+2)") != NULL);
    fclose(f);
  }
  /* SIGTERM ends the REPL (after cancelling the running line): 143 */
  close(master);
  outlen = 0;
  start_repl(state);
  CHECK(expect("> ", 0, 5));
  send_keys("llm.sleep(100)\n");
  usleep(200 * 1000);
  kill(child, SIGTERM);
  CHECK(wait_child(&status, 3));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 143);

  /* C code no hook reaches (a pathological pattern): the first Ctrl-C
   * cannot stop it, a second one exits at once with 130 */
  close(master);
  outlen = 0;
  start_repl(state);
  CHECK(expect("> ", 0, 5));
  send_keys("s = string.rep('a', 200000) while true do pcall(string.find, s, string.rep('a-', 40) .. 'b') end\n");
  usleep(300 * 1000);
  send_keys("\x03");
  usleep(500 * 1000);
  CHECK(waitpid(child, &status, WNOHANG) == 0); /* still stuck in string.find */
  t0 = llm_now();
  send_keys("\x03");
  CHECK(wait_child(&status, 2));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 130);
  CHECK(llm_now() - t0 < 1.5);

  if (check_failed)
    fprintf(stderr, "--- REPL output ---\n%s\n---\n", out);
  close(master);
  return check_report("repl");
}
