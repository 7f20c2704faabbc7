// The Redis layout (docs/ONLINE_LAYOUT.md, "Redis"): one string per entity key,
//
//   key    = <project> ":" <entity key bytes>
//   value  = version byte 0x01, then one section per view that has a row for the entity:
//            view id (4 bytes, little-endian), varint length, body (value_codec.h)
//
// and the two Lua scripts that change values atomically on the server: write-if-newer (with the
// expiry rule) and deleting views' sections. Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "granary/common/status.h"

namespace granary::redis {

constexpr char kEntityValueVersion = '\x01';

// Finds the body of `view_id` in an entity value. `body` is empty when the value has no section
// for the view. Corruption when the value is malformed or of another layout version.
Status FindSection(std::string_view value, uint32_t view_id, std::string_view* body);

// Calls f(view_id, body) for each section of an entity value, in order. Corruption when the value
// is malformed or of another layout version.
template <typename F>
Status ForEachSection(std::string_view value, F&& f);

// Appends a section (for tests and tools; the server builds values with the write script).
void AppendSection(std::string* value, uint32_t view_id, std::string_view body);

// KEYS: entity keys. ARGV[1]: view id (4 bytes), ARGV[2]: key ttl in milliseconds (0: forever),
// ARGV[2+i]: the body for KEYS[i]. Replaces the view's section of each key when the new body's
// (event, created) order is not older, or its fingerprint differs; then makes the key live at
// least ttl from now (forever stays forever). Returns how many bodies were stored.
extern const char* const kWriteScript;

// KEYS: entity keys. ARGV: view ids (4 bytes each). Removes those views' sections, and the key
// when none is left. Returns how many keys changed.
extern const char* const kDeleteViewsScript;

// KEYS: entity keys. ARGV[1]: tile view id (4 bytes), ARGV[2]: key ttl in milliseconds (0:
// forever), ARGV[3]: the tiles' fingerprint (4 bytes), ARGV[4]: replace-through time in
// microseconds (decimal; empty: keep), ARGV[5]: expire-before time in microseconds (decimal),
// ARGV[6]: replace-from time in microseconds (decimal; empty: from the oldest tile; only
// records of tiles starting at or after it are replaced), ARGV[6+i]: the tile records for
// KEYS[i]. Rewrites each key's tile section as
// aggregation::MergeTileBody does, with the expiry rule of the write script. Returns how many
// keys were written.
extern const char* const kTileScript;

Status BadEntityValue(std::string_view value, size_t at);

template <typename F>
Status ForEachSection(std::string_view value, F&& f) {
  if (value.empty() || value[0] != kEntityValueVersion) return BadEntityValue(value, 0);
  size_t pos = 1;
  while (pos < value.size()) {
    if (value.size() - pos < 5) return BadEntityValue(value, pos);
    uint32_t id;
    std::memcpy(&id, value.data() + pos, 4);
    pos += 4;
    uint64_t len = 0;
    int shift = 0;
    while (true) {  // varint
      if (pos >= value.size() || shift > 63) return BadEntityValue(value, pos);
      const unsigned char b = static_cast<unsigned char>(value[pos++]);
      len |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    if (value.size() - pos < len) return BadEntityValue(value, pos);
    f(id, value.substr(pos, len));
    pos += len;
  }
  return Status::OK();
}

}  // namespace granary::redis
