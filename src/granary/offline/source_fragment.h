// Fragments of a data source: one data file each (Parquet, CSV, or a Delta table's Parquet file),
// with partition values, planned and pruned for an event-time range, and read as raw Arrow
// batches under source column names. FeatureSourceScan (source_scan.h) builds on them.
#pragma once

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/deletion_vector.h"

namespace arrow {
class Array;
class RecordBatch;
class RecordBatchReader;
class DataType;
class MemoryPool;
}  // namespace arrow
namespace parquet {
class FileMetaData;
namespace arrow {
class FileReader;
struct SchemaField;
}  // namespace arrow
}  // namespace parquet

namespace granary {

struct ParquetFooterDigest;

enum class FragmentFormat { kParquet, kCsv };

// One data file to read.
struct Fragment {
  std::filesystem::path path;
  FragmentFormat format = FragmentFormat::kParquet;
  // Column (as named in the files) -> value from hive folders or the Delta log; nullopt is null.
  std::map<std::string, std::optional<std::string>> partition_values;
  // Parquet: what planning read of the footer, and the row groups to read (after pruning). The
  // footer itself is not kept: OpenFragment reads it again (its parsed form takes about 30 KB
  // for a file of 16 columns, so a source of thousands of files held tens of MiB through every
  // scan: 85 MiB for the seed's 2,920 files of bay_occupancy).
  int64_t num_rows = 0;                 // in the file, deleted rows included
  std::vector<int64_t> row_group_rows;  // of every row group, pruned or not
  uint64_t footer_hash = 0;             // of the stored footer's bytes (FilesFingerprint)
  std::vector<int> row_groups;
  int64_t bytes_estimated = 0;
  int64_t rows_estimated = 0;  // rows in `row_groups` (less deleted rows, when known)
  // Delta: the rows of the file to skip, and the table folder its 'u' path is relative to.
  // OpenFragment loads it and drops those rows, counting row indexes from the file's first row
  // across all row groups, pruned or not.
  std::optional<DeletionVectorDescriptor> deletion_vector;
  std::filesystem::path delta_table;
};

// What to read from each fragment.
struct FragmentRequest {
  // Columns as named in the files; a column absent from a file is left out of its batches.
  std::vector<std::string> columns;
  // The event-time column (as named in the files), for row-group pruning; "" for none.
  std::string timestamp_column;
  std::optional<Timestamp> start, end;  // inclusive
  // CSV: the Arrow type to read each column as (others: utf8).
  std::map<std::string, std::shared_ptr<arrow::DataType>> csv_types;
  int64_t batch_rows = 64 * 1024;
  // Decode a Parquet file's columns on Arrow's thread pool (worth it when files are read one at
  // a time).
  bool parquet_use_threads = true;
  // Readers decoding at once (FragmentPrefetcher's), which share the read buffers' bytes.
  int readers = 1;
  // Where the readers allocate (file bytes, pages, decoded batches); nullptr: Arrow's default
  // pool. Must outlive the readers.
  arrow::MemoryPool* pool = nullptr;
  // Gather mode (FeatureSourceScan, SourceScanOptions::chosen_rows); empty: off. Fills `rows`
  // with the read positions in [begin, end) whose rows are wanted (ascending, distinct). Called
  // by FragmentPrefetcher's reader threads, at once: it must only read shared state.
  std::function<void(int64_t begin, int64_t end, std::vector<int64_t>* rows)> chosen_rows;
  // Gather mode: the Arrow type each column (as named in the files) is declared as, for the
  // columns whose values may be copied from their pages (ReadChosenRows): float64, float32,
  // int64 and int32. A column whose Arrow type in a file differs needs a conversion: Arrow's
  // reader reads it.
  std::map<std::string, std::shared_ptr<arrow::DataType>> pick_types;
};

// Bytes of the read buffer of each Parquet column (a stream per column, read page after page):
// 8 MiB shared by the `columns` of `readers` readers, each between 64 KiB and 1 MiB. A page
// larger than the buffer is read whole (Parquet writers default to 1 MiB pages).
int64_t ParquetReadBufferBytes(size_t columns, int readers = 1);

// Hive partition values (key=value folders, percent-decoded; __HIVE_DEFAULT_PARTITION__ is null)
// of `file` below `root`.
std::map<std::string, std::optional<std::string>> HivePartitionValues(
    const std::filesystem::path& root, const std::filesystem::path& file);

// Reads the footer of a Parquet fragment (its digest, parquet_footers.h: parsed once per file and
// process while the file stays the same) and keeps the row groups whose timestamp statistics can
// hold rows in range; counts total and pruned row groups. A file whose deletion vector deletes
// every row keeps no row group. IOError/InvalidArgument name the file.
Status PlanParquetFragment(const FragmentRequest& request, Fragment* fragment,
                           int64_t* row_groups_total, int64_t* row_groups_pruned);
// As above, from the digest of the fragment's file (ReadParquetFooterDigest).
Status PlanParquetFragment(const FragmentRequest& request, const ParquetFooterDigest& digest,
                           Fragment* fragment, int64_t* row_groups_total,
                           int64_t* row_groups_pruned);

// A Parquet fragment opened as OpenFragment reads it: Arrow's reader (over a ParquetFileReader
// with the request's properties and buffered streams, behind parquet_reader()), the file's
// footer, and the leaves of the requested columns that the file has (ascending).
struct OpenedParquet {
  std::shared_ptr<parquet::arrow::FileReader> reader;
  std::shared_ptr<parquet::FileMetaData> metadata;
  std::vector<int> leaves;
  int file_descriptor = -1;  // the open file's, valid while `reader` lives
  // The file's size and modification time (ns) when opened, before its footer was read.
  int64_t size_at_open = -1;
  int64_t modified_ns_at_open = -1;
};
// IOError when the file is gone or changed since planning (its row groups or rows);
// InvalidArgument when its schema has no Arrow form; Corruption when it cannot be read.
Result<OpenedParquet> OpenParquetFragment(const Fragment& fragment, const FragmentRequest& request);

// Appends the leaf column indices of `field` (a column of a Parquet file's Arrow schema) to `out`.
void CollectLeaves(const parquet::arrow::SchemaField& field, std::vector<int>* out);

// In a catch block around a Parquet read of `fragment`: the exception being handled as a Status
// naming the file (IOError for the operating system's errors, else Corruption).
Status ParquetReadFailure(const Fragment& fragment);

// Opens a batch reader over a planned fragment: the requested columns that the file has, in the
// file's own names and types, without the rows its deletion vector deletes (loaded here; its
// errors name the DV file and the data file).
Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const Fragment& fragment,
                                                               const FragmentRequest& request);
