// Superposition Studio's window and frame loop.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "app/studio/app_state.h"
#include "app/studio/session.h"
#include "app/studio/worker.h"

namespace superpose::studio {

// What a script sees each frame (tests drive the studio through it).
struct ScriptFrame {
  int frame = 0;  // 0-based
  Worker& worker;
  AppState& state;
  const Snapshot& snapshot;  // the snapshot this frame draws
};

struct StudioOptions {
  // What opens at start, first match: session, base + fine (no checkpoint),
  // superposition, model_dir (a GPT-2 for inspection only), else the default
  // superposition (default_superposition_dir()).
  std::optional<Session> session;
  std::filesystem::path base_dir, fine_dir;
  std::filesystem::path superposition_dir;
  std::filesystem::path model_dir;
  std::string device = "auto";  // "auto", "cpu", "cuda", "cuda:N"

  // Draw into an offscreen OpenGL framebuffer (EGL) instead of a window: no
  // display needed. Without input, it runs until the screenshot or the script ends.
  bool offscreen = false;
  std::optional<std::filesystem::path> screenshot;  // save a PNG after `frames` frames and quit
  int frames = 60;
  int width = 1280, height = 800;
  // Called every frame before the panels draw. Returning false ends the run
  // (after the screenshot, when one is asked for, once the worker is idle).
  std::function<bool(ScriptFrame&)> script;
};

// The superposition the studio opens when none is named.
std::filesystem::path default_superposition_dir();
// A GPT-2 directory for the Model panel: the shipped base model when present,
// else the small reference model of the tests.
std::filesystem::path default_model_dir();

// Opens the window (or the offscreen framebuffer) and runs until it is closed (or the screenshot is taken,
// or the script ends). Returns a process exit code; prints one line to
// stderr on failure.
int run_studio(const StudioOptions& options);

}  // namespace superpose::studio
