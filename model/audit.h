// Causality audit (SPEC §3): does any output at position t read tokens after t?
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/superposed.h"

namespace superpose {

struct AuditOptions {
  int64_t tokens = 32;    // sequence length probed (capped at the context)
  int64_t probes = 6;     // cut positions t, spread over the sequence
  uint64_t seed = 0;      // random token ids
  double tolerance = 1e-5;  // relative to the largest |logit| of the reference run
};

struct AuditResult {
  bool causal = true;
  double max_deviation = 0.0;  // largest |change| at positions <= t over logits and every state
  double tolerance = 0.0;      // absolute threshold used
  int64_t position = -1;       // the cut t where it was largest (-1 when nothing moved)
  std::string state;           // "logits" or "state.{i}" where it was largest
  int64_t tokens = 0, probes = 0;
};

// Runs random ids, then for each cut t replaces the ids after t and measures
// how far logits and every state at positions <= t move. The model's α and
// autoencoder switches are used as they are. Runs in inference mode.
AuditResult audit_causality(SuperposedModel& model, const AuditOptions& options = {});

// How much of a model's teacher-forced perplexity comes from reading ahead.
// For each prompt, `new_tokens` tokens are sampled (temperature 1, the whole
// distribution, seeded) the way generation runs: each from the logits of
// the sequence so far, so no position sees a token after it. The same
// tokens are then scored teacher-forced: one forward pass over prompt +
// continuation, as training and evaluation score text. For a causal model
// both give each token the same probability (equal up to rounding); a
// non-causal one scores its own continuation better teacher-forced, because
// position t then reads token t+1 — the leak. Perplexities are
// exp(mean NLL) over all generated tokens. Runs in inference mode.
struct GenerationGapOptions {
  int64_t new_tokens = 32;
  uint64_t seed = 0;
};
struct GenerationGap {
  double ppl_generation = 0;      // probabilities at generation time
  double ppl_teacher_forced = 0;  // the same tokens, one forward pass
  int64_t tokens = 0, sequences = 0;
};
// Throws Error("prompt", ...) for an empty prompt or one that leaves no room
// for a new token in the context.
GenerationGap generation_gap(SuperposedModel& model, const std::vector<std::vector<int64_t>>& prompts,
                             const GenerationGapOptions& options = {});

}  // namespace superpose
