// The studio driven by a script under Xvfb: load the tiny superposition,
// generate with a pause, change α mid-generation, resume, analyse, export the
// α figure, save and reopen a session, and screenshot every panel.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include <gtest/gtest.h>

#include "app/studio/panels.h"
#include "app/studio/session.h"
#include "app/studio/studio.h"
#include "tests/app/script_support.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace superpose::studio {
namespace {

std::string head(const fs::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

float mean(const std::vector<float>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0f) / static_cast<float>(v.size());
}

TEST(StudioScript, GeneratesSteersExportsAndRestoresASession) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const std::string dir = superpose::testing::save_tiny_superposition(temp / "tiny");
  const fs::path png = temp / "studio.png", figure = temp / "figures" / "alpha", session_file = temp / "session.json";
  fs::create_directories(temp / "figures");

  constexpr float kSteered = 0.9f;
  constexpr int kMaxFrames = 20000;
  int phase = 0;
  std::vector<float> learned;
  Session saved;
  superpose::testing::ScriptChecks check;  // reported after the window closed

  StudioOptions options = superpose::testing::scripted_studio(dir, png);
  options.script = [&](ScriptFrame& f) {
    if (f.frame > kMaxFrames) {
      return check(false, "timed out in phase " + std::to_string(phase) + ": " + f.snapshot.message);
    }
    if (f.worker.busy()) return true;
    const auto latest = f.worker.snapshot();  // taken after the worker went idle
    const Snapshot& s = *latest;
    switch (phase) {
      case 0: {  // loaded: generate three tokens and pause
        if (!s.superposition) {
          return s.status == Snapshot::Status::kFailed ? check(false, "load failed: " + s.message) : true;
        }
        learned = s.superposition->alpha_learned;
        f.state.prompt = "Hello world";
        f.state.settings.max_new_tokens = 8;
        f.state.settings.greedy = true;
        f.state.settings.stop_at_eos = false;
        GenerationSettings settings = f.state.settings;
        settings.pause_after = 3;
        f.worker.generate(f.state.prompt, settings);
        phase = 1;
        return true;
      }
      case 1: {  // paused: steer α (undoably, as the Alpha panel does) and resume
        if (!s.generation.paused) return s.generation.running || s.generation.id == 0 ||
                                          check(false, "generation ended before the pause: " + s.generation.stop_reason);
        check(s.generation.tokens.size() == 3, "paused after " + std::to_string(s.generation.tokens.size()) + " tokens");
        f.state.alpha_history.record(s.superposition->alpha_in_force);
        f.worker.set_alpha_global(kSteered);
        f.worker.resume_generation(0);
        phase = 2;
        return true;
      }
      case 2: {  // finished: the tokens after the pause carry the new α
        if (s.generation.running) return true;
        const auto& tokens = s.generation.tokens;
        check(tokens.size() == 8, "generated " + std::to_string(tokens.size()) + " tokens: " + s.generation.stop_reason);
        for (size_t i = 0; i < tokens.size(); ++i) {
          const float a = mean(tokens[i].alpha);
          if (i < 3) {
            check(std::abs(a - mean(learned)) < 1e-5f, "token " + std::to_string(i) + " mean α " + std::to_string(a));
          } else {
            check(std::abs(a - kSteered) < 1e-5f, "token " + std::to_string(i) + " mean α " + std::to_string(a));
          }
          check(tokens[i].top_superposed.size() == kTopTokens, "top tokens missing");
        }
        f.state.export_path = figure.string();
        check(export_alpha(f.state, s), "export: " + f.state.app_message);
        f.worker.analyse_sequence(-1);
        f.state.panels = PanelVisibility{true, true, true, true, true};
        saved = capture_session(f.state, s);
        save_session(saved, session_file);
        undo_alpha(f.state, s, f.worker);  // back to the learned α
        phase = 3;
        return true;
      }
      case 3: {  // undone; reopen the saved session (steered α again)
        check(s.analysis.has_value(), "no analysis: " + s.message);
        check(s.superposition->alpha_in_force == learned, "undo did not restore the learned α");
        const Session reloaded = load_session(session_file);
        check(reloaded == saved, "the reloaded session differs from the saved one");
        apply_session(reloaded, f.state, f.worker);
        phase = 4;
        return true;
      }
      case 4: {  // the reopened session is what was saved
        if (!s.superposition) return true;
        check(capture_session(f.state, s) == saved, "the reopened session is not the saved one: " + s.message);
        check(s.superposition->alpha_in_force == std::vector<float>(learned.size(), kSteered), "α not restored");
        // Show something in every panel for the screenshot.
        GenerationSettings settings = f.state.settings;
        settings.max_new_tokens = 12;
        f.worker.generate(f.state.prompt, settings);
        phase = 5;
        return true;
      }
      case 5:  // generated: analyse the whole sequence
        if (s.generation.running) return true;
        f.worker.analyse_sequence(-1);
        phase = 6;
        return true;
      default:
        return false;  // done: the screenshot follows once the worker is idle
    }
  };
  ASSERT_EQ(run_studio(options), 0);
  check.report();
  EXPECT_EQ(phase, 6);

