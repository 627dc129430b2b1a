// Whole-file reading and atomic whole-file writing (temporary file + fsync +
// rename), with errors that name the path.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace superpose {

// The whole file's bytes. Throws Error naming the path when it is missing,
// a directory, or unreadable. Thread-safe.
std::string read_file(const std::filesystem::path& path);

// A file that appears at `path` only when committed.
//
// The constructor creates "<path>.tmp-XXXXXX" (mkstemp) in the same directory,
// so the final rename never crosses file systems; write() appends to it;
// commit() fsyncs it, closes it, renames it onto `path` (replacing any file
// there, or a symlink itself rather than its target) and fsyncs the directory.
// The destructor removes the temporary unless commit() succeeded. So at every
// moment `path` holds either its old contents (or nothing) or the complete new
// file, and a failure at any point leaves no temporary behind.
// The new file gets mode 0666 minus the process umask, as open() would give.
// Errors: every I/O failure throws Error naming `path` and the system's reason.
// Calling write() or commit() after a successful commit() is a programmer
// error (asserted). Not thread-safe; not copyable or movable.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }  // for tests and diagnostics

 private:
  std::filesystem::path path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// A directory that appears at `path` only when committed, complete.
//
// The constructor refuses a `path` that exists and is not an empty directory
// (Error naming it), then creates "<path>.tmp-XXXXXX" (mkdtemp) next to it;
// callers write their files into dir(). commit() fsyncs the directory and
// renames it onto `path`. The destructor removes the temporary directory and
// the files in it (one level) unless commit() succeeded, so a failure leaves
// nothing behind. Not thread-safe; not copyable or movable.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(const std::filesystem::path& path);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Where to write the files before commit().
  const std::filesystem::path& dir() const { return temp_dir_; }
  std::filesystem::path operator/(const std::string& name) const { return temp_dir_ / name; }
  void commit();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_dir_;
  bool committed_ = false;
};

// Throws Error naming `path` when it exists and is not an empty directory:
// what AtomicDirectory refuses, for commands that check before long work.
void require_new_directory(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically (see AtomicFile). Throws Error naming
// the path on failure; never leaves a partial file at `path`.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Makes `dir` and its missing parents, one mkdir(2) at a time (LibTorch's own
// std::filesystem symbols make create_directories unsafe in this program).
// Throws Error naming the folder that cannot be made.
void make_directories(const std::filesystem::path& dir);

// Removes `path` and, for a folder, everything in it; links are removed,
// never followed. Best effort: what cannot be removed stays.
void remove_directory_tree(const std::filesystem::path& path);

// Creates a new, empty, hidden folder beside `dir`, named
// "<parent>/.<name>.<purpose>-" plus a unique suffix (mkdtemp), and returns
// it. Throws Error naming `dir`.
std::filesystem::path make_hidden_sibling_directory(const std::filesystem::path& dir, const char* purpose);

// Swaps what `a` and `b` name: atomically with renameat2(RENAME_EXCHANGE),
// else (a file system without it) through a third name. Throws Error naming `b`.
void exchange_paths(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace superpose
