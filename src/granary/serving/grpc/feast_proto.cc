#include "granary/serving/grpc/feast_proto.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/serving/json_format.h"

namespace granary::serving {
namespace {

namespace fp = feast::types;

int64_t FloorSeconds(Timestamp t) {
  return t.micros >= 0 ? t.micros / 1'000'000 : -((-t.micros + 999'999) / 1'000'000);
}

// A join key value as the JSON request would give it: the service types it by the join key.
Result<Value> EntityValue(const fp::Value& v, const std::string& key, int index) {
  switch (v.val_case()) {
    case fp::Value::kInt64Val:
      return Value(v.int64_val());
    case fp::Value::kInt32Val:
      return Value(static_cast<int64_t>(v.int32_val()));
    case fp::Value::kStringVal:
      return Value(v.string_val());
    case fp::Value::kBytesVal: {
      std::string text;  // the service decodes base64 for a bytes join key
      AppendBase64(v.bytes_val(), &text);
      return Value(std::move(text));
    }
    case fp::Value::kDoubleVal:
      return Value(v.double_val());
    case fp::Value::kFloatVal:
      return Value(static_cast<double>(v.float_val()));
    case fp::Value::kBoolVal:
      return Value(v.bool_val());
    case fp::Value::kUnixTimestampVal: {
      // The times the JSON request can give (RFC 3339, years 0000 to 9999), which also keeps
      // the seconds' microseconds inside int64.
      constexpr int64_t kFirstSecond = -62'167'219'200;  // 0000-01-01T00:00:00Z
      constexpr int64_t kLastSecond = 253'402'300'799;   // 9999-12-31T23:59:59Z
      const int64_t seconds = v.unix_timestamp_val();
      if (seconds < kFirstSecond || seconds > kLastSecond) {
        return Status::InvalidArgument(fmt::format(
            "entities.{}[{}]: unix_timestamp_val {} is not a time Granary reads (years 0000 to "
            "9999, {} to {}); send seconds since 1970-01-01T00:00:00Z",
            key, index, seconds, kFirstSecond, kLastSecond));
      }
      char buf[kRfc3339Max];
      const size_t n = FormatRfc3339(Timestamp::FromSeconds(seconds), buf);
      return Value(std::string(buf, n));
    }
    case fp::Value::kNullVal:
    case fp::Value::VAL_NOT_SET:
      return Value();
    default:
      return Status::InvalidArgument(fmt::format(
          "entities.{}[{}]: a join key value must be a scalar (int64, int32, string, bytes, "
          "double, float, bool or unix_timestamp), not value field {}",
          key, index, static_cast<int>(v.val_case())));
  }
}

void SetScalar(ScalarType type, const ValueRef& v, fp::Value* out) {
  switch (type) {
    case ScalarType::kBool:
      return out->set_bool_val(v.AsBool());
    case ScalarType::kInt32:
      return out->set_int32_val(v.AsInt32());
    case ScalarType::kInt64:
      return out->set_int64_val(v.AsInt64());
    case ScalarType::kFloat32:
      return out->set_float_val(v.AsFloat32());
    case ScalarType::kFloat64:
      return out->set_double_val(v.AsFloat64());
    case ScalarType::kString: {
      const std::string_view s = v.AsBytes();
      return out->set_string_val(s.data(), s.size());
    }
    case ScalarType::kBytes: {
      const std::string_view s = v.AsBytes();
      return out->set_bytes_val(s.data(), s.size());
    }
    case ScalarType::kTimestamp:
      return out->set_unix_timestamp_val(FloorSeconds(v.AsTimestamp()));
  }
}

template <typename List, typename Add>
void FillList(const ValueRef& v, List* list, Add add) {
  v.AsList().ForEach([&](auto x) { add(list, x); });
}

void SetValue(const ValueRef& v, fp::Value* out) {
  if (v.is_null()) return;  // an empty Value: Feast's null
  if (!v.type.is_list) return SetScalar(v.type.scalar, v, out);
  switch (v.type.scalar) {
    case ScalarType::kBool:
      return FillList(v, out->mutable_bool_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), bool>) l->add_val(x);
      });
    case ScalarType::kInt32:
      return FillList(v, out->mutable_int32_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), int32_t>) l->add_val(x);
      });
    case ScalarType::kInt64:
      return FillList(v, out->mutable_int64_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), int64_t>) l->add_val(x);
      });
    case ScalarType::kFloat32:
      return FillList(v, out->mutable_float_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), float>) l->add_val(x);
      });
    case ScalarType::kFloat64:
      return FillList(v, out->mutable_double_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), double>) l->add_val(x);
      });
    case ScalarType::kString:
      return FillList(v, out->mutable_string_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), std::string_view>) l->add_val(std::string(x));
      });
    case ScalarType::kBytes:
      return FillList(v, out->mutable_bytes_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), std::string_view>) l->add_val(std::string(x));
      });
    case ScalarType::kTimestamp:
      return FillList(v, out->mutable_unix_timestamp_list_val(), [](auto* l, auto x) {
        if constexpr (std::is_same_v<decltype(x), Timestamp>) l->add_val(FloorSeconds(x));
      });
  }
}

