/* Counts the attempts of each logical request, for the knob
 * x-sim-fault-attempts: N ("fail the first N attempts, then answer"), so a
 * client's retries can be tested against one request. Retries of one
 * logical request are recognised by their Idempotency-Key header (the
 * official SDKs send one per logical request and reuse it on retries),
 * else by an identical body. Entries unused for ten minutes are forgotten. */
#include <stdlib.h>
#include <string.h>

#include "sim_server.h"

#define SLOTS 4096
#define TTL (600 * SIM_NS)

typedef struct attempt {
  uint64_t key; /* 0: empty */
  int count;
  int64_t used;
} attempt;

struct sim_attempts {
  attempt slots[SLOTS];
  size_t n;
};

sim_attempts *sim_attempts_new(void) { return calloc(1, sizeof(sim_attempts)); }
void sim_attempts_free(sim_attempts *a) { free(a); }

void sim_attempts_clear(sim_attempts *a)
{
  memset(a, 0, sizeof *a);
}

static attempt *find(sim_attempts *a, uint64_t key)
{
  size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull) % SLOTS;
  while (a->slots[i].key && a->slots[i].key != key)
    i = (i + 1) % SLOTS;
  return &a->slots[i];
}

int sim_attempts_seen(sim_attempts *a, uint64_t key, int64_t now)
{
  attempt *e;
  key |= 1; /* never the empty key */
  e = find(a, key);
  if (!e->key) {
    if ((a->n + 1) * 2 > SLOTS) { /* half full: keep only the recent */
      attempt old[SLOTS];
      memcpy(old, a->slots, sizeof old);
      sim_attempts_clear(a);
      for (size_t i = 0; i < SLOTS; i++)
        if (old[i].key && now - old[i].used < TTL && (a->n + 1) * 4 <= SLOTS) {
          *find(a, old[i].key) = old[i];
          a->n++;
        }
      e = find(a, key);
    }
    e->key = key;
    e->count = 0;
    a->n++;
  } else if (now - e->used >= TTL) {
    e->count = 0;
  }
  e->used = now;
  return e->count++;
}
