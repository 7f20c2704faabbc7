// How many worker threads a parallel job uses. Thread-safe.
#pragma once

#include <sched.h>

#include <algorithm>
#include <thread>

namespace granary {

// `requested` when positive, else one per core (at least one: hardware_concurrency may not know).
inline int ThreadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// The cores this process may run on (its CPU affinity: taskset, cpusets), at least one.
inline int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return ThreadCount(0);
}

}  // namespace granary
