// Options shared by materialize, materialize-incremental and schedule.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "granary/materialize/materializer.h"

namespace granary::cli {

struct MaterializeArgs {
  std::string views;  // comma-separated
  std::string memory_budget = "1GiB";
  int write_threads = 0;
  int64_t write_batch_rows = 4096;
  std::string spill_dir;
  bool quiet = false;
};

void AddMaterializeOptions(CLI::App* cmd, MaterializeArgs* args);
Result<MaterializeOptions> MakeMaterializeOptions(const MaterializeArgs& args);
std::vector<std::string> SplitViews(const std::string& text);
// One line per view: what was read, written and skipped, and where the watermark is.
std::string DescribeView(const ViewMaterialization& v);

}  // namespace granary::cli
