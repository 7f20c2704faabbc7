// Small formatting pieces of the serving JSON: RFC 3339 timestamps, shortest numbers and base64,
// written into caller buffers without allocating. Stateless; thread-safe.
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

// Longest output of FormatShortest: "-2.2250738585072014e-308" (24 characters) and ".0".
constexpr size_t kShortestMax = 26;
constexpr size_t kShortestRoom = 48;

// The shortest text that reads back as the same finite number: the same characters as
// std::to_chars(out, end, v) with no format (the fixed or the scientific form, whichever is
// shorter, fixed on a tie: "0.1", "1e+30", "123456789012345680000", "-0"), about 3x faster than
// libstdc++'s (fmt's Dragonbox finds the digits). With `json_float`, a number written without a
// point or an exponent gets ".0" ("5.0", "-0.0"), so that readers keep it a float as Python does.
// Returns the length; `out` needs kShortestRoom bytes (more than it keeps: some parts are moved
// by copies of a constant size). Not for NaN or the infinities.
size_t FormatShortest(double v, char* out, bool json_float = false);
size_t FormatShortest(float v, char* out, bool json_float = false);

// Standard base64 (RFC 4648, with padding).
void AppendBase64(std::string_view data, std::string* out);
// Decodes standard or URL-safe base64, padding optional; InvalidArgument on other characters.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace granary::serving
