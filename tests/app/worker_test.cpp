// The studio's worker without a window: loading a superposition, streaming
// generation one queued token at a time, α and autoencoder changes that apply
// to the very next token (during an evaluation too), errors, analysis,
// snapshot immutability, importing notebook checkpoints, and device memory
// that stays flat over many α changes on CUDA.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/eval.h"
#include "analysis/expert_affinity.h"
#include "analysis/state_recorder.h"
#include "app/studio/worker.h"
#include "model/dataset.h"
#include "model/memory.h"
#include "model/file_util.h"
#include "model/model_dir.h"
#include "model/sampling.h"
#include "model/seed_import.h"
#include "model/superposed_generate.h"
#include "model/superposition_io.h"
#include "model/tokenizer.h"
#include "tests/app/worker_wait.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace superpose::studio {
namespace {

using superpose::testing::wait_idle;
using superpose::testing::wait_until;

// The tiny 1D superposition (an autoencoder at every layer), saved once per run.
const std::string& tiny_dir() {
  static superpose::testing::TempDir temp;
  static const std::string dir = superpose::testing::save_tiny_superposition(temp / "tiny");
  return dir;
}

// A 2D superposition over the same pair, saved once per run.
const std::string& tiny_2d_dir() {
  static superpose::testing::TempDir temp;
  static const std::string dir = [] {
    auto experts = load_experts(superpose::testing::kTinyBase, superpose::testing::kTinyFine, torch::kCPU,
                                torch::kFloat32);
    torch::manual_seed(11);
    SuperposedModel model(experts.first.model, experts.second.model,
                          SuperposedConfig::defaults(AlphaVariant::k2D, experts.first.config));
    save_superposition(temp / "tiny2d", model, SuperpositionSpec(), superpose::testing::kTinyBase,
                       superpose::testing::kTinyFine);
    return (temp / "tiny2d").string();
  }();
  return dir;
}

LoadSettings on_cpu() {
  LoadSettings settings;
  settings.device = "cpu";  // the references below run on the CPU too
  return settings;
}

const std::string kPrompt = "The quick brown fox jumps over";
// A prompt whose greedy continuation with the tiny pair changes when α goes to 1 after 3 tokens.
const std::string kSwitchPrompt = "Bonjour, je suis";

const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::from_dir(default_tokenizer_dir());
  return t;
}

GenerationSettings greedy(int64_t n, int64_t pause_after = 0) {
  GenerationSettings s;
  s.max_new_tokens = n;
  s.greedy = true;
  s.stop_at_eos = false;
  s.pause_after = pause_after;
  return s;
}

// A greedy run of SuperposedGenerator itself: the tokens and, per step, the
// kTopTokens highest next-token probabilities.
struct DirectRun {
  std::vector<int64_t> ids;
  std::vector<std::vector<float>> top_probs;
};

