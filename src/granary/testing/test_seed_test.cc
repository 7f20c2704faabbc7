// TestSeed: GRANARY_TEST_SEED replays a seed; a mistyped one fails the test instead of running
// another seed.
#include "granary/testing/test_seed.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <optional>
#include <string>

namespace granary::testing {
namespace {

// Sets GRANARY_TEST_SEED for its scope and puts back what was there.
class ScopedSeedVariable {
 public:
  explicit ScopedSeedVariable(const char* value) {
    if (const char* old = std::getenv("GRANARY_TEST_SEED")) old_ = old;
    if (value == nullptr) {
      ::unsetenv("GRANARY_TEST_SEED");
    } else {
      ::setenv("GRANARY_TEST_SEED", value, 1);
    }
  }
  ~ScopedSeedVariable() {
    if (old_) {
      ::setenv("GRANARY_TEST_SEED", old_->c_str(), 1);
    } else {
      ::unsetenv("GRANARY_TEST_SEED");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(TestSeed, TheVariableReplaysASeed) {
  ScopedSeedVariable variable("18446744073709551615");
  EXPECT_EQ(TestSeed(), 18446744073709551615ull);
  EXPECT_EQ(SeedTrace(42), "seed 42 (rerun with GRANARY_TEST_SEED=42)");
}

TEST(TestSeed, WithoutTheVariableEachCallDrawsANewSeed) {
  ScopedSeedVariable variable(nullptr);
  // Two 64-bit draws from the device agree once in 2^64.
  EXPECT_NE(TestSeed(), TestSeed());
}

TEST(TestSeed, AMistypedSeedFailsTheTest) {
  ScopedSeedVariable variable("12ab");
  EXPECT_NONFATAL_FAILURE(TestSeed(), "GRANARY_TEST_SEED='12ab' is not a seed");
  ScopedSeedVariable negative("-1");
  EXPECT_NONFATAL_FAILURE(TestSeed(), "GRANARY_TEST_SEED='-1' is not a seed");
}

}  // namespace
}  // namespace granary::testing
