// OnlineFeaturesService::WriteResponse: Feast's response JSON, streamed straight from the values
// read in place. The shape is fixed, so a small appender with memcpy runs does it: a general JSON
// writer (RapidJSON's, when it was used) copies byte by byte and costed ~50 us per 250-feature
// response.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"

namespace granary {
namespace {

constexpr std::string_view kEpoch = "\"1970-01-01T00:00:00Z\"";

// Status names as JSON strings, by FeatureStatus.
constexpr std::string_view kQuotedStatus[] = {"\"INVALID\"", "\"PRESENT\"", "\"NULL_VALUE\"",
                                              "\"NOT_FOUND\"", "\"OUTSIDE_MAX_AGE\""};

// Appends JSON text to a string. The caller writes the punctuation of the fixed shape.
class JsonOut {
 public:
  explicit JsonOut(std::string* out) : out_(out) {}

  void Raw(std::string_view s) { out_->append(s); }
  void Char(char c) { out_->push_back(c); }

  // A JSON string with the escapes RFC 8259 requires; bytes >= 0x80 are copied as they are.
  void String(std::string_view s) {
    out_->push_back('"');
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_->append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_->append("\\\"", 2);
          break;
        case '\\':
          out_->append("\\\\", 2);
          break;
        case '\n':
          out_->append("\\n", 2);
          break;
        case '\r':
          out_->append("\\r", 2);
          break;
        case '\t':
          out_->append("\\t", 2);
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out_->append(u, 6);
        }
      }
    }
    out_->append(s.data() + run, s.size() - run);
    out_->push_back('"');
  }

  template <typename Int>
  void Integer(Int v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out_->append(buf, end - buf);
  }

  // The shortest text that reads back as the same double, as a JSON number: "0.1", "1e+30", and
  // "5.0" rather than "5" so that readers keep it a float (as Python writes it). NaN and the
  // infinities as Python's json module writes them.
  void Float64(double d) { Float(d); }
  // As Float64, shortest for a float32 (0.1, not 0.10000000149011612).
  void Float32(float f) { Float(f); }
  template <typename F>
  void Float(F v) {
    if (NonFinite(v)) return;
    char buf[40];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf) - 2, v);
    if (std::find_if(buf, end, [](char c) { return c == '.' || c == 'e'; }) == end) {
      *end++ = '.';
      *end++ = '0';
    }
    out_->append(buf, end - buf);
  }
  void Bool(bool b) { out_->append(b ? "true" : "false"); }
  void Null() { out_->append("null", 4); }
  void Bytes(std::string_view data) {
    out_->push_back('"');
    serving::AppendBase64(data, out_);
    out_->push_back('"');
  }
  void Timestamp(granary::Timestamp ts) {
    char buf[serving::kRfc3339Max];
    size_t n = serving::FormatRfc3339(ts, buf);
    out_->push_back('"');
    out_->append(buf, n);
    out_->push_back('"');
  }

 private:
  bool NonFinite(double d) {
    if (std::isnan(d)) {
      out_->append("NaN", 3);
    } else if (std::isinf(d)) {
      out_->append(d > 0 ? "Infinity" : "-Infinity");
    } else {
      return false;
    }
    return true;
  }
  std::string* out_;
};

void WriteScalar(JsonOut& w, ScalarType type, const ValueRef& v) {
  switch (type) {
    case ScalarType::kBool:
      return w.Bool(v.AsBool());
    case ScalarType::kInt32:
      return w.Integer(v.AsInt32());
    case ScalarType::kInt64:
      return w.Integer(v.AsInt64());
    case ScalarType::kFloat32:
      return w.Float32(v.AsFloat32());
    case ScalarType::kFloat64:
      return w.Float64(v.AsFloat64());
    case ScalarType::kString:
      return w.String(v.AsBytes());
    case ScalarType::kBytes:
      return w.Bytes(v.AsBytes());
    case ScalarType::kTimestamp:
      return w.Timestamp(v.AsTimestamp());
  }
}

