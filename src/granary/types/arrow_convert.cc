#include "granary/types/arrow_convert.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/initialize.h>
#include <arrow/util/bitmap_ops.h>
#include <arrow/util/float16.h>
#include <fmt/format.h>

#include <mutex>
#include <optional>

namespace granary {
namespace {

std::shared_ptr<arrow::DataType> ScalarArrowType(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return arrow::boolean();
    case ScalarType::kInt32:
      return arrow::int32();
    case ScalarType::kInt64:
      return arrow::int64();
    case ScalarType::kFloat32:
      return arrow::float32();
    case ScalarType::kFloat64:
      return arrow::float64();
    case ScalarType::kString:
      return arrow::utf8();
    case ScalarType::kBytes:
      return arrow::binary();
    case ScalarType::kTimestamp:
      return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  }
  return arrow::null();
}

Result<ScalarType> ScalarFromArrow(const arrow::DataType& type) {
  using arrow::Type;
  switch (type.id()) {
    case Type::BOOL:
      return ScalarType::kBool;
    case Type::INT8:
    case Type::INT16:
    case Type::INT32:
    case Type::UINT8:
    case Type::UINT16:
      return ScalarType::kInt32;
    case Type::INT64:
    case Type::UINT32:
      return ScalarType::kInt64;
    case Type::HALF_FLOAT:
    case Type::FLOAT:
      return ScalarType::kFloat32;
    case Type::DOUBLE:
      return ScalarType::kFloat64;
    case Type::STRING:
    case Type::LARGE_STRING:
    case Type::STRING_VIEW:
      return ScalarType::kString;
    case Type::BINARY:
    case Type::LARGE_BINARY:
    case Type::BINARY_VIEW:
    case Type::FIXED_SIZE_BINARY:
      return ScalarType::kBytes;
    case Type::TIMESTAMP:
    case Type::DATE32:
    case Type::DATE64:
      return ScalarType::kTimestamp;
    case Type::DICTIONARY:
      return ScalarFromArrow(*static_cast<const arrow::DictionaryType&>(type).value_type());
    default:
      return Status::InvalidArgument(
          fmt::format("Arrow type {} has no Granary value type", type.ToString()));
  }
}

bool IsListType(const arrow::DataType& type) {
  return type.id() == arrow::Type::LIST || type.id() == arrow::Type::LARGE_LIST ||
         type.id() == arrow::Type::FIXED_SIZE_LIST || type.id() == arrow::Type::LIST_VIEW ||
         type.id() == arrow::Type::LARGE_LIST_VIEW;
}

bool Widens(ScalarType from, ScalarType to) {
  return from == to || (from == ScalarType::kInt32 && to == ScalarType::kInt64) ||
         (from == ScalarType::kInt32 && to == ScalarType::kFloat64) ||
         (from == ScalarType::kFloat32 && to == ScalarType::kFloat64);
}

// A time beyond int64 microseconds is an error saying so; ValueAt's callers add the column and
// the row.
Result<int64_t> TimestampMicros(const arrow::Array& array, int64_t i) {
  const std::optional<int64_t> micros = TimeAtMicros(array, i);
  if (!micros) return Status::InvalidArgument(TimeBeyondRange(array, i));
  return *micros;
}

// The value of element `i` of a time array as stored, and what it counts.
std::pair<int64_t, std::string_view> StoredTime(const arrow::Array& array, int64_t i) {
  switch (array.type_id()) {
    case arrow::Type::DATE32:
      return {static_cast<const arrow::Date32Array&>(array).Value(i), "days"};
    case arrow::Type::DATE64:
      return {static_cast<const arrow::Date64Array&>(array).Value(i), "milliseconds"};
    default:
      break;
  }
  const int64_t value = static_cast<const arrow::TimestampArray&>(array).Value(i);
  switch (static_cast<const arrow::TimestampType&>(*array.type()).unit()) {
    case arrow::TimeUnit::SECOND:
      return {value, "seconds"};
    case arrow::TimeUnit::MILLI:
      return {value, "milliseconds"};
    case arrow::TimeUnit::MICRO:
      return {value, "microseconds"};
    case arrow::TimeUnit::NANO:
      return {value, "nanoseconds"};
  }
  return {value, "microseconds"};
}

// Reads one non-null scalar of `want` type from a non-list array.
Result<Value> ScalarAt(const arrow::Array& array, int64_t i, ScalarType want) {
  if (array.type_id() == arrow::Type::DICTIONARY) {
    const auto& dict = static_cast<const arrow::DictionaryArray&>(array);
    return ScalarAt(*dict.dictionary(), dict.GetValueIndex(i), want);
  }
  GRANARY_ASSIGN_OR_RAISE(ScalarType have, ScalarFromArrow(*array.type()));
  if (!Widens(have, want)) {
    return Status::InvalidArgument(
        fmt::format("cannot read {} as {}", array.type()->ToString(), ScalarTypeName(want)));
  }
  auto integer = [&]() -> int64_t {
    switch (array.type_id()) {
      case arrow::Type::INT8:
        return static_cast<const arrow::Int8Array&>(array).Value(i);
      case arrow::Type::INT16:
        return static_cast<const arrow::Int16Array&>(array).Value(i);
      case arrow::Type::INT32:
        return static_cast<const arrow::Int32Array&>(array).Value(i);
      case arrow::Type::UINT8:
        return static_cast<const arrow::UInt8Array&>(array).Value(i);
      case arrow::Type::UINT16:
        return static_cast<const arrow::UInt16Array&>(array).Value(i);
      case arrow::Type::UINT32:
        return static_cast<const arrow::UInt32Array&>(array).Value(i);
      default:
        return static_cast<const arrow::Int64Array&>(array).Value(i);
    }
  };
  auto floating = [&]() -> double {
    switch (array.type_id()) {
      case arrow::Type::HALF_FLOAT:
        return static_cast<double>(arrow::util::Float16::FromBits(
                                       static_cast<const arrow::HalfFloatArray&>(array).Value(i))
                                       .ToFloat());
      case arrow::Type::FLOAT:
        return static_cast<const arrow::FloatArray&>(array).Value(i);
      case arrow::Type::DOUBLE:
        return static_cast<const arrow::DoubleArray&>(array).Value(i);
      default:
        return static_cast<double>(integer());
    }
  };
  switch (want) {
    case ScalarType::kBool:
      return Value(static_cast<const arrow::BooleanArray&>(array).Value(i));
    case ScalarType::kInt32:
      return Value(static_cast<int32_t>(integer()));
    case ScalarType::kInt64:
      return Value(integer());
    case ScalarType::kFloat32:
      return Value(static_cast<float>(floating()));
    case ScalarType::kFloat64:
      return Value(floating());
    case ScalarType::kString:
    case ScalarType::kBytes: {
      std::string s;
      switch (array.type_id()) {
        case arrow::Type::STRING:
        case arrow::Type::BINARY:
          s = std::string(static_cast<const arrow::BinaryArray&>(array).GetView(i));
          break;
        case arrow::Type::LARGE_STRING:
        case arrow::Type::LARGE_BINARY:
          s = std::string(static_cast<const arrow::LargeBinaryArray&>(array).GetView(i));
          break;
        case arrow::Type::STRING_VIEW:
        case arrow::Type::BINARY_VIEW:
          s = std::string(static_cast<const arrow::BinaryViewArray&>(array).GetView(i));
          break;
        case arrow::Type::FIXED_SIZE_BINARY:
          s = std::string(static_cast<const arrow::FixedSizeBinaryArray&>(array).GetView(i));
          break;
        default:
          return Status::Internal("unexpected string type " + array.type()->ToString());
      }
      if (want == ScalarType::kBytes) return Value(Bytes{std::move(s)});
      return Value(std::move(s));
    }
    case ScalarType::kTimestamp: {
      GRANARY_ASSIGN_OR_RAISE(int64_t micros, TimestampMicros(array, i));
      return Value(Timestamp::FromMicros(micros));
    }
  }
  return Status::Internal("unhandled scalar type");
}

template <typename T>
Result<Value> ListAt(const arrow::Array& values, int64_t offset, int64_t length, ScalarType want) {
  std::vector<T> out;
  out.reserve(length);
  for (int64_t j = 0; j < length; ++j) {
    if (values.IsNull(offset + j)) {
      return Status::InvalidArgument("list elements must not be null");
    }
    auto v = ScalarAt(values, offset + j, want);
    if (!v.ok()) return v.status().WithContext(fmt::format("element {}", j));
    out.push_back(v->get<T>());
  }
  return Value(std::move(out));
}

template <typename BuilderT, typename T>
Status AppendScalarTyped(arrow::ArrayBuilder* b, const T& v) {
  auto* typed = static_cast<BuilderT*>(b);
  if constexpr (std::is_same_v<T, Timestamp>) {
    return typed->Append(v.micros).ok() ? Status::OK() : Status::Internal("append failed");
  } else if constexpr (std::is_same_v<T, Bytes>) {
    return typed->Append(v.data).ok() ? Status::OK() : Status::Internal("append failed");
  } else {
    return typed->Append(v).ok() ? Status::OK() : Status::Internal("append failed");
  }
}

template <typename BuilderT, typename T>
Status AppendList(arrow::ArrayBuilder* b, const std::vector<T>& items) {
  auto* list = static_cast<arrow::ListBuilder*>(b);
  if (!list->Append().ok()) return Status::Internal("list append failed");
  for (const auto& item : items) {
    if constexpr (std::is_same_v<T, bool>) {
      GRANARY_RETURN_NOT_OK((AppendScalarTyped<BuilderT, bool>(list->value_builder(), item)));
    } else {
      GRANARY_RETURN_NOT_OK((AppendScalarTyped<BuilderT, T>(list->value_builder(), item)));
    }
  }
  return Status::OK();
}

void InitializeCompute() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto st = arrow::compute::Initialize();
    (void)st;  // fails only when already initialized
  });
}

