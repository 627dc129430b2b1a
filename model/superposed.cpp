// The superposed forward pass and α/autoencoder controls.
#include "model/superposed.h"

#include <algorithm>

#include <torch/torch.h>

#include "model/errors.h"

namespace superpose {
namespace {

// Passes an expert block's inner sites on under the expert's own names.
class ExpertObserver : public ForwardObserver {
 public:
  ExpertObserver(ForwardObserver* inner, bool fine) : inner_(inner), fine_(fine) {}
  static Site map(Site site, bool fine) {
    if (site == Site::kMlpActivation) return fine ? Site::kFineMlpActivation : Site::kBaseMlpActivation;
    if (site == Site::kAttention) return fine ? Site::kFineAttention : Site::kBaseAttention;
    return site;
  }
  bool wants(Site site, int64_t index) const override {
    return (site == Site::kMlpActivation || site == Site::kAttention) && inner_->wants(map(site, fine_), index);
  }
  void observe(Site site, int64_t index, const torch::Tensor& value) override {
    inner_->observe(map(site, fine_), index, value);
  }

 private:
  ForwardObserver* inner_;
  bool fine_;
};

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::string embedding_blend_name(EmbeddingBlend blend) {
  return blend == EmbeddingBlend::kMeanAlpha ? "mean-alpha" : "base";
}

EmbeddingBlend parse_embedding_blend(const std::string& name, const std::string& where) {
  if (name == "mean-alpha") return EmbeddingBlend::kMeanAlpha;
  if (name == "base") return EmbeddingBlend::kBase;
  throw Error(where, "unknown embedding blend '" + name + "'; expected mean-alpha or base");
}

std::string chain_name(Chain chain) { return chain == Chain::kFree ? "free" : "teacher"; }

Chain parse_chain(const std::string& name, const std::string& where) {
  if (name == "free") return Chain::kFree;
  if (name == "teacher") return Chain::kTeacher;
  throw Error(where, "unknown chain '" + name + "'; expected teacher or free");
}

SuperposedConfig SuperposedConfig::defaults(AlphaVariant variant, const GPT2Config& experts, ConvMode conv) {
  SuperposedConfig config;
  config.alpha.variant = variant;
  config.alpha.n_layer = experts.n_layer;
  config.alpha.n_embd = experts.n_embd;
  for (int64_t l = 0; l < experts.n_layer; ++l) config.ae_layers.push_back(l);
  config.autoencoder = AutoencoderConfig::defaults(variant, experts.n_embd, conv);
  return config;
}

void validate(const SuperposedConfig& config, const std::string& where) {
  validate(config.alpha, where);
  if (config.autoencoder.variant != config.alpha.variant) {
    throw Error(where, "the autoencoders' design (" + variant_name(config.autoencoder.variant) +
                           ") differs from the α variant (" + variant_name(config.alpha.variant) + ")");
  }
  if (config.autoencoder.n_embd != config.alpha.n_embd) {
    throw Error(where, "autoencoder width " + std::to_string(config.autoencoder.n_embd) + " differs from n_embd " +
                           std::to_string(config.alpha.n_embd));
  }
  if (!config.ae_layers.empty()) validate(config.autoencoder, where);
  for (size_t i = 0; i < config.ae_layers.size(); ++i) {
    const int64_t l = config.ae_layers[i];
    if (l < 0 || l >= config.alpha.n_layer) {
      throw Error(where, "autoencoder layer " + std::to_string(l) + " is outside 0.." +
                             std::to_string(config.alpha.n_layer - 1));
    }
    if (i > 0 && l <= config.ae_layers[i - 1]) {
      throw Error(where, "autoencoder layers must be ascending and distinct (" + std::to_string(l) + " after " +
                             std::to_string(config.ae_layers[i - 1]) + ")");
    }
  }
}

void check_experts_match(const GPT2Config& base, const GPT2Config& fine, const std::string& base_name,
                         const std::string& fine_name) {
  auto differ = [&](const std::string& field, const std::string& b, const std::string& f) {
    throw Error(fine_name, "cannot be superposed with " + base_name + ": " + field + " is " + f + ", base has " + b);
  };
  auto check = [&](const char* field, int64_t b, int64_t f) {
    if (b != f) differ(field, std::to_string(b), std::to_string(f));
  };
  check("n_layer", base.n_layer, fine.n_layer);
  check("n_embd", base.n_embd, fine.n_embd);
  check("n_head", base.n_head, fine.n_head);
  check("vocab_size", base.vocab_size, fine.vocab_size);
  check("n_positions", base.n_positions, fine.n_positions);
  check("MLP width", base.mlp_width(), fine.mlp_width());
  if (base.activation_function != fine.activation_function) {
    differ("activation_function", base.activation_function, fine.activation_function);
  }
}

void SuperposedCache::clear() {
  base.clear();
  fine.clear();
  for (auto& state : autoencoders) state.clear();
}

SuperposedModelImpl::SuperposedModelImpl(GPT2 base, GPT2 fine, const SuperposedConfig& config)
    : base_(std::move(base)), fine_(std::move(fine)), config_(config) {
  check_experts_match(base_->config(), fine_->config(), "base", "fine");
  validate(config, "superposition");
  if (config.alpha.n_layer != base_->config().n_layer || config.alpha.n_embd != base_->config().n_embd) {
    throw Error("superposition", "made for " + std::to_string(config.alpha.n_layer) + " layers of width " +
                                     std::to_string(config.alpha.n_embd) + ", but the experts have " +
                                     std::to_string(base_->config().n_layer) + " layers of width " +
                                     std::to_string(base_->config().n_embd));
  }
  alpha = register_module("alpha", Alpha(config.alpha));
  ae = register_module("ae", torch::nn::ModuleDict());
  for (int64_t l : config.ae_layers) ae->update({{std::to_string(l), Autoencoder(config.autoencoder).ptr()}});
  ae_enabled_.assign(static_cast<size_t>(config.alpha.n_layer), true);
  const auto params = base_->parameters();
  if (!params.empty()) to_device(params.front().device(), params.front().scalar_type());
}

void SuperposedModelImpl::to_device(torch::Device device, torch::Dtype dtype) {
  alpha->to(device, torch::kFloat32);
  ae->to(device, dtype);
  if (alpha_override_.defined()) alpha_override_ = alpha_override_.to(device);
}

SuperposedCache SuperposedModelImpl::make_cache() const {
  SuperposedCache cache{base_->make_cache(), fine_->make_cache(), {}};
  cache.autoencoders.resize(static_cast<size_t>(n_layer()));
  return cache;
}

bool SuperposedModelImpl::has_autoencoder(int64_t layer) const {
  return std::binary_search(config_.ae_layers.begin(), config_.ae_layers.end(), layer);
}

bool SuperposedModelImpl::autoencoder_enabled(int64_t layer) const {
  check_layer(layer);
  return has_autoencoder(layer) && ae_enabled_[static_cast<size_t>(layer)];
}

void SuperposedModelImpl::set_autoencoder_enabled(int64_t layer, bool enabled) {
  check_layer(layer);
  ae_enabled_[static_cast<size_t>(layer)] = enabled;
}

void SuperposedModelImpl::enable_all_autoencoders() { std::fill(ae_enabled_.begin(), ae_enabled_.end(), true); }

Autoencoder SuperposedModelImpl::autoencoder(int64_t layer) {
  if (!has_autoencoder(layer)) return Autoencoder(nullptr);
  return Autoencoder(std::dynamic_pointer_cast<AutoencoderImpl>(ae[std::to_string(layer)]));
}

torch::Tensor SuperposedModelImpl::learned_alpha() {
  torch::NoGradGuard no_grad;
  return alpha->forward().detach();
}

torch::Tensor SuperposedModelImpl::effective_alpha() {
  return alpha_override_.defined() ? alpha_override_ : learned_alpha();
}

void SuperposedModelImpl::check_layer(int64_t layer) const {
  if (layer < 0 || layer >= n_layer()) {
    throw Error("alpha", "layer " + std::to_string(layer) + " is outside 0.." + std::to_string(n_layer() - 1));
  }
}

void SuperposedModelImpl::check_value(double value) const {
  if (!(value >= 0.0 && value <= 1.0)) {
    throw Error("alpha", "value " + std::to_string(value) + " is outside [0, 1]");
  }
}

void SuperposedModelImpl::ensure_override() {
  if (!alpha_override_.defined()) alpha_override_ = learned_alpha().clone();
}

void SuperposedModelImpl::set_alpha(double value) {
  check_value(value);
  alpha_override_ = torch::full(alpha->shape(), value, alpha->control_points.options().requires_grad(false));
}

void SuperposedModelImpl::set_alpha_layer(int64_t layer, double value) {
  check_layer(layer);
  check_value(value);
  ensure_override();
  alpha_override_[layer].fill_(value);
}

void SuperposedModelImpl::set_alpha_layer_dim(int64_t layer, int64_t dim, double value) {
  check_layer(layer);
  check_value(value);
  if (config_.alpha.variant != AlphaVariant::k2D) throw Error("alpha", "per-dimension values need a 2D superposition");
  if (dim < 0 || dim >= config_.alpha.n_embd) {
    throw Error("alpha", "dimension " + std::to_string(dim) + " is outside 0.." + std::to_string(config_.alpha.n_embd - 1));
  }
  ensure_override();
  alpha_override_[layer][dim].fill_(value);
}

void SuperposedModelImpl::set_alpha_override(const torch::Tensor& value) {
  if (value.sizes().vec() != alpha->shape()) {
    throw Error("alpha", "override has shape " + shape_string(value.sizes().vec()) + ", this superposition needs " +
                             shape_string(alpha->shape()));
  }
  const auto v = value.detach().to(torch::kCPU, torch::kFloat64);
  if (!torch::isfinite(v).all().item<bool>() || v.min().item<double>() < 0.0 || v.max().item<double>() > 1.0) {
    throw Error("alpha", "override values must be in [0, 1]");
  }
  alpha_override_ = value.detach().to(alpha->control_points.device(), torch::kFloat32).clone();
}

void SuperposedModelImpl::clear_alpha_override() { alpha_override_ = torch::Tensor(); }

torch::Tensor SuperposedModelImpl::alpha_per_position(const torch::Tensor& given, int64_t T) {
  const auto a = given.defined() ? given : effective_alpha();
  const int64_t L = n_layer();
  const bool two_d = config_.alpha.variant == AlphaVariant::k2D;
  const int64_t per_position_dims = two_d ? 3 : 2;
  torch::Tensor out;  // (T,L,1) or (T,L,C)
  if (a.dim() == per_position_dims - 1) {
    out = (two_d ? a : a.unsqueeze(-1)).unsqueeze(0).expand({T, L, two_d ? config_.alpha.n_embd : 1});
  } else if (a.dim() == per_position_dims) {
    TORCH_CHECK(a.size(0) == T, "per-position α has ", a.size(0), " rows for ", T, " positions");
    out = two_d ? a : a.unsqueeze(-1);
  } else {
    TORCH_CHECK(false, "α has ", a.dim(), " dimensions; expected ", per_position_dims - 1, " or ", per_position_dims);
  }
  TORCH_CHECK(out.size(1) == L && (!two_d || out.size(2) == config_.alpha.n_embd), "α has the wrong shape ",
              a.sizes());
  const auto& reference = base_->wte->weight;
  return out.to(reference.device(), reference.scalar_type());
}

torch::Tensor SuperposedModelImpl::forward(const torch::Tensor& ids, SuperposedCache* cache, ForwardObserver* observer,
                                           const torch::Tensor& alpha_given) {
  return run(ids, cache, observer, alpha_given, Chain::kFree, nullptr);
}

SuperposedTrainingOutput SuperposedModelImpl::forward_training(const torch::Tensor& ids, Chain chain) {
  SuperposedTrainingOutput out;
  // The learned α with its graph (effective_alpha() is detached), unless overridden.
  const auto a = has_alpha_override() ? alpha_override_ : alpha->forward();
  out.logits = run(ids, nullptr, nullptr, a, chain, &out.reconstructions);
  return out;
}

torch::Tensor SuperposedModelImpl::run(const torch::Tensor& ids, SuperposedCache* cache, ForwardObserver* observer,
                                       const torch::Tensor& alpha_given, Chain chain,
                                       std::vector<torch::Tensor>* reconstructions) {
  TORCH_CHECK(cache == nullptr || causal(), "a non-causal superposition cannot decode incrementally");
  const int64_t T = ids.size(1);
  const int64_t past = cache != nullptr ? cache->length() : 0;
  const auto a = alpha_per_position(alpha_given, T);  // (T,L,1|C)
  ExpertObserver base_observer(observer, false), fine_observer(observer, true);
  ForwardObserver* base_inner = observer != nullptr ? &base_observer : nullptr;
  ForwardObserver* fine_inner = observer != nullptr ? &fine_observer : nullptr;
  auto emit = [&](Site site, int64_t index, const torch::Tensor& value) {
    if (observer_wants(observer, site, index)) observer->observe(site, index, value);
  };

  const auto e_base = base_->embed(ids, past);  // (B,T,C)
  torch::Tensor h;
  if (config_.embedding_blend == EmbeddingBlend::kMeanAlpha) {
    const auto mean = a.mean(1).unsqueeze(0);  // (1,T,1|C)
    h = (1 - mean) * e_base + mean * fine_->embed(ids, past);
  } else {
    h = e_base;
  }
  emit(Site::kState, 0, h);
  for (int64_t l = 0; l < n_layer(); ++l) {
    const auto hb = base_->block(l)->forward(h, cache ? &cache->base.layer(l) : nullptr, base_inner);
    const auto hf = fine_->block(l)->forward(h, cache ? &cache->fine.layer(l) : nullptr, fine_inner);
    const auto al = a.select(1, l).unsqueeze(0);  // (1,T,1|C)
    const auto blended = (1 - al) * hb + al * hf;
    emit(Site::kBaseOutput, l, hb);
    emit(Site::kFineOutput, l, hf);
    emit(Site::kBlended, l, blended);
    auto* state = cache != nullptr ? &cache->autoencoders[static_cast<size_t>(l)] : nullptr;
    if (autoencoder_enabled(l)) {
      h = ae[std::to_string(l)]->as<AutoencoderImpl>()->forward(blended, state);
      if (reconstructions != nullptr) reconstructions->push_back(h);
      // Teacher forcing: the next block reads the blend, not its reconstruction.
      if (chain == Chain::kTeacher && l + 1 < n_layer()) h = blended;
    } else {
      // A switched-off autoencoder still sees every position, so switching
      // it back on mid-sequence continues exactly as if it had been on.
      if (state != nullptr && has_autoencoder(l)) ae[std::to_string(l)]->as<AutoencoderImpl>()->forward(blended, state);
      h = blended;
      if (reconstructions != nullptr) reconstructions->push_back(h);
    }
    emit(Site::kState, l + 1, h);
  }
  return base_->head(base_->ln_f(h));  // (B,T,V)
}

}  // namespace superpose
