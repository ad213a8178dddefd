/* Scripted HTTP server for tests. See mock_http.h. A thread per
 * connection keeps the scripting simple; it only ever serves tests. */
#include "mock_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_REQUESTS 4096

struct mock_http {
  int listen_fd, port;
  volatile int stopping;
  pthread_t acceptor;
  pthread_mutex_t mu;
  char **blocks;
  int nblocks;
  char *log_path;
  int nrequests;
  char *requests[MAX_REQUESTS];
  int conns[MAX_CONNS];
  pthread_t threads[MAX_CONNS];
  int nconns;
};

typedef struct conn {
  mock_http *m;
  int fd, index;
} conn;

/* ---- script parsing ------------------------------------------------------ */

static size_t unescape(const char *in, char *out)
{
  size_t n = 0;
  for (const char *p = in; *p; p++) {
    if (*p != '\\' || !p[1]) {
      out[n++] = *p;
      continue;
    }
    p++;
    switch (*p) {
    case 'r': out[n++] = '\r'; break;
    case 'n': out[n++] = '\n'; break;
    case 't': out[n++] = '\t'; break;
    case 'x': {
      unsigned v = 0;
      if (sscanf(p + 1, "%2x", &v) == 1)
        p += 2;
      out[n++] = (char)v;
      break;
    }
    default: out[n++] = *p;
    }
  }
  return n;
}

static void split_blocks(mock_http *m, const char *script)
{
  const char *p = script;
  m->blocks = calloc(256, sizeof *m->blocks);
  while (*p && m->nblocks < 256) {
    const char *sep = strstr(p, "\n---\n");
    size_t len = sep ? (size_t)(sep - p) + 1 : strlen(p);
    m->blocks[m->nblocks++] = strndup(p, len);
    if (!sep)
      break;
    p = sep + 5;
  }
}

/* ---- sending ------------------------------------------------------------------- */

static int send_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Sleeps s seconds, or less when the server is stopping: a script's long
 * "sleep" must not hold mock_http_stop (and so a test) until it ends. */
static void sleep_s(double s, const volatile int *stopping)
{
  while (s > 0 && !*stopping) {
    double step = s < 0.01 ? s : 0.01;
    struct timespec ts = {0, (long)(step * 1e9)};
    nanosleep(&ts, NULL);
    s -= step;
  }
}

/* "drip SIZES PAUSE TEXT": TEXT as HTTP chunks whose sizes cycle through
 * the comma list SIZES, one write each (TCP_NODELAY is on, so each write
 * leaves as its own segment), PAUSE seconds between them. buf holds the
 * unescaped text. */
static void drip(int fd, const char *args, char *buf, const volatile int *stopping)
{
  size_t sizes[64], nsizes = 0, n, off = 0, turn = 0;
  char *end;
  const char *p = args;
  double pause;
  while (nsizes < 64) {
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0)
      return;
    sizes[nsizes++] = (size_t)v;
    p = end;
    if (*p != ',')
      break;
    p++;
  }
  pause = strtod(p, &end);
  p = *end == ' ' ? end + 1 : end;
  n = unescape(p, buf);
  while (off < n) {
    char piece[4096 + 32];
    size_t k = sizes[turn++ % nsizes], head;
    if (k > 4096)
      k = 4096;
    if (k > n - off)
      k = n - off;
    head = (size_t)snprintf(piece, 32, "%zx\r\n", k);
    memcpy(piece + head, buf + off, k);
    memcpy(piece + head + k, "\r\n", 2);
    if (send_all(fd, piece, head + k + 2) != 0)
      return;
    off += k;
    if (pause > 0)
      sleep_s(pause, stopping);
  }
}

typedef struct response {
  char head[8192];
  size_t headlen;
  int started;
} response;

enum { KEEP_ALIVE, CLOSE, RESET, STALL };

/* The value of header `name` in the raw request text, or "". */
static void request_header(const char *req, const char *name, char *out, size_t cap)
{
  size_t nlen = strlen(name);
  const char *p = req, *end = strstr(req, "\r\n\r\n");
  out[0] = '\0';
  while ((p = strstr(p, "\r\n")) != NULL && (!end || p < end)) {
    p += 2;
    if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
      const char *v = p + nlen + 1, *e = strstr(v, "\r\n");
      size_t n;
      while (*v == ' ')
        v++;
      n = e ? (size_t)(e - v) : strlen(v);
      if (n >= cap)
        n = cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
  }
}

/* TEXT with each {{Header-Name}} replaced by that request header's value
 * (how a hostile server echoes the Authorization header back). */
