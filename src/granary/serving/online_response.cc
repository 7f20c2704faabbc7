// OnlineFeaturesService::WriteResponse: Feast's response JSON, streamed straight from the values
// read in place. The shape is fixed, so a small appender with memcpy runs does it: a general JSON
// writer (RapidJSON's, when it was used) copies byte by byte and costed ~50 us per 250-feature
// response. What every feature of a view shares (its event times, its row statuses) is written
// once per view and copied; values are written by one loop per type (docs/PERFORMANCE.md, "The
// response JSON"). A request may leave the statuses and event times out (the compact form,
// docs/SERVING.md): then those arrays are neither built nor written.
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
  // Bytes written so far.
  size_t size() const { return static_cast<size_t>(p_ - out_->data()); }
  // Cuts the string to what was written. Call once, at the end.
  void Finish() { out_->resize(static_cast<size_t>(p_ - out_->data())); }

  // Makes room for n more bytes (plus kSlack).
  [[gnu::always_inline]] void Reserve(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) [[unlikely]]
      Grow(n);
  }
  // Makes room for n more bytes (plus kSlack), growing to exactly that when it must grow: for
  // the last write of a string whose final size is known.
  void ReserveExactly(size_t n) {
    if (static_cast<size_t>(end_ - p_) >= n) return;
    const size_t used = static_cast<size_t>(p_ - out_->data());
    out_->resize(used + n + kSlack);
    p_ = out_->data() + used;
    end_ = out_->data() + used + n;
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
      // Eight bytes at a time while none needs an escape (names and most values).
      while (i + 8 <= s.size() && !NeedsEscape8(s.data() + i)) i += 8;
      // The last bytes, as the last 8 (read again in part) when they are clean.
      if (i < s.size() && i + 8 > s.size() && s.size() >= 8 &&
          !NeedsEscape8(s.data() + s.size() - 8)) {
        i = s.size();
      }
      if (i == s.size()) break;
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

  // The most bytes of one scalar written by the Put* methods below (a timestamp, quoted).
  static constexpr size_t kScalarMax = serving::kRfc3339Max + 2;
  static_assert(kScalarMax >= serving::kShortestMax && kScalarMax >= 24);
  // FormatShortest writes up to kShortestRoom bytes, of which it keeps kShortestMax.
  static_assert(kSlack >= serving::kShortestRoom);

  // Unchecked writes of one scalar: the caller has made room for kScalarMax bytes (Reserve).
  void PutChar(char c) { *p_++ = c; }
  template <typename Int>
  void PutInteger(Int v) {
    p_ = std::to_chars(p_, p_ + 24, v).ptr;
  }
  // The shortest text that reads back as the same number, as a JSON number: "0.1", "1e+30", and
  // "5.0" rather than "5" so that readers keep it a float (as Python writes it); a float32 as
  // the shortest for a float32 (0.1, not 0.10000000149011612). NaN and the infinities as
  // Python's json module writes them.
  template <typename F>
  void PutFloat(F v) {
    if (std::isfinite(v)) [[likely]] {
      p_ += serving::FormatShortest(v, p_, /*json_float=*/true);
    } else if (std::isnan(v)) {
      PutConst("NaN");
    } else if (v > 0) {
      PutConst("Infinity");
    } else {
      PutConst("-Infinity");
    }
  }
  void PutBool(bool b) { b ? PutConst("true") : PutConst("false"); }
  void PutNull() { PutConst("null"); }
  void PutTimestamp(granary::Timestamp ts) {
    *p_++ = '"';
    p_ += serving::FormatRfc3339(ts, p_);
    *p_++ = '"';
  }

  template <typename Int>
  void Integer(Int v) {
    Reserve(kScalarMax);
    PutInteger(v);
  }
  void Float64(double d) {
    Reserve(kScalarMax);
    PutFloat(d);
  }
  void Float32(float f) {
    Reserve(kScalarMax);
    PutFloat(f);
  }
  void Bool(bool b) {
    Reserve(kScalarMax);
    PutBool(b);
  }
  void Null() {
    Reserve(kScalarMax);
    PutNull();
  }
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
    Reserve(kScalarMax);
    PutTimestamp(ts);
  }

 private:
  template <size_t N>
  void PutConst(const char (&s)[N]) {
    std::memcpy(p_, s, N - 1);
    p_ += N - 1;
  }
  // Whether any of the 8 bytes at p is below 0x20, '"' or '\\' (bit tricks on one word: a byte
  // below n, or equal to one, sets its high bit in the results; bytes >= 0x80 never do).
  static bool NeedsEscape8(const char* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
    const uint64_t quote = x ^ (kOnes * '"'), backslash = x ^ (kOnes * '\\');
    const uint64_t below_space = (x - kOnes * 0x20) & ~x;
    const uint64_t is_quote = (quote - kOnes) & ~quote;
    const uint64_t is_backslash = (backslash - kOnes) & ~backslash;
    return ((below_space | is_quote | is_backslash) & kHigh) != 0;
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

// A quoted event time, readable as kSize bytes (JsonOut::Short).
struct QuotedTimeSlot {
  static constexpr size_t kSize = 48;
  static_assert(kSize >= serving::kRfc3339Max + 2 && kSize <= JsonOut::kSlack);
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

// What every feature column of a view shares, written once per view: the JSON arrays of its
// rows' event times and of its rows' statuses (each feature's statuses are its view's row
// statuses unless the feature is null or missing in a row read). A column then copies them in
// one run each instead of formatting or copying one short piece per row.
// Only the arrays the answer carries are built (empty spans otherwise).
struct ViewArrays {
  std::string text;  // every array, one after the other
  struct Span {
    size_t begin = 0, size = 0;
  };
  std::vector<Span> times;     // per view: ["2027-01-15T07:30:00Z",...]
  std::vector<Span> statuses;  // per view: ["PRESENT","NOT_FOUND",...]

  ViewArrays(const OnlineFeatures& features, size_t num_views, size_t rows, bool with_times,
             bool with_statuses)
      : times(num_views), statuses(num_views) {
    if (!with_times && !with_statuses) return;
    JsonOut out(&text, num_views * (rows * ((with_times ? 28 : 0) + (with_statuses ? 14 : 0)) + 4));
    for (size_t v = 0; v < num_views; ++v) {
      if (with_times) AppendTimes(features, v, rows, out);
      if (with_statuses) AppendStatuses(features, v, rows, out);
    }
    out.Finish();
  }
  std::string_view Times(size_t v) const { return {text.data() + times[v].begin, times[v].size}; }
  std::string_view Statuses(size_t v) const {
    return {text.data() + statuses[v].begin, statuses[v].size};
  }

 private:
  void AppendTimes(const OnlineFeatures& features, size_t v, size_t rows, JsonOut& out) {
    times[v].begin = out.size();
    out.Char('[');
    int64_t last_micros = 0;
    char last[QuotedTimeSlot::kSize];
    size_t last_size = 0;
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) out.Char(',');
      // Rows of a view often share an event time (one materialization's batch): formatted once.
      const Timestamp ts = features.event_timestamp(v, r);
      if (last_size == 0 || ts.micros != last_micros) {
        last[0] = '"';
        const size_t n = serving::FormatRfc3339Millis(ts, last + 1);
        last[n + 1] = '"';
        last_size = n + 2;
        last_micros = ts.micros;
      }
      out.Short<QuotedTimeSlot::kSize>(last, last_size);
    }
    out.Char(']');
    times[v].size = out.size() - times[v].begin;
  }
  void AppendStatuses(const OnlineFeatures& features, size_t v, size_t rows, JsonOut& out) {
    statuses[v].begin = out.size();
    out.Char('[');
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) out.Char(',');
      const QuotedStatus& q = kQuotedStatus[static_cast<int>(features.row_status(v, r))];
      out.Short<kStatusCopy>(q.text, q.size);
    }
    out.Char(']');
    statuses[v].size = out.size() - statuses[v].begin;
  }
};