template <typename StringArrayT>
Result<std::shared_ptr<arrow::Array>> ParseTimestamps(const StringArrayT& strings,
                                                      std::string_view column) {
  arrow::TimestampBuilder builder(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
  if (!builder.Reserve(strings.length()).ok()) return Status::Internal("out of memory");
  for (int64_t i = 0; i < strings.length(); ++i) {
    if (strings.IsNull(i) || strings.GetView(i).empty()) {
      builder.UnsafeAppendNull();
      continue;
    }
    std::string_view text = strings.GetView(i);
    auto ts = ParseTimestamp(text);
    if (!ts.ok()) {
      return Status::InvalidArgument(fmt::format("column '{}', row {}: '{}' is not a timestamp: {}",
                                                 column, i + 1, text, ts.status().message()));
    }
    builder.UnsafeAppend(ts->micros);
  }
  std::shared_ptr<arrow::Array> out;
  if (!builder.Finish(&out).ok()) return Status::Internal("cannot finish timestamps");
  return out;
}

}  // namespace

std::optional<int64_t> TimeAtMicros(const arrow::Array& array, int64_t i) {
  const int64_t value = StoredTime(array, i).first;
  if (array.type_id() == arrow::Type::DATE32) return DaysToMicros(value);
  if (array.type_id() == arrow::Type::DATE64) {
    return TimestampToMicros(value, arrow::TimeUnit::MILLI);
  }
  return TimestampToMicros(value, static_cast<const arrow::TimestampType&>(*array.type()).unit());
}

