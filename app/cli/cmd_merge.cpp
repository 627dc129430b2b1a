// superpose merge: a weight-space merge of two experts, written as an HF GPT-2 directory.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <optional>

#include <torch/torch.h>

#include "app/cli/common.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "model/merge.h"
#include "model/model_dir.h"

namespace superpose::cli {
namespace {

struct MergeCliOptions {
  std::string base;
  std::string fine;
  std::string method;
  std::string t;
  std::string lambda;
  std::string density;
  std::string seed;
  std::string alpha_layers;
  std::string superposition;
  std::string embedding_blend;
  std::string out;
  DeviceOptions device;
};

// Which methods read each method-specific option; giving one to another
// method is an error rather than silently ignored.
struct MethodOption {
  const char* flag;
  std::vector<MergeMethod> methods;
  const char* methods_text;
};
const MethodOption kMethodOptions[] = {
    {"--t", {MergeMethod::kLinear, MergeMethod::kSlerp}, "linear and slerp"},
    {"--lambda", {MergeMethod::kTaskArithmetic, MergeMethod::kTies, MergeMethod::kDare}, "task-arithmetic, ties and dare"},
    {"--density", {MergeMethod::kTies, MergeMethod::kDare}, "ties and dare"},
    {"--seed", {MergeMethod::kDare}, "dare"},
    {"--alpha-layers", {MergeMethod::kAlphaHard}, "alpha-hard"},
    {"--superposition", {MergeMethod::kAlphaHard}, "alpha-hard"},
    {"--embedding-blend", {MergeMethod::kAlphaHard}, "alpha-hard"},
};

void check_applicable(const CLI::App& command, MergeMethod method) {
  for (const auto& option : kMethodOptions) {
    if (command.count(option.flag) == 0) continue;
    if (std::find(option.methods.begin(), option.methods.end(), method) == option.methods.end()) {
      throw Error(option.flag, std::string("applies to ") + option.methods_text + " only, not to --method " +
                                   merge_method_name(method));
    }
  }
}

// Where alpha-hard's per-layer α comes from: --alpha-layers a0,a1,... (one
// value per layer; the count and range are checked against the base later),
// or --superposition DIR: the checkpoint's learned α over these experts (a
// 2D α is averaged over its dimensions), with its embedding blend unless
// --embedding-blend says otherwise.
void layer_alpha_source(const MergeCliOptions& o, const CLI::App& command, MergeOptions& options) {
  if (!o.alpha_layers.empty() && !o.superposition.empty()) {
    throw Error("--alpha-layers", "give --alpha-layers or --superposition, not both");
  }
  if (!o.superposition.empty()) {
    auto loaded = load_superposition(o.superposition, std::filesystem::path(o.base), std::filesystem::path(o.fine));
    const MergeOptions learned = alpha_hard_options(*loaded.model);
    options.layer_alpha = learned.layer_alpha;
    if (!command.count("--embedding-blend")) options.blend_embeddings = learned.blend_embeddings;
    return;
  }
  if (o.alpha_layers.empty()) {
    throw Error("--alpha-layers",
                "alpha-hard needs one α per layer: --alpha-layers a0,a1,... or --superposition DIR");
  }
  options.layer_alpha = parse_number_list(o.alpha_layers, "--alpha-layers");
}

MergeOptions merge_options(const MergeCliOptions& o, const CLI::App& command) {
  MergeOptions options;
  options.method = parse_merge_method(o.method);
  check_applicable(command, options.method);
  if (command.count("--t")) options.t = parse_number("--t", o.t);
  if (command.count("--lambda")) options.lambda = parse_number("--lambda", o.lambda);
  if (command.count("--density")) options.density = parse_number("--density", o.density);
  if (command.count("--seed")) options.seed = parse_unsigned("--seed", o.seed);
  if (options.method == MergeMethod::kAlphaHard) {
    if (command.count("--embedding-blend")) {
      if (o.embedding_blend != "mean-alpha" && o.embedding_blend != "base") {
        throw Error("--embedding-blend", "expected mean-alpha or base, got '" + o.embedding_blend + "'");
      }
      options.blend_embeddings = o.embedding_blend == "mean-alpha";
    }
    layer_alpha_source(o, command, options);
  }
  return options;
}

void run_merge(const MergeCliOptions& o, const CLI::App& command) {
  const MergeOptions options = merge_options(o, command);
  const torch::Device device = o.device.parsed_device();
  // Configs first: a mismatch or a bad α count is reported before any weights are read.
  const GPT2Config base_config = load_gpt2_config(locate_model(o.base).config);
  const GPT2Config fine_config = load_gpt2_config(locate_model(o.fine).config);
  check_same_architecture(base_config, o.base, fine_config, o.fine);
  validate_merge_options(options, base_config.n_layer);
  std::optional<AtomicDirectory> out;
  try {
    out.emplace(o.out);
  } catch (const Error& e) {
    throw Error("--out", e.what());
  }

  const LoadedModel base = load_model(o.base, device);
  const LoadedModel fine = load_model(o.fine, device);
  const NamedTensors merged = merge_experts(base, fine, options);
  write_merged_model(*out, base, merged, merge_provenance(options, o.base, o.fine));

  std::string parameters;
  for (const auto& [key, value] : merge_parameters(options)) {
    parameters += (parameters.empty() ? "" : ", ") + key + "=" + value;
  }
  std::cerr << format("wrote %s: %s merge (%s) of %s and %s, %zu tensors\n", o.out.c_str(),
                      merge_method_name(options.method).c_str(), parameters.c_str(), o.base.c_str(), o.fine.c_str(),
                      merged.size());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto options = std::make_shared<MergeCliOptions>();
  auto* command = app.add_subcommand(
      "merge", "Merge two experts in weight space (linear, task-arithmetic, alpha-hard, slerp, ties, dare) into an "
               "HF GPT-2 directory");
  command->add_option("--base", options->base, "HF GPT-2 directory of the base expert")->required()->check(kExistingDir);
  command->add_option("--fine", options->fine, "HF GPT-2 directory of the fine expert (same config)")
      ->required()
      ->check(kExistingDir);
  command->add_option("--method", options->method, "linear, task-arithmetic, alpha-hard, slerp, ties or dare")
      ->required()
      ->type_name("METHOD");
  command->add_option("--t", options->t, "linear, slerp: position between base (0) and fine (1); default 0.5")
      ->type_name("X");
  command->add_option("--lambda", options->lambda,
                      "task-arithmetic, ties, dare: task-vector scale, any finite number; default 0.5 for "
                      "task-arithmetic, 1 for ties and dare")
      ->type_name("X");
  command->add_option("--density", options->density, "ties, dare: share of the task vector kept, in (0, 1]; default 0.2")
      ->type_name("X");
  command->add_option("--seed", options->seed, "dare: seed of the drop mask; default 0")->type_name("N");
  command->add_option("--alpha-layers", options->alpha_layers, "alpha-hard: one α in [0, 1] per layer")
      ->type_name("A0,A1,...");
  command->add_option("--superposition", options->superposition,
                      "alpha-hard: take α from this superposition checkpoint (2D: mean over dimensions)")
      ->check(kExistingDir);
  command->add_option("--embedding-blend", options->embedding_blend,
                      "alpha-hard: mean-alpha (wte/wpe blended with the mean α, the default) or base")
      ->type_name("MODE");
  command->add_option("--out", options->out, "New output directory (must not exist or be empty; written atomically)")
      ->required()
      ->type_name("DIR");
  add_device_option(*command, options->device);  // no --dtype: merges compute in f32 and keep the base's dtypes
  command->callback([options, command] { run_merge(*options, *command); });
}

}  // namespace superpose::cli
