/* Forwarders that load libmicrohttpd on first use. See mhd_lazy.h for why. */
#include "mhd_lazy.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lazylib.h"

static struct {
  void *lib;
  char err[256];
  struct MHD_Daemon *(*start_daemon_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
                                        MHD_AccessHandlerCallback, void *, va_list);
  void (*stop_daemon)(struct MHD_Daemon *);
  enum MHD_Result (*run)(struct MHD_Daemon *);
  enum MHD_Result (*get_timeout)(struct MHD_Daemon *, MHD_UNSIGNED_LONG_LONG *);
  const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *, enum MHD_DaemonInfoType,
                                                 ...);
  const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *,
                                                         enum MHD_ConnectionInfoType, ...);
  void (*suspend_connection)(struct MHD_Connection *);
  void (*resume_connection)(struct MHD_Connection *);
  const char *(*lookup_connection_value)(struct MHD_Connection *, enum MHD_ValueKind,
                                         const char *);
  struct MHD_Response *(*create_response_from_buffer)(size_t, void *, enum MHD_ResponseMemoryMode);
  struct MHD_Response *(*create_response_from_callback)(uint64_t, size_t,
                                                        MHD_ContentReaderCallback, void *,
                                                        MHD_ContentReaderFreeCallback);
  enum MHD_Result (*add_response_header)(struct MHD_Response *, const char *, const char *);
  enum MHD_Result (*queue_response)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
  void (*destroy_response)(struct MHD_Response *);
  const char *(*get_reason_phrase_for)(unsigned int);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_failed;

static const llm_lazysym syms[] = {
  {"MHD_start_daemon_va", (void **)&api.start_daemon_va},
  {"MHD_stop_daemon", (void **)&api.stop_daemon},
  {"MHD_run", (void **)&api.run},
  {"MHD_get_timeout", (void **)&api.get_timeout},
  {"MHD_get_daemon_info", (void **)&api.get_daemon_info},
  {"MHD_get_connection_info", (void **)&api.get_connection_info},
  {"MHD_suspend_connection", (void **)&api.suspend_connection},
  {"MHD_resume_connection", (void **)&api.resume_connection},
  {"MHD_lookup_connection_value", (void **)&api.lookup_connection_value},
  {"MHD_create_response_from_buffer", (void **)&api.create_response_from_buffer},
  {"MHD_create_response_from_callback", (void **)&api.create_response_from_callback},
  {"MHD_add_response_header", (void **)&api.add_response_header},
  {"MHD_queue_response", (void **)&api.queue_response},
  {"MHD_destroy_response", (void **)&api.destroy_response},
  {"MHD_get_reason_phrase_for", (void **)&api.get_reason_phrase_for},
};

static void load(void)
{
  load_failed = 1;
  api.lib = llm_lazylib_open("libmicrohttpd.so.12", "libmicrohttpd12", syms,
                             sizeof syms / sizeof syms[0], api.err, sizeof api.err);
  if (!api.lib)
    return;
  load_failed = 0;
}

int llm_mhd_load(char *err, size_t errlen)
{
  pthread_once(&load_once, load);
  if (load_failed && err && errlen)
    snprintf(err, errlen, "%s", api.err);
  return load_failed ? -1 : 0;
}

static void need(void)
{
  if (llm_mhd_load(NULL, 0) != 0) {
    fprintf(stderr, "llmrun: %s\n", api.err);
    abort();
  }
}

/* ---- the forwarders: hidden, so the loaded library cannot bind to them ---- */
#pragma GCC visibility push(hidden)

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
                                    MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
  struct MHD_Daemon *d;
  va_list ap;
  need();
  va_start(ap, dh_cls);
  d = api.start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
  va_end(ap);
  return d;
}

void MHD_stop_daemon(struct MHD_Daemon *d) { need(); api.stop_daemon(d); }
enum MHD_Result MHD_run(struct MHD_Daemon *d) { need(); return api.run(d); }

enum MHD_Result MHD_get_timeout(struct MHD_Daemon *d, MHD_UNSIGNED_LONG_LONG *timeout)
{
  need();
  return api.get_timeout(d, timeout);
}

/* The simulator asks only for infos that take no further argument
 * (MHD_DAEMON_INFO_BIND_PORT, _EPOLL_FD; MHD_CONNECTION_INFO_CONNECTION_FD). */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d,
                                                enum MHD_DaemonInfoType type, ...)
{
  need();
  return api.get_daemon_info(d, type);
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType type, ...)
{
  need();
  return api.get_connection_info(c, type);
}

void MHD_suspend_connection(struct MHD_Connection *c) { need(); api.suspend_connection(c); }
void MHD_resume_connection(struct MHD_Connection *c) { need(); api.resume_connection(c); }

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                        const char *key)
{
  need();
  return api.lookup_connection_value(c, kind, key);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
  need();
  return api.create_response_from_buffer(size, buffer, mode);
}

struct MHD_Response *MHD_create_response_from_callback(uint64_t size, size_t block_size,
                                                       MHD_ContentReaderCallback crc,
                                                       void *crc_cls,
                                                       MHD_ContentReaderFreeCallback crfc)
{
  need();
  return api.create_response_from_callback(size, block_size, crc, crc_cls, crfc);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header,
                                        const char *content)
{
  need();
  return api.add_response_header(r, header, content);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status,
                                   struct MHD_Response *r)
{
  need();
  return api.queue_response(c, status, r);
}

void MHD_destroy_response(struct MHD_Response *r) { need(); api.destroy_response(r); }
const char *MHD_get_reason_phrase_for(unsigned int code) { need(); return api.get_reason_phrase_for(code); }

#pragma GCC visibility pop
