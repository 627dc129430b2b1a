// The training loop and its objectives on tiny models: a few steps lower the
// loss; an interrupted run resumed from its checkpoint continues with exactly
// the losses of an uninterrupted run; the SPEC §5 loss matches a direct
// computation.
#include "model/training.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/lm_training.h"
#include "model/model_dir.h"
#include "model/superposition_io.h"
#include "model/superposition_training.h"
#include "tests/support/interrupting_objective.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kBase = kFixtures / "gpt2-tiny";
const fs::path kFine = kFixtures / "gpt2-tiny-fine";

const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  return tokenizer;
}

std::vector<Document> tiny_corpus() {
  const char* english[] = {
      "The cat sat on the mat and looked at the rain outside the window.",
      "A package manager installs, upgrades and removes software on the system.",
      "She walked to the station early in the morning, carrying a small bag.",
      "The kernel loads the modules it needs when the hardware is detected.",
  };
  const char* french[] = {
      "Le chat est assis sur le tapis et regarde la pluie par la fenêtre.",
      "Un gestionnaire de paquets installe et supprime les logiciels du système.",
      "Elle a marché jusqu'à la gare tôt le matin avec un petit sac.",
      "Le noyau charge les modules dont il a besoin au démarrage.",
  };
  std::vector<Document> docs;
  for (int repeat = 0; repeat < 2; ++repeat) {
    for (const char* text : english) docs.push_back({text, 0, "en", ""});
    for (const char* text : french) docs.push_back({text, 1, "fr", ""});
  }
  return docs;
}

TrainingOptions quick_options(int64_t steps) {
  TrainingOptions options;
  options.max_steps = steps;
  options.batch_size = 4;
  options.log_every = 1;
  options.progress = false;
  options.seed = 11;
  return options;
}

GPT2Config tiny_config() {
  GPT2Config config;
  config.n_layer = 2;
  config.n_head = 2;
  config.n_embd = 16;
  config.n_positions = 32;
  config.vocab_size = gpt2().vocab_size();
  return config;
}

using testing::InterruptingObjective;

LanguageModelObjective fresh_lm(uint64_t seed) {
  torch::manual_seed(seed);
  GPT2 model(tiny_config());
  init_gpt2_weights(model);
  return LanguageModelObjective(model, default_tokenizer_dir(), 3e-3, 0.01);
}

TEST(Training, LearningRateSchedule) {
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kConstant, 5, 10, 0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kCosine, 0, 10, 2, 0.1), 0.5);  // warm-up 1/2
  EXPECT_DOUBLE_EQ(lr_factor(LrSchedule::kCosine, 2, 10, 2, 0.1), 1.0);  // peak after warm-up
  EXPECT_NEAR(lr_factor(LrSchedule::kCosine, 9, 10, 2, 0.1), 0.1, 1e-12);  // floor at the last step
  EXPECT_NEAR(lr_factor(LrSchedule::kCosine, 5, 10, 0, 0.0), 0.5 * (1 + std::cos(M_PI * 5 / 9)), 1e-12);
}

TEST(Training, GptInitialisationFollowsGpt2) {
  torch::manual_seed(0);
  GPT2Config config = tiny_config();
  config.n_embd = 64;
  config.n_layer = 8;
  GPT2 model(config);
  init_gpt2_weights(model);
  EXPECT_NEAR(model->wte->weight.std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(model->block(0)->named_parameters()["attn.c_proj.weight"].std().item<double>(), 0.02 / 4.0, 0.0008);
  EXPECT_EQ(model->ln_f->weight.min().item<double>(), 1.0);
  EXPECT_EQ(model->block(3)->named_parameters()["mlp.c_fc.bias"].abs().max().item<double>(), 0.0);
}

TEST(Training, PretrainingLowersTheLossAndWritesAnHfFolder) {
  testing::TempDir tmp;
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 16);
  auto objective = fresh_lm(3);
  auto options = quick_options(24);
  const auto result = train(objective, data, &data, domain_names(docs), options, tmp / "run", false, {});
  ASSERT_EQ(result.losses.size(), 24u);
  const double first = (result.losses[0] + result.losses[1]) / 2, last = (result.losses[22] + result.losses[23]) / 2;
  EXPECT_LT(last, first - 1.0) << "24 steps on 16 windows should fit them";
  EXPECT_TRUE(result.last_validation["domains"].contains("en"));
  EXPECT_TRUE(result.last_validation["domains"].contains("fr"));

  // The folder loads as a model whose logits are the trained model's.
  auto loaded = load_model(tmp / "run");
  const auto batch = data.batch({0, 1});
  torch::NoGradGuard no_grad;
  objective.train_mode(false);
  EXPECT_TRUE(testing::all_close(loaded.model->forward(batch.ids), objective.model()->forward(batch.ids), 1e-5));
  EXPECT_TRUE(fs::exists(tmp / "run" / "training.json"));
  EXPECT_TRUE(fs::exists(tmp / "run" / "vocab.json"));
  EXPECT_FALSE(fs::exists(tmp / "run" / "checkpoint-00000024")) << "checkpoints go when the run completes";
}

