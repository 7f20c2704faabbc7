#include "granary/offline/window_partition.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "granary/aggregation/window_kernel.h"
#include "granary/common/strings.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/source_inspector.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

Status ArrowError(const arrow::Status& st) { return Status::Internal(st.ToString()); }

Result<std::shared_ptr<arrow::Array>> Column(const arrow::Table& table, const std::string& name) {
  auto column = table.GetColumnByName(name);
  if (column == nullptr) return Status::Internal("missing column " + name);
  if (column->num_chunks() == 1) return column->chunk(0);
  if (column->num_chunks() == 0) {
    auto empty = arrow::MakeArrayOfNull(column->type(), 0);
    if (!empty.ok()) return ArrowError(empty.status());
    return *empty;
  }
  auto combined = arrow::Concatenate(column->chunks());
  if (!combined.ok()) return ArrowError(combined.status());
  return *combined;
}

Result<std::shared_ptr<arrow::Array>> TakeSorted(const std::shared_ptr<arrow::Array>& array,
                                                 const std::shared_ptr<arrow::Array>& order) {
  auto taken = arrow::compute::Take(*array, *order);
  if (!taken.ok()) return ArrowError(taken.status());
  return *taken;
}

}  // namespace

Result<AggregationColumns> AggregationColumnsOf(
    const ViewSource& source, const std::vector<const Aggregation*>& aggregations) {
  AggregationColumns needed;
  const DataSource* data = source.defs->FindOfflineSource(source.view->source);
  if (data == nullptr) {
    return Status::InvalidArgument(fmt::format("feature view '{}': unknown data source '{}'",
                                               source.view->name, source.view->source));
  }
  std::optional<InspectedSchema> inspected;
  auto add = [&](const std::string& name, bool is_where) -> Status {
    if (name.empty() || needed.index.count(name)) return Status::OK();
    ValueType type = ValueType::Scalar(ScalarType::kBool);
    if (!is_where) {
      if (!inspected) {
        FileSourceInspector inspector(source.repo_root);
        GRANARY_ASSIGN_OR_RAISE(auto schema, inspector.Inspect(*data));
        if (!schema) {
          return Status::NotFound(
              fmt::format("feature view '{}': data source '{}' has no data at '{}'",
                          source.view->name, data->name, data->path));
        }
        inspected = std::move(*schema);
      }
      auto field = inspected->schema->GetFieldByName(data->SourceColumnFor(name));
      if (field == nullptr) {
        return Status::InvalidArgument(fmt::format(
            "feature view '{}': column '{}' of its aggregations is not in data source '{}'; "
            "the columns are: {}",
            source.view->name, name, data->name, Join(inspected->schema->field_names(), ", ")));
      }
      GRANARY_ASSIGN_OR_RAISE(type, FromArrowType(*field->type()));
    }
    needed.index[name] = static_cast<int>(needed.columns.size());
    needed.columns.push_back(Field{name, type, "", {}});
    return Status::OK();
  };
  for (const Aggregation* a : aggregations) {
    GRANARY_RETURN_NOT_OK(add(a->column, false));
    GRANARY_RETURN_NOT_OK(add(a->where, true));
  }
  return needed;
}

namespace {

// The positions of `group` ordered by (group, time, position); negative groups are left out.
// A counting sort by group, then each group's (usually short, often already ordered) run by time.
template <typename TimeOf>
std::vector<int64_t> OrderByGroupAndTime(const std::vector<int64_t>& group, int64_t num_groups,
                                         TimeOf time_of) {
  std::vector<int64_t> start(num_groups + 1, 0);
  for (int64_t g : group) {
    if (g >= 0) ++start[g + 1];
  }
  for (int64_t g = 0; g < num_groups; ++g) start[g + 1] += start[g];
  std::vector<int64_t> order(start[num_groups]);
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < static_cast<int64_t>(group.size()); ++i) {
      if (group[i] >= 0) order[next[group[i]]++] = i;
    }
  }
  auto before = [&](int64_t a, int64_t b) {
    const int64_t ta = time_of(a), tb = time_of(b);
    return ta != tb ? ta < tb : a < b;
  };
  for (int64_t g = 0; g < num_groups; ++g) {
    auto first = order.begin() + start[g], last = order.begin() + start[g + 1];
    if (!std::is_sorted(first, last, before)) std::sort(first, last, before);
  }
  return order;
}

}  // namespace

