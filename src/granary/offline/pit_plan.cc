#include "granary/offline/pit_plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/common/progress.h"
#include "granary/offline/pit_stream.h"

namespace granary {
namespace {

// In-memory bytes of a row's keys and times when the source does not say (CSV): an 8-byte key
// and two timestamps.
constexpr int64_t kDefaultKeyTimeBytes = 24;

std::string Mib(int64_t bytes) {
  const double mib = static_cast<double>(bytes) / (1 << 20);
  return mib < 10 ? fmt::format("{:.1f} MiB", mib) : fmt::format("{:.0f} MiB", mib);
}

}  // namespace

MatchPlan PlanMatch(const MatchPlanInputs& in) {
  const int64_t budget = std::max<int64_t>(in.budget_bytes, 1);
  const int threads = std::max(1, in.threads);
  MatchPlan plan;
  plan.state_bytes = StreamingMatcher::MemoryFor(in.entity_rows, threads);
  if (plan.state_bytes <= budget) return plan;  // kStream

  // The source's keys and times, held: known from Parquet footers; for CSV bounded by its bytes.
  const bool rows_known = in.source_rows > 0;
  const int64_t rows = rows_known ? in.source_rows : in.source_bytes / 8;
  const int64_t row_bytes = rows_known ? in.source_bytes / in.source_rows : kDefaultKeyTimeBytes;
  const int64_t held = rows * (row_bytes + kMatchStateBytesPerRow);
  if (held <= budget) {
    plan.strategy = MatchStrategy::kSortInMemory;
    plan.state_bytes = held;
    return plan;
  }

  // Groups of entity rows that stream within the budget, if a few reads of the source do it.
  auto largest = [&](int ways) {
    return in.largest_group_rows ? in.largest_group_rows(ways) : (in.entity_rows + ways - 1) / ways;
  };
  const int64_t spill_bytes = rows * (row_bytes + 8);  // keys, times and a read position
  const int64_t reread_bytes = rows_known ? in.source_bytes : rows * kDefaultKeyTimeBytes;
  for (int ways = 2; ways <= kMaxMatchPasses; ++ways) {
    // Re-reading costs (ways - 1) reads; spilling a write and a read of the spilled records.
    if ((ways - 1) * reread_bytes > 2 * spill_bytes) break;
    const int64_t state = StreamingMatcher::MemoryFor(largest(ways), threads);
    if (state <= budget) {
      plan.strategy = MatchStrategy::kPasses;
      plan.ways = ways;
      plan.state_bytes = state;
      return plan;
    }
  }

  // Partitions of about a quarter of the budget each; half the budget buffers them.
  plan.strategy = MatchStrategy::kPartition;
  plan.ways = static_cast<int>(std::clamp<int64_t>((held * 4 + budget - 1) / budget, 2, 4096));
  plan.state_bytes = budget / 2 + held / plan.ways;
  plan.spill_bytes = std::max<int64_t>(0, spill_bytes - budget / 2);
  return plan;
}

std::string MatchPlan::Describe(const MatchPlanInputs& in) const {
  const std::string entities = Progress::HumanCount(static_cast<double>(in.entity_rows));
  const std::string share = Mib(in.budget_bytes);
  const std::string stream_bytes =
      Mib(StreamingMatcher::MemoryFor(in.entity_rows, std::max(1, in.threads)));
  switch (strategy) {
    case MatchStrategy::kStream:
      return fmt::format(
          "matched streaming: {} of state for {} entity rows, within the join's {} share of "
          "the memory budget",
          Mib(state_bytes), entities, share);
    case MatchStrategy::kPasses:
      return fmt::format(
          "streaming {} entity rows takes {}, more than the join's {} share of the memory "
          "budget: matched in {} groups of entity rows, reading the keys and times once per "
          "group ({} of state each), nothing spilled",
          entities, stream_bytes, share, ways, Mib(state_bytes));
    case MatchStrategy::kSortInMemory:
      return fmt::format(
          "streaming {} entity rows takes {}, more than the join's {} share of the memory "
          "budget, but the source's keys and times take less ({}): held and sorted in memory",
          entities, stream_bytes, share, Mib(state_bytes));
    case MatchStrategy::kPartition:
      return fmt::format(
          "streaming {} entity rows takes {} and the source's keys and times more than the "
          "join's {} share of the memory budget, and reading the source once per group of "
          "entity rows would cost more than spilling: split into {} partitions (about {} to "
          "spill)",
          entities, stream_bytes, share, ways, Mib(spill_bytes));
  }
  return "";
}

}  // namespace granary
