/* Forwarders that load libcurl on first use. See curl_lazy.h for why. */
#include "curl_lazy.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lazylib.h"

typedef void (*any_fn)(void);

static struct {
  void *lib;
  char err[256];
  CURLcode (*global_init)(long);
  void (*global_cleanup)(void);
  curl_version_info_data *(*version_info)(CURLversion);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_pause)(CURL *, int);
  void (*easy_reset)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  CURLHcode (*easy_header)(CURL *, const char *, size_t, unsigned int, int,
                           struct curl_header **);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
  CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
  CURLMcode (*multi_wakeup)(CURLM *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_timeout)(CURLM *, long *);
  const char *(*multi_strerror)(CURLMcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  time_t (*getdate)(const char *, const time_t *);
  void (*free)(void *);
  CURLU *(*url)(void);
  void (*url_cleanup)(CURLU *);
  CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
  CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_failed;

static const llm_lazysym syms[] = {
  {"curl_global_init", (void **)&api.global_init},
  {"curl_global_cleanup", (void **)&api.global_cleanup},
  {"curl_version_info", (void **)&api.version_info},
  {"curl_easy_init", (void **)&api.easy_init},
  {"curl_easy_cleanup", (void **)&api.easy_cleanup},
  {"curl_easy_setopt", (void **)&api.easy_setopt},
  {"curl_easy_getinfo", (void **)&api.easy_getinfo},
  {"curl_easy_perform", (void **)&api.easy_perform},
  {"curl_easy_pause", (void **)&api.easy_pause},
  {"curl_easy_reset", (void **)&api.easy_reset},
  {"curl_easy_strerror", (void **)&api.easy_strerror},
  {"curl_easy_header", (void **)&api.easy_header},
  {"curl_multi_init", (void **)&api.multi_init},
  {"curl_multi_cleanup", (void **)&api.multi_cleanup},
  {"curl_multi_add_handle", (void **)&api.multi_add_handle},
  {"curl_multi_remove_handle", (void **)&api.multi_remove_handle},
  {"curl_multi_perform", (void **)&api.multi_perform},
  {"curl_multi_socket_action", (void **)&api.multi_socket_action},
  {"curl_multi_assign", (void **)&api.multi_assign},
  {"curl_multi_poll", (void **)&api.multi_poll},
  {"curl_multi_wakeup", (void **)&api.multi_wakeup},
  {"curl_multi_info_read", (void **)&api.multi_info_read},
  {"curl_multi_setopt", (void **)&api.multi_setopt},
  {"curl_multi_timeout", (void **)&api.multi_timeout},
  {"curl_multi_strerror", (void **)&api.multi_strerror},
  {"curl_slist_append", (void **)&api.slist_append},
  {"curl_slist_free_all", (void **)&api.slist_free_all},
  {"curl_getdate", (void **)&api.getdate},
  {"curl_free", (void **)&api.free},
  {"curl_url", (void **)&api.url},
  {"curl_url_cleanup", (void **)&api.url_cleanup},
  {"curl_url_set", (void **)&api.url_set},
  {"curl_url_get", (void **)&api.url_get},
};

static void load(void)
{
  load_failed = 1;
  api.lib = llm_lazylib_open("libcurl.so.4", "libcurl4", syms, sizeof syms / sizeof syms[0],
                             api.err, sizeof api.err);
  if (!api.lib)
    return;
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(api.err, sizeof api.err, "curl_global_init failed");
    return;
  }
  load_failed = 0;
}

int llm_curl_load(char *err, size_t errlen)
{
  pthread_once(&load_once, load);
  if (load_failed && err && errlen)
    snprintf(err, errlen, "%s", api.err);
  return load_failed ? -1 : 0;
}

int llm_curl_is_loaded(void) { return api.lib != NULL && !load_failed; }

void llm_curl_cleanup(void)
{
  if (llm_curl_is_loaded())
    api.global_cleanup();
}

static void need(void)
{
  if (llm_curl_load(NULL, 0) != 0) {
    fprintf(stderr, "llmrun: %s\n", api.err);
    abort();
  }
}

/* ---- the forwarders: hidden, so the loaded libcurl cannot bind to them ---- */
#pragma GCC visibility push(hidden)

/* The parenthesised names keep curl's type-checking macros (typecheck-gcc.h)
 * from expanding here; callers still get those checks. */

CURLcode (curl_global_init)(long flags) { (void)flags; need(); return CURLE_OK; }
void (curl_global_cleanup)(void) { llm_curl_cleanup(); }
curl_version_info_data *(curl_version_info)(CURLversion v) { need(); return api.version_info(v); }
CURL *(curl_easy_init)(void) { need(); return api.easy_init(); }
void (curl_easy_cleanup)(CURL *h) { need(); api.easy_cleanup(h); }
CURLcode (curl_easy_perform)(CURL *h) { need(); return api.easy_perform(h); }
CURLcode (curl_easy_pause)(CURL *h, int bitmask) { need(); return api.easy_pause(h, bitmask); }
void (curl_easy_reset)(CURL *h) { need(); api.easy_reset(h); }
const char *(curl_easy_strerror)(CURLcode c) { need(); return api.easy_strerror(c); }

