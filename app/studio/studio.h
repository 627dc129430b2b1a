// Superposition Studio's window and frame loop.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace superpose::studio {

struct StudioOptions {
  std::filesystem::path model_dir;                  // opened at start; empty = default_model_dir()
  std::optional<std::filesystem::path> screenshot;  // save a PNG after `frames` frames and quit
  int frames = 60;
  int width = 1280, height = 800;
};

// The model the studio opens when none is named: the shipped default models
// under assets/models when present, else the small reference model of the tests.
std::filesystem::path default_model_dir();

// Opens the window and runs until it is closed (or the screenshot is taken).
// Returns a process exit code; prints one line to stderr on failure.
int run_studio(const StudioOptions& options);

}  // namespace superpose::studio
