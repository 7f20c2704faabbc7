// OnlineFeaturesService::WriteResponse: Feast's response JSON, streamed straight from the values
// read in place. The shape is fixed, so a small appender with memcpy runs does it: a general JSON
// writer (RapidJSON's, when it was used) copies byte by byte and costed ~50 us per 250-feature
// response.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "granary/common/fork_join.h"
#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"

namespace granary {
namespace {

constexpr std::string_view kEpoch = "\"1970-01-01T00:00:00Z\"";

// Status names as JSON strings, by FeatureStatus; each entry readable as kStatusCopy bytes
// (JsonOut::Short).
constexpr size_t kStatusCopy = 24;
struct QuotedStatus {
  char text[kStatusCopy];
  size_t size;
};
constexpr QuotedStatus kQuotedStatus[] = {{"\"INVALID\"", 9},
                                          {"\"PRESENT\"", 9},
                                          {"\"NULL_VALUE\"", 12},
                                          {"\"NOT_FOUND\"", 11},
                                          {"\"OUTSIDE_MAX_AGE\"", 17}};

// Writes JSON text into a string through a cursor, so that each value costs one bounds check
// (Reserve) and copies of a constant size: std::string::append's exact-length copies compiled to
// `rep movsq` and took 40 % of the writer's time on 100 x 250 answers (docs/PERFORMANCE.md,
// "Where the time goes"). The string is grown ahead (zero-filled) and cut to the written length
// by Finish(). The caller writes the punctuation of the fixed shape.
class JsonOut {
 public:
  // Room beyond any Reserve, so that fixed-size copies (kSlot bytes) never run past the end.
  static constexpr size_t kSlack = 64;

  JsonOut(std::string* out, size_t expected) : out_(out) {
    out_->clear();
    out_->resize(expected + kSlack);
    p_ = out_->data();
    end_ = p_ + expected;
  }
  // Cuts the string to what was written. Call once, at the end.
  void Finish() { out_->resize(static_cast<size_t>(p_ - out_->data())); }

  // Makes room for n more bytes (plus kSlack).
  [[gnu::always_inline]] void Reserve(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) [[unlikely]]
      Grow(n);
  }

