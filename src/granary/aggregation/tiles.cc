#include "granary/aggregation/tiles.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "granary/aggregation/window_kernel.h"
#include "granary/common/hash.h"
#include "granary/types/arrow_convert.h"

namespace granary::aggregation {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

// Reads from a tile body, bounds checked.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* v) {
    if (in_.size() - pos_ < n) return false;
    *v = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }
  size_t pos() const { return pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

bool IsFloat(const Value& v) { return v.is<double>() || v.is<float>(); }

double AsDouble(const Value& v) {
  if (v.is<double>()) return v.get<double>();
  if (v.is<float>()) return v.get<float>();
  if (v.is<int64_t>()) return static_cast<double>(v.get<int64_t>());
  if (v.is<int32_t>()) return v.get<int32_t>();
  if (v.is<bool>()) return v.get<bool>() ? 1 : 0;
  if (v.is<Timestamp>()) return static_cast<double>(v.get<Timestamp>().micros);
  return 0;
}

int64_t AsInt(const Value& v) {
  if (v.is<int64_t>()) return v.get<int64_t>();
  if (v.is<int32_t>()) return v.get<int32_t>();
  if (v.is<bool>()) return v.get<bool>() ? 1 : 0;
  if (v.is<Timestamp>()) return v.get<Timestamp>().micros;
  return static_cast<int64_t>(AsDouble(v));
}

// a < b for two non-null values of one scalar type.
bool Less(const Value& a, const Value& b) {
  if (a.is<std::string>()) return a.get<std::string>() < b.get<std::string>();
  if (a.is<Bytes>()) return a.get<Bytes>().data < b.get<Bytes>().data;
  if (IsFloat(a)) return AsDouble(a) < AsDouble(b);
  return AsInt(a) < AsInt(b);
}

// The bytes that identify a value for count_distinct: equal values, equal bytes (-0.0 is 0.0,
// every NaN one NaN), as the kernel compares them.
std::string DistinctBytes(const Value& v) {
  std::string out;
  if (v.is<std::string>()) {
    out.push_back('s');
    out += v.get<std::string>();
  } else if (v.is<Bytes>()) {
    out.push_back('s');  // the kernel compares strings and bytes by their bytes alike
    out += v.get<Bytes>().data;
  } else if (IsFloat(v)) {
    double d = AsDouble(v);
    if (d == 0) d = 0;
    if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
    out.push_back('f');
    Put(&out, d);
  } else {
    out.push_back('i');
    Put(&out, AsInt(v));
  }
  return out;
}

void PutValue(std::string* out, const Value& v) {
  if (v.is<bool>()) {
    out->push_back(v.get<bool>() ? 1 : 0);
  } else if (v.is<int32_t>()) {
    Put(out, v.get<int32_t>());
  } else if (v.is<int64_t>()) {
    Put(out, v.get<int64_t>());
  } else if (v.is<float>()) {
    Put(out, v.get<float>());
  } else if (v.is<double>()) {
    Put(out, v.get<double>());
  } else if (v.is<Timestamp>()) {
    Put(out, v.get<Timestamp>().micros);
  } else {
    const std::string& s = v.is<std::string>() ? v.get<std::string>() : v.get<Bytes>().data;
    Put(out, static_cast<uint32_t>(s.size()));
    out->append(s);
  }
}

bool GetValue(Reader* in, ScalarType type, Value* v) {
  switch (type) {
    case ScalarType::kBool: {
      uint8_t b;
      if (!in->Get(&b)) return false;
      *v = Value(b != 0);
      return true;
    }
    case ScalarType::kInt32: {
      int32_t x;
      if (!in->Get(&x)) return false;
      *v = Value(x);
      return true;
    }
    case ScalarType::kInt64: {
      int64_t x;
      if (!in->Get(&x)) return false;
      *v = Value(x);
      return true;
    }
    case ScalarType::kFloat32: {
      float x;
      if (!in->Get(&x)) return false;
      *v = Value(x);
      return true;
    }
    case ScalarType::kFloat64: {
      double x;
      if (!in->Get(&x)) return false;
      *v = Value(x);
      return true;
    }
    case ScalarType::kTimestamp: {
      int64_t x;
      if (!in->Get(&x)) return false;
      *v = Value(Timestamp::FromMicros(x));
      return true;
    }
    case ScalarType::kString:
    case ScalarType::kBytes: {
      uint32_t n;
      std::string_view s;
      if (!in->Get(&n) || !in->GetBytes(n, &s)) return false;
      *v = type == ScalarType::kString ? Value(std::string(s)) : Value(Bytes{std::string(s)});
      return true;
    }
  }
  return false;
}

// The value as the output type says (a column read as int32 for an int64 output, ...).
Value AsOutput(const Value& v, ValueType output) {
  switch (output.scalar) {
    case ScalarType::kInt64:
      return Value(AsInt(v));
    case ScalarType::kInt32:
      return Value(static_cast<int32_t>(AsInt(v)));
    case ScalarType::kFloat64:
      return Value(AsDouble(v));
    case ScalarType::kFloat32:
      return Value(static_cast<float>(AsDouble(v)));
    case ScalarType::kTimestamp:
      return v.is<Timestamp>() ? v : Value(Timestamp::FromMicros(AsInt(v)));
    case ScalarType::kBytes:
      return v.is<std::string>() ? Value(Bytes{v.get<std::string>()}) : v;
    case ScalarType::kString:
      return v.is<Bytes>() ? Value(v.get<Bytes>().data) : v;
    case ScalarType::kBool:
      return v;
  }
  return v;
}

// Merges `b` (later in stored or event order) into `a`.
void Merge(const TileSpec::Item& item, TilePartial* a, const TilePartial& b) {
  if (b.count == 0) return;
  if (a->count == 0) {
    *a = b;
    return;
  }
  switch (item.function) {
    case AggregationFunction::kCount:
      break;
    case AggregationFunction::kSum:
    case AggregationFunction::kMean:
      a->int_sum += b.int_sum;
      a->sum += b.sum;
      break;
    case AggregationFunction::kStddev: {
      // Chan et al.'s pairwise update: equal values keep m2 exactly 0.
      const double n = static_cast<double>(a->count + b.count);
      const double delta = b.mean - a->mean;
      a->mean += delta * static_cast<double>(b.count) / n;
      a->m2 +=
          b.m2 + delta * delta * static_cast<double>(a->count) * static_cast<double>(b.count) / n;
      break;
    }
    case AggregationFunction::kMin:
      if (Less(b.value, a->value)) a->value = b.value;
      break;
    case AggregationFunction::kMax:
      if (Less(a->value, b.value)) a->value = b.value;
      break;
    case AggregationFunction::kFirst:
      if (b.time < a->time) {
        a->time = b.time;
        a->value = b.value;
      }
      break;
    case AggregationFunction::kLast:
      if (b.time >= a->time) {
        a->time = b.time;
        a->value = b.value;
      }
      break;
    case AggregationFunction::kCountDistinct:
      a->distinct.insert(b.distinct.begin(), b.distinct.end());
      break;
  }
  a->count += b.count;
}

// The partial of one event.
TilePartial OfEvent(const TileSpec::Item& item, const Value& v, int64_t t) {
  TilePartial p;
  p.count = 1;
  switch (item.function) {
    case AggregationFunction::kCount:
      break;
    case AggregationFunction::kSum:
    case AggregationFunction::kMean:
      if (IsFloat(v))
        p.sum = AsDouble(v);
      else {
        p.int_sum = AsInt(v);
        p.sum = static_cast<double>(p.int_sum);
      }
      break;
    case AggregationFunction::kStddev:
      p.mean = AsDouble(v);
      break;
    case AggregationFunction::kMin:
    case AggregationFunction::kMax:
    case AggregationFunction::kFirst:
    case AggregationFunction::kLast:
      p.time = t;
      p.value = v;
      break;
    case AggregationFunction::kCountDistinct:
      p.distinct.insert(DistinctBytes(v));
      break;
  }
  return p;
}

void EncodePartial(const TileSpec::Item& item, const TilePartial& p, std::string* out) {
  Put(out, p.count);
  switch (item.function) {
    case AggregationFunction::kCount:
      break;
    case AggregationFunction::kSum:
      Put(out, p.int_sum);
      Put(out, p.sum);
      break;
    case AggregationFunction::kMean:
      Put(out, p.sum);
      break;
    case AggregationFunction::kStddev:
      Put(out, p.mean);
      Put(out, p.m2);
      break;
    case AggregationFunction::kMin:
    case AggregationFunction::kMax:
      if (p.count > 0) PutValue(out, AsOutput(p.value, item.output));
      break;
    case AggregationFunction::kFirst:
    case AggregationFunction::kLast:
      if (p.count > 0) {
        Put(out, p.time);
        PutValue(out, AsOutput(p.value, item.output));
      }
      break;
    case AggregationFunction::kCountDistinct:
      Put(out, static_cast<uint32_t>(p.distinct.size()));
      for (const std::string& s : p.distinct) {
        Put(out, static_cast<uint32_t>(s.size()));
        out->append(s);
      }
      break;
  }
}

bool DecodePartial(const TileSpec::Item& item, Reader* in, TilePartial* p) {
  if (!in->Get(&p->count) || p->count < 0) return false;
  switch (item.function) {
    case AggregationFunction::kCount:
      return true;
    case AggregationFunction::kSum:
      return in->Get(&p->int_sum) && in->Get(&p->sum);
    case AggregationFunction::kMean:
      return in->Get(&p->sum);
    case AggregationFunction::kStddev:
      return in->Get(&p->mean) && in->Get(&p->m2);
    case AggregationFunction::kMin:
    case AggregationFunction::kMax:
      return p->count == 0 || GetValue(in, item.output.scalar, &p->value);
    case AggregationFunction::kFirst:
    case AggregationFunction::kLast:
      return p->count == 0 || (in->Get(&p->time) && GetValue(in, item.output.scalar, &p->value));
    case AggregationFunction::kCountDistinct: {
      uint32_t n;
      if (!in->Get(&n)) return false;
      for (uint32_t i = 0; i < n; ++i) {
        uint32_t len;
        std::string_view s;
        if (!in->Get(&len) || !in->GetBytes(len, &s)) return false;
        p->distinct.emplace(s);
      }
      return true;
    }
  }
  return false;
}

Value Finish(const TileSpec::Item& item, const TilePartial& p) {
  switch (item.function) {
    case AggregationFunction::kCount:
      return Value(p.count);
    case AggregationFunction::kCountDistinct:
      return Value(static_cast<int64_t>(p.distinct.size()));
    case AggregationFunction::kSum:
      if (p.count == 0) return Value();
      if (item.output.scalar == ScalarType::kInt64) return Value(p.int_sum);
      return Value(p.sum);
    case AggregationFunction::kMean:
      if (p.count == 0) return Value();
      return Value(p.sum / static_cast<double>(p.count));
    case AggregationFunction::kStddev:
      if (p.count < 2) return Value();
      return Value(std::sqrt(std::max(p.m2, 0.0) / static_cast<double>(p.count - 1)));
    default:
      if (p.count == 0) return Value();
      return AsOutput(p.value, item.output);
  }
}

}  // namespace