// The JSON of one column's values, one loop per scalar type so that the type is not looked up
// and switched on per value; lists, strings and bytes go value by value.
template <typename Put>
void WriteColumnValues(JsonOut& w, const OnlineFeatures& features, size_t v, size_t j, size_t rows,
                       Put put) {
  // The values of a column lie in as many bodies as rows: fetched ahead, as the writing of the
  // values before them does not depend on them.
  constexpr size_t kAhead = 8;
  for (size_t r = 0; r < rows; ++r) {
    if (r + kAhead < rows) __builtin_prefetch(features.value(v, j, r + kAhead).data);
    w.Reserve(JsonOut::kScalarMax + 1);
    if (r > 0) w.PutChar(',');
    const char* data = features.value(v, j, r).data;
    if (data == nullptr) {
      w.PutNull();
    } else {
      put(data);
    }
  }
}

void WriteColumnValues(JsonOut& w, const OnlineFeatures& features, size_t v, size_t j, size_t rows,
                       ValueType type) {
  if (!type.is_list) {
    switch (type.scalar) {
      case ScalarType::kBool:
        return WriteColumnValues(w, features, v, j, rows,
                                 [&](const char* d) { w.PutBool(*d != 0); });
      case ScalarType::kInt32:
        return WriteColumnValues(w, features, v, j, rows, [&](const char* d) {
          w.PutInteger(layout::LoadFixed<int32_t>(d));
        });
      case ScalarType::kInt64:
        return WriteColumnValues(w, features, v, j, rows, [&](const char* d) {
          w.PutInteger(layout::LoadFixed<int64_t>(d));
        });
      case ScalarType::kFloat32:
        return WriteColumnValues(w, features, v, j, rows,
                                 [&](const char* d) { w.PutFloat(layout::LoadFixed<float>(d)); });
      case ScalarType::kFloat64:
        return WriteColumnValues(w, features, v, j, rows,
                                 [&](const char* d) { w.PutFloat(layout::LoadFixed<double>(d)); });
      case ScalarType::kTimestamp:
        return WriteColumnValues(w, features, v, j, rows, [&](const char* d) {
          w.PutTimestamp(Timestamp::FromMicros(layout::LoadFixed<int64_t>(d)));
        });
      case ScalarType::kString:
      case ScalarType::kBytes:
        break;
    }
  }
  for (size_t r = 0; r < rows; ++r) {
    if (r > 0) w.Char(',');
    WriteValue(w, features.value(v, j, r));
  }
}