static char *expand(const char *text, const char *req)
{
  size_t cap = strlen(text) + 1, len = 0;
  char *out = malloc(cap);
  for (const char *p = text; *p;) {
    const char *close;
    char name[128], value[4096];
    size_t vlen;
    if (p[0] != '{' || p[1] != '{' || !(close = strstr(p + 2, "}}")) ||
        (size_t)(close - p - 2) >= sizeof name) {
      if (len + 2 > cap)
        out = realloc(out, cap *= 2);
      out[len++] = *p++;
      continue;
    }
    memcpy(name, p + 2, (size_t)(close - p - 2));
    name[close - p - 2] = '\0';
    request_header(req ? req : "", name, value, sizeof value);
    vlen = strlen(value);
    while (len + vlen + 1 > cap)
      out = realloc(out, cap *= 2);
    memcpy(out + len, value, vlen);
    len += vlen;
    p = close + 2;
  }
  out[len] = '\0';
  return out;
}

/* Plays one block; returns how the connection continues. */
static int play(int fd, const char *block, const char *request, const volatile int *stopping)
{
  response r = {.headlen = 0, .started = 0};
  char *copy = strdup(block), *save = NULL, *line;
  char *buf = malloc(strlen(block) + 1 + 8192);
  int outcome = KEEP_ALIVE;
  for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    size_t n;
    char *expanded = NULL;
    if (strstr(line, "{{")) { /* substitutions: the line may grow */
      expanded = expand(line, request);
      buf = realloc(buf, strlen(block) + strlen(expanded) + 1);
      line = expanded;
    }
    if (strncmp(line, "status ", 7) == 0) {
      int code = atoi(line + 7);
      const char *reason = strchr(line + 7, ' ');
      r.headlen = (size_t)snprintf(r.head, sizeof r.head, "HTTP/1.1 %d %s\r\n", code,
                                   reason ? reason + 1 : "Status");
    } else if (strncmp(line, "header ", 7) == 0) {
      n = unescape(line + 7, buf);
      r.headlen += (size_t)snprintf(r.head + r.headlen, sizeof r.head - r.headlen, "%.*s\r\n",
                                    (int)n, buf);
    } else if (strncmp(line, "body", 4) == 0) {
      char cl[64];
      n = line[4] ? unescape(line + 5, buf) : 0;
      snprintf(cl, sizeof cl, "Content-Length: %zu\r\n\r\n", n);
      send_all(fd, r.head, r.headlen);
      send_all(fd, cl, strlen(cl));
      send_all(fd, buf, n);
    } else if (strcmp(line, "chunked") == 0) {
      static const char te[] = "Transfer-Encoding: chunked\r\n\r\n";
      send_all(fd, r.head, r.headlen);
      send_all(fd, te, sizeof te - 1);
    } else if (strncmp(line, "chunk ", 6) == 0) {
      char sz[32];
      n = unescape(line + 6, buf);
      snprintf(sz, sizeof sz, "%zx\r\n", n);
      send_all(fd, sz, strlen(sz));
      send_all(fd, buf, n);
      send_all(fd, "\r\n", 2);
    } else if (strncmp(line, "drip ", 5) == 0) {
      drip(fd, line + 5, buf, stopping);
    } else if (strcmp(line, "end") == 0) {
      send_all(fd, "0\r\n\r\n", 5);
    } else if (strncmp(line, "raw ", 4) == 0) {
      n = unescape(line + 4, buf);
      send_all(fd, buf, n);
    } else if (strncmp(line, "sleep ", 6) == 0) {
      sleep_s(atof(line + 6), stopping);
    } else if (strcmp(line, "close") == 0) {
      outcome = CLOSE;
    } else if (strcmp(line, "reset") == 0) {
      outcome = RESET;
    } else if (strcmp(line, "stall") == 0) {
      outcome = STALL;
    } else if (strncmp(line, "repeat ", 7) == 0) {
      /* repeat COUNT SECONDS TEXT: a chunk every SECONDS, COUNT times */
      int count = 0, off = 0;
      double every = 0;
      if (sscanf(line + 7, "%d %lf %n", &count, &every, &off) >= 2 && off > 0) {
        char sz[32];
        n = unescape(line + 7 + off, buf);
        snprintf(sz, sizeof sz, "%zx\r\n", n);
        for (int k = 0; k < count; k++) {
          if (send_all(fd, sz, strlen(sz)) != 0 || send_all(fd, buf, n) != 0 ||
              send_all(fd, "\r\n", 2) != 0)
            break; /* the client went away */
          sleep_s(every, stopping);
        }
      }
    }
    free(expanded);
  }
  free(copy);
  free(buf);
  return outcome;
}

/* ---- receiving ------------------------------------------------------------------------ */

/* Reads one request (head + Content-Length body); NULL when the peer
 * closed or the server is stopping. */
