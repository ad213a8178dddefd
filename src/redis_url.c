/* Redis URLs: redis://[[user]:password@]host[:port][/db] and
 * unix:///path[?db=N], the forms redis-cli and the common clients accept.
 * See redis_client.h. rediss:// (TLS) is refused with a reason: the
 * hiredis in Debian 12 (0.14) has no TLS. */
#include "redis_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *url, const char *why)
{
  /* never echo a URL that may hold a password: only its scheme */
  char scheme[16] = "";
  const char *p = strstr(url, "://");
  if (p && (size_t)(p - url) < sizeof scheme)
    snprintf(scheme, sizeof scheme, "%.*s://", (int)(p - url), url);
  snprintf(err, errlen, "bad Redis URL %s...: %s", scheme[0] ? scheme : "", why);
  return -1;
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies s[0..n) into out with %XX decoded; -1 when it does not fit or
 * an escape is malformed. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= n)
        return -1;
      hi = hexval((unsigned char)s[i + 1]);
      lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (j + 1 >= cap)
      return -1;
    out[j++] = (char)c;
  }
  out[j] = '\0';
  return 0;
}

static int parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
  long v = 0;
  if (n == 0 || n > 10)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int parse_unix(const char *url, const char *rest, llm_redis_url *u, char *err, size_t errlen)
{
  const char *q = strchr(rest, '?');
  size_t n = q ? (size_t)(q - rest) : strlen(rest);
  long db;
  if (n == 0 || rest[0] != '/')
    return fail(err, errlen, url, "unix:// needs an absolute socket path (unix:///run/redis.sock)");
  if (decode(rest, n, u->socket, sizeof u->socket) != 0)
    return fail(err, errlen, url, "socket path too long or badly escaped");
  if (q) {
    if (strncmp(q + 1, "db=", 3) != 0 || parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &db) != 0)
      return fail(err, errlen, url, "the only query unix:// takes is ?db=N");
    u->db = (int)db;
  }
  return 0;
}

int llm_redis_parse_url(const char *url, llm_redis_url *u, char *err, size_t errlen)
{
  const char *p, *auth_end, *host, *host_end, *port = NULL, *path;
  long v;
  memset(u, 0, sizeof *u);
  u->port = 6379;
  if (!url)
    return fail(err, errlen, "", "no URL");
  if (strncmp(url, "rediss://", 9) == 0)
    return fail(err, errlen, url, "TLS (rediss://) is not supported by the hiredis this build "
                                  "uses; reach Redis through a tunnel (ssh -L, stunnel)");
  if (strncmp(url, "unix://", 7) == 0)
    return parse_unix(url, url + 7, u, err, errlen);
  if (strncmp(url, "redis://", 8) != 0)
    return fail(err, errlen, url, "expected redis://host[:port][/db] or unix:///path");
  p = url + 8;
  path = p + strcspn(p, "/?#");
  if (*path == '?' || *path == '#')
    return fail(err, errlen, url, "query strings and fragments are not supported");
  /* credentials: the last '@' before the path */
  auth_end = NULL;
  for (const char *s = p; s < path; s++)
    if (*s == '@')
      auth_end = s;
  host = p;
  if (auth_end) {
    const char *colon = memchr(p, ':', (size_t)(auth_end - p));
    if (colon) {
      if (decode(p, (size_t)(colon - p), u->user, sizeof u->user) != 0 ||
          decode(colon + 1, (size_t)(auth_end - colon - 1), u->password, sizeof u->password) != 0)
        return fail(err, errlen, url, "user or password too long or badly escaped");
    } else if (decode(p, (size_t)(auth_end - p), u->password, sizeof u->password) != 0) {
      /* redis://secret@host: a password alone, as redis-cli reads it */
      return fail(err, errlen, url, "password too long or badly escaped");
    }
    host = auth_end + 1;
  }
  if (*host == '[') { /* IPv6 literal */
    const char *close = memchr(host, ']', (size_t)(path - host));
    if (!close)
      return fail(err, errlen, url, "unclosed [ in the host");
    if ((size_t)(close - host - 1) >= sizeof u->host || close == host + 1)
      return fail(err, errlen, url, "bad IPv6 host");
    memcpy(u->host, host + 1, (size_t)(close - host - 1));
    host_end = close + 1;
    if (host_end < path) {
      if (*host_end != ':')
        return fail(err, errlen, url, "junk after the IPv6 host");
      port = host_end + 1;
    }
  } else {
    const char *colon = memchr(host, ':', (size_t)(path - host));
    host_end = colon ? colon : path;
    if ((size_t)(host_end - host) >= sizeof u->host)
      return fail(err, errlen, url, "host name too long");
    memcpy(u->host, host, (size_t)(host_end - host));
    if (colon)
      port = colon + 1;
  }
  if (u->host[0] == '\0')
    snprintf(u->host, sizeof u->host, "127.0.0.1");
  if (port) {
    if (parse_int(port, (size_t)(path - port), 1, 65535, &v) != 0)
      return fail(err, errlen, url, "the port must be a number from 1 to 65535");
    u->port = (int)v;
  }
  if (*path == '/' && path[1] != '\0') {
    if (parse_int(path + 1, strlen(path + 1), 0, 1 << 20, &v) != 0)
      return fail(err, errlen, url, "the path must be a database number (redis://host:6379/0)");
    u->db = (int)v;
  }
  return 0;
}

void llm_redis_url_display(const llm_redis_url *u, char *buf, size_t len)
{
  if (u->socket[0] && u->db)
    snprintf(buf, len, "unix://%s?db=%d", u->socket, u->db);
  else if (u->socket[0])
    snprintf(buf, len, "unix://%s", u->socket);
  else if (strchr(u->host, ':'))
    snprintf(buf, len, "redis://[%s]:%d/%d", u->host, u->port, u->db);
  else
    snprintf(buf, len, "redis://%s:%d/%d", u->host, u->port, u->db);
}
