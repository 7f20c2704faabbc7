// The web console's page: the files of the npm build of web/ (index.html, its scripts and styles),
// turned into a C++ source by CMake at build time (cmake/EmbedConsoleAssets.cmake) so that the
// binary serves the console with nothing beside it. When the build had no npm, there are no
// assets and ConsoleAssetsMissing() says why and how to fix it.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace granary {

struct ConsoleAsset {
  std::string_view path;          // "/index.html", "/assets/index-3f2a1b.js"
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view data;
};

// Every file of the build, index.html first; empty when the page was not built.
const std::vector<ConsoleAsset>& ConsoleAssets();
// Why there are no assets ("" when there are).
std::string_view ConsoleAssetsMissing();

}  // namespace granary
