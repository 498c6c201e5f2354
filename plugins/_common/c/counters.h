/* Guest-side batching of counter-add: a host call cost ~1 µs when this was written (now ~50 ns
 * with the host's name cache and bound counters), so counts are accumulated here and
 * flushed when a counter reaches `batch` or when a second has passed since the last flush
 * (the clock is read every 16th hook). batch 1 = exact, every bump is a host call. Names must live as
 * long as the instance (config strings or literals): they are keyed by pointer. */
#ifndef WEFT_COUNTERS_H
#define WEFT_COUNTERS_H

#include <stdint.h>

void counters_set_batch(uint32_t batch);
void counters_add(const char *name);
/* Call at the start of each hook: flushes everything once a second has passed. */
void counters_tick(void);

#endif
