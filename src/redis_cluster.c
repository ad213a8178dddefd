/* Redis Cluster for the Redis client (redis_client.h): the slot map, the
 * slot of a command, routing to a node's connection, MOVED and ASK.
 *
 * Why here and so: a cluster splits the keys over masters by slot
 * (CRC16 of the key's hash tag, mod 16384; llmrun's keys all carry one,
 * llm.redis.key, so one script's keys share a slot), and a node answers a
 * command for another node's slot with "MOVED slot host:port" (the slot
 * lives there now) or "ASK slot host:port" (it is migrating: ask there
 * once, after ASKING). The client learns it talks to a cluster from the
 * first such reply, so a single server is never sent anything new. It
 * then reads the slot map (CLUSTER SLOTS: answered by every version
 * since 3.0), keeps one connection per node (an llm_redis of its own,
 * with the URL's credentials, opened on first use), and reads the map
 * again after a MOVED or a node's failure, at most every REFRESH_EVERY
 * seconds; between two reads a MOVED's own slot is updated at once.
 *
 * Specification: https://redis.io/docs/reference/cluster-spec/ (key
 * distribution, hash tags, redirection and resharding). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_client_impl.h"

#define SLOTS 16384
#define NO_NODE 0xFFFF
#define REFRESH_EVERY 0.5  /* seconds between two reads of the slot map, at least */
#define REFRESH_TIMEOUT 5.0

typedef struct node {
  char host[256];
  int port;
  llm_redis *conn; /* opened on first use */
} node;

struct llm_rcluster {
  uint16_t slots[SLOTS]; /* node index, or NO_NODE: ask the client's own server */
  node *nodes[LLM_RCLUSTER_MAX_NODES];
  size_t n;
  int refreshing;
  double refreshed_at;
  char refresh_host[256]; /* the node asked, for entries without an address */
  unsigned long long moved, asks, refreshes;
};

/* ---- slots ----------------------------------------------------------------------- */

/* CRC16-CCITT (XModem): polynomial 0x1021, initial 0, as the spec says. */
static unsigned crc16(const char *p, size_t len)
{
  unsigned crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (unsigned)(unsigned char)p[i] << 8;
    for (int b = 0; b < 8; b++)
      crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
  }
  return crc;
}

unsigned llm_redis_key_slot(const char *key, size_t len)
{
  const char *open = memchr(key, '{', len);
  if (open) {
    size_t from = (size_t)(open - key) + 1;
    const char *close = memchr(open + 1, '}', len - from);
    if (close && close > open + 1)
      return crc16(open + 1, (size_t)(close - open - 1)) & (SLOTS - 1);
  }
  return crc16(key, len) & (SLOTS - 1);
}

static int is(const char *arg, size_t len, const char *word)
{
  return strlen(word) == len && strncasecmp(arg, word, len) == 0;
}

/* SCAN's MATCH pattern names one slot when its hash tag is plain text
 * ("llmrun:{cache:ns}:*"): every key it can match is in that slot. */
static int pattern_slot(const char *p, size_t len)
{
  const char *open = memchr(p, '{', len), *close;
  if (!open)
    return -1;
  close = memchr(open + 1, '}', len - (size_t)(open + 1 - p));
  if (!close || close == open + 1)
    return -1;
  for (const char *q = p; q < close; q++)
    if (strchr("*?[\\", *q))
      return -1; /* a glob before the tag: the tag itself may differ */
  return (int)llm_redis_key_slot(p, len);
}