int64_t TileSpec::ExpireBefore(int64_t now_micros) const {
  return WindowStart(now_micros, longest_window, granularity);
}

uint32_t TileSpec::Fingerprint() const {
  std::string text = fmt::format("granary.tiles.v1|{}", granularity.micros);
  for (const Item& item : items) {
    text += fmt::format("|{}:{}:{}", AggregationFunctionName(item.function), item.window.micros,
                        item.output.ToString());
  }
  const uint64_t h = Fnv1a64(text);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

Result<TileSpec> TileSpecOf(const FeatureView& view) {
  TileSpec spec;
  spec.granularity = view.granularity.micros > 0 ? view.granularity : kDefaultGranularity;
  for (const Aggregation& a : view.aggregations) {
    if (!a.type) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': the type of aggregation '{}' is not known yet (its source has no "
          "data); give it `type:` or apply again once the source has data",
          view.name, a.name));
    }
    if (a.type->is_list) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': aggregation '{}' is of a list type, which online tiles do not "
          "keep; read it offline",
          view.name, a.name));
    }
    spec.items.push_back({a.name, a.function, a.window, *a.type});
    if (a.window.micros > spec.longest_window.micros) spec.longest_window = a.window;
  }
  return spec;
}

Status TileAccumulator::Add(const std::vector<std::string>& keys, const int64_t* times,
                            const std::vector<std::shared_ptr<arrow::Array>>& values,
                            const std::vector<std::shared_ptr<arrow::Array>>& wheres) {
  const size_t n_items = spec_.items.size();
  if (values.size() != n_items || wheres.size() != n_items) {
    return Status::Internal("TileAccumulator::Add: one values and where column per item");
  }
  std::vector<ValueType> types(n_items);
  for (size_t k = 0; k < n_items; ++k) {
    if (values[k] == nullptr) continue;
    GRANARY_ASSIGN_OR_RAISE(types[k], FromArrowType(*values[k]->type()));
    if (types[k].is_list) {
      return Status::InvalidArgument(
          fmt::format("aggregation '{}' reads a list column, which online tiles do not keep",
                      spec_.items[k].name));
    }
  }
  const int64_t g = spec_.granularity.micros;
  for (size_t i = 0; i < keys.size(); ++i) {
    const int64_t t = times[i];
    int64_t tile_start = (t / g) * g;
    if (t % g != 0 && t < 0) tile_start -= g;
    std::map<int64_t, Tile>& tiles = entities_[keys[i]];
    auto [it, fresh] = tiles.try_emplace(tile_start);
    Tile& tile = it->second;
    if (fresh) {
      tile.start = tile_start;
      tile.last_event = t;
      tile.parts.resize(n_items);
    }
    tile.last_event = std::max(tile.last_event, t);
    for (size_t k = 0; k < n_items; ++k) {
      const arrow::Array* where = wheres[k].get();
      if (where != nullptr &&
          (where->IsNull(i) || !static_cast<const arrow::BooleanArray*>(where)->Value(i))) {
        continue;
      }
      Value v;
      if (values[k] != nullptr) {
        if (values[k]->IsNull(i)) continue;
        GRANARY_ASSIGN_OR_RAISE(v, ValueAt(*values[k], static_cast<int64_t>(i), types[k]));
      }
      Merge(spec_.items[k], &tile.parts[k], OfEvent(spec_.items[k], v, t));
    }
  }
  return Status::OK();
}

