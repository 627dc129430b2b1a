// Language-model training of a single GPT-2: pretraining from scratch and
// fine-tuning an existing model (next-token cross-entropy).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/gpt2.h"
#include "model/training.h"

namespace superpose {

// GPT-2's initialisation: weights and embeddings N(0, 0.02²), the residual
// projections (attn.c_proj, mlp.c_proj) N(0, (0.02/√(2L))²), biases 0,
// LayerNorms 1 and 0. Draws from torch's global generator.
void init_gpt2_weights(GPT2& model);

// Trains every parameter of `model` with next-token cross-entropy. Weight
// decay applies to matrices only (biases, LayerNorms and position tables are
// not decayed; the tied token embedding is, as GPT-2's training did).
class LanguageModelObjective : public Objective {
 public:
  // `tokenizer_dir` is copied into every checkpoint and the final folder;
  // `storage` is the dtype of the final model.safetensors. Parameters whose
  // names start with one of `frozen` (e.g. "wte", "wpe", "ln_f") keep their
  // values; a prefix that names no parameter is an Error("--freeze", ...).
  LanguageModelObjective(GPT2 model, std::filesystem::path tokenizer_dir, double lr, double weight_decay,
                         torch::Dtype storage = torch::kFloat32, const std::vector<std::string>& frozen = {});

  std::vector<Group> groups() override;
  StepLoss loss(const Batch& batch) override;
  void train_mode(bool on) override;
  void save(const std::filesystem::path& dir) override;
  void load(const std::filesystem::path& dir) override;
  void save_final(const std::filesystem::path& out, const nlohmann::json& provenance) override;

  GPT2& model() { return model_; }

 private:
  GPT2 model_;
  std::filesystem::path tokenizer_dir_;
  double lr_, weight_decay_;
  torch::Dtype storage_;
};

// Splits "wte,wpe,ln_f" into its names (empty input: none).
std::vector<std::string> parse_name_list(const std::string& list);

}  // namespace superpose
