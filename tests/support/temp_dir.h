// A per-test temporary directory made and removed with POSIX calls.
#pragma once

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace superpose::testing {

// mkdtemp + nftw rather than std::filesystem: PyTorch's LibTorch exports its
// own copies of std::filesystem::remove_all and friends, which crash when a
// program linked against it calls them.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/superpose_test_XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (::mkdtemp(name.data()) != nullptr) path_ = name.data();
  }
  ~TempDir() {
    if (!path_.empty()) {
      ::nftw(path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
             FTW_DEPTH | FTW_PHYS);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Makes a subdirectory (one level) and returns its path.
  std::filesystem::path make_dir(const std::string& name) const {
    const auto dir = path_ / name;
    ::mkdir(dir.c_str(), 0755);
    return dir;
  }

 private:
  std::filesystem::path path_;
};

// Copies a file with streams (see TempDir for why not std::filesystem).
inline void copy_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
}

}  // namespace superpose::testing
