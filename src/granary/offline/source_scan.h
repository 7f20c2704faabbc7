// FeatureSourceScan: a streaming read of one feature view's data source (Parquet files, folders
// and globs with hive partitions; CSV; Delta Lake) over an event-time range, as Arrow batches
// named and typed by the definitions. The offline store's joins and materialization read sources
// only through it.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/deletion_vector.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Array;
class MemoryPool;
class RecordBatch;
class RecordBatchReader;
class Schema;
}  // namespace arrow

namespace granary {

struct SourceScanOptions {
  // Rows with start <= event_timestamp <= end (both inclusive) are returned; nullopt: unbounded.
  std::optional<Timestamp> start;
  std::optional<Timestamp> end;
  // Features of the view to read, by name; empty reads every feature of the view.
  std::vector<std::string> features;
  // Further source columns to read after the features, by definition name (field_mapping
  // applies), typed as given: the inputs of window aggregations, which are not features.
  std::vector<Field> extra_columns;
  // Leave column groups out of the batches. A join reads keys and times first, then only the
  // features of the rows it chose.
  bool with_join_keys = true;
  bool with_created_timestamp = true;
  bool with_features = true;
  // false: the event timestamp is neither read nor filtered on. Every row of the row groups the
  // range's statistics keep comes back (less the rows Delta deletion vectors delete), null times
  // and rows out of range included, and positions() says where each batch is: a second read of
  // rows that a first read (of the same snapshot and range) found by read position.
  bool with_event_timestamp = true;
  // Only with with_event_timestamp false; may be empty. Called with the read positions [begin,
  // end) of a Parquet row group before it is read: false skips it (its rows are not decoded and
  // its batches not returned, but they still count in the positions of the rows after it). Not
  // asked for row groups whose row count is unknown (CSV files, files with a deletion vector) nor
  // for any row after them. Called on the thread that calls Next().
  std::function<bool(int64_t begin, int64_t end)> wants_rows;
  // Gather mode; only with with_event_timestamp false; may be empty. For a Parquet row group of
  // a file without a deletion vector whose read positions [begin, end) are known, fills `rows`
  // with the positions of the rows wanted (ascending, distinct; clears it first), and the scan
  // returns one batch of those rows only (positions().rows says where each is): the columns of
  // float64, float32, int64 and int32 features whose file type is the declared one have only
  // those values decoded (chosen_values.h); the others are read whole and the rows taken. Other
  // row groups come back as without it. Called from the scan's reader threads, several at once
  // (it must only read shared state), while the scan lives.
  std::function<void(int64_t begin, int64_t end, std::vector<int64_t>* rows)> chosen_rows;
  // Rows per batch read from a file (batches may be smaller after filtering).
  int64_t batch_rows = 64 * 1024;
  // Where the file readers allocate (file bytes, pages, decoded batches); nullptr: Arrow's
  // default pool. Must outlive the scan.
  arrow::MemoryPool* pool = nullptr;
  // What decoding may hold at once, in bytes; 0: no bound. Two row groups are decoded at once
  // (one reader thread each) only when the two largest to read fit in it (by the uncompressed
  // size of their needed columns); otherwise one at a time, its columns in parallel.
  int64_t decode_memory_bytes = 0;
};

// What a scan read and skipped. Pruning counts are known after Open; row counts grow as batches
// are read.
struct SourceScanStats {
  int64_t files_total = 0;
  int64_t files_pruned = 0;       // by partition values or file statistics (Delta), or all of a
                                  // file's row groups pruned
  int64_t row_groups_total = 0;   // Parquet row groups of files not pruned by partition/file
  int64_t row_groups_pruned = 0;  // by the timestamp column's min/max statistics
  int64_t rows_scanned = 0;       // rows read from files, before the event-time filter (a row
                                  // group read in gather mode counts all its rows)
  int64_t rows_returned = 0;      // rows in the returned batches
  // Row groups read in gather mode (SourceScanOptions::chosen_rows): their chosen rows only.
  int64_t row_groups_picked = 0;
  // Uncompressed bytes of the needed columns in the row groups to read (Parquet; file sizes for
  // CSV); an estimate of the data's size in memory, for planning (0 when unknown).
  int64_t bytes_estimated = 0;
  // Rows in the row groups to read (Parquet); 0 when unknown (CSV). For progress reports.
  int64_t rows_estimated = 0;
  // Row groups left unread because SourceScanOptions::wants_rows wanted none of their rows.
  int64_t row_groups_skipped = 0;
  // Row groups decoded at once (1 or 2), known from the first Next().
  int readers = 0;
};

// Where the rows of a batch are in the read. A row's read position counts every row read before
// it in read order (files, row groups, rows), from 0, whether or not the event-time filter kept
// it; rows deleted by a Delta deletion vector are not counted. Two scans of one SourceSnapshot
// over the same range and options give a row the same position, whatever columns they read.
struct ReadPositions {
  int64_t first = 0;  // the position of the batch's first row
  // When the event-time filter dropped rows of the batch, or the batch holds the chosen rows of
  // a row group (SourceScanOptions::chosen_rows): each row's position (int64, ascending). Null
  // otherwise: row i is at first + i.
  std::shared_ptr<arrow::Array> rows;
};

// The data files of one view's source at one moment, before pruning: the files a file source's
// path names, listed once, or the live files of a Delta table at the version its log had when
// replayed (with its column mapping). Scans opened over the same snapshot read the same files,
// whatever is added to the folder or committed to the table meanwhile: the two passes of a join
// share one. A plain value; thread-compatible.
struct SourceSnapshot {
  struct File {
    std::filesystem::path path;
    // Column (as named in the files) -> value from hive folders or the Delta log; nullopt: null.
    std::map<std::string, std::optional<std::string>> partition_values;
    std::string delta_stats_json;  // the Delta add action's "stats", or ""
    // Delta: rows of the file deleted by DELETE/UPDATE/MERGE, which every scan skips.
    std::optional<DeletionVectorDescriptor> deletion_vector;
  };
  SourceFormat format = SourceFormat::kParquet;
  int64_t delta_version = -1;         // the replayed Delta table version; -1 for file sources
  std::filesystem::path delta_table;  // the Delta table's folder (deletion vectors are under it)
  std::vector<File> files;            // in read order: byte-wise by path
  // Delta column mapping: logical column name -> physical name in the files (absent: the same).
  std::map<std::string, std::string> physical_names;
  // Each file's size in bytes and modification time when listed, by index in `files` (-1 and
  // the epoch when they could not be read then).
  std::vector<int64_t> sizes;
  std::vector<std::filesystem::file_time_type> modified;

