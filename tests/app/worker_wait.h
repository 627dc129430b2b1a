// Waiting for the studio's worker in tests: generous deadlines that only end
// a hung test, never timing assertions; and a named pipe that holds the
// worker at a known point.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "app/studio/worker.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace superpose::testing {

// Long enough for the slowest job of the app's tests on a busy machine.
inline constexpr std::chrono::seconds kWaitLimit{300};

// Polls the published snapshot until `done` holds.
inline std::shared_ptr<const studio::Snapshot> wait_until(studio::Worker& worker,
                                                          const std::function<bool(const studio::Snapshot&)>& done,
                                                          const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto snapshot = worker.snapshot();
    if (done(*snapshot)) return snapshot;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ADD_FAILURE() << "timed out waiting for " << what << "; last message: " << worker.snapshot()->message;
  return worker.snapshot();
}

// Waits until no command is queued or running.
inline std::shared_ptr<const studio::Snapshot> wait_idle(studio::Worker& worker) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (worker.busy() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_FALSE(worker.busy()) << "the worker never became idle";
  return worker.snapshot();
}

// A named pipe for an evaluation's data: the worker blocks reading it until
// feed() writes, so commands queued before feed() are behind the evaluation's
// start and ahead of its first batch, whatever the threads' timing.
class DataPipe {
 public:
  explicit DataPipe(std::filesystem::path path) : path_(std::move(path)) {
    ready_ = ::mkfifo(path_.c_str(), 0600) == 0;
  }
  bool ready() const { return ready_; }
  const std::filesystem::path& path() const { return path_; }
  // Waits (generously) for the worker to open the pipe, then writes `bytes` and closes it.
  bool feed(const std::string& bytes) {
    const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    int fd = -1;
    while (fd < 0 && std::chrono::steady_clock::now() < deadline) {
      fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // ENXIO until the reader opens
      if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (fd < 0) return false;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    ::close(fd);
    return written == bytes.size();
  }

 private:
  std::filesystem::path path_;
  bool ready_ = false;
};

// A worker with a tiny saved superposition (dir_) loaded, on the CPU or on
// the device SUPERPOSE_TEST_DEVICE names (e.g. "cuda", to run these jobs on a GPU).
class TinyWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = save_tiny_superposition(temp_ / "tiny");
    studio::LoadSettings load;
    const char* device = std::getenv("SUPERPOSE_TEST_DEVICE");
    load.device = device != nullptr && *device != '\0' ? device : "cpu";
    worker_.load_superposition(dir_, load);
    const auto s = wait_until(worker_, [](const studio::Snapshot& s) { return s.superposition || s.errors > 0; }, "load");
    ASSERT_TRUE(s->superposition) << s->message;
  }
  TempDir temp_;
  std::string dir_;
  studio::Worker worker_;
};

}  // namespace superpose::testing
