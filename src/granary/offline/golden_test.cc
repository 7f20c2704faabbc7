// Runs every golden point-in-time case under tests/golden/ (format: tests/golden/README.md).
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "granary/common/strings.h"
#include "granary/common/temp_dir.h"
#include "granary/testing/golden_case.h"

namespace granary::golden {
namespace {

const std::filesystem::path kGoldenDir = std::filesystem::path(GRANARY_SOURCE_DIR) / "tests/golden";

std::vector<std::string> CaseFiles() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    if (entry.path().extension() == ".test") out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Render(const TextTable& t) {
  std::string out = Join(t.columns, " | ") + "\n";
  for (const auto& row : t.rows) out += Join(row, " | ") + "\n";
  return out;
}

class GoldenCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenCaseTest, GivesTheExpectedRows) {
  auto parsed = ParseGoldenCase(kGoldenDir / GetParam());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  GoldenCase g = std::move(*parsed);
  SCOPED_TRACE(g.file + ": " + g.title);
  auto dir = TempDir::Make("granary-golden-").ValueOrDie();
  auto defs = MaterializeCase(&g, dir.path());
  ASSERT_TRUE(defs.ok()) << defs.status().ToString();
  RepoConfig config;
  config.root = dir.path();
  config.project = "golden";
  // Once with the default budget (the streaming match) and once with a tiny one (partitions,
  // spilling): both must give the same rows.
  for (int64_t budget : {g.request.memory_budget_bytes, int64_t{1}}) {
    HistoricalRequest request = g.request;
    request.memory_budget_bytes = budget;
    HistoricalStats stats;
    auto out = GetHistoricalFeatures(config, *defs, request, &stats);
    if (g.expect_error) {
      ASSERT_FALSE(out.ok()) << "expected an error containing '" << g.error_substring << "'";
      EXPECT_NE(out.status().message().find(g.error_substring), std::string::npos)
          << out.status().message();
      continue;
    }
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    auto actual = TableAsText(**out);
    ASSERT_TRUE(actual.ok()) << actual.status().ToString();
    auto expected = NormalizeExpected(g.expected, **out);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    EXPECT_EQ(Render(*actual), Render(*expected)) << "memory budget " << budget << " bytes";
    if (budget == 1) {
      for (const auto& v : stats.views) {
        if (v.join.scan.rows_returned > 0) {
          EXPECT_GT(v.join.partitions, 1) << v.name;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenCaseTest, ::testing::ValuesIn(CaseFiles()),
                         [](const auto& info) {
                           std::string name = info.param.substr(0, info.param.size() - 5);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace granary::golden
