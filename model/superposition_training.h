// The joint superposition objective (SPEC §5): α and the autoencoders learn
// to reproduce the label's expert layer by layer while the superposed model
// predicts the next token; the experts stay frozen.
#pragma once

#include <filesystem>

#include "model/superposed.h"
#include "model/superposition_io.h"
#include "model/training.h"

namespace superpose {

// L = recon·L_recon + lm·L_LM + reg·L_reg, with
// L_recon = Σ_l (mse·MSE(ĥ_l, h*_l) + l2·mean_t ‖ĥ_l − h*_l‖₂) over the
// positions that have a target.
struct SuperpositionLossWeights {
  double recon = 3.0, lm = 1.0, reg = 0.0;
  double mse = 1.0, l2 = 0.0;
  // SPEC §5: 1D 3·L_recon + L_LM (mse 1, l2 0); 2D L_recon + 0.2·L_LM + 0.1·L_reg (mse 0.9, l2 0.1).
  static SuperpositionLossWeights defaults(AlphaVariant variant);
  nlohmann::json to_json() const;
};

struct SuperpositionTrainingSettings {
  Chain chain = Chain::kTeacher;
  double lr_alpha = 2e-4;
  double lr_autoencoders = 1e-4;
  double weight_decay = 0.01;
  SuperpositionLossWeights weights;
  torch::Dtype storage = torch::kFloat32;  // the final autoencoder weights' dtype (checkpoints stay F32)
};

// Trains the superposition's parameters (alpha.*, ae.*): two groups, "alpha"
// and "autoencoders", each with its own learning rate and clipping.
// Targets h*_l = (1−y)·hidden_base[l+1] + y·hidden_fine[l+1] come from
// independent forward passes of each expert (HF convention: the last
// block's target includes ln_f).
class SuperpositionObjective : public Objective {
 public:
  SuperpositionObjective(SuperposedModel model, std::filesystem::path base_dir, std::filesystem::path fine_dir,
                         SuperpositionTrainingSettings settings);

  std::vector<Group> groups() override;
  StepLoss loss(const Batch& batch) override;
  void train_mode(bool on) override;
  void save(const std::filesystem::path& dir) override;
  void load(const std::filesystem::path& dir) override;
  void save_final(const std::filesystem::path& out, const nlohmann::json& provenance) override;

  SuperposedModel& model() { return model_; }

 private:
  SuperposedModel model_;
  std::filesystem::path base_dir_, fine_dir_;
  SuperpositionTrainingSettings settings_;
};

}  // namespace superpose
