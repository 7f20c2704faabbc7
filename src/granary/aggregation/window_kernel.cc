#include "granary/aggregation/window_kernel.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>

#include "granary/types/arrow_convert.h"

namespace granary::aggregation {
namespace {

// Typed read access to an events column: integers (bool, int8..int64, timestamps, dates) as
// int64, floating values as double, strings and binaries as bytes.
class ColumnReader {
 public:
  enum class Kind { kInt, kFloat, kBytes, kOther };

  static Result<ColumnReader> Make(const std::shared_ptr<arrow::Array>& array) {
    ColumnReader r;
    r.array_ = array;
    switch (array->type_id()) {
      case arrow::Type::BOOL:
        r.kind_ = Kind::kInt;
        r.bools_ = static_cast<const arrow::BooleanArray*>(array.get());
        break;
      case arrow::Type::INT8:
      case arrow::Type::INT16:
      case arrow::Type::INT32:
      case arrow::Type::INT64:
      case arrow::Type::UINT8:
      case arrow::Type::UINT16:
      case arrow::Type::UINT32:
      case arrow::Type::TIMESTAMP:
      case arrow::Type::DATE32:
      case arrow::Type::DATE64: {
        r.kind_ = Kind::kInt;
        auto cast = arrow::compute::Cast(*array, arrow::int64(),
                                         arrow::compute::CastOptions::Unsafe(arrow::int64()));
        if (!cast.ok()) return Status::Internal(cast.status().ToString());
        r.cast_ = *cast;
        r.ints_ = r.cast_->data()->GetValues<int64_t>(1);
        break;
      }
      case arrow::Type::FLOAT:
      case arrow::Type::DOUBLE: {
        r.kind_ = Kind::kFloat;
        auto cast = arrow::compute::Cast(*array, arrow::float64());
        if (!cast.ok()) return Status::Internal(cast.status().ToString());
        r.cast_ = *cast;
        r.doubles_ = r.cast_->data()->GetValues<double>(1);
        break;
      }
      case arrow::Type::STRING:
      case arrow::Type::BINARY:
        r.kind_ = Kind::kBytes;
        r.binary_ = static_cast<const arrow::BinaryArray*>(array.get());
        break;
      case arrow::Type::LARGE_STRING:
      case arrow::Type::LARGE_BINARY:
        r.kind_ = Kind::kBytes;
        r.large_binary_ = static_cast<const arrow::LargeBinaryArray*>(array.get());
        break;
      default:
        r.kind_ = Kind::kOther;  // lists: count, first and last only
        break;
    }
    return r;
  }

  Kind kind() const { return kind_; }
  bool IsValid(int64_t i) const { return array_->IsValid(i); }
  int64_t Int(int64_t i) const { return bools_ != nullptr ? bools_->Value(i) : ints_[i]; }
  double Double(int64_t i) const {
    return kind_ == Kind::kFloat ? doubles_[i] : static_cast<double>(Int(i));
  }
  std::string_view Bytes(int64_t i) const {
    return binary_ != nullptr ? binary_->GetView(i) : large_binary_->GetView(i);
  }
  // a < b for values of this column (both valid).
  bool Less(int64_t a, int64_t b) const {
    switch (kind_) {
      case Kind::kInt:
        return Int(a) < Int(b);
      case Kind::kFloat:
        return doubles_[a] < doubles_[b];
      default:
        return Bytes(a) < Bytes(b);
    }
  }

 private:
  std::shared_ptr<arrow::Array> array_;
  std::shared_ptr<arrow::Array> cast_;
  Kind kind_ = Kind::kOther;
  const arrow::BooleanArray* bools_ = nullptr;
  const int64_t* ints_ = nullptr;
  const double* doubles_ = nullptr;
  const arrow::BinaryArray* binary_ = nullptr;
  const arrow::LargeBinaryArray* large_binary_ = nullptr;
};

// The running state of one aggregation over the events of one window. Add and Remove are called
// in event order (each event added once, then removed once, oldest first).
class WindowState {
 public:
  WindowState(AggregationFunction function, const ColumnReader* values)
      : function_(function), values_(values) {}

  void Reset() {
    count_ = 0;
    int_sum_ = 0;
    sum_ = 0;
    mean_ = 0;
    m2_ = 0;
    order_.clear();
    max_order_.clear();
    distinct_ints_.clear();
    distinct_bytes_.clear();
  }

