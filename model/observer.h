// Observation of intermediate states during a forward pass, without globals or hooks.
#pragma once

#include <torch/types.h>

namespace superpose {

// Where in the network a state is taken.
enum class Site {
  kResidual,       // residual stream, HF hidden_states convention: index 0 = embeddings,
                   // i = output of block i-1 (i < L), L = ln_f(output of block L-1). (B,T,C)
  kMlpActivation,  // MLP activations after the nonlinearity, index = block. (B,T,inner)
  kAttention,      // attention probabilities, index = block. (B,H,T,T_total)

  // The superposed model (SPEC §4), index = block l = 0..L-1 unless noted.
  kState,               // what the superposition passes on: index 0 = blended embeddings,
                        // l+1 = output of block l after its autoencoder, before ln_f. (B,T,C)
  kBaseOutput,          // hb: the base expert's block l on the shared input. (B,T,C)
  kFineOutput,          // hf: the fine expert's block l on the shared input. (B,T,C)
  kBlended,             // (1-α_l)·hb + α_l·hf, before the autoencoder. (B,T,C)
  kBaseMlpActivation,   // MLP activations inside the base's block l. (B,T,inner)
  kFineMlpActivation,   // MLP activations inside the fine's block l. (B,T,inner)
  kBaseAttention,       // attention probabilities of the base's block l. (B,H,T,T_total)
  kFineAttention,       // attention probabilities of the fine's block l. (B,H,T,T_total)
};

// Passed into forward(); the model asks `wants` before computing or copying
// a state and hands it to `observe` only when wanted, so an observer that
// wants nothing costs nothing. Called on the thread running the forward pass;
// the tensor is only valid during the call (copy or clone to keep it).
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  virtual bool wants(Site site, int64_t index) const = 0;
  virtual void observe(Site site, int64_t index, const torch::Tensor& value) = 0;
};

inline bool observer_wants(const ForwardObserver* observer, Site site, int64_t index) {
  return observer != nullptr && observer->wants(site, index);
}

}  // namespace superpose