TEST(Training, FrozenParametersKeepTheirValues) {
  testing::TempDir tmp;
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 16);
  torch::manual_seed(5);
  GPT2 model(tiny_config());
  init_gpt2_weights(model);
  std::map<std::string, torch::Tensor> before;
  for (const auto& item : model->named_parameters()) before[item.key()] = item.value().detach().clone();
  LanguageModelObjective objective(model, default_tokenizer_dir(), 3e-3, 0.01, torch::kFloat32,
                                   parse_name_list("wte,ln_f,h.1"));
  train(objective, data, nullptr, domain_names(docs), quick_options(4), tmp / "run", false, {});
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const bool frozen = name.rfind("wte.", 0) == 0 || name.rfind("ln_f.", 0) == 0 || name.rfind("h.1.", 0) == 0;
    if (frozen) {
      EXPECT_TRUE(torch::equal(item.value(), before[name])) << name << " is frozen but changed";
    } else if (name.find("weight") != std::string::npos && name.find("ln_") == std::string::npos) {
      EXPECT_FALSE(torch::equal(item.value(), before[name])) << name << " is trainable but did not change";
    }
  }
  // "h.1" freezes block 1, not blocks 10-19; an unknown name is refused.
  EXPECT_EQ(parse_name_list(""), std::vector<std::string>{});
  EXPECT_EQ(parse_name_list("wte,,wpe"), (std::vector<std::string>{"wte", "wpe"}));
  try {
    LanguageModelObjective bad(GPT2(tiny_config()), default_tokenizer_dir(), 3e-3, 0.01, torch::kFloat32, {"wtf"});
    FAIL() << "an unknown name should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--freeze"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'wtf'"), std::string::npos) << e.what();
  }
}

TEST(Training, ResumedRunRepeatsTheUninterruptedLosses) {
  testing::TempDir tmp;
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 16);
  auto options = quick_options(10);
  options.schedule = LrSchedule::kCosine;
  options.warmup = 2;

  auto reference = fresh_lm(5);
  const auto whole = train(reference, data, nullptr, domain_names(docs), options, tmp / "whole", false, {});

  auto first = fresh_lm(5);
  InterruptingObjective interrupting(first, 4);
  const auto part = train(interrupting, data, nullptr, domain_names(docs), options, tmp / "part", false, {});
  ASSERT_TRUE(part.interrupted);
  ASSERT_EQ(part.steps, 4);
  EXPECT_TRUE(fs::exists(tmp / "part" / "checkpoint-00000004" / "optimizer.pt"));

  auto second = fresh_lm(99);  // different weights: everything must come from the checkpoint
  const auto rest = train(second, data, nullptr, domain_names(docs), options, tmp / "part", true, {});
  ASSERT_EQ(rest.losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(rest.losses[i], whole.losses[4 + i]) << "step " << 5 + i;
  // The final weights are the uninterrupted run's, bit for bit.
  auto resumed = load_model(tmp / "part"), uninterrupted = load_model(tmp / "whole");
  const auto resumed_state = resumed.model->named_parameters(), reference_state = uninterrupted.model->named_parameters();
  for (const auto& item : reference_state) {
    EXPECT_TRUE(torch::equal(resumed_state[item.key()], item.value())) << item.key();
  }
  // metrics.jsonl holds each step once.
  const auto metrics = read_file(tmp / "part" / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 10);
}