  EXPECT_EQ(head(temp / "figures" / "alpha.pdf", 5), "%PDF-");
  EXPECT_EQ(head(temp / "figures" / "alpha.png", 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(head(temp / "figures" / "alpha.csv", 11), "panel,serie");

  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_EQ(shot.width, 1280);
  EXPECT_EQ(shot.height, 800);
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 4)) << "screenshot looks blank";
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) {
    superpose::testing::copy_file(png, std::string(keep) + ".script.png");
    superpose::testing::copy_file(temp / "figures" / "alpha.png", std::string(keep) + ".alpha.png");
  }
}


// The analysis panels driven by a script: a small t-SNE published chunk by
// chunk, a lasso selection, the map's export, the neuron maps with one
// neuron's contexts, and a screenshot with both panels open.
TEST(StudioScript, RunsTsneAndNeuronMapsInTheirPanels) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const std::string dir = superpose::testing::save_tiny_superposition(temp / "tiny");
  const fs::path png = temp / "analysis.png";
  constexpr int kMaxFrames = 200000;
  int phase = 0;
  uint64_t tsne_id = 0;
  std::vector<int64_t> iterations;  // distinct iterations seen by the frames, in order
  superpose::testing::ScriptChecks check;  // reported after the window closed

  StudioOptions options = superpose::testing::scripted_studio(dir, png);
  options.script = [&](ScriptFrame& f) {
    if (f.frame > kMaxFrames) return check(false, "timed out in phase " + std::to_string(phase) + ": " + f.snapshot.message);
    const Snapshot& now = f.snapshot;
    if (now.errors > 0) return check(false, "error: " + now.message);
    if (now.tsne && now.tsne->id == tsne_id && !now.tsne->capturing &&
        (iterations.empty() || iterations.back() != now.tsne->iteration)) {
      iterations.push_back(now.tsne->iteration);
    }
    switch (phase) {
      case 0:  // loaded: open the panels and run a small t-SNE
        if (!now.superposition) return true;
        f.state.panels.tsne = f.state.panels.neurons = true;
        f.state.tsne.request.layers = {0, 2};
        f.state.tsne.colour = TsneColour::kLayer;
        f.state.tsne.request.max_documents = 1;
        f.state.tsne.request.perplexity = 10.0;
        f.state.tsne.request.iterations = 100;
        f.state.tsne.export_path = (temp / "tsne").string();
        tsne_id = f.worker.run_tsne(f.state.tsne.request);
        phase = 1;
        return true;
      case 1: {  // finished: select the left half, export, compute the neuron maps
        if (f.worker.busy() || !now.tsne || now.tsne->id != tsne_id || now.tsne->running) return true;
        const TsneMap& map = *now.tsne;
        check(map.finished && map.iteration == 100, "t-SNE ended at iteration " + std::to_string(map.iteration));
        float x0 = 1e30f, x1 = -1e30f, y0 = 1e30f, y1 = -1e30f;
        for (size_t i = 0; i + 1 < map.embedding.size(); i += 2) {
          x0 = std::min(x0, map.embedding[i]), x1 = std::max(x1, map.embedding[i]);
          y0 = std::min(y0, map.embedding[i + 1]), y1 = std::max(y1, map.embedding[i + 1]);
        }
        const float xm = 0.5f * (x0 + x1);
        f.state.tsne.selected = points_in_polygon(map, {x0 - 1, y0 - 1, xm, y0 - 1, xm, y1 + 1, x0 - 1, y1 + 1});
        f.state.tsne.selected_map = map.id;
        check(!f.state.tsne.selected.empty(), "the lasso selected nothing");
        check(export_tsne(f.state, now), "export: " + f.state.app_message);
        f.state.neurons.request.max_documents = 1;
        f.worker.compute_neurons(f.state.neurons.request);
        phase = 2;
        return true;
      }
      case 2:  // maps computed: ask for one neuron's contexts
        if (f.worker.busy() || !now.neurons) return true;
        f.worker.neuron_detail("superposition", 1, 0);
        phase = 3;
        return true;
      case 3:
        if (f.worker.busy() || !now.neuron_detail) return true;
        f.state.neurons.model = "superposition - base";
        phase = 4;
        return true;
      default:
        return false;
    }
  };
  ASSERT_EQ(run_studio(options), 0);
  check.report();
  EXPECT_EQ(phase, 4);
  // The frames saw the map grow: several iterations, increasing.
  EXPECT_GE(iterations.size(), 2u);
  for (size_t i = 1; i < iterations.size(); ++i) EXPECT_GT(iterations[i], iterations[i - 1]);
  EXPECT_EQ(head(temp / "tsne.pdf", 5), "%PDF-");
  EXPECT_EQ(head(temp / "tsne.png", 8), std::string("\x89PNG\r\n\x1a\n", 8));

  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 4)) << "screenshot looks blank";
  EXPECT_GT(shot.light, static_cast<size_t>(10000)) << "no t-SNE plot in the screenshot";
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) {
    superpose::testing::copy_file(png, std::string(keep) + ".analysis.png");
    superpose::testing::copy_file(temp / "tsne.png", std::string(keep) + ".tsne.png");
  }
}

