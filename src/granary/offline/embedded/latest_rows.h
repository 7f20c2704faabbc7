// The embedded engine's first pass of latest rows (OfflineEngine::LatestRows): which source row is
// each entity's latest in an interval.
//
// The latest row of an entity is the greatest by (event_timestamp, created_timestamp, read
// position): a null created timestamp (or a source without that column) is older than any value,
// and a full tie goes to the row read last, as the point-in-time join chooses
// (docs/POINT_IN_TIME.md, with t = the interval's end and no ttl). Rows with a null join key
// belong to no entity and are never chosen.
//
// Only join keys and timestamps are read. The answer (LatestRowsChoice) is the set of the chosen
// rows' read positions (ReadPositions: counted over every row of the row groups read, in range or
// not), delta-encoded (PositionList: about 1 byte an entity when the chosen rows are dense), and,
// when the table fit in memory, their event times in position order (8 bytes an entity): the
// second pass (latest_stream.h) then reads the features of the same files in the same order,
// finds those rows by position, and leaves the row groups that hold none of them unread. It
// reads the event time column again only when the first pass did not keep the times.
//
// Memory: one hash table entry per entity (LatestRowTable: for one integer-like join key, an
// open-addressing table of 32-byte slots at most 70 % full; otherwise a node map keyed by the
// key bytes) while the entities fit in the budget;
// when the table outgrows it, the scan starts again and the keys and times are split by entity
// into partitions (EntityPartitioner, spilled to Arrow IPC files past half the budget), each of
// which gets a table of its own. Whether to partition is decided by the entities seen, not by the
// rows in range: many rows of few entities stay in memory. Then each partition's chosen
// positions are sorted and encoded on their own and the lists merged, and the event times are not
// kept: the table did not fit the budget, so the entities are many, and 8 bytes each would be
// held through the whole second pass (101 MB at 6.3 M entities, past the budget's promise at 64
// MiB). What is held from the first pass's end to the second's is then about 1-2 bytes an entity.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/offline/embedded/position_list.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/source_scan.h"

namespace arrow {
class Array;
}

namespace granary {

class Progress;

// The latest row of each entity among the rows offered to it. Not thread-safe.
class LatestRowTable {
 public:
  // `single_integer_key`: the view has one join key of an integer-like type (its hash is then
  // exact and keys are kept as 8 bytes); otherwise keys are kept as bytes.
  explicit LatestRowTable(bool single_integer_key) : integer_keys_(single_integer_key) {}

  // Offers rows: `keys` are the join key columns, `event_ts` and `created_ts` (may be null)
  // timestamp[us] columns of the same length. Row i has read position `positions[i]` when
  // `positions` (int64) is given, else `position_offset + i`.
  Status Offer(const std::vector<std::shared_ptr<arrow::Array>>& keys, const arrow::Array& event_ts,
               const arrow::Array* created_ts, int64_t position_offset,
               const arrow::Array* positions = nullptr);

  // Integer keys: the table stops taking rows (full() becomes true; Offer returns OK having
  // offered only the rows before) instead of growing past `bytes` (0: no bound). Growing
  // allocates the doubled slots beside the old ones, so a table just under a bound would
  // otherwise hold three times it for a moment before its owner saw it outgrown.
  void set_max_bytes(int64_t bytes) { max_bytes_ = bytes; }
  bool full() const { return full_; }

  int64_t entities() const;
  // Rows offered with a null join key (never chosen).
  int64_t null_key_rows() const { return null_key_rows_; }
  // An estimate of the table's memory, in bytes.
  int64_t memory_bytes() const;
  // Bytes an entry costs, for planning before any row is seen.
  static int64_t BytesPerEntity(bool single_integer_key);

  // Appends the chosen rows (unsorted) to `out` and empties the table.
  void TakeChosen(std::vector<ChosenRow>* out);

 private:
  struct Entry {
    int64_t event = 0;
    int64_t created = 0;  // INT64_MIN: none
    int64_t position = 0;
  };
  void OfferOne(Entry* slot, bool inserted, const Entry& row);

  // One integer key's slot; `entry.position` < 0 marks an empty slot (read positions are >= 0).
  struct Slot {
    uint64_t key = 0;
    Entry entry{0, 0, -1};
  };
  // The slot of `key` (linear probing from its mixed hash), inserting it when absent.
  Entry* FindOrInsert(uint64_t key, bool* inserted);
  // Grows the integer table to hold at least `entities` within the maximum load.
  void ReserveIntegers(int64_t entities);

  bool integer_keys_;
  std::vector<Slot> slots_;  // power-of-two size; empty until the first row
  int64_t used_slots_ = 0;
  std::unordered_map<std::string, Entry> by_bytes_;
  int64_t key_bytes_ = 0;  // bytes of keys longer than the inline string buffer
  int64_t null_key_rows_ = 0;
  int64_t max_bytes_ = 0;
  bool full_ = false;
};

struct LatestRowsOptions {
  // Bytes for the table (or the partitions' buffers and one partition's table).
  int64_t memory_budget_bytes = int64_t{1} << 30;
  std::filesystem::path spill_dir;     // empty: the system's temp dir
  Progress* progress = nullptr;        // counts rows read; may be null
  const CancelFlag* cancel = nullptr;  // checked between batches; may be null
  int TEST_force_partitions = 0;       // tests: > 0 partitions this many ways
};

struct LatestRowsStats {
  SourceScanStats scan;
  int partitions = 0;  // 0: one table in memory; > 0: partitioned this many ways
  int64_t bytes_spilled = 0;
  int64_t null_key_rows = 0;
  int64_t peak_state_bytes = 0;  // the table, or the partitioner's buffers plus a partition's
  // Rows read before the table outgrew the budget and the scan started again partitioned (0:
  // it did not).
  int64_t rows_read_twice = 0;
  // FeatureSourceScan::FilesFingerprint of the (last) read: the second pass must plan the same.
  uint64_t files_fingerprint = 0;
};

// The first pass's answer: the rows the second pass keeps, one an entity.
struct LatestRowsChoice {
  PositionList positions;  // the chosen rows' read positions
  // Whether `event_times` holds the chosen rows' event times (microseconds), one a position, in
  // position order. false: the first pass was partitioned and did not keep them; the second
  // pass reads them again.
  bool has_event_times = false;
  std::vector<int64_t> event_times;

  int64_t memory_bytes() const {
    return positions.memory_bytes() +
           static_cast<int64_t>(event_times.capacity() * sizeof(int64_t));
  }
};

// Runs the first pass over the files of `files` (SourceSnapshot::Read of `source`'s view; its
// scan options give the interval; the join key and timestamp columns are read, never the
// features).
Result<LatestRowsChoice> SelectLatestRows(const ViewSource& source, const SourceSnapshot& files,
                                          const LatestRowsOptions& options, LatestRowsStats* stats);

// Whether two scans of the same source and range planned the same files and row groups (a
// second pass compares its plan with the first's to notice a source that changed in between).
bool SameScanPlan(const SourceScanStats& a, const SourceScanStats& b);

}  // namespace granary