std::string TimeBeyondRange(const arrow::Array& array, int64_t i) {
  const auto [value, counted] = StoredTime(array, i);
  return fmt::format(
      "{} {} since 1970-01-01 is beyond the times Granary holds (int64 microseconds, about "
      "292,000 years either side of 1970); fix the value or make it null",
      value, counted);
}

Result<std::shared_ptr<arrow::Array>> ToUtcMicros(const std::shared_ptr<arrow::Array>& array,
                                                  std::string_view column) {
  const auto utc = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  switch (array->type_id()) {
    case arrow::Type::DICTIONARY: {
      InitializeCompute();
      auto decoded = arrow::compute::Cast(
          *array, static_cast<const arrow::DictionaryType&>(*array->type()).value_type());
      if (!decoded.ok())
        return Status::InvalidArgument(
            fmt::format("column '{}': {}", column, decoded.status().message()));
      return ToUtcMicros(*decoded, column);
    }
    case arrow::Type::STRING:
      return ParseTimestamps(static_cast<const arrow::StringArray&>(*array), column);
    case arrow::Type::LARGE_STRING:
      return ParseTimestamps(static_cast<const arrow::LargeStringArray&>(*array), column);
    case arrow::Type::STRING_VIEW:
      return ParseTimestamps(static_cast<const arrow::StringViewArray&>(*array), column);
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
      break;
    default:
      return Status::InvalidArgument(
          fmt::format("column '{}' is {}, not a timestamp", column, array->type()->ToString()));
  }
  // date64 counts milliseconds; a timestamp its unit.
  const arrow::TimeUnit::type unit =
      array->type_id() == arrow::Type::TIMESTAMP
          ? static_cast<const arrow::TimestampType&>(*array->type()).unit()
          : arrow::TimeUnit::MILLI;
  if (array->type_id() == arrow::Type::TIMESTAMP && unit == arrow::TimeUnit::MICRO) {
    // Same values; only the type (time zone) may change, which costs no copy.
    auto d = array->data()->Copy();
    d->type = utc;
    return arrow::MakeArray(d);
  }
  const auto& data = *array->data();
  auto buffer = arrow::AllocateBuffer(array->length() * sizeof(int64_t));
  if (!buffer.ok()) return Status::Internal("out of memory converting timestamps");
  auto* out = reinterpret_cast<int64_t*>((*buffer)->mutable_data());
  // A time beyond int64 microseconds (about 292,000 years either side of 1970) is an error
  // naming its row; a null slot may hold anything, and becomes 0.
  auto beyond = [&](int64_t row) {
    return Status::InvalidArgument(
        fmt::format("column '{}', row {}: {}", column, row, TimeBeyondRange(*array, row)));
  };
  if (array->type_id() == arrow::Type::DATE32) {
    const int32_t* in = data.GetValues<int32_t>(1);
    for (int64_t i = 0; i < array->length(); ++i) {
      const std::optional<int64_t> micros = DaysToMicros(in[i]);
      if (!micros && array->IsValid(i)) return beyond(i);
      out[i] = micros.value_or(0);
    }
  } else {
    const int64_t* in = data.GetValues<int64_t>(1);
    for (int64_t i = 0; i < array->length(); ++i) {
      const std::optional<int64_t> micros = TimestampToMicros(in[i], unit);
      if (!micros && array->IsValid(i)) return beyond(i);
      out[i] = micros.value_or(0);
    }
  }
  std::shared_ptr<arrow::Buffer> validity;
  if (data.null_count != 0 && data.buffers[0] != nullptr) {
    auto copied = arrow::internal::CopyBitmap(arrow::default_memory_pool(), data.buffers[0]->data(),
                                              data.offset, data.length);
    if (!copied.ok()) return Status::Internal("out of memory converting timestamps");
    validity = std::move(*copied);
  }
  return arrow::MakeArray(arrow::ArrayData::Make(utc, array->length(),
                                                 {validity, std::move(*buffer)}, data.null_count));
}

