#include "granary/datagen/generator.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "granary/common/json.h"
#include "granary/common/progress.h"
#include "granary/common/threads.h"
#include "granary/datagen/bay_simulator.h"
#include "granary/datagen/customer_simulator.h"
#include "granary/datagen/parquet_output.h"
#include "granary/datagen/random.h"
#include "granary/datagen/tables.h"
#include "granary/datagen/time_ordered_writer.h"
#include "granary/datagen/world.h"
#include "granary/offline/delta_writer.h"

namespace granary::datagen {
namespace {

namespace fs = std::filesystem;
using BatchFn = Result<std::shared_ptr<arrow::RecordBatch>> (*)(const CustomerBatch&);

constexpr int kCustomerTables = 8;
struct CustomerTable {
  const char* name;
  const char* file;
  std::shared_ptr<arrow::Schema> (*schema)();
};
const CustomerTable kCustomerTableList[kCustomerTables] = {
    {"customers", "customers.parquet", CustomersSchema},
    {"parking_sessions", "parking_sessions.parquet", SessionsSchema},
    {"payments", "payments.parquet", PaymentsSchema},
    {"disputes", "disputes.parquet", DisputesSchema},
    {"violations", "violations.parquet", ViolationsSchema},
    {"customer_profiles", "customer_profiles.parquet", CustomerProfilesSchema},
    {"customer_payments", "customer_payments.parquet", CustomerPaymentsSchema},
    {"customer_risk_labels", "customer_risk_labels.parquet", CustomerRiskLabelsSchema},
};

// How the customer event tables are ordered (docs/DATAGEN.md): spilled by week, then each week
// sorted by event time; row groups of 128 Ki rows (about a week of payments at seed scale).
constexpr Duration kEventBucket = Duration::Days(7);
constexpr int64_t kEventRowGroupRows = 128 * 1024;

constexpr const char* kOccupancyDir = "bay_occupancy";
constexpr const char* kOccupancyDelta = "bay_occupancy_delta";
constexpr const char* kDemandLabels = "bay_demand_labels";

std::string DateText(int64_t day) {
  const CivilDate d = CivilFromDays(day);
  return fmt::format("{:04d}-{:02d}-{:02d}", d.year, d.month, d.day);
}

// Runs tasks on `threads` threads; stops handing out work after the first failure, whose status
// is returned. `on_failure` runs once, on the failing thread (to wake waiting writers).
Status RunTasks(const std::vector<std::function<Status()>>& tasks, int threads,
                const std::function<void()>& on_failure) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto work = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= tasks.size() || failed.load()) return;
      Status st = tasks[i]();
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (!failed.exchange(true)) {
          first_error = st;
          on_failure();
        }
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = std::min<int>(threads, static_cast<int>(tasks.size()));
  for (int t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first_error;
}

Status WriteWholeTable(const fs::path& path, const std::shared_ptr<arrow::Schema>& schema,
                       const Result<std::shared_ptr<arrow::RecordBatch>>& batch,
                       TableSummary* summary) {
  if (!batch.ok()) return batch.status();
  GRANARY_ASSIGN_OR_RAISE(auto writer, ParquetFileWriter::Open(path, schema));
  GRANARY_RETURN_NOT_OK(writer->Write(**batch));
  GRANARY_ASSIGN_OR_RAISE(summary->bytes, writer->Close());
  summary->rows = (*batch)->num_rows();
  summary->files = 1;
  return Status::OK();
}

// The telemetry of one group of bays, day by day: a Delta data file per day, a plain Parquet file
// per month, and the day's demand labels appended to the group's label file. One thread.
class TelemetryGroup {
 public:
  TelemetryGroup(const World& world, const DatagenOptions& options, int group, size_t first_bay,
                 size_t last_bay, const fs::path& root, Progress* progress)
      : world_(world), options_(options), group_(group), root_(root), progress_(progress) {
    for (size_t i = first_bay; i < last_bay; ++i) {
      sims_.push_back(std::make_unique<BaySimulator>(world, world.bays[i], options.seed));
    }
  }

