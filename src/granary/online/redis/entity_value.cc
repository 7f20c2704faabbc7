#include "granary/online/redis/entity_value.h"

#include <fmt/format.h>

#include <string>

#include "granary/online/varint.h"

namespace granary::redis {

Status BadEntityValue(std::string_view value, size_t at) {
  if (value.empty() || value[0] != kEntityValueVersion) {
    return Status::Corruption(fmt::format(
        "an online value has layout version {} (this Granary reads version 1); it was written by "
        "another Granary release, or the key holds foreign data",
        value.empty() ? -1 : static_cast<int>(static_cast<unsigned char>(value[0]))));
  }
  return Status::Corruption(
      fmt::format("an online value of {} bytes is truncated at byte {}", value.size(), at));
}

Status FindSection(std::string_view value, uint32_t view_id, std::string_view* body) {
  *body = {};
  return ForEachSection(value, [&](uint32_t id, std::string_view b) {
    if (id == view_id && body->empty()) *body = b;
  });
}

void AppendSection(std::string* value, uint32_t view_id, std::string_view body) {
  if (value->empty()) value->push_back(kEntityValueVersion);
  layout::PutFixed<uint32_t>(value, view_id);
  layout::PutVarint(value, body.size());
  value->append(body);
}

namespace {

// The section lengths' varints (docs/ONLINE_LAYOUT.md), in Lua, for the scripts below; they use
// the locals `byte` and `char` (string.byte, string.char) that each script defines first.
constexpr const char* kLuaGetVarint = R"lua(
local function get_varint(s, pos)
  local v, mult = 0, 1
  while true do
    local b = byte(s, pos)
    if b == nil then return nil, pos end
    pos = pos + 1
    if b < 128 then return v + b * mult, pos end
    v = v + (b - 128) * mult
    mult = mult * 128
  end
end
)lua";

constexpr const char* kLuaPutVarint = R"lua(
local function put_varint(n)
  local out = ''
  while n >= 128 do
    out = out .. char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return out .. char(n)
end
)lua";

// Lua 5.1 numbers are doubles, exact only up to 2^53: microsecond timestamps pass that in the
// year 2255, so the script compares write orders byte by byte, never as numbers. Lengths of
// values (far below 2^53) are the only numbers it computes with.
const std::string kWriteScriptText =
    std::string(R"lua(-- granary write-if-newer, layout v1 (docs/ONLINE_LAYOUT.md)
local view = ARGV[1]
local ttl = tonumber(ARGV[2])
local byte, sub, char = string.byte, string.sub, string.char
)lua") +
    kLuaGetVarint + kLuaPutVarint + R"lua(
-- -1, 0 or 1 as a < b, a = b, a > b.
local function sign(a, b)
  if a < b then return -1 end
  if a > b then return 1 end
  return 0
end

-- Compares the event timestamps (int64 little-endian at bytes 5..12) of two bodies exactly: the
-- top byte with its sign bit flipped, then the lower bytes, most significant first.
local function compare_events(x, y)
  local c = sign((byte(x, 12) + 128) % 256, (byte(y, 12) + 128) % 256)
  local i = 11
  while c == 0 and i >= 5 do
    c = sign(byte(x, i), byte(y, i))
    i = i - 1
  end
  return c
end