Result<std::shared_ptr<arrow::Array>> CastToValueType(const std::shared_ptr<arrow::Array>& array,
                                                      ValueType type, std::string_view column) {
  if (!type.is_list && type.scalar == ScalarType::kTimestamp) return ToUtcMicros(array, column);
  const auto target = ToArrowType(type);
  if (array->type()->Equals(*target)) return array;
  InitializeCompute();
  const bool from_string =
      array->type_id() == arrow::Type::STRING || array->type_id() == arrow::Type::LARGE_STRING;
  if (!from_string && array->type_id() != arrow::Type::DICTIONARY &&
      array->type_id() != arrow::Type::NA) {
    Status readable = CheckReadableAs(*array->type(), type);
    if (!readable.ok()) {
      return Status::InvalidArgument(
          fmt::format("column '{}' is declared {}", column, readable.message()));
    }
  }
  if (type.is_list && type.scalar == ScalarType::kTimestamp) {
    return Status::InvalidArgument(fmt::format(
        "column '{}': list<timestamp> is read only from list<timestamp[us, UTC]>", column));
  }
  auto options = arrow::compute::CastOptions::Safe(target);
  auto cast = arrow::compute::Cast(*array, options);
  if (!cast.ok()) {
    if (from_string) {
      // Arrow names the value, not its row: halve towards the first row that fails (a few casts
      // of slices, on the error path only).
      int64_t first = 0, length = array->length();
      while (length > 1) {
        const int64_t half = length / 2;
        if (!arrow::compute::Cast(*array->Slice(first, half), options).ok()) {
          length = half;
        } else {
          first += half;
          length -= half;
        }
      }
      auto bad = array->GetScalar(first);
      if (bad.ok() && (*bad)->is_valid) {
        return Status::InvalidArgument(
            fmt::format("column '{}', row {}: '{}' is not a valid {}; fix the value or declare "
                        "the column with the type of its data",
                        column, first + 1, (*bad)->ToString(), type.ToString()));
      }
    }
    return Status::InvalidArgument(fmt::format("column '{}': cannot read {} as {}: {}", column,
                                               array->type()->ToString(), type.ToString(),
                                               cast.status().message()));
  }
  return cast->make_array();
}

