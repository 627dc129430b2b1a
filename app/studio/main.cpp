// superpose-studio: the desktop app. Arguments choose the model and headless screenshots.
#include <CLI/CLI.hpp>

#include "app/studio/studio.h"
#include "model/device.h"

int main(int argc, char** argv) {
  superpose::tune_cpu_allocator();
  superpose::studio::StudioOptions options;
  std::string model_dir, screenshot;
  CLI::App app{"Superposition Studio: watch and steer superposed GPT-2 models", "superpose-studio"};
  app.add_option("MODEL_DIR", model_dir, "HF GPT-2 directory to open (default: the shipped models)");
  app.add_option("--screenshot", screenshot, "Render, save this PNG and quit (for headless checks)");
  app.add_option("--frames", options.frames, "Frames to render before the screenshot")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.model_dir = model_dir;
  if (!screenshot.empty()) options.screenshot = screenshot;
  return superpose::studio::run_studio(options);
}
