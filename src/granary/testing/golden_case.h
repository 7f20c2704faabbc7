// Golden point-in-time cases: the declarative test format of tests/golden/*.test (documented in
// tests/golden/README.md). A case declares feature views with their source rows, entity rows, a
// request, and the expected output rows or error. The reader builds real source files and
// definitions from it; the conformance suite runs OfflineEngine::GetHistoricalFeatures and
// compares.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Table;
}

namespace granary::golden {

// A table written in the case file: a header of column names and rows of cells ("null" is null).
struct TextTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  int line = 0;  // where it starts, for messages
};

struct GoldenView {
  FeatureView view;
  DataSource source;
  std::string format = "parquet";  // parquet | csv
  int files = 1;                   // rows are split, in order, over this many files
  std::vector<Field> columns;      // typed source columns that are not features (aggregations)
  TextTable rows;
};

struct GoldenCase {
  std::string file;
  std::string title;
  std::vector<Entity> entities;
  std::vector<GoldenView> views;
  TextTable entity_rows;
  HistoricalRequest request;  // entities filled in by Materialize
  // The embedded engine's budget the case asks for (a case about spilling); engines that do not
  // spill locally ignore it.
  int64_t memory_budget_bytes = kDefaultMemoryBudget;
  bool expect_error = false;
  std::string error_substring;
  TextTable expected;
};

// Parses a case file; errors name the file and line.
Result<GoldenCase> ParseGoldenCase(const std::filesystem::path& file);

// Writes the views' source files under `root` (pointing the definitions at them) and builds the
// definitions and the entity table of the request.
Result<Definitions> MaterializeCase(GoldenCase* golden, const std::filesystem::path& root);

// The output as text cells, formatted as the expected rows are normalized: timestamps RFC 3339
// UTC, floats in shortest round-trip form, null as "null".
Result<TextTable> TableAsText(const arrow::Table& table);

// Normalizes expected cells to the form TableAsText gives, using the output's column types.
Result<TextTable> NormalizeExpected(const TextTable& expected, const arrow::Table& output);

}  // namespace granary::golden