TEST(Training, RefusesABusyFolderAndMismatchedResume) {
  testing::TempDir tmp;
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 16);
  auto objective = fresh_lm(1);
  auto options = quick_options(2);
  ::mkdir((tmp / "busy").c_str(), 0755);
  write_file_atomic(tmp / "busy" / "file", "x");
  SUPERPOSE_EXPECT_THROW_WITH(train(objective, data, nullptr, {"en", "fr"}, options, tmp / "busy", false, {}), Error,
                              "busy", "not empty", "--resume");
  SUPERPOSE_EXPECT_THROW_WITH(train(objective, data, nullptr, {"en", "fr"}, options, tmp / "busy", true, {}), Error,
                              "no checkpoint to resume from");
  SUPERPOSE_EXPECT_THROW_WITH(train(objective, data, nullptr, {"en", "fr"}, options, tmp / "none", true, {}), Error,
                              "does not exist");
  options.batch_size = 1000;
  SUPERPOSE_EXPECT_THROW_WITH(train(objective, data, nullptr, {"en", "fr"}, options, tmp / "new", false, {}), Error,
                              "--batch-size", "training windows");

  // A checkpoint written with another seed is refused on resume.
  options = quick_options(6);
  InterruptingObjective interrupting(objective, 2);
  ASSERT_TRUE(train(interrupting, data, nullptr, {"en", "fr"}, options, tmp / "seeded", false, {}).interrupted);
  options.seed = 12;
  SUPERPOSE_EXPECT_THROW_WITH(train(objective, data, nullptr, {"en", "fr"}, options, tmp / "seeded", true, {}), Error,
                              "trainer.json", "--seed");
}

SuperposedModel tiny_superposition(AlphaVariant variant, uint64_t seed) {
  auto experts = load_experts(kBase, kFine, torch::kCPU, torch::kFloat32);
  torch::manual_seed(seed);
  return SuperposedModel(experts.first.model, experts.second.model,
                         SuperposedConfig::defaults(variant, experts.first.config));
}

SuperpositionObjective superposition_objective(AlphaVariant variant, uint64_t seed, Chain chain) {
  SuperpositionTrainingSettings settings;
  settings.chain = chain;
  settings.lr_alpha = 2e-2;
  settings.lr_autoencoders = 1e-2;
  settings.weights = SuperpositionLossWeights::defaults(variant);
  return SuperpositionObjective(tiny_superposition(variant, seed), kBase, kFine, settings);
}

