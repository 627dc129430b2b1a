// The superposed transformer (SPEC §4): two frozen GPT-2 experts whose block
// outputs are blended layer by layer with α and reconstructed by autoencoders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "model/alpha.h"
#include "model/autoencoder.h"
#include "model/gpt2.h"
#include "model/kv_cache.h"
#include "model/observer.h"

namespace superpose {

// How the superposition embeds tokens.
enum class EmbeddingBlend {
  kMeanAlpha,  // (1-ᾱ)·e_base + ᾱ·e_fine with ᾱ the mean of α over layers (2D: per dimension)
  kBase,       // e_base only
};
std::string embedding_blend_name(EmbeddingBlend blend);  // "mean-alpha" / "base"
EmbeddingBlend parse_embedding_blend(const std::string& name, const std::string& where);

// What the next block reads while training (SPEC §5): `kFree` is the
// inference chain (the autoencoder's reconstruction); `kTeacher` passes the
// blend on and reconstructs it only for the loss (the last block's
// reconstruction still feeds the head).
enum class Chain { kFree, kTeacher };
std::string chain_name(Chain chain);  // "free" / "teacher"
Chain parse_chain(const std::string& name, const std::string& where);

// forward_training()'s result.
struct SuperposedTrainingOutput {
  torch::Tensor logits;                        // (B,T,V)
  std::vector<torch::Tensor> reconstructions;  // per block l: ĥ_l (B,T,C); the blend where no autoencoder runs
};

// Everything that shapes a superposition besides its experts' weights.
struct SuperposedConfig {
  AlphaConfig alpha;                // variant, L, C, K, degree
  std::vector<int64_t> ae_layers;   // blocks (0-based, ascending) with an autoencoder
  AutoencoderConfig autoencoder;    // shared by every autoencoder
  EmbeddingBlend embedding_blend = EmbeddingBlend::kMeanAlpha;

  // SPEC defaults for experts with this config: K = 16, cubic, an
  // autoencoder at every layer with the SPEC §3 sizes.
  static SuperposedConfig defaults(AlphaVariant variant, const GPT2Config& experts,
                                   ConvMode conv = ConvMode::kCausal);
  // Causal unless some autoencoder uses a centered convolution.
  bool causal() const { return ae_layers.empty() || autoencoder.conv == ConvMode::kCausal; }
};

// Throws Error(where, ...) for inconsistent sizes, layers out of range or
// repeated, or an autoencoder/α width that differs from n_embd.
void validate(const SuperposedConfig& config, const std::string& where);

// Incremental state for generation: one KV cache per expert, one
// convolution state per autoencoder (indexed by block).
struct SuperposedCache {
  KVCache base, fine;
  std::vector<AutoencoderState> autoencoders;
  int64_t length() const { return base.length(); }
  void clear();
};

// Owns α and the autoencoders (its registered parameters: alpha.*, ae.{l}.*);
// holds the two experts, which are frozen and not registered, so
// parameters() is exactly what training updates.
//
// The α in force is the learned α unless an override is set (the app's
// sliders and the CLI's --alpha). forward() can also take α per position.
// Not thread-safe: one thread runs and steers a model at a time.
class SuperposedModelImpl : public torch::nn::Module {
 public:
  // Throws Error when the experts' shapes differ from each other or from config.
  SuperposedModelImpl(GPT2 base, GPT2 fine, const SuperposedConfig& config);

  // (B,T) ids -> (B,T,V) logits: logits = head_base(ln_f_base(h_L)).
  // `alpha` is what blends positions past..past+T-1: undefined = the α in
  // force; (L) / (L,C) = one α for every position; (T,L) / (T,L,C) = per
  // position. With a cache (causal models only), ids continue the cached
  // positions. The observer sees kState, kBaseOutput, kFineOutput,
  // kBlended and the experts' inner sites (kBase*/kFine*).
  torch::Tensor forward(const torch::Tensor& ids, SuperposedCache* cache = nullptr,
                        ForwardObserver* observer = nullptr, const torch::Tensor& alpha = {});

  // The training pass: the observer-free forward over whole sequences with
  // the chain `chain`, also returning every block's reconstruction.
  SuperposedTrainingOutput forward_training(const torch::Tensor& ids, Chain chain);

  // --- α ---------------------------------------------------------------
  torch::Tensor learned_alpha();    // (L) / (L,C), float32, no gradient
  torch::Tensor effective_alpha();  // the override if set, else learned_alpha()
  bool has_alpha_override() const { return alpha_override_.defined(); }
  // Overrides; values must be in [0, 1] (Error("alpha", ...) otherwise).
  void set_alpha(double value);                                // every layer (and dimension)
  void set_alpha_layer(int64_t layer, double value);          // one layer (every dimension)
  void set_alpha_layer_dim(int64_t layer, int64_t dim, double value);  // 2D only
  void set_alpha_override(const torch::Tensor& alpha);         // (L) / (L,C)
  void clear_alpha_override();
  std::vector<int64_t> alpha_shape() const { return alpha->shape(); }

  // --- autoencoders ----------------------------------------------------
  bool has_autoencoder(int64_t layer) const;
  bool autoencoder_enabled(int64_t layer) const;
  // Switching off a layer that has no autoencoder is allowed (a no-op).
  void set_autoencoder_enabled(int64_t layer, bool enabled);
  void enable_all_autoencoders();
  Autoencoder autoencoder(int64_t layer);  // nullptr when the layer has none

  // --- structure -------------------------------------------------------
  const SuperposedConfig& config() const { return config_; }
  bool causal() const { return config_.causal(); }
  int64_t n_layer() const { return config_.alpha.n_layer; }
  int64_t context() const { return base_->config().n_positions; }
  SuperposedCache make_cache() const;
  GPT2& base() { return base_; }
  GPT2& fine() { return fine_; }
  // Moves α and the autoencoders to `device` (α stays float32, the
  // autoencoders take `dtype`); the experts are moved by whoever loads them.
  void to_device(torch::Device device, torch::Dtype dtype);

  Alpha alpha{nullptr};
  torch::nn::ModuleDict ae{nullptr};  // key "l" -> Autoencoder

 private:
  torch::Tensor run(const torch::Tensor& ids, SuperposedCache* cache, ForwardObserver* observer,
                    const torch::Tensor& alpha, Chain chain, std::vector<torch::Tensor>* reconstructions);
  // α for T positions as (T,L,1) or (T,L,C) on the experts' device/dtype.
  torch::Tensor alpha_per_position(const torch::Tensor& alpha, int64_t T);
  void check_layer(int64_t layer) const;
  void check_value(double value) const;
  void ensure_override();

  GPT2 base_, fine_;
  SuperposedConfig config_;
  torch::Tensor alpha_override_;      // (L) / (L,C) float32 on the α device, or undefined
  std::vector<bool> ae_enabled_;      // per block
};
TORCH_MODULE(SuperposedModel);

// Throws Error naming both sides when two experts cannot be superposed
// (n_layer, n_embd, n_head, vocab_size, n_positions, MLP width or activation differ).
void check_experts_match(const GPT2Config& base, const GPT2Config& fine, const std::string& base_name,
                         const std::string& fine_name);

}  // namespace superpose