// As above, over `row_groups` (some of the fragment's planned row groups, ascending) only.
Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const Fragment& fragment,
                                                               const FragmentRequest& request,
                                                               const std::vector<int>& row_groups);
// As above for a Parquet fragment already opened with OpenParquetFragment and the same request
// (its reader is shared: read one such batch reader at a time, on one thread).
Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const OpenedParquet& opened,
                                                               const Fragment& fragment,
                                                               const std::vector<int>& row_groups);

// Reads fragments on `readers` background threads and hands out their raw batches in fragment
// order, then row order. The unit of work is one row group of a Parquet file (a CSV file, or a
// Parquet file of one row group, is one unit), so that the readers decode neighbouring row
// groups of one file at once rather than whole files in turn: with files the consumer waited on
// one file's reader while the next file's reader, at its limit of batches ahead, waited on the
// consumer (about 1.2 cores busy on 2; docs/PERFORMANCE.md, "Training sets on a quiet
// machine"). A reader keeps its last Parquet file open for its next unit if that is of the same
// file (an open parses the whole footer) and the file was not written since (its size and
// modification time through the open descriptor; else it is opened again and checked). Readers stay
// within `readers` units of the consumer and at most `batches_ahead` batches ahead in each unit.
// One consumer thread calls Next(); the destructor stops and joins the readers. Memory: at most
// readers * batches_ahead batches, and each reader's open file (its parsed footer).
class FragmentPrefetcher {
 public:
  // Row groups of one fragment, read by one reader in one go.
  struct Unit {
    size_t fragment;
    std::vector<int> row_groups;
    // The read position of the unit's first row (FeatureSourceScan's), -1 when not known. Gather
    // mode (FragmentRequest::chosen_rows) reads a unit of one row group of a Parquet file
    // without a deletion vector whose position is known with ReadChosenRows: one batch of its
    // chosen rows only.
    int64_t first_position = -1;
  };
  // The units of `fragments`, in read order. A Parquet file whose planned bytes (of the columns
  // read, uncompressed) are at most `whole_file_bytes` is one unit: one reader reads it in one
  // go, where decoding its row groups at once would gain nothing.
  static std::vector<Unit> Units(const std::vector<Fragment>& fragments,
                                 int64_t whole_file_bytes = 0);
  // Rows a unit returns: the rows of its row groups, or -1 when that is not known before reading
  // it (a CSV file, or a file with a deletion vector).
  static int64_t UnitRows(const Fragment& fragment, const Unit& unit);

  // Reads `units` (some of Units(*fragments), in read order).
  FragmentPrefetcher(const std::vector<Fragment>* fragments, std::vector<Unit> units,
                     const FragmentRequest* request, int readers, int batches_ahead);
  ~FragmentPrefetcher();
  FragmentPrefetcher(const FragmentPrefetcher&) = delete;
  FragmentPrefetcher& operator=(const FragmentPrefetcher&) = delete;

  struct Item {
    std::shared_ptr<arrow::RecordBatch> batch;  // nullptr at the end of all fragments
    size_t fragment = 0;
    size_t unit = 0;  // index in the constructor's `units`
    // A batch of chosen rows (gather mode): each row's read position (int64, ascending). Null
    // for a batch of consecutive rows.
    std::shared_ptr<arrow::Array> positions;
  };
  Result<Item> Next();

 private:
  struct Queue;
  void ReadLoop();

  const std::vector<Fragment>* fragments_;
  const FragmentRequest* request_;
  const std::vector<Unit> units_;
  const size_t units_ahead_;
  const size_t batches_ahead_;
  Mutex mu_;
  CondVar cv_;
  // One per unit. The vector is filled by the constructor and fixed after; each Queue's
  // fields are guarded by mu_ (an annotation on a nested struct cannot name it).
  std::vector<std::unique_ptr<Queue>> queues_;
  size_t next_claim_ GUARDED_BY(mu_) = 0;
  size_t consuming_ GUARDED_BY(mu_) = 0;  // the consumer's unit
  bool stop_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> readers_;
};

}  // namespace granary
