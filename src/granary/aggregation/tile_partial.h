// The partial aggregate of one aggregation over some events (TilePartial, tiles.h): built from
// one event, merged with another in stored or event order, written into and read back from a
// tile record's payload in the byte layout tiles.h describes, and finished into the
// aggregation's value. Also the bounds-checked reader of tile bodies that the record code
// (tiles.cc) shares. Internal to granary/aggregation; stateless functions, thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "granary/aggregation/tiles.h"
#include "granary/types/value.h"

namespace granary::aggregation {

// Appends `v`'s bytes, little-endian as on every platform Granary runs on.
template <typename T>
inline void PutLE(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

// Bit 31 of a record's length marks a roll-up (tiles.h).
inline constexpr uint32_t kRollupBit = 0x80000000u;
// A roll-up payload starts with its span (8 bytes) and the fine records it covers (4 bytes).
inline constexpr size_t kRollupPrefix = 12;

// Reads from a tile body, bounds checked.
class TileReader {
 public:
  explicit TileReader(std::string_view in) : in_(in) {}
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

  // The next record's header and payload (without the roll-up bit in the length); false when
  // the body ends inside it.
  bool GetRecord(int64_t* start, int64_t* last, bool* rollup, std::string_view* payload) {
    uint32_t len;
    if (!Get(start) || !Get(last) || !Get(&len)) return false;
    *rollup = (len & kRollupBit) != 0;
    return GetBytes(len & ~kRollupBit, payload);
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// The bytes that identify a value for count_distinct: equal values, equal bytes (-0.0 is 0.0,
// every NaN one NaN), as the kernel compares them.
std::string DistinctBytes(const Value& v);

// Merges `b` (later in stored or event order) into `a`.
void MergePartial(const TileSpec::Item& item, TilePartial* a, const TilePartial& b);

// The partial of one event of value `v` (ignored by count) at `t` (UTC us).
TilePartial PartialOfEvent(const TileSpec::Item& item, const Value& v, int64_t t);

// Appends the payload bytes of `p` (tiles.h, "payload").
void EncodePartial(const TileSpec::Item& item, const TilePartial& p, std::string* out);

// Reads what EncodePartial wrote; false when the bytes end early or do not fit the item.
bool DecodePartial(const TileSpec::Item& item, TileReader* in, TilePartial* p);

// The aggregation's value (count and count_distinct 0, others null over no events).
Value FinishPartial(const TileSpec::Item& item, const TilePartial& p);

}  // namespace granary::aggregation
