// OnlineFeaturesService::WriteResponse: Feast's response JSON, streamed with RapidJSON's Writer
// straight from the values read in place (no DOM, no allocation per value).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>

#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"

namespace granary {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;

constexpr std::string_view kEpoch = "1970-01-01T00:00:00Z";

void WriteTimestamp(JsonWriter& w, Timestamp ts) {
  char buf[serving::kRfc3339Max];
  size_t n = serving::FormatRfc3339(ts, buf);
  w.String(buf, static_cast<rapidjson::SizeType>(n));
}

void WriteFloat32(JsonWriter& w, float f) {
  if (!std::isfinite(f)) {
    w.Double(static_cast<double>(f));  // NaN, Infinity, -Infinity
    return;
  }
  // The shortest text that reads back as the same float32 (0.1, not 0.10000000149011612).
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), f);
  w.RawValue(buf, end - buf, rapidjson::kNumberType);
}

void WriteBytes(JsonWriter& w, std::string_view bytes, std::string* scratch) {
  scratch->clear();
  serving::AppendBase64(bytes, scratch);
  w.String(scratch->data(), static_cast<rapidjson::SizeType>(scratch->size()));
}

void WriteScalar(JsonWriter& w, ScalarType type, const ValueRef& v, std::string* scratch) {
  switch (type) {
    case ScalarType::kBool:
      w.Bool(v.AsBool());
      break;
    case ScalarType::kInt32:
      w.Int(v.AsInt32());
      break;
    case ScalarType::kInt64:
      w.Int64(v.AsInt64());
      break;
    case ScalarType::kFloat32:
      WriteFloat32(w, v.AsFloat32());
      break;
    case ScalarType::kFloat64:
      w.Double(v.AsFloat64());
      break;
    case ScalarType::kString: {
      std::string_view s = v.AsBytes();
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      break;
    }
    case ScalarType::kBytes:
      WriteBytes(w, v.AsBytes(), scratch);
      break;
    case ScalarType::kTimestamp:
      WriteTimestamp(w, v.AsTimestamp());
      break;
  }
}

void WriteValue(JsonWriter& w, const ValueRef& v, std::string* scratch) {
  if (v.is_null()) {
    w.Null();
    return;
  }
  if (!v.type.is_list) {
    WriteScalar(w, v.type.scalar, v, scratch);
    return;
  }
  w.StartArray();
  v.AsList().ForEach([&](auto x) {
    using X = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<X, bool>) {
      w.Bool(x);
    } else if constexpr (std::is_same_v<X, int32_t>) {
      w.Int(x);
    } else if constexpr (std::is_same_v<X, int64_t>) {
      w.Int64(x);
    } else if constexpr (std::is_same_v<X, float>) {
      WriteFloat32(w, x);
    } else if constexpr (std::is_same_v<X, double>) {
      w.Double(x);
    } else if constexpr (std::is_same_v<X, Timestamp>) {
      WriteTimestamp(w, x);
    } else if (v.type.scalar == ScalarType::kBytes) {
      WriteBytes(w, x, scratch);
    } else {
      w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
    }
  });
  w.EndArray();
}

// An entity column's value (typed by ToJoinKeyValue).
void WriteEntityValue(JsonWriter& w, const Value& v, std::string* scratch) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          w.Bool(x);
        } else if constexpr (std::is_same_v<X, int32_t>) {
          w.Int(x);
        } else if constexpr (std::is_same_v<X, int64_t>) {
          w.Int64(x);
        } else if constexpr (std::is_same_v<X, float>) {
          WriteFloat32(w, x);
        } else if constexpr (std::is_same_v<X, double>) {
          w.Double(x);
        } else if constexpr (std::is_same_v<X, std::string>) {
          w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
        } else if constexpr (std::is_same_v<X, Bytes>) {
          WriteBytes(w, x.data, scratch);
        } else if constexpr (std::is_same_v<X, Timestamp>) {
          WriteTimestamp(w, x);
        } else {
          w.Null();  // join keys are never null or lists
        }
      },
      v.storage());
}

}  // namespace

void OnlineFeaturesService::WriteResponse(const ResolvedOnlineRequest& request,
                                          const OnlineFeatures& features, std::string* json) {
  const size_t rows = request.num_rows;
  rapidjson::StringBuffer buffer;
  buffer.Reserve(256 + (request.columns.size() + request.entities.size()) * rows * 48);
  JsonWriter w(buffer);
  std::string scratch;

  // Each (view, row)'s event time is formatted once, for all of the view's features.
  const size_t num_views = request.read.views.size();
  std::vector<char> times(num_views * rows * serving::kRfc3339Max);
  std::vector<uint8_t> time_lengths(num_views * rows);
  for (size_t v = 0; v < num_views; ++v) {
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = v * rows + r;
      time_lengths[i] = static_cast<uint8_t>(
          serving::FormatRfc3339(features.event_timestamp(v, r), &times[i * serving::kRfc3339Max]));
    }
  }

  w.StartObject();
  w.Key("metadata");
  w.StartObject();
  w.Key("feature_names");
  w.StartArray();
  for (const auto& e : request.entities) w.String(e.name.data(), e.name.size());
  for (const auto& c : request.columns) w.String(c.name.data(), c.name.size());
  w.EndArray();
  w.EndObject();
  w.Key("results");
  w.StartArray();
  for (const auto& e : request.entities) {
    w.StartObject();
    w.Key("values");
    w.StartArray();
    for (const Value& v : e.values) WriteEntityValue(w, v, &scratch);
    w.EndArray();
    w.Key("statuses");
    w.StartArray();
    for (size_t r = 0; r < rows; ++r) w.String("PRESENT");
    w.EndArray();
    w.Key("event_timestamps");
    w.StartArray();
    for (size_t r = 0; r < rows; ++r) w.String(kEpoch.data(), kEpoch.size());
    w.EndArray();
    w.EndObject();
  }
  for (const auto& c : request.columns) {
    w.StartObject();
    w.Key("values");
    w.StartArray();
    for (size_t r = 0; r < rows; ++r) WriteValue(w, features.value(c.view, c.feature, r), &scratch);
    w.EndArray();
    w.Key("statuses");
    w.StartArray();
    for (size_t r = 0; r < rows; ++r) {
      std::string_view name = FeatureStatusName(features.status(c.view, c.feature, r));
      w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    }
    w.EndArray();
    w.Key("event_timestamps");
    w.StartArray();
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = c.view * rows + r;
      w.String(&times[i * serving::kRfc3339Max], time_lengths[i]);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  json->assign(buffer.GetString(), buffer.GetSize());
}

}  // namespace granary
