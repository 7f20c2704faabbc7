// The shared test corpora (Parquet, Delta and CSV files written by other tools, real parking
// data): where they are, and skipping a test with a message that names what is missing when they
// are not there (a fresh clone has no ../shared; see the README's "Test data").
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace granary::testing {

// The folder of the shared corpora: $GRANARY_TESTDATA_DIR when set (also to point the tests at a
// missing folder and check that they skip), else ../shared/testdata beside the checkout.
inline std::filesystem::path TestDataDir() {
  const char* env = std::getenv("GRANARY_TESTDATA_DIR");
  if (env != nullptr && *env != '\0') return std::filesystem::path(env);
  return std::filesystem::path(GRANARY_TESTDATA_DIR);
}

// Why a test that needs `relative` (a file or folder under TestDataDir()) cannot run, or "" when
// it is there.
inline std::string MissingTestData(const std::string& relative) {
  const std::filesystem::path path = TestDataDir() / relative;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return "";
  return "needs the shared test corpora: " + path.string() +
         " is missing (the corpora live in ../shared/testdata beside the checkout, see the "
         "README's \"Test data\"; set GRANARY_TESTDATA_DIR to use another folder)";
}

}  // namespace granary::testing

// Skips the current test (GTEST_SKIP, so it shows as skipped with the message) when `relative`
// is not under the shared corpora. Use at the top of a TEST body or in SetUp().
#define GRANARY_REQUIRE_TESTDATA(relative)                                              \
  do {                                                                                  \
    const std::string granary_missing_ = ::granary::testing::MissingTestData(relative); \
    if (!granary_missing_.empty()) GTEST_SKIP() << granary_missing_;                    \
  } while (0)
