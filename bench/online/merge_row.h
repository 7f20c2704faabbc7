// One RocksDB record per entity built by merge operands: a layout measured by
// bench/online/merge_row_bench.cc (docs/PERFORMANCE.md, "One record per entity by merge
// operands"), not Granary's stored format (docs/ONLINE_LAYOUT.md keeps one record per entity and
// view). Benchmark code: the product does not link it.
//
// Each write of a view's row is a blind Merge(entity key, operand) where the operand is a row of
// one section; RocksDB folds an entity's operands into one row in compactions (full merge, with
// the row below them or without one at the bottom level), in flushes and compactions that meet
// several operands but not the row (partial merge), and in reads of an entity whose operands are
// not folded yet. Operands and rows share one format:
//
//   version        1 byte, 0x02 (the per-view records are 0x01)
//   sections       by increasing view id, at most one per view:
//     view id        4 bytes, big-endian
//     length         varint: the bytes of the rest of the section
//     flags          1 byte; bit 0 "continues": a row of the view stored before this section's
//                    writes can still win over them (set by a write; cleared when the writes it
//                    sums up broke the chain, see below)
//     first_written  int64 little-endian, microseconds: when the earliest write it sums up ran
//     expire_at      int64 little-endian, microseconds: the latest write's expiry (INT64_MAX:
//                    never)
//     body           today's body (value_codec.h): fingerprint, event_ts, created, values
//
// The fold keeps today's write-if-newer exactly (docs/ONLINE_LAYOUT.md, "Write order and
// write-if-newer", "Expiry"), as if the writes had run one after the other in the order RocksDB
// gives their operands (their sequence numbers): a write replaces the stored row of its view
// unless that row is live at the write's time (expire_at > the write's first_written), of the
// same schema fingerprint and strictly newer by (event_ts, created); equal orders take the later
// write; every write, kept or not, sets the expiry. Combining two adjacent summaries X (earlier)
// and Y (later) of one view:
//
//   first_written = X.first_written, expire_at = Y.expire_at
//   Y continues, X.expire_at > Y.first_written, same fingerprint:
//       body = X's when X's order > Y's, else Y's; continues = X.continues
//   otherwise (a gap in which X expired, a schema change, or Y's chain broke):
//       body = Y's; continues = false
//
// That combination is associative (merge_row_test.cc checks every grouping against the
// sequential rule), so partial merges of any adjacent operands give the same row. A full merge
// also drops sections with expire_at <= now (no later write can make them win again); partial
// merges drop nothing (an expired section still tells an earlier row that it lost).
//
// Thread-safe: the operator and the filter (below) hold only the clock.
#pragma once

#include <rocksdb/compaction_filter.h>
#include <rocksdb/merge_operator.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/online/varint.h"

namespace granary::bench {

constexpr char kMergeRowVersion = '\x02';
constexpr size_t kSectionHeader = 17;  // flags + first_written + expire_at
constexpr uint8_t kSectionContinues = 1;

// One section, read in place from a row.
struct SectionRef {
  uint32_t view_id = 0;
  uint8_t flags = 0;
  int64_t first_written = 0;
  int64_t expire_at = 0;
  std::string_view body;
};

// Appends an operand for one write of a view's row (a whole row of one section) to *out:
// written at `now_micros`, expiring at `expire_at`. The body is value_codec.h's.
void AppendWriteOperand(uint32_t view_id, int64_t now_micros, int64_t expire_at,
                        std::string_view body, std::string* out);

// Starts a row (the version byte), then AppendSection for each section by increasing view id.
void StartRow(std::string* out);
void AppendSection(const SectionRef& section, std::string* out);

// Calls f(section) for each section of `row` in stored order; false when the row is malformed
// (wrong version, a length past the end, a body too short for its header, view ids not
// increasing).
bool ForEachSection(std::string_view row, const std::function<void(const SectionRef&)>& f);

// The same walk without a std::function, for readers: calls f(section) and stops early when f
// returns false. Returns false when the row is malformed.
template <typename F>
bool WalkSections(std::string_view row, F&& f);

// The fold above. `rows` are rows or operands in write order (the first may be the stored row);
// with `now_micros`, a full merge that drops sections expired at that time; without, a partial
// merge. False when one of them is malformed.
bool MergeRows(const std::vector<std::string_view>& rows, const int64_t* now_micros,
               std::string* out);

// The operator RocksDB calls; now() gives the time of full merges in microseconds (the store's
// Clock in a product).
class SectionMergeOperator final : public rocksdb::MergeOperator {
 public:
  explicit SectionMergeOperator(std::function<int64_t()> now) : now_(std::move(now)) {}
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override;
  bool PartialMergeMulti(const rocksdb::Slice& key, const std::deque<rocksdb::Slice>& operands,
                         std::string* out, rocksdb::Logger* logger) const override;
  bool PartialMerge(const rocksdb::Slice& key, const rocksdb::Slice& left,
                    const rocksdb::Slice& right, std::string* out,
                    rocksdb::Logger* logger) const override;
  const char* Name() const override { return "granary.bench.sections"; }

 private:
  std::function<int64_t()> now_;
};

// The per-section ttl in compactions: a full merge drops expired sections, but a row that no
// operand meets is never merged again, so this filter rewrites a stored row (not an operand)
// without its sections expired at now(), and removes a row without a live section (the per-view
// store's filter removes a whole expired record). That includes a row of no section at all: a
// full merge whose every section had expired writes one (a merge operator cannot delete), and
// RocksDB does not filter what a merge wrote in the same compaction. Operands are kept: an
// expired one still tells an earlier row that it lost.
class SectionExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  explicit SectionExpiryFilter(std::function<int64_t()> now) : now_(std::move(now)) {}
  Decision FilterV2(int level, const rocksdb::Slice& key, ValueType type,
                    const rocksdb::Slice& value, std::string* new_value,
                    std::string* skip_until) const override;
  const char* Name() const override { return "granary.bench.section_expiry"; }

 private:
  std::function<int64_t()> now_;
};

// ---------------------------------------------------------------------------------------------

template <typename F>
bool WalkSections(std::string_view row, F&& f) {
  if (row.empty() || row[0] != kMergeRowVersion) return false;
  size_t pos = 1;
  int64_t last_id = -1;
  while (pos < row.size()) {
    if (row.size() - pos < 5) return false;
    const auto* id = reinterpret_cast<const unsigned char*>(row.data() + pos);
    SectionRef s;
    s.view_id = (uint32_t{id[0]} << 24) | (uint32_t{id[1]} << 16) | (uint32_t{id[2]} << 8) | id[3];
    pos += 4;
    uint64_t length = 0;
    if (!layout::GetVarint(row, &pos, &length)) return false;
    if (length < kSectionHeader + 12 || length > row.size() - pos) return false;
    if (static_cast<int64_t>(s.view_id) <= last_id) return false;
    last_id = s.view_id;
    const char* p = row.data() + pos;
    s.flags = static_cast<uint8_t>(p[0]);
    s.first_written = layout::LoadFixed<int64_t>(p + 1);
    s.expire_at = layout::LoadFixed<int64_t>(p + 9);
    s.body = std::string_view(p + kSectionHeader, length - kSectionHeader);
    pos += length;
    if (!f(s)) return true;
  }
  return true;
}

}  // namespace granary::bench
