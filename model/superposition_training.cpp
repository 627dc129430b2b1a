// The joint superposition objective.
#include "model/superposition_training.h"

#include <torch/torch.h>

#include "model/observer.h"

namespace superpose {

namespace {

// Keeps an expert's residual stream, hidden[1..L] (HF convention).
class HiddenStates : public ForwardObserver {
 public:
  explicit HiddenStates(int64_t n_layer) : states(static_cast<size_t>(n_layer + 1)) {}
  bool wants(Site site, int64_t index) const override { return site == Site::kResidual && index > 0; }
  void observe(Site, int64_t index, const torch::Tensor& value) override {
    states[static_cast<size_t>(index)] = value.to(torch::kFloat32).clone();
  }
  std::vector<torch::Tensor> states;
};

std::vector<torch::Tensor> expert_hidden(GPT2& expert, const torch::Tensor& ids) {
  HiddenStates observer(expert->config().n_layer);
  expert->forward(ids, nullptr, &observer);
  return std::move(observer.states);
}

}  // namespace

SuperpositionLossWeights SuperpositionLossWeights::defaults(AlphaVariant variant) {
  if (variant == AlphaVariant::k1D) return SuperpositionLossWeights{3.0, 1.0, 0.0, 1.0, 0.0};
  return SuperpositionLossWeights{1.0, 0.2, 0.1, 0.9, 0.1};
}

nlohmann::json SuperpositionLossWeights::to_json() const {
  return {{"recon", recon}, {"lm", lm}, {"reg", reg}, {"mse", mse}, {"l2", l2}};
}

SuperpositionObjective::SuperpositionObjective(SuperposedModel model, std::filesystem::path base_dir,
                                               std::filesystem::path fine_dir, SuperpositionTrainingSettings settings)
    : model_(std::move(model)),
      base_dir_(std::move(base_dir)),
      fine_dir_(std::move(fine_dir)),
      settings_(settings) {
  for (auto& p : model_->parameters()) p.set_requires_grad(true);
}

std::vector<Objective::Group> SuperpositionObjective::groups() {
  return {Group{"alpha", model_->alpha->parameters(), settings_.lr_alpha, settings_.weight_decay},
          Group{"autoencoders", model_->ae->parameters(), settings_.lr_autoencoders, settings_.weight_decay}};
}

StepLoss SuperpositionObjective::loss(const Batch& batch) {
  const auto& w = settings_.weights;
  std::vector<torch::Tensor> base_hidden, fine_hidden;
  {
    torch::NoGradGuard no_grad;
    base_hidden = expert_hidden(model_->base(), batch.ids);
    fine_hidden = expert_hidden(model_->fine(), batch.ids);
  }
  const auto mask = (batch.targets != Batch::kIgnoreIndex).unsqueeze(-1).to(torch::kFloat32);  // (B,T,1)
  const auto positions = mask.sum().clamp_min(1.0);
  const auto y = batch.labels.to(torch::kFloat32).view({-1, 1, 1});  // (B,1,1)

  const auto out = model_->forward_training(batch.ids, settings_.chain);
  auto recon = torch::zeros({}, mask.options());
  for (int64_t l = 0; l < model_->n_layer(); ++l) {
    const auto target = (1 - y) * base_hidden[static_cast<size_t>(l + 1)] + y * fine_hidden[static_cast<size_t>(l + 1)];
    const auto diff = (out.reconstructions[static_cast<size_t>(l)].to(torch::kFloat32) - target) * mask;  // (B,T,C)
    if (w.mse != 0) recon = recon + w.mse * diff.pow(2).sum() / (positions * diff.size(-1));
    if (w.l2 != 0) recon = recon + w.l2 * diff.pow(2).sum(-1).add(1e-12).sqrt().mul(mask.squeeze(-1)).sum() / positions;
  }
  const auto lm = lm_loss(out.logits, batch.targets);
  auto total = w.recon * recon + w.lm * lm;
  StepLoss result{total, {{"lm", lm}, {"recon", recon}}};
  if (w.reg != 0 && model_->config().alpha.variant == AlphaVariant::k2D) {
    const auto reg = model_->alpha->regularizer();
    result.total = result.total + w.reg * reg;
    result.parts["reg"] = reg;
  }
  return result;
}

void SuperpositionObjective::train_mode(bool on) { model_->train(on); }

void SuperpositionObjective::save(const std::filesystem::path& dir) {
  const SuperpositionSpec spec;
  save_superposition(dir, model_, spec, base_dir_, fine_dir_, /*replace=*/true);
}

void SuperpositionObjective::load(const std::filesystem::path& dir) {
  load_superposition_weights(model_, dir / kSuperpositionWeights);
}

void SuperpositionObjective::save_final(const std::filesystem::path& out, const nlohmann::json& provenance) {
  SuperpositionSpec spec;
  spec.provenance = provenance;
  save_superposition(out, model_, spec, base_dir_, fine_dir_, /*replace=*/true, settings_.storage);
}

}  // namespace superpose