// About what one value of `type` takes, so that most answers are written without growing the
// string.
size_t ExpectedValueBytes(ValueType type) {
  if (type.is_list) return 64;
  switch (type.scalar) {
    case ScalarType::kBool:
      return 6;
    case ScalarType::kInt32:
      return 8;
    case ScalarType::kInt64:
      return 12;
    case ScalarType::kFloat32:
      return 14;
    case ScalarType::kFloat64:
      return 20;
    case ScalarType::kTimestamp:
      return 30;
    case ScalarType::kString:
    case ScalarType::kBytes:
      return 24;
  }
  return 24;
}

ValueType ColumnType(const ResolvedOnlineRequest& request, const ResolvedOnlineRequest::Column& c) {
  const ViewRead& read = request.read.views[c.view];
  return read.view->features()[read.features[c.feature]].type;
}

// About what feature columns [begin, end) take.
size_t ExpectedColumnBytes(const ResolvedOnlineRequest& request, const ViewArrays& arrays,
                           size_t begin, size_t end) {
  size_t bytes = 0;
  for (size_t k = begin; k < end; ++k) {
    const ResolvedOnlineRequest::Column& c = request.columns[k];
    bytes += 64 + request.num_rows * ExpectedValueBytes(ColumnType(request, c)) +
             arrays.times[c.view].size + arrays.statuses[c.view].size;
  }
  return bytes;
}

