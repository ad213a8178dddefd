/* connserver MAX_CONNS DELAY_MS SECONDS: an HTTP server with a bounded
 * connection table, for the connection-cap test (issue 13, item 7).
 *
 * It holds at most MAX_CONNS connections at once (lowered to what the
 * descriptor limit allows) and turns away the rest: an accepted
 * connection over the limit is reset at once, and the listen backlog is
 * small, as a server at its limit does. Each request (any method and path,
 * keep-alive) is answered after DELAY_MS with a fixed OpenAI chat
 * completion; GET /stats answers {"max_open":, "refused":, "requests":,
 * "limit":} at once. One thread, epoll, so thousands of connections cost
 * little. Prints "PORT PID" on stdout; exits after SECONDS or on SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 64
#define REQ_MAX 65536

typedef struct conn {
  int fd;
  size_t len;
  double due;      /* > 0: a full request is in, answer at this time */
  int stats;       /* the request was GET /stats */
  char buf[REQ_MAX];
} conn;

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char body[] =
  "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
  "\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
  "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}";

static conn **conns;   /* by descriptor */
static int limit, open_now, max_open, refused;
static long requests;

static void drop(int ep, conn *c)
{
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conns[c->fd] = NULL;
  free(c);
  open_now--;
}

/* A complete request (head + Content-Length body) at the start of buf:
 * its length, or 0. */
static size_t complete(conn *c)
{
  char *end;
  const char *cl;
  size_t body_len = 0, head;
  c->buf[c->len] = '\0';
  end = strstr(c->buf, "\r\n\r\n");
  if (!end)
    return 0;
  head = (size_t)(end - c->buf) + 4;
  cl = strcasestr(c->buf, "\ncontent-length:");
  if (cl && cl < end)
    body_len = (size_t)atol(cl + 16);
  return c->len >= head + body_len ? head + body_len : 0;
}

static void answer(int ep, conn *c)
{
  char out[1024];
  const char *b = body;
  int n;
  char stats[256];
  if (c->stats) {
    snprintf(stats, sizeof stats, "{\"max_open\":%d,\"refused\":%d,\"requests\":%ld,\"limit\":%d}",
             max_open, refused, requests, limit);
    b = stats;
  }
  n = snprintf(out, sizeof out,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
               strlen(b), b);
  c->due = 0;
  if (send(c->fd, out, (size_t)n, MSG_NOSIGNAL) != n)
    drop(ep, c);
}

static void on_readable(int ep, conn *c, double delay)
{
  for (;;) {
    ssize_t r;
    if (c->len >= REQ_MAX - 1) {
      drop(ep, c);
      return;
    }
    r = recv(c->fd, c->buf + c->len, REQ_MAX - 1 - c->len, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      drop(ep, c);
      return;
    }
    if (r < 0)
      break;
    c->len += (size_t)r;
  }
  if (c->due == 0 && complete(c)) {
    size_t used = complete(c);
    c->stats = strncmp(c->buf, "GET /stats", 10) == 0;
    if (!c->stats)
      requests++;
    memmove(c->buf, c->buf + used, c->len - used); /* a client sends one at a time */
    c->len -= used;
    c->due = c->stats ? now() : now() + delay;
  }
}

int main(int argc, char **argv)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  struct rlimit rl;
  struct epoll_event ev, evs[256];
  int lfd, ep, one = 1, maxfd;
  double delay, end;
  if (argc != 4) {
    fprintf(stderr, "usage: connserver MAX_CONNS DELAY_MS SECONDS\n");
    return 2;
  }
  limit = atoi(argv[1]);
  delay = atof(argv[2]) / 1000;
  end = now() + atof(argv[3]);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)limit + 64 > rl.rlim_cur)
      limit = (int)rl.rlim_cur - 64;
  }
  maxfd = limit + 64;
  conns = calloc((size_t)maxfd + 1, sizeof *conns);
  signal(SIGTERM, on_term);
  signal(SIGPIPE, SIG_IGN);
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, BACKLOG) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
    perror("connserver");
    return 1;
  }
  ep = epoll_create1(0);
  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("%d %d\n", ntohs(a.sin_port), (int)getpid());
  fflush(stdout);
  while (!stop && now() < end) {
    int n = epoll_wait(ep, evs, 256, 2);
    double t = now();
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          conn *c;
          if (open_now >= limit || fd > maxfd || !(c = calloc(1, sizeof *c))) {
            struct linger lg = {1, 0}; /* full: reset it */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(fd);
            refused++;
            continue;
          }
          c->fd = fd;
          conns[fd] = c;
          ev.events = EPOLLIN;
          ev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          if (++open_now > max_open)
            max_open = open_now;
        }
      } else {
        on_readable(ep, evs[i].data.ptr, delay);
      }
    }
    for (int fd = 0; fd <= maxfd; fd++) /* answers that are due */
      if (conns[fd] && conns[fd]->due > 0 && conns[fd]->due <= t)
        answer(ep, conns[fd]);
  }
  for (int fd = 0; fd <= maxfd; fd++)
    if (conns[fd])
      drop(ep, conns[fd]);
  free(conns);
  close(ep);
  close(lfd);
  return 0;
}
