// EntityPartitioner: splits a stream of rows by a hash of their join keys into a fixed number of
// partitions, in bounded memory. Rows of one entity always land in the same partition, so a join
// or a "latest row per entity" can then work one partition at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/spill_folder.h"

namespace arrow {
class RecordBatch;
class Schema;
class Table;
namespace io {
class OutputStream;
}
}  // namespace arrow

namespace granary {

// Bytes of the Arrow buffers a batch references (shared buffers counted once): what holding it
// costs, for memory budgets.
int64_t BatchBytes(const arrow::RecordBatch& batch);

// Arrow bytes that `rows` rows of `schema` take once decoded: exact for fixed-width columns
// (values and validity bits), an estimate for variable-width ones (strings and binaries: their
// offsets plus 16 bytes a value; lists: their offsets plus 4 values). Plans partitions from a
// row count before reading: Parquet's uncompressed size of the same columns can be far smaller
// (dictionary and run-length encodings of small integers and repeated strings).
int64_t EstimatedArrowBytes(const arrow::Schema& schema, int64_t rows);

// The most partitions of which each could keep a file open (one file descriptor each), leaving
// 256 descriptors for the rest of the process: the bound EntityPartitioner needed when it kept a
// spill file a partition. It now keeps one a group of partitions (at most 32), so this only caps
// what callers ask for. Raises the process's soft limit on open files towards its hard limit the
// first time it is needed for `wanted` partitions.
int MaxSpillPartitions(int wanted);

// Hands the memory freed so far back to the operating system: the Arrow pool's unused pages
// (jemalloc purges an arena's freed pages only on later activity in that arena, so the arenas of
// threads that are done keep them) and glibc's free heap pages. For a phase boundary after
// worker threads end (a few ms); values and budgets are unaffected, only the RSS.
void ReleaseFreedMemory();

struct PartitionerOptions {
  int num_partitions = 64;  // at least 1
  // Bytes of buffered rows kept in memory; past it, the rows of the groups of partitions holding
  // the most (see EntityPartitioner) are written to their groups' spill files (one Arrow IPC
  // message a partition) until what stays is a gather (GatherBytes) under the budget, or the
  // budget itself at Finish(). What is held at Finish() stays in memory. The bound counts Arrow
  // buffers of the buffered batches.
  int64_t memory_budget_bytes = int64_t{1} << 30;
  // Folder for the spill folder (a SpillFolder made on the first spill); empty: the system's temp
  // dir.
  std::filesystem::path spill_parent;
};

struct PartitionerStats {
  int64_t rows = 0;
  int64_t bytes_in_memory = 0;       // now
  int64_t peak_bytes_in_memory = 0;  // highest seen
  int64_t bytes_spilled = 0;         // written to spill files, in total
  int64_t spills = 0;                // messages written: one a partition and spill
};

// Rows are held in groups of partitions (at most kSpillGroups, each a contiguous run of
// partitions): each split sorts the rows by partition and takes one batch a group, which its
// partitions keep ranges of. A spill writes whole groups (every partition of the group, one
// message each, appended to the group's one spill file), so that what it writes is freed; the
// rest stays in memory. Groups rather than partitions keep a split's Takes and objects, and the
// spill files, few at thousands of partitions; groups rather than one batch for all let a spill
// write only about what exceeds the budget (to within a group).
//
// Not thread-safe while appending; after Finish(), ReadPartition() may run on several threads at
// once, and Release(i) beside reads of other partitions, one Release at a time (it updates
// stats()), never beside a read of partition i.
class EntityPartitioner {
 public:
  // `key_columns` name columns of `schema`; their types must be supported by KeyColumns.
  static Result<std::unique_ptr<EntityPartitioner>> Make(std::shared_ptr<arrow::Schema> schema,
                                                         std::vector<std::string> key_columns,
                                                         PartitionerOptions options);
  ~EntityPartitioner();

