// Generation from a superposed model: per-expert KV caches, α changes that
// apply from the next token on, re-prefill, and α schedules over positions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "model/generate.h"
#include "model/sampling.h"
#include "model/superposed.h"

namespace superpose {

// α as a function of token position: segment i applies from position
// `from` (0-based, counting the prompt) up to the next segment's `from`.
// Positions before the first segment use the α in force.
// A position's α is what blends that position's states, so a segment that
// starts at position p changes the prediction of token p + 1 onwards.
class AlphaSchedule {
 public:
  struct Segment {
    int64_t from = 0;
    torch::Tensor alpha;  // (L) or (L,C), float32, CPU
  };

  AlphaSchedule() = default;
  // Segments must have strictly increasing `from` >= 0 and values in [0, 1]
  // of the model's α shape. Throws Error(where, ...).
  AlphaSchedule(std::vector<Segment> segments, const std::vector<int64_t>& alpha_shape, const std::string& where);

  // JSON: {"schedule": [{"from": 0, "alpha": 0.0}, {"from": 12, "alpha": [a0, ..., a{L-1}]}, ...]}
  // where "alpha" is one number (every layer and dimension), L numbers (per
  // layer) or, for 2D, L lists of C numbers. Errors name `where` and the entry.
  static AlphaSchedule from_json(const nlohmann::json& json, const std::vector<int64_t>& alpha_shape,
                                 const std::string& where);
  static AlphaSchedule load(const std::filesystem::path& path, const std::vector<int64_t>& alpha_shape);

  bool empty() const { return segments_.empty(); }
  const std::vector<Segment>& segments() const { return segments_; }
  // The scheduled α at `position`, or nullopt before the first segment.
  std::optional<torch::Tensor> at(int64_t position) const;

 private:
  std::vector<Segment> segments_;
};

// A sequence being generated, one token at a time, under a steerable α.
//
// Every position records the α that blended it when it was first computed:
// the schedule's value there if there is one, else the model's α in force at
// that moment. So changing the model's α (set_alpha*, overrides, clear)
// between steps applies from the next computed position on while the cached
// past stays as it was ("switch from here"); reprefill() recomputes every
// position under the α in force now. Without a cache (use_cache = false, or
// a non-causal model) each step recomputes the whole sequence with the
// recorded α, which equals the cached result for causal models.
// Autoencoder switches apply to positions computed after the change.
// Not thread-safe; drives the model it was given.
class SuperposedGenerator {
 public:
  // Throws Error("prompt", ...) for an empty prompt or one longer than the context.
  SuperposedGenerator(SuperposedModel model, std::vector<int64_t> prompt, bool use_cache = true,
                      AlphaSchedule schedule = {});

  // (V) float32 logits for the token after the current sequence, computing
  // the positions not computed yet.
  torch::Tensor next_logits();
  // Appends a chosen token. Throws Error when the context is full.
  void append(int64_t token);
  // Recomputes every position under the α in force now (and the current
  // autoencoder switches); the schedule, if any, still takes precedence.
  void reprefill();

  const std::vector<int64_t>& sequence() const { return sequence_; }
  // The α that blended position p (L) / (L,C); the token at p+1 was predicted under it.
  const torch::Tensor& alpha_at(int64_t position) const { return alphas_.at(static_cast<size_t>(position)); }
  bool cached() const { return use_cache_; }
  bool full() const { return static_cast<int64_t>(sequence_.size()) >= model_->context(); }

 private:
  torch::Tensor alpha_for_new_position(int64_t position);

  SuperposedModel model_;
  std::vector<int64_t> sequence_;
  std::vector<torch::Tensor> alphas_;  // per computed position, CPU float32
  bool use_cache_;
  AlphaSchedule schedule_;
  SuperposedCache cache_;
  int64_t computed_ = 0;  // positions whose states are in the cache (or were computed)
  torch::Tensor logits_;  // next-token logits for computed_ == sequence_.size()
};

// Called after each token; it may steer the model (its α, autoencoder
// switches) before the next step. Return false to stop.
using SuperposedTokenCallback = std::function<bool(int64_t token, SuperposedGenerator& generator)>;

// Samples up to max_new_tokens after `prompt` (GenerateOptions as for a
// single model; use_cache is ignored for non-causal models, which always
// recompute). Runs in inference mode.
GenerateResult generate(SuperposedModel& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                        Sampler& sampler, const AlphaSchedule& schedule = {},
                        const SuperposedTokenCallback& on_token = {});

}  // namespace superpose
