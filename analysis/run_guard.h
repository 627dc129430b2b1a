// Small pieces every batched analysis run shares: eval mode for the run's
// duration and the per-label document cap.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>

#include "model/dataset.h"

namespace superpose {

// Puts a module (and its registered submodules) in eval mode while it lives,
// then restores the mode it found: dropout in an autoencoder would otherwise
// make a model left in training mode score at random.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& module) : module_(module), training_(module.is_training()) {
    module.eval();
  }
  ~EvalModeGuard() { module_.train(training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool training_;
};

// The first `max_documents` documents of each label, in file order; all of
// them when max_documents is 0.
inline std::vector<Document> first_documents_per_label(const std::vector<Document>& documents,
                                                       int64_t max_documents) {
  std::vector<Document> selected;
  int64_t taken[2] = {0, 0};
  for (const auto& document : documents) {
    auto& count = taken[document.label];
    if (max_documents > 0 && count >= max_documents) continue;
    ++count;
    selected.push_back(document);
  }
  return selected;
}

}  // namespace superpose
