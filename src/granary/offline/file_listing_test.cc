// Data file listing: which files a source path names, and the byte-wise order the offline store
// reads them in (docs/POINT_IN_TIME.md, "Read order").
#include "granary/offline/file_listing.h"

#include <gtest/gtest.h>

#include <fstream>

#include "granary/common/temp_dir.h"

namespace granary {
namespace {

void Touch(const std::filesystem::path& file) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << "x";
}

std::vector<std::string> Relative(const std::vector<std::filesystem::path>& files,
                                  const std::filesystem::path& root) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.lexically_relative(root).string());
  return out;
}

TEST(ListDataFiles, FolderFilesAreInByteWisePathOrderNotComponentOrder) {
  auto dir = TempDir::Make("granary-listing-").ValueOrDie();
  const auto root = dir.path() / "src";
  // Component-wise, "region=us" < "region=us-east" (a prefix sorts first); byte-wise the whole
  // paths differ at '/' (0x2f) against '-' (0x2d), so us-east comes first.
  Touch(root / "region=us/part-0.parquet");
  Touch(root / "region=us-east/part-0.parquet");
  Touch(root / "region=us/_SUCCESS.parquet");  // skipped: starts with '_'
  auto files = ListDataFiles(root, ".parquet");
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(Relative(*files, root), (std::vector<std::string>{"region=us-east/part-0.parquet",
                                                              "region=us/part-0.parquet"}));

  auto globbed = ListDataFiles(root / "region=*/*.parquet", ".parquet");
  ASSERT_TRUE(globbed.ok()) << globbed.status().ToString();
  EXPECT_EQ(Relative(*globbed, root), (std::vector<std::string>{"region=us-east/part-0.parquet",
                                                                "region=us/part-0.parquet"}));
}

}  // namespace
}  // namespace granary
