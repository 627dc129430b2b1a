// GPT-2 against HF transformers' outputs (fixtures from make_reference.py), loading rules and the KV cache.
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/generate.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
constexpr double kF32Tolerance = 1e-4;  // HF eager attention vs ours, both F32

nlohmann::json reference_json() {
  std::ifstream in(kFixtures / "reference/reference.json");
  return nlohmann::json::parse(in);
}

// Keeps the residual stream, as trace does.
class ResidualRecorder : public ForwardObserver {
 public:
  bool wants(Site site, int64_t) const override { return site == Site::kResidual; }
  void observe(Site, int64_t index, const torch::Tensor& value) override { states[index] = value.clone(); }
  std::map<int64_t, torch::Tensor> states;
};

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong).view({1, -1}); }

void expect_matches_reference(GPT2& model, const std::vector<int64_t>& ids, const fs::path& reference) {
  const SafetensorsFile expected(reference);
  ResidualRecorder recorder;
  torch::NoGradGuard no_grad;
  auto logits = model->forward(ids_tensor(ids), nullptr, &recorder);  // (1,T,V)
  EXPECT_TRUE(torch::equal(expected.load("token_ids"), torch::tensor(ids, torch::kLong)));
  EXPECT_TRUE(all_close(logits[0], expected.load("logits"), kF32Tolerance)) << reference << " logits";
  for (int64_t i = 0; i <= model->config().n_layer; ++i) {
    EXPECT_TRUE(all_close(recorder.states.at(i)[0], expected.load("hidden." + std::to_string(i)), kF32Tolerance))
        << reference << " hidden." << i;
  }
}

TEST(Gpt2Parity, TinyModelMatchesTransformersOnEveryPrompt) {
  auto loaded = load_model(kFixtures / "gpt2-tiny");
  const auto ref = reference_json();
  ASSERT_EQ(ref["prompts"].size(), 3u);
  for (const auto& prompt : ref["prompts"]) {
    expect_matches_reference(loaded.model, prompt["ids"].get<std::vector<int64_t>>(),
                             kFixtures / "reference" / prompt["file"].get<std::string>());
  }
}

TEST(Gpt2Parity, Bf16HeadlessModelWithOldBuffersAndLayerScaling) {
  // No "transformer." prefix, attn.bias / masked_bias present, exact gelu,
  // scale_attn_by_inverse_layer_idx, eps 1e-6, BF16 weights computed in F32.
  auto loaded = load_model(kFixtures / "gpt2-tiny-bf16");
  EXPECT_TRUE(loaded.config.scale_attn_by_inverse_layer_idx);
  EXPECT_EQ(loaded.config.activation_function, "gelu");
  expect_matches_reference(loaded.model, reference_json()["bf16_ids"].get<std::vector<int64_t>>(),
                           kFixtures / "reference/tiny_bf16.safetensors");
}

TEST(Gpt2Parity, GreedyGenerationMatchesTransformers) {
  auto loaded = load_model(kFixtures / "gpt2-tiny");
  const auto greedy = reference_json()["greedy"];
  GenerateOptions options;
  options.max_new_tokens = static_cast<int64_t>(greedy["new_ids"].size());
  Sampler sampler(SamplingOptions{0.0, 0, 1.0, 0});
  const auto result = generate(loaded.model, greedy["prompt_ids"].get<std::vector<int64_t>>(), options, sampler);
  EXPECT_EQ(result.tokens, greedy["new_ids"].get<std::vector<int64_t>>());
}

TEST(Gpt2Cache, IncrementalLogitsEqualFullRecomputation) {
  auto loaded = load_model(kFixtures / "gpt2-tiny");
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> ids = {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};
  auto full = loaded.model->forward(ids_tensor(ids));  // (1,10,V)
  KVCache cache = loaded.model->make_cache();
  // Prefill 4, then chunks of 1, 3 and 2 positions.
  std::vector<torch::Tensor> pieces;
  size_t start = 0;
  for (size_t chunk : {4, 1, 3, 2}) {
    std::vector<int64_t> part(ids.begin() + start, ids.begin() + start + chunk);
    pieces.push_back(loaded.model->forward(ids_tensor(part), &cache));
    start += chunk;
  }
  EXPECT_EQ(cache.length(), 10);
  EXPECT_TRUE(all_close(torch::cat(pieces, 1), full, 1e-5));
}

TEST(Gpt2Cache, CachedSamplingGivesTheSameTokensAsRecomputation) {
  auto loaded = load_model(kFixtures / "gpt2-tiny");
  for (uint64_t seed : {1u, 2u, 3u}) {
    GenerateOptions options;
    options.max_new_tokens = 20;
    SamplingOptions sampling{0.9, 50, 0.95, seed};
    Sampler cached_sampler(sampling), full_sampler(sampling);
    const std::vector<int64_t> prompt = {464, 2068, 7586};
    const auto cached = generate(loaded.model, prompt, options, cached_sampler);
    options.use_cache = false;
    const auto full = generate(loaded.model, prompt, options, full_sampler);
    EXPECT_EQ(cached.tokens, full.tokens) << "seed " << seed;
    EXPECT_EQ(cached.tokens.size(), 20u);
  }
}

