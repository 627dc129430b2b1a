// Reading whole files and writing them atomically with POSIX calls.
#include "model/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "model/errors.h"

namespace superpose {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), "cannot open (missing or unreadable)");
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) throw Error(path.string(), "read failed");
  return out.str();
}

AtomicFile::AtomicFile(const std::filesystem::path& path) : path_(path) {
  std::string pattern = path.string() + ".tmp-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) throw Error(path.string(), std::string("cannot create the file: ") + std::strerror(errno));
  temp_path_ = name.data();
  ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd_, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path_.string(), std::string("write failed: ") + std::strerror(errno));
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw Error(path_.string(), std::string("fsync failed: ") + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(path_.string(), std::string("close failed: ") + std::strerror(errno));
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_.string(), std::string("cannot move the file into place: ") + std::strerror(errno));
  }
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace superpose
