// Fuzzes the console's query string parsing (GET /api/stats?view=...&start=...). Property: it
// never crashes, and every pair it returns, encoded again, parses back to the same pairs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "granary/console/console_service.h"

namespace {

std::string Encode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto pairs = granary::ParseQueryString(text);
  if (!pairs.ok()) return 0;
  std::string again;
  for (const auto& [key, value] : *pairs) {
    if (key.empty()) continue;  // "=x" has no key to encode
    if (!again.empty()) again += '&';
    again += Encode(key) + "=" + Encode(value);
  }
  auto reparsed = granary::ParseQueryString(again);
  if (!reparsed.ok()) {
    std::fprintf(stderr, "re-encoded query does not parse: '%s'\n", again.c_str());
    std::abort();
  }
  for (const auto& [key, value] : *pairs) {
    if (key.empty()) continue;
    auto it = reparsed->find(key);
    if (it == reparsed->end() || it->second != value) {
      std::fprintf(stderr, "query round trip changed '%s'\n", key.c_str());
      std::abort();
    }
  }
  return 0;
}
