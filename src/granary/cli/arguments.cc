// Parsing of command-line values shared by several commands.
#include <fmt/format.h>

#include <utility>
#include <vector>

#include "granary/cli/cli.h"

namespace granary::cli {

Result<int64_t> ParseByteSize(const std::string& text, std::string_view option) {
  size_t end = 0;
  double number = 0;
  try {
    number = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  const std::string unit = end == 0 ? "?" : text.substr(end);
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"", 1},          {"B", 1},
      {"K", 1e3},       {"KB", 1e3},
      {"KiB", 1 << 10}, {"M", 1e6},
      {"MB", 1e6},      {"MiB", 1 << 20},
      {"G", 1e9},       {"GB", 1e9},
      {"GiB", 1 << 30}, {"T", 1e12},
      {"TB", 1e12},     {"TiB", 1099511627776.0}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name && number > 0) return static_cast<int64_t>(number * scale);
  }
  return Status::InvalidArgument(
      fmt::format("{} '{}' is not a size: write e.g. 2GiB, 512MiB or 800MB", option, text));
}

Result<Timestamp> ParseTimeArgument(const std::string& text, std::string_view what, Timestamp now) {
  auto ts = ParseTimeOrNow(text);
  if (!ts.ok()) {
    return Status::InvalidArgument(fmt::format("{} '{}': {}", what, text, ts.status().message()));
  }
  return ts->value_or(now);
}

}  // namespace granary::cli
