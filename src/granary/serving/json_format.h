// Small formatting pieces of the serving JSON: RFC 3339 timestamps and base64, written into
// caller buffers without allocating. Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace granary::serving {

// Longest output of FormatRfc3339: "-292277-01-01T00:00:00.000000Z" and the like.
constexpr size_t kRfc3339Max = 40;

// Writes the same text as FormatTimestamp (common/time.h) into `out`; returns its length.
size_t FormatRfc3339(Timestamp ts, char* out);

// Standard base64 (RFC 4648, with padding).
void AppendBase64(std::string_view data, std::string* out);
// Decodes standard or URL-safe base64, padding optional; InvalidArgument on other characters.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace granary::serving
