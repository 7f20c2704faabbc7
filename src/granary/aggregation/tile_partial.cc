#include "granary/aggregation/tile_partial.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace granary::aggregation {
namespace {

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

void PutValue(std::string* out, const Value& v) {
  if (v.is<bool>()) {
    out->push_back(v.get<bool>() ? 1 : 0);
  } else if (v.is<int32_t>()) {
    PutLE(out, v.get<int32_t>());
  } else if (v.is<int64_t>()) {
    PutLE(out, v.get<int64_t>());
  } else if (v.is<float>()) {
    PutLE(out, v.get<float>());
  } else if (v.is<double>()) {
    PutLE(out, v.get<double>());
  } else if (v.is<Timestamp>()) {
    PutLE(out, v.get<Timestamp>().micros);
  } else {
    const std::string& s = v.is<std::string>() ? v.get<std::string>() : v.get<Bytes>().data;
    PutLE(out, static_cast<uint32_t>(s.size()));
    out->append(s);
  }
}

bool GetValue(TileReader* in, ScalarType type, Value* v) {
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

}  // namespace

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
    PutLE(&out, d);
  } else {
    out.push_back('i');
    PutLE(&out, AsInt(v));
  }
  return out;
}

void MergePartial(const TileSpec::Item& item, TilePartial* a, const TilePartial& b) {
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

TilePartial PartialOfEvent(const TileSpec::Item& item, const Value& v, int64_t t) {
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
  PutLE(out, p.count);
  switch (item.function) {
    case AggregationFunction::kCount:
      break;
    case AggregationFunction::kSum:
      PutLE(out, p.int_sum);
      PutLE(out, p.sum);
      break;
    case AggregationFunction::kMean:
      PutLE(out, p.sum);
      break;
    case AggregationFunction::kStddev:
      PutLE(out, p.mean);
      PutLE(out, p.m2);
      break;
    case AggregationFunction::kMin:
    case AggregationFunction::kMax:
      if (p.count > 0) PutValue(out, AsOutput(p.value, item.output));
      break;
    case AggregationFunction::kFirst:
    case AggregationFunction::kLast:
      if (p.count > 0) {
        PutLE(out, p.time);
        PutValue(out, AsOutput(p.value, item.output));
      }
      break;
    case AggregationFunction::kCountDistinct:
      PutLE(out, static_cast<uint32_t>(p.distinct.size()));
      for (const std::string& s : p.distinct) {
        PutLE(out, static_cast<uint32_t>(s.size()));
        out->append(s);
      }
      break;
  }
}

bool DecodePartial(const TileSpec::Item& item, TileReader* in, TilePartial* p) {
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

Value FinishPartial(const TileSpec::Item& item, const TilePartial& p) {
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

}  // namespace granary::aggregation