void EncodeTileRecords(const TileSpec& spec, const std::map<int64_t, Tile>& tiles,
                       std::string* out) {
  std::string payload;
  for (const auto& [start, tile] : tiles) {
    payload.clear();
    for (size_t k = 0; k < spec.items.size(); ++k)
      EncodePartial(spec.items[k], tile.parts[k], &payload);
    Put(out, tile.start);
    Put(out, tile.last_event);
    Put(out, static_cast<uint32_t>(payload.size()));
    out->append(payload);
  }
}

std::string MergeTileBody(std::string_view stored, uint32_t fingerprint,
                          std::optional<int64_t> replace_through, int64_t expire_before,
                          std::string_view records) {
  std::string out;
  Put(&out, fingerprint);
  Reader in(stored);
  uint32_t stored_fingerprint = 0;
  if (in.Get(&stored_fingerprint) && stored_fingerprint == fingerprint) {
    while (!in.done()) {
      const size_t at = in.pos();
      int64_t start, last;
      uint32_t len;
      std::string_view payload;
      if (!in.Get(&start) || !in.Get(&last) || !in.Get(&len) || !in.GetBytes(len, &payload)) {
        break;  // a malformed tail: dropped
      }
      if (start < expire_before || (replace_through && last <= *replace_through)) continue;
      out.append(stored.substr(at, in.pos() - at));
    }
  }
  out.append(records);
  return out;
}

