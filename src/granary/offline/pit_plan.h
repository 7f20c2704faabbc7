// How the match pass of the point-in-time join (pit_join.h) runs for one view, decided before
// reading from what each way must hold in memory, not from how many rows the source has.
//
// The ways, in the order they are considered:
//  - stream: every entity row in a StreamingMatcher (pit_stream.h); feature rows stream by and
//    are dropped. Holds the entity side only (MemoryFor), whatever the size of the source. One
//    read of the keys and times.
//  - passes: the entity rows split by a hash of their join keys into P groups, each small enough
//    to stream; the keys and times are read once per group. Nothing is spilled.
//  - sort in memory: the source's keys and times in range held and sorted (MatchPointInTime).
//    Chosen when the entity side does not fit but the source's rows do (few feature rows for many
//    entity rows). One read.
//  - partition: both sides split by key hash (EntityPartitioner), the source's keys and times
//    spilled to disk past the budget. Chosen only when re-reading the source for every group
//    would cost more than writing and reading back its keys and times once.
//
// Cost model for the last choice: reading a byte of keys and times again from Parquet costs
// about what writing it to a spill file and reading it back costs (both are a pass over the
// bytes; decoding and encoding alike run at memory speed on this kind of data), so passes win
// while (P - 1) reads of the key and time columns are at most the 2 passes over the spilled
// records (which also carry a read position: 8 bytes more a row).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace granary {

enum class MatchStrategy { kStream, kPasses, kSortInMemory, kPartition };

// What the plan is made from. Sizes in bytes.
struct MatchPlanInputs {
  int64_t entity_rows = 0;
  int threads = 1;  // the matcher's workers (resolved: at least 1)
  // Bytes the match may hold: the view's share of the memory budget.
  int64_t budget_bytes = 0;
  // Rows of the source in range (from Parquet footers) and the uncompressed bytes of their join
  // key and timestamp columns; 0 when unknown (CSV: then only the file bytes are known, in
  // source_bytes, and rows are bounded by them).
  int64_t source_rows = 0;
  int64_t source_bytes = 0;
  // The entity rows of the largest group when they are split `ways` ways by key hash (rows of
  // one key stay together, so a hot key makes its group larger than entity_rows / ways). Empty:
  // an even split.
  std::function<int64_t(int ways)> largest_group_rows;
};

struct MatchPlan {
  MatchStrategy strategy = MatchStrategy::kStream;
  // kPasses: reads of the source (groups of entity rows); kPartition: partitions; else 1.
  int ways = 1;
  // Estimated bytes held by the match state (the streaming matcher of one group, or the held
  // keys and times, or a partition's share).
  int64_t state_bytes = 0;
  // Estimated bytes written to spill files (kPartition only).
  int64_t spill_bytes = 0;

  // One line for the retrieval's summary: what was decided and why, e.g. "matched streaming:
  // 122 MiB of state for 1.00M entity rows, within its 3.5 GiB share of the memory budget".
  std::string Describe(const MatchPlanInputs& in) const;
};

// Matching state per feature row held by the sort and partition ways, besides the keys and
// times: a 32-byte record and 8 bytes of hash while the records are built.
constexpr int64_t kMatchStateBytesPerRow = 40;
// At most this many reads of the source in the passes way before the cost model is asked.
constexpr int kMaxMatchPasses = 64;

MatchPlan PlanMatch(const MatchPlanInputs& in);

}  // namespace granary
