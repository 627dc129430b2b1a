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

}  // namespace superpose::testing
