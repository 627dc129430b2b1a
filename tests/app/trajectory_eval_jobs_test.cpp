// The worker's trajectory and evaluation jobs without a window: the shapes of
// the published trajectories, token trajectories that follow α for the
// superposition only, evaluation rows equal to analysis evaluate() called
// directly, and errors in the snapshot's message.
#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "analysis/eval.h"
#include "app/studio/app_state.h"
#include "app/studio/worker.h"
#include "model/dataset.h"
#include "model/model_dir.h"
#include "model/superposition_io.h"
#include "model/tokenizer.h"
#include "tests/app/worker_wait.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace superpose::studio {
namespace {

using superpose::testing::wait_until;

// Largest |a - b| over two equally long vectors (infinity when the lengths differ).
double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

const TokenTrajectoryData* find_tokens(const Trajectories& t, const std::string& model) {
  for (const auto& tokens : t.tokens) {
    if (tokens.model == model) return &tokens;
  }
  return nullptr;
}

class TrajectoryEvalJobs : public superpose::testing::TinyWorkerTest {};

TEST_F(TrajectoryEvalJobs, TrajectoriesHaveTheirShapesAndTokensFollowAlpha) {
  GenerationSettings settings;
  settings.max_new_tokens = 4;
  settings.greedy = true;
  settings.stop_at_eos = false;
  worker_.generate("Hello world", settings);
  const auto g = wait_until(
      worker_, [](const Snapshot& s) { return s.errors > 0 || (s.generation.id > 0 && !s.generation.running); },
      "generation");
  ASSERT_EQ(g->errors, 0u) << g->message;
  const auto T = static_cast<int64_t>(g->generation.prompt_ids.size() + g->generation.tokens.size());

  TrajectoryRequest request;
  request.data = default_data_path();
  request.max_documents = 2;
  worker_.compute_trajectories(request);
  const auto s = wait_until(
      worker_, [](const Snapshot& s) { return s.errors > 0 || (s.trajectories && s.trajectories->generation_id > 0); },
      "trajectories");
  ASSERT_TRUE(s->trajectories) << s->message;
  const Trajectories& t = *s->trajectories;
  const int64_t L = s->superposition->n_layer;
  const auto S = static_cast<int64_t>(t.layers.size());
  EXPECT_EQ(S, L);  // states 0..L-1
  ASSERT_EQ(t.lines.size(), 6u);  // 3 models × 2 domains
  for (const auto& line : t.lines) {
    EXPECT_EQ(line.points.size(), static_cast<size_t>(S * 2)) << line.model << " " << line.domain;
    EXPECT_EQ(line.rows, 2) << line.model << " " << line.domain;
  }
  EXPECT_EQ(t.lines[0].model, "base");
  EXPECT_EQ(t.lines[1].label, 1);
  EXPECT_GT(t.explained[0], 0.0);
  EXPECT_LE(t.explained[0] + t.explained[1], 1.0 + 1e-9);
  EXPECT_TRUE(t.causal);
  ASSERT_EQ(t.tokens.size(), 3u);
  for (const auto& tokens : t.tokens) {
    EXPECT_EQ(tokens.points.size(), static_cast<size_t>(T * S * 2)) << tokens.model;
  }
  EXPECT_EQ(t.token_texts.size(), static_cast<size_t>(T));

  const uint64_t before = t.token_version;
  worker_.set_alpha_global(0.95);
  worker_.compute_token_trajectories();
  const auto u = wait_until(
      worker_,
      [&](const Snapshot& s) { return s.errors > 0 || (s.trajectories && s.trajectories->token_version > before); },
      "the token trajectories under the new α");
  ASSERT_EQ(u->errors, 0u) << u->message;
  const Trajectories& v = *u->trajectories;
  EXPECT_EQ(v.lines.size(), t.lines.size());
  EXPECT_NEAR(v.token_alpha[0], 0.95f, 1e-6f);
  EXPECT_EQ(max_difference(find_tokens(v, "base")->points, find_tokens(t, "base")->points), 0.0);
  EXPECT_EQ(max_difference(find_tokens(v, "fine")->points, find_tokens(t, "fine")->points), 0.0);
  EXPECT_GT(max_difference(find_tokens(v, "superposition")->points, find_tokens(t, "superposition")->points), 1e-4);
}

TEST_F(TrajectoryEvalJobs, EvalRowsMatchAnalysisEvaluate) {
  EvalRequest request;
  request.data = default_data_path();
  request.max_documents = 2;
  const uint64_t id = worker_.run_eval(request);
  const auto s = wait_until(
      worker_, [&](const Snapshot& s) { return s.errors > 0 || (s.eval && s.eval->id == id && s.eval->finished); },
      "the evaluation");
  ASSERT_EQ(s->errors, 0u) << s->message;
  const EvalResults& results = *s->eval;
  EXPECT_FALSE(s->job.has_value());

  // The reference: the same files, loaded again, evaluated directly.
  // On the worker's device: the same kernels give the same numbers there.
  const torch::Device device(s->superposition->device);
  LoadedSuperposition loaded = load_superposition(dir_, std::nullopt, std::nullopt, device, torch::kFloat32);
  const Tokenizer tokenizer = Tokenizer::from_dir(resolve_tokenizer_dir(std::nullopt, loaded.base.files.dir));
  EvalOptions options;
  options.max_documents = 2;
  options.seq_len = 64;  // min(128, the tiny models' context)
  options.models = parse_eval_models(request.models, true);
  const EvalReport report =
      evaluate(loaded.base, loaded.fine, loaded.model, read_jsonl(default_data_path()), tokenizer, options);

  ASSERT_EQ(results.rows.size(), report.rows.size());
  EXPECT_EQ(results.rows.size(), 14u);  // 7 models × 2 domains
  ASSERT_EQ(results.layers.size(), report.layers.size());
  auto close = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); };
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const EvalResultRow& a = results.rows[i];
    const EvalRow& b = report.rows[i];
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.domain, b.domain);
    const double got[] = {a.ppl, a.ppl_lo, a.ppl_hi, a.acc, a.jsd, a.cosine, a.mse};
    const double want[] = {b.ppl, b.ppl_lo, b.ppl_hi, b.acc, b.jsd, b.cosine, b.mse};
    const char* names[] = {"ppl", "ppl_lo", "ppl_hi", "acc", "jsd", "cosine", "mse"};
    for (int k = 0; k < 7; ++k) {
      EXPECT_TRUE(close(got[k], want[k])) << b.model << "/" << b.domain << " " << names[k] << ": got " << got[k]
                                          << ", expected " << want[k];
    }
    EXPECT_EQ(a.tokens, b.tokens);
  }
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const EvalLayerResult& a = results.layers[i];
    const EvalLayerRow& b = report.layers[i];
    EXPECT_EQ(a.layer, b.layer);
    EXPECT_TRUE(close(a.l2_base, b.l2_base) && close(a.l2_fine, b.l2_fine) && close(a.l2_base_fine, b.l2_base_fine))
        << b.model << "/" << b.domain << " layer " << b.layer;
  }
}

