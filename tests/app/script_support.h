// For tests that drive the studio's window with a script under Xvfb.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "app/studio/studio.h"

namespace superpose::testing {

// Checks made inside a script, reported once the window has closed: a
// failure in the frame loop must not end the run early.
class ScriptChecks {
 public:
  // Records `what` when `ok` is false; returns `ok`.
  bool operator()(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(what);
    return ok;
  }
  void report() const {
    for (const auto& failure : failures_) ADD_FAILURE() << failure;
  }

 private:
  std::vector<std::string> failures_;
};

// A run over a superposition on the CPU in the default 1280×800 window that
// saves `png` once the script has ended (after at least 5 frames) and the
// worker is idle. The caller sets options.script.
inline studio::StudioOptions scripted_studio(const std::string& superposition_dir, const std::filesystem::path& png) {
  studio::StudioOptions options;
  options.superposition_dir = superposition_dir;
  options.device = "cpu";
  options.screenshot = png;
  options.frames = 5;
  return options;
}

}  // namespace superpose::testing
