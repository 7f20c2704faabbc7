// The feature server's log: one line per event on stderr, "<UTC time> <message>". Never given
// secrets (the bearer token) or request bodies. Thread-safe: each line is one write.
#pragma once

#include <string_view>

namespace granary {

void ServerLog(std::string_view message);

}  // namespace granary
