// Generation loop: prefill once, then one position per step from the cache.
#include "model/generate.h"

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

GenerateResult generate(GPT2& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                        Sampler& sampler, const TokenCallback& on_token) {
  const int64_t context = model->config().n_positions;
  if (prompt.empty()) throw Error("prompt", "empty: need at least one token");
  if (static_cast<int64_t>(prompt.size()) > context) {
    throw Error("prompt", std::to_string(prompt.size()) + " tokens exceed the model's context of " +
                              std::to_string(context) + " positions");
  }
  c10::InferenceMode inference;
  const auto device = model->parameters().front().device();
  auto ids_tensor = [&](const std::vector<int64_t>& ids) {
    return torch::tensor(ids, torch::kLong).view({1, -1}).to(device);  // (1,T)
  };

  GenerateResult result;
  std::vector<int64_t> sequence = prompt;
  KVCache cache = model->make_cache();
  auto logits = model->forward(ids_tensor(prompt), options.use_cache ? &cache : nullptr);  // (1,T,V)
  while (static_cast<int64_t>(result.tokens.size()) < options.max_new_tokens) {
    const int64_t token = sampler.sample(logits[0][logits.size(1) - 1]);
    result.tokens.push_back(token);
    sequence.push_back(token);
    if (on_token && !on_token(token)) {
      result.reason = StopReason::kCancelled;
      return result;
    }
    if (options.stop_token && token == *options.stop_token) {
      result.reason = StopReason::kStopToken;
      return result;
    }
    if (static_cast<int64_t>(result.tokens.size()) == options.max_new_tokens) break;
    if (static_cast<int64_t>(sequence.size()) >= context) {
      result.reason = StopReason::kContextFull;
      return result;
    }
    logits = options.use_cache ? model->forward(ids_tensor({token}), &cache)  // (1,1,V)
                               : model->forward(ids_tensor(sequence));        // (1,T,V)
  }
  result.reason = StopReason::kMaxTokens;
  return result;
}

}  // namespace superpose
