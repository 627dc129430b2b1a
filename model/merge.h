// Weight-space merges of two GPT-2 experts (SPEC §6 baselines): linear,
// task arithmetic, per-layer hard merge with α, SLERP, TIES and DARE.
//
// Every merge reads the base θ_b and the fine θ_f of one tensor, computes in
// float32 and returns the result in the base tensor's dtype. Results do not
// alias their inputs. Tensors may live on any one device.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/model_dir.h"

namespace superpose {

class AtomicDirectory;
class SuperposedModelImpl;

enum class MergeMethod { kLinear, kTaskArithmetic, kAlphaHard, kSlerp, kTies, kDare };

// "linear", "task-arithmetic", "alpha-hard", "slerp", "ties", "dare".
// Anything else throws Error("--method", "unknown merge method 'x'; expected one of ...").
MergeMethod parse_merge_method(const std::string& name);
std::string merge_method_name(MergeMethod method);

struct MergeOptions {
  MergeMethod method = MergeMethod::kLinear;
  double t = 0.5;                // linear, slerp: in [0, 1]
  std::optional<double> lambda;  // task-arithmetic, ties, dare: any finite value (< 0 or > 1 extrapolates);
                                 // unset: 0.5 for task-arithmetic, 1 for ties and dare
  double density = 0.2;          // ties, dare: the share of the task vector kept, in (0, 1]
  uint64_t seed = 0;             // dare: seeds the drop mask
  std::vector<double> layer_alpha;  // alpha-hard: [L], each in [0, 1]
  bool blend_embeddings = true;     // alpha-hard: wte/wpe blended with mean α (else the base's)
};

// The λ a method uses: options.lambda, or the method's default.
double merge_lambda(const MergeOptions& options);

// Throws Error naming the option ("--t", "--lambda", "--density",
// "--alpha-layers") when a value the method uses is out of range or not
// finite, or when alpha-hard gets other than `n_layer` values. Values the
// method does not use are not looked at.
void validate_merge_options(const MergeOptions& options, int64_t n_layer);

// alpha-hard with a superposition's learned α: one α per block (a 2D α
// averaged over its dimensions) and the superposition's embedding blend
// (wte/wpe blended with the mean α, or kept from the base).
MergeOptions alpha_hard_options(SuperposedModelImpl& superposition);

// The parameters the method uses, as text: {"t": "0.5"}, {"lambda": "1",
// "density": "0.2", "seed": "0"}, {"alpha_layers": "[0.1,0.5]",
// "embedding_blend": "mean-alpha"}, ... Numbers print as the shortest text that reads back exactly.
std::map<std::string, std::string> merge_parameters(const MergeOptions& options);

// ---- One tensor: base and fine of equal shape -> merged, in base's dtype ----

// (1-t)·θ_b + t·θ_f. t = 0 gives θ_b exactly, t = 1 gives θ_f exactly.
torch::Tensor merge_linear(const torch::Tensor& base, const torch::Tensor& fine, double t);

// θ_b + λ·(θ_f - θ_b).
torch::Tensor merge_task_arithmetic(const torch::Tensor& base, const torch::Tensor& fine, double lambda);

// Spherical interpolation of the flattened tensors: with Ω the angle between
// θ_b/|θ_b| and θ_f/|θ_f|, sin((1-t)Ω)/sin Ω · θ_b + sin(tΩ)/sin Ω · θ_f.
// Linear interpolation where |sin Ω| < 1e-6 (colinear) or a norm is 0.
torch::Tensor merge_slerp(const torch::Tensor& base, const torch::Tensor& fine, double t);

// The top `density` share of |τ| (k = round(density·numel), at least 1; ties
// in magnitude go to the lower flat index), the rest zeroed.
torch::Tensor trim_top_magnitude(const torch::Tensor& task_vector, double density);

// TIES-merging of task vectors τ_1..τ_n of one tensor (Yadav et al. 2023):
// trim each to its top `density`, elect the sign of each element as the sign
// of the sum of the trimmed values, then take the mean of the trimmed values
// that agree with it (disjoint mean; 0 where none does). Returns the merged
// task vector in float32. Expects at least one vector, all of one shape.
torch::Tensor ties_task_vector(const std::vector<torch::Tensor>& task_vectors, double density);

// θ_b + λ·ties_task_vector({θ_f - θ_b}, density).
torch::Tensor merge_ties(const torch::Tensor& base, const torch::Tensor& fine, double density, double lambda);

// DARE: each element of τ = θ_f - θ_b is kept with probability `density`
// (kept when u < density, u uniform in [0, 1) from the top 53 bits of one
// rng() call per element, in flat order), kept ones scaled by 1/density;
// θ_b + λ·τ'. Identical for a given rng state on every platform and LibTorch.
// density = 1 gives merge_task_arithmetic(base, fine, lambda) exactly.
torch::Tensor merge_dare(const torch::Tensor& base, const torch::Tensor& fine, double density, double lambda,
                         std::mt19937_64& rng);

// ---- Whole models ----

// Throws Error naming both directories and the first field that differs
// (n_layer, n_embd, n_head, vocab_size, n_positions, n_inner,
// activation_function, layer_norm_epsilon, scale_attn_weights,
// scale_attn_by_inverse_layer_idx, tie_word_embeddings).
void check_same_architecture(const GPT2Config& base, const std::filesystem::path& base_dir, const GPT2Config& fine,
                             const std::filesystem::path& fine_dir);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Merges every parameter of two experts, in the base's parameter order, under
// HF's names ("transformer.h.0.attn.c_attn.weight", ...; "lm_head.weight"
// only when the head is untied). Each result is a CPU tensor in the dtype the
// base's file stores that tensor in. alpha-hard blends h.{l}.* with α_l,
// wte/wpe with mean α (or keeps the base's), and keeps ln_f and any lm_head
// from the base, as the superposed model does. DARE draws its masks from one
// generator seeded with options.seed, tensor after tensor in that order.
// Throws Error as check_same_architecture and validate_merge_options do.
NamedTensors merge_experts(const LoadedModel& base, const LoadedModel& fine, const MergeOptions& options);

// The merge of merge_experts() as a model in memory, on the base's device
// and dtype, in eval mode: the same weights `superpose merge` writes (each
// rounded to the dtype the base's file stores it in), without the files.
GPT2 merged_model(const LoadedModel& base, const LoadedModel& fine, const MergeOptions& options);

// The safetensors metadata recording a merge: "merge_method", "merge_base",
// "merge_fine" and "merge_<parameter>" for each of merge_parameters().
std::map<std::string, std::string> merge_provenance(const MergeOptions& options,
                                                    const std::filesystem::path& base_dir,
                                                    const std::filesystem::path& fine_dir);

// Writes an HF GPT-2 directory into `out` and commits it: config.json (the
// base's JSON, unknown keys kept), model.safetensors (`tensors`, metadata
// {"format": "pt"} plus `provenance`) and those of the base's vocab.json,
// merges.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json
// and generation_config.json that are present, copied byte for byte. The
// written weights are checked against the base's config before the commit.
// Throws Error on any I/O problem; nothing appears at out.path() then.
void write_merged_model(AtomicDirectory& out, const LoadedModel& base, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& provenance);
// The same into a new directory `out_dir` (which must not exist or be empty).
void write_merged_model(const std::filesystem::path& out_dir, const LoadedModel& base, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& provenance);

}  // namespace superpose