// `before` may steer the model before token i is predicted.
// With a schedule, `alphas` (when given) receives the α each token was
// predicted under, flattened.
DirectRun direct_greedy(SuperposedModel model, const std::string& prompt, int64_t n,
                        const std::function<void(int64_t, SuperposedModel&)>& before = {},
                        const AlphaSchedule& schedule = {}, std::vector<std::vector<float>>* alphas = nullptr,
                        std::vector<torch::Tensor>* logits_out = nullptr) {
  c10::InferenceMode inference;
  SamplingOptions options;
  options.temperature = 0.0;
  Sampler sampler(options);
  SuperposedGenerator generator(model, tokenizer().encode(prompt), true, schedule);
  DirectRun out;
  for (int64_t i = 0; i < n; ++i) {
    if (before) before(i, model);
    const auto logits = generator.next_logits();  // (V)
    if (logits_out != nullptr) logits_out->push_back(logits.clone());
    if (alphas != nullptr) {
      const auto a = generator.alpha_at(static_cast<int64_t>(generator.sequence().size()) - 1).contiguous();
      alphas->emplace_back(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
    }
    const int64_t token = sampler.sample(logits);
    generator.append(token);
    out.ids.push_back(token);
    const auto top = std::get<0>(torch::softmax(logits, 0).topk(kTopTokens)).contiguous();
    out.top_probs.emplace_back(top.data_ptr<float>(), top.data_ptr<float>() + kTopTokens);
  }
  return out;
}

// The worker's tokens match a direct run: same ids, same distributions (the
// same operations on the same CPU: equal up to float rounding).
void expect_same_run(const GenerationState& g, const DirectRun& direct) {
  ASSERT_EQ(g.tokens.size(), direct.ids.size());
  for (size_t i = 0; i < direct.ids.size(); ++i) {
    EXPECT_EQ(g.tokens[i].id, direct.ids[i]) << "token " << i;
    ASSERT_EQ(g.tokens[i].top_superposed.size(), static_cast<size_t>(kTopTokens));
    for (size_t k = 0; k < static_cast<size_t>(kTopTokens); ++k) {
      EXPECT_FLOAT_EQ(g.tokens[i].top_superposed[k].prob, direct.top_probs[i][k]) << "token " << i << " rank " << k;
    }
  }
}

std::vector<float> learned_alpha(const std::string& dir) {
  auto loaded = load_superposition(dir);
  const auto a = loaded.model->learned_alpha().contiguous();
  return std::vector<float>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
}

std::shared_ptr<const Snapshot> load(Worker& worker, const std::string& dir) {
  worker.load_superposition(dir, on_cpu());
  auto s = wait_idle(worker);
  EXPECT_EQ(s->status, Snapshot::Status::kReady) << s->message;
  return s;
}

// Waits for the end of generation `id`.
std::shared_ptr<const Snapshot> wait_end(Worker& worker, uint64_t id) {
  return wait_until(
      worker, [id](const Snapshot& x) { return x.generation.id == id && !x.generation.running; },
      "the end of generation " + std::to_string(id));
}

std::shared_ptr<const Snapshot> run_to_end(Worker& worker, const std::string& prompt, const GenerationSettings& s) {
  return wait_end(worker, worker.generate(prompt, s));
}

TEST(StudioWorkerSuperposition, LoadsTheTinySuperposition) {
  Worker worker;
  const auto s = load(worker, tiny_dir());
  ASSERT_TRUE(s->superposition.has_value());
  const SuperpositionInfo& info = *s->superposition;
  EXPECT_EQ(info.n_layer, 3);
  EXPECT_EQ(info.n_embd, 20);
  EXPECT_EQ(info.alpha_shape, std::vector<int64_t>({3}));
  EXPECT_EQ(info.variant, "1d");
  EXPECT_TRUE(info.causal);
  EXPECT_EQ(info.convolution, "causal");
  EXPECT_EQ(info.device, "cpu");
  EXPECT_FALSE(info.alpha_overridden);
  EXPECT_EQ(info.alpha_learned, learned_alpha(tiny_dir()));
  EXPECT_EQ(info.alpha_in_force, info.alpha_learned);
  EXPECT_EQ(info.has_autoencoder, std::vector<bool>({true, true, true}));
  EXPECT_EQ(info.autoencoder_enabled, std::vector<bool>({true, true, true}));
  EXPECT_FALSE(info.tokenizer_dir.empty());
  EXPECT_EQ(s->config.n_layer, 3);
  EXPECT_FALSE(s->tensors.empty());
  EXPECT_FALSE(s->job.has_value());

  worker.set_autoencoder(1, false);
  auto off = wait_idle(worker);
  EXPECT_EQ(off->superposition->autoencoder_enabled, std::vector<bool>({true, false, true}));
  EXPECT_EQ(off->superposition->has_autoencoder, std::vector<bool>({true, true, true}));
  worker.set_alpha_layer(2, 0.75);
  auto set = wait_idle(worker);
  EXPECT_TRUE(set->superposition->alpha_overridden);
  EXPECT_FLOAT_EQ(set->superposition->alpha_in_force[2], 0.75f);
  EXPECT_EQ(set->superposition->alpha_in_force[0], info.alpha_learned[0]);
  worker.reset_alpha();
  EXPECT_EQ(wait_idle(worker)->superposition->alpha_in_force, info.alpha_learned);
}

TEST(StudioWorkerSuperposition, LoadsA2DSuperpositionAndSetsOneDimension) {
  Worker worker;
  const auto s = load(worker, tiny_2d_dir());
  const SuperpositionInfo& info = *s->superposition;
  EXPECT_EQ(info.variant, "2d");
  EXPECT_EQ(info.alpha_shape, std::vector<int64_t>({3, 20}));
  ASSERT_EQ(info.alpha_in_force.size(), 60u);
  worker.set_alpha_layer_dim(1, 7, 0.75);
  const auto set = wait_idle(worker);
  for (size_t i = 0; i < 60; ++i) {
    const float expected = i == 1 * 20 + 7 ? 0.75f : info.alpha_learned[i];
    EXPECT_EQ(set->superposition->alpha_in_force[i], expected) << "index " << i;
  }
  const auto g = run_to_end(worker, kPrompt, greedy(2));
  ASSERT_EQ(g->generation.tokens.size(), 2u);
  const auto& alpha = g->generation.tokens[0].alpha;  // per-layer means
  ASSERT_EQ(alpha.size(), 3u);
  float mean1 = 0;
  for (int d = 0; d < 20; ++d) mean1 += set->superposition->alpha_in_force[static_cast<size_t>(20 + d)];
  EXPECT_NEAR(alpha[1], mean1 / 20, 1e-6);
}

TEST(StudioWorkerSuperposition, LoadsTwoExpertsWithoutACheckpoint) {
  Worker worker;
  worker.load_experts(superpose::testing::kTinyBase, superpose::testing::kTinyFine, on_cpu());
  const auto s = wait_idle(worker);
  ASSERT_EQ(s->status, Snapshot::Status::kReady) << s->message;
  EXPECT_EQ(s->superposition->convolution, "none");
  EXPECT_EQ(s->superposition->has_autoencoder, std::vector<bool>({false, false, false}));
  for (float a : s->superposition->alpha_learned) EXPECT_NEAR(a, 0.5f, 1e-6);
}

TEST(StudioWorkerGeneration, StreamsTokensThatEqualADirectGreedyRun) {
  constexpr int64_t kTokens = 6;
  const auto reference = direct_greedy(load_superposition(tiny_dir()).model, kPrompt, kTokens);
  Worker worker;
  load(worker, tiny_dir());

  // One token at a time: each resume adds exactly one token to a newer snapshot.
  const uint64_t id = worker.generate(kPrompt, greedy(kTokens, 1));
  EXPECT_EQ(id, 1u);
  uint64_t version = 0;
  for (int64_t i = 1; i <= kTokens; ++i) {
    const auto s = wait_until(
        worker,
        [i](const Snapshot& x) {
          const bool waiting = x.generation.paused || !x.generation.running;
          return static_cast<int64_t>(x.generation.tokens.size()) == i && waiting;
        },
        "token " + std::to_string(i));
    EXPECT_GT(s->version, version);
    version = s->version;
    ASSERT_EQ(static_cast<int64_t>(s->generation.tokens.size()), i);
    EXPECT_EQ(s->generation.tokens.back().id, reference.ids[static_cast<size_t>(i - 1)]) << "token " << i;
    if (i < kTokens) {
      EXPECT_TRUE(s->generation.running);
      EXPECT_TRUE(s->generation.paused);
      worker.resume_generation(1);
    }
  }
  auto s = wait_idle(worker);
  EXPECT_TRUE(s->generation.finished);
  EXPECT_FALSE(s->generation.cancelled);
  EXPECT_EQ(s->generation.stop_reason, "max new tokens");
  expect_same_run(s->generation, reference);
  EXPECT_EQ(s->generation.prompt_ids, tokenizer().encode(kPrompt));
  const std::string text = tokenizer().decode(reference.ids);
  if (is_valid_utf8(text)) {
    EXPECT_EQ(s->generation.text, text);
  }
  EXPECT_GT(s->generation.tokens_per_second, 0.0);
  const auto learned = learned_alpha(tiny_dir());
  for (const auto& t : s->generation.tokens) {
    EXPECT_EQ(t.alpha, learned);
    ASSERT_EQ(t.top_superposed.size(), static_cast<size_t>(kTopTokens));
    ASSERT_EQ(t.top_base.size(), static_cast<size_t>(kTopTokens));
    ASSERT_EQ(t.top_fine.size(), static_cast<size_t>(kTopTokens));
    EXPECT_EQ(t.top_superposed[0].id, t.id);  // greedy picks the most likely token
    EXPECT_GE(t.top_superposed[0].prob, t.top_superposed[1].prob);
    const std::string bytes = tokenizer().token_bytes(t.id);
    if (is_valid_utf8(bytes)) {
      EXPECT_EQ(t.text, bytes);
    }
    EXPECT_TRUE(is_valid_utf8(t.text)) << "token " << t.id;
  }

  // Free-running: the same tokens, and the versions only grow.
  EXPECT_EQ(worker.generate(kPrompt, greedy(kTokens)), 2u);
  uint64_t last = 0;
  bool seen_partial = false;
  for (;;) {
    const auto x = worker.snapshot();
    EXPECT_GE(x->version, last);
    last = x->version;
    if (x->generation.id == 2 && x->generation.running && !x->generation.tokens.empty()) seen_partial = true;
    if (x->generation.id == 2 && !x->generation.running) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::cout << "observed a partial generation while free-running: " << (seen_partial ? "yes" : "no") << "\n";
  expect_same_run(worker.snapshot()->generation, reference);

  // Sampled with a seed: the same tokens as the library's generate().
  GenerationSettings sampled;
  sampled.max_new_tokens = 10;
  sampled.temperature = 0.8;
  sampled.top_k = 50;
  sampled.seed = 7;
  sampled.stop_at_eos = false;
  SamplingOptions options;
  options.temperature = 0.8;
  options.top_k = 50;
  options.seed = 7;
  Sampler sampler(options);
  GenerateOptions generate_options;
  generate_options.max_new_tokens = 10;
  SuperposedModel model = load_superposition(tiny_dir()).model;
  const auto expected = superpose::generate(model, tokenizer().encode(kPrompt), generate_options, sampler).tokens;
  const auto got = run_to_end(worker, kPrompt, sampled);
  ASSERT_EQ(got->generation.tokens.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(got->generation.tokens[i].id, expected[i]) << "token " << i;
}

TEST(StudioWorkerGeneration, AlphaChangedMidGenerationAppliesFromTheNextToken) {
  constexpr int64_t kTokens = 8, kSwitch = 3;
  const auto unchanged = direct_greedy(load_superposition(tiny_dir()).model, kSwitchPrompt, kTokens);
  const auto switched = direct_greedy(load_superposition(tiny_dir()).model, kSwitchPrompt, kTokens,
                                      [](int64_t i, SuperposedModel& m) {
                                        if (i == kSwitch) m->set_alpha(1.0);
                                      });
  Worker worker;
  load(worker, tiny_dir());
  const auto plain = run_to_end(worker, kSwitchPrompt, greedy(kTokens));
  expect_same_run(plain->generation, unchanged);

  // Paused after kSwitch tokens: the α command is queued before the resume,
  // so it runs before the next token is computed.
  const uint64_t id = worker.generate(kSwitchPrompt, greedy(kTokens, kSwitch));
  const auto paused = wait_until(
      worker, [id](const Snapshot& x) { return x.generation.id == id && x.generation.paused; }, "the pause");
  ASSERT_EQ(static_cast<int64_t>(paused->generation.tokens.size()), kSwitch);
  worker.set_alpha_global(1.0);
  worker.resume_generation();
  const auto done = wait_end(worker, id);
  // Before the switch as unchanged; from it on as a direct run switched at that token.
  for (int64_t i = 0; i < kSwitch; ++i) {
    EXPECT_EQ(done->generation.tokens[static_cast<size_t>(i)].id, unchanged.ids[static_cast<size_t>(i)]);
  }
  expect_same_run(done->generation, switched);
  std::cout << "α = 1 from token " << kSwitch << " changes the greedy continuation: "
            << (switched.ids != unchanged.ids ? "yes" : "no") << "\n";
  const auto learned = learned_alpha(tiny_dir());
  for (int64_t i = 0; i < kTokens; ++i) {
    const auto& alpha = done->generation.tokens[static_cast<size_t>(i)].alpha;
    if (i < kSwitch) {
      EXPECT_EQ(alpha, learned) << "token " << i;
    } else {
      EXPECT_EQ(alpha, std::vector<float>(3, 1.0f)) << "token " << i;
    }
  }
  // The switch changed the very next distribution, not an earlier one.
  EXPECT_EQ(plain->generation.tokens[kSwitch - 1].top_superposed[0].prob,
            done->generation.tokens[kSwitch - 1].top_superposed[0].prob);
  EXPECT_NE(plain->generation.tokens[kSwitch].top_superposed[0].prob,
            done->generation.tokens[kSwitch].top_superposed[0].prob);
  // The experts alone do not depend on α.
  EXPECT_EQ(plain->generation.tokens[kSwitch].top_base[0].id, done->generation.tokens[kSwitch].top_base[0].id);
  EXPECT_FLOAT_EQ(plain->generation.tokens[kSwitch].top_fine[0].prob,
                  done->generation.tokens[kSwitch].top_fine[0].prob);
}

TEST(StudioWorkerGeneration, AlphaScheduleSwitchesAtItsPositionAndEqualsADirectRun) {
  constexpr int64_t kTokens = 7, kAfter = 3;  // the switch predicts token kAfter
  const std::vector<int64_t> prompt = tokenizer().encode(kSwitchPrompt);
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int64_t switch_at = n - 1 + kAfter;  // token i is predicted at position n - 1 + i
  const std::vector<ScheduleSegment> segments = {ScheduleSegment{0, {0.0f}}, ScheduleSegment{switch_at, {1.0f}}};

  // The direct run with the same AlphaSchedule.
  SuperposedModel model = load_superposition(tiny_dir()).model;
  std::vector<AlphaSchedule::Segment> direct_segments = {{0, torch::zeros({3})}, {switch_at, torch::ones({3})}};
  const AlphaSchedule schedule(direct_segments, model->alpha_shape(), "test");
  std::vector<std::vector<float>> direct_alpha;
  const DirectRun direct = direct_greedy(model, kSwitchPrompt, kTokens, {}, schedule, &direct_alpha);

  Worker worker;
  load(worker, tiny_dir());
  worker.set_alpha_schedule(segments);
  auto s = wait_idle(worker);
  EXPECT_EQ(s->alpha_schedule, segments);
  EXPECT_EQ(s->errors, 0u) << s->message;
  const auto done = run_to_end(worker, kSwitchPrompt, greedy(kTokens));
  expect_same_run(done->generation, direct);
  ASSERT_EQ(done->generation.tokens.size(), static_cast<size_t>(kTokens));
  for (int64_t i = 0; i < kTokens; ++i) {
    const auto& alpha = done->generation.tokens[static_cast<size_t>(i)].alpha;
    EXPECT_EQ(alpha, std::vector<float>(3, i < kAfter ? 0.0f : 1.0f)) << "token " << i;
    EXPECT_EQ(alpha, direct_alpha[static_cast<size_t>(i)]) << "token " << i;
  }

  // Cleared: the learned α throughout again.
  worker.clear_alpha_schedule();
  const auto plain = run_to_end(worker, kSwitchPrompt, greedy(2));
  EXPECT_TRUE(plain->alpha_schedule.empty());
  EXPECT_EQ(plain->generation.tokens[0].alpha, learned_alpha(tiny_dir()));
}

TEST(StudioWorkerGeneration, A2DScheduleSetsEveryLayerAndDimensionAndEqualsADirectRun) {
  constexpr int64_t kTokens = 5, kAfter = 2;
  const std::vector<int64_t> prompt = tokenizer().encode(kSwitchPrompt);
  const int64_t switch_at = static_cast<int64_t>(prompt.size()) - 1 + kAfter;
  SuperposedModel model = load_superposition(tiny_2d_dir()).model;
  const auto shape = model->alpha_shape();  // {L, C}
  ASSERT_EQ(shape.size(), 2u);
  // Two different α per layer and dimension, then their complement.
  torch::manual_seed(7);
  const torch::Tensor first = torch::rand({shape[0], shape[1]});
  const torch::Tensor second = 1.0 - first;
  auto values = [](const torch::Tensor& t) {
    const auto c = t.contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  const std::vector<ScheduleSegment> segments = {ScheduleSegment{0, values(first)},
                                                 ScheduleSegment{switch_at, values(second)}};
  const AlphaSchedule schedule({{0, first}, {switch_at, second}}, shape, "test");
  const DirectRun direct = direct_greedy(model, kSwitchPrompt, kTokens, {}, schedule);
  Worker worker;
  load(worker, tiny_2d_dir());
  worker.set_alpha_schedule(segments);
  const auto s = wait_idle(worker);
  ASSERT_EQ(s->errors, 0u) << s->message;
  EXPECT_EQ(s->alpha_schedule, segments);
  const auto done = run_to_end(worker, kSwitchPrompt, greedy(kTokens));
  expect_same_run(done->generation, direct);
  // Each token records the α it was predicted under, per layer (2D: the
  // mean over dimensions), to float rounding of the mean.
  ASSERT_EQ(done->generation.tokens.size(), static_cast<size_t>(kTokens));
  for (int64_t i = 0; i < kTokens; ++i) {
    const auto expected = values((i < kAfter ? first : second).mean(1));
    const auto& got = done->generation.tokens[static_cast<size_t>(i)].alpha;
    ASSERT_EQ(got.size(), expected.size());
    for (size_t l = 0; l < got.size(); ++l) EXPECT_NEAR(got[l], expected[l], 1e-6) << "token " << i << ", layer " << l;
  }
  // A size that is neither 1, L nor L·C is refused, naming all three.
  worker.set_alpha_schedule({ScheduleSegment{0, std::vector<float>(static_cast<size_t>(shape[0] + 1), 0.5f)}});
  const auto e = wait_idle(worker);
  EXPECT_EQ(e->errors, 1u);
  EXPECT_NE(e->message.find("or " + std::to_string(shape[0] * shape[1]) + " (per layer and dimension)"),
            std::string::npos)
      << e->message;
  EXPECT_EQ(e->alpha_schedule, segments);
}

TEST(StudioWorkerGeneration, BadAlphaSchedulesAreOneLineErrors) {
  Worker worker;
  load(worker, tiny_dir());
  const std::vector<ScheduleSegment> good = {ScheduleSegment{0, {0.5f}}};
  worker.set_alpha_schedule(good);
  uint64_t errors = wait_idle(worker)->errors;
  auto expect_error = [&](std::vector<ScheduleSegment> segments, const std::string& text) {
    worker.set_alpha_schedule(std::move(segments));
    const auto e = wait_idle(worker);
    EXPECT_EQ(e->errors, ++errors);
    EXPECT_NE(e->message.find(text), std::string::npos) << "message: " << e->message;
    EXPECT_EQ(e->message.find('\n'), std::string::npos) << e->message;
    EXPECT_EQ(e->alpha_schedule, good);  // a bad schedule changes nothing
  };
  expect_error({ScheduleSegment{4, {0.5f}}, ScheduleSegment{4, {1.0f}}},
               "α schedule: segment 2: from position 4 must be greater than the previous segment's 4");
  expect_error({ScheduleSegment{0, {1.5f}}}, "α schedule: segment 1: α value 1.5 is outside [0, 1]");
  expect_error({ScheduleSegment{0, {0.1f, 0.2f}}}, "α schedule: segment 1: α needs 1 value or 3 (one per layer), got 2");
  expect_error({ScheduleSegment{-1, {0.5f}}}, "from position must be >= 0, got -1");
}

TEST(StudioWorkerSuperposition, ControlPointsGiveTheLearnedAlpha) {
  Worker worker;
  const auto s = load(worker, tiny_dir());
  ASSERT_TRUE(s->superposition);
  const SuperpositionInfo& info = *s->superposition;
  ASSERT_GT(info.n_control, 0);
  ASSERT_EQ(info.alpha_basis.size(), static_cast<size_t>(info.n_layer * info.n_control));
  ASSERT_EQ(info.control_points.size(), static_cast<size_t>(info.n_control));
  ASSERT_EQ(info.layer_bias.size(), static_cast<size_t>(info.n_layer));
  const std::vector<float> alpha = alpha_from_control_points(info.alpha_basis, info.control_points, info.layer_bias);
  ASSERT_EQ(alpha.size(), info.alpha_learned.size());
  size_t worst = 0;
  for (size_t l = 0; l < alpha.size(); ++l) {
    if (std::abs(alpha[l] - info.alpha_learned[l]) > std::abs(alpha[worst] - info.alpha_learned[worst])) worst = l;
  }
  EXPECT_NEAR(alpha[worst], info.alpha_learned[worst], 1e-6) << "worst layer " << worst;
  // Moving a control point moves α, and the worker takes the result.
  std::vector<float> moved = info.control_points;
  moved[0] = 0.9f;
  const std::vector<float> edited = alpha_from_control_points(info.alpha_basis, moved, info.layer_bias);
  EXPECT_NE(edited, alpha);
  worker.set_alpha_all(edited);
  const auto after = wait_idle(worker);
  EXPECT_EQ(after->superposition->alpha_in_force, edited) << after->message;

  const std::vector<float> x = greville_abscissae(16, 3);
  ASSERT_EQ(x.size(), 16u);
  EXPECT_FLOAT_EQ(x.front(), 0.0f);
  EXPECT_FLOAT_EQ(x.back(), 1.0f);
  EXPECT_NEAR(x[1], 1.0f / 39.0f, 1e-6);  // (0 + 0 + 1/13) / 3
  for (size_t j = 1; j < x.size(); ++j) EXPECT_GT(x[j], x[j - 1]);
  // A 2D superposition publishes no spline to drag.
  load(worker, tiny_2d_dir());
  EXPECT_EQ(worker.snapshot()->superposition->n_control, 0);
  EXPECT_TRUE(worker.snapshot()->superposition->alpha_basis.empty());
}

TEST(StudioWorkerGeneration, AlphaChangedWhileRunningAppliesFromTheNextToken) {
  // Free-running: the token the change lands before depends on timing, but
  // wherever it lands, the α recorded per token switches there and the
  // tokens equal a direct run switched at that very token.
  Worker worker;
  const auto loaded = load(worker, tiny_dir());
  const int64_t prompt = static_cast<int64_t>(tokenizer().encode(kSwitchPrompt).size());
  const int64_t n = loaded->superposition->context - prompt;
  const uint64_t id = worker.generate(kSwitchPrompt, greedy(n));
  wait_until(worker, [id](const Snapshot& x) { return x.generation.id == id && !x.generation.tokens.empty(); },
             "the first token");
  worker.set_alpha_global(1.0);
  const auto done = wait_end(worker, id);
  ASSERT_EQ(static_cast<int64_t>(done->generation.tokens.size()), n);
  EXPECT_EQ(done->generation.stop_reason, "max new tokens");
  const auto learned = learned_alpha(tiny_dir());
  int64_t switch_at = -1;
  for (int64_t i = 0; i < n; ++i) {
    const auto& alpha = done->generation.tokens[static_cast<size_t>(i)].alpha;
    if (switch_at < 0 && alpha != learned) switch_at = i;
    EXPECT_EQ(alpha, switch_at < 0 ? learned : std::vector<float>(3, 1.0f)) << "token " << i;
  }
  ASSERT_GE(switch_at, 1) << "the α change never reached the generation: it waited for the whole run";
  std::cout << "the α change applied from token " << switch_at << " of " << n << "\n";
  const auto direct = direct_greedy(load_superposition(tiny_dir()).model, kSwitchPrompt, n,
                                    [switch_at](int64_t i, SuperposedModel& m) {
                                      if (i == switch_at) m->set_alpha(1.0);
                                    });
  expect_same_run(done->generation, direct);
}

TEST(StudioWorkerGeneration, LayerAlphaAndAutoencoderSwitchesApplyFromTheNextToken) {
  constexpr int64_t kTokens = 7, kSwitch = 2;
  const auto switched = direct_greedy(load_superposition(tiny_dir()).model, kPrompt, kTokens,
                                      [](int64_t i, SuperposedModel& m) {
                                        if (i == kSwitch) {
                                          m->set_alpha_layer(1, 0.0);
                                          m->set_autoencoder_enabled(2, false);
                                        }
                                      });
  Worker worker;
  load(worker, tiny_dir());
  const uint64_t id = worker.generate(kPrompt, greedy(kTokens, kSwitch));
  wait_until(worker, [](const Snapshot& x) { return x.generation.paused; }, "the pause");
  worker.set_alpha_layer(1, 0.0);
  worker.set_autoencoder(2, false);
  worker.resume_generation();
  const auto done = wait_end(worker, id);
  expect_same_run(done->generation, switched);
  EXPECT_EQ(done->generation.tokens[kSwitch].alpha[1], 0.0f);
  EXPECT_NE(done->generation.tokens[kSwitch - 1].alpha[1], 0.0f);
}

// Each token records which expert its step's distribution is closer to: the
// same number as fine_affinity of a direct run's logits and each expert's
// logits over the whole sequence (1e-4: cached and uncached float32 passes);
// with the autoencoders off, α = 0 is the base itself (1e-3 of 0).
TEST(StudioWorkerGeneration, TokensRecordTheExpertTheirDistributionIsCloserTo) {
  c10::InferenceMode inference;
  LoadedSuperposition loaded = load_superposition(tiny_dir());
  const int64_t layers = loaded.model->n_layer();
  Worker worker;
  load(worker, tiny_dir());
  worker.set_alpha_global(0.7);
  std::vector<torch::Tensor> superposed_logits;
  const auto direct = direct_greedy(
      load_superposition(tiny_dir()).model, kPrompt, 6,
      [&](int64_t i, SuperposedModel& m) {
        if (i == 0) {
          for (int64_t l = 0; l < layers; ++l) m->set_alpha_layer(l, 0.7);
        }
      },
      {}, nullptr, &superposed_logits);
  const auto done = run_to_end(worker, kPrompt, greedy(6));
  expect_same_run(done->generation, direct);
  std::vector<int64_t> sequence = tokenizer().encode(kPrompt);
  for (size_t i = 0; i < direct.ids.size(); ++i) {
    const auto input = torch::tensor(sequence, torch::kLong).view({1, -1});
    const auto base = loaded.base.model->forward(input)[0][-1];
    const auto fine = loaded.fine.model->forward(input)[0][-1];
    EXPECT_NEAR(done->generation.tokens[i].fine_affinity, fine_affinity(superposed_logits[i], base, fine), 1e-4)
        << "token " << i;
    sequence.push_back(direct.ids[i]);
  }

  for (int64_t l = 0; l < layers; ++l) worker.set_autoencoder(l, false);
  worker.set_alpha_global(0.0);
  const auto at_base = run_to_end(worker, kPrompt, greedy(5));
  ASSERT_EQ(at_base->generation.tokens.size(), 5u);
  for (const auto& token : at_base->generation.tokens) EXPECT_NEAR(token.fine_affinity, 0.0, 1e-3);
}

TEST(StudioWorkerGeneration, StopsAndReportsErrorsAndKeepsWorking) {
  Worker worker;
  worker.set_alpha_global(0.5);  // nothing loaded yet
  auto s = wait_idle(worker);
  EXPECT_EQ(s->errors, 1u);
  EXPECT_NE(s->message.find("no superposition is loaded"), std::string::npos) << s->message;

  load(worker, tiny_dir());
  // Paused after 2 of 40 tokens, then stopped.
  worker.generate(kPrompt, greedy(40, 2));
  wait_until(worker, [](const Snapshot& x) { return x.generation.paused; }, "the pause");
  worker.stop_generation();
  s = wait_until(worker, [](const Snapshot& x) { return !x.generation.running; }, "the stop");
  EXPECT_TRUE(s->generation.cancelled);
  EXPECT_FALSE(s->generation.finished);
  EXPECT_EQ(s->generation.stop_reason, "stopped");
  EXPECT_EQ(s->generation.tokens.size(), 2u);
  EXPECT_FALSE(s->job.has_value());

  // A pause right after generate() holds it before its first token; resume runs it to the end.
  const uint64_t held = worker.generate(kPrompt, greedy(12));
  worker.pause_generation();
  s = wait_until(worker, [held](const Snapshot& x) { return x.generation.id == held && x.generation.paused; },
                 "the pause before the first token");
  EXPECT_TRUE(s->generation.tokens.empty());
  EXPECT_FALSE(s->job.has_value());
  worker.resume_generation();
  s = wait_end(worker, held);
  EXPECT_TRUE(s->generation.finished);
  EXPECT_EQ(s->generation.tokens.size(), 12u);

  // A stop right after generate() ends that generation before its first token.
  const uint64_t id = worker.generate(kPrompt, greedy(40));
  worker.stop_generation();
  s = wait_end(worker, id);
  EXPECT_TRUE(s->generation.cancelled);
  EXPECT_TRUE(s->generation.tokens.empty());

  const uint64_t errors = s->errors;
  auto expect_error = [&](const std::function<void()>& command, const std::string& text, uint64_t n) {
    command();
    const auto e = wait_idle(worker);
    EXPECT_EQ(e->errors, errors + n);
    EXPECT_NE(e->message.find(text), std::string::npos) << "message: " << e->message;
  };
  expect_error([&] { worker.set_alpha_global(1.5); }, "α value 1.5 is outside [0, 1]", 1);
  expect_error([&] { worker.set_alpha_layer(7, 0.5); }, "layer 7 is outside 0..2", 2);
  expect_error([&] { worker.set_alpha_layer(0, -0.25); }, "α value -0.25 is outside [0, 1]", 3);
  expect_error([&] { worker.set_alpha_layer_dim(0, 1, 0.5); }, "needs a 2D superposition", 4);
  expect_error([&] { worker.set_alpha_all({0.1f, 0.2f}); }, "α needs 3 values (one per layer), got 2", 5);
  expect_error([&] { worker.set_autoencoder(3, true); }, "layer 3 is outside 0..2", 6);
  expect_error([&] { worker.resume_generation(); }, "no generation in progress", 7);
  expect_error([&] { worker.load_superposition("/nonexistent/superposition", on_cpu()); },
               "/nonexistent/superposition", 8);
  s = worker.snapshot();
  EXPECT_EQ(s->status, Snapshot::Status::kFailed);
  EXPECT_FALSE(s->superposition->alpha_overridden);  // no bad value got through
  expect_error([&] {
    LoadSettings settings;
    settings.device = "tpu";
    worker.load_superposition(tiny_dir(), settings);
  }, "'tpu' is not a device", 9);
  expect_error([&] { worker.generate("", greedy(3)); }, "prompt: empty", 10);

  // The superposition loaded before the failures still works.
  worker.set_alpha_all({0.2f, 0.4f, 0.6f});
  s = run_to_end(worker, kPrompt, greedy(3));
  EXPECT_EQ(s->errors, errors + 10);
  EXPECT_TRUE(s->generation.finished);
  EXPECT_EQ(s->generation.tokens.size(), 3u);
  EXPECT_EQ(s->superposition->alpha_in_force, std::vector<float>({0.2f, 0.4f, 0.6f}));
  EXPECT_EQ(s->generation.tokens[0].alpha, std::vector<float>({0.2f, 0.4f, 0.6f}));
}

// Mean over positions of ‖a − b‖₂ for (1,T,C) states.
double mean_l2(const torch::Tensor& a, const torch::Tensor& b) {
  return (a[0].to(torch::kFloat64) - b[0].to(torch::kFloat64)).norm(2, {1}).mean().item<double>();
}

TEST(StudioWorkerAnalysis, PerLayerNumbersAndLogitLensMatchADirectComputation) {
  Worker worker;
  load(worker, tiny_dir());
  worker.analyse_sequence();
  EXPECT_NE(wait_idle(worker)->message.find("generate first"), std::string::npos);

  run_to_end(worker, kPrompt, greedy(4));
  worker.set_alpha_layer(0, 0.3);
  worker.set_autoencoder(1, false);
  worker.analyse_sequence();
  auto s = wait_until(worker, [](const Snapshot& x) { return x.analysis.has_value(); }, "the analysis");
  ASSERT_TRUE(s->analysis.has_value());
  const SequenceAnalysis& a = *s->analysis;
  const int64_t T = static_cast<int64_t>(a.ids.size());
  ASSERT_EQ(T, static_cast<int64_t>(tokenizer().encode(kPrompt).size()) + 4);
  EXPECT_EQ(a.position, T - 1);
  EXPECT_EQ(a.generation_id, s->generation.id);
  ASSERT_EQ(a.layers.size(), 3u);
  ASSERT_EQ(a.lens.size(), 4u);
  ASSERT_EQ(a.texts.size(), a.ids.size());

  // The same numbers straight from the model, its experts and StateRecorder.
  auto loaded = load_superposition(tiny_dir());
  SuperposedModel model = loaded.model;
  model->set_alpha_layer(0, 0.3);
  model->set_autoencoder_enabled(1, false);
  torch::NoGradGuard no_grad;
  const auto input = torch::tensor(a.ids, torch::kLong).view({1, -1});
  StateRecorder states({Site::kState, Site::kBlended}), base({Site::kResidual}), fine({Site::kResidual});
  const auto logits = model->forward(input, nullptr, &states);  // (1,T,V)
  loaded.base.model->forward(input, nullptr, &base);
  loaded.fine.model->forward(input, nullptr, &fine);
  const auto alpha = model->effective_alpha();
  for (int64_t l = 0; l < 3; ++l) {
    const auto& row = a.layers[static_cast<size_t>(l)];
    const auto& st = states.at(Site::kState, l + 1);
    EXPECT_NEAR(row.l2_base, mean_l2(st, base.at(Site::kResidual, l + 1)), 1e-5) << "layer " << l;
    EXPECT_NEAR(row.l2_fine, mean_l2(st, fine.at(Site::kResidual, l + 1)), 1e-5) << "layer " << l;
    EXPECT_NEAR(row.l2_base_fine, mean_l2(base.at(Site::kResidual, l + 1), fine.at(Site::kResidual, l + 1)), 1e-5);
    const double reconstruction = l == 1 ? 0.0 : mean_l2(st, states.at(Site::kBlended, l));
    EXPECT_NEAR(row.reconstruction, reconstruction, 1e-5) << "layer " << l;
    EXPECT_EQ(row.autoencoder, l != 1);
    EXPECT_FLOAT_EQ(row.alpha, alpha[l].item<float>());
    EXPECT_GT(row.l2_base, 0.0);
  }
  EXPECT_FLOAT_EQ(a.layers[0].alpha, 0.3f);
  EXPECT_GT(a.layers[0].reconstruction, 0.0);

  // The lens at the last state is the model's own next-token distribution.
  auto expect_lens_is_output = [&](const SequenceAnalysis& analysis, int64_t position) {
    const auto probs = torch::softmax(logits[0][position], 0);
    const auto top = probs.topk(kTopTokens);
    const auto& row = analysis.lens.back();
    ASSERT_EQ(row.size(), static_cast<size_t>(kTopTokens));
    for (int64_t k = 0; k < kTopTokens; ++k) {
      EXPECT_EQ(row[static_cast<size_t>(k)].id, std::get<1>(top)[k].item<int64_t>()) << "rank " << k;
      EXPECT_NEAR(row[static_cast<size_t>(k)].prob, std::get<0>(top)[k].item<float>(), 1e-5) << "rank " << k;
    }
  };
  expect_lens_is_output(a, T - 1);
  // The lens at the embeddings: base ln_f + head on state 0.
  const auto lens0 = torch::softmax(
      loaded.base.model->head(loaded.base.model->ln_f(states.at(Site::kState, 0)[0][T - 1].view({1, 1, -1})))[0][0], 0);
  EXPECT_EQ(a.lens[0][0].id, lens0.argmax().item<int64_t>());

  worker.analyse_sequence(1);
  s = wait_until(worker, [](const Snapshot& x) { return x.analysis && x.analysis->position == 1; }, "position 1");
  expect_lens_is_output(*s->analysis, 1);
  worker.analyse_sequence(T);
  s = wait_idle(worker);
  EXPECT_NE(s->message.find("position " + std::to_string(T) + " is outside the sequence"), std::string::npos)
      << s->message;
  EXPECT_EQ(s->analysis->position, 1);  // the last good analysis stays
}

TEST(StudioWorkerDevice, RunsOnCudaWhenAvailable) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only LibTorch): the CUDA path is not run";
  Worker cpu, cuda;
  load(cpu, tiny_dir());
  cuda.load_superposition(tiny_dir());  // device "auto"
  const auto loaded = wait_idle(cuda);
  ASSERT_EQ(loaded->status, Snapshot::Status::kReady) << loaded->message;
  EXPECT_EQ(loaded->superposition->device.rfind("cuda", 0), 0u) << loaded->superposition->device;
  for (Worker* w : {&cpu, &cuda}) {
    w->set_alpha_layer(1, 0.8);
    run_to_end(*w, kPrompt, greedy(1));
    w->analyse_sequence();
  }
  const auto a = wait_idle(cpu), b = wait_idle(cuda);
  ASSERT_EQ(b->generation.tokens.size(), 1u) << b->message;
  ASSERT_TRUE(b->analysis.has_value()) << b->message;
  // The same first distribution and per-layer numbers, up to GPU float rounding.
  for (size_t k = 0; k < static_cast<size_t>(kTopTokens); ++k) {
    EXPECT_NEAR(a->generation.tokens[0].top_superposed[k].prob, b->generation.tokens[0].top_superposed[k].prob, 1e-6);
    EXPECT_NEAR(a->generation.tokens[0].top_base[k].prob, b->generation.tokens[0].top_base[k].prob, 1e-6);
  }
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_NEAR(a->analysis->layers[l].l2_base, b->analysis->layers[l].l2_base, 1e-4) << "layer " << l;
    EXPECT_NEAR(a->analysis->layers[l].reconstruction, b->analysis->layers[l].reconstruction, 1e-4) << "layer " << l;
  }
}

TEST(StudioWorkerSnapshots, OldSnapshotsKeepTheirContents) {
  Worker worker;
  const auto first = load(worker, tiny_dir());
  const uint64_t version = first->version;
  const auto alpha = first->superposition->alpha_in_force;
  worker.set_alpha_global(0.25);
  const auto generated = run_to_end(worker, kPrompt, greedy(3));
  worker.analyse_sequence();
  const auto last = wait_idle(worker);
  EXPECT_GT(last->version, generated->version);
  EXPECT_GT(generated->version, version);
  EXPECT_EQ(first->version, version);
  EXPECT_EQ(first->superposition->alpha_in_force, alpha);
  EXPECT_FALSE(first->superposition->alpha_overridden);
  EXPECT_EQ(first->generation.id, 0u);
  EXPECT_TRUE(first->generation.tokens.empty());
  EXPECT_FALSE(first->analysis.has_value());
  EXPECT_FALSE(generated->analysis.has_value());
  EXPECT_EQ(generated->generation.tokens.size(), 3u);
  EXPECT_EQ(last->superposition->alpha_in_force, std::vector<float>(3, 0.25f));
}

// --- evaluation alongside α changes -------------------------------------------

namespace fs = std::filesystem;

const fs::path kValidation = fs::path(SUPERPOSE_FIXTURES).parent_path().parent_path() / "assets/data/validation.jsonl";

using superpose::testing::DataPipe;

// An evaluation reading `pipe`, one window per batch: with every document
// (max_documents 0) and 16-token windows, thousands of batches.
EvalRequest pipe_eval(const DataPipe& pipe, int64_t max_documents, int64_t seq_len = 0) {
  EvalRequest request;
  request.data = pipe.path().string();
  request.max_documents = max_documents;
  request.seq_len = seq_len;
  request.batch_size = 1;
  return request;
}

TEST(StudioWorkerEval, AlphaChangedDuringAnEvaluationAppliesToTheNextToken) {
  const auto switched = direct_greedy(load_superposition(tiny_dir()).model, kSwitchPrompt, 2,
                                      [](int64_t i, SuperposedModel& m) {
                                        if (i == 1) m->set_alpha(1.0);
                                      });
  superpose::testing::TempDir temp;
  DataPipe pipe(temp / "validation.jsonl");
  ASSERT_TRUE(pipe.ready()) << "cannot make a named pipe in " << temp.path();
  Worker worker;
  load(worker, tiny_dir());
  const uint64_t id = worker.generate(kSwitchPrompt, greedy(8, 1));
  wait_until(worker, [id](const Snapshot& x) { return x.generation.id == id && x.generation.paused; }, "the pause");

  const uint64_t eval = worker.run_eval(pipe_eval(pipe, 0, 16));
  worker.set_alpha_global(1.0);
  worker.resume_generation(1);
  ASSERT_TRUE(pipe.feed(read_file(kValidation)));

  // The α change and the step were queued ahead of the first batch, so they
  // run between the first batches. Invariant: the first snapshot holding the
  // new token shows the evaluation still running, batches left to do.
  const auto s = wait_until(
      worker,
      [&](const Snapshot& x) {
        const bool eval_ended = x.eval && x.eval->id == eval && !x.eval->running && x.eval->batches > 0;
        return x.generation.tokens.size() == 2 || eval_ended || x.errors > 0;
      },
      "the second token");
  ASSERT_EQ(s->errors, 0u) << s->message;
  ASSERT_EQ(s->generation.tokens.size(), 2u) << "the evaluation ended before the step ran";
  ASSERT_TRUE(s->eval.has_value());
  EXPECT_EQ(s->eval->id, eval);
  EXPECT_TRUE(s->eval->running) << "the step waited for the whole evaluation";
  EXPECT_FALSE(s->eval->finished);
  EXPECT_GE(s->eval->batches_done, 1);
  EXPECT_LT(s->eval->batches_done, s->eval->batches);
  std::cout << "the step ran after batch " << s->eval->batches_done << " of " << s->eval->batches << "\n";
  // The new α from the very next token on, equal to a direct run switched there.
  EXPECT_EQ(s->generation.tokens[0].alpha, learned_alpha(tiny_dir()));
  EXPECT_EQ(s->generation.tokens[1].alpha, std::vector<float>(3, 1.0f));
  expect_same_run(s->generation, switched);

  worker.cancel_eval();
  const auto done = wait_until(
      worker, [&](const Snapshot& x) { return x.eval && x.eval->id == eval && !x.eval->running; }, "the cancel");
  EXPECT_TRUE(done->eval->cancelled);
  EXPECT_FALSE(done->job.has_value());
  EXPECT_EQ(done->errors, 0u) << done->message;
}

TEST(StudioWorkerEval, ALoadQueuedDuringAnEvaluationEndsItAfterItsBatch) {
  superpose::testing::TempDir temp;
  DataPipe pipe(temp / "validation.jsonl");
  ASSERT_TRUE(pipe.ready()) << "cannot make a named pipe in " << temp.path();
  const std::string other = superpose::testing::save_tiny_superposition(temp / "other");
  Worker worker;
  load(worker, tiny_dir());
  const uint64_t eval = worker.run_eval(pipe_eval(pipe, 0, 16));
  LoadSettings settings;
  settings.device = "cpu";
  worker.load_superposition(other, settings);  // queued ahead of the first batch
  ASSERT_TRUE(pipe.feed(read_file(kValidation)));
  const auto s = wait_until(
      worker,
      [&](const Snapshot& x) {
        return x.errors > 0 || (x.superposition && x.superposition->dir == other && x.status == Snapshot::Status::kReady &&
                                x.eval && x.eval->id == eval && !x.eval->running);
      },
      "the load");
  ASSERT_EQ(s->errors, 0u) << s->message;
  // The evaluation ended after its first batch, cancelled, without results.
  EXPECT_TRUE(s->eval->cancelled);
  EXPECT_FALSE(s->eval->finished);
  EXPECT_EQ(s->eval->batches_done, 1);
  EXPECT_GT(s->eval->batches, 1);
  EXPECT_TRUE(s->eval->rows.empty());
  EXPECT_FALSE(s->job.has_value());
}

TEST(StudioWorkerEval, EvaluationKeepsItsSwitchesWhileCommandsRunBetweenItsBatches) {
  constexpr int64_t kTokens = 3;
  // The commands below, applied before the first token of a direct run.
  const auto steered = direct_greedy(load_superposition(tiny_dir()).model, kPrompt, kTokens,
                                     [](int64_t i, SuperposedModel& m) {
                                       if (i == 0) {
                                         m->set_autoencoder_enabled(1, false);
                                         m->set_alpha(0.9);
                                       }
                                     });
  superpose::testing::TempDir temp;
  DataPipe pipe(temp / "validation.jsonl");
  ASSERT_TRUE(pipe.ready()) << "cannot make a named pipe in " << temp.path();
  Worker worker;
  load(worker, tiny_dir());
  EvalRequest request = pipe_eval(pipe, 1);
  request.models = "superposition";  // the model the switches change
  const uint64_t eval = worker.run_eval(request);
  worker.set_autoencoder(1, false);
  worker.set_alpha_global(0.9);
  const uint64_t id = worker.generate(kPrompt, greedy(kTokens));
  ASSERT_TRUE(pipe.feed(read_file(kValidation)));
  const auto s = wait_until(
      worker,
      [&](const Snapshot& x) {
        return x.errors > 0 || (x.eval && x.eval->id == eval && x.eval->finished && x.generation.id == id &&
                                !x.generation.running);
      },
      "the evaluation and the generation");
  ASSERT_EQ(s->errors, 0u) << s->message;
  EXPECT_FALSE(s->job.has_value());
  // The user's changes hold afterwards and steered the generation.
  EXPECT_EQ(s->superposition->autoencoder_enabled, std::vector<bool>({true, false, true}));
  EXPECT_EQ(s->superposition->alpha_in_force, std::vector<float>(3, 0.9f));
  expect_same_run(s->generation, steered);

  // The evaluation ran with the switches it started with (every autoencoder
  // on): equal to analysis evaluate() on the checkpoint as saved.
  LoadedSuperposition loaded = load_superposition(tiny_dir(), std::nullopt, std::nullopt, torch::kCPU, torch::kFloat32);
  const Tokenizer reference_tokenizer = Tokenizer::from_dir(resolve_tokenizer_dir(std::nullopt, loaded.base.files.dir));
  EvalOptions options;
  options.max_documents = 1;
  options.seq_len = 64;  // min(128, the tiny models' context)
  options.batch_size = 1;
  options.models = parse_eval_models(request.models, true);
  const EvalReport report =
      evaluate(loaded.base, loaded.fine, loaded.model, read_jsonl(kValidation), reference_tokenizer, options);
  const EvalResults& results = *s->eval;
  EXPECT_GE(results.batches, 2);  // commands ran between batches, not only before the first
  EXPECT_EQ(results.batches_done, results.batches);
  ASSERT_EQ(results.rows.size(), report.rows.size());
  // The same operations on the same CPU in float64: equal up to rounding, 1e-9 relative.
  auto close = [](double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b));
  };
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const EvalResultRow& a = results.rows[i];
    const EvalRow& b = report.rows[i];
    EXPECT_EQ(a.model + "/" + a.domain, b.model + "/" + b.domain);
    EXPECT_TRUE(close(a.ppl, b.ppl)) << b.model << "/" << b.domain << " ppl: got " << a.ppl << ", expected " << b.ppl;
    EXPECT_TRUE(close(a.mse, b.mse)) << b.model << "/" << b.domain << " mse: got " << a.mse << ", expected " << b.mse;
    EXPECT_TRUE(close(a.jsd, b.jsd)) << b.model << "/" << b.domain << " jsd: got " << a.jsd << ", expected " << b.jsd;
  }
}

