// The one place where Granary types meet Arrow types: type mapping, and moving single values in
// and out of Arrow arrays. Stateless functions; thread-safe.
#pragma once

#include <arrow/type_fwd.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/types/value.h"

namespace arrow {
class Array;
class ArrayBuilder;
class DataType;
}  // namespace arrow

namespace granary {

// The Arrow type Granary writes for a value type. Timestamps are timestamp[us, tz=UTC]; lists are
// list<item: T> with non-null items.
std::shared_ptr<arrow::DataType> ToArrowType(ValueType type);

// The value type that an Arrow column naturally maps to: any signed integer up to 32 bits (and
// uint8/uint16) is int32; int64 and uint32 are int64; float16 and float32 are float32; any string,
// binary or timestamp flavour (and dates) maps to string, bytes or timestamp; dictionaries map
// to their value type; list, large_list and fixed_size_list map to list<T>.
// Anything else (decimal, struct, map, uint64, ...) is InvalidArgument naming the Arrow type.
Result<ValueType> FromArrowType(const arrow::DataType& type);

// Whether a source column of `source` type can be read as `declared` without loss: the same
// natural type, or a widening (int32 -> int64, int32 -> float64, float32 -> float64, and the same
// for list elements). The error says "<declared> but source column is <source>".
Status CheckReadableAs(const arrow::DataType& source, ValueType declared);

// The value at row `i`, converted to `type` (which must satisfy CheckReadableAs). Null if null.
// A time beyond int64 microseconds (TimestampToMicros) is InvalidArgument (TimeBeyondRange's
// message, after "element <j>: " in a list); errors name no column or row: callers add them.
Result<Value> ValueAt(const arrow::Array& array, int64_t i, ValueType type);

// Appends `value` (null, or of exactly `type`) to a builder made for ToArrowType(type).
Status AppendValue(arrow::ArrayBuilder* builder, ValueType type, const Value& value);

// Microseconds of a timestamp `value` counted in `unit`; nanoseconds are floored (towards the
// past), as everywhere in Granary. nullopt when the time is beyond int64 microseconds (about
// 292,000 years either side of 1970), which only seconds and milliseconds can be: every caller
// says what such a time becomes (ToUtcMicros and ValueAt: an error naming the row). The one
// conversion of time units: callers with other unit enums (Parquet's) map them to Arrow's.
constexpr std::optional<int64_t> TimestampToMicros(int64_t value, arrow::TimeUnit::type unit) {
  int64_t factor = 1;
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      factor = 1'000'000;
      break;
    case arrow::TimeUnit::MILLI:
      factor = 1000;
      break;
    case arrow::TimeUnit::MICRO:
      return value;
    case arrow::TimeUnit::NANO:
      return FloorDiv(value, 1000);
  }
  int64_t micros = 0;
  if (__builtin_mul_overflow(value, factor, &micros)) return std::nullopt;
  return micros;
}

// Microseconds of a date32 (`days` since 1970-01-01, at midnight UTC); nullopt beyond int64
// microseconds (past about 106 million days either side).
constexpr std::optional<int64_t> DaysToMicros(int64_t days) {
  int64_t micros = 0;
  if (__builtin_mul_overflow(days, Duration::Days(1).micros, &micros)) return std::nullopt;
  return micros;
}

// Microseconds of element `i` (valid) of a time array: a timestamp of any unit, a date32 or a
// date64 (midnight UTC); nullopt beyond int64 microseconds (TimestampToMicros, DaysToMicros).
std::optional<int64_t> TimeAtMicros(const arrow::Array& array, int64_t i);

// Why element `i` of a time array has no TimeAtMicros: "<value> <seconds | milliseconds | days>
// since 1970-01-01 is beyond the times Granary holds (...); fix the value or make it null".
// Callers put the column and the row before it.
std::string TimeBeyondRange(const arrow::Array& array, int64_t i);

// Timestamps as timestamp[us, tz=UTC]: from a timestamp of any unit (naive means UTC; nanoseconds
// are floored to microseconds), date32/date64 (midnight UTC), or strings in ParseTimestamp's
// forms (nulls and empty strings are null). `column` names the column in errors, which also give
// the row and the bad text.
Result<std::shared_ptr<arrow::Array>> ToUtcMicros(const std::shared_ptr<arrow::Array>& array,
                                                  std::string_view column);

// Converts a column to ToArrowType(type): the identity, a widening that CheckReadableAs accepts,
// dictionaries decoded, strings parsed (numbers, booleans, timestamps: for CSV and partition
// values), timestamps through ToUtcMicros. Anything else is InvalidArgument "<column>: ...".
// Uses Arrow's compute kernels; thread-safe.
Result<std::shared_ptr<arrow::Array>> CastToValueType(const std::shared_ptr<arrow::Array>& array,
                                                      ValueType type, std::string_view column);

// Builds an array of ToArrowType(type) from values (each null or of `type`).
Result<std::shared_ptr<arrow::Array>> MakeArray(ValueType type, const std::vector<Value>& values);

}  // namespace granary