// The Trajectories and Metrics panels driven by a script: a short sequence,
// the trajectory map with its token trajectories following an α change, an
// evaluation, one export each, and a screenshot with both panels open.
TEST(StudioScript, RunsTrajectoriesAndMetricsInTheirPanels) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const std::string dir = superpose::testing::save_tiny_superposition(temp / "tiny");
  const fs::path png = temp / "trajectories_metrics.png";
  constexpr int kMaxFrames = 200000;
  int phase = 0;
  uint64_t token_version = 0;
  std::vector<float> superposed_before;
  superpose::testing::ScriptChecks check;  // reported after the window closed
  auto superposed_tokens = [](const Trajectories& t) {
    for (const auto& tokens : t.tokens) {
      if (tokens.model == "superposition") return tokens.points;
    }
    return std::vector<float>();
  };

  StudioOptions options = superpose::testing::scripted_studio(dir, png);
  options.script = [&](ScriptFrame& f) {
    if (f.frame > kMaxFrames) return check(false, "timed out in phase " + std::to_string(phase) + ": " + f.snapshot.message);
    const Snapshot& now = f.snapshot;
    if (now.errors > 0) return check(false, "error: " + now.message);
    switch (phase) {
      case 0: {  // loaded: a short sequence
        if (!now.superposition) return true;
        f.state.prompt = "Hello world";
        f.state.settings.max_new_tokens = 4;
        f.state.settings.greedy = true;
        f.state.settings.stop_at_eos = false;
        f.worker.generate(f.state.prompt, f.state.settings);
        phase = 1;
        return true;
      }
      case 1:  // generated: open the panels and compute the map
        if (f.worker.busy() || now.generation.running) return true;
        f.state.panels.trajectories = f.state.panels.metrics = true;
        f.state.panels.generate = f.state.panels.alpha = f.state.panels.layers = false;
        f.state.trajectories.request.max_documents = 2;
        f.state.trajectories.export_path = (temp / "trajectories").string();
        f.worker.compute_trajectories(f.state.trajectories.request);
        phase = 2;
        return true;
      case 2: {  // the map with token trajectories; steer α: the panel re-projects (Follow α)
        if (f.worker.busy() || !now.trajectories || now.trajectories->generation_id == 0) return true;
        check(now.trajectories->lines.size() == 6, "lines: " + std::to_string(now.trajectories->lines.size()));
        superposed_before = superposed_tokens(*now.trajectories);
        token_version = now.trajectories->token_version;
        check(export_trajectories(f.state, now), "trajectory export: " + f.state.app_message);
        f.worker.set_alpha_global(0.9);
        phase = 3;
        return true;
      }
      case 3: {  // re-projected under the new α
        if (f.worker.busy() || now.trajectories->token_version <= token_version ||
            now.trajectories->token_alpha.empty() || std::abs(now.trajectories->token_alpha[0] - 0.9f) > 1e-6f) {
          return true;
        }
        check(superposed_tokens(*now.trajectories) != superposed_before, "the token trajectories did not follow α");
        f.state.metrics.request.max_documents = 2;
        f.state.metrics.export_path = (temp / "metrics").string();
        f.worker.run_eval(f.state.metrics.request);
        phase = 4;
        return true;
      }
      case 4:  // evaluated: export the perplexity figure
        if (f.worker.busy() || !now.eval || !now.eval->finished) return true;
        check(now.eval->rows.size() == 14, "eval rows: " + std::to_string(now.eval->rows.size()));
        check(export_perplexity(f.state, now), "perplexity export: " + f.state.app_message);
        check(export_l2_distances(f.state, now), "L2 export: " + f.state.app_message);
        phase = 5;
        return true;
      default:
        return false;
    }
  };
  ASSERT_EQ(run_studio(options), 0);
  check.report();
  EXPECT_EQ(phase, 5);
  EXPECT_EQ(head(temp / "trajectories.pdf", 5), "%PDF-");
  EXPECT_EQ(head(temp / "trajectories.png", 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(head(temp / "metrics-perplexity.pdf", 5), "%PDF-");
  EXPECT_EQ(head(temp / "metrics-perplexity.png", 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(head(temp / "metrics-l2.pdf", 5), "%PDF-");

  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 4)) << "screenshot looks blank";
  EXPECT_GT(shot.light, static_cast<size_t>(10000)) << "no trajectory plot in the screenshot";
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) {
    superpose::testing::copy_file(png, std::string(keep) + ".trajectories_metrics.png");
    superpose::testing::copy_file(temp / "trajectories.png", std::string(keep) + ".trajectories.png");
    superpose::testing::copy_file(temp / "metrics-perplexity.png", std::string(keep) + ".perplexity.png");
  }
}

}  // namespace
}  // namespace superpose::studio
