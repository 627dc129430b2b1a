// Weight-space merges of two GPT-2 experts, tensor by tensor, and writing the
// merged model as an HF directory.
#include "model/merge.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/gpt2.h"
#include "model/safetensors.h"
#include "model/superposed.h"

namespace fs = std::filesystem;

namespace superpose {
namespace {

struct MethodName {
  MergeMethod method;
  const char* name;
};
constexpr MethodName kMethods[] = {
    {MergeMethod::kLinear, "linear"}, {MergeMethod::kTaskArithmetic, "task-arithmetic"},
    {MergeMethod::kAlphaHard, "alpha-hard"}, {MergeMethod::kSlerp, "slerp"},
    {MergeMethod::kTies, "ties"},     {MergeMethod::kDare, "dare"},
};

// Files of the base's directory that describe its tokenizer and generation
// defaults; the merged model shares them, so they are copied when present.
constexpr const char* kSideFiles[] = {"vocab.json",      "merges.txt",
                                      "tokenizer.json",  "tokenizer_config.json",
                                      "special_tokens_map.json", "generation_config.json"};

// The shortest text that reads back as `value` ("0.1", "1.0"), or nan / inf / -inf.
std::string number_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return nlohmann::json(value).dump();
}

bool in_unit_interval(double x) { return x >= 0.0 && x <= 1.0; }  // false for NaN

torch::Tensor as_f32(const torch::Tensor& t) { return t.to(torch::kFloat32); }

void check_pair(const torch::Tensor& base, const torch::Tensor& fine, const char* method) {
  TORCH_CHECK(base.sizes() == fine.sizes(), method, ": expected base and fine of one shape, got ", base.sizes(),
              " and ", fine.sizes());
  TORCH_CHECK(base.is_floating_point() && fine.is_floating_point(), method, ": expected floating-point tensors, got ",
              base.scalar_type(), " and ", fine.scalar_type());
}

torch::Dtype stored_dtype(const std::string& name) {
  if (name == "F32") return torch::kFloat32;
  if (name == "F16") return torch::kFloat16;
  if (name == "BF16") return torch::kBFloat16;
  if (name == "F64") return torch::kFloat64;
  TORCH_CHECK(false, "merge: a GPT-2 parameter stored as ", name, " cannot have been loaded");
}

// "h.3.attn.c_attn.weight" -> 3; -1 for parameters outside the blocks.
int64_t block_index(const std::string& name) {
  if (name.rfind("h.", 0) != 0) return -1;
  return std::stoll(name.substr(2, name.find('.', 2) - 2));
}

double mean(const std::vector<double>& values) {
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

}  // namespace

MergeMethod parse_merge_method(const std::string& name) {
  std::string expected;
  for (const auto& m : kMethods) {
    if (name == m.name) return m.method;
    expected += std::string(expected.empty() ? "" : ", ") + m.name;
  }
  throw Error("--method", "unknown merge method '" + name + "'; expected one of " + expected);
}

std::string merge_method_name(MergeMethod method) {
  for (const auto& m : kMethods) {
    if (m.method == method) return m.name;
  }
  TORCH_CHECK(false, "merge_method_name: unknown MergeMethod ", static_cast<int>(method));
}

double merge_lambda(const MergeOptions& options) {
  if (options.lambda) return *options.lambda;
  return options.method == MergeMethod::kTaskArithmetic ? 0.5 : 1.0;
}

void validate_merge_options(const MergeOptions& o, int64_t n_layer) {
  switch (o.method) {
    case MergeMethod::kLinear:
    case MergeMethod::kSlerp:
      if (!in_unit_interval(o.t)) throw Error("--t", "must be in [0, 1], got " + number_text(o.t));
      return;
    case MergeMethod::kTies:
    case MergeMethod::kDare:
      if (!(o.density > 0.0 && o.density <= 1.0)) {
        throw Error("--density", "must be in (0, 1], got " + number_text(o.density));
      }
      [[fallthrough]];
    case MergeMethod::kTaskArithmetic:
      if (!std::isfinite(merge_lambda(o))) throw Error("--lambda", "must be a finite number, got " + number_text(merge_lambda(o)));
      return;
    case MergeMethod::kAlphaHard:
      if (static_cast<int64_t>(o.layer_alpha.size()) != n_layer) {
        throw Error("--alpha-layers", "expected " + std::to_string(n_layer) + " values (one per layer), got " +
                                          std::to_string(o.layer_alpha.size()));
      }
      for (size_t l = 0; l < o.layer_alpha.size(); ++l) {
        if (!in_unit_interval(o.layer_alpha[l])) {
          throw Error("--alpha-layers", "α of layer " + std::to_string(l) + " is " + number_text(o.layer_alpha[l]) +
                                            ", outside [0, 1]");
        }
      }
      return;
  }
}

std::map<std::string, std::string> merge_parameters(const MergeOptions& o) {
  switch (o.method) {
    case MergeMethod::kLinear:
    case MergeMethod::kSlerp:
      return {{"t", number_text(o.t)}};
    case MergeMethod::kTaskArithmetic:
      return {{"lambda", number_text(merge_lambda(o))}};
    case MergeMethod::kTies:
      return {{"lambda", number_text(merge_lambda(o))}, {"density", number_text(o.density)}};
    case MergeMethod::kDare:
      return {{"lambda", number_text(merge_lambda(o))},
              {"density", number_text(o.density)},
              {"seed", std::to_string(o.seed)}};
    case MergeMethod::kAlphaHard:
      return {{"alpha_layers", nlohmann::json(o.layer_alpha).dump()},
              {"embedding_blend", o.blend_embeddings ? "mean-alpha" : "base"}};
  }
  return {};
}

torch::Tensor merge_linear(const torch::Tensor& base, const torch::Tensor& fine, double t) {
  check_pair(base, fine, "merge_linear");
  // (1-t)·b + t·f rather than b + t·(f-b): exact at both ends.
  return (as_f32(base) * (1.0 - t) + as_f32(fine) * t).to(base.scalar_type());
}

torch::Tensor merge_task_arithmetic(const torch::Tensor& base, const torch::Tensor& fine, double lambda) {
  check_pair(base, fine, "merge_task_arithmetic");
  const auto b = as_f32(base);
  return (b + (as_f32(fine) - b) * lambda).to(base.scalar_type());
}

torch::Tensor merge_slerp(const torch::Tensor& base, const torch::Tensor& fine, double t) {
  check_pair(base, fine, "merge_slerp");
  const auto b = as_f32(base), f = as_f32(fine);
  // The angle in double: float sums over millions of elements lose the small angles.
  const auto b64 = b.flatten().to(torch::kFloat64), f64 = f.flatten().to(torch::kFloat64);
  const double norm_b = b64.norm().item<double>(), norm_f = f64.norm().item<double>();
  if (norm_b == 0.0 || norm_f == 0.0) return merge_linear(base, fine, t);
  const double cosine = std::clamp(b64.dot(f64).item<double>() / (norm_b * norm_f), -1.0, 1.0);
  const double omega = std::acos(cosine);
  const double sin_omega = std::sin(omega);
  if (std::abs(sin_omega) < 1e-6) return merge_linear(base, fine, t);
  const double cb = std::sin((1.0 - t) * omega) / sin_omega, cf = std::sin(t * omega) / sin_omega;
  return (b * cb + f * cf).to(base.scalar_type());
}

torch::Tensor trim_top_magnitude(const torch::Tensor& task_vector, double density) {
  TORCH_CHECK(density > 0.0 && density <= 1.0, "trim_top_magnitude: expected density in (0, 1], got ", density);
  const auto tau = as_f32(task_vector);
  const int64_t n = tau.numel();
  const int64_t k = std::min(n, std::max<int64_t>(1, std::llround(density * static_cast<double>(n))));
  if (n == 0 || k == n) return tau.clone();
  const auto magnitude = tau.abs().flatten();  // (n)
  // The k-th largest magnitude; all above it stay, and of those equal to it
  // the first ones in flat order until k are kept.
  const auto threshold = std::get<0>(torch::kthvalue(magnitude, n - k + 1));
  const auto above = magnitude > threshold;
  const auto at = magnitude == threshold;
  const int64_t room = k - above.sum().item<int64_t>();
  const auto keep = above.logical_or(at.logical_and(at.cumsum(0) <= room));
  return tau * keep.view(tau.sizes()).to(torch::kFloat32);
}

torch::Tensor ties_task_vector(const std::vector<torch::Tensor>& task_vectors, double density) {
  TORCH_CHECK(!task_vectors.empty(), "ties_task_vector: expected at least one task vector");
  std::vector<torch::Tensor> trimmed;
  for (const auto& tau : task_vectors) {
    TORCH_CHECK(tau.sizes() == task_vectors[0].sizes(), "ties_task_vector: expected task vectors of shape ",
                task_vectors[0].sizes(), ", got ", tau.sizes());
    trimmed.push_back(trim_top_magnitude(tau, density));
  }
  const auto stacked = torch::stack(trimmed);              // (n, ...)
  const auto elected = torch::sign(stacked.sum(0));        // (...): +1, -1, or 0 where the mass cancels
  const auto agrees = (torch::sign(stacked) == elected).logical_and(stacked != 0);  // (n, ...)
  const auto selected = stacked * agrees.to(torch::kFloat32);
  const auto count = agrees.sum(0).clamp_min(1).to(torch::kFloat32);
  return selected.sum(0) / count;  // disjoint mean
}

torch::Tensor merge_ties(const torch::Tensor& base, const torch::Tensor& fine, double density, double lambda) {
  check_pair(base, fine, "merge_ties");
  const auto b = as_f32(base);
  return (b + ties_task_vector({as_f32(fine) - b}, density) * lambda).to(base.scalar_type());
}

torch::Tensor merge_dare(const torch::Tensor& base, const torch::Tensor& fine, double density, double lambda,
                         std::mt19937_64& rng) {
  check_pair(base, fine, "merge_dare");
  TORCH_CHECK(density > 0.0 && density <= 1.0, "merge_dare: expected density in (0, 1], got ", density);
  const auto b = as_f32(base);
  // The mask holds 0 or 1/density, drawn on the CPU with our own Bernoulli so
  // the bits do not depend on LibTorch's generators.
  auto scale = torch::empty({base.numel()}, torch::kFloat32);
  float* out = scale.data_ptr<float>();
  const float kept = static_cast<float>(1.0 / density);
  for (int64_t i = 0; i < base.numel(); ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    out[i] = u < density ? kept : 0.0f;
  }
  const auto tau = (as_f32(fine) - b) * scale.view(base.sizes()).to(base.device());
  return (b + tau * lambda).to(base.scalar_type());
}

void check_same_architecture(const GPT2Config& base, const fs::path& base_dir, const GPT2Config& fine,
                             const fs::path& fine_dir) {
  auto differ = [&](const char* field, const std::string& b, const std::string& f) {
    if (b == f) return;
    throw Error(base_dir.string() + " and " + fine_dir.string(), std::string("the experts differ in ") + field +
                                                                     " (base " + b + ", fine " + f +
                                                                     "); a weight-space merge needs identical configs");
  };
  auto text = [](auto v) -> std::string {
    if constexpr (std::is_same_v<decltype(v), bool>) return v ? "true" : "false";
    else if constexpr (std::is_floating_point_v<decltype(v)>) return number_text(v);
    else return std::to_string(v);
  };
  differ("n_layer", text(base.n_layer), text(fine.n_layer));
  differ("n_embd", text(base.n_embd), text(fine.n_embd));
  differ("n_head", text(base.n_head), text(fine.n_head));
  differ("vocab_size", text(base.vocab_size), text(fine.vocab_size));
  differ("n_positions", text(base.n_positions), text(fine.n_positions));
  differ("n_inner", text(base.mlp_width()), text(fine.mlp_width()));
  differ("activation_function", base.activation_function, fine.activation_function);
  differ("layer_norm_epsilon", text(base.layer_norm_epsilon), text(fine.layer_norm_epsilon));
  differ("scale_attn_weights", text(base.scale_attn_weights), text(fine.scale_attn_weights));
  differ("scale_attn_by_inverse_layer_idx", text(base.scale_attn_by_inverse_layer_idx),
         text(fine.scale_attn_by_inverse_layer_idx));
  differ("tie_word_embeddings", text(base.tie_word_embeddings), text(fine.tie_word_embeddings));
}

NamedTensors merge_experts(const LoadedModel& base, const LoadedModel& fine, const MergeOptions& o) {
  check_same_architecture(base.config, base.files.dir, fine.config, fine.files.dir);
  validate_merge_options(o, base.config.n_layer);
  std::map<std::string, torch::Dtype> dtype_of;
  for (const auto& row : base.tensors) dtype_of[row.module_name] = stored_dtype(row.dtype);

  torch::NoGradGuard no_grad;
  const auto base_params = base.model->named_parameters();
  const auto fine_params = fine.model->named_parameters();
  const double lambda = merge_lambda(o);
  const double mean_alpha = o.method == MergeMethod::kAlphaHard ? mean(o.layer_alpha) : 0.0;
  std::mt19937_64 rng(o.seed);
  NamedTensors merged;
  for (const auto& item : base_params) {
    const std::string& name = item.key();
    const torch::Tensor b = item.value().detach();
    const torch::Tensor f = fine_params[name].detach().to(b.device());
    torch::Tensor m;
    switch (o.method) {
      case MergeMethod::kLinear: m = merge_linear(b, f, o.t); break;
      case MergeMethod::kTaskArithmetic: m = merge_task_arithmetic(b, f, lambda); break;
      case MergeMethod::kSlerp: m = merge_slerp(b, f, o.t); break;
      case MergeMethod::kTies: m = merge_ties(b, f, o.density, lambda); break;
      case MergeMethod::kDare: m = merge_dare(b, f, o.density, lambda, rng); break;
      case MergeMethod::kAlphaHard: {
        const int64_t l = block_index(name);
        const bool embedding = name == "wte.weight" || name == "wpe.weight";
        if (l >= 0) {
          m = merge_linear(b, f, o.layer_alpha[static_cast<size_t>(l)]);
        } else if (embedding && o.blend_embeddings) {
          m = merge_linear(b, f, mean_alpha);
        } else {
          m = b.clone();  // ln_f, an untied lm_head, or embeddings kept from the base
        }
        break;
      }
    }
    merged.emplace_back(hf_tensor_name(name), m.to(torch::kCPU, dtype_of.at(name)));
  }
  return merged;
}

MergeOptions alpha_hard_options(SuperposedModelImpl& superposition) {
  auto alpha = superposition.learned_alpha().to(torch::kCPU, torch::kFloat64);  // (L) | (L,C)
  if (alpha.dim() == 2) alpha = alpha.mean(1);
  alpha = alpha.contiguous();
  MergeOptions options;
  options.method = MergeMethod::kAlphaHard;
  options.layer_alpha.assign(alpha.data_ptr<double>(), alpha.data_ptr<double>() + alpha.numel());
  options.blend_embeddings = superposition.config().embedding_blend == EmbeddingBlend::kMeanAlpha;
  return options;
}

GPT2 merged_model(const LoadedModel& base, const LoadedModel& fine, const MergeOptions& options) {
  const NamedTensors merged = merge_experts(base, fine, options);
  std::map<std::string, torch::Tensor> by_name(merged.begin(), merged.end());
  const torch::Tensor& reference = base.model->wte->weight;
  GPT2 model(base.config);
  model->to(reference.device(), reference.scalar_type());
  model->eval();
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    item.value().copy_(by_name.at(hf_tensor_name(item.key())));
    item.value().set_requires_grad(false);
  }
  return model;
}