  void Add(int64_t e) {
    ++count_;
    switch (function_) {
      case AggregationFunction::kCount:
        break;
      case AggregationFunction::kSum:
      case AggregationFunction::kMean:
        if (values_->kind() == ColumnReader::Kind::kInt) {
          const int64_t v = values_->Int(e);
          int_sum_ += v;
          sum_ += v;
        } else {
          sum_ += values_->Double(e);
        }
        break;
      case AggregationFunction::kStddev: {
        // Welford's update: equal values leave m2_ exactly 0, where a sum of squares would
        // leave rounding residue.
        const long double v = values_->Double(e);
        const long double d = v - mean_;
        mean_ += d / count_;
        m2_ += d * (v - mean_);
        // The window's smallest and largest values, so that a window of equal values gives
        // exactly 0 whatever residue the removals left in m2_.
        while (!order_.empty() && !values_->Less(order_.back(), e)) order_.pop_back();
        order_.push_back(e);
        while (!max_order_.empty() && !values_->Less(e, max_order_.back())) max_order_.pop_back();
        max_order_.push_back(e);
        break;
      }
      case AggregationFunction::kMin:
        while (!order_.empty() && !values_->Less(order_.back(), e)) order_.pop_back();
        order_.push_back(e);
        break;
      case AggregationFunction::kMax:
        while (!order_.empty() && !values_->Less(e, order_.back())) order_.pop_back();
        order_.push_back(e);
        break;
      case AggregationFunction::kFirst:
      case AggregationFunction::kLast:
        order_.push_back(e);
        break;
      case AggregationFunction::kCountDistinct:
        if (values_->kind() == ColumnReader::Kind::kBytes)
          ++distinct_bytes_[std::string(values_->Bytes(e))];
        else
          ++distinct_ints_[DistinctBits(e)];
        break;
    }
  }

  void Remove(int64_t e) {
    --count_;
    switch (function_) {
      case AggregationFunction::kCount:
        break;
      case AggregationFunction::kSum:
      case AggregationFunction::kMean:
        if (values_->kind() == ColumnReader::Kind::kInt) {
          const int64_t v = values_->Int(e);
          int_sum_ -= v;
          sum_ -= v;
        } else {
          sum_ -= values_->Double(e);
        }
        // Subtraction leaves rounding residue in floating sums: an empty window starts afresh.
        if (count_ == 0) sum_ = 0;
        break;
      case AggregationFunction::kStddev: {
        // Welford's update run backwards.
        if (count_ == 0) {
          mean_ = m2_ = 0;
          order_.clear();
          max_order_.clear();
          break;
        }
        const long double v = values_->Double(e);
        const long double d = v - mean_;
        mean_ -= d / count_;
        m2_ -= d * (v - mean_);
        if (m2_ < 0) m2_ = 0;
        if (!order_.empty() && order_.front() == e) order_.pop_front();
        if (!max_order_.empty() && max_order_.front() == e) max_order_.pop_front();
        break;
      }
      case AggregationFunction::kMin:
      case AggregationFunction::kMax:
      case AggregationFunction::kFirst:
      case AggregationFunction::kLast:
        if (!order_.empty() && order_.front() == e) order_.pop_front();
        break;
      case AggregationFunction::kCountDistinct:
        if (values_->kind() == ColumnReader::Kind::kBytes) {
          auto it = distinct_bytes_.find(std::string(values_->Bytes(e)));
          if (--it->second == 0) distinct_bytes_.erase(it);
        } else {
          auto it = distinct_ints_.find(DistinctBits(e));
          if (--it->second == 0) distinct_ints_.erase(it);
        }
        break;
    }
  }

  int64_t count() const { return count_; }
  int64_t int_sum() const { return int_sum_; }
  long double sum() const { return sum_; }
  // The sum of squared deviations from the mean (stddev).
  long double m2() const { return m2_; }
  // stddev: whether every value in the window is the same.
  bool all_equal() const {
    return !order_.empty() && !values_->Less(order_.front(), max_order_.front());
  }
  // The event that is the value (min, max, first, last); -1 when none.
  int64_t chosen() const {
    if (order_.empty()) return -1;
    return function_ == AggregationFunction::kLast ? order_.back() : order_.front();
  }
  int64_t distinct() const {
    return static_cast<int64_t>(distinct_ints_.size() + distinct_bytes_.size());
  }