  void Raw(std::string_view s) {
    Reserve(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  // `s` is at most kCopy bytes and is read as kCopy bytes (its buffer must allow it): one copy
  // of a constant size. Room is made for the n bytes kept, so the cursor never passes end_ (past
  // it, Reserve's unsigned room would wrap and let the next writes run off the string).
  template <size_t kCopy>
  void Short(const char* s, size_t n) {
    static_assert(kCopy <= kSlack);
    Reserve(n);
    std::memcpy(p_, s, kCopy);
    p_ += n;
  }
  void Char(char c) {
    Reserve(1);
    *p_++ = c;
  }

  // A JSON string with the escapes RFC 8259 requires; bytes >= 0x80 are copied as they are.
  void String(std::string_view s) {
    Reserve(2 + 6 * s.size());
    *p_++ = '"';
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      std::memcpy(p_, s.data() + run, i - run);
      p_ += i - run;
      run = i + 1;
      *p_++ = '\\';
      switch (c) {
        case '"':
          *p_++ = '"';
          break;
        case '\\':
          *p_++ = '\\';
          break;
        case '\n':
          *p_++ = 'n';
          break;
        case '\r':
          *p_++ = 'r';
          break;
        case '\t':
          *p_++ = 't';
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char u[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          std::memcpy(p_, u, 5);
          p_ += 5;
        }
      }
    }
    std::memcpy(p_, s.data() + run, s.size() - run);
    p_ += s.size() - run;
    *p_++ = '"';
  }

  template <typename Int>
  void Integer(Int v) {
    Reserve(24);
    p_ = std::to_chars(p_, p_ + 24, v).ptr;
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
    Reserve(40);
    char* end = std::to_chars(p_, p_ + 38, v).ptr;
    if (std::find_if(p_, end, [](char c) { return c == '.' || c == 'e'; }) == end) {
      *end++ = '.';
      *end++ = '0';
    }
    p_ = end;
  }
  void Bool(bool b) { b ? Raw("true") : Raw("false"); }
  void Null() { Raw("null"); }
  void Bytes(std::string_view data) {
    scratch_.clear();
    serving::AppendBase64(data, &scratch_);
    Reserve(scratch_.size() + 2);
    *p_++ = '"';
    std::memcpy(p_, scratch_.data(), scratch_.size());
    p_ += scratch_.size();
    *p_++ = '"';
  }
  void Timestamp(granary::Timestamp ts) {
    Reserve(serving::kRfc3339Max + 2);
    *p_++ = '"';
    p_ += serving::FormatRfc3339(ts, p_);
    *p_++ = '"';
  }

 private:
  bool NonFinite(double d) {
    if (std::isnan(d)) {
      Raw("NaN");
    } else if (std::isinf(d)) {
      Raw(d > 0 ? "Infinity" : "-Infinity");
    } else {
      return false;
    }
    return true;
  }
  [[gnu::noinline]] void Grow(size_t n) {
    const size_t used = static_cast<size_t>(p_ - out_->data());
    const size_t size = std::max(2 * (used + n), size_t{4096});
    out_->resize(size + kSlack);
    p_ = out_->data() + used;
    end_ = out_->data() + size;
  }

  std::string* out_;
  char* p_;    // next byte to write
  char* end_;  // the writable end; kSlack more bytes lie beyond it
  std::string scratch_;
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

// The quoted event times of every (view, row), formatted once for all of a view's features, each
// in a slot of kSlot bytes copied whole (JsonOut::Short).
struct QuotedTimes {
  static constexpr size_t kSlot = 48;
  static_assert(kSlot >= serving::kRfc3339Max + 2 && kSlot <= JsonOut::kSlack);
  std::vector<char> text;        // kSlot bytes per (view, row)
  std::vector<uint8_t> lengths;  // per (view, row)

  QuotedTimes(const OnlineFeatures& features, size_t num_views, size_t rows)
      : text(num_views * rows * kSlot), lengths(num_views * rows) {
    for (size_t v = 0; v < num_views; ++v) {
      for (size_t r = 0; r < rows; ++r) {
        const size_t i = v * rows + r;
        char* out = &text[i * kSlot];
        out[0] = '"';
        size_t n = serving::FormatRfc3339Millis(features.event_timestamp(v, r), out + 1);
        out[n + 1] = '"';
        lengths[i] = static_cast<uint8_t>(n + 2);
      }
    }
  }
};

// About what one column of float64 values takes per row (value, status, time), so that most
// answers are written without growing the string.
size_t ExpectedBytes(size_t columns, size_t rows) { return columns * (rows * 56 + 64); }

// Feature columns [begin, end) of the results, each preceded by a comma unless it is the very
// first column of the results.
void WriteFeatureColumns(JsonOut& w, const ResolvedOnlineRequest& request,
                         const OnlineFeatures& features, const QuotedTimes& times, size_t begin,
                         size_t end) {
  constexpr size_t kSlot = QuotedTimes::kSlot;
  const size_t rows = request.num_rows;
  for (size_t k = begin; k < end; ++k) {
    const ResolvedOnlineRequest::Column& c = request.columns[k];
    if (k > 0 || !request.entities.empty()) w.Char(',');
    w.Raw("{\"values\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      WriteValue(w, features.value(c.view, c.feature, r));
    }
    w.Raw("],\"statuses\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      const QuotedStatus& s =
          kQuotedStatus[static_cast<int>(features.status(c.view, c.feature, r))];
      w.Short<kStatusCopy>(s.text, s.size);
    }
    w.Raw("],\"event_timestamps\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      const size_t i = c.view * rows + r;
      w.Short<kSlot>(&times.text[i * kSlot], times.lengths[i]);
    }
    w.Raw("]}");
  }
}

}  // namespace

void OnlineFeaturesService::WriteResponse(const ResolvedOnlineRequest& request,
                                          const OnlineFeatures& features, std::string* json,
                                          ForkJoinPool* split) {
  const size_t rows = request.num_rows;
  const size_t num_views = request.read.views.size();
  const size_t columns = request.columns.size();
  const QuotedTimes times(features, num_views, rows);

  // A large answer's feature columns are written in parts, in parallel, and joined: the bytes
  // are those of one writer (docs/PERFORMANCE.md, "Splitting one large answer").
  size_t parts = 1;
  if (split != nullptr && split->parallelism() > 1 && rows * columns >= kSplitAnswerValues) {
    parts = std::min(columns, 2 * static_cast<size_t>(split->parallelism()));
  }
  auto part_begin = [&](size_t p) { return columns * p / parts; };

  JsonOut w(json, 256 + ExpectedBytes(request.entities.size(), rows) +
                      ExpectedBytes(part_begin(1), rows));
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
      w.Short<kStatusCopy>(kQuotedStatus[1].text, kQuotedStatus[1].size);
    }
    w.Raw("],\"event_timestamps\":[");
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) w.Char(',');
      w.Raw(kEpoch);
    }
    w.Raw("]}");
  }
  if (parts == 1) {
    WriteFeatureColumns(w, request, features, times, 0, columns);
    w.Raw("]}");
    w.Finish();
    return;
  }
  // Part 0 goes on after the head in `json`; the others into strings of their own.
  std::vector<std::string> tails(parts - 1);
  split->Run(parts, [&](size_t p) {
    if (p == 0) {
      WriteFeatureColumns(w, request, features, times, 0, part_begin(1));
      return;
    }
    JsonOut tail(&tails[p - 1], ExpectedBytes(part_begin(p + 1) - part_begin(p), rows));
    WriteFeatureColumns(tail, request, features, times, part_begin(p), part_begin(p + 1));
    tail.Finish();
  });
  size_t total = 2;
  for (const std::string& t : tails) total += t.size();
  w.Reserve(total);
  for (const std::string& t : tails) w.Raw(t);
  w.Raw("]}");
  w.Finish();
}

}  // namespace granary