TEST(Gpt2Generate, StopsAtTheContextAndRefusesLongOrEmptyPrompts) {
  auto loaded = load_model(kFixtures / "gpt2-tiny");  // 64 positions
  Sampler sampler(SamplingOptions{0.0, 0, 1.0, 0});
  GenerateOptions options;
  options.max_new_tokens = 100;
  const auto result = generate(loaded.model, std::vector<int64_t>(60, 13), options, sampler);
  EXPECT_EQ(result.reason, StopReason::kContextFull);
  EXPECT_EQ(result.tokens.size(), 4u);
  SUPERPOSE_EXPECT_THROW_WITH(generate(loaded.model, std::vector<int64_t>(65, 13), options, sampler), Error,
                              "65 tokens exceed the model's context of 64");
  SUPERPOSE_EXPECT_THROW_WITH(generate(loaded.model, {}, options, sampler), Error, "empty");
}

TEST(Gpt2Loading, ParameterTableEqualsTheModule) {
  for (bool tied : {true, false}) {
    GPT2Config config;
    config.n_layer = 2;
    config.n_embd = 12;
    config.n_head = 3;
    config.vocab_size = 50;
    config.n_positions = 16;
    config.tie_word_embeddings = tied;
    GPT2 model(config);
    std::map<std::string, std::vector<int64_t>> from_module;
    for (const auto& p : model->named_parameters()) from_module[p.key()] = p.value().sizes().vec();
    EXPECT_EQ(from_module, gpt2_parameter_shapes(config));
  }
}

// Rewrites the tiny model's weights with one change and loads the result.
class Gpt2BadWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    testing::copy_file(kFixtures / "gpt2-tiny/config.json", dir_ / "config.json");
    const SafetensorsFile original(kFixtures / "gpt2-tiny/model.safetensors");
    for (const auto& info : original.tensors()) tensors_.emplace_back(info.name, original.load(info.name));
  }
  void write() { save_safetensors(dir_ / "model.safetensors", tensors_); }
  std::string name_of(const std::string& suffix) {
    for (const auto& [name, t] : tensors_) {
      if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return name;
    }
    ADD_FAILURE() << "no tensor ending in " << suffix;
    return {};
  }
  testing::TempDir temp_;
  fs::path dir_;
  std::vector<std::pair<std::string, torch::Tensor>> tensors_;
};

TEST_F(Gpt2BadWeights, MissingTensorIsNamed) {
  const auto name = name_of("h.1.mlp.c_fc.bias");
  tensors_.erase(std::find_if(tensors_.begin(), tensors_.end(), [&](const auto& t) { return t.first == name; }));
  write();
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir_), Error, "model.safetensors", "missing tensor 'h.1.mlp.c_fc.bias'",
                              "[52]");
}

TEST_F(Gpt2BadWeights, WrongShapeSaysExpectedAndGot) {
  for (auto& [name, t] : tensors_) {
    if (name == name_of("h.0.attn.c_attn.weight")) t = t.t().contiguous();
  }
  write();
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir_), Error, "h.0.attn.c_attn.weight", "expected shape [20, 60]",
                              "got [60, 20]");
}

TEST_F(Gpt2BadWeights, UnexpectedAndDuplicatedTensorsAreRefused) {
  tensors_.emplace_back("h.7.mlp.c_fc.bias", torch::zeros({52}));
  write();
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir_), Error, "unexpected tensor 'h.7.mlp.c_fc.bias'");
  tensors_.pop_back();
  const auto name = name_of("ln_f.bias");
  const std::string other = name.rfind("transformer.", 0) == 0 ? name.substr(12) : "transformer." + name;
  tensors_.emplace_back(other, torch::zeros({20}));
  write();
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir_), Error, "'ln_f.bias' appears twice");
}

TEST(Gpt2Loading, DirectoryProblemsAreNamed) {
  testing::TempDir temp;
  SUPERPOSE_EXPECT_THROW_WITH(load_model(temp / "absent"), Error, "absent", "no such directory");
  const fs::path dir = temp.path();
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir), Error, "no config.json");
  testing::copy_file(kFixtures / "gpt2-tiny/config.json", dir / "config.json");
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir), Error, "no model.safetensors");
  std::ofstream(dir / "pytorch_model.bin") << "x";
  SUPERPOSE_EXPECT_THROW_WITH(load_model(dir), Error, "pytorch_model.bin");
}

}  // namespace
}  // namespace superpose