Result<PartitionAnswers> AggregatePartition(const arrow::Table& rows, const arrow::Table& events,
                                            const std::vector<std::string>& key_names,
                                            const std::vector<const Aggregation*>& aggregations,
                                            const AggregationColumns& needed, Duration granularity,
                                            int64_t* events_used, int64_t* rows_with_events) {
  // Dense ids of the rows' distinct keys; events of other keys are dropped.
  std::vector<std::shared_ptr<arrow::Array>> row_keys, event_keys;
  for (const std::string& k : key_names) {
    GRANARY_ASSIGN_OR_RAISE(auto rk, Column(rows, k));
    GRANARY_ASSIGN_OR_RAISE(auto ek, Column(events, k));
    row_keys.push_back(rk);
    event_keys.push_back(ek);
  }
  GRANARY_ASSIGN_OR_RAISE(KeyColumns rkeys, KeyColumns::Make(row_keys));
  GRANARY_ASSIGN_OR_RAISE(KeyColumns ekeys, KeyColumns::Make(event_keys));
  const int64_t n = rows.num_rows();
  const int64_t m = events.num_rows();
  std::vector<uint64_t> rhash(n), ehash(m);
  rkeys.HashRows(rhash.data());
  ekeys.HashRows(ehash.data());
  const bool injective = rkeys.hash_is_injective();
  // Open addressing, hash -> (id, representative row) of each distinct key; equal hashes of
  // different keys (only possible for non-injective hashes) take further slots.
  struct Slot {
    uint64_t hash = 0;
    int64_t id = -1;
    int64_t row = 0;
  };
  size_t capacity = 16;
  while (capacity < static_cast<size_t>(2 * n)) capacity <<= 1;
  std::vector<Slot> table(capacity);
  const size_t mask = capacity - 1;
  std::vector<int64_t> row_group(n, -1), event_group(m, -1);
  int64_t next_id = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (rkeys.IsNull(r)) continue;  // matches no event: an empty window
    size_t at = MixBits(rhash[r]) & mask;
    while (table[at].id >= 0 &&
           !(table[at].hash == rhash[r] && (injective || rkeys.Equals(r, rkeys, table[at].row)))) {
      at = (at + 1) & mask;
    }
    if (table[at].id < 0) table[at] = Slot{rhash[r], next_id++, r};
    row_group[r] = table[at].id;
  }
  for (int64_t e = 0; e < m; ++e) {
    if (ekeys.IsNull(e)) continue;
    for (size_t at = MixBits(ehash[e]) & mask; table[at].id >= 0; at = (at + 1) & mask) {
      if (table[at].hash == ehash[e] && (injective || ekeys.Equals(e, rkeys, table[at].row))) {
        event_group[e] = table[at].id;
        break;
      }
    }
  }
  // Rows with a null key: a group of their own that no event has.
  const int64_t num_groups = next_id + 1;
  for (int64_t& g : row_group) {
    if (g < 0) g = next_id;
  }
  GRANARY_ASSIGN_OR_RAISE(auto row_time_array, Column(rows, kEventTimestampColumn));
  GRANARY_ASSIGN_OR_RAISE(auto event_time_array, Column(events, kEventTimestampColumn));
  const int64_t* row_time = row_time_array->data()->GetValues<int64_t>(1);
  const int64_t* event_time = event_time_array->data()->GetValues<int64_t>(1);

  // Rows by (group, time); events of wanted keys by (group, time), ties in read order.
  auto row_t = [&](int64_t r) {
    return row_time_array->IsNull(r) ? std::numeric_limits<int64_t>::min() : row_time[r];
  };
  std::vector<int64_t> row_order = OrderByGroupAndTime(row_group, num_groups, row_t);
  std::vector<int64_t> event_order =
      OrderByGroupAndTime(event_group, num_groups, [&](int64_t e) { return event_time[e]; });
  *events_used += static_cast<int64_t>(event_order.size());

  const int64_t k = static_cast<int64_t>(event_order.size());
  std::vector<int64_t> sorted_row_group(n), sorted_row_time(n), sorted_event_group(k),
      sorted_event_time(k);
  std::vector<uint8_t> row_valid(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = row_order[i];
    sorted_row_group[i] = row_group[r];
    sorted_row_time[i] = row_time[r];
    row_valid[i] = row_time_array->IsValid(r);
  }
  for (int64_t i = 0; i < k; ++i) {
    sorted_event_group[i] = event_group[event_order[i]];
    sorted_event_time[i] = event_time[event_order[i]];
  }
  arrow::Int64Builder order_builder;
  if (auto st = order_builder.AppendValues(event_order); !st.ok()) return ArrowError(st);
  std::shared_ptr<arrow::Array> event_take;
  if (auto st = order_builder.Finish(&event_take); !st.ok()) return ArrowError(st);
  std::vector<std::shared_ptr<arrow::Array>> sorted_columns(needed.columns.size());
  for (size_t c = 0; c < needed.columns.size(); ++c) {
    GRANARY_ASSIGN_OR_RAISE(auto column, Column(events, needed.columns[c].name));
    GRANARY_ASSIGN_OR_RAISE(sorted_columns[c], TakeSorted(column, event_take));
  }

  // Entity rows with at least one event of their key in the longest window asked: what the
  // training-set summary reports as matched (the others get count 0 and nulls). Events are
  // sorted by (group, time), so the first event at or after a row's window start is found by
  // binary search.
  Duration longest;
  for (const Aggregation* a : aggregations) longest = std::max(longest, a->window);
  for (int64_t i = 0; i < n; ++i) {
    if (!row_valid[i]) continue;
    const int64_t g = sorted_row_group[i];
    const int64_t t = sorted_row_time[i];
    const int64_t start = aggregation::WindowStart(t, longest, granularity);
    int64_t lo = 0, hi = k;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted_event_group[mid] < g ||
          (sorted_event_group[mid] == g && sorted_event_time[mid] < start)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo < k && sorted_event_group[lo] == g && sorted_event_time[lo] <= t) ++*rows_with_events;
  }

  aggregation::WindowInput input;
  input.event_group = sorted_event_group.data();
  input.event_time = sorted_event_time.data();
  input.num_events = k;
  input.row_group = sorted_row_group.data();
  input.row_time = sorted_row_time.data();
  input.row_valid = row_valid.data();
  input.num_rows = n;
  input.granularity = granularity;
  std::vector<aggregation::WindowSpec> specs;
  for (const Aggregation* a : aggregations) {
    aggregation::WindowSpec spec;
    spec.function = a->function;
    spec.window = a->window;
    spec.output_type = *a->type;
    if (!a->column.empty()) spec.values = sorted_columns[needed.index.at(a->column)];
    if (!a->where.empty()) spec.where = sorted_columns[needed.index.at(a->where)];
    specs.push_back(std::move(spec));
  }
  PartitionAnswers out;
  GRANARY_ASSIGN_OR_RAISE(out.values, aggregation::ComputeWindows(input, specs));
  GRANARY_ASSIGN_OR_RAISE(auto row_ids, Column(rows, kWindowRowColumn));
  arrow::Int64Builder row_take;
  if (auto st = row_take.AppendValues(row_order); !st.ok()) return ArrowError(st);
  std::shared_ptr<arrow::Array> row_take_array;
  if (auto st = row_take.Finish(&row_take_array); !st.ok()) return ArrowError(st);
  GRANARY_ASSIGN_OR_RAISE(out.rows, TakeSorted(row_ids, row_take_array));
  return out;
}

}  // namespace granary
