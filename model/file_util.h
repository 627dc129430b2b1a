// Whole-file reading and atomic writing (temp file + rename), with user-facing errors.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace superpose {

// The whole file. Throws Error naming the path when it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// A file that appears at `path` only when committed: writes go to a temporary
// "<path>.tmp-XXXXXX" in the same directory; commit() flushes, fsyncs and
// renames it onto `path`; destruction without commit removes the temporary.
// So a failure at any point leaves nothing at `path` and no temporary.
// Not thread-safe. Throws Error naming `path` on any I/O failure.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  void commit();

 private:
  std::filesystem::path path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically (see AtomicFile).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace superpose
