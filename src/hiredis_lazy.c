/* Forwarders that load libhiredis on first use. See hiredis_lazy.h. */
#include "hiredis_lazy.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lazylib.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static struct {
  void *lib;
  char err[256];
  redisAsyncContext *(*connect)(const char *, int);
  redisAsyncContext *(*connect_unix)(const char *);
  int (*set_connect_cb)(redisAsyncContext *, redisConnectCallback *);
  int (*set_disconnect_cb)(redisAsyncContext *, redisDisconnectCallback *);
  void (*disconnect)(redisAsyncContext *);
  void (*free)(redisAsyncContext *);
  void (*handle_read)(redisAsyncContext *);
  void (*handle_write)(redisAsyncContext *);
  int (*formatted)(redisAsyncContext *, redisCallbackFn *, void *, const char *, size_t);
} api;

static const llm_lazysym syms[] = {
  {"redisAsyncConnect", (void **)&api.connect},
  {"redisAsyncConnectUnix", (void **)&api.connect_unix},
  {"redisAsyncSetConnectCallback", (void **)&api.set_connect_cb},
  {"redisAsyncSetDisconnectCallback", (void **)&api.set_disconnect_cb},
  {"redisAsyncDisconnect", (void **)&api.disconnect},
  {"redisAsyncFree", (void **)&api.free},
  {"redisAsyncHandleRead", (void **)&api.handle_read},
  {"redisAsyncHandleWrite", (void **)&api.handle_write},
  {"redisAsyncFormattedCommand", (void **)&api.formatted},
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
  api.lib = llm_lazylib_open("libhiredis.so." STR(HIREDIS_SONAME), "libhiredis" STR(HIREDIS_SONAME),
                             syms, sizeof syms / sizeof syms[0], api.err, sizeof api.err);
}

int llm_hiredis_load(char *err, size_t errlen)
{
  pthread_once(&load_once, load);
  if (!api.lib && err && errlen)
    snprintf(err, errlen, "%s", api.err);
  return api.lib ? 0 : -1;
}

static void need(void)
{
  if (llm_hiredis_load(NULL, 0) != 0) {
    fprintf(stderr, "llmrun: %s\n", api.err);
    abort();
  }
}

/* ---- the forwarders: hidden, so the loaded library cannot bind to them ---- */
#pragma GCC visibility push(hidden)

redisAsyncContext *redisAsyncConnect(const char *ip, int port) { need(); return api.connect(ip, port); }
redisAsyncContext *redisAsyncConnectUnix(const char *path) { need(); return api.connect_unix(path); }
int redisAsyncSetConnectCallback(redisAsyncContext *ac, redisConnectCallback *fn)
{
  need();
  return api.set_connect_cb(ac, fn);
}
int redisAsyncSetDisconnectCallback(redisAsyncContext *ac, redisDisconnectCallback *fn)
{
  need();
  return api.set_disconnect_cb(ac, fn);
}
void redisAsyncDisconnect(redisAsyncContext *ac) { need(); api.disconnect(ac); }
void redisAsyncFree(redisAsyncContext *ac) { need(); api.free(ac); }
void redisAsyncHandleRead(redisAsyncContext *ac) { need(); api.handle_read(ac); }
void redisAsyncHandleWrite(redisAsyncContext *ac) { need(); api.handle_write(ac); }
int redisAsyncFormattedCommand(redisAsyncContext *ac, redisCallbackFn *fn, void *privdata,
                               const char *cmd, size_t len)
{
  need();
  return api.formatted(ac, fn, privdata, cmd, len);
}

#pragma GCC visibility pop
