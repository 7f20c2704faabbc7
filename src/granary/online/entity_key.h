// Entity keys in canonical bytes (docs/ONLINE_LAYOUT.md, "Entity keys").
//
// One join key value is written as a tag byte and its value:
//   0x01 integer   zigzag varint of the value (int32 and int64 alike)
//   0x02 string    varint length, UTF-8 bytes
//   0x03 bytes     varint length, bytes
//   0x04 bool      one byte, 0 or 1
//   0x05 float     8 bytes, IEEE-754 double, little-endian (float32 widened; -0.0 as 0.0)
//   0x06 timestamp zigzag varint of microseconds since the epoch
// A view's key is its join keys' values in the order of ViewLayout::join_keys() (sorted by
// name). The bytes depend only on the typed values: customer_id 1001 gives the same key from
// JSON, command-line text or an Arrow int32 or int64 column. Stateless functions; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/types/value.h"

namespace arrow {
class RecordBatch;
}

namespace granary {

class ViewLayout;

namespace entity_key {
void AppendInteger(std::string* out, int64_t v);
void AppendString(std::string* out, std::string_view v);
void AppendBytes(std::string* out, std::string_view v);
void AppendBool(std::string* out, bool v);
void AppendFloat(std::string* out, double v);
void AppendTimestamp(std::string* out, Timestamp v);
// Appends a non-null value of a scalar type (any of the above).
Status AppendValue(std::string* out, const Value& v);
}  // namespace entity_key

// The encoded keys of a batch of entity rows: one key per row, in one buffer. Move-only;
// thread-compatible (read from many threads once built).
class EntityKeyColumn {
 public:
  EntityKeyColumn() = default;
  EntityKeyColumn(EntityKeyColumn&&) = default;
  EntityKeyColumn& operator=(EntityKeyColumn&&) = default;

  // Appends the bytes of the next key; call FinishKey() after its last join key value.
  std::string* buffer() { return &bytes_; }
  void FinishKey() { ends_.push_back(static_cast<uint32_t>(bytes_.size())); }
  void Reserve(size_t keys, size_t bytes) {
    ends_.reserve(keys);
    bytes_.reserve(bytes);
  }

  size_t size() const { return ends_.size(); }
  std::string_view key(size_t i) const {
    uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(bytes_.data() + begin, ends_[i] - begin);
  }

 private:
  std::string bytes_;
  std::vector<uint32_t> ends_;
};

// The keys of every row of `rows` for `view`: one column per join key, named as the join key,
// of the join key's type (any integer width for integer keys). A missing column or a null key is
// InvalidArgument naming the column and the row.
Result<EntityKeyColumn> EncodeEntityKeys(const ViewLayout& view, const arrow::RecordBatch& rows);

}  // namespace granary
