/* Host names resolved on a thread. See redis_resolve.h. */
#include "redis_resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the thread and the loop share; the last of them to let go frees it. */
typedef struct job {
  atomic_int refs;
  char host[256];
  char address[INET6_ADDRSTRLEN];
  char error[160];
  int write_fd;
} job;

struct llm_resolve {
  llm_loop *loop;
  job *j;
  int read_fd;
  llm_resolve_fn fn;
  void *ud;
};

static void release(job *j)
{
  if (atomic_fetch_sub(&j->refs, 1) == 1)
    free(j);
}

int llm_resolve_is_address(const char *host)
{
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void *resolve_thread(void *arg)
{
  job *j = arg;
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(j->host, NULL, &hints, &res);
  if (rc != 0 || !res) {
    snprintf(j->error, sizeof j->error, "cannot resolve %.100s: %s", j->host,
             rc ? gai_strerror(rc) : "no address");
  } else {
    const void *a = res->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    if (!inet_ntop(res->ai_family, a, j->address, sizeof j->address))
      snprintf(j->error, sizeof j->error, "cannot resolve %.100s", j->host);
  }
  if (res)
    freeaddrinfo(res);
  /* the loop may have stopped waiting: then the send fails, harmlessly
   * (a socket pair, so no SIGPIPE) */
  if (send(j->write_fd, "x", 1, MSG_NOSIGNAL) < 0) {
  }
  close(j->write_fd);
  release(j);
  return NULL;
}

static void on_ready(void *ud, unsigned events)
{
  llm_resolve *rs = ud;
  job *j = rs->j;
  (void)events;
  llm_loop_unwatch(rs->loop, rs->read_fd);
  close(rs->read_fd);
  if (j->address[0])
    rs->fn(rs->ud, j->address, NULL);
  else
    rs->fn(rs->ud, NULL, j->error[0] ? j->error : "cannot resolve the host");
  release(j);
  free(rs);
}

llm_resolve *llm_resolve_start(llm_loop *loop, const char *host, llm_resolve_fn fn, void *ud)
{
  llm_resolve *rs = calloc(1, sizeof *rs);
  job *j = calloc(1, sizeof *j);
  int fds[2];
  pthread_t t;
  pthread_attr_t attr;
  if (!rs || !j || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    free(rs);
    free(j);
    return NULL;
  }
  snprintf(j->host, sizeof j->host, "%s", host);
  j->write_fd = fds[1];
  atomic_init(&j->refs, 2);
  rs->loop = loop;
  rs->j = j;
  rs->read_fd = fds[0];
  rs->fn = fn;
  rs->ud = ud;
  if (llm_loop_watch(loop, fds[0], LLM_IO_READ, on_ready, rs) != 0) {
    close(fds[0]);
    close(fds[1]);
    free(rs);
    free(j);
    return NULL;
  }
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, resolve_thread, j) != 0) {
    pthread_attr_destroy(&attr);
    llm_loop_unwatch(loop, fds[0]);
    close(fds[0]);
    close(fds[1]);
    free(rs);
    free(j);
    return NULL;
  }
  pthread_attr_destroy(&attr);
  return rs;
}

void llm_resolve_cancel(llm_resolve *rs)
{
  if (!rs)
    return;
  llm_loop_unwatch(rs->loop, rs->read_fd);
  close(rs->read_fd);
  release(rs->j);
  free(rs);
}
