#include "granary/serving/grpc/feast_wire.h"

#include <cstring>
#include <type_traits>

#include "feast/serving/ServingService.pb.h"

namespace granary::serving {
namespace {

namespace fp = feast::types;
namespace fs = feast::serving;

// Protobuf's wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kI64 = 1;
constexpr uint32_t kLen = 2;
constexpr uint32_t kI32 = 5;

constexpr uint32_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint32_t>(field) << 3) | wire_type;
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

char* PutVarint(uint64_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// int32 and enum values are sign-extended to 64 bits on the wire (a negative one takes 10 bytes).
uint64_t Int32Wire(int32_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

int64_t FloorSeconds(Timestamp t) {
  return t.micros >= 0 ? t.micros / 1'000'000 : -((-t.micros + 999'999) / 1'000'000);
}

// Appends into one string. Nested messages whose size is not known in advance are written
// first and their length inserted after (Begin/End): the lengths are the shortest varints, as
// protobuf writes them.
class Wire {
 public:
  explicit Wire(std::string* out) : out_(out) {}

  void Varint(uint64_t v) {
    char buf[10];
    out_->append(buf, PutVarint(v, buf) - buf);
  }
  void Key(int field, uint32_t wire_type) { Varint(Tag(field, wire_type)); }
  void Fixed64(uint64_t v) {
    char buf[8];
    std::memcpy(buf, &v, 8);  // little-endian, as the wire (x86-64, aarch64)
    out_->append(buf, 8);
  }
  void Fixed32(uint32_t v) {
    char buf[4];
    std::memcpy(buf, &v, 4);
    out_->append(buf, 4);
  }
  void Bytes(int field, std::string_view b) {
    Key(field, kLen);
    Varint(b.size());
    out_->append(b.data(), b.size());
  }
  // A nested message of field `field`: Begin writes its key, End its length before its bytes.
  size_t Begin(int field) {
    Key(field, kLen);
    return out_->size();
  }
  void End(size_t start) {
    const size_t length = out_->size() - start;
    char buf[10];
    const size_t n = PutVarint(length, buf) - buf;
    out_->insert(start, buf, n);
  }
  std::string* out() { return out_; }

 private:
  std::string* out_;
};

// A packed repeated field of fixed-width elements (double, float).
template <typename T, typename Each>
void PackedFixed(Wire& w, int field, uint32_t count, Each each) {
  if (count == 0) return;  // an empty repeated field is not written
  w.Key(field, kLen);
  w.Varint(static_cast<uint64_t>(count) * sizeof(T));
  each();
}

// The value of a Value message (its oneof member) for a feature value, as SetValue sets it.
void ListBody(Wire& w, const ValueRef& v) {
  const ListRef list = v.AsList();
  switch (v.type.scalar) {
    case ScalarType::kBool:
    case ScalarType::kInt32:
    case ScalarType::kInt64:
    case ScalarType::kTimestamp: {
      // Packed varints: their size first.
      size_t bytes = 0;
      auto wire_of = [](auto x) -> uint64_t {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          return x ? 1 : 0;
        } else if constexpr (std::is_same_v<X, int32_t>) {
          return Int32Wire(x);
        } else if constexpr (std::is_same_v<X, int64_t>) {
          return static_cast<uint64_t>(x);
        } else if constexpr (std::is_same_v<X, Timestamp>) {
          return static_cast<uint64_t>(FloorSeconds(x));
        } else {
          return 0;  // not an element type of these lists
        }
      };
      list.ForEach([&](auto x) { bytes += VarintSize(wire_of(x)); });
      if (list.count == 0) return;
      int field = fp::Int64List::kValFieldNumber;  // int64 and timestamp lists
      if (v.type.scalar == ScalarType::kBool) field = fp::BoolList::kValFieldNumber;
      if (v.type.scalar == ScalarType::kInt32) field = fp::Int32List::kValFieldNumber;
      w.Key(field, kLen);
      w.Varint(bytes);
      list.ForEach([&](auto x) { w.Varint(wire_of(x)); });
      return;
    }
    case ScalarType::kFloat32:
      return PackedFixed<float>(w, fp::FloatList::kValFieldNumber, list.count, [&] {
        list.ForEach([&](auto x) {
          if constexpr (std::is_same_v<decltype(x), float>) {
            uint32_t bits;
            std::memcpy(&bits, &x, 4);
            w.Fixed32(bits);
          }
        });
      });
    case ScalarType::kFloat64:
      return PackedFixed<double>(w, fp::DoubleList::kValFieldNumber, list.count, [&] {
        list.ForEach([&](auto x) {
          if constexpr (std::is_same_v<decltype(x), double>) {
            uint64_t bits;
            std::memcpy(&bits, &x, 8);
            w.Fixed64(bits);
          }
        });
      });
    case ScalarType::kString:
    case ScalarType::kBytes: {
      const int field = v.type.scalar == ScalarType::kString
                            ? static_cast<int>(fp::StringList::kValFieldNumber)
                            : static_cast<int>(fp::BytesList::kValFieldNumber);
      list.ForEach([&](auto x) {
        if constexpr (std::is_same_v<decltype(x), std::string_view>) w.Bytes(field, x);
      });
      return;
    }
  }
}

int ListField(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return fp::Value::kBoolListValFieldNumber;
    case ScalarType::kInt32:
      return fp::Value::kInt32ListValFieldNumber;
    case ScalarType::kInt64:
      return fp::Value::kInt64ListValFieldNumber;
    case ScalarType::kFloat32:
      return fp::Value::kFloatListValFieldNumber;
    case ScalarType::kFloat64:
      return fp::Value::kDoubleListValFieldNumber;
    case ScalarType::kString:
      return fp::Value::kStringListValFieldNumber;
    case ScalarType::kBytes:
      return fp::Value::kBytesListValFieldNumber;
    case ScalarType::kTimestamp:
      return fp::Value::kUnixTimestampListValFieldNumber;
  }
  return 0;
}

constexpr int kValuesField = fs::GetOnlineFeaturesResponse_FeatureVector::kValuesFieldNumber;
static_assert(Tag(kValuesField, kLen) < 0x80, "the values field's key is one byte");

// The longest element of FeatureVector.values holding a number: key, length, tag, 10-byte varint.
constexpr size_t kMaxNumberElement = 13;

// Writes at `p` one element of FeatureVector.values for a non-null number (every scalar type but
// string and bytes) of type T: [key][length][the Value's bytes: tag, payload], the length one
// byte (at most 11). Returns the end.
template <ScalarType T>
char* PutNumber(const ValueRef& v, char* p) {
  p[0] = static_cast<char>(Tag(kValuesField, kLen));
  char* const body = p + 2;
  char* e = body;
  if constexpr (T == ScalarType::kFloat64) {
    e = PutVarint(Tag(fp::Value::kDoubleValFieldNumber, kI64), e);
    const double x = v.AsFloat64();
    std::memcpy(e, &x, 8);
    e += 8;
  } else if constexpr (T == ScalarType::kInt64) {
    e = PutVarint(Tag(fp::Value::kInt64ValFieldNumber, kVarint), e);
    e = PutVarint(static_cast<uint64_t>(v.AsInt64()), e);
  } else if constexpr (T == ScalarType::kFloat32) {
    e = PutVarint(Tag(fp::Value::kFloatValFieldNumber, kI32), e);
    const float x = v.AsFloat32();
    std::memcpy(e, &x, 4);
    e += 4;
  } else if constexpr (T == ScalarType::kInt32) {
    e = PutVarint(Tag(fp::Value::kInt32ValFieldNumber, kVarint), e);
    e = PutVarint(Int32Wire(v.AsInt32()), e);
  } else if constexpr (T == ScalarType::kBool) {
    e = PutVarint(Tag(fp::Value::kBoolValFieldNumber, kVarint), e);
    *e++ = v.AsBool() ? 1 : 0;
  } else {
    static_assert(T == ScalarType::kTimestamp, "numbers only");
    e = PutVarint(Tag(fp::Value::kUnixTimestampValFieldNumber, kVarint), e);
    e = PutVarint(static_cast<uint64_t>(FloorSeconds(v.AsTimestamp())), e);
  }
  p[1] = static_cast<char>(e - body);
  return e;
}

// FeatureVector.values of a column of numbers of type T, every row: written into room made for
// the longest elements, then cut to what was written.
template <ScalarType T>
void NumberColumn(const OnlineFeatures& features, uint32_t view, uint32_t feature, size_t rows,
                  std::string* out) {
  const size_t start = out->size();
  out->resize(start + rows * kMaxNumberElement);
  char* p = out->data() + start;
  for (size_t r = 0; r < rows; ++r) {
    const ValueRef v = features.value(view, feature, r);
    if (v.is_null()) {  // an empty Value: Feast's null
      *p++ = static_cast<char>(Tag(kValuesField, kLen));
      *p++ = '\0';
    } else {
      p = PutNumber<T>(v, p);
    }
  }
  out->resize(p - out->data());
}

// One element of FeatureVector.values for a string, bytes or list value, as SetValue sets it
// (columns of numbers are written by NumberColumn).
void FeatureValue(Wire& w, const ValueRef& v) {
  constexpr int kValues = kValuesField;
  if (v.is_null()) {  // an empty Value: Feast's null
    w.Key(kValues, kLen);
    w.out()->push_back('\0');
    return;
  }
  if (!v.type.is_list) {  // a string or bytes
    const std::string_view s = v.AsBytes();
    const int field = v.type.scalar == ScalarType::kString ? fp::Value::kStringValFieldNumber
                                                           : fp::Value::kBytesValFieldNumber;
    const size_t inner = VarintSize(Tag(field, kLen)) + VarintSize(s.size()) + s.size();
    w.Key(kValues, kLen);
    w.Varint(inner);
    w.Bytes(field, s);
    return;
  }
  // A list: Value { <list field> { val... } }, lengths inserted after.
  const size_t value = w.Begin(kValues);
  const size_t list = w.Begin(ListField(v.type.scalar));
  ListBody(w, v);
  w.End(list);
  w.End(value);
}

// One element of FeatureVector.values for a join key value, as SetEntityValue sets it.
void EntityValue(Wire& w, const Value& v) {
  constexpr int kValues = fs::GetOnlineFeaturesResponse_FeatureVector::kValuesFieldNumber;
  const size_t start = w.Begin(kValues);
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, bool>) {
          w.Key(fp::Value::kBoolValFieldNumber, kVarint);
          w.Varint(x ? 1 : 0);
        } else if constexpr (std::is_same_v<X, int32_t>) {
          w.Key(fp::Value::kInt32ValFieldNumber, kVarint);
          w.Varint(Int32Wire(x));
        } else if constexpr (std::is_same_v<X, int64_t>) {
          w.Key(fp::Value::kInt64ValFieldNumber, kVarint);
          w.Varint(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<X, float>) {
          w.Key(fp::Value::kFloatValFieldNumber, kI32);
          uint32_t bits;
          std::memcpy(&bits, &x, 4);
          w.Fixed32(bits);
        } else if constexpr (std::is_same_v<X, double>) {
          w.Key(fp::Value::kDoubleValFieldNumber, kI64);
          uint64_t bits;
          std::memcpy(&bits, &x, 8);
          w.Fixed64(bits);
        } else if constexpr (std::is_same_v<X, std::string>) {
          w.Bytes(fp::Value::kStringValFieldNumber, x);
        } else if constexpr (std::is_same_v<X, granary::Bytes>) {
          w.Bytes(fp::Value::kBytesValFieldNumber, x.data);
        } else if constexpr (std::is_same_v<X, Timestamp>) {
          w.Key(fp::Value::kUnixTimestampValFieldNumber, kVarint);
          w.Varint(static_cast<uint64_t>(FloorSeconds(x)));
        }  // join keys are never null or lists: an empty Value otherwise, as SetEntityValue
      },
      v.storage());
  w.End(start);
}

// google.protobuf.Timestamp {seconds, nanos}, zeros left out (proto3), as an element of
// FeatureVector.event_timestamps. Every feature of a view repeats its rows' times: they are
// written once per view (ViewTimes) and copied into each of its columns.
void EventTime(Wire& w, Timestamp t) {
  constexpr int kTimes = fs::GetOnlineFeaturesResponse_FeatureVector::kEventTimestampsFieldNumber;
  const int64_t seconds = FloorSeconds(t);
  const int32_t nanos = static_cast<int32_t>((t.micros - seconds * 1'000'000) * 1000);
  static_assert(Tag(kTimes, kLen) < 0x80, "the event_timestamps field's key is one byte");
  char buf[32];
  char* const body = buf + 2;
  char* e = body;
  if (seconds != 0) {
    e = PutVarint(Tag(google::protobuf::Timestamp::kSecondsFieldNumber, kVarint), e);
    e = PutVarint(static_cast<uint64_t>(seconds), e);
  }
  if (nanos != 0) {
    e = PutVarint(Tag(google::protobuf::Timestamp::kNanosFieldNumber, kVarint), e);
    e = PutVarint(Int32Wire(nanos), e);
  }
  buf[0] = static_cast<char>(Tag(kTimes, kLen));
  buf[1] = static_cast<char>(e - body);  // at most 22 bytes
  w.out()->append(buf, e - buf);
}

// FeatureVector.statuses, packed.
template <typename StatusAt>
void Statuses(Wire& w, size_t rows, StatusAt status_at) {
  if (rows == 0) return;
  size_t bytes = 0;
  for (size_t r = 0; r < rows; ++r) bytes += VarintSize(Int32Wire(status_at(r)));
  w.Key(fs::GetOnlineFeaturesResponse_FeatureVector::kStatusesFieldNumber, kLen);
  w.Varint(bytes);
  for (size_t r = 0; r < rows; ++r) w.Varint(Int32Wire(status_at(r)));
}

}  // namespace