Status FoldTiles(const TileSpec& spec, std::string_view body, int64_t now_micros,
                 std::vector<Value>* values, int64_t* last_event, bool* matches) {
  values->clear();
  *last_event = 0;
  Reader in(body);
  uint32_t fingerprint;
  if (!in.Get(&fingerprint)) {
    return Status::Corruption(
        fmt::format("a stored tile value of {} bytes has no fingerprint", body.size()));
  }
  *matches = fingerprint == spec.Fingerprint();
  if (!*matches) return Status::OK();
  const size_t n_items = spec.items.size();
  std::vector<int64_t> starts(n_items);
  for (size_t k = 0; k < n_items; ++k) {
    starts[k] = WindowStart(now_micros, spec.items[k].window, spec.granularity);
  }
  std::vector<TilePartial> acc(n_items);
  while (!in.done()) {
    int64_t start, last;
    uint32_t len;
    std::string_view payload;
    if (!in.Get(&start) || !in.Get(&last) || !in.Get(&len) || !in.GetBytes(len, &payload)) {
      return Status::Corruption(fmt::format(
          "a stored tile value of {} bytes is truncated at byte {}", body.size(), in.pos()));
    }
    if (start > now_micros) continue;  // a tile after now: not yet in any window
    Reader p(payload);
    for (size_t k = 0; k < n_items; ++k) {
      TilePartial part;
      if (!DecodePartial(spec.items[k], &p, &part)) {
        return Status::Corruption(
            fmt::format("a stored tile of {} bytes does not match its aggregations' layout", len));
      }
      if (start >= starts[k]) Merge(spec.items[k], &acc[k], part);
    }
    *last_event = std::max(*last_event, last);
  }
  values->reserve(n_items);
  for (size_t k = 0; k < n_items; ++k) values->push_back(Finish(spec.items[k], acc[k]));
  return Status::OK();
}

}  // namespace granary::aggregation