// Feature columns [begin, end) of the results, each preceded by a comma unless it is the very
// first column of the results.
void WriteFeatureColumns(JsonOut& w, const ResolvedOnlineRequest& request,
                         const OnlineFeatures& features, const ViewArrays& arrays, size_t begin,
                         size_t end) {
  const size_t rows = request.num_rows;
  for (size_t k = begin; k < end; ++k) {
    const ResolvedOnlineRequest::Column& c = request.columns[k];
    if (k > 0 || !request.entities.empty()) w.Char(',');
    w.Raw("{\"values\":[");
    WriteColumnValues(w, features, c.view, c.feature, rows, ColumnType(request, c));
    w.Char(']');
    if (request.include_statuses) {
      w.Raw(",\"statuses\":");
      bool row_statuses = true;
      for (size_t r = 0; r < rows && row_statuses; ++r) {
        row_statuses = features.status(c.view, c.feature, r) == features.row_status(c.view, r);
      }
      if (row_statuses) {
        w.Raw(arrays.Statuses(c.view));
      } else {
        w.Char('[');
        for (size_t r = 0; r < rows; ++r) {
          if (r > 0) w.Char(',');
          const QuotedStatus& s =
              kQuotedStatus[static_cast<int>(features.status(c.view, c.feature, r))];
          w.Short<kStatusCopy>(s.text, s.size);
        }
        w.Char(']');
      }
    }
    if (request.include_event_timestamps) {
      w.Raw(",\"event_timestamps\":");
      w.Raw(arrays.Times(c.view));
    }
    w.Char('}');
  }
}

}  // namespace

void OnlineFeaturesService::WriteResponse(const ResolvedOnlineRequest& request,
                                          const OnlineFeatures& features, std::string* json,
                                          ForkJoinPool* split) {
  const size_t rows = request.num_rows;
  const size_t num_views = request.read.views.size();
  const size_t columns = request.columns.size();
  const ViewArrays arrays(features, num_views, rows, request.include_event_timestamps,
                          request.include_statuses);

  // A large answer's feature columns are written in parts, in parallel, and joined: the bytes
  // are those of one writer (docs/PERFORMANCE.md, "Splitting one large answer").
  size_t parts = 1;
  if (split != nullptr && split->parallelism() > 1 && rows * columns >= kSplitAnswerValues) {
    parts = std::min(columns, 2 * static_cast<size_t>(split->parallelism()));
  }
  auto part_begin = [&](size_t p) { return columns * p / parts; };

  // A split answer's head is sized for the whole answer, so that the parts joined at the end
  // fit: growing it there doubled a string of about the answer's size (for 100 x 250: a 2.6 MB
  // string zero-filled, the head copied, then cut to 1.3 MB) on the worker, after the helpers
  // were done (docs/PERFORMANCE.md, "The tail of a large answer").
  JsonOut w(json, 256 + request.entities.size() * rows * 60 +
                      ExpectedColumnBytes(request, arrays, 0, columns));
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
    w.Char(']');
    if (request.include_statuses) {
      w.Raw(",\"statuses\":[");
      for (size_t r = 0; r < rows; ++r) {
        if (r > 0) w.Char(',');
        w.Short<kStatusCopy>(kQuotedStatus[1].text, kQuotedStatus[1].size);
      }
      w.Char(']');
    }
    if (request.include_event_timestamps) {
      w.Raw(",\"event_timestamps\":[");
      for (size_t r = 0; r < rows; ++r) {
        if (r > 0) w.Char(',');
        w.Raw(kEpoch);
      }
      w.Char(']');
    }
    w.Char('}');
  }
  if (parts == 1) {
    WriteFeatureColumns(w, request, features, arrays, 0, columns);
    w.Raw("]}");
    w.Finish();
    return;
  }
  // Part 0 goes on after the head in `json`; the others into strings of their own.
  std::vector<std::string> tails(parts - 1);
  split->Run(parts, [&](size_t p) {
    if (p == 0) {
      WriteFeatureColumns(w, request, features, arrays, 0, part_begin(1));
      return;
    }
    JsonOut tail(&tails[p - 1],
                 ExpectedColumnBytes(request, arrays, part_begin(p), part_begin(p + 1)));
    WriteFeatureColumns(tail, request, features, arrays, part_begin(p), part_begin(p + 1));
    tail.Finish();
  });
  size_t total = 2;
  for (const std::string& t : tails) total += t.size();
  w.ReserveExactly(total);
  for (const std::string& t : tails) w.Raw(t);
  w.Raw("]}");
  w.Finish();
}

}  // namespace granary
