// Waiting for the studio's worker in tests: generous deadlines that only end
// a hung test, never timing assertions.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

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

// A CPU worker with a tiny saved superposition (dir_) loaded.
class TinyWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = save_tiny_superposition(temp_ / "tiny");
    studio::LoadSettings load;
    load.device = "cpu";
    worker_.load_superposition(dir_, load);
    const auto s = wait_until(worker_, [](const studio::Snapshot& s) { return s.superposition || s.errors > 0; }, "load");
    ASSERT_TRUE(s->superposition) << s->message;
  }
  TempDir temp_;
  std::string dir_;
  studio::Worker worker_;
};

}  // namespace superpose::testing
