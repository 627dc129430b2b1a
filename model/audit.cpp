// Perturb the future, watch the past.
#include "model/audit.h"

#include <map>
#include <random>
#include <set>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/sampling.h"
#include "model/superposed_generate.h"

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

GenerationGap generation_gap(SuperposedModel& model, const std::vector<std::vector<int64_t>>& prompts,
                             const GenerationGapOptions& options) {
  c10::InferenceMode inference;
  const auto device = model->base()->wte->weight.device();
  Sampler sampler(SamplingOptions{1.0, 0, 1.0, options.seed});
  double nll_generation = 0, nll_teacher = 0;
  GenerationGap gap;
  for (const auto& prompt : prompts) {
    if (prompt.empty() || static_cast<int64_t>(prompt.size()) >= model->context()) {
      throw Error("prompt", "needs 1 to " + std::to_string(model->context() - 1) + " tokens, got " +
                                std::to_string(prompt.size()));
    }
    // Generation: every token from the logits of the sequence before it
    // (recomputed in full for a non-causal model, cached for a causal one).
    SuperposedGenerator generator(model, prompt, model->causal());
    std::vector<double> logp;
    for (int64_t i = 0; i < options.new_tokens && !generator.full(); ++i) {
      const auto logits = generator.next_logits();
      const int64_t token = sampler.sample(logits);
      logp.push_back(torch::log_softmax(logits.to(torch::kFloat64), -1)[token].item<double>());
      generator.append(token);
    }
    // Teacher forcing: the whole sequence in one pass.
    const auto& sequence = generator.sequence();
    const auto ids = torch::tensor(sequence, torch::kLong).view({1, -1}).to(device);
    // On the CPU once, so the per-token reads below do not each wait on a device.
    const auto all = torch::log_softmax(model->forward(ids)[0].to(torch::kCPU, torch::kFloat64), -1);  // (T,V)
    const int64_t first = static_cast<int64_t>(prompt.size());
    for (size_t i = 0; i < logp.size(); ++i) {
      const int64_t position = first + static_cast<int64_t>(i);  // the token at `position`...
      nll_generation -= logp[i];
      nll_teacher -= all[position - 1][sequence[static_cast<size_t>(position)]].item<double>();  // ...predicted at position-1
    }
    gap.tokens += static_cast<int64_t>(logp.size());
    ++gap.sequences;
  }
  if (gap.tokens > 0) {
    gap.ppl_generation = std::exp(nll_generation / static_cast<double>(gap.tokens));
    gap.ppl_teacher_forced = std::exp(nll_teacher / static_cast<double>(gap.tokens));
  }
  return gap;
}

}  // namespace superpose