  // The partition of a row whose key hash (KeyColumns::HashRows) is `hash`: the high bits, so a
  // join may bucket by the low bits within a partition without correlation.
  static int PartitionOf(uint64_t hash, int num_partitions) {
    return static_cast<int>(((hash >> 32) * static_cast<uint64_t>(num_partitions)) >> 32);
  }

  // Appends the rows of `batch` (of the partitioner's schema) to their partitions, keeping their
  // order; may spill. Rows with a null key go to partition 0. Small batches are gathered (with
  // many partitions) and split together, at the latest by Finish().
  Status Append(const std::shared_ptr<arrow::RecordBatch>& batch);
  // Ends appending: closes spill files. Append after Finish is an error.
  Status Finish();

  int num_partitions() const { return options_.num_partitions; }
  // All rows of partition `i`, in the order they were appended (spilled rows, then the ones
  // still in memory). Reading does not release them; Release() does.
  Result<std::shared_ptr<arrow::Table>> ReadPartition(int i) const;
  // Drops partition `i`'s buffered rows and spilled extents. Rows held in memory are ranges of
  // batches the partitions of its group share, and spilled ones are in the group's file: the
  // memory is freed, and the file removed, once all of those partitions are released.
  void Release(int i);

  const PartitionerStats& stats() const { return stats_; }

 private:
  EntityPartitioner(std::shared_ptr<arrow::Schema> schema, std::vector<int> key_indices,
                    PartitionerOptions options);
  // Groups partitions are held and spilled in (see the class comment).
  static constexpr int kSpillGroups = 32;

  // A run of partitions whose ranges share one sorted batch a split, and which share one spill
  // file (a file a partition cost ext4 an inode allocation each, the largest per-partition cost
  // at thousands of partitions).
  struct SpillGroup {
    int first_partition = 0;
    int end_partition = 0;  // one past the last
    int64_t bytes = 0;      // its partitions' bytes in memory: its batches' bytes
    std::filesystem::path spill_path;
    std::shared_ptr<arrow::io::OutputStream> sink;  // the spill file until Finish, buffered
    int partitions_spilled = 0;                     // with extents, not yet released
  };
  // Where one spill of a partition is in its group's file: an Arrow IPC stream of its own
  // (schema, one message, end of stream).
  struct Extent {
    int64_t offset = 0;  // bytes
    int64_t length = 0;  // bytes
  };

  // Bytes of small batches gathered before they are split together.
  int64_t GatherBytes() const;
  // Sorts `batch`'s rows by partition (one Take a group) and gives each partition its range;
  // spills past the budget, down to a gather under it when `more_coming`.
  Status Split(const std::shared_ptr<arrow::RecordBatch>& batch, bool more_coming);
  // Splits the gathered batches together.
  Status SplitPending(bool more_coming);
  // Writes every partition of `group` that holds rows, freeing its batches.
  Status SpillGroupOf(SpillGroup& group);
  Status SpillPartition(int i);
  SpillGroup& GroupOf(int partition) { return groups_[partitions_[partition].group]; }

  // Rows [offset, offset + length) of a group's batch sorted by partition, shared by the group's
  // partitions.
  struct Range {
    std::shared_ptr<arrow::RecordBatch> sorted;
    int64_t offset = 0;
    int64_t length = 0;
    std::shared_ptr<arrow::RecordBatch> Rows() const;  // a zero-copy slice
  };
  struct Partition {
    std::vector<Range> ranges;    // in memory, in append order
    int64_t bytes = 0;            // the ranges' shares of their sorted batches' bytes
    int group = 0;                // index in groups_
    std::vector<Extent> extents;  // spilled, in append order, in the group's file
  };
  std::shared_ptr<arrow::Schema> schema_;
  std::vector<int> key_indices_;
  PartitionerOptions options_;
  std::vector<Partition> partitions_;
  std::vector<SpillGroup> groups_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> pending_;  // appended, not yet split
  int64_t pending_bytes_ = 0;
  std::optional<SpillFolder> spill_dir_;
  std::string spill_buffer_;  // a spill's bytes until written out (SpillFileStream)
  bool finished_ = false;
  PartitionerStats stats_;
};

}  // namespace granary