TEST(SuperpositionTraining, LossIsTheSpecObjective) {
  // One batch, computed again here from the model's pieces: targets from the
  // label's expert, 3·MSE + LM for 1D (teacher chain).
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 12);
  auto objective = superposition_objective(AlphaVariant::k1D, 2, Chain::kTeacher);
  objective.train_mode(false);
  const auto batch = data.batch({0, 5, 9});
  torch::NoGradGuard no_grad;
  const auto loss = objective.loss(batch);

  auto& model = objective.model();
  const int64_t L = model->n_layer();
  const auto alpha = model->learned_alpha();
  // The teacher chain by hand.
  auto h = [&] {
    const auto a = alpha.mean();
    return (1 - a) * model->base()->embed(batch.ids) + a * model->fine()->embed(batch.ids);
  }();
  std::vector<torch::Tensor> reconstructions;
  torch::Tensor last;
  for (int64_t l = 0; l < L; ++l) {
    const auto blended = (1 - alpha[l]) * model->base()->block(l)->forward(h) + alpha[l] * model->fine()->block(l)->forward(h);
    last = model->autoencoder(l)->forward(blended);
    reconstructions.push_back(last);
    h = blended;
  }
  const auto logits = model->base()->head(model->base()->ln_f(last));
  const auto mask = (batch.targets != Batch::kIgnoreIndex);
  double recon = 0;
  for (int64_t l = 0; l < L; ++l) {
    // Expert hidden states in HF convention: block l's target is hidden[l+1].
    auto expert_state = [&](GPT2& expert, int64_t b) {
      struct Keep : ForwardObserver {
        int64_t want;
        torch::Tensor value;
        bool wants(Site s, int64_t i) const override { return s == Site::kResidual && i == want; }
        void observe(Site, int64_t, const torch::Tensor& v) override { value = v.clone(); }
      } keep;
      keep.want = l + 1;
      expert->forward(batch.ids.slice(0, b, b + 1), nullptr, &keep);
      return keep.value;
    };
    double sum = 0, count = 0;
    for (int64_t b = 0; b < 3; ++b) {
      const auto target = batch.labels[b].item<int64_t>() == 0 ? expert_state(model->base(), b) : expert_state(model->fine(), b);
      const auto diff = (reconstructions[static_cast<size_t>(l)].slice(0, b, b + 1) - target)[0];  // (T,C)
      for (int64_t t = 0; t < batch.ids.size(1); ++t) {
        if (!mask[b][t].item<bool>()) continue;
        sum += diff[t].pow(2).sum().item<double>();
        count += static_cast<double>(diff.size(1));
      }
    }
    recon += sum / count;
  }
  const double lm = lm_loss(logits, batch.targets).item<double>();
  EXPECT_NEAR(loss.parts.at("recon").item<double>(), recon, 1e-5 * recon);
  EXPECT_NEAR(loss.parts.at("lm").item<double>(), lm, 1e-5 * lm);
  EXPECT_NEAR(loss.total.item<double>(), 3 * recon + lm, 1e-5 * (3 * recon + lm));
}

TEST(SuperpositionTraining, StepsLowerTheLossForBothVariantsAndChains) {
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 12);
  for (const auto variant : {AlphaVariant::k1D, AlphaVariant::k2D}) {
    for (const auto chain : {Chain::kTeacher, Chain::kFree}) {
      SCOPED_TRACE(variant_name(variant) + " " + chain_name(chain));
      testing::TempDir tmp;
      auto objective = superposition_objective(variant, 4, chain);
      TrainingResult result;
      ASSERT_NO_THROW(result = train(objective, data, &data, {"en", "fr"}, quick_options(16), tmp / "run", false, {}));
      const double first = result.losses[0] + result.losses[1], last = result.losses[14] + result.losses[15];
      // The experts are tiny and predict little (their LM loss stays near
      // ln 50257 ≈ 10.8), so the drop is the reconstruction terms': at init
      // they weigh about 7 of the ~18 per step, and 16 steps remove at least
      // a quarter of them (3.5 over the two steps compared).
      EXPECT_LT(last, first - 3.5);
      // The folder is a superposition that loads over the same experts.
      auto loaded = load_superposition(tmp / "run", kBase, kFine);
      EXPECT_TRUE(testing::all_close(loaded.model->learned_alpha(), objective.model()->learned_alpha(), 0));
      EXPECT_EQ(loaded.spec.provenance["steps"], 16);
    }
  }
}

TEST(SuperpositionTraining, ResumeIsExactWithDropout) {
  // The 2D autoencoder has dropout: its masks must repeat after a resume.
  testing::TempDir tmp;
  const auto docs = tiny_corpus();
  const auto data = TokenDataset::build(docs, gpt2(), 12);
  const auto options = quick_options(8);
  auto reference = superposition_objective(AlphaVariant::k2D, 6, Chain::kFree);
  const auto whole = train(reference, data, nullptr, {"en", "fr"}, options, tmp / "whole", false, {});
  auto first = superposition_objective(AlphaVariant::k2D, 6, Chain::kFree);
  InterruptingObjective interrupting(first, 3);
  ASSERT_TRUE(train(interrupting, data, nullptr, {"en", "fr"}, options, tmp / "part", false, {}).interrupted);
  auto second = superposition_objective(AlphaVariant::k2D, 7, Chain::kFree);
  const auto rest = train(second, data, nullptr, {"en", "fr"}, options, tmp / "part", true, {});
  ASSERT_EQ(rest.losses.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(rest.losses[i], whole.losses[3 + i]) << "step " << 4 + i;
}

}  // namespace
}  // namespace superpose
