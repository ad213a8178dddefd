/* An asynchronous Redis client driven by the event loop (loop.h).
 *
 * Why: several llmrun processes share a cache, budgets and experiment
 * queues through Redis, and a Redis round trip must never stall the
 * thousands of calls one process has in flight. libhiredis's async
 * context does the protocol; its event hooks are pointed at our epoll
 * loop (llm_loop_watch), so replies are read when the socket is ready
 * and no call ever blocks the loop thread.
 *
 * The client connects on first use and again after a failure, with
 * exponential backoff: while it waits to retry, commands fail at once
 * ("unreachable ... next try in 0.4 s") instead of queueing forever, so a
 * Redis that is down costs a caller nothing but the error. AUTH and
 * SELECT from the URL go first on every new connection; a host name is
 * resolved on a thread (redis_resolve.h), commands queueing meanwhile. Commands given
 * while a connection is open are pipelined: they are written together on
 * the loop's next turn and answered in order. A command that times out
 * fails and resets its connection (a server that does not answer one
 * command in time will not answer the next ones either).
 *
 * Redis Cluster: the URL may name any node. The first MOVED or ASK reply
 * shows the server is a cluster node; the client then reads the slot map
 * (CLUSTER SLOTS), sends each command to the node that holds its first
 * key's slot (one more connection per node, opened on first use),
 * follows MOVED (updating the map, and reading it again) and ASK (ASKING,
 * then the command, on the named node), at most LLM_REDIS_MAX_REDIRECTS
 * times a command. Nothing changes for a server that is not a cluster: it
 * never redirects, so the client never sends it anything more.
 *
 * No lua.h: the binding (lmod_redis.c) turns replies into Lua values. */
#ifndef LLMRUN_REDIS_CLIENT_H
#define LLMRUN_REDIS_CLIENT_H

#include <stddef.h>

#include "loop.h"

struct redisReply;

/* Where a client connects, from a redis:// or unix:// URL. */
typedef struct llm_redis_url {
  char host[256];     /* name or address; "" for a unix socket */
  int port;           /* 6379 unless given */
  char socket[256];   /* unix socket path, or "" */
  char user[128];     /* ACL user for AUTH, or "" */
  char password[256]; /* "" when none */
  int db;             /* SELECT db; 0 by default */
} llm_redis_url;

/* Parses redis://[[user]:password@]host[:port][/db] (IPv6 hosts in
 * brackets, %XX escapes in user and password) or unix:///path[?db=N].
 * 0, or -1 with a message in err. */
int llm_redis_parse_url(const char *url, llm_redis_url *out, char *err, size_t errlen);
/* The URL without credentials, for messages ("redis://127.0.0.1:6379/0"). */
void llm_redis_url_display(const llm_redis_url *u, char *buf, size_t len);

typedef struct llm_redis llm_redis;
typedef struct llm_redis_cmd llm_redis_cmd;

/* How a command ended. LLM_REDIS_OK comes with the reply (which may be a
 * Redis error reply: REDIS_REPLY_ERROR); the others with a message. */
enum { LLM_REDIS_OK = 0, LLM_REDIS_ETRANSPORT = 1, LLM_REDIS_ETIMEOUT = 2 };

/* Called once per command from the loop (never from inside
 * llm_redis_command). reply is valid only during the call. */
typedef void (*llm_redis_done_fn)(void *ud, const struct redisReply *reply, int status,
                                  const char *message);

typedef struct llm_redis_stats {
  unsigned long long commands;    /* handed to a connection */
  unsigned long long replies;     /* answered (error replies included) */
  unsigned long long failed;      /* ended by a transport failure */
  unsigned long long timeouts;
  unsigned long long refused;     /* failed at once: unreachable, backoff */
  unsigned long long connects;    /* connections established */
  unsigned long long disconnects; /* connections lost or reset */
  /* Redis Cluster (0 for a single server) */
  unsigned long long moved;          /* MOVED replies followed */
  unsigned long long asks;           /* ASK replies followed */
  unsigned long long map_refreshes;  /* slot maps read (CLUSTER SLOTS answered) */
  unsigned long long nodes;          /* nodes known */
} llm_redis_stats;