-- The created varint at byte 13 (0: no created timestamp, else zigzag(created - event) + 1) as
-- its 7-bit groups, least significant first, without high zero groups.
local function created_groups(body)
  local groups, pos = {}, 13
  while true do
    local b = byte(body, pos)
    if b == nil then return nil end
    pos = pos + 1
    if b < 128 then
      groups[#groups + 1] = b
      break
    end
    groups[#groups + 1] = b - 128
  end
  while #groups > 1 and groups[#groups] == 0 do groups[#groups] = nil end
  return groups
end

-- Compares two varints given as groups, as unsigned numbers.
local function compare_groups(a, b)
  if #a ~= #b then return sign(#a, #b) end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then return sign(a[i], b[i]) end
  end
  return 0
end

-- Whether `new` may replace `old`: another schema, or an order that is not older. With equal
-- events, created times compare as their deltas to the event: v = zigzag(d) + 1 is odd for
-- d >= 0 (larger v, larger d) and even for d < 0 (larger v, smaller d).
local function replaces(new, old)
  if #old < 13 or sub(new, 1, 4) ~= sub(old, 1, 4) then return true end
  local events = compare_events(new, old)
  if events ~= 0 then return events > 0 end
  local gn, go = created_groups(new), created_groups(old)
  if go == nil or (#go == 1 and go[1] == 0) then return true end
  if gn == nil or (#gn == 1 and gn[1] == 0) then return false end
  local n_negative, o_negative = gn[1] % 2 == 0, go[1] % 2 == 0
  if n_negative ~= o_negative then return o_negative end
  local c = compare_groups(gn, go)
  if n_negative then return c <= 0 end
  return c >= 0
end

local written = 0
for i = 1, #KEYS do
  local key, body = KEYS[i], ARGV[2 + i]
  local section = view .. put_varint(#body) .. body
  local value = redis.call('GET', key)
  local out
  if not value then
    out = '\1' .. section
  else
    if byte(value, 1) ~= 1 then
      return redis.error_reply('GRANARY the value of a key has layout version ' .. byte(value, 1) ..
        ', not 1: it was written by another Granary release, or the key holds foreign data')
    end
    local pos, n, at, stop = 2, #value, nil, nil
    while pos <= n do
      local len, p = get_varint(value, pos + 4)
      if len == nil then return redis.error_reply('GRANARY a stored value is truncated') end
      if sub(value, pos, pos + 3) == view then
        at, stop = pos, p + len - 1
        if replaces(body, sub(value, p, stop)) then
          out = sub(value, 1, at - 1) .. section .. sub(value, stop + 1)
        end
        break
      end
      pos = p + len
    end
    if at == nil then out = value .. section end
  end
  -- The key lives at least ttl from now; a key without expiry (another view keeps it forever)
  -- stays so.
  local current = redis.call('PTTL', key)
  if out then
    written = written + 1
    if ttl == 0 or current == -1 then
      redis.call('SET', key, out)
    elseif current > ttl then
      redis.call('SET', key, out, 'PX', current)
    else
      redis.call('SET', key, out, 'PX', ttl)
    end
  elseif ttl == 0 then
    redis.call('PERSIST', key)
  elseif current >= 0 and current < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return written
)lua";

// Times are compared as Lua numbers: exact below 2^53 microseconds (the year 2255), as the
// write script's note says; the tile records' times are built from their 8 bytes.
const std::string kTileScriptText =
    std::string(R"lua(-- granary tiles, layout v1 (docs/ONLINE_LAYOUT.md)
local view, ttl, fp = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local replace = nil
if ARGV[4] ~= '' then replace = tonumber(ARGV[4]) end
local expire = tonumber(ARGV[5])
local byte, sub, char = string.byte, string.sub, string.char
)lua") +
    kLuaGetVarint + kLuaPutVarint + R"lua(
local function int64(s, pos)
  local v, m = 0, 1
  for i = 0, 7 do
    v = v + byte(s, pos + i) * m
    m = m * 256
  end
  if byte(s, pos + 7) >= 128 then v = v - 18446744073709551616 end
  return v
end

local function uint32(s, pos)
  return byte(s, pos) + byte(s, pos + 1) * 256 + byte(s, pos + 2) * 65536 +
    byte(s, pos + 3) * 16777216
end

-- The stored records that stay: of this fingerprint, not expired, not replaced.
local function kept(body)
  if body == nil or #body < 4 or sub(body, 1, 4) ~= fp then return '' end
  local out, pos, n = {}, 5, #body
  while pos + 19 <= n do
    -- bit 31 of the length marks a roll-up record, dropped by the same rule as fine ones
    local start, last, len = int64(body, pos), int64(body, pos + 8),
      uint32(body, pos + 16) % 2147483648
    local stop = pos + 19 + len
    if stop > n then break end
    if start >= expire and (replace == nil or last > replace) then
      out[#out + 1] = sub(body, pos, stop)
    end
    pos = stop + 1
  end
  return table.concat(out)
end

for i = 1, #KEYS do
  local key = KEYS[i]
  local value = redis.call('GET', key)
  local old, at, stop = nil, nil, nil
  if value then
    if byte(value, 1) ~= 1 then
      return redis.error_reply('GRANARY the value of a key has layout version ' .. byte(value, 1) ..
        ', not 1: it was written by another Granary release, or the key holds foreign data')
    end
    local pos, n = 2, #value
    while pos <= n do
      local len, p = get_varint(value, pos + 4)
      if len == nil then return redis.error_reply('GRANARY a stored value is truncated') end
      if sub(value, pos, pos + 3) == view then
        at, stop = pos, p + len - 1
        old = sub(value, p, stop)
        break
      end
      pos = p + len
    end
  end
  local body = fp .. kept(old) .. ARGV[5 + i]
  local section = view .. put_varint(#body) .. body
  local out
  if not value then
    out = '\1' .. section
  elseif at == nil then
    out = value .. section
  else
    out = sub(value, 1, at - 1) .. section .. sub(value, stop + 1)
  end
  local current = redis.call('PTTL', key)
  if ttl == 0 or current == -1 then
    redis.call('SET', key, out)
  elseif current > ttl then
    redis.call('SET', key, out, 'PX', current)
  else
    redis.call('SET', key, out, 'PX', ttl)
  end
end
return #KEYS
)lua";

const std::string kDeleteViewsScriptText = std::string(R"lua(-- granary delete views, layout v1
local byte, sub = string.byte, string.sub
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end
)lua") + kLuaGetVarint + R"lua(
local changed = 0
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and byte(value, 1) == 1 then
    local kept, pos, n, dropped = {'\1'}, 2, #value, false
    while pos <= n do
      local len, p = get_varint(value, pos + 4)
      if len == nil then break end
      if drop[sub(value, pos, pos + 3)] then
        dropped = true
      else
        kept[#kept + 1] = sub(value, pos, p + len - 1)
      end
      pos = p + len
    end
    if dropped then
      changed = changed + 1
      if #kept == 1 then
        redis.call('DEL', KEYS[i])
      else
        redis.call('SET', KEYS[i], table.concat(kept), 'KEEPTTL')
      end
    end
  end
end
return changed
)lua";

}  // namespace

const char* const kWriteScript = kWriteScriptText.c_str();
const char* const kTileScript = kTileScriptText.c_str();
const char* const kDeleteViewsScript = kDeleteViewsScriptText.c_str();

}  // namespace granary::redis
