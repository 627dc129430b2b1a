// Autoencoders over the blended hidden state.
#include "model/autoencoder.h"

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {

std::string conv_mode_name(ConvMode mode) { return mode == ConvMode::kCausal ? "causal" : "centered"; }

ConvMode parse_conv_mode(const std::string& name, const std::string& where) {
  if (name == "causal") return ConvMode::kCausal;
  if (name == "centered") return ConvMode::kCentered;
  throw Error(where, "unknown convolution mode '" + name + "'; expected causal or centered");
}

AutoencoderConfig AutoencoderConfig::defaults(AlphaVariant variant, int64_t n_embd, ConvMode conv,
                                              int64_t bottleneck) {
  AutoencoderConfig config;
  config.variant = variant;
  config.n_embd = n_embd;
  config.conv = conv;
  const double share = variant == AlphaVariant::k1D ? 0.75 : 0.65;
  config.bottleneck = bottleneck > 0 ? bottleneck : static_cast<int64_t>(share * static_cast<double>(n_embd));
  if (variant == AlphaVariant::k2D) {
    config.local = static_cast<int64_t>(0.8 * static_cast<double>(config.bottleneck));
    config.adapter_rank = std::min<int64_t>(32, config.bottleneck - config.local);
  }
  return config;
}

void validate(const AutoencoderConfig& config, const std::string& where) {
  if (config.n_embd < 1 || config.bottleneck < 1) {
    throw Error(where, "autoencoder sizes must be positive (width " + std::to_string(config.n_embd) +
                           ", bottleneck " + std::to_string(config.bottleneck) + ")");
  }
  if (config.variant == AlphaVariant::k2D &&
      (config.local < 1 || config.global() < 1 || config.adapter_rank < 1)) {
    throw Error(where, "2D autoencoder needs local, global and adapter sizes >= 1 (bottleneck " +
                           std::to_string(config.bottleneck) + ", local " + std::to_string(config.local) +
                           ", adapter rank " + std::to_string(config.adapter_rank) + ")");
  }
}

SeqConvImpl::SeqConvImpl(int64_t in, int64_t out, ConvMode mode) : mode_(mode) {
  conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(in, out, 3)));
}

torch::Tensor SeqConvImpl::forward(const torch::Tensor& x, SeqConvState* state) {
  const int64_t B = x.size(0), in = x.size(2);
  torch::Tensor padded;  // (B,T+2,in)
  if (mode_ == ConvMode::kCausal) {
    const auto left = state != nullptr && state->past.defined() ? state->past : torch::zeros({B, 2, in}, x.options());
    padded = torch::cat({left, x}, 1);
    if (state != nullptr) state->past = padded.narrow(1, padded.size(1) - 2, 2);
  } else {
    TORCH_CHECK(state == nullptr, "a centered convolution reads the next position and cannot run incrementally");
    const auto zero = torch::zeros({B, 1, in}, x.options());
    padded = torch::cat({zero, x, zero}, 1);
  }
  // The kernel-3 convolution as one matrix product over the three shifted
  // views: y_t = W·[p_t, p_{t+1}, p_{t+2}] + b with W = conv.weight (out,in,3)
  // laid out (out, 3·in). (LibTorch 1.13's CPU Conv1d backward returned
  // garbage input gradients now and then for this layout; this form is exact
  // and the weights keep Conv1d's shape and meaning.)
  const int64_t T = padded.size(1) - 2;
  const auto windows = torch::cat({padded.narrow(1, 0, T), padded.narrow(1, 1, T), padded.narrow(1, 2, T)}, -1);
  const auto weight = conv->weight.permute({0, 2, 1}).reshape({conv->weight.size(0), 3 * in});
  return torch::nn::functional::linear(windows, weight, conv->bias);  // (B,T,out)
}

AutoencoderImpl::AutoencoderImpl(const AutoencoderConfig& config) : config_(config) {
  validate(config, "autoencoder");
  const int64_t C = config.n_embd, Z = config.bottleneck;
  using namespace torch::nn;
  if (config.variant == AlphaVariant::k1D) {
    encoder = register_module("encoder", ModuleList(Linear(C, Z), GELU()));
    decoder = register_module("decoder", ModuleList(SeqConv(Z, C, config.conv)));
  } else {
    const int64_t Ze = config.local, Zr = config.global(), r = config.adapter_rank;
    encoder = register_module("encoder", ModuleList(SeqConv(C, Ze, config.conv), GELU(),
                                                    LayerNorm(LayerNormOptions({Ze}))));
    residual_adapter = register_module("residual_adapter", ModuleList(Linear(C, r), ReLU(), Linear(r, Zr)));
    decoder = register_module("decoder", ModuleList(Dropout(0.1), SeqConv(Z, C, config.conv)));
  }
}

torch::Tensor AutoencoderImpl::forward(const torch::Tensor& x, AutoencoderState* state) {
  SeqConvState* first = nullptr;
  SeqConvState* second = nullptr;
  if (state != nullptr) {
    state->convs.resize(2);
    first = &state->convs[0];
    second = &state->convs[1];
  }
  if (config_.variant == AlphaVariant::k1D) {
    const auto z = torch::gelu(encoder->ptr<torch::nn::LinearImpl>(0)->forward(x));  // (B,T,Z)
    return decoder->ptr<SeqConvImpl>(0)->forward(z, first);                          // (B,T,C)
  }
  auto local = encoder->ptr<SeqConvImpl>(0)->forward(x, first);  // (B,T,Ze)
  local = encoder->ptr<torch::nn::LayerNormImpl>(2)->forward(torch::gelu(local));
  auto global = torch::relu(residual_adapter->ptr<torch::nn::LinearImpl>(0)->forward(x));  // (B,T,r)
  global = residual_adapter->ptr<torch::nn::LinearImpl>(2)->forward(global);              // (B,T,Zr)
  auto z = decoder->ptr<torch::nn::DropoutImpl>(0)->forward(torch::cat({local, global}, -1));  // (B,T,Z)
  return decoder->ptr<SeqConvImpl>(1)->forward(z, second);                                  // (B,T,C)
}

}  // namespace superpose
