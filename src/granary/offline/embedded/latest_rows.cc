#include "granary/offline/embedded/latest_rows.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "granary/common/progress.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"

namespace granary {
namespace {

constexpr int64_t kNoCreated = std::numeric_limits<int64_t>::min();
// The integer table's maximum load, as a percentage: past it the table doubles.
constexpr int64_t kMaxLoadPercent = 70;
constexpr const char* kPositionColumn = "__granary_position";

// Appends one row's key values as bytes that are equal exactly when the keys are equal (the
// columns of one view always have the same types).
Status AppendKeyBytes(const std::vector<std::shared_ptr<arrow::Array>>& keys, int64_t row,
                      std::string* out) {
  for (const auto& array : keys) {
    switch (array->type_id()) {
      case arrow::Type::STRING:
      case arrow::Type::BINARY: {
        const auto& a = static_cast<const arrow::BinaryArray&>(*array);
        const std::string_view v = a.GetView(row);
        const uint32_t n = static_cast<uint32_t>(v.size());
        out->append(reinterpret_cast<const char*>(&n), sizeof(n));
        out->append(v);
        break;
      }
      case arrow::Type::LARGE_STRING:
      case arrow::Type::LARGE_BINARY: {
        const auto& a = static_cast<const arrow::LargeBinaryArray&>(*array);
        const std::string_view v = a.GetView(row);
        const uint64_t n = v.size();
        out->append(reinterpret_cast<const char*>(&n), sizeof(n));
        out->append(v);
        break;
      }
      case arrow::Type::BOOL:
        out->push_back(static_cast<const arrow::BooleanArray&>(*array).Value(row) ? 1 : 0);
        break;
      default: {
        // Fixed-width values (integers, floats, timestamps): their bytes.
        const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(array->type().get());
        if (fixed == nullptr || fixed->bit_width() % 8 != 0) {
          return Status::InvalidArgument(
              fmt::format("a join key of type {} is not supported", array->type()->ToString()));
        }
        const int width = fixed->bit_width() / 8;
        const uint8_t* values = array->data()->GetValues<uint8_t>(1, 0);
        out->append(reinterpret_cast<const char*>(values + (array->offset() + row) * width), width);
      }
    }
  }
  return Status::OK();
}

bool AnyNull(const std::vector<std::shared_ptr<arrow::Array>>& keys, int64_t row) {
  for (const auto& k : keys) {
    if (k->IsNull(row)) return true;
  }
  return false;
}

bool Greater(int64_t e1, int64_t c1, int64_t p1, int64_t e2, int64_t c2, int64_t p2) {
  if (e1 != e2) return e1 > e2;
  if (c1 != c2) return c1 > c2;
  return p1 > p2;
}

}  // namespace

void LatestRowTable::OfferOne(Entry* slot, bool inserted, const Entry& row) {
  if (inserted ||
      Greater(row.event, row.created, row.position, slot->event, slot->created, slot->position)) {
    *slot = row;
  }
}

Status LatestRowTable::Offer(const std::vector<std::shared_ptr<arrow::Array>>& keys,
                             const arrow::Array& event_ts, const arrow::Array* created_ts,
                             int64_t position_offset, const arrow::Array* positions) {
  const int64_t n = event_ts.length();
  if (n == 0) return Status::OK();
  const int64_t* event = event_ts.data()->GetValues<int64_t>(1);
  const int64_t* created = created_ts ? created_ts->data()->GetValues<int64_t>(1) : nullptr;
  const int64_t* position = positions ? positions->data()->GetValues<int64_t>(1) : nullptr;
  const bool key_nulls =
      std::any_of(keys.begin(), keys.end(), [](const auto& k) { return k->null_count() != 0; });
  auto row_of = [&](int64_t i) {
    Entry e;
    e.event = event[i];
    e.created = created == nullptr || created_ts->IsNull(i) ? kNoCreated : created[i];
    e.position = position ? position[i] : position_offset + i;
    return e;
  };
  if (integer_keys_) {
    GRANARY_ASSIGN_OR_RAISE(KeyColumns columns, KeyColumns::Make(keys));
    std::vector<uint64_t> hashes(n);
    columns.HashRows(hashes.data());         // a bijection of the value: exact
    if (slots_.empty()) ReserveIntegers(1);  // 64 slots, doubled as entities arrive
    constexpr int64_t kAhead = 8;  // slots fetched ahead: the table is larger than the caches
    for (int64_t i = 0; i < n; ++i) {
      if (i + kAhead < n) __builtin_prefetch(&slots_[hashes[i + kAhead] & (slots_.size() - 1)]);
      if (key_nulls && columns.IsNull(i)) {
        ++null_key_rows_;
        continue;
      }
      if (max_bytes_ > 0 &&
          (used_slots_ + 1) * 100 > static_cast<int64_t>(slots_.size()) * kMaxLoadPercent &&
          static_cast<int64_t>(2 * slots_.size() * sizeof(Slot)) > max_bytes_) {
        full_ = true;  // the next insert would double the slots past the bound
        return Status::OK();
      }
      bool inserted = false;
      Entry* slot = FindOrInsert(hashes[i], &inserted);
      OfferOne(slot, inserted, row_of(i));
    }
    return Status::OK();
  }
  std::string key;
  for (int64_t i = 0; i < n; ++i) {
    if (key_nulls && AnyNull(keys, i)) {
      ++null_key_rows_;
      continue;
    }
    key.clear();
    GRANARY_RETURN_NOT_OK(AppendKeyBytes(keys, i, &key));
    auto [it, inserted] = by_bytes_.try_emplace(key);
    if (inserted && key.size() > 15) key_bytes_ += static_cast<int64_t>(key.size());
    OfferOne(&it->second, inserted, row_of(i));
  }
  return Status::OK();
}

void LatestRowTable::ReserveIntegers(int64_t entities) {
  size_t capacity = slots_.empty() ? 64 : slots_.size();
  while (entities * 100 > static_cast<int64_t>(capacity) * kMaxLoadPercent) capacity *= 2;
  if (capacity == slots_.size()) return;
  std::vector<Slot> old(capacity);
  old.swap(slots_);
  const uint64_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.entry.position < 0) continue;
    uint64_t i = s.key & mask;
    while (slots_[i].entry.position >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

LatestRowTable::Entry* LatestRowTable::FindOrInsert(uint64_t key, bool* inserted) {
  // Grown before a probe that could insert past the maximum load; the slot returned stays put
  // until the next call.
  ReserveIntegers(used_slots_ + 1);
  // The keys are KeyColumns' mixed hashes of the values (a bijection): their low bits spread.
  const uint64_t mask = slots_.size() - 1;
  for (uint64_t i = key & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.entry.position < 0) {
      s.key = key;
      ++used_slots_;
      *inserted = true;
      return &s.entry;
    }
    if (s.key == key) {
      *inserted = false;
      return &s.entry;
    }
  }
}

int64_t LatestRowTable::entities() const {
  return integer_keys_ ? used_slots_ : static_cast<int64_t>(by_bytes_.size());
}

int64_t LatestRowTable::BytesPerEntity(bool single_integer_key) {
  if (single_integer_key) {
    // A slot at the table's average load (between 35 % and 70 %: half full).
    return static_cast<int64_t>(sizeof(Slot)) * 2;
  }
  // A node (key, entry, next pointer) plus the allocator's header, and a bucket pointer.
  constexpr int64_t kOverhead = 16 + 8 + 8;
  return static_cast<int64_t>(sizeof(Entry)) + kOverhead +
         static_cast<int64_t>(sizeof(std::string)) + 8;
}

int64_t LatestRowTable::memory_bytes() const {
  if (integer_keys_) return static_cast<int64_t>(slots_.size() * sizeof(Slot));
  return entities() * BytesPerEntity(false) + key_bytes_;
}

void LatestRowTable::TakeChosen(std::vector<ChosenRow>* out) {
  out->reserve(out->size() + entities());
  for (const Slot& s : slots_) {
    if (s.entry.position >= 0) out->push_back({s.entry.position, s.entry.event});
  }
  for (const auto& [key, e] : by_bytes_) out->push_back({e.position, e.event});
  slots_ = {};
  used_slots_ = 0;
  by_bytes_ = {};
  key_bytes_ = 0;
}

bool SameScanPlan(const SourceScanStats& a, const SourceScanStats& b) {
  return a.files_total == b.files_total && a.files_pruned == b.files_pruned &&
         a.row_groups_total == b.row_groups_total && a.row_groups_pruned == b.row_groups_pruned &&
         a.rows_estimated == b.rows_estimated;
}

namespace {

bool IsCancelled(const LatestRowsOptions& options) {
  return options.cancel != nullptr && options.cancel->cancelled();
}

Status CancelledStatus(const FeatureView& view) {
  return Status::Cancelled(fmt::format("feature view '{}': materialization cancelled", view.name));
}

// Sorts `rows` by read position (distinct) and encodes the positions, emptying `rows` (its
// capacity kept for the next partition); with `times`, their event times in the same order.
PositionList SortAndEncode(std::vector<ChosenRow>* rows, std::vector<int64_t>* times) {
  int64_t last = 0;
  for (const ChosenRow& c : *rows) last = std::max(last, c.index);
  SortByReadPosition(rows, last);
  PositionList::Builder positions;
  if (times != nullptr) times->reserve(rows->size());
  for (const ChosenRow& c : *rows) {
    positions.Append(c.index);
    if (times != nullptr) times->push_back(c.event_ts);
  }
  rows->clear();
  return positions.Finish();
}

}  // namespace

Result<LatestRowsChoice> SelectLatestRows(const ViewSource& source, const SourceSnapshot& files,
                                          const LatestRowsOptions& options,
                                          LatestRowsStats* stats) {
  SourceScanOptions scan_options = source.options;
  scan_options.with_features = false;
  scan_options.with_join_keys = true;
  scan_options.with_created_timestamp = true;
  GRANARY_ASSIGN_OR_RAISE(auto scan,
                          FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
  if (options.progress != nullptr) options.progress->SetTotal(scan->stats().rows_estimated);
  // A copy: the scan may be opened again below.
  const std::shared_ptr<arrow::Schema> schema = scan->schema();
  std::vector<int> key_indices;
  for (const std::string& k : scan->join_keys()) key_indices.push_back(schema->GetFieldIndex(k));
  const int ts_index = scan->event_timestamp_index();
  const int created_index =
      scan->has_created_timestamp() ? schema->GetFieldIndex(kCreatedTimestampColumn) : -1;
  bool single_integer_key = false;
  if (key_indices.size() == 1) {
    switch (schema->field(key_indices[0])->type()->id()) {
      case arrow::Type::INT32:
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP:
        single_integer_key = true;
        break;
      default:
        break;
    }
  }

  // What must be held is one entry per distinct entity, which only reading tells: the rows in
  // range bound it (the worst case: every row a distinct entity), but a few entities with long
  // histories need no more than a small table. So the table is tried in memory first; only when
  // it outgrows the budget is the scan started again, split by entity into partitions sized by
  // the entities seen so far extrapolated to the whole range. The keys and times read before
  // the switch are read twice; nothing is spilled for sources whose entities fit.
  // CSV reports no row count; a CSV row takes at least 8 bytes, so its bytes bound the rows.
  const int64_t rows_bound = scan->stats().rows_estimated > 0 ? scan->stats().rows_estimated
                                                              : scan->stats().bytes_estimated / 8;
  const int64_t entity_bytes = LatestRowTable::BytesPerEntity(single_integer_key);
  const int64_t half_budget = std::max<int64_t>(1, options.memory_budget_bytes / 2);
  int partitions = options.TEST_force_partitions;
  LatestRowsChoice choice;
  std::vector<ChosenRow> chosen;  // a table's chosen rows, unsorted
  int64_t rows_read = 0;          // rows in range, for the plan and the progress

  auto read_keys = [&](const arrow::RecordBatch& batch) {
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices) keys.push_back(batch.column(i));
    return keys;
  };

  if (partitions == 0) {
    LatestRowTable table(single_integer_key);
    table.set_max_bytes(options.memory_budget_bytes);
    bool outgrown = false;
    while (true) {
      if (IsCancelled(options)) return CancelledStatus(*source.view);
      GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
      if (batch == nullptr) break;
      const ReadPositions& at = scan->positions();
      GRANARY_RETURN_NOT_OK(
          table.Offer(read_keys(*batch), *batch->column(ts_index),
                      created_index >= 0 ? batch->column(created_index).get() : nullptr, at.first,
                      at.rows.get()));
      rows_read += batch->num_rows();
      stats->peak_state_bytes = std::max(stats->peak_state_bytes, table.memory_bytes());
      if (options.progress != nullptr) options.progress->Add(batch->num_rows());
      if (table.full() || table.memory_bytes() > options.memory_budget_bytes) {
        outgrown = true;
        break;
      }
    }
    if (!outgrown) {
      // The table fit the budget: its entities are few enough that their times (8 bytes each,
      // a fraction of the table's slots) are kept for the second pass.
      stats->null_key_rows = table.null_key_rows();
      table.TakeChosen(&chosen);
      choice.has_event_times = true;
      choice.positions = SortAndEncode(&chosen, &choice.event_times);
      chosen = {};
    } else {
      const int64_t read = std::max<int64_t>(1, rows_read);
      const double entities_expected = static_cast<double>(table.entities()) *
                                       static_cast<double>(std::max(rows_bound, read)) /
                                       static_cast<double>(read);
      const auto bytes_expected = static_cast<int64_t>(entities_expected) * entity_bytes;
      partitions = static_cast<int>(
          std::clamp<int64_t>((bytes_expected + half_budget - 1) / half_budget, 2, 4096));
      stats->rows_read_twice = rows_read;
      table = LatestRowTable(single_integer_key);
      scan.reset();
      GRANARY_ASSIGN_OR_RAISE(
          scan, FeatureSourceScan::Open(files, *source.defs, *source.view, scan_options));
      if (options.progress != nullptr) options.progress->SetTotal(rows_bound + rows_read);
    }
  }
  stats->partitions = partitions;
  if (partitions > 0) {
    // Keys, times and positions only, split by entity.
    arrow::FieldVector fields;
    for (int i : key_indices) fields.push_back(schema->field(i));
    fields.push_back(schema->field(ts_index));
    if (created_index >= 0) fields.push_back(schema->field(created_index));
    fields.push_back(arrow::field(kPositionColumn, arrow::int64()));
    auto record_schema = arrow::schema(fields);
    PartitionerOptions popts;
    popts.num_partitions = partitions;
    popts.memory_budget_bytes = half_budget;
    popts.spill_parent = options.spill_dir;
    GRANARY_ASSIGN_OR_RAISE(auto partitioner,
                            EntityPartitioner::Make(record_schema, scan->join_keys(), popts));
    while (true) {
      if (IsCancelled(options)) return CancelledStatus(*source.view);
      GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
      if (batch == nullptr) break;
      const int64_t n = batch->num_rows();
      const ReadPositions& at = scan->positions();
      std::shared_ptr<arrow::Array> position_array = at.rows;
      if (position_array == nullptr) {
        arrow::Int64Builder positions;
        if (!positions.Resize(n).ok()) return Status::Internal("out of memory");
        for (int64_t i = 0; i < n; ++i) positions.UnsafeAppend(at.first + i);
        if (!positions.Finish(&position_array).ok()) return Status::Internal("out of memory");
      }
      arrow::ArrayVector columns = read_keys(*batch);
      columns.push_back(batch->column(ts_index));
      if (created_index >= 0) columns.push_back(batch->column(created_index));
      columns.push_back(position_array);
      GRANARY_RETURN_NOT_OK(
          partitioner->Append(arrow::RecordBatch::Make(record_schema, n, std::move(columns))));
      if (options.progress != nullptr) options.progress->Add(n);
    }
    GRANARY_RETURN_NOT_OK(partitioner->Finish());
    const int record_ts = static_cast<int>(key_indices.size());
    const int record_created = created_index >= 0 ? record_ts + 1 : -1;
    const int record_position = record_schema->num_fields() - 1;
    // Each partition's chosen positions, sorted and encoded, merged at the end.
    std::vector<PositionList> runs;
    for (int p = 0; p < partitions; ++p) {
      if (IsCancelled(options)) return CancelledStatus(*source.view);
      GRANARY_ASSIGN_OR_RAISE(auto part, partitioner->ReadPartition(p));
      LatestRowTable table(single_integer_key);
      arrow::TableBatchReader reader(*part);
      std::shared_ptr<arrow::RecordBatch> batch;
      while (true) {
        auto st = reader.ReadNext(&batch);
        if (!st.ok()) return Status::IOError(st.ToString());
        if (batch == nullptr) break;
        std::vector<std::shared_ptr<arrow::Array>> keys;
        for (size_t k = 0; k < key_indices.size(); ++k) keys.push_back(batch->column(k));
        GRANARY_RETURN_NOT_OK(
            table.Offer(keys, *batch->column(record_ts),
                        record_created >= 0 ? batch->column(record_created).get() : nullptr, 0,
                        batch->column(record_position).get()));
      }
      stats->peak_state_bytes = std::max(
          stats->peak_state_bytes, partitioner->stats().bytes_in_memory + table.memory_bytes());
      stats->null_key_rows += table.null_key_rows();
      table.TakeChosen(&chosen);
      runs.push_back(SortAndEncode(&chosen, nullptr));
      partitioner->Release(p);
    }
    chosen = {};
    choice.positions = PositionList::Merge(runs);
    stats->bytes_spilled = partitioner->stats().bytes_spilled;
    stats->peak_state_bytes =
        std::max(stats->peak_state_bytes, partitioner->stats().peak_bytes_in_memory);
  }
  stats->scan = scan->stats();
  stats->files_fingerprint = scan->FilesFingerprint();
  return choice;
}

}  // namespace granary
