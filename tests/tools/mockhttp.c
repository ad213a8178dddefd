/* mockhttp SCRIPT LOG SECONDS: the scripted test server (tests/c/mock_http.h)
 * as a process, for Lua tests. Prints "PORT PID" on stdout, appends every
 * request to LOG as it arrives (blocks separated by a line "=== N"), and
 * exits after SECONDS or on SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mock_http.h"

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
  FILE *f, *log;
  char *script;
  long size;
  double seconds;
  mock_http *m;
  int logged = 0;
  if (argc != 4) {
    fprintf(stderr, "usage: mockhttp SCRIPT LOG SECONDS\n");
    return 2;
  }
  f = fopen(argv[1], "rb");
  if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
    perror(argv[1]);
    return 1;
  }
  rewind(f);
  script = calloc(1, (size_t)size + 1);
  if (fread(script, 1, (size_t)size, f) != (size_t)size)
    return 1;
  fclose(f);
  seconds = atof(argv[3]);
  signal(SIGTERM, on_term);
  m = mock_http_start(script);
  if (!m)
    return 1;
  printf("%d %d\n", mock_http_port(m), (int)getpid());
  fflush(stdout);
  for (int ticks = 0; !stop && ticks < seconds * 100; ticks++) {
    usleep(10000);
    while (logged < mock_http_requests(m)) {
      char *req = mock_http_request_text(m, logged);
      if ((log = fopen(argv[2], "a")) != NULL) {
        fprintf(log, "=== %d\n%s\n", logged, req ? req : "");
        fclose(log);
      }
      free(req);
      logged++;
    }
  }
  mock_http_stop(m);
  free(script);
  return 0;
}