/* Redirections one command follows before it fails. */
#define LLM_REDIS_MAX_REDIRECTS 5
/* Redis Cluster's slot of a key: CRC16 of its hash tag (the part between
 * the first { and the next }, when not empty) or of the whole key, mod 16384. */
unsigned llm_redis_key_slot(const char *key, size_t len);
/* The slot a command goes to by its first key, or -1 for a command
 * without keys (EVAL/EVALSHA: the first key after numkeys; XREAD and
 * XREADGROUP: the first stream after STREAMS; XGROUP, XINFO, OBJECT,
 * MEMORY: the key after the subcommand; SCAN: the hash tag of its MATCH
 * pattern, when it has one). */
int llm_redis_command_slot(int argc, const char **argv, const size_t *lens);

/* A client for url; nothing happens until the first command.
 * connect_timeout: seconds (<= 0: 2). NULL when out of memory. */
llm_redis *llm_redis_new(llm_loop *loop, const llm_redis_url *url, double connect_timeout);
/* Closes the connection: commands still pending end with
 * LLM_REDIS_ETRANSPORT ("client closed"); abandoned ones just go. */
void llm_redis_free(llm_redis *r);

/* Sends one command (argv with byte lengths). timeout: seconds, <= 0 for
 * none. Returns 0 (done() will be called once, later, unless the command
 * is abandoned) with *out set when out is not NULL; or -1 with a message
 * in err when it cannot be sent now (unreachable, backing off, hiredis
 * missing), in which case done() is never called. */
int llm_redis_command(llm_redis *r, int argc, const char **argv, const size_t *lens,
                      double timeout, llm_redis_done_fn done, void *ud, llm_redis_cmd **out,
                      char *err, size_t errlen);
/* As llm_redis_command, sent to the cluster node that holds slot whatever
 * the command's keys (a SCAN of each node: llm_redis_shard_slots); on a
 * single server the same as llm_redis_command. */
int llm_redis_command_at(llm_redis *r, int slot, int argc, const char **argv, const size_t *lens,
                         double timeout, llm_redis_done_fn done, void *ud, llm_redis_cmd **out,
                         char *err, size_t errlen);
/* One slot of each cluster node that holds slots (to reach every master),
 * at most max; 0 for a single server. */
size_t llm_redis_shard_slots(const llm_redis *r, int *slots, size_t max);
/* Writes what is queued now instead of on the loop's next turn, so a
 * write given without waiting leaves even if the caller then blocks.
 * Runs no callback of a command still being written; a failure to write
 * ends the connection as usual. Never call it from a done() callback. */
void llm_redis_flush(llm_redis *r);
/* The caller no longer wants the answer (its task was cancelled): done()
 * will not be called. The command itself may still run on the server. */
void llm_redis_cmd_abandon(llm_redis_cmd *c);

/* Sends the command every interval seconds while the client lives,
 * answers ignored (keeping a lock or a claim alive). NULL when out of
 * memory. A failed send is retried at the next tick. */
typedef struct llm_redis_every llm_redis_every;
llm_redis_every *llm_redis_every_start(llm_redis *r, double interval, int argc, const char **argv,
                                       const size_t *lens);
void llm_redis_every_stop(llm_redis_every *e);

/* Blocks (poll, not the loop) until every pending command is answered or
 * timeout seconds pass; for the end of a run, so that writes given
 * without waiting (a cache store, a budget settlement) reach the server.
 * Returns the commands still pending. */
size_t llm_redis_drain(llm_redis *r, double timeout);

/* Commands given to the server and not answered yet. */
size_t llm_redis_pending(const llm_redis *r);
int llm_redis_connected(const llm_redis *r);
/* The last connection failure, or "" (for messages). */
const char *llm_redis_last_error(const llm_redis *r);
const char *llm_redis_where(const llm_redis *r);
/* Counts over the client's connections (its nodes' too). */
void llm_redis_get_stats(const llm_redis *r, llm_redis_stats *out);
/* Whether the server turned out to be a Redis Cluster node. */
int llm_redis_is_cluster(const llm_redis *r);

/* Backoff bounds between connection attempts, in seconds (tests shorten
 * them). Defaults: 0.05 doubling to 2. */
void llm_redis_set_backoff(llm_redis *r, double min_s, double max_s);

#endif
