// Small string helpers used in messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace granary {

// Levenshtein distance between two ASCII strings.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is close enough to be a likely typo, else "".
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "" when nothing is close; for appending to messages.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

// Joins with a separator: Join({"a","b"}, ", ") == "a, b".
std::string Join(const std::vector<std::string>& parts, std::string_view sep);

}  // namespace granary
