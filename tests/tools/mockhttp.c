/* mockhttp SCRIPT LOG SECONDS: the scripted test server (tests/c/mock_http.h)
 * as a process, for Lua and shell tests. Prints "PORT PID" on stdout,
 * appends every request to LOG before answering it (blocks start with a
 * line "=== N"), and exits after SECONDS or on SIGTERM.
 *
 * mockhttp --mode NAME LOG SECONDS plays one of the hostile servers below
 * instead of a script file (mockhttp --modes lists them): what a broken
 * or malicious server may do, each answered by a test in
 * tests/lua/test_hostile.lua or tests/cli/test_hostile.sh. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock_http.h"

static const struct {
  const char *name, *script;
} modes[] = {
  /* a stream's headers, then the connection drops */
  {"drop-after-headers",
   "status 200 OK\nheader Content-Type: text/event-stream\nchunked\nclose\n"},
  /* a 401 quoting the credentials it got, as OpenAI's does */
  {"echo-auth",
   "status 401 Unauthorized\nheader Content-Type: application/json\n"
   "header x-request-id: req_echo\n"
   "body {\"error\":{\"message\":\"Incorrect API key provided: {{authorization}}{{x-api-key}}. "
   "You can find your API key at https://platform.openai.com/account/api-keys.\","
   "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}\n"},
  /* terminal escapes in the error message and the request id: colour,
   * clear screen, an OSC window title, CR/LF forging a line */
  {"ansi-error",
   "status 400 Bad Request\nheader Content-Type: application/json\n"
   "header x-request-id: req_\\x1b]0;pwned\\x07\\x1b[2J\n"
   "body {\"error\":{\"message\":\"bad \\\\u001b[31mred\\\\u001b[0m \\\\u001b]0;title\\\\u0007"
   "\\\\r\\\\nllmrun: forged line\",\"type\":\"invalid_request_error\"}}\n"},
  /* usage numbers no server should send */
  {"odd-usage",
   "status 200\nheader Content-Type: application/json\n"
   "body {\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
   "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
   "\"finish_reason\":\"stop\"}],"
   "\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1e308,\"total_tokens\":12.5}}\n"},
  /* a stream of SSE comments only, for 20 s: alive, yet saying nothing */
  {"keepalive-only",
   "status 200 OK\nheader Content-Type: text/event-stream\nchunked\n"
   "repeat 400 0.05 : keepalive\\n\\n\nend\n"},
  /* a stream request answered by a web page, or by a non-stream answer */
  {"html-to-stream",
   "status 200 OK\nheader Content-Type: text/html; charset=utf-8\n"
   "body <!DOCTYPE html><html><head><title>Welcome to nginx!</title></head></html>\n"},
  {"json-to-stream",
   "status 200 OK\nheader Content-Type: application/json\n"
   "body {\"id\":\"c1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
   "\"content\":\"not a stream\"}}]}\n"},
  /* a redirect to a local file */
  {"redirect-file",
   "status 302 Found\nheader Location: file:///etc/hostname\nheader Content-Type: text/plain\n"
   "body moved\n"},
  /* an error whose message is an object */
  {"message-object",
   "status 400 Bad Request\nheader Content-Type: application/json\n"
   "body {\"error\":{\"message\":{\"detail\":\"field required\",\"loc\":[\"body\",\"model\"]},"
   "\"type\":\"invalid_request_error\"}}\n"},
  /* a lone surrogate escape in the answer: a chat, then a stream */
  {"lone-surrogate",
   "status 200\nheader Content-Type: application/json\n"
   "body {\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
   "\"content\":\"a\\\\ud800b\\\\udc00c\"},\"finish_reason\":\"stop\"}]}\n---\n"
   "status 200 OK\nheader Content-Type: text/event-stream\nchunked\n"
   "chunk data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\\\ud800b\"}}]}\\n\\n\n"
   "chunk data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"}}]}\\n\\n\n"
   "chunk data: [DONE]\\n\\n\nend\n"},
  /* NaN and Infinity, which are not JSON */
  {"nan-literal",
   "status 200\nheader Content-Type: application/json\n"
   "body {\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
   "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":NaN,\"completion_tokens\":Infinity}}\n"},
  /* a number where the answer's text belongs */
  {"number-content",
   "status 200\nheader Content-Type: application/json\n"
   "body {\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":42},"
   "\"finish_reason\":\"stop\"}]}\n"},
};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static char *read_script(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *script;
  long size;
  if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
    perror(path);
    return NULL;
  }
  rewind(f);
  script = calloc(1, (size_t)size + 1);
  if (fread(script, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(script);
    return NULL;
  }
  fclose(f);
  return script;
}

int main(int argc, char **argv)
{
  char *script = NULL;
  double seconds;
  mock_http *m;
  if (argc == 2 && strcmp(argv[1], "--modes") == 0) {
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
      printf("%s\n", modes[i].name);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "--mode") == 0) {
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
      if (strcmp(modes[i].name, argv[2]) == 0)
        script = strdup(modes[i].script);
    if (!script) {
      fprintf(stderr, "mockhttp: no mode %s (mockhttp --modes lists them)\n", argv[2]);
      return 2;
    }
    argv += 1;
  } else if (argc != 4) {
    fprintf(stderr, "usage: mockhttp SCRIPT LOG SECONDS | --mode NAME LOG SECONDS | --modes\n");
    return 2;
  } else if (!(script = read_script(argv[1]))) {
    return 1;
  }
  seconds = atof(argv[3]);
  signal(SIGTERM, on_term);
  m = mock_http_start_logged(script, argv[2]);
  if (!m)
    return 1;
  printf("%d %d\n", mock_http_port(m), (int)getpid());
  fflush(stdout);
  for (int ticks = 0; !stop && ticks < seconds * 100; ticks++)
    usleep(10000);
  mock_http_stop(m);
  free(script);
  return 0;
}