TEST_F(TrajectoryEvalJobs, MissingDataLandsInTheMessage) {
  TrajectoryRequest t;
  t.data = (temp_ / "missing-trajectories.jsonl").string();
  worker_.compute_trajectories(t);
  const auto s = wait_until(worker_, [](const Snapshot& s) { return s.errors > 0; }, "the trajectory error");
  EXPECT_NE(s->message.find("missing-trajectories.jsonl"), std::string::npos) << s->message;
  EXPECT_FALSE(s->trajectories.has_value());
  EXPECT_FALSE(s->job.has_value());

  EvalRequest e;
  e.data = (temp_ / "missing-eval.jsonl").string();
  worker_.run_eval(e);
  const auto u = wait_until(worker_, [](const Snapshot& s) { return s.errors > 1; }, "the evaluation error");
  EXPECT_NE(u->message.find("missing-eval.jsonl"), std::string::npos) << u->message;
  EXPECT_FALSE(u->job.has_value());

  e.data = default_data_path();
  e.models = "base,nonsense";
  worker_.run_eval(e);
  const auto v = wait_until(worker_, [](const Snapshot& s) { return s.errors > 2; }, "the models error");
  EXPECT_NE(v->message.find("nonsense"), std::string::npos) << v->message;
}

TEST_F(TrajectoryEvalJobs, EvalCancels) {
  EvalRequest request;
  request.data = default_data_path();
  request.max_documents = 0;
  request.batch_size = 1;
  const uint64_t id = worker_.run_eval(request);
  wait_until(worker_, [](const Snapshot& s) { return s.errors > 0 || (s.job && s.job->fraction > 0.0); },
             "the first batch");
  worker_.cancel_eval();
  const auto s = wait_until(
      worker_, [&](const Snapshot& s) { return s.errors > 0 || (s.eval && s.eval->id == id && !s.eval->running); },
      "cancel");
  EXPECT_EQ(s->errors, 0u) << s->message;
  EXPECT_TRUE(s->eval->cancelled);
  EXPECT_FALSE(s->eval->finished);
  EXPECT_FALSE(s->job.has_value());
}

}  // namespace
}  // namespace superpose::studio