int llm_redis_command_slot(int argc, const char **argv, const size_t *lens)
{
  static const char *const keyless[] = {
    "PING", "ECHO", "INFO", "TIME", "SCRIPT", "FUNCTION", "CLUSTER", "CONFIG", "CLIENT", "AUTH",
    "SELECT", "HELLO", "COMMAND", "ACL", "DEBUG", "FLUSHDB", "FLUSHALL", "DBSIZE", "KEYS", "WAIT",
    "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "MULTI", "EXEC", "DISCARD", "ASKING", "READONLY", NULL};
  const char *cmd = argv[0];
  size_t n = lens[0];
  if (argc < 2)
    return -1;
  for (int i = 0; keyless[i]; i++)
    if (is(cmd, n, keyless[i]))
      return -1;
  if (is(cmd, n, "EVAL") || is(cmd, n, "EVALSHA") || is(cmd, n, "EVAL_RO") ||
      is(cmd, n, "EVALSHA_RO") || is(cmd, n, "FCALL") || is(cmd, n, "FCALL_RO")) {
    if (argc < 4 || lens[2] == 0 || argv[2][0] < '1' || argv[2][0] > '9')
      return -1; /* no keys */
    return (int)llm_redis_key_slot(argv[3], lens[3]);
  }
  if (is(cmd, n, "XREAD") || is(cmd, n, "XREADGROUP")) {
    for (int i = 1; i + 1 < argc; i++)
      if (is(argv[i], lens[i], "STREAMS"))
        return (int)llm_redis_key_slot(argv[i + 1], lens[i + 1]);
    return -1;
  }
  if (is(cmd, n, "SCAN")) {
    for (int i = 2; i + 1 < argc; i++)
      if (is(argv[i], lens[i], "MATCH"))
        return pattern_slot(argv[i + 1], lens[i + 1]);
    return -1;
  }
  /* a subcommand first, then the key: XGROUP CREATE key ..., XINFO STREAM key */
  if (is(cmd, n, "XGROUP") || is(cmd, n, "XINFO") || is(cmd, n, "OBJECT") || is(cmd, n, "MEMORY"))
    return argc > 2 ? (int)llm_redis_key_slot(argv[2], lens[2]) : -1;
  return (int)llm_redis_key_slot(argv[1], lens[1]);
}

/* ---- nodes ----------------------------------------------------------------------- */

static int node_index(llm_rcluster *cl, const char *host, int port)
{
  size_t i;
  for (i = 0; i < cl->n; i++)
    if (cl->nodes[i]->port == port && strcmp(cl->nodes[i]->host, host) == 0)
      return (int)i;
  if (cl->n == LLM_RCLUSTER_MAX_NODES || !(cl->nodes[i] = calloc(1, sizeof(node))))
    return -1;
  snprintf(cl->nodes[i]->host, sizeof cl->nodes[i]->host, "%s", host);
  cl->nodes[i]->port = port;
  cl->n++;
  return (int)i;
}

static llm_redis *node_conn(llm_redis *top, node *nd)
{
  if (!nd->conn)
    nd->conn = llm_rconn_new_node(top, nd->host, nd->port);
  return nd->conn;
}

/* For a command without a key, or one whose slot is not mapped: the
 * client's own server, or while it is down any node that is not. */
static llm_redis *any_node(llm_redis *top)
{
  llm_rcluster *cl = top->cluster;
  if (llm_rconn_usable(top))
    return top;
  for (size_t i = 0; i < cl->n; i++) {
    llm_redis *c = node_conn(top, cl->nodes[i]);
    if (c && llm_rconn_usable(c))
      return c;
  }
  return top;
}

llm_redis *llm_rcluster_route(llm_redis *r, int slot)
{
  llm_rcluster *cl = r->cluster;
  if (!cl)
    return r;
  if (slot >= 0 && cl->slots[slot] != NO_NODE) {
    llm_redis *c = node_conn(r, cl->nodes[cl->slots[slot]]);
    if (c)
      return c;
  }
  return any_node(r);
}

/* ---- the slot map ------------------------------------------------------------------ */

static llm_rcluster *cluster_new(void)
{
  llm_rcluster *cl = calloc(1, sizeof *cl);
  if (cl)
    memset(cl->slots, 0xFF, sizeof cl->slots); /* NO_NODE */
  return cl;
}

/* CLUSTER SLOTS: [[first, last, [host, port, id...], replicas...]...]. */
static void load_slots(llm_rcluster *cl, const redisReply *rep)
{
  uint16_t map[SLOTS];
  int ranges = 0;
  memset(map, 0xFF, sizeof map);
  for (size_t i = 0; i < rep->elements; i++) {
    const redisReply *e = rep->element[i], *m;
    long long first, last;
    const char *host;
    int idx;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
      continue;
    m = e->element[2];
    first = e->element[0]->integer;
    last = e->element[1]->integer;
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING ||
        first < 0 || last >= SLOTS || first > last)
      continue;
    host = m->element[0]->str;
    if (!host[0] || strcmp(host, "?") == 0) /* no address known: the node we asked */
      host = cl->refresh_host;
    idx = node_index(cl, host, (int)m->element[1]->integer);
    if (idx < 0)
      continue;
    for (long long s = first; s <= last; s++)
      map[s] = (uint16_t)idx;
    ranges++;
  }
  if (ranges > 0) {
    memcpy(cl->slots, map, sizeof map);
    cl->refreshes++;
  }
}

