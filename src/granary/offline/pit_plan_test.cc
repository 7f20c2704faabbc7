#include "granary/offline/pit_plan.h"

#include <gtest/gtest.h>

#include "granary/offline/pit_stream.h"

namespace granary {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

// A source of `rows` rows of an int64 key and two timestamps (24 bytes a row, as the footers of
// such a Parquet file report them).
MatchPlanInputs Inputs(int64_t entity_rows, int64_t budget, int64_t rows) {
  MatchPlanInputs in;
  in.entity_rows = entity_rows;
  in.threads = 2;
  in.budget_bytes = budget;
  in.source_rows = rows;
  in.source_bytes = rows * 24;
  return in;
}

TEST(PlanMatch, StreamsWhenTheEntitySideFitsHoweverLargeTheSource) {
  // The seed's bay_demand: 5,000 bays' labels against 350 M telemetry rows (8.4 GB of keys and
  // times): the entity rows are what must be held, and they fit.
  const MatchPlan plan = PlanMatch(Inputs(5'000, 64 * kMiB, 350'400'000));
  EXPECT_EQ(plan.strategy, MatchStrategy::kStream);
  EXPECT_EQ(plan.ways, 1);
  EXPECT_EQ(plan.spill_bytes, 0);
  EXPECT_EQ(plan.state_bytes, StreamingMatcher::MemoryFor(5'000, 2));
  // The whole budget is the entity side's, not half of it.
  const int64_t exactly = StreamingMatcher::MemoryFor(1'000'000, 2);
  EXPECT_EQ(PlanMatch(Inputs(1'000'000, exactly, 10'000'000)).strategy, MatchStrategy::kStream);
  EXPECT_NE(PlanMatch(Inputs(1'000'000, exactly - 1, 10'000'000)).strategy, MatchStrategy::kStream);
}

TEST(PlanMatch, ReadsTheSourceOncePerGroupRatherThanSpillingItsKeysAndTimes) {
  // demand_prediction_v1 at the seed's scale: 3.65 M label rows, 350 M feature rows, a join
  // share of 128 MiB. It used to hold the source's keys and times and spill 8 GB of them; three
  // groups of entity rows stream within the share instead, reading the keys and times 3 times.
  const MatchPlanInputs in = Inputs(3'650'000, 128 * kMiB, 350'400'000);
  const MatchPlan plan = PlanMatch(in);
  EXPECT_EQ(plan.strategy, MatchStrategy::kPasses);
  EXPECT_EQ(plan.ways, 3);
  EXPECT_LE(plan.state_bytes, in.budget_bytes);
  EXPECT_EQ(plan.spill_bytes, 0);
  EXPECT_EQ(plan.state_bytes, StreamingMatcher::MemoryFor((3'650'000 + 2) / 3, 2));
}

TEST(PlanMatch, AHotKeyMakesMoreGroups) {
  // One key holds 40 % of the entity rows: its group cannot be split, so halves do not fit
  // where an even split would.
  MatchPlanInputs in = Inputs(1'000'000, StreamingMatcher::MemoryFor(600'000, 2), 50'000'000);
  EXPECT_EQ(PlanMatch(in).ways, 2);
  in.largest_group_rows = [](int ways) {
    return 400'000 + (1'000'000 - 400'000) / ways;  // the hot key plus its share of the rest
  };
  const MatchPlan plan = PlanMatch(in);
  EXPECT_EQ(plan.strategy, MatchStrategy::kPasses);
  EXPECT_EQ(plan.ways, 3);  // 400K + 200K = 600K rows in the largest group
  // A key larger than the budget on its own cannot be streamed in any number of groups.
  in.largest_group_rows = [](int) { return int64_t{900'000}; };
  EXPECT_EQ(PlanMatch(in).strategy, MatchStrategy::kPartition);
}

TEST(PlanMatch, HoldsTheSourceWhenItIsSmallerThanTheEntitySide) {
  // 10 M entity rows (880 MB to stream) against 100 K feature rows (6.4 MB held): sorting the
  // few feature rows beats any grouping of the entity rows.
  const MatchPlanInputs in = Inputs(10'000'000, 64 * kMiB, 100'000);
  const MatchPlan plan = PlanMatch(in);
  EXPECT_EQ(plan.strategy, MatchStrategy::kSortInMemory);
  EXPECT_EQ(plan.state_bytes, 100'000 * (24 + kMatchStateBytesPerRow));
  EXPECT_EQ(plan.spill_bytes, 0);
}

TEST(PlanMatch, PartitionsOnlyWhenReadingAgainForEveryGroupCostsMoreThanSpilling) {
  // 100 M entity rows (8.8 GB to stream) with a 64 MiB share: 132 groups. Re-reading 24 bytes
  // a row 131 more times costs far more than writing and reading back 32 bytes a row once.
  const MatchPlanInputs in = Inputs(100'000'000, 64 * kMiB, 200'000'000);
  const MatchPlan plan = PlanMatch(in);
  EXPECT_EQ(plan.strategy, MatchStrategy::kPartition);
  EXPECT_GE(plan.ways, 2);
  // Partitions of about a quarter of the budget each; what does not fit in half of it spills.
  const int64_t held = int64_t{200'000'000} * (24 + kMatchStateBytesPerRow);
  EXPECT_EQ(plan.ways, (held * 4 + in.budget_bytes - 1) / in.budget_bytes);
  EXPECT_EQ(plan.spill_bytes, int64_t{200'000'000} * 32 - in.budget_bytes / 2);
  // The same entity side against a source read in 3 passes at most is not spilled: with a
  // budget a third of the stream's, it is read three times.
  const MatchPlan passes =
      PlanMatch(Inputs(100'000'000, StreamingMatcher::MemoryFor(34'000'000, 2), 200'000'000));
  EXPECT_EQ(passes.strategy, MatchStrategy::kPasses);
  EXPECT_EQ(passes.ways, 3);
}

TEST(PlanMatch, ACsvSourceOfUnknownRowsIsBoundedByItsBytes) {
  // No footer: 80 MB of CSV hold at most 10 M rows (8 bytes each at least).
  MatchPlanInputs in;
  in.entity_rows = 2'000'000;
  in.threads = 1;
  in.budget_bytes = 64 * kMiB;
  in.source_rows = 0;
  in.source_bytes = 80'000'000;
  const MatchPlan plan = PlanMatch(in);
  EXPECT_EQ(plan.strategy, MatchStrategy::kPasses);
  EXPECT_EQ(plan.ways, 3);
  in.source_bytes = 800;  // 100 rows at most: held
  EXPECT_EQ(PlanMatch(in).strategy, MatchStrategy::kSortInMemory);
}

TEST(PlanMatch, TheSummarySaysWhatWasDecidedAndWhy) {
  MatchPlanInputs in = Inputs(5'000, 64 * kMiB, 350'400'000);
  EXPECT_EQ(PlanMatch(in).Describe(in),
            "matched streaming: 0.4 MiB of state for 5.00K entity rows, within the join's 64 MiB "
            "share of the memory budget");
  in = Inputs(3'650'000, 128 * kMiB, 350'400'000);
  EXPECT_EQ(PlanMatch(in).Describe(in),
            "streaming 3.65M entity rows takes 306 MiB, more than the join's 128 MiB share of the "
            "memory budget: matched in 3 groups of entity rows, reading the keys and times once "
            "per group (102 MiB of state each), nothing spilled");
  in = Inputs(10'000'000, 64 * kMiB, 100'000);
  EXPECT_EQ(PlanMatch(in).Describe(in),
            "streaming 10.0M entity rows takes 839 MiB, more than the join's 64 MiB share of the "
            "memory budget, but the source's keys and times take less (6.1 MiB): held and sorted "
            "in memory");
  in = Inputs(100'000'000, 64 * kMiB, 200'000'000);
  const std::string partitioned = PlanMatch(in).Describe(in);
  EXPECT_NE(partitioned.find("split into 763 partitions (about 6072 MiB to spill)"),
            std::string::npos)
      << partitioned;
}

}  // namespace
}  // namespace granary
