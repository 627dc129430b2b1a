// Superposition Studio timings, one JSON line each:
//   bench_studio startup [--superposition DIR] [--device D]
//     process start to the first frame drawn, and to the default superposition
//     loaded and shown (the worker publishes it while frames keep coming);
//   bench_studio frames [--superposition DIR] [--device D] [--tokens N]
//     frame times (median, p95, max) while the worker generates, with every
//     panel open: the UI must not wait on the model;
//   bench_studio tsne-frames [--superposition DIR] [--device D] [--documents N] [--layers 3[,6,...]]
//     frame times (median, p95, max) of 120 frames with the t-SNE panel showing
//     a map of base, fine and the superposition over N documents per domain
//     of the shipped validation sample (about 100,000 points at N = 110);
//   bench_studio latency [--superposition DIR] [--device D] [--changes N]
//     from an α change during generation to the first token generated under
//     it (worker only, no window): the slider-to-token latency.
// A window needs a display (xvfb-run provides one); --offscreen draws the
// same frames through EGL without one (each frame then ends in glFinish, so
// its time includes the GPU's drawing). Each line names the OpenGL renderer;
// --screenshot FILE.png saves the last frame.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/studio/studio.h"
#include "app/studio/worker.h"

namespace {

using Clock = std::chrono::steady_clock;
using superpose::studio::GenerationSettings;
using superpose::studio::Snapshot;
using superpose::studio::Worker;

const Clock::time_point kStart = Clock::now();

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

std::string superposition_dir(int argc, char** argv) {
  return arg(argc, argv, "--superposition", superpose::studio::default_superposition_dir().string());
}

bool loaded(const Snapshot& s) { return s.superposition.has_value() && s.status == Snapshot::Status::kReady; }

superpose::studio::StudioOptions studio_options(int argc, char** argv) {
  superpose::studio::StudioOptions options;
  options.superposition_dir = superposition_dir(argc, argv);
  options.device = arg(argc, argv, "--device", "auto");
  options.offscreen = flag(argc, argv, "--offscreen");
  // --screenshot FILE.png keeps the last frame, to look at what was timed.
  const std::string screenshot = arg(argc, argv, "--screenshot", "");
  if (!screenshot.empty()) {
    options.screenshot = screenshot;
    options.frames = 1;
  }
  return options;
}

int startup(int argc, char** argv) {
  superpose::studio::StudioOptions options = studio_options(argc, argv);
  std::string renderer;
  double first_frame = -1, ready = -1;
  int frames = 0;
  options.script = [&](superpose::studio::ScriptFrame& f) {
    if (first_frame < 0) first_frame = since(kStart);
    renderer = f.state.renderer;
    frames = f.frame + 1;
    if (loaded(f.snapshot)) {
      ready = since(kStart);
      return false;
    }
    return f.frame < 100000;
  };
  const int rc = superpose::studio::run_studio(options);
  std::printf("%s\n", nlohmann::json{{"what", "startup"}, {"first_frame_s", first_frame}, {"model_shown_s", ready},
                                     {"frames", frames}, {"superposition", options.superposition_dir},
                                     {"renderer", renderer}}
                          .dump()
                          .c_str());
  return rc;
}

int frames(int argc, char** argv) {
  superpose::studio::StudioOptions options = studio_options(argc, argv);
  std::string renderer;
  const int64_t tokens = std::stoll(arg(argc, argv, "--tokens", "64"));
  std::vector<double> busy_frames;
  Clock::time_point last;
  bool started = false;
  options.script = [&](superpose::studio::ScriptFrame& f) {
    const auto now = Clock::now();
    renderer = f.state.renderer;
    if (!started && loaded(f.snapshot)) {
      GenerationSettings settings;
      settings.max_new_tokens = tokens;
      settings.greedy = true;
      settings.stop_at_eos = false;
      f.worker.generate("The history of the city", settings);
      started = true;
    } else if (started && f.snapshot.generation.running) {
      busy_frames.push_back(std::chrono::duration<double>(now - last).count() * 1e3);
    } else if (started && !f.snapshot.generation.running && !busy_frames.empty()) {
      return false;
    }
    last = now;
    return f.frame < 200000;
  };
  const int rc = superpose::studio::run_studio(options);
  std::printf("%s\n", nlohmann::json{{"what", "frames"}, {"frames_while_generating", busy_frames.size()},
                                     {"median_ms", percentile(busy_frames, 0.5)},
                                     {"p95_ms", percentile(busy_frames, 0.95)},
                                     {"max_ms", percentile(busy_frames, 1.0)}, {"tokens", tokens},
                                     {"renderer", renderer}}
                          .dump()
                          .c_str());
  return rc;
}

int tsne_frames(int argc, char** argv) {
  superpose::studio::StudioOptions options = studio_options(argc, argv);
  std::string renderer;
  superpose::studio::TsneRequest request;
  request.max_documents = std::stoll(arg(argc, argv, "--documents", "110"));
  request.layers.clear();
  std::stringstream layers(arg(argc, argv, "--layers", "3"));
  for (std::string layer; std::getline(layers, layer, ',');) request.layers.push_back(std::stoll(layer));
  request.data = (std::filesystem::path(SUPERPOSE_SOURCE_DIR) / "assets/data/validation.jsonl").string();
  request.iterations = 10;
  request.chunk = 10;
  constexpr size_t kFrames = 120;
  std::vector<double> times;
  bool asked = false;
  int64_t points = 0;
  const auto t0 = Clock::now();
  double map_ready = -1;
  bool failed = false;
  Clock::time_point last;
  options.script = [&](superpose::studio::ScriptFrame& f) {
    const auto now = Clock::now();
    renderer = f.state.renderer;
    f.state.panels.tsne = true;
    if (!asked && loaded(f.snapshot)) {
      f.worker.run_tsne(request);
      asked = true;
    } else if (asked && f.snapshot.tsne && f.snapshot.tsne->finished) {
      if (map_ready < 0) map_ready = since(t0);
      points = static_cast<int64_t>(f.snapshot.tsne->embedding.size() / 2);
      if (f.frame > 0 && last.time_since_epoch().count() != 0) {
        times.push_back(std::chrono::duration<double>(now - last).count() * 1e3);
      }
      if (times.size() >= kFrames) return false;
    } else if (asked && (f.snapshot.status == Snapshot::Status::kFailed || f.snapshot.errors > 0)) {
      std::fprintf(stderr, "bench_studio: %s\n", f.snapshot.message.c_str());
      failed = true;
      return false;
    }
    last = now;
    return true;
  };
  const int rc = superpose::studio::run_studio(options);
  std::printf("%s\n", nlohmann::json{{"what", "tsne-frames"}, {"points", points}, {"frames", times.size()},
                                     {"median_ms", percentile(times, 0.5)}, {"p95_ms", percentile(times, 0.95)},
                                     {"max_ms", percentile(times, 1.0)}, {"map_ready_s", map_ready},
                                     {"renderer", renderer}}
                          .dump()
                          .c_str());
  return failed ? 1 : rc;
}

int latency(int argc, char** argv) {
  const int changes = std::stoi(arg(argc, argv, "--changes", "20"));
  Worker worker;
  superpose::studio::LoadSettings load;
  load.device = arg(argc, argv, "--device", "auto");
  worker.load_superposition(superposition_dir(argc, argv), load);
  while (!loaded(*worker.snapshot())) {
    if (worker.snapshot()->status == Snapshot::Status::kFailed) {
      std::fprintf(stderr, "bench_studio: %s\n", worker.snapshot()->message.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string device = worker.snapshot()->superposition->device;
  GenerationSettings settings;
  settings.max_new_tokens = 4 * changes + 8;
  settings.greedy = true;
  settings.stop_at_eos = false;
  worker.generate("The history of the city", settings);
  std::vector<double> latencies, token_times;
  size_t seen = 0;
  Clock::time_point last_token = Clock::now();
  for (int c = 0; c < changes; ++c) {
    // Let two tokens pass between changes, then move α and wait for the first
    // token whose recorded α is the new value.
    while (worker.snapshot()->generation.tokens.size() < seen + 2) std::this_thread::yield();
    const float value = c % 2 == 0 ? 0.9f : 0.1f;
    const auto t0 = Clock::now();
    worker.set_alpha_global(value);
    for (;;) {
      const auto s = worker.snapshot();
      const auto& tokens = s->generation.tokens;
      if (tokens.size() > seen) {
        token_times.push_back(std::chrono::duration<double>(Clock::now() - last_token).count() * 1e3);
        last_token = Clock::now();
        seen = tokens.size();
        if (std::abs(tokens.back().alpha[0] - value) < 1e-6f) break;
      }
      if (!s->generation.running) break;
      std::this_thread::yield();
    }
    latencies.push_back(std::chrono::duration<double>(Clock::now() - t0).count() * 1e3);
  }
  worker.stop_generation();
  std::printf("%s\n", nlohmann::json{{"what", "latency"}, {"device", device}, {"changes", latencies.size()},
                                     {"median_ms", percentile(latencies, 0.5)}, {"p95_ms", percentile(latencies, 0.95)},
                                     {"token_median_ms", percentile(token_times, 0.5)}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "startup") return startup(argc, argv);
  if (what == "frames") return frames(argc, argv);
  if (what == "tsne-frames") return tsne_frames(argc, argv);
  if (what == "latency") return latency(argc, argv);
  std::fprintf(stderr,
               "usage: bench_studio startup|frames|tsne-frames|latency [--superposition DIR] [--device D] "
               "[--offscreen] [--screenshot FILE.png]\n");
  return 2;
}
