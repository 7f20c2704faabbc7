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

// As FormatRfc3339, with the fraction as protobuf's JSON mapping writes it (and so Feast's
// feature server, whose event_timestamps Granary's match): none, 3 digits when the time is whole
// milliseconds, else 6: "...T02:00:00Z", "...T02:00:00.250Z", "...T02:00:00.250001Z".
size_t FormatRfc3339Millis(Timestamp ts, char* out);

// Standard base64 (RFC 4648, with padding).
void AppendBase64(std::string_view data, std::string* out);
// Decodes standard or URL-safe base64, padding optional; InvalidArgument on other characters.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace granary::serving
