/* Small filesystem helpers shared by the engines: private directories and
 * the XDG base directories (https://specifications.freedesktop.org/basedir-spec/). */
#ifndef LLMRUN_FSUTIL_H
#define LLMRUN_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode for every directory it creates. 0, or -1 with errno. */
int llm_mkdir_p(const char *path, mode_t mode);

/* Writes "<base>/llmrun" to out, where base is $<env> when it is an
 * absolute path (the spec says relative values are ignored), else
 * $HOME/<fallback>. kind: "cache" | "data" | "state" | "config".
 * With create, makes the directory (0700). 0, or -1 with errno. */
int llm_xdg_dir(const char *kind, int create, char *out, size_t n);

/* Creates path 0600 (its missing directories 0700) unless it exists,
 * before sqlite opens it: sqlite would create it 0644 minus the umask and
 * gives its -wal and -shm files the database's mode. A symbolic link is
 * refused (O_NOFOLLOW). 0, or -1 with errno and a message in err. */
int llm_create_private(const char *path, char *err, size_t n);

/* 1 if path names an existing regular file. */
int llm_file_exists(const char *path);

#endif
