#include "granary/common/strings.h"

#include <algorithm>

namespace granary {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (!best.empty()) return best;
  // An abbreviation ("event_ts" for "event_timestamp"): the one name sharing the longest prefix,
  // when that prefix covers most of the word.
  size_t best_prefix = std::max<size_t>(4, word.size() * 2 / 3) - 1;
  bool unique = false;
  for (const std::string& c : candidates) {
    size_t p = 0;
    while (p < word.size() && p < c.size() && word[p] == c[p]) ++p;
    if (p > best_prefix) {
      best_prefix = p;
      best = c;
      unique = true;
    } else if (p == best_prefix && !best.empty()) {
      unique = false;
    }
  }
  return unique ? best : std::string();
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string match = ClosestMatch(word, candidates);
  return match.empty() ? std::string() : ", did you mean '" + match + "'?";
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace granary