std::map<std::string, std::string> merge_provenance(const MergeOptions& options, const fs::path& base_dir,
                                                    const fs::path& fine_dir) {
  std::map<std::string, std::string> out = {
      {"merge_method", merge_method_name(options.method)},
      {"merge_base", base_dir.string()},
      {"merge_fine", fine_dir.string()},
  };
  for (const auto& [key, value] : merge_parameters(options)) out["merge_" + key] = value;
  return out;
}

void write_merged_model(AtomicDirectory& out, const LoadedModel& base, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& provenance) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_file(base.files.config));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(base.files.config.string(), std::string("malformed JSON: ") + e.what());
  }
  write_file_atomic(out / "config.json", config.dump(2) + "\n");

  auto metadata = provenance;
  metadata["format"] = "pt";  // what HF's save_pretrained writes
  const fs::path weights = out / "model.safetensors";
  save_safetensors(weights, tensors, metadata);
  match_gpt2_tensors(SafetensorsFile(weights), base.config);  // what load_model will demand

  const fs::path& dir = base.files.dir;
  std::error_code ec;
  for (const char* name : kSideFiles) {
    if (fs::is_regular_file(dir / name, ec)) write_file_atomic(out / name, read_file(dir / name));
  }
  out.commit();
}

void write_merged_model(const fs::path& out_dir, const LoadedModel& base, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& provenance) {
  AtomicDirectory out(out_dir);
  write_merged_model(out, base, tensors, provenance);
}

}  // namespace superpose
