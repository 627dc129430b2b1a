// AtomicDirectory: a directory appears complete on commit or not at all.
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::AtomicDirectory;

namespace {

bool path_exists(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// POSIX listing (see temp_dir.h for why not std::filesystem).
int entries(const fs::path& dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

TEST(AtomicDirectory, AppearsOnlyOnCommit) {
  superpose::testing::TempDir tmp;
  const fs::path out = tmp / "out";
  {
    AtomicDirectory dir(out);
    superpose::write_file_atomic(dir / "a.txt", "hello");
    EXPECT_FALSE(path_exists(out));
    EXPECT_TRUE(path_exists(dir / "a.txt"));
    dir.commit();
  }
  EXPECT_EQ(superpose::read_file(out / "a.txt"), "hello");
  EXPECT_EQ(entries(tmp.path()), 1);  // no temporary left next to it
}

TEST(AtomicDirectory, FailureLeavesNothing) {
  superpose::testing::TempDir tmp;
  const fs::path out = tmp / "out";
  try {
    AtomicDirectory dir(out);
    superpose::write_file_atomic(dir / "a.txt", "partial");
    throw std::runtime_error("writer failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(path_exists(out));
  EXPECT_EQ(entries(tmp.path()), 0);
}

TEST(AtomicDirectory, FillsAnEmptyDirectoryAndRefusesAFullOne) {
  superpose::testing::TempDir tmp;
  const fs::path out = tmp.make_dir("out");
  {
    AtomicDirectory dir(out.string() + "/");
    superpose::write_file_atomic(dir / "a.txt", "x");
    dir.commit();
  }
  EXPECT_EQ(superpose::read_file(out / "a.txt"), "x");
  SUPERPOSE_EXPECT_THROW_WITH(AtomicDirectory{out}, superpose::Error, "exists and is not empty");
  superpose::write_file_atomic(tmp / "file", "y");
  SUPERPOSE_EXPECT_THROW_WITH(AtomicDirectory{tmp / "file"}, superpose::Error, "exists and is not a directory");
  SUPERPOSE_EXPECT_THROW_WITH(AtomicDirectory{tmp / "missing" / "out"}, superpose::Error, "cannot create a temporary directory");
}

}  // namespace
