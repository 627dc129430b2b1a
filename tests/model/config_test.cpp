// config.json parsing: HF defaults, flags, and every malformed case named.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/sampling.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

GPT2Config parse(const std::string& text) { return parse_gpt2_config(nlohmann::json::parse(text), "config.json"); }

TEST(Config, DefaultsAreHuggingFaceDefaults) {
  const auto c = parse(R"({"model_type": "gpt2"})");
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.mlp_width(), 3072);
  EXPECT_DOUBLE_EQ(c.layer_norm_epsilon, 1e-5);
  EXPECT_EQ(c.activation_function, "gelu_new");
  EXPECT_TRUE(c.scale_attn_weights);
  EXPECT_FALSE(c.scale_attn_by_inverse_layer_idx);
}

TEST(Config, ReadsEveryField) {
  const auto c = parse(R"({"model_type": "gpt2", "n_layer": 3, "n_head": 5, "n_embd": 20, "n_inner": 52,
      "n_positions": 64, "vocab_size": 300, "layer_norm_epsilon": 1e-6, "activation_function": "gelu",
      "scale_attn_weights": false, "scale_attn_by_inverse_layer_idx": true, "tie_word_embeddings": false})");
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.head_dim(), 4);
  EXPECT_EQ(c.mlp_width(), 52);
  EXPECT_EQ(c.n_positions, 64);
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_DOUBLE_EQ(c.layer_norm_epsilon, 1e-6);
  EXPECT_FALSE(c.scale_attn_weights);
  EXPECT_TRUE(c.scale_attn_by_inverse_layer_idx);
  EXPECT_FALSE(c.tie_word_embeddings);
  // Round trip through to_json.
  const auto again = parse_gpt2_config(to_json(c), "again");
  EXPECT_EQ(again.mlp_width(), 52);
  EXPECT_TRUE(again.scale_attn_by_inverse_layer_idx);
}

TEST(Config, MalformedConfigsAreNamed) {
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "llama"})"), Error, "config.json", "\"llama\" is not supported");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"n_layer": 2})"), Error, "config.json", "model_type");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"([1, 2])"), Error, "expected a JSON object");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "n_layer": -1})"), Error, "'n_layer' must be a positive");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "n_head": "12"})"), Error, "'n_head'");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "n_embd": 10, "n_head": 3})"), Error,
                              "not divisible by n_head 3");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "activation_function": "swish"})"), Error,
                              "\"swish\" is not supported");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "layer_norm_epsilon": 0})"), Error,
                              "layer_norm_epsilon");
  SUPERPOSE_EXPECT_THROW_WITH(parse(R"({"model_type": "gpt2", "scale_attn_weights": 1})"), Error,
                              "scale_attn_weights");
}

TEST(Config, FileProblemsNameTheFile) {
  testing::TempDir temp;
  const auto path = temp / "config.json";
  std::ofstream(path) << "{\"model_type\": \"gpt2\", ";  // truncated
  SUPERPOSE_EXPECT_THROW_WITH(load_gpt2_config(path), Error, path.string(), "malformed JSON");
  ::unlink(path.c_str());
  SUPERPOSE_EXPECT_THROW_WITH(load_gpt2_config(path), Error, path.string(), "cannot open");
}

TEST(Device, BadDevicesAndDtypesAreRefusedWithTheOptionName) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  SUPERPOSE_EXPECT_THROW_WITH(parse_device("tpu"), Error, "--device", "'tpu' is not a device");
  SUPERPOSE_EXPECT_THROW_WITH(parse_device("cuda:x"), Error, "--device");
  if (!torch::cuda::is_available()) {
    SUPERPOSE_EXPECT_THROW_WITH(parse_device("cuda"), Error, "--device", "CUDA", "not available");
  }
  EXPECT_EQ(parse_dtype("f32", torch::kCPU), torch::kFloat32);
  SUPERPOSE_EXPECT_THROW_WITH(parse_dtype("bf16", torch::kCPU), Error, "--dtype", "CUDA only");
  SUPERPOSE_EXPECT_THROW_WITH(parse_dtype("int4", torch::kCPU), Error, "--dtype", "'int4'");
}

TEST(Sampling, OptionsOutOfRangeAreRefused) {
  SUPERPOSE_EXPECT_THROW_WITH(validate(SamplingOptions{-1.0, 0, 1.0, 0}), Error, "--temperature");
  SUPERPOSE_EXPECT_THROW_WITH(validate(SamplingOptions{1.0, -3, 1.0, 0}), Error, "--top-k");
  SUPERPOSE_EXPECT_THROW_WITH(validate(SamplingOptions{1.0, 0, 0.0, 0}), Error, "--top-p");
  SUPERPOSE_EXPECT_THROW_WITH(validate(SamplingOptions{1.0, 0, 1.5, 0}), Error, "--top-p");
}

TEST(Sampling, FiltersAndSeedsBehave) {
  auto logits = torch::tensor({1.0, 3.0, 2.0, 0.5, 2.9});
  Sampler greedy(SamplingOptions{0.0, 0, 1.0, 0});
  EXPECT_EQ(greedy.sample(logits), 1);
  // top-k 2 only ever yields the two largest.
  Sampler top2(SamplingOptions{1.0, 2, 1.0, 7});
  for (int i = 0; i < 200; ++i) {
    const auto t = top2.sample(logits);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  // top-p 0.3 keeps only the most likely token (its probability is ~0.39).
  Sampler nucleus(SamplingOptions{1.0, 0, 0.3, 7});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(nucleus.sample(logits), 1);
  // The same seed gives the same stream; frequencies follow softmax within 3 sigma.
  Sampler a(SamplingOptions{1.0, 0, 1.0, 42}), b(SamplingOptions{1.0, 0, 1.0, 42});
  std::vector<int> counts(5, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto t = a.sample(logits);
    EXPECT_EQ(t, b.sample(logits));
    counts[static_cast<size_t>(t)]++;
  }
  auto p = torch::softmax(logits.to(torch::kFloat64), 0);
  for (int v = 0; v < 5; ++v) {
    const double expected = p[v].item<double>();
    const double sigma = std::sqrt(expected * (1 - expected) / n);
    EXPECT_NEAR(counts[static_cast<size_t>(v)] / double(n), expected, 3 * sigma + 1e-9) << "token " << v;
  }
}

}  // namespace
}  // namespace superpose
