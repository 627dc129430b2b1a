// Reading whole files and writing them atomically, with POSIX calls (LibTorch
// ships its own std::filesystem symbols, so only path arithmetic is used here).
#include "model/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "model/errors.h"

namespace superpose {
namespace {

std::string reason(const std::string& what, int error) { return what + ": " + std::strerror(error); }

// The process umask without changing it (umask(2) would, racing other
// threads): Linux reports it in /proc/self/status. 022 where that is absent.
mode_t current_umask() {
  mode_t mask = 022;
  if (FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), status)) {
      unsigned value = 0;
      if (std::sscanf(line, "Umask: %o", &value) == 1) {
        mask = static_cast<mode_t>(value & 0777);
        break;
      }
    }
    std::fclose(status);
  }
  return mask;
}

// Makes a completed rename durable. Best effort: the new file is already in
// place, so a failure here is not reported as a failed write.
void sync_parent_directory(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where, reason("cannot open", errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(where, "is a directory, not a file");
  }
  std::string bytes;
  // Regular files report their size; pipes and /proc files report 0 and are read in chunks.
  bytes.reserve(S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) : 0);
  char chunk[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw Error(where, reason("read failed", error));
    }
    if (got == 0) break;
    bytes.append(chunk, static_cast<size_t>(got));
  }
  ::close(fd);
  return bytes;
}

AtomicFile::AtomicFile(const std::filesystem::path& path) : path_(path) {
  if (!path.has_filename()) throw Error(path.string().empty() ? "(empty path)" : path.string(), "not a file name");
  std::string pattern = path.string() + ".tmp-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) throw Error(path.string(), reason("cannot create a temporary file next to it", errno));
  temp_path_ = name.data();
  // mkstemp makes the file 0600; give it what a plain open() would.
  if (::fchmod(fd_, 0666 & ~current_umask()) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
    throw Error(path.string(), reason("cannot set the permissions of the temporary file", error));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  assert(!committed_ && fd_ >= 0 && "AtomicFile::write after commit");
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd_, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path_.string(), reason("write failed", errno));
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  assert(!committed_ && fd_ >= 0 && "AtomicFile::commit twice");
  // fsync before rename: otherwise a crash can leave the new name pointing at
  // an empty or partial file on file systems that reorder metadata and data.
  if (::fsync(fd_) != 0) throw Error(path_.string(), reason("fsync failed", errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(path_.string(), reason("close failed", errno));
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_.string(), reason("cannot move the new file into place", errno));
  }
  committed_ = true;
  sync_parent_directory(path_);
}

namespace {

// Entries of a directory other than "." and "..", or -1 when it cannot be read.
int count_entries(const std::filesystem::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
  }
  ::closedir(d);
  return n;
}

}  // namespace

namespace {

// "out/" -> "out"; Error when there is no directory name at all.
std::filesystem::path directory_name(const std::filesystem::path& path) {
  std::filesystem::path name = path.lexically_normal();
  if (!name.has_filename()) name = name.parent_path();
  if (!name.has_filename()) throw Error(path.string().empty() ? "(empty path)" : path.string(), "not a directory name");
  return name;
}

}  // namespace

void require_new_directory(const std::filesystem::path& path) {
  const std::filesystem::path name = directory_name(path);
  const std::string where = path.string();
  struct stat st {};
  if (::lstat(name.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(where, "exists and is not a directory");
    if (count_entries(name) != 0) throw Error(where, "exists and is not empty; choose a new directory");
  }
}

AtomicDirectory::AtomicDirectory(const std::filesystem::path& path) : path_(directory_name(path)) {
  const std::string where = path.string();
  require_new_directory(path);
  std::string pattern = path_.string() + ".tmp-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) throw Error(where, reason("cannot create a temporary directory next to it", errno));
  temp_dir_ = name.data();
  ::chmod(temp_dir_.c_str(), 0777 & ~current_umask());
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_ && !temp_dir_.empty()) remove_directory_tree(temp_dir_);
}

void AtomicDirectory::commit() {
  assert(!committed_ && "AtomicDirectory::commit twice");
  const int fd = ::open(temp_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  // rename(2) replaces an empty directory and refuses a non-empty one.
  if (::rename(temp_dir_.c_str(), path_.c_str()) != 0) {
    throw Error(path_.string(), reason("cannot move the new directory into place", errno));
  }
  committed_ = true;
  sync_parent_directory(path_);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

namespace {

// Removes `name` in the folder `parent` (a descriptor, or AT_FDCWD) and, for a
// folder, everything in it; links are removed, never followed. Best effort:
// what cannot be removed stays.
void remove_tree_at(int parent, const char* name) {
  if (::unlinkat(parent, name, 0) == 0 || errno == ENOENT) return;
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  for (const std::string& entry : names) remove_tree_at(::dirfd(dir), entry.c_str());
  ::closedir(dir);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

}  // namespace

void make_directories(const std::filesystem::path& dir) {
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (partial == partial.root_path()) continue;
    if (::mkdir(partial.c_str(), 0777) != 0 && errno != EEXIST) {
      throw Error(partial.string(), std::string("cannot create the folder: ") + std::strerror(errno));
    }
  }
  if (!std::filesystem::is_directory(dir)) throw Error(dir.string(), "exists and is not a folder");
}

void remove_directory_tree(const std::filesystem::path& path) { remove_tree_at(AT_FDCWD, path.c_str()); }

std::filesystem::path make_hidden_sibling_directory(const std::filesystem::path& dir, const char* purpose) {
  // mkdtemp(3) replaces the template's last six characters.
  std::string pattern = (dir.parent_path() / ("." + dir.filename().string() + "." + purpose + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(dir.string(), std::string("cannot create a folder beside it: ") + std::strerror(errno));
  }
  return pattern;
}

void exchange_paths(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto failure = [&b](int error) { return Error(b.string(), std::string("cannot replace it: ") + std::strerror(error)); };
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return;
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) throw failure(errno);
  const std::filesystem::path aside = make_hidden_sibling_directory(b, "swap");  // an empty folder that rename(2) replaces
  if (::rename(b.c_str(), aside.c_str()) != 0) {
    const int error = errno;
    ::rmdir(aside.c_str());
    throw failure(error);
  }
  if (::rename(a.c_str(), b.c_str()) != 0) {
    const int error = errno;
    ::rename(aside.c_str(), b.c_str());  // b as it was
    throw failure(error);
  }
  if (::rename(aside.c_str(), a.c_str()) != 0) throw failure(errno);  // b's old contents stay, hidden, at `aside`
}

}  // namespace superpose
