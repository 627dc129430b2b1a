// superpose-studio: the desktop app. Arguments choose what opens and allow headless screenshots.
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "app/studio/session.h"
#include "app/studio/studio.h"
#include "model/device.h"

namespace fs = std::filesystem;

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "superpose-studio: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  superpose::tune_cpu_allocator();
  superpose::studio::StudioOptions options;
  std::string model_dir, superposition, base, fine, session, screenshot;
  CLI::App app{"Superposition Studio: watch and steer superposed GPT-2 models", "superpose-studio"};
  app.add_option("MODEL_DIR", model_dir, "HF GPT-2 directory to inspect in the Model and Tensors panels");
  app.add_option("--superposition", superposition,
                 "Superposition directory to open (default: assets/models/superposition-1d)");
  auto* base_option = app.add_option("--base", base, "Base expert to superpose without a checkpoint (needs --fine)");
  auto* fine_option = app.add_option("--fine", fine, "Fine-tuned expert (needs --base)");
  base_option->needs(fine_option);
  fine_option->needs(base_option);
  app.add_option("--session", session, "Open a saved session (JSON)");
  app.add_option("--device", options.device, "Where the models run")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}) | CLI::Validator(
                                                           [](std::string& v) {
                                                             return v.rfind("cuda:", 0) == 0 ? std::string()
                                                                                             : std::string("bad device");
                                                           },
                                                           "cuda:N"))
      ->capture_default_str();
  app.add_option("--screenshot", screenshot, "Render, save this PNG and quit (for headless checks)");
  app.add_flag("--offscreen", options.offscreen,
               "Draw offscreen through EGL instead of in a window (no display needed; needs --screenshot)");
  app.add_option("--frames", options.frames, "Frames to render before the screenshot")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return fail(e.what());
  }
  if (!session.empty() && (!superposition.empty() || !base.empty())) {
    return fail("--session names its own models: drop --superposition/--base/--fine");
  }
  auto require_dir = [](const std::string& option, const std::string& dir) {
    return dir.empty() || fs::is_directory(dir) ? std::string() : option + " " + dir + ": no such directory";
  };
  for (const auto& problem : {require_dir("--superposition", superposition), require_dir("--base", base),
                              require_dir("--fine", fine), require_dir("MODEL_DIR", model_dir)}) {
    if (!problem.empty()) return fail(problem);
  }
  if (!session.empty()) {
    try {
      options.session = superpose::studio::load_session(session);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    if (app.count("--device")) options.session->device = options.device;
  }
  if (!screenshot.empty()) {
    const fs::path parent = fs::path(screenshot).parent_path();
    if (!parent.empty() && !fs::is_directory(parent)) return fail("--screenshot " + screenshot + ": no such directory");
    options.screenshot = screenshot;
  }
  if (options.offscreen && !options.screenshot) return fail("--offscreen needs --screenshot FILE.png");
  options.model_dir = model_dir;
  options.superposition_dir = superposition;
  options.base_dir = base;
  options.fine_dir = fine;
  return superpose::studio::run_studio(options);
}