// --- importing notebook checkpoints -------------------------------------------

const fs::path kSeeds = fs::path(SUPERPOSE_FIXTURES) / "superposition";

ImportRequest import_request(const fs::path& checkpoint, const fs::path& out_root) {
  ImportRequest r;
  r.checkpoint = checkpoint;
  r.base = superpose::testing::kTinyBase;
  r.fine = superpose::testing::kTinyFine;
  r.out_root = out_root;
  r.load = on_cpu();
  return r;
}

std::shared_ptr<const Snapshot> wait_import(Worker& worker, uint64_t id) {
  wait_until(worker, [id](const Snapshot& x) { return x.import && x.import->id == id && !x.import->running; },
             "import " + std::to_string(id));
  return wait_idle(worker);
}

// Every name in `dir`, hidden ones too, sorted.
std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<float> floats(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(StudioWorkerImport, ImportsANotebookCheckpointAndLoadsIt) {
  superpose::testing::TempDir temp;
  const fs::path root = temp / "cache" / "imported";  // two folders that do not exist yet
  Worker worker;
  const uint64_t id = worker.import_seed(import_request(kSeeds / "seed_1d.pt", root));
  auto s = wait_import(worker, id);
  ASSERT_TRUE(s->import->finished) << s->import->message;
  EXPECT_FALSE(s->import->failed);
  EXPECT_EQ(s->import->out_dir, (root / "seed_1d").string());
  EXPECT_EQ(s->import->checkpoint, (kSeeds / "seed_1d.pt").string());
  EXPECT_EQ(s->errors, 0u) << s->message;
  ASSERT_EQ(s->status, Snapshot::Status::kReady) << s->message;
  ASSERT_TRUE(s->superposition.has_value());
  EXPECT_EQ(s->superposition->dir, s->import->out_dir);
  EXPECT_TRUE(fs::exists(root / "seed_1d" / "superposition.json"));

  // The reference: the library's import over the same experts, in memory.
  auto pair = load_experts(superpose::testing::kTinyBase, superpose::testing::kTinyFine, torch::kCPU, torch::kFloat32);
  SuperposedModel reference =
      superposition_from_seed(read_seed_checkpoint(kSeeds / "seed_1d.pt"), pair.first.model, pair.second.model, {});
  reference->eval();
  const SuperpositionInfo& info = *s->superposition;
  EXPECT_EQ(info.variant, "1d");
  EXPECT_FALSE(info.causal);  // the notebooks' centered convolution
  EXPECT_EQ(info.convolution, "centered");
  {
    c10::InferenceMode inference;
    EXPECT_EQ(info.alpha_learned, floats(reference->learned_alpha()));  // float32 written and read back exactly
  }
  for (int64_t l = 0; l < 3; ++l) {
    EXPECT_EQ(info.has_autoencoder[static_cast<size_t>(l)], reference->has_autoencoder(l)) << "layer " << l;
  }
  // It generates as the library's import does.
  const auto direct = direct_greedy(reference, kPrompt, 3);
  expect_same_run(run_to_end(worker, kPrompt, greedy(3))->generation, direct);

  // The same file again replaces the folder whole: nothing of the earlier
  // one stays, nothing is left beside it.
  write_file_atomic(root / "seed_1d" / "earlier.txt", "written into the earlier import");
  const uint64_t again = worker.import_seed(import_request(kSeeds / "seed_1d.pt", root));
  s = wait_import(worker, again);
  ASSERT_TRUE(s->import->finished) << s->import->message;
  EXPECT_EQ(s->import->out_dir, (root / "seed_1d").string());
  EXPECT_EQ(s->superposition->dir, s->import->out_dir);
  EXPECT_EQ(names_in(root), std::vector<std::string>{"seed_1d"});
  EXPECT_EQ(names_in(root / "seed_1d"), (std::vector<std::string>{"superposition.json", "superposition.safetensors"}));

  // An import whose load fails puts the earlier folder back.
  write_file_atomic(root / "seed_1d" / "earlier.txt", "written into the earlier import");
  ImportRequest unloadable = import_request(kSeeds / "seed_1d.pt", root);
  unloadable.load.device = "abacus";
  s = wait_import(worker, worker.import_seed(unloadable));
  EXPECT_TRUE(s->import->failed);
  EXPECT_NE(s->import->message.find("abacus"), std::string::npos) << s->import->message;
  EXPECT_EQ(s->superposition->dir, (root / "seed_1d").string());  // the one loaded before
  EXPECT_EQ(names_in(root), std::vector<std::string>{"seed_1d"});
  EXPECT_EQ(read_file(root / "seed_1d" / "earlier.txt"), "written into the earlier import");
}

// The import stages in order, as ImportRequest::progress sees them.
const std::vector<std::string> kImportStages = {"reading the checkpoint", "loading the experts",
                                                "building the superposition", "writing", "loading"};

TEST(StudioWorkerImport, ACancelledImportWritesNothingAndKeepsTheLoadedSuperposition) {
  superpose::testing::TempDir temp;
  const fs::path root = temp / "imported";
  Worker worker;
  auto s = wait_import(worker, worker.import_seed(import_request(kSeeds / "seed_1d.pt", root)));
  ASSERT_TRUE(s->import->finished) << s->import->message;
  write_file_atomic(root / "seed_1d" / "earlier.txt", "written into the earlier import");
  write_file_atomic(temp / "other.pt", read_file(kSeeds / "seed_1d.pt"));
  const uint64_t errors = s->errors;

  // Cancelled as each stage is about to begin, by the request's callback
  // (saying no, or pressing the status bar's Cancel): a same-named import and
  // a new one, so that both a replacement and a new folder are undone.
  for (const char* file : {"seed_1d.pt", "other.pt"}) {
    for (size_t stop = 0; stop < kImportStages.size(); ++stop) {
      for (const bool by_cancel_jobs : {false, true}) {
        const fs::path checkpoint = std::string(file) == "other.pt" ? temp / file : kSeeds / file;
        SCOPED_TRACE(checkpoint.string() + " cancelled at " + kImportStages[stop] +
                     (by_cancel_jobs ? " by cancel_jobs()" : " by the callback"));
        std::vector<std::string> seen;
        ImportRequest request = import_request(checkpoint, root);
        request.progress = [&](const std::string& stage, double) {
          seen.push_back(stage);
          if (stage != kImportStages[stop]) return true;
          if (!by_cancel_jobs) return false;
          worker.cancel_jobs();  // on the worker thread: a ticket, as from the UI
          return true;
        };
        s = wait_import(worker, worker.import_seed(request));
        EXPECT_TRUE(s->import->cancelled);
        EXPECT_FALSE(s->import->finished);
        EXPECT_FALSE(s->import->failed);
        EXPECT_EQ(seen, std::vector<std::string>(kImportStages.begin(), kImportStages.begin() + stop + 1));
        EXPECT_EQ(s->errors, errors) << s->message;  // a cancel is no error
        EXPECT_FALSE(s->job.has_value());
        EXPECT_EQ(s->status, Snapshot::Status::kReady);
        EXPECT_EQ(s->superposition->dir, (root / "seed_1d").string());
        EXPECT_EQ(names_in(root), std::vector<std::string>{"seed_1d"});
        EXPECT_EQ(read_file(root / "seed_1d" / "earlier.txt"), "written into the earlier import");
      }
    }
  }

  // The cancel ticket covers the imports started before it, not later ones.
  s = wait_import(worker, worker.import_seed(import_request(temp / "other.pt", root)));
  EXPECT_TRUE(s->import->finished) << s->import->message;
  EXPECT_EQ(s->superposition->dir, (root / "other").string());
  EXPECT_EQ(names_in(root), (std::vector<std::string>{"other", "seed_1d"}));
}

// Sets a folder's modification time to `seconds` after the epoch.
void set_modified(const fs::path& dir, time_t seconds) {
  const timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir.c_str(), times, 0), 0) << dir;
}

