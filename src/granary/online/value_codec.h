// The body of a stored view value: the features of one entity for one view with their
// timestamps, in one compact encoding (docs/ONLINE_LAYOUT.md, "Body"):
//
//   fingerprint  4 bytes, little-endian: ViewLayout::fingerprint() of the writer's schema
//   event_ts     8 bytes, little-endian int64, microseconds since the epoch
//   created      varint: 0 when the row has no created timestamp, else zigzag(created-event)+1
//   null bitmap  ceil(features/8) bytes; bit i (least significant first) set = feature i is null
//   values       each non-null feature in schema order:
//                  bool 1 byte; int32, float32 4 bytes; int64, float64, timestamp (us) 8 bytes,
//                  all little-endian; string, bytes: varint length then the bytes;
//                  list<T>: varint count, then the elements as above (no nulls)
//
// Encoding reads Arrow arrays directly (no per-value variants); decoding finds each value's
// offset once and reads values in place (no allocation). Thread-safe functions; BodyEncoder is
// thread-compatible (see there).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "granary/common/result.h"
#include "granary/online/varint.h"
#include "granary/online/view_layout.h"
#include "granary/types/value.h"

namespace arrow {
class Array;
class RecordBatch;
}  // namespace arrow

namespace granary {

// The write order of a value: event timestamp, then created timestamp (a row without one sorts
// before any row with one at the same event time).
struct WriteOrder {
  int64_t event_micros = 0;
  bool has_created = false;
  int64_t created_micros = 0;

  // -1, 0 or 1.
  int Compare(const WriteOrder& other) const {
    if (event_micros != other.event_micros) return event_micros < other.event_micros ? -1 : 1;
    if (has_created != other.has_created) return has_created ? 1 : -1;
    if (!has_created || created_micros == other.created_micros) return 0;
    return created_micros < other.created_micros ? -1 : 1;
  }
};

// The fixed part of a body.
struct BodyHeader {
  uint32_t fingerprint = 0;
  WriteOrder order;
  size_t bitmap_offset = 0;  // where the null bitmap starts
  size_t values_offset = 0;  // where the first value starts
};

// Parses the header of `body` for a view of `num_features`; false when it is too short or
// malformed.
bool ParseBodyHeader(std::string_view body, size_t num_features, BodyHeader* header);

// Finds where each feature's value starts: offsets[i] for feature i, or kNullOffset when it is
// null; false when the body does not hold exactly the values of `view`'s schema (corrupt or of
// another schema).
constexpr uint32_t kNullOffset = 0xffffffffu;
// In a read's result (online_features.h): the feature is not in the stored row, which was
// written under an earlier schema of the view.
constexpr uint32_t kMissingOffset = 0xfffffffeu;
bool IndexBody(const ViewLayout& view, std::string_view body, const BodyHeader& header,
               uint32_t* offsets);

// One encoded list, read in place.
struct ListRef {
  ScalarType element;
  uint32_t count = 0;
  const char* data = nullptr;  // the first element

  // Calls f(element) for each element, as bool, int32_t, int64_t, float, double,
  // std::string_view (string, bytes) or Timestamp.
  template <typename F>
  void ForEach(F&& f) const;
};

// One stored value, read in place from a body (valid while the body's storage lives).
struct ValueRef {
  ValueType type;
  const char* data = nullptr;  // nullptr: null

  bool is_null() const { return data == nullptr; }
  bool AsBool() const { return *data != 0; }
  int32_t AsInt32() const { return layout::LoadFixed<int32_t>(data); }
  int64_t AsInt64() const { return layout::LoadFixed<int64_t>(data); }
  float AsFloat32() const { return layout::LoadFixed<float>(data); }
  double AsFloat64() const { return layout::LoadFixed<double>(data); }
  Timestamp AsTimestamp() const { return Timestamp::FromMicros(AsInt64()); }
  std::string_view AsBytes() const;  // string or bytes
  ListRef AsList() const;
  // The value as a Value (allocates; for tests and row-at-a-time callers).
  Value ToValue() const;
};

// Encodes the rows of an Arrow record batch as bodies of one view. The batch has a column per
// feature (named as the feature, of a type readable as it: CheckReadableAs), `event_timestamp`
// (any timestamp unit; never null) and optionally `created_timestamp`. A missing feature column
// is an error; extra columns are ignored.
//
// Make checks every row, so a store can reject a bad batch before it writes anything: once Make
// succeeds, Append does not fail on any row of the batch.
//
// Thread-compatible: after Make, Append and Order are const and may run on several threads at
// once (each with its own `out`); the batch must outlive the encoder.
class BodyEncoder {
 public:
  // InvalidArgument, naming the view, feature and row: a missing or mistyped column, a null
  // event_timestamp, a null list element, a value that cannot be read as its feature's type, or a
  // time (a feature's, event_timestamp or created_timestamp, in seconds, milliseconds or days)
  // beyond int64 microseconds.
  static Result<BodyEncoder> Make(const ViewLayout& view, const arrow::RecordBatch& rows);

  // Appends the body of row `row` to `out`.
  Status Append(int64_t row, std::string* out) const;
  WriteOrder Order(int64_t row) const;

  struct Column;  // how one feature column is encoded

 private:
  // The per-row checks of feature column `f`: no null list element, every value readable.
  Status CheckRows(size_t f, const Column& c) const;
  static std::pair<int64_t, int64_t> ListRange(const Column& c, int64_t row);

  const ViewLayout* view_ = nullptr;
  const arrow::Array* event_ = nullptr;
  const arrow::Array* created_ = nullptr;
  std::vector<std::shared_ptr<Column>> columns_;
};

// Encodes one body from row-at-a-time values (each null or of the feature's exact type), for
// tests and small writes.
Status EncodeBody(const ViewLayout& view, WriteOrder order, const std::vector<Value>& values,
                  std::string* out);

// ---------------------------------------------------------------------------------------------

template <typename F>
void ListRef::ForEach(F&& f) const {
  const char* p = data;
  for (uint32_t i = 0; i < count; ++i) {
    switch (element) {
      case ScalarType::kBool:
        f(*p != 0);
        p += 1;
        break;
      case ScalarType::kInt32:
        f(layout::LoadFixed<int32_t>(p));
        p += 4;
        break;
      case ScalarType::kFloat32:
        f(layout::LoadFixed<float>(p));
        p += 4;
        break;
      case ScalarType::kInt64:
        f(layout::LoadFixed<int64_t>(p));
        p += 8;
        break;
      case ScalarType::kFloat64:
        f(layout::LoadFixed<double>(p));
        p += 8;
        break;
      case ScalarType::kTimestamp:
        f(Timestamp::FromMicros(layout::LoadFixed<int64_t>(p)));
        p += 8;
        break;
      case ScalarType::kString:
      case ScalarType::kBytes: {
        size_t pos = 0;
        uint64_t len = 0;
        // A varint validated by IndexBody: GetVarint stops at its last byte, never past it.
        std::string_view rest(p, 10);
        layout::GetVarint(rest, &pos, &len);
        f(std::string_view(p + pos, len));
        p += pos + len;
        break;
      }
    }
  }
}

}  // namespace granary