void WriteFeastResponse(const ResolvedOnlineRequest& request, const OnlineFeatures& features,
                        std::string* out, ForkJoinPool* split) {
  using Response = fs::GetOnlineFeaturesResponse;
  using Metadata = fs::GetOnlineFeaturesResponseMetadata;
  Wire w(out);
  const size_t rows = request.num_rows;
  // About 12 bytes a value and as many for its time: one allocation for most answers.
  out->reserve(out->size() + 64 +
               (request.entities.size() + request.columns.size()) * (32 + rows * 24));
  {
    const size_t metadata = w.Begin(Response::kMetadataFieldNumber);
    const size_t names = w.Begin(Metadata::kFeatureNamesFieldNumber);
    for (const auto& e : request.entities) w.Bytes(fs::FeatureList::kValFieldNumber, e.name);
    for (const auto& c : request.columns) w.Bytes(fs::FeatureList::kValFieldNumber, c.name);
    w.End(names);
    if (request.include_view_metadata) {
      for (const ViewRead& v : request.read.views) {
        const size_t view = w.Begin(Metadata::kFeatureViewMetadataFieldNumber);
        w.Bytes(fs::FeatureViewMetadata::kNameFieldNumber, v.view->name());
        w.End(view);
      }
    }
    w.End(metadata);
  }
  for (const auto& e : request.entities) {
    const size_t vector = w.Begin(Response::kResultsFieldNumber);
    for (size_t r = 0; r < rows; ++r) EntityValue(w, e.values[r]);
    Statuses(w, rows, [](size_t) { return static_cast<int32_t>(fs::PRESENT); });
    for (size_t r = 0; r < rows; ++r) {
      // An empty Timestamp (the epoch), as ToFeastProto's add_event_timestamps().
      w.Key(Response::FeatureVector::kEventTimestampsFieldNumber, kLen);
      out->push_back('\0');
    }
    w.End(vector);
  }
  // Every feature of a view repeats its rows' event times: written once per view, copied.
  std::vector<std::string> view_times(request.read.views.size());
  std::vector<bool> have_times(request.read.views.size());
  for (const auto& c : request.columns) {
    if (have_times[c.view]) continue;
    Wire times(&view_times[c.view]);
    for (size_t r = 0; r < rows; ++r) EventTime(times, features.event_timestamp(c.view, r));
    have_times[c.view] = true;
  }
  // The FeatureVectors of columns [begin, end) appended to `to`.
  auto write_columns = [&](size_t begin, size_t end, std::string* to) {
    Wire w(to);
    std::string* out = to;
    for (size_t i = begin; i < end; ++i) {
      const auto& c = request.columns[i];
      const size_t vector = w.Begin(Response::kResultsFieldNumber);
      const ViewRead& read = request.read.views[c.view];
      const ValueType type = read.view->features()[read.features[c.feature]].type;
      switch (type.is_list ? ScalarType::kString : type.scalar) {
        case ScalarType::kFloat64:
          NumberColumn<ScalarType::kFloat64>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kInt64:
          NumberColumn<ScalarType::kInt64>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kFloat32:
          NumberColumn<ScalarType::kFloat32>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kInt32:
          NumberColumn<ScalarType::kInt32>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kBool:
          NumberColumn<ScalarType::kBool>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kTimestamp:
          NumberColumn<ScalarType::kTimestamp>(features, c.view, c.feature, rows, out);
          break;
        case ScalarType::kString:
        case ScalarType::kBytes:  // and lists
          for (size_t r = 0; r < rows; ++r) {
            FeatureValue(w, features.value(c.view, c.feature, r));
          }
          break;
      }
      Statuses(w, rows, [&](size_t r) {
        return static_cast<int32_t>(features.status(c.view, c.feature, r));
      });
      out->append(view_times[c.view]);
      w.End(vector);
    }
  };
  const size_t columns = request.columns.size();
  size_t parts = 1;
  if (split != nullptr && split->parallelism() > 1 &&
      rows * columns >= OnlineFeaturesService::kSplitAnswerValues) {
    parts = std::min(columns, 2 * static_cast<size_t>(split->parallelism()));
  }
  if (parts == 1) {
    write_columns(0, columns, out);
  } else {
    // Repeated message fields are their elements' bytes one after the other: the parts' bytes
    // joined in order are one writer's.
    auto part_begin = [&](size_t p) { return columns * p / parts; };
    std::vector<std::string> tails(parts - 1);
    split->Run(parts, [&](size_t p) {
      std::string* to = p == 0 ? out : &tails[p - 1];
      if (p > 0) to->reserve((part_begin(p + 1) - part_begin(p)) * (32 + rows * 24));
      write_columns(part_begin(p), part_begin(p + 1), to);
    });
    for (const std::string& t : tails) out->append(t);
  }
  // status = true (proto3 bool: written because it is not false).
  w.Key(Response::kStatusFieldNumber, kVarint);
  w.Varint(1);
}

}  // namespace granary::serving