  Status Run() {
    const int64_t first_day = DayOf(world_.start), end_day = DayOf(world_.end);
    for (auto& sim : sims_) sim->Run(world_.start - kTick, world_.start, nullptr);  // warm-up
    GRANARY_ASSIGN_OR_RAISE(
        labels_writer_,
        ParquetFileWriter::Open(root_ / kDemandLabels / fmt::format("part-{:05d}.parquet", group_),
                                BayDemandLabelsSchema()));
    for (int64_t day = first_day; day < end_day; ++day) {
      batch_.clear();
      for (auto& sim : sims_) sim->Run(StartOfDay(day + 1) - kTick, world_.start, &batch_);
      GRANARY_RETURN_NOT_OK(WriteDeltaFile(day));
      GRANARY_RETURN_NOT_OK(AppendMonthFile(day));
      labels_ = BayDemandLabels();
      AppendBayDemandLabels(world_, options_.seed, batch_, &labels_);
      GRANARY_ASSIGN_OR_RAISE(auto labels, BayDemandLabelsBatch(labels_));
      GRANARY_RETURN_NOT_OK(labels_writer_->Write(*labels));
      progress_->Add(static_cast<int64_t>(batch_.size()));
    }
    if (month_writer_) GRANARY_RETURN_NOT_OK(CloseMonthFile());
    label_rows_ = labels_writer_->rows();
    GRANARY_ASSIGN_OR_RAISE(label_bytes_, labels_writer_->Close());
    return Status::OK();
  }

  std::vector<DeltaAddFile>& adds() { return adds_; }
  int64_t parquet_files() const { return parquet_files_; }
  int64_t parquet_bytes() const { return parquet_bytes_; }
  int64_t rows() const { return rows_; }
  int64_t label_rows() const { return label_rows_; }
  int64_t label_bytes() const { return label_bytes_; }

 private:
  Status WriteDeltaFile(int64_t day) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, BayOccupancyBatch(batch_, false));
    Rng ids(options_.seed, Stream::kFileIds, static_cast<uint64_t>(day * 64 + group_));
    const std::string partition = "event_date=" + DateText(day);
    const std::string rel = fmt::format("{}/part-{:05d}-{}.c000.snappy.parquet", partition, group_,
                                        UuidFromBits(ids.Next(), ids.Next()));
    std::error_code ec;
    fs::create_directories(root_ / kOccupancyDelta / partition, ec);
    if (ec) {
      return Status::IOError(fmt::format(
          "cannot create {}: {}", (root_ / kOccupancyDelta / partition).string(), ec.message()));
    }
    GRANARY_ASSIGN_OR_RAISE(
        auto writer, ParquetFileWriter::Open(root_ / kOccupancyDelta / rel, batch->schema()));
    GRANARY_RETURN_NOT_OK(writer->Write(*batch));
    DeltaAddFile add;
    add.path = rel;
    add.partition_values["event_date"] = DateText(day);
    GRANARY_ASSIGN_OR_RAISE(add.size, writer->Close());
    add.modification_time_ms = world_.end.micros / 1000;
    add.num_records = batch->num_rows();
    const auto [min_ts, max_ts] =
        std::minmax_element(batch_.event_timestamp.begin(), batch_.event_timestamp.end());
    const auto [min_id, max_id] = std::minmax_element(batch_.bay_id.begin(), batch_.bay_id.end());
    add.stats.push_back({"parking_bay_id", std::to_string(*min_id), std::to_string(*max_id), 0});
    add.stats.push_back({"event_timestamp", "\"" + DeltaTimestampJson(*min_ts) + "\"",
                         "\"" + DeltaTimestampJson(*max_ts) + "\"", 0});
    adds_.push_back(std::move(add));
    rows_ += batch->num_rows();
    return Status::OK();
  }

  Status AppendMonthFile(int64_t day) {
    const CivilDate d = CivilFromDays(day);
    const int64_t month = d.year * 12 + d.month;
    if (month_writer_ && month != month_) GRANARY_RETURN_NOT_OK(CloseMonthFile());
    if (!month_writer_) {
      month_ = month;
      const fs::path path =
          root_ / kOccupancyDir /
          fmt::format("{:04d}-{:02d}-part-{:05d}.parquet", d.year, d.month, group_);
      GRANARY_ASSIGN_OR_RAISE(month_writer_,
                              ParquetFileWriter::Open(path, BayOccupancySchema(true)));
    }
    GRANARY_ASSIGN_OR_RAISE(auto batch, BayOccupancyBatch(batch_, true));
    return month_writer_->Write(*batch);
  }

  Status CloseMonthFile() {
    GRANARY_ASSIGN_OR_RAISE(int64_t bytes, month_writer_->Close());
    month_writer_.reset();
    ++parquet_files_;
    parquet_bytes_ += bytes;
    return Status::OK();
  }

  const World& world_;
  const DatagenOptions& options_;
  const int group_;
  const fs::path root_;
  Progress* progress_;
  std::vector<std::unique_ptr<BaySimulator>> sims_;
  TelemetryBatch batch_;
  std::vector<DeltaAddFile> adds_;
  std::unique_ptr<ParquetFileWriter> month_writer_;
  std::unique_ptr<ParquetFileWriter> labels_writer_;
  BayDemandLabels labels_;
  int64_t label_rows_ = 0, label_bytes_ = 0;
  int64_t month_ = -1;
  int64_t parquet_files_ = 0, parquet_bytes_ = 0, rows_ = 0;
};

