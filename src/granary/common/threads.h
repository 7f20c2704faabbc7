// How many worker threads a parallel job uses. Thread-safe.
#pragma once

#include <algorithm>
#include <thread>

namespace granary {

// `requested` when positive, else one per core (at least one: hardware_concurrency may not know).
inline int ThreadCount(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace granary
