// For tests that drive the studio's window with a script under Xvfb.
#pragma once

#include <cstdlib>
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

// The fraction of pixels where two same-sized PNGs differ by more than
// `levels` in some RGB channel (1 when either is missing or the sizes differ).
inline double fraction_of_pixels_apart(const std::filesystem::path& a, const std::filesystem::path& b, int levels) {
  int wa = 0, ha = 0, wb = 0, hb = 0, channels = 0;
  unsigned char* pa = stbi_load(a.c_str(), &wa, &ha, &channels, 3);
  unsigned char* pb = stbi_load(b.c_str(), &wb, &hb, &channels, 3);
  double fraction = 1.0;
  if (pa && pb && wa == wb && ha == hb && wa * ha > 0) {
    size_t apart = 0;
    for (int i = 0; i < wa * ha; ++i) {
      bool far = false;
      for (int c = 0; c < 3; ++c) far = far || std::abs(int(pa[3 * i + c]) - int(pb[3 * i + c])) > levels;
      apart += far;
    }
    fraction = static_cast<double>(apart) / (static_cast<double>(wa) * ha);
  }
  stbi_image_free(pa);
  stbi_image_free(pb);
  return fraction;
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
