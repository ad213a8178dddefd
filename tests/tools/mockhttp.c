/* mockhttp SCRIPT LOG SECONDS: the scripted test server (tests/c/mock_http.h)
 * as a process, for Lua tests. Prints "PORT PID" on stdout, appends every
 * request to LOG before answering it (blocks start with a line "=== N"),
 * and exits after SECONDS or on SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mock_http.h"

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
  FILE *f;
  char *script;
  long size;
  double seconds;
  mock_http *m;
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
