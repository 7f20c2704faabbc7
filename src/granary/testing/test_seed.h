// Seeds of randomized tests: a new seed each run, so that the runs over time try more cases than
// one fixed seed would; GRANARY_TEST_SEED=<seed> replays the seed a failure printed.
//
//   const uint64_t seed = testing::TestSeed();
//   SCOPED_TRACE(testing::SeedTrace(seed));  // "seed 42 (rerun with GRANARY_TEST_SEED=42)"
//   std::mt19937_64 rng(seed);
//
// A test that runs several rounds draws one seed and uses seed + round in round `round`, each
// round tracing its own: GRANARY_TEST_SEED=<a failing round's seed> runs that round first.
// SCOPED_TRACE covers only the thread that declares it: a test that asserts on other threads
// declares it in each of them too.
//
// Header-only, for tests and benchmarks' tests (as testdata.h); thread-safe (reads the
// environment only).
#pragma once

#include <gtest/gtest.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>

namespace granary::testing {

// GRANARY_TEST_SEED when set, else a new seed from std::random_device. A value that is not a
// decimal number fails the test (and gives 0), so that a mistyped replay does not silently run
// another seed.
inline uint64_t TestSeed() {
  const char* env = std::getenv("GRANARY_TEST_SEED");
  if (env == nullptr || *env == '\0') {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  const std::string_view text(env);
  uint64_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (error != std::errc() || end != text.data() + text.size()) {
    ADD_FAILURE() << "GRANARY_TEST_SEED='" << text
                  << "' is not a seed: give the decimal number a failure printed";
    return 0;
  }
  return seed;
}

// What a failure prints with SCOPED_TRACE: the seed and how to replay it.
inline std::string SeedTrace(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (rerun with GRANARY_TEST_SEED=" + std::to_string(seed) +
         ")";
}

}  // namespace granary::testing