 private:
  // Equal values give equal bits: -0.0 is 0.0, every NaN one NaN.
  uint64_t DistinctBits(int64_t e) const {
    if (values_->kind() != ColumnReader::Kind::kFloat)
      return static_cast<uint64_t>(values_->Int(e));
    double d = values_->Double(e);
    if (d == 0) d = 0;
    if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof(bits));
    return bits;
  }

  AggregationFunction function_;
  const ColumnReader* values_;
  int64_t count_ = 0;  // events in the window that qualify (where true, value not null)
  int64_t int_sum_ = 0;
  long double sum_ = 0;
  long double mean_ = 0;  // stddev: the running mean and sum of squared deviations
  long double m2_ = 0;
  // min/max: a monotonic deque; first/last: every event, in order; stddev: the minimum's deque.
  std::deque<int64_t> order_;
  std::deque<int64_t> max_order_;  // stddev: the maximum's deque
  std::unordered_map<uint64_t, int64_t> distinct_ints_;
  std::unordered_map<std::string, int64_t> distinct_bytes_;
};

Result<std::shared_ptr<arrow::Array>> Finish(arrow::ArrayBuilder* builder) {
  auto out = builder->Finish();
  if (!out.ok()) return Status::Internal(out.status().ToString());
  return *out;
}

Result<std::shared_ptr<arrow::Array>> ComputeOne(const WindowInput& in, const WindowSpec& spec) {
  const AggregationFunction fn = spec.function;
  if (spec.values == nullptr && AggregationNeedsColumn(fn)) {
    return Status::InvalidArgument(fmt::format("{} needs a column", AggregationFunctionName(fn)));
  }
  ColumnReader reader;
  if (spec.values != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(reader, ColumnReader::Make(spec.values));
    const bool ordered = reader.kind() != ColumnReader::Kind::kOther;
    const bool numeric =
        reader.kind() == ColumnReader::Kind::kInt || reader.kind() == ColumnReader::Kind::kFloat;
    const bool needs_numeric = fn == AggregationFunction::kSum ||
                               fn == AggregationFunction::kMean ||
                               fn == AggregationFunction::kStddev;
    const bool needs_order = fn == AggregationFunction::kMin || fn == AggregationFunction::kMax ||
                             fn == AggregationFunction::kCountDistinct;
    if ((needs_numeric && !numeric) || (needs_order && !ordered)) {
      return Status::InvalidArgument(fmt::format("{} does not apply to a column of type {}",
                                                 AggregationFunctionName(fn),
                                                 spec.values->type()->ToString()));
    }
  }
  const arrow::BooleanArray* where =
      spec.where == nullptr ? nullptr : static_cast<const arrow::BooleanArray*>(spec.where.get());
  if (where != nullptr && spec.where->type_id() != arrow::Type::BOOL) {
    return Status::InvalidArgument("a where column must be bool, not " +
                                   spec.where->type()->ToString());
  }
  auto qualifies = [&](int64_t e) {
    if (where != nullptr && (where->IsNull(e) || !where->Value(e))) return false;
    return spec.values == nullptr || reader.IsValid(e);
  };

  WindowState state(fn, &reader);
  const int64_t n = in.num_rows;
  const bool by_index = fn == AggregationFunction::kMin || fn == AggregationFunction::kMax ||
                        fn == AggregationFunction::kFirst || fn == AggregationFunction::kLast;
  std::vector<int64_t> chosen;  // by_index: the event per row, -1 for null
  arrow::Int64Builder ints;
  arrow::DoubleBuilder doubles;
  const bool int_output = !by_index && spec.output_type.scalar == ScalarType::kInt64;
  if (by_index) chosen.assign(n, -1);
  auto reserve = int_output ? ints.Reserve(n) : doubles.Reserve(n);
  if (!reserve.ok()) return Status::Internal(reserve.ToString());

  int64_t ep = 0;  // first event of the current group
  int64_t r = 0;
  while (r < n) {
    const int64_t group = in.row_group[r];
    int64_t r_end = r;
    while (r_end < n && in.row_group[r_end] == group) ++r_end;
    while (ep < in.num_events && in.event_group[ep] < group) ++ep;
    int64_t e_end = ep;
    while (e_end < in.num_events && in.event_group[e_end] == group) ++e_end;
    state.Reset();
    int64_t head = ep, tail = ep;
    for (; r < r_end; ++r) {
      if (in.row_valid != nullptr && !in.row_valid[r]) {
        if (!by_index) int_output ? ints.UnsafeAppendNull() : doubles.UnsafeAppendNull();
        continue;
      }
      const int64_t t = in.row_time[r];
      const int64_t start = WindowStart(t, spec.window, in.granularity);
      for (; head < e_end && in.event_time[head] <= t; ++head) {
        if (qualifies(head)) state.Add(head);
      }
      for (; tail < head && in.event_time[tail] < start; ++tail) {
        if (qualifies(tail)) state.Remove(tail);
      }
      const int64_t count = state.count();
      switch (fn) {
        case AggregationFunction::kCount:
          ints.UnsafeAppend(count);
          break;
        case AggregationFunction::kCountDistinct:
          ints.UnsafeAppend(state.distinct());
          break;
        case AggregationFunction::kSum:
          if (count == 0)
            int_output ? ints.UnsafeAppendNull() : doubles.UnsafeAppendNull();
          else if (int_output)
            ints.UnsafeAppend(state.int_sum());
          else
            doubles.UnsafeAppend(static_cast<double>(state.sum()));
          break;
        case AggregationFunction::kMean:
          if (count == 0)
            doubles.UnsafeAppendNull();
          else
            doubles.UnsafeAppend(static_cast<double>(state.sum() / count));
          break;
        case AggregationFunction::kStddev:
          if (count < 2) {
            doubles.UnsafeAppendNull();
          } else {
            const long double var = state.all_equal() ? 0 : state.m2() / (count - 1);
            doubles.UnsafeAppend(static_cast<double>(std::sqrt(std::max(var, 0.0L))));
          }
          break;
        default:
          chosen[r] = state.chosen();
          break;
      }
    }
    ep = e_end;
  }

  if (!by_index) {
    GRANARY_ASSIGN_OR_RAISE(auto out, int_output ? Finish(&ints) : Finish(&doubles));
    return out;
  }
  arrow::Int64Builder indices;
  if (auto st = indices.Reserve(n); !st.ok()) return Status::Internal(st.ToString());
  for (int64_t i : chosen) i < 0 ? indices.UnsafeAppendNull() : indices.UnsafeAppend(i);
  GRANARY_ASSIGN_OR_RAISE(auto index_array, Finish(&indices));
  auto taken = arrow::compute::Take(*spec.values, *index_array);
  if (!taken.ok()) return Status::Internal(taken.status().ToString());
  std::shared_ptr<arrow::Array> out = *taken;
  // The values column may be wider than the output (a cast, e.g. large_string); type it as the
  // definitions say.
  auto want = ToArrowType(spec.output_type);
  if (!out->type()->Equals(*want)) {
    auto cast = arrow::compute::Cast(*out, want);
    if (!cast.ok()) return Status::Internal(cast.status().ToString());
    out = *cast;
  }
  return out;
}

}  // namespace

