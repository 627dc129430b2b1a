// Perturb the future, watch the past.
#include "model/audit.h"

#include <map>
#include <random>
#include <set>

#include <torch/torch.h>

namespace superpose {
namespace {

// Keeps every kState output and the logits of one run.
class StateKeeper : public ForwardObserver {
 public:
  bool wants(Site site, int64_t) const override { return site == Site::kState; }
  void observe(Site, int64_t index, const torch::Tensor& value) override {
    states["state." + std::to_string(index)] = value[0].to(torch::kCPU, torch::kFloat64);
  }
  std::map<std::string, torch::Tensor> states;  // name -> (T,C)
};

std::map<std::string, torch::Tensor> run(SuperposedModel& model, const std::vector<int64_t>& ids) {
  StateKeeper keeper;
  const auto device = model->base()->wte->weight.device();
  const auto logits = model->forward(torch::tensor(ids, torch::kLong).view({1, -1}).to(device), nullptr, &keeper);
  keeper.states["logits"] = logits[0].to(torch::kCPU, torch::kFloat64);
  return keeper.states;
}

}  // namespace

AuditResult audit_causality(SuperposedModel& model, const AuditOptions& options) {
  c10::InferenceMode inference;
  AuditResult result;
  const int64_t T = std::max<int64_t>(2, std::min(options.tokens, model->context()));
  const int64_t V = model->base()->config().vocab_size;
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int64_t> token(0, V - 1);
  std::vector<int64_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = token(rng);
  const auto reference = run(model, ids);
  result.tolerance = options.tolerance * std::max(1.0, reference.at("logits").abs().max().item<double>());
  result.tokens = T;

  std::set<int64_t> cuts;  // t in [0, T-2]: the ids after t change
  const int64_t probes = std::max<int64_t>(1, options.probes);
  for (int64_t i = 0; i < probes; ++i) cuts.insert(probes == 1 ? 0 : i * (T - 2) / (probes - 1));
  for (int64_t t : cuts) {
    auto changed = ids;
    for (int64_t p = t + 1; p < T; ++p) {
      int64_t replacement = token(rng);
      if (replacement == ids[static_cast<size_t>(p)]) replacement = (replacement + 1) % V;
      changed[static_cast<size_t>(p)] = replacement;
    }
    const auto perturbed = run(model, changed);
    for (const auto& [name, value] : reference) {
      const double deviation =
          (perturbed.at(name).slice(0, 0, t + 1) - value.slice(0, 0, t + 1)).abs().max().item<double>();
      if (deviation > result.max_deviation) {
        result.max_deviation = deviation;
        result.position = t;
        result.state = name;
      }
    }
  }
  result.probes = static_cast<int64_t>(cuts.size());
  result.causal = result.max_deviation <= result.tolerance;
  return result;
}

}  // namespace superpose
