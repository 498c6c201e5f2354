#include "counters.h"
#include "weft_filter.h"

#define SLOTS 256u
#define FLUSH_NS 1000000000ull

typedef struct {
  const char *name;
  uint32_t pending;
} slot;

static slot table[SLOTS];
static uint32_t batch = 32;
static uint64_t last_flush_ns;
static uint32_t pending_total;

void counters_set_batch(uint32_t b) { batch = b == 0 ? 1 : b; }

static void flush_all(void) {
  for (uint32_t i = 0; i < SLOTS; i++)
    if (table[i].name != 0 && table[i].pending != 0) {
      weft_counter_add(table[i].name, table[i].pending);
      table[i].pending = 0;
    }
  pending_total = 0;
}

void counters_tick(void) {
  static uint32_t calls;
  /* Look at the clock every 16th hook only: it is a host call too. */
  if (pending_total == 0 || (++calls & 15u) != 0) return;
  uint64_t now = weft_monotonic_ns();
  if (last_flush_ns == 0) last_flush_ns = now;
  if (now - last_flush_ns >= FLUSH_NS) {
    flush_all();
    last_flush_ns = now;
  }
}

void counters_add(const char *name) {
  if (batch <= 1) {
    weft_counter_add(name, 1);
    return;
  }
  uint32_t h = (uint32_t)(((uintptr_t)name >> 3) * 2654435761u) & (SLOTS - 1);
  for (uint32_t probe = 0; probe < SLOTS; probe++, h = (h + 1) & (SLOTS - 1)) {
    slot *s = &table[h];
    if (s->name == 0) s->name = name;
    if (s->name != name) continue;
    pending_total++;
    if (++s->pending >= batch) {
      weft_counter_add(name, s->pending);
      pending_total -= s->pending;
      s->pending = 0;
    }
    return;
  }
  weft_counter_add(name, 1); /* table full: unbatched */
}