int64_t WindowStart(int64_t t, Duration window, Duration granularity) {
  // A start before the earliest int64 microsecond (t within a window of it: a time from a file or
  // a tile body written by anyone, some 292,000 years before 1970) is that earliest microsecond:
  // the window takes everything before t.
  constexpr int64_t kEarliest = std::numeric_limits<int64_t>::min();
  int64_t raw = 0;
  if (__builtin_sub_overflow(t, window.micros, &raw)) {
    return window.micros > 0 ? kEarliest : std::numeric_limits<int64_t>::max();
  }
  const int64_t g = granularity.micros;
  // Floor division (raw may be negative: times before 1970 plus the window).
  int64_t q = raw / g;
  if (raw % g != 0 && raw < 0) --q;
  int64_t start = 0;
  if (__builtin_mul_overflow(q, g, &start)) return kEarliest;
  return start;
}

Result<std::vector<std::shared_ptr<arrow::Array>>> ComputeWindows(
    const WindowInput& input, const std::vector<WindowSpec>& specs) {
  if (input.granularity.micros <= 0) return Status::InvalidArgument("granularity must be positive");
  std::vector<std::shared_ptr<arrow::Array>> out;
  out.reserve(specs.size());
  for (const WindowSpec& spec : specs) {
    if (spec.window.micros <= 0) return Status::InvalidArgument("window must be positive");
    GRANARY_ASSIGN_OR_RAISE(auto array, ComputeOne(input, spec));
    out.push_back(std::move(array));
  }
  return out;
}

}  // namespace granary::aggregation