time_t modified(const fs::path& dir) {
  struct stat st {};
  EXPECT_EQ(::stat(dir.c_str(), &st), 0) << dir;
  return st.st_mtim.tv_sec;
}

// $XDG_CACHE_HOME for one test (set before its worker starts, unset after it ends).
class CacheHome {
 public:
  explicit CacheHome(const fs::path& dir) { ::setenv("XDG_CACHE_HOME", dir.c_str(), 1); }
  ~CacheHome() { ::unsetenv("XDG_CACHE_HOME"); }
};

TEST(StudioWorkerImport, FinishedImportsTrimTheCacheToTheMostRecentlyUsed) {
  superpose::testing::TempDir temp;
  const CacheHome cache(temp / "cache");
  const fs::path root = import_cache_root();
  ASSERT_EQ(root, temp / "cache" / "superpose-studio" / "imported");
  Worker worker;
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    write_file_atomic(temp / (std::string(name) + ".pt"), read_file(kSeeds / "seed_1d.pt"));
  }
  auto import = [&](const char* name, size_t keep) {
    ImportRequest request = import_request(temp / (std::string(name) + ".pt"), root);
    request.keep = keep;
    const auto s = wait_import(worker, worker.import_seed(request));
    EXPECT_TRUE(s->import->finished) << s->import->message;
    return s;
  };
  for (const char* name : {"a", "b", "c"}) import(name, 0);  // 0: keep every import
  // What is not an import stays whatever its age.
  temp.make_dir("cache/superpose-studio/imported/scratch");
  temp.make_dir("cache/superpose-studio/imported/.hidden");
  write_file_atomic(root / "notes.txt", "not an import");
  for (const char* name : {"scratch", ".hidden", "notes.txt"}) set_modified(root / name, 1000000000);
  // Used in the order a, b, c (2001); then `a` is loaded again, which counts as a use.
  set_modified(root / "a", 1000000001);
  set_modified(root / "b", 1000000002);
  set_modified(root / "c", 1000000003);
  const auto reloaded = load(worker, (root / "a").string());
  ASSERT_EQ(reloaded->superposition->dir, (root / "a").string()) << reloaded->message;
  EXPECT_GT(modified(root / "a"), 1000000003);
  EXPECT_EQ(modified(root / "b"), 1000000002);  // a load elsewhere touches nothing

  // Three kept: d (just imported), then a and c; b was used longest ago.
  import("d", 3);
  EXPECT_EQ(names_in(root), (std::vector<std::string>{".hidden", "a", "c", "d", "notes.txt", "scratch"}));

  // The import just made (and loaded) stays even where the others look newer.
  set_modified(root / "a", 4000000001);
  set_modified(root / "c", 4000000002);
  set_modified(root / "d", 4000000003);
  const auto s = import("e", 2);
  EXPECT_EQ(s->superposition->dir, (root / "e").string());
  EXPECT_EQ(names_in(root), (std::vector<std::string>{".hidden", "d", "e", "notes.txt", "scratch"}));
}