void SetEntityValue(const Value& v, fp::Value* out) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          out->set_bool_val(x);
        } else if constexpr (std::is_same_v<X, int32_t>) {
          out->set_int32_val(x);
        } else if constexpr (std::is_same_v<X, int64_t>) {
          out->set_int64_val(x);
        } else if constexpr (std::is_same_v<X, float>) {
          out->set_float_val(x);
        } else if constexpr (std::is_same_v<X, double>) {
          out->set_double_val(x);
        } else if constexpr (std::is_same_v<X, std::string>) {
          out->set_string_val(x);
        } else if constexpr (std::is_same_v<X, Bytes>) {
          out->set_bytes_val(x.data);
        } else if constexpr (std::is_same_v<X, Timestamp>) {
          out->set_unix_timestamp_val(FloorSeconds(x));
        }  // join keys are never null or lists
      },
      v.storage());
}

void SetTime(Timestamp t, google::protobuf::Timestamp* out) {
  const int64_t seconds = FloorSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t.micros - seconds * 1'000'000) * 1000));
}

}  // namespace

Result<OnlineFeaturesRequest> FromFeastProto(const feast::serving::GetOnlineFeaturesRequest& req) {
  OnlineFeaturesRequest out;
  if (req.kind_case() == feast::serving::GetOnlineFeaturesRequest::kFeatureService) {
    out.feature_service = req.feature_service();
  } else if (req.kind_case() == feast::serving::GetOnlineFeaturesRequest::kFeatures) {
    out.features.assign(req.features().val().begin(), req.features().val().end());
  }
  out.full_feature_names = req.full_feature_names();
  out.include_view_metadata = req.include_feature_view_version_metadata();
  if (!req.request_context().empty()) {
    return Status::InvalidArgument(fmt::format(
        "request_context ('{}', ...) feeds Feast's on-demand feature views, which Granary does "
        "not have; leave it empty",
        req.request_context().begin()->first));
  }
  std::vector<std::string> keys;
  keys.reserve(req.entities().size());
  for (const auto& [key, values] : req.entities()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    const fp::RepeatedValue& values = req.entities().at(key);
    OnlineFeaturesRequest::EntityColumn column;
    column.name = key;
    column.values.reserve(values.val_size());
    for (int i = 0; i < values.val_size(); ++i) {
      GRANARY_ASSIGN_OR_RAISE(Value v, EntityValue(values.val(i), key, i));
      column.values.push_back(std::move(v));
    }
    out.entities.push_back(std::move(column));
  }
  return out;
}

void ToFeastProto(const ResolvedOnlineRequest& request, const OnlineFeatures& features,
                  feast::serving::GetOnlineFeaturesResponse* out) {
  const size_t rows = request.num_rows;
  auto* names = out->mutable_metadata()->mutable_feature_names();
  for (const auto& e : request.entities) names->add_val(e.name);
  for (const auto& c : request.columns) names->add_val(c.name);
  if (request.include_view_metadata) {
    for (const ViewRead& v : request.read.views) {
      out->mutable_metadata()->add_feature_view_metadata()->set_name(v.view->name());
    }
  }
  out->mutable_results()->Reserve(
      static_cast<int>(request.entities.size() + request.columns.size()));
  for (const auto& e : request.entities) {
    auto* vector = out->add_results();
    vector->mutable_values()->Reserve(static_cast<int>(rows));
    for (size_t r = 0; r < rows; ++r) {
      SetEntityValue(e.values[r], vector->add_values());
      vector->add_statuses(feast::serving::PRESENT);
      vector->add_event_timestamps();
    }
  }
  for (const auto& c : request.columns) {
    auto* vector = out->add_results();
    vector->mutable_values()->Reserve(static_cast<int>(rows));
    for (size_t r = 0; r < rows; ++r) {
      SetValue(features.value(c.view, c.feature, r), vector->add_values());
      vector->add_statuses(
          static_cast<feast::serving::FieldStatus>(features.status(c.view, c.feature, r)));
      SetTime(features.event_timestamp(c.view, r), vector->add_event_timestamps());
    }
  }
  out->set_status(true);
}

}  // namespace granary::serving