  // Lists the files of `view`'s source (relative paths against `repo_root`) or replays its Delta
  // log. NotFound when a file source names no file; errors name the view and the source.
  static Result<SourceSnapshot> Read(const std::filesystem::path& repo_root,
                                     const Definitions& defs, const FeatureView& view);

  // FailedPrecondition naming the first file whose size or modification time differs from when
  // it was listed, or that is gone: a reader that read the files in several passes calls it after
  // the last. (A file rewritten within the file system's timestamp granularity with the same size
  // is not seen; FeatureSourceScan::FilesFingerprint compares the Parquet footers.) `what` starts
  // the message ("feature view 'v'").
  Status CheckUnchanged(const std::string& what) const;
  // Fills `sizes` and `modified` from the file system.
  void RecordVersions();
};

// Reads one feature view's source. Columns of every batch, in this order: the join keys of the
// view's entities (named and typed as the entities declare), `event_timestamp`
// (timestamp[us, UTC]), `created_timestamp` (timestamp[us, UTC], only when the source has a
// created_timestamp_column), then the features (typed as the view declares); the with_* options
// leave groups out. field_mapping is applied (a source column is read under the name it maps
// to); columns missing from a file (older Delta versions, files written before a column existed)
// are null; rows whose event timestamp is null or out of range are dropped (unless
// with_event_timestamp is false), and so are the rows a Delta deletion vector deletes (not
// counted in rows_scanned).
//
// Order: files in path order (Delta: live files in path order), row groups and rows in file order.
// Batches come back in that order, so the read position of a row (ReadPositions) is stable; the
// join uses it to break full ties (see docs/POINT_IN_TIME.md) and to find its chosen rows again.
//
// Not thread-safe: one thread calls Next(). Behind it, files are decoded ahead on background
// threads (two Parquet row groups or files at once, at most four batches each; a single one's
// columns on Arrow's pool instead), which the scan stops and joins when it is destroyed.
class FeatureSourceScan {
 public:
  // Plans the scan: resolves the source (relative paths against `repo_root`), lists files, replays
  // the Delta log, prunes files (date partitions, Delta stats) and Parquet row groups (min/max of
  // the timestamp column) by the range. Errors name the view, the source and the file.
  static Result<std::unique_ptr<FeatureSourceScan>> Open(const std::filesystem::path& repo_root,
                                                         const Definitions& defs,
                                                         const FeatureView& view,
                                                         SourceScanOptions options);
  // As Open, over the files of `snapshot` (SourceSnapshot::Read of the same view) instead of
  // listing them again.
  static Result<std::unique_ptr<FeatureSourceScan>> Open(const SourceSnapshot& snapshot,
                                                         const Definitions& defs,
                                                         const FeatureView& view,
                                                         SourceScanOptions options);
  ~FeatureSourceScan();

  const std::shared_ptr<arrow::Schema>& schema() const;
  const std::vector<std::string>& join_keys() const;
  const std::vector<std::string>& features() const;
  // Whether the batches have a `created_timestamp` column.
  bool has_created_timestamp() const;
  // Where `event_timestamp` is in the batches; -1 without it (with_event_timestamp false).
  int event_timestamp_index() const;

  // The next non-empty batch, or nullptr at the end.
  Result<std::shared_ptr<arrow::RecordBatch>> Next();
  // Where the rows of the batch Next() returned last are in the read.
  const ReadPositions& positions() const;

  const SourceScanStats& stats() const;

  // A hash of what the scan plans to read: each file's path, row groups and Parquet footer (the
  // offsets, sizes and statistics of every column chunk). Two scans of one snapshot with equal
  // fingerprints read files that were not rewritten in between (up to a rewrite that leaves
  // every footer byte the same).
  uint64_t FilesFingerprint() const;

  // The scan as an arrow::RecordBatchReader (which owns it); errors become arrow::Status with the
  // same message. Stats stay readable through `stats_out` (may be null), valid while the reader
  // lives.
  static std::shared_ptr<arrow::RecordBatchReader> ToReader(std::unique_ptr<FeatureSourceScan> scan,
                                                            const SourceScanStats** stats_out);

  struct Impl;

 private:
  explicit FeatureSourceScan(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