std::shared_ptr<arrow::DataType> ToArrowType(ValueType type) {
  auto scalar = ScalarArrowType(type.scalar);
  return type.is_list ? arrow::list(arrow::field("item", scalar, /*nullable=*/false)) : scalar;
}

Result<ValueType> FromArrowType(const arrow::DataType& type) {
  if (IsListType(type)) {
    const auto& element = *static_cast<const arrow::BaseListType&>(type).value_type();
    if (IsListType(element)) {
      return Status::InvalidArgument(
          fmt::format("Arrow type {} is a nested list; Granary supports lists of scalars only",
                      type.ToString()));
    }
    GRANARY_ASSIGN_OR_RAISE(ScalarType s, ScalarFromArrow(element));
    return ValueType::List(s);
  }
  GRANARY_ASSIGN_OR_RAISE(ScalarType s, ScalarFromArrow(type));
  return ValueType::Scalar(s);
}

Status CheckReadableAs(const arrow::DataType& source, ValueType declared) {
  auto natural = FromArrowType(source);
  if (natural.ok() && natural->is_list == declared.is_list &&
      Widens(natural->scalar, declared.scalar)) {
    return Status::OK();
  }
  return Status::InvalidArgument(
      fmt::format("{} but source column is {}", declared.ToString(),
                  natural.ok() ? natural->ToString() : source.ToString()));
}