TEST(StudioWorkerImport, BadCheckpointsAreOneLineErrorsNamingTheFile) {
  superpose::testing::TempDir temp;
  const fs::path root = temp / "imported";
  write_file_atomic(temp / "notes.pt", "not a checkpoint");
  const auto tensor_bytes = torch::pickle_save(torch::ones({3}));
  write_file_atomic(temp / "tensor.pt", std::string(tensor_bytes.begin(), tensor_bytes.end()));
  write_file_atomic(temp / "file", "a file where a folder should be");
  Worker worker;
  load(worker, tiny_dir());
  uint64_t errors = worker.snapshot()->errors;
  auto expect_failure = [&](ImportRequest request, const std::vector<std::string>& parts) {
    const std::string file = request.checkpoint.string();
    const auto s = wait_import(worker, worker.import_seed(request));
    SCOPED_TRACE(file);
    EXPECT_TRUE(s->import->failed);
    EXPECT_FALSE(s->import->finished);
    EXPECT_EQ(s->errors, ++errors);
    EXPECT_EQ(s->message, s->import->message);
    EXPECT_EQ(s->message.find('\n'), std::string::npos) << s->message;
    EXPECT_NE(s->message.find(file), std::string::npos) << "the message does not name the file: " << s->message;
    for (const auto& part : parts) EXPECT_NE(s->message.find(part), std::string::npos) << s->message;
    EXPECT_FALSE(s->job.has_value());
    // The superposition loaded before stays, and nothing was written.
    EXPECT_EQ(s->status, Snapshot::Status::kReady);
    EXPECT_EQ(s->superposition->dir, tiny_dir());
    EXPECT_FALSE(fs::exists(root / request.checkpoint.stem()));
  };
  expect_failure(import_request(temp / "missing.pt", root), {"cannot open"});
  expect_failure(import_request(temp / "notes.pt", root), {"not a torch.save archive"});
  expect_failure(import_request(temp / "tensor.pt", root), {"expected a dict"});
  // Experts of another shape: 2 layers where the checkpoint has 3.
  ImportRequest other = import_request(kSeeds / "seed_1d.pt", root);
  other.base = other.fine = fs::path(SUPERPOSE_FIXTURES) / "gpt2-tiny-bf16";
  expect_failure(other, {"3 layers", "2 layers"});
  // A destination that cannot be made.
  expect_failure(import_request(kSeeds / "seed_1d.pt", temp / "file" / "imported"), {"cannot create the folder"});

  // The worker keeps working on the superposition it had.
  const auto g = run_to_end(worker, kPrompt, greedy(2));
  EXPECT_EQ(g->generation.tokens.size(), 2u);
  EXPECT_EQ(g->errors, errors);
}