CURLHcode (curl_easy_header)(CURL *h, const char *name, size_t index, unsigned int origin,
                             int request, struct curl_header **hout)
{
  need();
  return api.easy_header(h, name, index, origin, request, hout);
}

/* Options encode their argument type in their number; pass the argument
 * on with exactly that type, as libcurl will read it. */
CURLcode (curl_easy_setopt)(CURL *h, CURLoption opt, ...)
{
  va_list ap;
  CURLcode rc;
  need();
  va_start(ap, opt);
  if (opt < CURLOPTTYPE_OBJECTPOINT)
    rc = api.easy_setopt(h, opt, va_arg(ap, long));
  else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
    rc = api.easy_setopt(h, opt, va_arg(ap, void *));
  else if (opt < CURLOPTTYPE_OFF_T)
    rc = api.easy_setopt(h, opt, va_arg(ap, any_fn));
  else if (opt < CURLOPTTYPE_BLOB)
    rc = api.easy_setopt(h, opt, va_arg(ap, curl_off_t));
  else
    rc = api.easy_setopt(h, opt, va_arg(ap, void *));
  va_end(ap);
  return rc;
}

/* Every getinfo argument is a pointer to the result. */
CURLcode (curl_easy_getinfo)(CURL *h, CURLINFO info, ...)
{
  va_list ap;
  CURLcode rc;
  need();
  va_start(ap, info);
  rc = api.easy_getinfo(h, info, va_arg(ap, void *));
  va_end(ap);
  return rc;
}

CURLM *(curl_multi_init)(void) { need(); return api.multi_init(); }
CURLMcode (curl_multi_cleanup)(CURLM *m) { need(); return api.multi_cleanup(m); }
CURLMcode (curl_multi_add_handle)(CURLM *m, CURL *h) { need(); return api.multi_add_handle(m, h); }
CURLMcode (curl_multi_remove_handle)(CURLM *m, CURL *h) { need(); return api.multi_remove_handle(m, h); }
CURLMcode (curl_multi_perform)(CURLM *m, int *running) { need(); return api.multi_perform(m, running); }
CURLMcode (curl_multi_wakeup)(CURLM *m) { need(); return api.multi_wakeup(m); }
CURLMcode (curl_multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running)
{
  need();
  return api.multi_socket_action(m, s, ev, running);
}
CURLMcode (curl_multi_assign)(CURLM *m, curl_socket_t s, void *p) { need(); return api.multi_assign(m, s, p); }
CURLMsg *(curl_multi_info_read)(CURLM *m, int *left) { need(); return api.multi_info_read(m, left); }
CURLMcode (curl_multi_timeout)(CURLM *m, long *ms) { need(); return api.multi_timeout(m, ms); }
const char *(curl_multi_strerror)(CURLMcode c) { need(); return api.multi_strerror(c); }

CURLMcode (curl_multi_poll)(CURLM *m, struct curl_waitfd *fds, unsigned n, int timeout_ms,
                            int *numfds)
{
  need();
  return api.multi_poll(m, fds, n, timeout_ms, numfds);
}

CURLMcode (curl_multi_setopt)(CURLM *m, CURLMoption opt, ...)
{
  va_list ap;
  CURLMcode rc;
  need();
  va_start(ap, opt);
  if (opt < CURLOPTTYPE_OBJECTPOINT)
    rc = api.multi_setopt(m, opt, va_arg(ap, long));
  else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
    rc = api.multi_setopt(m, opt, va_arg(ap, void *));
  else if (opt < CURLOPTTYPE_OFF_T)
    rc = api.multi_setopt(m, opt, va_arg(ap, any_fn));
  else
    rc = api.multi_setopt(m, opt, va_arg(ap, curl_off_t));
  va_end(ap);
  return rc;
}

struct curl_slist *(curl_slist_append)(struct curl_slist *l, const char *s)
{
  need();
  return api.slist_append(l, s);
}
void (curl_slist_free_all)(struct curl_slist *l) { need(); api.slist_free_all(l); }
time_t (curl_getdate)(const char *s, const time_t *unused) { need(); return api.getdate(s, unused); }
void (curl_free)(void *p) { need(); api.free(p); }
CURLU *(curl_url)(void) { need(); return api.url(); }
void (curl_url_cleanup)(CURLU *u) { need(); api.url_cleanup(u); }
CURLUcode (curl_url_set)(CURLU *u, CURLUPart part, const char *content, unsigned int flags)
{
  need();
  return api.url_set(u, part, content, flags);
}

CURLUcode (curl_url_get)(CURLU *u, CURLUPart part, char **content, unsigned int flags)
{
  need();
  return api.url_get(u, part, content, flags);
}

#pragma GCC visibility pop