Result<Value> ValueAt(const arrow::Array& array, int64_t i, ValueType type) {
  if (i < 0 || i >= array.length()) {
    return Status::InvalidArgument(fmt::format("row {} is out of range 0..{}", i, array.length()));
  }
  if (array.IsNull(i)) return Value::Null();
  if (!type.is_list) return ScalarAt(array, i, type.scalar);
  if (!IsListType(*array.type())) {
    return Status::InvalidArgument("cannot read " + array.type()->ToString() + " as a list");
  }
  int64_t offset, length;
  std::shared_ptr<arrow::Array> values;
  switch (array.type_id()) {
    case arrow::Type::LIST: {
      const auto& l = static_cast<const arrow::ListArray&>(array);
      offset = l.value_offset(i);
      length = l.value_length(i);
      values = l.values();
      break;
    }
    case arrow::Type::LARGE_LIST: {
      const auto& l = static_cast<const arrow::LargeListArray&>(array);
      offset = l.value_offset(i);
      length = l.value_length(i);
      values = l.values();
      break;
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      const auto& l = static_cast<const arrow::FixedSizeListArray&>(array);
      offset = l.value_offset(i);
      length = l.value_length(i);
      values = l.values();
      break;
    }
    default:
      return Status::InvalidArgument("list views are not supported: " + array.type()->ToString());
  }
  switch (type.scalar) {
    case ScalarType::kBool:
      return ListAt<bool>(*values, offset, length, type.scalar);
    case ScalarType::kInt32:
      return ListAt<int32_t>(*values, offset, length, type.scalar);
    case ScalarType::kInt64:
      return ListAt<int64_t>(*values, offset, length, type.scalar);
    case ScalarType::kFloat32:
      return ListAt<float>(*values, offset, length, type.scalar);
    case ScalarType::kFloat64:
      return ListAt<double>(*values, offset, length, type.scalar);
    case ScalarType::kString:
      return ListAt<std::string>(*values, offset, length, type.scalar);
    case ScalarType::kBytes:
      return ListAt<Bytes>(*values, offset, length, type.scalar);
    case ScalarType::kTimestamp:
      return ListAt<Timestamp>(*values, offset, length, type.scalar);
  }
  return Status::Internal("unhandled list type");
}

Status AppendValue(arrow::ArrayBuilder* builder, ValueType type, const Value& value) {
  if (value.is_null()) {
    return builder->AppendNull().ok() ? Status::OK() : Status::Internal("append null failed");
  }
  if (value.type() != type) {
    return Status::InvalidArgument(fmt::format("value {} is {}, expected {}", value.ToString(),
                                               value.type().ToString(), type.ToString()));
  }
  return std::visit(
      [&](const auto& v) -> Status {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return Status::Internal("null handled above");
        } else if constexpr (std::is_same_v<T, bool>) {
          return AppendScalarTyped<arrow::BooleanBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, int32_t>) {
          return AppendScalarTyped<arrow::Int32Builder>(builder, v);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return AppendScalarTyped<arrow::Int64Builder>(builder, v);
        } else if constexpr (std::is_same_v<T, float>) {
          return AppendScalarTyped<arrow::FloatBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, double>) {
          return AppendScalarTyped<arrow::DoubleBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return AppendScalarTyped<arrow::StringBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, Bytes>) {
          return AppendScalarTyped<arrow::BinaryBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          return AppendScalarTyped<arrow::TimestampBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          return AppendList<arrow::BooleanBuilder, bool>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<int32_t>>) {
          return AppendList<arrow::Int32Builder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          return AppendList<arrow::Int64Builder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          return AppendList<arrow::FloatBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          return AppendList<arrow::DoubleBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return AppendList<arrow::StringBuilder>(builder, v);
        } else if constexpr (std::is_same_v<T, std::vector<Bytes>>) {
          return AppendList<arrow::BinaryBuilder>(builder, v);
        } else {
          return AppendList<arrow::TimestampBuilder>(builder, v);
        }
      },
      value.storage());
}

Result<std::shared_ptr<arrow::Array>> MakeArray(ValueType type, const std::vector<Value>& values) {
  std::unique_ptr<arrow::ArrayBuilder> builder;
  auto st = arrow::MakeBuilder(arrow::default_memory_pool(), ToArrowType(type), &builder);
  if (!st.ok()) return Status::Internal("cannot make an Arrow builder: " + st.ToString());
  for (const Value& v : values) GRANARY_RETURN_NOT_OK(AppendValue(builder.get(), type, v));
  std::shared_ptr<arrow::Array> out;
  st = builder->Finish(&out);
  if (!st.ok()) return Status::Internal("cannot finish an Arrow array: " + st.ToString());
  return out;
}

}  // namespace granary
