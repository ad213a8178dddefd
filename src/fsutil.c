#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int llm_mkdir_p(const char *path, mode_t mode)
{
  char buf[4096];
  size_t len = strlen(path);
  struct stat st;
  if (len == 0 || len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
      *p = saved;
      if (saved == '\0')
        break;
    }
  }
  if (stat(buf, &st) != 0)
    return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

static const struct {
  const char *kind, *env, *fallback;
} xdg[] = {
  {"cache", "XDG_CACHE_HOME", ".cache"},
  {"data", "XDG_DATA_HOME", ".local/share"},
  {"state", "XDG_STATE_HOME", ".local/state"},
  {"config", "XDG_CONFIG_HOME", ".config"},
};

int llm_xdg_dir(const char *kind, int create, char *out, size_t n)
{
  for (size_t i = 0; i < sizeof xdg / sizeof xdg[0]; i++) {
    const char *base, *home;
    int w;
    if (strcmp(kind, xdg[i].kind) != 0)
      continue;
    base = getenv(xdg[i].env);
    if (base && base[0] == '/')
      w = snprintf(out, n, "%s/llmrun", base);
    else {
      home = getenv("HOME");
      if (!home || home[0] != '/') {
        errno = ENOENT;
        return -1;
      }
      w = snprintf(out, n, "%s/%s/llmrun", home, xdg[i].fallback);
    }
    if (w < 0 || (size_t)w >= n) {
      errno = ENAMETOOLONG;
      return -1;
    }
    return create ? llm_mkdir_p(out, 0700) : 0;
  }
  errno = EINVAL;
  return -1;
}

int llm_file_exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int llm_create_private(const char *path, char *err, size_t n)
{
  char dir[4096];
  const char *slash = strrchr(path, '/');
  int fd, saved;
  if (slash && slash != path) {
    size_t len = (size_t)(slash - path);
    if (len >= sizeof dir) {
      snprintf(err, n, "path too long: %s", path);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(dir, path, len);
    dir[len] = '\0';
    if (llm_mkdir_p(dir, 0700) != 0) {
      saved = errno;
      snprintf(err, n, "cannot create the directory %s: %s", dir, strerror(saved));
      errno = saved;
      return -1;
    }
  }
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    saved = errno;
    snprintf(err, n, "cannot open %s: %s", path, strerror(saved));
    errno = saved;
    return -1;
  }
  close(fd);
  return 0;
}