static void slots_done(void *ud, const redisReply *reply, int status, const char *message)
{
  llm_redis *top = ud;
  (void)message;
  if (top->closing || !top->cluster)
    return;
  top->cluster->refreshing = 0;
  if (status == LLM_REDIS_OK && reply->type == REDIS_REPLY_ARRAY)
    load_slots(top->cluster, reply);
}

/* Reads the slot map again, unless it is being read or was just read. */
static void refresh(llm_redis *top)
{
  static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
  llm_rcluster *cl = top->cluster;
  llm_redis *conn;
  llm_redis_cmd *c;
  char err[400], *buf;
  double now = llm_now();
  if (!cl || top->closing || cl->refreshing || now - cl->refreshed_at < REFRESH_EVERY)
    return;
  conn = any_node(top);
  if (llm_rconn_ensure(conn, err, sizeof err) != 0 || !(buf = malloc(sizeof cmd - 1)))
    return;
  memcpy(buf, cmd, sizeof cmd - 1);
  if (!(c = llm_rconn_cmd_new(top, buf, sizeof cmd - 1, slots_done, top)))
    return;
  snprintf(cl->refresh_host, sizeof cl->refresh_host, "%s", conn->url.host);
  if (llm_rconn_dispatch(conn, c, REFRESH_TIMEOUT) != 0) {
    llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, "not sent");
    return;
  }
  cl->refreshing = 1;
  cl->refreshed_at = now;
}

void llm_rcluster_node_failed(llm_redis *top)
{
  refresh(top);
}

/* ---- redirections ---------------------------------------------------------------------- */

/* "MOVED 3999 127.0.0.1:6381" or "ASK 3999 host:port" (host may be empty:
 * the node that answered). 1 when reply is one. */
static int parse_redirect(const redisReply *reply, int *ask, int *slot, char *host, size_t hostlen,
                          int *port)
{
  const char *s = reply->str, *sp, *colon;
  char *end;
  long v;
  if (reply->len > 6 && memcmp(s, "MOVED ", 6) == 0)
    *ask = 0, s += 6;
  else if (reply->len > 4 && memcmp(s, "ASK ", 4) == 0)
    *ask = 1, s += 4;
  else
    return 0;
  v = strtol(s, &end, 10);
  if (end == s || *end != ' ' || v < 0 || v >= SLOTS)
    return 0;
  *slot = (int)v;
  sp = end + 1;
  colon = strrchr(sp, ':');
  if (!colon || (size_t)(colon - sp) >= hostlen)
    return 0;
  memcpy(host, sp, (size_t)(colon - sp));
  host[colon - sp] = '\0';
  v = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || v <= 0 || v > 65535)
    return 0;
  *port = (int)v;
  return 1;
}

