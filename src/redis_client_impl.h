/* The Redis client's insides, shared by its two files: redis_client.c
 * (one connection: connecting, sending, replies, timeouts) and
 * redis_cluster.c (Redis Cluster: the slot map, routing a command to its
 * node's connection, following MOVED and ASK). Nothing else includes it.
 *
 * A client (what llm_redis_new returns) is a connection to the URL's
 * server. When that server turns out to be a cluster node (a MOVED or
 * ASK reply), the client grows a slot map and one more llm_redis per
 * node, opened on first use; commands then go to their key's node. */
#ifndef LLMRUN_REDIS_CLIENT_IMPL_H
#define LLMRUN_REDIS_CLIENT_IMPL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis_client.h"
#include "redis_resolve.h"

/* Nodes a client keeps a connection to, at most. */
#define LLM_RCLUSTER_MAX_NODES 64

typedef struct llm_rcluster llm_rcluster;

struct llm_redis_cmd {
  llm_redis *r;   /* the connection it was sent on (or waits for) */
  llm_redis *top; /* the client it was given to (routes redirections) */
  llm_redis_done_fn done; /* NULL once abandoned or answered */
  void *ud;
  llm_timer *timer;
  /* its wire form, kept until the answer: a redirected command is sent
   * again, and one waiting for a host name is sent later */
  char *buf;
  size_t len;
  int redirects; /* MOVED or ASK followed so far */
  llm_redis_cmd *next;
};

struct llm_redis_every {
  llm_redis *r;
  char *cmd; /* argv, formatted once */
  size_t len;
  int slot; /* its key's cluster slot, or -1 */
  double interval;
  llm_timer *timer;
  llm_redis_every *next;
};

struct llm_redis {
  llm_loop *loop;
  llm_redis_url url;
  char where[320];
  double connect_timeout;
  redisAsyncContext *ac; /* NULL while there is no connection */
  unsigned long gen;     /* counts connections, to notice one replaced */
  int fd;                /* the descriptor the loop watches for ac, or -1 */
  unsigned events;       /* LLM_IO_* bits hiredis wants */
  llm_timer *connect_timer;
  double retry_at;   /* no new connection before this (llm_now) */
  double backoff, backoff_min, backoff_max;
  char last_error[256];
  char reset_reason[256]; /* why we closed a connection ourselves */
  size_t pending;         /* commands hiredis holds a callback for */
  llm_redis_every *repeats;
  llm_redis_stats stats;
  int closing;
  llm_resolve *resolving;          /* the host name being resolved, or NULL */
  char address[64];                /* its last address */
  double resolved_at;
  llm_redis_cmd *queue, *queue_tail; /* commands waiting for that */
  size_t queued;
  /* Redis Cluster */
  llm_redis *parent;     /* a node's connection: the client it serves; else NULL */
  llm_rcluster *cluster; /* the slot map, once the server said it is a cluster */
};

/* ---- redis_client.c, for redis_cluster.c ---- */

/* A command of top's carrying buf (taken over: freed with the command).
 * NULL when out of memory (buf freed). */
llm_redis_cmd *llm_rconn_cmd_new(llm_redis *top, char *buf, size_t len, llm_redis_done_fn done,
                                 void *ud);
/* Sends c on r's connection, or queues it while r resolves its host name
 * (llm_rconn_ensure first); timeout > 0 arms c's timer. 0, or -1 (c
 * untouched). */
int llm_rconn_dispatch(llm_redis *r, llm_redis_cmd *c, double timeout);
/* A connection to send on (see redis_client.c). 0, or -1 with a message. */
int llm_rconn_ensure(llm_redis *r, char *err, size_t errlen);
/* Whether r may be sent to now without waiting out a backoff. */
int llm_rconn_usable(const llm_redis *r);
/* Ends c (its done() once) and frees it. */
void llm_rconn_end(llm_redis_cmd *c, const redisReply *reply, int status, const char *message);
/* A connection for a cluster node of top's: top's URL (credentials, db)
 * with host and port replaced. NULL when out of memory. */
llm_redis *llm_rconn_new_node(llm_redis *top, const char *host, int port);

/* ---- redis_cluster.c ---- */

/* The connection a command for slot (-1: no key) goes to: r itself until
 * r is known to be a cluster. */
llm_redis *llm_rcluster_route(llm_redis *r, int slot);
/* A MOVED or ASK reply to c: sends c again where it says (ASKING first
 * for ASK) and returns 1, c no longer the caller's; or ends c when the
 * redirections run out or the node is unreachable (also 1). 0 for any
 * other reply. */
int llm_rcluster_redirect(llm_redis_cmd *c, const redisReply *reply);
/* A node's connection failed: read the slot map again soon (a replica
 * may have taken over). */
void llm_rcluster_node_failed(llm_redis *top);
/* The node connections (not r itself), for drain, flush and statistics. */
size_t llm_rcluster_nodes(const llm_redis *r, llm_redis **out, size_t max);
void llm_rcluster_stats(const llm_redis *r, llm_redis_stats *st);
void llm_rcluster_free(llm_redis *r);

#endif