Status WriteManifest(const fs::path& path, const DatagenOptions& options,
                     const DatagenSummary& summary) {
  JsonWriter w(2);
  w.StartObject();
  w.Key("generator");
  w.String("granary datagen 0.1.0");
  w.Key("scale");
  w.String(options.scale.name.c_str());
  w.Key("customers");
  w.Int64(options.scale.customers);
  w.Key("bays");
  w.Int64(options.scale.bays);
  w.Key("zones");
  w.Int64(options.scale.zones);
  w.Key("days");
  w.Int64(options.scale.days);
  w.Key("seed");
  w.Uint64(options.seed);
  w.Key("start");
  w.String(FormatTimestamp(summary.start).c_str());
  w.Key("end");
  w.String(FormatTimestamp(summary.end).c_str());
  w.Key("tables");
  w.StartArray();
  for (const TableSummary& t : summary.tables) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.c_str());
    w.Key("path");
    w.String(t.path.c_str());
    w.Key("rows");
    w.Int64(t.rows);
    w.Key("files");
    w.Int64(t.files);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << w.str() << '\n';
  out.close();
  if (!out) return Status::IOError("cannot write " + path.string());
  return Status::OK();
}

// Moves every entry of `from` into `to`, replacing entries of the same name (the old ones go to
// `from`/.replaced first, so each replacement is a pair of renames within one file system).
Status MoveInto(const fs::path& from, const fs::path& to, const std::vector<std::string>& names) {
  std::error_code ec;
  const fs::path replaced = from / ".replaced";
  fs::create_directories(replaced, ec);
  for (const std::string& name : names) {
    if (fs::exists(fs::symlink_status(to / name, ec))) {
      fs::rename(to / name, replaced / name, ec);
      if (ec) {
        return Status::IOError(
            fmt::format("cannot replace {}: {}", (to / name).string(), ec.message()));
      }
    }
    fs::rename(from / name, to / name, ec);
    if (ec) {
      return Status::IOError(fmt::format("cannot move {} to {}: {}", (from / name).string(),
                                         (to / name).string(), ec.message()));
    }
  }
  return Status::OK();
}

struct TempOutput {
  fs::path path;
  ~TempOutput() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

Status CheckOptions(const DatagenOptions& o) {
  const ScaleParams& s = o.scale;
  if (s.customers < 1 || s.bays < 1 || s.zones < 1 || s.days < 8 || s.customers_per_shard < 1 ||
      s.bays_per_group < 1) {
    return Status::InvalidArgument(fmt::format(
        "scale '{}': customers, bays and zones must be at least 1 and days at least 8 (got {}, "
        "{}, {}, {})",
        s.name, s.customers, s.bays, s.zones, s.days));
  }
  if (s.customers >= 1'000'000'000'000LL) {
    return Status::InvalidArgument("scale: at most 10^12 - 1 customers (ids embed the customer)");
  }
  if (o.end.micros % 86'400'000'000LL != 0) {
    return Status::InvalidArgument(fmt::format(
        "--end {} is not midnight UTC; give a date such as 2026-11-01", FormatTimestamp(o.end)));
  }
  if (o.out.empty()) return Status::InvalidArgument("no output folder; pass --out DIR");
  return Status::OK();
}

}  // namespace

