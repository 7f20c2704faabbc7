#include "granary/online/redis/entity_value.h"

#include <fmt/format.h>

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

// Lua 5.1 numbers are doubles: timestamps (microseconds) are exact up to 2^53, about the year
// 287,000; lengths and deltas too.
const char* const kWriteScript = R"lua(-- granary write-if-newer, layout v1 (docs/ONLINE_LAYOUT.md)
local view = ARGV[1]
local ttl = tonumber(ARGV[2])
local byte, sub, char = string.byte, string.sub, string.char

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

local function put_varint(n)
  local out = ''
  while n >= 128 do
    out = out .. char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return out .. char(n)
end

-- The event timestamp: int64 little-endian at bytes 5..12 of a body.
local function event_of(body)
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(body, 5, 12)
  if b8 >= 128 then
    return -((((((((255 - b8) * 256 + (255 - b7)) * 256 + (255 - b6)) * 256 + (255 - b5)) * 256
      + (255 - b4)) * 256 + (255 - b3)) * 256 + (255 - b2)) * 256 + (255 - b1)) - 1
  end
  return ((((((b8 * 256 + b7) * 256 + b6) * 256 + b5) * 256 + b4) * 256 + b3) * 256 + b2) * 256 + b1
end

-- created - event, or nil when the row has no created timestamp (a varint at byte 13).
local function created_of(body)
  local c = get_varint(body, 13)
  if c == nil or c == 0 then return nil end
  c = c - 1
  if c % 2 == 1 then return -(c + 1) / 2 end
  return c / 2
end

-- Whether `new` may replace `old`: another schema, or an order that is not older.
local function replaces(new, old)
  if #old < 13 or sub(new, 1, 4) ~= sub(old, 1, 4) then return true end
  local en, eo = event_of(new), event_of(old)
  if en ~= eo then return en > eo end
  local cn, co = created_of(new), created_of(old)
  if co == nil then return true end
  if cn == nil then return false end
  return cn >= co
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

const char* const kDeleteViewsScript = R"lua(-- granary delete views, layout v1
local byte, sub = string.byte, string.sub
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end

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

}  // namespace granary::redis
