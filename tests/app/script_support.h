// For tests that drive the studio's window with a script under Xvfb.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <stb_image.h>

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

// A screenshot's size and two pixel counts: pixels that differ from the
// top-left one (a blank window has none) and near-white ones (a plot's
// background). `loaded` is false when the PNG cannot be read.
struct ScreenshotPixels {
  bool loaded = false;
  int width = 0, height = 0;
  size_t differing = 0, light = 0;
};

inline ScreenshotPixels screenshot_pixels(const std::filesystem::path& png) {
  ScreenshotPixels result;
  int channels = 0;
  unsigned char* pixels = stbi_load(png.c_str(), &result.width, &result.height, &channels, 3);
  if (pixels == nullptr) return result;
  result.loaded = true;
  for (int i = 0; i < result.width * result.height; ++i) {
    const unsigned char* p = pixels + 3 * i;
    result.differing += p[0] != pixels[0] || p[1] != pixels[1] || p[2] != pixels[2];
    result.light += p[0] >= 240 && p[1] >= 240 && p[2] >= 240;
  }
  stbi_image_free(pixels);
  return result;
}

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