int64_t DatagenSummary::total_rows() const {
  int64_t n = 0;
  for (const TableSummary& t : tables) n += t.rows;
  return n;
}

Result<DatagenSummary> Generate(const DatagenOptions& options) {
  GRANARY_RETURN_NOT_OK(CheckOptions(options));
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec || !fs::is_directory(options.out)) {
    return Status::IOError(
        fmt::format("cannot create the output folder {}: {}; choose another "
                    "--out",
                    options.out.string(), ec ? ec.message() : "it exists and is not a folder"));
  }
  std::string pattern = (options.out / ".tmp-datagen-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::IOError(
        fmt::format("cannot write into {}: {}; choose a folder you can write "
                    "to with --out",
                    options.out.string(), std::strerror(errno)));
  }
  TempOutput tmp{pattern};
  const fs::path root = tmp.path;

  const World world = MakeWorld(options);
  DatagenSummary summary;
  summary.start = world.start;
  summary.end = world.end;
  const int threads = ThreadCount(options.threads);

  // The city: small tables written at once.
  for (auto [name, file, schema, batch] :
       {std::tuple{"bays", "bays.parquet", BaysSchema(), BaysBatch(world)},
        std::tuple{"local_events", "local_events.parquet", LocalEventsSchema(),
                   LocalEventsBatch(world)},
        std::tuple{"holidays", "holidays.parquet", HolidaysSchema(), HolidaysBatch(world)}}) {
    TableSummary t{name, file};
    GRANARY_RETURN_NOT_OK(WriteWholeTable(root / file, schema, batch, &t));
    summary.tables.push_back(t);
  }

  // Customers, in shards written in order. The customers table stays in customer order; the
  // event tables are written in event-time order (TimeOrderedTableWriter) in row groups of
  // kEventRowGroupRows, so that a run over one day reads a row group or two of them.
  {
    std::unique_ptr<ParquetFileWriter> customers;
    GRANARY_ASSIGN_OR_RAISE(customers, ParquetFileWriter::Open(root / kCustomerTableList[0].file,
                                                               kCustomerTableList[0].schema()));
    std::vector<std::unique_ptr<TimeOrderedTableWriter>> events(kCustomerTables);
    for (int i = 1; i < kCustomerTables; ++i) {
      GRANARY_ASSIGN_OR_RAISE(
          events[i], TimeOrderedTableWriter::Open(
                         root / kCustomerTableList[i].file, kCustomerTableList[i].schema(),
                         "event_timestamp", world.history_start, kEventBucket, kEventRowGroupRows));
    }
    std::vector<TurnTaker> turns(kCustomerTables);
    Progress progress("customers", options.scale.customers, "customers", options.progress);
    std::vector<std::function<Status()>> tasks;
    const int64_t per_shard = options.scale.customers_per_shard;
    const int64_t shards = (options.scale.customers + per_shard - 1) / per_shard;
    for (int64_t shard = 0; shard < shards; ++shard) {
      tasks.push_back([&, shard]() -> Status {
        CustomerBatch batch;
        const int64_t first = shard * per_shard + 1;
        const int64_t last = std::min(options.scale.customers, first + per_shard - 1);
        for (int64_t id = first; id <= last; ++id)
          GenerateCustomer(world, options.seed, id, &batch);
        std::vector<std::shared_ptr<arrow::RecordBatch>> batches(kCustomerTables);
        GRANARY_ASSIGN_OR_RAISE(batches[0], CustomersBatch(batch, world));
        // In the order of kCustomerTableList, after customers.
        static constexpr BatchFn rest[] = {
            SessionsBatch,         PaymentsBatch,         DisputesBatch,          ViolationsBatch,
            CustomerProfilesBatch, CustomerPaymentsBatch, CustomerRiskLabelsBatch};
        static_assert(std::size(rest) == kCustomerTables - 1);
        for (int i = 1; i < kCustomerTables; ++i) {
          GRANARY_ASSIGN_OR_RAISE(batches[i], rest[i - 1](batch));
        }
        for (int i = 0; i < kCustomerTables; ++i) {
          GRANARY_RETURN_NOT_OK(turns[i].RunInTurn(shard, [&] {
            return i == 0 ? customers->Write(*batches[i]) : events[i]->Append(*batches[i]);
          }));
        }
        progress.Add(last - first + 1);
        return Status::OK();
      });
    }
    GRANARY_RETURN_NOT_OK(RunTasks(tasks, threads, [&] {
      for (TurnTaker& t : turns) t.Cancel();
    }));
    progress.Finish();
    for (int i = 0; i < kCustomerTables; ++i) {
      TableSummary t{kCustomerTableList[i].name, kCustomerTableList[i].file};
      t.files = 1;
      if (i == 0) {
        t.rows = customers->rows();
        GRANARY_ASSIGN_OR_RAISE(t.bytes, customers->Close());
      } else {
        t.rows = events[i]->rows();
        GRANARY_ASSIGN_OR_RAISE(t.bytes, events[i]->Close());
      }
      summary.tables.push_back(t);
    }
  }

  // Bay telemetry, in groups of bays.
  {
    const int64_t bays = options.scale.bays;
    const int64_t groups =
        std::min<int64_t>(bays, std::max<int64_t>(2, (bays + options.scale.bays_per_group - 1) /
                                                         options.scale.bays_per_group));
    const int64_t per_group = (bays + groups - 1) / groups;
    fs::create_directories(root / kOccupancyDir, ec);
    fs::create_directories(root / kOccupancyDelta, ec);
    if (!ec) fs::create_directories(root / kDemandLabels, ec);
    if (ec) return Status::IOError(fmt::format("cannot create folders in {}", root.string()));
    Progress progress("bay telemetry", bays * options.scale.days * kTicksPerDay, "rows",
                      options.progress);
    std::vector<std::unique_ptr<TelemetryGroup>> parts;
    std::vector<std::function<Status()>> tasks;
    for (int64_t g = 0; g < groups; ++g) {
      const auto first = static_cast<size_t>(g * per_group);
      const auto last = static_cast<size_t>(std::min(bays, (g + 1) * per_group));
      if (first >= last) break;
      parts.push_back(std::make_unique<TelemetryGroup>(world, options, static_cast<int>(g), first,
                                                       last, root, &progress));
      TelemetryGroup* part = parts.back().get();
      tasks.push_back([part] { return part->Run(); });
    }
    GRANARY_RETURN_NOT_OK(RunTasks(tasks, threads, [] {}));
    progress.Finish();

    std::vector<DeltaAddFile> adds;
    TableSummary parquet{"bay_occupancy", kOccupancyDir};
    TableSummary delta{"bay_occupancy_delta", kOccupancyDelta};
    TableSummary labels{"bay_demand_labels", kDemandLabels};
    for (auto& part : parts) {
      for (DeltaAddFile& a : part->adds()) {
        delta.bytes += a.size;
        adds.push_back(std::move(a));
      }
      parquet.rows += part->rows();
      parquet.files += part->parquet_files();
      parquet.bytes += part->parquet_bytes();
      labels.rows += part->label_rows();
      labels.bytes += part->label_bytes();
      ++labels.files;
    }
    std::sort(adds.begin(), adds.end(),
              [](const DeltaAddFile& a, const DeltaAddFile& b) { return a.path < b.path; });
    delta.rows = parquet.rows;
    delta.files = static_cast<int64_t>(adds.size());
    Rng ids(options.seed, Stream::kFileIds, UINT64_MAX);
    DeltaTableSpec spec;
    spec.id = UuidFromBits(ids.Next(), ids.Next());
    spec.name = "bay_occupancy";
    spec.description = "Occupancy per parking bay every 15 minutes (granary datagen)";
    spec.schema = BayOccupancySchema(true);
    spec.partition_columns = {"event_date"};
    spec.created_time_ms = world.end.micros / 1000;
    GRANARY_RETURN_NOT_OK(WriteDeltaLog(root / kOccupancyDelta, spec, adds));
    summary.tables.push_back(parquet);
    summary.tables.push_back(delta);
    summary.tables.push_back(labels);
  }

  GRANARY_RETURN_NOT_OK(WriteManifest(root / "datagen.json", options, summary));
  std::vector<std::string> names;
  for (const TableSummary& t : summary.tables) names.push_back(t.path);
  names.push_back("datagen.json");
  GRANARY_RETURN_NOT_OK(MoveInto(root, options.out, names));
  return summary;
}

}  // namespace granary::datagen
