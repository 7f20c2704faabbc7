#include "granary/online/entity_key.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <cstring>

#include "granary/online/varint.h"
#include "granary/online/view_layout.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace entity_key {

void AppendInteger(std::string* out, int64_t v) {
  out->push_back('\x01');
  layout::PutVarint(out, layout::ZigZag(v));
}
void AppendString(std::string* out, std::string_view v) {
  out->push_back('\x02');
  layout::PutVarint(out, v.size());
  out->append(v);
}
void AppendBytes(std::string* out, std::string_view v) {
  out->push_back('\x03');
  layout::PutVarint(out, v.size());
  out->append(v);
}
void AppendBool(std::string* out, bool v) {
  out->push_back('\x04');
  out->push_back(v ? '\x01' : '\x00');
}
void AppendFloat(std::string* out, double v) {
  if (v == 0.0) v = 0.0;                                     // -0.0 and 0.0 are one key
  if (v != v) v = std::numeric_limits<double>::quiet_NaN();  // one NaN
  out->push_back('\x05');
  layout::PutFixed<double>(out, v);
}
void AppendTimestamp(std::string* out, Timestamp v) {
  out->push_back('\x06');
  layout::PutVarint(out, layout::ZigZag(v.micros));
}

Status AppendValue(std::string* out, const Value& v) {
  if (v.is_null()) return Status::InvalidArgument("a join key value must not be null");
  if (v.type().is_list) return Status::InvalidArgument("a join key value must not be a list");
  switch (v.type().scalar) {
    case ScalarType::kBool:
      AppendBool(out, v.get<bool>());
      break;
    case ScalarType::kInt32:
      AppendInteger(out, v.get<int32_t>());
      break;
    case ScalarType::kInt64:
      AppendInteger(out, v.get<int64_t>());
      break;
    case ScalarType::kFloat32:
      AppendFloat(out, v.get<float>());
      break;
    case ScalarType::kFloat64:
      AppendFloat(out, v.get<double>());
      break;
    case ScalarType::kString:
      AppendString(out, v.get<std::string>());
      break;
    case ScalarType::kBytes:
      AppendBytes(out, v.get<Bytes>().data);
      break;
    case ScalarType::kTimestamp:
      AppendTimestamp(out, v.get<Timestamp>());
      break;
  }
  return Status::OK();
}

}  // namespace entity_key

namespace {

// Appends the key value of row `i` of a column whose Arrow type natively fits the join key type;
// false when the column's type is not one of the fast paths.
bool AppendFast(const arrow::Array& a, int64_t i, ScalarType want, std::string* out) {
  using arrow::Type;
  switch (want) {
    case ScalarType::kInt32:
    case ScalarType::kInt64:
      switch (a.type_id()) {
        case Type::INT64:
          entity_key::AppendInteger(out, static_cast<const arrow::Int64Array&>(a).Value(i));
          return true;
        case Type::INT32:
          entity_key::AppendInteger(out, static_cast<const arrow::Int32Array&>(a).Value(i));
          return true;
        default:
          return false;
      }
    case ScalarType::kString:
      if (a.type_id() == Type::STRING) {
        entity_key::AppendString(out, static_cast<const arrow::StringArray&>(a).GetView(i));
        return true;
      }
      return false;
    case ScalarType::kBytes:
      if (a.type_id() == Type::BINARY) {
        entity_key::AppendBytes(out, static_cast<const arrow::BinaryArray&>(a).GetView(i));
        return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

Result<EntityKeyColumn> EncodeEntityKeys(const ViewLayout& view, const arrow::RecordBatch& rows) {
  struct KeyColumn {
    const arrow::Array* array;
    ValueType type;
    const std::string* name;
  };
  std::vector<KeyColumn> columns;
  for (const ViewLayout::Column& k : view.join_keys()) {
    auto array = rows.GetColumnByName(k.name);
    if (array == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': the rows have no column '{}' (a join key); columns are: {}",
          view.name(), k.name, rows.schema()->ToString()));
    }
    ValueType want = k.type;
    // Integer keys are one key type: accept any integer column for either width.
    if (want.scalar == ScalarType::kInt32) want.scalar = ScalarType::kInt64;
    Status readable = CheckReadableAs(*array->type(), want);
    if (!readable.ok()) {
      return Status::InvalidArgument(fmt::format("feature view '{}': join key '{}' is {}",
                                                 view.name(), k.name, readable.message()));
    }
    if (array->null_count() > 0) {
      for (int64_t i = 0; i < array->length(); ++i) {
        if (array->IsNull(i)) {
          return Status::InvalidArgument(
              fmt::format("feature view '{}': join key '{}' is null in row {}; every row needs "
                          "a key",
                          view.name(), k.name, i));
        }
      }
    }
    columns.push_back({array.get(), want, &k.name});
  }
  EntityKeyColumn keys;
  keys.Reserve(rows.num_rows(), rows.num_rows() * 10 * columns.size());
  for (int64_t i = 0; i < rows.num_rows(); ++i) {
    for (const KeyColumn& c : columns) {
      if (AppendFast(*c.array, i, c.type.scalar, keys.buffer())) continue;
      GRANARY_ASSIGN_OR_RAISE(Value v, ValueAt(*c.array, i, c.type));
      GRANARY_RETURN_NOT_OK(entity_key::AppendValue(keys.buffer(), v));
    }
    keys.FinishKey();
  }
  return keys;
}

}  // namespace granary