static char *read_request(mock_http *m, int fd)
{
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    char *end;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t r;
    if (len + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
    if (end) {
      const char *cl = strcasestr(buf, "\ncontent-length:");
      size_t body = cl && cl < end ? (size_t)atol(cl + 16) : 0;
      size_t need = (size_t)(end - buf) + 4 + body;
      if (len >= need) {
        buf[need] = '\0';
        return buf;
      }
    }
    if (poll(&p, 1, 100) == 0) {
      if (m->stopping)
        break;
      continue;
    }
    r = recv(fd, buf + len, cap - 1 - len, 0);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  free(buf);
  return NULL;
}

static void *serve(void *ud)
{
  conn *c = ud;
  mock_http *m = c->m;
  int fd = c->fd, index = c->index, outcome = KEEP_ALIVE;
  free(c);
  while (outcome == KEEP_ALIVE && !m->stopping) {
    char *req = read_request(m, fd);
    int i;
    if (!req)
      break;
    pthread_mutex_lock(&m->mu);
    i = m->nrequests;
    if (i < MAX_REQUESTS)
      m->requests[i] = req; /* kept (and freed) by the server */
    m->nrequests++;
    if (m->log_path) {
      FILE *log = fopen(m->log_path, "a");
      if (log) {
        fprintf(log, "=== %d\n%s\n", i, i < MAX_REQUESTS ? m->requests[i] : "");
        fclose(log);
      }
    }
    pthread_mutex_unlock(&m->mu);
    outcome = play(fd, m->blocks[i < m->nblocks ? i : m->nblocks - 1], req, &m->stopping);
    if (i >= MAX_REQUESTS)
      free(req);
  }
  if (outcome == RESET) {
    struct linger lg = {1, 0}; /* close() now sends RST, not FIN */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else if (outcome == STALL) {
    char sink[256];
    while (!m->stopping) { /* hold it until the client gives up */
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, 100) > 0 && recv(fd, sink, sizeof sink, 0) <= 0)
        break;
    }
  }
  if (outcome != RESET)
    shutdown(fd, SHUT_RDWR);
  pthread_mutex_lock(&m->mu);
  m->conns[index] = -1;
  close(fd);
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

static void *accept_loop(void *ud)
{
  mock_http *m = ud;
  while (!m->stopping) {
    struct pollfd p = {.fd = m->listen_fd, .events = POLLIN};
    int fd;
    conn *c;
    if (poll(&p, 1, 50) <= 0)
      continue;
    fd = accept(m->listen_fd, NULL, NULL);
    if (fd < 0)
      continue;
    /* A response goes out in several writes (status, headers, body): with
     * Nagle on, the second write waits for the client's delayed ACK, about
     * 40 ms a request, which made fault tests spend seconds asleep. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    pthread_mutex_lock(&m->mu);
    if (m->nconns >= MAX_CONNS) {
      pthread_mutex_unlock(&m->mu);
      close(fd);
      continue;
    }
    c = malloc(sizeof *c);
    c->m = m;
    c->fd = fd;
    c->index = m->nconns;
    m->conns[m->nconns] = fd;
    pthread_create(&m->threads[m->nconns], NULL, serve, c);
    m->nconns++;
    pthread_mutex_unlock(&m->mu);
  }
  return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------------- */

mock_http *mock_http_start(const char *script)
{
  return mock_http_start_logged(script, NULL);
}

mock_http *mock_http_start_logged(const char *script, const char *log_path)
{
  mock_http *m = calloc(1, sizeof *m);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  int one = 1;
  if (!m)
    return NULL;
  pthread_mutex_init(&m->mu, NULL);
  if (log_path)
    m->log_path = strdup(log_path);
  split_blocks(m, script);
  m->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (m->nblocks == 0 || bind(m->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(m->listen_fd, 128) != 0 ||
      getsockname(m->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
    mock_http_stop(m);
    return NULL;
  }
  m->port = ntohs(a.sin_port);
  pthread_create(&m->acceptor, NULL, accept_loop, m);
  return m;
}

int mock_http_port(const mock_http *m) { return m->port; }

int mock_http_connections(mock_http *m)
{
  int n;
  pthread_mutex_lock(&m->mu);
  n = m->nconns;
  pthread_mutex_unlock(&m->mu);
  return n;
}

int mock_http_requests(mock_http *m)
{
  int n;
  pthread_mutex_lock(&m->mu);
  n = m->nrequests;
  pthread_mutex_unlock(&m->mu);
  return n;
}

char *mock_http_request_text(mock_http *m, int i)
{
  char *s = NULL;
  pthread_mutex_lock(&m->mu);
  if (i >= 0 && i < m->nrequests && i < MAX_REQUESTS)
    s = strdup(m->requests[i]);
  pthread_mutex_unlock(&m->mu);
  return s;
}

void mock_http_stop(mock_http *m)
{
  if (!m)
    return;
  m->stopping = 1;
  if (m->port) {
    shutdown(m->listen_fd, SHUT_RDWR); /* wakes the acceptor's poll now */
    pthread_join(m->acceptor, NULL);
  }
  for (int i = 0; i < m->nconns; i++) {
    pthread_mutex_lock(&m->mu);
    if (m->conns[i] >= 0)
      shutdown(m->conns[i], SHUT_RDWR);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->threads[i], NULL);
  }
  if (m->listen_fd > 0)
    close(m->listen_fd);
  for (int i = 0; i < m->nblocks; i++)
    free(m->blocks[i]);
  free(m->blocks);
  for (int i = 0; i < m->nrequests && i < MAX_REQUESTS; i++)
    free(m->requests[i]);
  pthread_mutex_destroy(&m->mu);
  free(m->log_path);
  free(m);
}