int llm_rcluster_redirect(llm_redis_cmd *c, const redisReply *reply)
{
  static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
  llm_redis *top = c->top, *to;
  llm_rcluster *cl;
  char host[256], msg[600];
  int ask, slot, port, idx;
  if (top->parent || top->closing || !parse_redirect(reply, &ask, &slot, host, sizeof host, &port))
    return 0; /* a node's own handshake is never redirected */
  if (!host[0])
    snprintf(host, sizeof host, "%s", c->r->url.host);
  if (!top->cluster && !(top->cluster = cluster_new()))
    return 0;
  cl = top->cluster;
  if (c->redirects >= LLM_REDIS_MAX_REDIRECTS) {
    snprintf(msg, sizeof msg, "redis cluster at %.320s: still redirected after %d tries (%.200s)",
             top->where, c->redirects, reply->str);
    llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, msg);
    return 1;
  }
  idx = node_index(cl, host, port);
  if (idx < 0 || !(to = node_conn(top, cl->nodes[idx])))
    return 0;
  c->redirects++;
  if (ask) {
    cl->asks++;
  } else {
    cl->moved++;
    cl->slots[slot] = (uint16_t)idx;
    refresh(top);
  }
  if (llm_rconn_ensure(to, msg, sizeof msg) != 0) {
    llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, msg);
    return 1;
  }
  if (ask) {
    /* ASKING and the command, back to back on the same connection */
    char *buf = malloc(sizeof asking - 1);
    llm_redis_cmd *a = buf ? llm_rconn_cmd_new(top, buf, sizeof asking - 1, NULL, NULL)
                           : NULL;
    if (buf && a)
      memcpy(a->buf, asking, sizeof asking - 1);
    if (!a || llm_rconn_dispatch(to, a, 0) != 0) {
      if (a)
        llm_rconn_end(a, NULL, LLM_REDIS_ETRANSPORT, "not sent");
      snprintf(msg, sizeof msg, "redis at %.320s: cannot send ASKING", to->where);
      llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, msg);
      return 1;
    }
  }
  if (llm_rconn_dispatch(to, c, 0) != 0) {
    snprintf(msg, sizeof msg, "redis at %.320s: the connection is closing", to->where);
    llm_rconn_end(c, NULL, LLM_REDIS_ETRANSPORT, msg);
  }
  return 1;
}

/* ---- the client's view ------------------------------------------------------------------ */

size_t llm_rcluster_nodes(const llm_redis *r, llm_redis **out, size_t max)
{
  size_t k = 0;
  if (!r->cluster)
    return 0;
  for (size_t i = 0; i < r->cluster->n && k < max; i++)
    if (r->cluster->nodes[i]->conn)
      out[k++] = r->cluster->nodes[i]->conn;
  return k;
}

size_t llm_redis_shard_slots(const llm_redis *r, int *slots, size_t max)
{
  const llm_rcluster *cl = r->cluster;
  int seen[LLM_RCLUSTER_MAX_NODES] = {0};
  size_t k = 0;
  if (!cl)
    return 0;
  for (int s = 0; s < SLOTS && k < max; s++) {
    unsigned idx = cl->slots[s];
    if (idx != NO_NODE && !seen[idx]) {
      seen[idx] = 1;
      slots[k++] = s;
    }
  }
  return k;
}

void llm_rcluster_stats(const llm_redis *r, llm_redis_stats *st)
{
  llm_rcluster *cl = r->cluster;
  if (!cl)
    return;
  for (size_t i = 0; i < cl->n; i++) {
    const llm_redis *c = cl->nodes[i]->conn;
    if (!c)
      continue;
    st->commands += c->stats.commands;
    st->replies += c->stats.replies;
    st->failed += c->stats.failed;
    st->timeouts += c->stats.timeouts;
    st->refused += c->stats.refused;
    st->connects += c->stats.connects;
    st->disconnects += c->stats.disconnects;
  }
  st->moved = cl->moved;
  st->asks = cl->asks;
  st->map_refreshes = cl->refreshes;
  st->nodes = cl->n;
}

void llm_rcluster_free(llm_redis *r)
{
  llm_rcluster *cl = r->cluster;
  if (!cl)
    return;
  /* r->closing is set: callbacks that run now leave the map alone */
  for (size_t i = 0; i < cl->n; i++) {
    llm_redis_free(cl->nodes[i]->conn);
    free(cl->nodes[i]);
  }
  r->cluster = NULL;
  free(cl);
}