void WriteValue(JsonOut& w, const ValueRef& v) {
  if (v.is_null()) return w.Null();
  if (!v.type.is_list) return WriteScalar(w, v.type.scalar, v);
  w.Char('[');
  bool first = true;
  v.AsList().ForEach([&](auto x) {
    using X = std::decay_t<decltype(x)>;
    if (!first) w.Char(',');
    first = false;
    if constexpr (std::is_same_v<X, bool>) {
      w.Bool(x);
    } else if constexpr (std::is_same_v<X, int32_t> || std::is_same_v<X, int64_t>) {
      w.Integer(x);
    } else if constexpr (std::is_same_v<X, float>) {
      w.Float32(x);
    } else if constexpr (std::is_same_v<X, double>) {
      w.Float64(x);
    } else if constexpr (std::is_same_v<X, granary::Timestamp>) {
      w.Timestamp(x);
    } else if (v.type.scalar == ScalarType::kBytes) {
      w.Bytes(x);
    } else {
      w.String(x);
    }
  });
  w.Char(']');
}

// An entity column's value (typed by the join key).
void WriteEntityValue(JsonOut& w, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          w.Bool(x);
        } else if constexpr (std::is_same_v<X, int32_t> || std::is_same_v<X, int64_t>) {
          w.Integer(x);
        } else if constexpr (std::is_same_v<X, float>) {
          w.Float32(x);
        } else if constexpr (std::is_same_v<X, double>) {
          w.Float64(x);
        } else if constexpr (std::is_same_v<X, std::string>) {
          w.String(x);
        } else if constexpr (std::is_same_v<X, granary::Bytes>) {
          w.Bytes(x.data);
        } else if constexpr (std::is_same_v<X, granary::Timestamp>) {
          w.Timestamp(x);
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
  json->clear();
  json->reserve(256 + (request.columns.size() + request.entities.size()) * (rows * 48 + 64));
  JsonOut w(json);

  // Each (view, row)'s event time is formatted once, quoted, for all of the view's features.
  constexpr size_t kSlot = serving::kRfc3339Max + 2;
  const size_t num_views = request.read.views.size();
  std::vector<char> times(num_views * rows * kSlot);
  std::vector<uint8_t> time_lengths(num_views * rows);
  for (size_t v = 0; v < num_views; ++v) {
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = v * rows + r;
      char* out = &times[i * kSlot];
      out[0] = '"';
      size_t n = serving::FormatRfc3339Millis(features.event_timestamp(v, r), out + 1);
      out[n + 1] = '"';
      time_lengths[i] = static_cast<uint8_t>(n + 2);
    }
  }

  w.Raw("{\"metadata\":{\"feature_names\":[");
  bool first = true;
  for (const auto& e : request.entities) {
    if (!first) w.Char(',');
    first = false;
    w.String(e.name);
  }
  for (const auto& c : request.columns) {
    if (!first) w.Char(',');
    first = false;
    w.String(c.name);
  }
  w.Char(']');
  if (request.include_view_metadata) {
    // Views are numbered in order of their first requested feature.
    w.Raw(",\"feature_view_metadata\":[");
    for (size_t v = 0; v < num_views; ++v) {
      if (v > 0) w.Char(',');
      w.Raw("{\"name\":");
      w.String(request.read.views[v].view->name());
      w.Char('}');
    }
    w.Char(']');
  }
  w.Raw("},\"results\":[");
  first = true;
  for (const auto& e : request.entities) {
    if (!first) w.Char(',');
    first = false;
    w.Raw("{\"values\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      WriteEntityValue(w, e.values[r]);
    }
    w.Raw("],\"statuses\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      w.Raw(kQuotedStatus[1]);
    }
    w.Raw("],\"event_timestamps\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      w.Raw(kEpoch);
    }
    w.Raw("]}");
  }
  for (const auto& c : request.columns) {
    if (!first) w.Char(',');
    first = false;
    w.Raw("{\"values\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      WriteValue(w, features.value(c.view, c.feature, r));
    }
    w.Raw("],\"statuses\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      w.Raw(kQuotedStatus[static_cast<int>(features.status(c.view, c.feature, r))]);
    }
    w.Raw("],\"event_timestamps\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      const size_t i = c.view * rows + r;
      w.Raw(std::string_view(&times[i * kSlot], time_lengths[i]));
    }
    w.Raw("]}");
  }
  w.Raw("]}");
}

}  // namespace granary
