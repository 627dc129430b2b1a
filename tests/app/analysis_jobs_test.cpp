// The worker's analysis jobs without a window: a t-SNE map published chunk by
// chunk and cancellable, the neuron maps and a neuron's contexts, and the
// map's export.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "app/studio/panels.h"
#include "app/studio/tsne_colouring.h"
#include "app/studio/worker.h"
#include "tests/app/worker_wait.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace superpose::studio {
namespace {

using superpose::testing::wait_until;

std::string head(const std::filesystem::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

TsneRequest small_tsne() {
  TsneRequest r;
  r.data = default_data_path();
  r.layers = {1};
  r.max_documents = 1;
  r.perplexity = 10.0;
  r.iterations = 100;
  r.chunk = 10;
  return r;
}

class AnalysisJobs : public superpose::testing::TinyWorkerTest {};

TEST_F(AnalysisJobs, TsnePublishesTheEmbeddingChunkByChunkAndExports) {
  const uint64_t id = worker_.run_tsne(small_tsne());
  std::vector<int64_t> seen;  // iterations of the published maps, in order
  const auto last = wait_until(
      worker_,
      [&](const Snapshot& s) {
        if (s.tsne && s.tsne->id == id && !s.tsne->capturing && (seen.empty() || seen.back() != s.tsne->iteration)) {
          seen.push_back(s.tsne->iteration);
        }
        return s.errors > 0 || (s.tsne && s.tsne->id == id && !s.tsne->running);
      },
      "the t-SNE run");
  ASSERT_EQ(last->errors, 0u) << last->message;
  const TsneMap& map = *last->tsne;
  EXPECT_TRUE(map.finished);
  EXPECT_EQ(map.iteration, 100);
  ASSERT_GT(map.rows, 0);
  EXPECT_EQ(map.embedding.size(), static_cast<size_t>(3 * map.rows * 2));
  EXPECT_EQ(map.models, (std::vector<std::string>{"base", "fine", "superposition"}));
  EXPECT_EQ(map.layers, std::vector<int64_t>{1});
  EXPECT_EQ(map.row_domains.size(), static_cast<size_t>(map.rows));
  const TsneColouring colours = tsne_colouring(map, TsneColour::kModelDomain);
  EXPECT_EQ(colours.categories.size(), static_cast<size_t>(3 * map.rows));
  EXPECT_EQ(colours.names.size(), 3 * map.domains.size());
  EXPECT_EQ(map.sources.size(), static_cast<size_t>(map.rows));
  EXPECT_FALSE(map.sources[0].token.empty());
  // Several intermediate maps, iterations strictly increasing.
  EXPECT_GE(seen.size(), 3u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);

  // A lasso around everything selects every point.
  float lo = 1e30f, hi = -1e30f;
  for (float v : map.embedding) lo = std::min(lo, v), hi = std::max(hi, v);
  const std::vector<float> square = {lo - 1, lo - 1, hi + 1, lo - 1, hi + 1, hi + 1, lo - 1, hi + 1};
  EXPECT_EQ(points_in_polygon(map, square).size(), map.embedding.size() / 2);

  AppState state;
  state.tsne.export_path = (temp_ / "tsne").string();
  ASSERT_TRUE(export_tsne(state, *last)) << state.app_message;
  EXPECT_EQ(head(temp_ / "tsne.pdf", 5), "%PDF-");
  EXPECT_EQ(head(temp_ / "tsne.png", 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(head(temp_ / "tsne.csv", 5), "panel");
}

TEST_F(AnalysisJobs, TsneMapsSeveralStatesInOneMapAndExportsThemColouredByState) {
  TsneRequest r = small_tsne();
  r.layers = {2, 0};  // any order; the map holds them ascending
  r.superposition = false;
  r.iterations = 20;
  const uint64_t id = worker_.run_tsne(r);
  const auto last = wait_until(
      worker_, [&](const Snapshot& s) { return s.errors > 0 || (s.tsne && s.tsne->id == id && !s.tsne->running); },
      "the t-SNE run over two states");
  ASSERT_EQ(last->errors, 0u) << last->message;
  const TsneMap& map = *last->tsne;
  ASSERT_TRUE(map.finished);
  EXPECT_EQ(map.models, (std::vector<std::string>{"base", "fine"}));
  EXPECT_EQ(map.layers, (std::vector<int64_t>{0, 2}));
  ASSERT_GT(map.rows, 0);
  EXPECT_EQ(map.points(), 2 * 2 * map.rows);
  // Points are models × states × rows, models outermost.
  EXPECT_EQ(map.model_of(0), 0);
  EXPECT_EQ(map.layer_of(map.rows), 1);
  EXPECT_EQ(map.model_of(2 * map.rows), 1);
  EXPECT_EQ(map.layer_of(2 * map.rows), 0);
  EXPECT_EQ(tsne_point_label(map, 3 * map.rows).substr(0, 7), "fine / ");
  EXPECT_EQ(tsne_point_label(map, 3 * map.rows).substr(tsne_point_label(map, 3 * map.rows).size() - 7), "state 2");

  AppState state;
  state.tsne.colour = TsneColour::kLayer;
  state.tsne.export_path = (temp_ / "states").string();
  ASSERT_TRUE(export_tsne(state, *last)) << state.app_message;
  std::ifstream csv(temp_ / "states.csv");
  const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
  // One CSV row per point, its category the state.
  size_t state0 = 0, state2 = 0;
  for (size_t at = text.find("state 0"); at != std::string::npos; at = text.find("state 0", at + 1)) ++state0;
  for (size_t at = text.find("state 2"); at != std::string::npos; at = text.find("state 2", at + 1)) ++state2;
  EXPECT_EQ(state0, static_cast<size_t>(2 * map.rows));
  EXPECT_EQ(state2, static_cast<size_t>(2 * map.rows));
  EXPECT_EQ(head(temp_ / "states.pdf", 5), "%PDF-");
}

TEST_F(AnalysisJobs, TsneCancelsAndAlphaInterleaves) {
  TsneRequest r = small_tsne();
  r.iterations = 100000;  // would take long: cancelled after the first chunk
  const uint64_t id = worker_.run_tsne(r);
  wait_until(worker_, [&](const Snapshot& s) { return s.errors > 0 || (s.tsne && s.tsne->iteration > 0); },
             "the first chunk");
  worker_.set_alpha_global(0.25);  // runs between chunks
  const auto alpha = wait_until(
      worker_, [](const Snapshot& s) { return s.errors > 0 || s.superposition->alpha_overridden; }, "α");
  EXPECT_TRUE(alpha->tsne->running);
  worker_.cancel_tsne();
  const auto s = wait_until(
      worker_, [&](const Snapshot& s) { return s.errors > 0 || (s.tsne && s.tsne->id == id && !s.tsne->running); },
      "cancel");
  EXPECT_EQ(s->errors, 0u) << s->message;
  EXPECT_TRUE(s->tsne->cancelled);
  EXPECT_LT(s->tsne->iteration, 100000);
  EXPECT_FALSE(s->job.has_value());
}

TEST_F(AnalysisJobs, TsneReportsBadSettingsAsErrors) {
  TsneRequest r = small_tsne();
  r.data = (temp_ / "missing.jsonl").string();
  worker_.run_tsne(r);
  const auto s = wait_until(worker_, [](const Snapshot& s) { return s.errors > 0; }, "the error");
  EXPECT_NE(s->message.find("missing.jsonl"), std::string::npos) << s->message;
  r = small_tsne();
  r.base = r.fine = r.superposition = false;
  worker_.run_tsne(r);
  const auto t = wait_until(worker_, [](const Snapshot& s) { return s.errors > 1; }, "the second error");
  EXPECT_NE(t->message.find("at least one model"), std::string::npos) << t->message;
  const std::pair<std::vector<int64_t>, std::string> bad_states[] = {
      {{}, "at least one state"}, {{1, 1}, "state 1 is chosen twice"}, {{0, 99}, "state 99 is outside 0.."}};
  size_t errors = 2;
  for (const auto& [layers, message] : bad_states) {
    r = small_tsne();
    r.layers = layers;
    worker_.run_tsne(r);
    const auto e = wait_until(worker_, [&](const Snapshot& s) { return s.errors > errors; }, message);
    EXPECT_NE(e->message.find(message), std::string::npos) << e->message;
    ++errors;
  }
}

TEST_F(AnalysisJobs, NeuronMapsAndANeuronsContexts) {
  NeuronRequest r;
  r.data = default_data_path();
  r.max_documents = 1;
  worker_.compute_neurons(r);
  const auto s = wait_until(worker_, [](const Snapshot& s) { return s.errors > 0 || s.neurons; }, "neuron maps");
  ASSERT_TRUE(s->neurons) << s->message;
  const NeuronMaps& maps = *s->neurons;
  const int64_t L = s->superposition->n_layer, C = s->superposition->n_embd;
  EXPECT_EQ(maps.layers.size(), static_cast<size_t>(L));
  EXPECT_EQ(maps.neurons, C);
  EXPECT_EQ(maps.models.size(), 3u);
  for (const char* statistic : {"normalized difference", "sparsity", "mean |activation|"}) {
    ASSERT_EQ(maps.maps.count(statistic), 1u) << statistic;
    for (const auto& model : maps.models) {
      EXPECT_EQ(maps.maps.at(statistic).at(model).size(), static_cast<size_t>(L * C)) << statistic << " " << model;
    }
  }
  worker_.neuron_detail("superposition", 1, 3);
  const auto d = wait_until(worker_, [](const Snapshot& s) { return s.errors > 0 || s.neuron_detail; }, "detail");
  ASSERT_TRUE(d->neuron_detail) << d->message;
  EXPECT_EQ(d->neuron_detail->contexts.size(), 12u);
  for (size_t i = 1; i < d->neuron_detail->activations.size(); ++i) {
    EXPECT_GE(d->neuron_detail->activations[i - 1], d->neuron_detail->activations[i]);
  }
  float total = 0.0f;
  for (float c : d->neuron_detail->histogram) total += c;
  EXPECT_EQ(static_cast<int64_t>(total), maps.rows);
}

}  // namespace
}  // namespace superpose::studio
