// GPT-2 forward pass and strict, table-driven loading from safetensors.
#include "model/gpt2.h"

#include <map>
#include <regex>
#include <sstream>

#include <torch/torch.h>

#include "model/errors.h"
#include "model/safetensors.h"

namespace superpose {

GPT2Impl::GPT2Impl(const GPT2Config& config) : config_(config) {
  wte = register_module("wte", torch::nn::Embedding(config.vocab_size, config.n_embd));
  wpe = register_module("wpe", torch::nn::Embedding(config.n_positions, config.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layer; ++i) h->push_back(Block(config, i));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(
                                     torch::nn::LayerNormOptions({config.n_embd}).eps(config.layer_norm_epsilon)));
  if (!config.tie_word_embeddings) {
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(config.n_embd, config.vocab_size).bias(false)));
  }
}

torch::Tensor GPT2Impl::embed(const torch::Tensor& ids, int64_t past) {
  TORCH_CHECK(ids.dim() == 2, "GPT2::embed: expected (B,T) ids, got ", ids.sizes());
  const int64_t T = ids.size(1);
  if (past + T > config_.n_positions) {
    throw Error("sequence", std::to_string(past + T) + " positions exceed the model's context of " +
                                std::to_string(config_.n_positions));
  }
  auto pos = torch::arange(past, past + T, ids.options().dtype(torch::kLong));  // (T)
  return wte(ids) + wpe(pos).unsqueeze(0);                                        // (B,T,C)
}

torch::Tensor GPT2Impl::head(const torch::Tensor& x) {
  return torch::nn::functional::linear(x, lm_head ? lm_head->weight : wte->weight);  // (B,T,C) -> (B,T,V)
}

torch::Tensor GPT2Impl::forward(const torch::Tensor& ids, KVCache* cache, ForwardObserver* observer) {
  TORCH_CHECK(!cache || cache->n_layer() == config_.n_layer, "GPT2: cache has ", cache ? cache->n_layer() : 0,
              " layers, model has ", config_.n_layer);
  auto x = embed(ids, cache ? cache->length() : 0);  // (B,T,C)
  const int64_t L = config_.n_layer;
  for (int64_t i = 0; i < L; ++i) {
    if (observer_wants(observer, Site::kResidual, i)) observer->observe(Site::kResidual, i, x);
    x = block(i)(x, cache ? &cache->layer(i) : nullptr, observer);
  }
  x = ln_f(x);
  if (observer_wants(observer, Site::kResidual, L)) observer->observe(Site::kResidual, L, x);
  return head(x);  // (B,T,V)
}

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

}  // namespace

std::map<std::string, std::vector<int64_t>> gpt2_parameter_shapes(const GPT2Config& c) {
  const int64_t C = c.n_embd, inner = c.mlp_width();
  std::map<std::string, std::vector<int64_t>> shapes = {
      {"wte.weight", {c.vocab_size, C}}, {"wpe.weight", {c.n_positions, C}},
      {"ln_f.weight", {C}},              {"ln_f.bias", {C}},
  };
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    shapes[p + "ln_1.weight"] = {C};
    shapes[p + "ln_1.bias"] = {C};
    shapes[p + "attn.c_attn.weight"] = {C, 3 * C};  // Conv1D: [in, out]
    shapes[p + "attn.c_attn.bias"] = {3 * C};
    shapes[p + "attn.c_proj.weight"] = {C, C};
    shapes[p + "attn.c_proj.bias"] = {C};
    shapes[p + "ln_2.weight"] = {C};
    shapes[p + "ln_2.bias"] = {C};
    shapes[p + "mlp.c_fc.weight"] = {C, inner};
    shapes[p + "mlp.c_fc.bias"] = {inner};
    shapes[p + "mlp.c_proj.weight"] = {inner, C};
    shapes[p + "mlp.c_proj.bias"] = {C};
  }
  if (!c.tie_word_embeddings) shapes["lm_head.weight"] = {c.vocab_size, C};
  return shapes;
}

int64_t gpt2_parameter_count(const GPT2Config& config) {
  int64_t total = 0;
  for (const auto& [name, shape] : gpt2_parameter_shapes(config)) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    total += numel;
  }
  return total;
}

std::vector<LoadedTensor> match_gpt2_tensors(const SafetensorsFile& file, const GPT2Config& config) {
  const std::string where = file.path().string();
  static const std::regex kIgnored(R"(^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$)");
  const std::string kPrefix = "transformer.";
  const auto table = gpt2_parameter_shapes(config);

  std::map<std::string, std::string> file_for_param;  // which file tensor fills a parameter
  std::vector<LoadedTensor> rows;
  for (const auto& info : file.tensors()) {
    const std::string& name = info.name;
    if (std::regex_match(name, kIgnored)) continue;
    const std::string module_name = name.rfind(kPrefix, 0) == 0 ? name.substr(kPrefix.size()) : name;
    if (module_name == "lm_head.weight" && config.tie_word_embeddings) continue;  // the head is wte
    auto it = table.find(module_name);
    if (it == table.end()) {
      throw Error(where, "unexpected tensor '" + name + "' (not a parameter of a GPT-2 with " +
                             std::to_string(config.n_layer) + " layers)");
    }
    if (file_for_param.count(module_name)) {
      throw Error(where, "tensor '" + module_name + "' appears twice ('" + file_for_param[module_name] + "' and '" +
                             name + "')");
    }
    if (info.shape != it->second) {
      throw Error(where, "tensor '" + name + "': expected shape " + shape_string(it->second) + ", got " +
                             shape_string(info.shape));
    }
    file_for_param[module_name] = name;
    rows.push_back({name, module_name, info.dtype, info.shape});
  }
  for (const auto& [module_name, shape] : table) {
    if (!file_for_param.count(module_name)) {
      throw Error(where, "missing tensor '" + module_name + "' (expected shape " + shape_string(shape) +
                             ", with or without the 'transformer.' prefix)");
    }
  }
  return rows;
}

std::vector<LoadedTensor> load_gpt2_weights(GPT2& model, const std::filesystem::path& path) {
  const SafetensorsFile file(path);
  auto rows = match_gpt2_tensors(file, model->config());
  auto params = model->named_parameters();
  torch::NoGradGuard no_grad;
  for (const auto& row : rows) {
    torch::Tensor& param = params[row.module_name];
    param.copy_(file.load(row.file_name, param.scalar_type()));
  }
  return rows;
}

}  // namespace superpose
