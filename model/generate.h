// Autoregressive generation from a GPT-2, token by token, with a KV cache.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "model/gpt2.h"
#include "model/sampling.h"

namespace superpose {

struct GenerateOptions {
  int64_t max_new_tokens = 50;
  bool use_cache = true;               // false: recompute the whole sequence per token
  std::optional<int64_t> stop_token;  // e.g. <|endoftext|>; it is emitted, then generation stops
};

enum class StopReason { kMaxTokens, kStopToken, kContextFull, kCancelled };

struct GenerateResult {
  std::vector<int64_t> tokens;  // the new tokens only
  StopReason reason = StopReason::kMaxTokens;
};

// Called with each new token as soon as it is chosen; return false to stop.
using TokenCallback = std::function<bool(int64_t token)>;

// Runs on the model's device in inference mode. Generation never goes past
// the model's n_positions (reason kContextFull). Throws Error when the prompt
// is empty or longer than the context.
GenerateResult generate(GPT2& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                        Sampler& sampler, const TokenCallback& on_token = {});

}  // namespace superpose
