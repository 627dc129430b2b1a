// Pretraining and fine-tuning objectives.
#include "model/lm_training.h"

#include <cmath>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/model_dir.h"

namespace superpose {

void init_gpt2_weights(GPT2& model) {
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(model->config().n_layer));
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    const bool is_ln = name.find("ln_") != std::string::npos;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_ln) {
      is_bias ? p.zero_() : p.fill_(1.0);
    } else if (is_bias) {
      p.zero_();
    } else if (name.find("c_proj.weight") != std::string::npos) {
      p.normal_(0.0, residual_std);
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

LanguageModelObjective::LanguageModelObjective(GPT2 model, std::filesystem::path tokenizer_dir, double lr,
                                               double weight_decay, torch::Dtype storage,
                                               const std::vector<std::string>& frozen)
    : model_(std::move(model)),
      tokenizer_dir_(std::move(tokenizer_dir)),
      lr_(lr),
      weight_decay_(weight_decay),
      storage_(storage) {
  const auto is_under = [](const std::string& name, const std::string& prefix) {
    return name.rfind(prefix, 0) == 0 && (name.size() == prefix.size() || name[prefix.size()] == '.');
  };
  for (const std::string& prefix : frozen) {
    bool found = false;
    for (const auto& item : model_->named_parameters()) found = found || is_under(item.key(), prefix);
    if (!found) throw Error("--freeze", "'" + prefix + "' names no parameter of the model (e.g. wte, wpe, ln_f, h.0)");
  }
  for (auto& item : model_->named_parameters()) {
    bool trainable = true;
    for (const std::string& prefix : frozen) trainable = trainable && !is_under(item.key(), prefix);
    item.value().set_requires_grad(trainable);
  }
}

std::vector<std::string> parse_name_list(const std::string& list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    const size_t end = std::min(list.find(',', start), list.size());
    if (end > start) names.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

std::vector<Objective::Group> LanguageModelObjective::groups() {
  Group decay{"decay", {}, lr_, weight_decay_}, no_decay{"no_decay", {}, lr_, 0.0};
  for (auto& item : model_->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    const bool matrix = item.value().dim() >= 2 && name.rfind("wpe.", 0) != 0;
    (matrix ? decay : no_decay).parameters.push_back(item.value());
  }
  return {decay, no_decay};
}

StepLoss LanguageModelObjective::loss(const Batch& batch) {
  const auto logits = model_->forward(batch.ids);
  auto lm = lm_loss(logits, batch.targets);
  return StepLoss{lm, {{"lm", lm}}};
}

void LanguageModelObjective::train_mode(bool on) { model_->train(on); }

void LanguageModelObjective::save(const std::filesystem::path& dir) {
  save_model_dir(dir, model_, tokenizer_dir_, {}, torch::kFloat32);
}

void LanguageModelObjective::load(const std::filesystem::path& dir) {
  load_gpt2_weights(model_, dir / "model.safetensors");
}

void LanguageModelObjective::save_final(const std::filesystem::path& out, const nlohmann::json& provenance) {
  save_model_dir(out, model_, tokenizer_dir_, {{"training", provenance.dump()}}, storage_);
}

}  // namespace superpose
