#include "granary/common/cancel.h"

#include <gtest/gtest.h>

#include <atomic>

namespace granary {
namespace {

TEST(CancelFlag, AChildReadsAsSetOnceItsParentIsButNeverSetsIt) {
  CancelFlag parent;
  CancelFlag child(&parent);
  CancelFlag grandchild(&child);
  EXPECT_FALSE(child.cancelled());
  // The child's own Cancel stops the child's work only (and what follows it).
  child.Cancel();
  EXPECT_TRUE(child.cancelled());
  EXPECT_TRUE(grandchild.cancelled());
  EXPECT_FALSE(parent.cancelled());
  EXPECT_TRUE(CheckCancelled(&parent, "the job").ok());

  CancelFlag other_child(&parent);
  EXPECT_FALSE(other_child.cancelled());
  parent.Cancel();
  EXPECT_TRUE(other_child.cancelled());
  EXPECT_EQ(CheckCancelled(&other_child, "the match ahead").message(),
            "the match ahead was cancelled");

  // No parent: a plain flag.
  CancelFlag orphan(static_cast<const CancelFlag*>(nullptr));
  EXPECT_FALSE(orphan.cancelled());
}

TEST(CancelFlag, AFlagFollowingAnAtomicReadsAsSetOnceItIs) {
  std::atomic<bool> cancelled{false};
  CancelFlag flag(&cancelled);
  EXPECT_FALSE(flag.cancelled());
  cancelled = true;
  EXPECT_TRUE(flag.cancelled());
}

}  // namespace
}  // namespace granary