// --- device memory ----------------------------------------------------------------

TEST(StudioWorkerDevice, CudaMemoryStaysFlatOverThousandsOfAlphaChanges) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a CPU-only LibTorch): the CUDA path is not run";
  const torch::Device cuda(torch::kCUDA, 0);
  if (!memory_use(cuda).device_known) GTEST_SKIP() << "this build cannot read the caching allocator's statistics";
  // Each generation: 20 tokens, one α change before each. The two
  // measurements come at the same point of a generation (the 20th token of
  // the 5th and of the 100th), when the worker holds the same tensors.
  constexpr int kChanges = 2000, kFirst = 100, kTokensPerGeneration = 20;
  // Tolerance: the same tensors should give the same bytes; 64 KiB admits
  // one-off allocations (library workspaces made on first use), and is a
  // fifteenth of what one leaked 512-byte block per change would add over
  // the 1900 changes between the measurements.
  constexpr int64_t kToleranceBytes = 64 * 1024;
  Worker worker;
  worker.load_superposition(tiny_dir());  // "auto": CUDA
  const auto loaded = wait_idle(worker);
  ASSERT_EQ(loaded->status, Snapshot::Status::kReady) << loaded->message;
  ASSERT_EQ(loaded->superposition->device.rfind("cuda", 0), 0u) << loaded->superposition->device;
  int64_t after_first = -1;
  std::vector<float> last_alpha;
  for (int i = 0; i < kChanges; ++i) {
    // Global, one-layer and whole-α edits in turn.
    const float value = static_cast<float>(i % 11) / 10.0f;
    switch (i % 3) {
      case 0: worker.set_alpha_global(value); last_alpha.assign(3, value); break;
      case 1: worker.set_alpha_layer((i / 3) % 3, value); last_alpha[static_cast<size_t>((i / 3) % 3)] = value; break;
      default: last_alpha = {value, 1.0f - value, value}; worker.set_alpha_all(last_alpha); break;
    }
    if (i % kTokensPerGeneration == 0) {
      worker.generate(kPrompt, greedy(kTokensPerGeneration, 1));
    } else {
      worker.resume_generation(1);
    }
    // One token, then the generation pauses (or ends with its last): the
    // next change lands before the next token.
    const auto s = wait_idle(worker);
    ASSERT_EQ(s->errors, 0u) << "change " << i << ": " << s->message;
    ASSERT_EQ(s->generation.tokens.size(), static_cast<size_t>(i % kTokensPerGeneration + 1)) << "change " << i;
    ASSERT_EQ(s->generation.tokens.back().alpha, last_alpha) << "change " << i;
    if (i + 1 == kFirst) after_first = memory_use(cuda).device_allocated;
  }
  const auto s = wait_idle(worker);
  EXPECT_EQ(s->generation.tokens.size(), static_cast<size_t>(kTokensPerGeneration));
  EXPECT_TRUE(s->generation.finished);
  const int64_t after_all = memory_use(cuda).device_allocated;
  std::cout << "CUDA allocated bytes after " << kFirst << " α changes: " << after_first << ", after " << kChanges
            << ": " << after_all << "\n";
  EXPECT_LE(std::abs(after_all - after_first), kToleranceBytes)
      << "allocated bytes went from " << after_first << " to " << after_all;
}

}  // namespace
}  // namespace superpose::studio
