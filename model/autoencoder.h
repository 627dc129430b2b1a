// Per-layer autoencoders that reconstruct the blended hidden state (SPEC §3),
// with a causal or a centered (seed-compatible) convolution over the sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/alpha.h"

namespace superpose {

// How a kernel-3 convolution along T pads the sequence.
enum class ConvMode {
  kCausal,    // 2 zeros on the left: the output at t reads t-2, t-1, t
  kCentered,  // 1 zero on each side: the output at t reads t+1 (non-causal)
};
std::string conv_mode_name(ConvMode mode);  // "causal" / "centered"
ConvMode parse_conv_mode(const std::string& name, const std::string& where);

struct AutoencoderConfig {
  AlphaVariant variant = AlphaVariant::k1D;  // selects the design
  int64_t n_embd = 768;                      // C
  int64_t bottleneck = 576;                  // Z
  int64_t local = 0;                         // 2D: Ze, the convolutional share of Z
  int64_t adapter_rank = 0;                  // 2D: r, the global adapter's inner width
  ConvMode conv = ConvMode::kCausal;

  // The sizes SPEC §3 prescribes for width C: 1D Z = int(0.75 C);
  // 2D Z = int(0.65 C), Ze = int(0.8 Z), r = min(32, Z - Ze). A positive
  // `bottleneck` replaces Z (2D: Ze and r follow from it by the same rules).
  static AutoencoderConfig defaults(AlphaVariant variant, int64_t n_embd, ConvMode conv, int64_t bottleneck = 0);
  int64_t global() const { return bottleneck - local; }  // 2D: Zr
};

// Throws Error(where, ...) when a size is not positive or inconsistent.
void validate(const AutoencoderConfig& config, const std::string& where);

// What a causal convolution needs from earlier positions to continue a
// sequence incrementally: its last two inputs, (B,2,in). Undefined = start.
struct SeqConvState {
  torch::Tensor past;
};

// Kernel-3 Conv1d along T: (B,T,in) -> (B,T,out). The weights sit under
// "conv" ((out,in,3) and (out)), as in the seed checkpoints.
class SeqConvImpl : public torch::nn::Module {
 public:
  SeqConvImpl(int64_t in, int64_t out, ConvMode mode);
  // With a state (causal only), x continues the positions the state has seen
  // and the state is advanced; the result equals running the whole sequence.
  torch::Tensor forward(const torch::Tensor& x, SeqConvState* state = nullptr);
  torch::nn::Conv1d conv{nullptr};

 private:
  ConvMode mode_;
};
TORCH_MODULE(SeqConv);

// Incremental state of one autoencoder: one entry per sequence convolution.
struct AutoencoderState {
  std::vector<SeqConvState> convs;
  void clear() { convs.clear(); }
};

// 1D: encoder = [Linear(C,Z), GELU], decoder = [SeqConv(Z->C)].
// 2D: encoder = [SeqConv(C->Ze), GELU, LayerNorm(Ze)] (local pathway),
//     residual_adapter = [Linear(C,r), ReLU, Linear(r,Zr)] (global pathway),
//     decoder = [Dropout(0.1), SeqConv(Z->C)] applied to concat(local, global).
// GELU is the exact (erf) one. Module names give the parameter names
// (encoder.0.weight, decoder.0.conv.weight, ...).
class AutoencoderImpl : public torch::nn::Module {
 public:
  explicit AutoencoderImpl(const AutoencoderConfig& config);
  // (B,T,C) -> (B,T,C). A state makes the convolutions incremental (causal only).
  torch::Tensor forward(const torch::Tensor& x, AutoencoderState* state = nullptr);
  const AutoencoderConfig& config() const { return config_; }

  torch::nn::ModuleList encoder{nullptr};
  torch::nn::ModuleList residual_adapter{nullptr};  // 2D only
  torch::nn::ModuleList decoder{nullptr};

 private:
  AutoencoderConfig config_;
};
TORCH_MODULE(Autoencoder);

}  // namespace superpose
