// Causality audit (SPEC §3): does any output at position t read tokens after t?
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace superpose
