// superpose info DIR: what a model directory holds, without running it.
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "app/cli/common.h"
#include "model/errors.h"
#include "model/config.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace superpose::cli {
namespace {

struct InfoOptions {
  std::string dir;
  bool json = false;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void run_info(const InfoOptions& o) {
  const ModelFiles files = locate_model(o.dir);
  const GPT2Config config = load_gpt2_config(files.config);
  const SafetensorsFile weights(files.weights);
  match_gpt2_tensors(weights, config);  // the same strict check loading does, without reading the weights

  const int64_t parameters = gpt2_parameter_count(config);
  std::map<std::string, int64_t> dtype_counts;
  for (const auto& t : weights.tensors()) dtype_counts[t.dtype] += 1;
  std::optional<std::string> tokenizer;
  try {
    tokenizer = resolve_tokenizer_dir(std::nullopt, std::filesystem::path(o.dir)).string();
  } catch (const Error&) {
  }

  if (o.json) {
    nlohmann::json out;
    out["dir"] = o.dir;
    out["config"] = to_json(config);
    out["parameters"] = parameters;
    out["dtypes"] = dtype_counts;
    out["tokenizer"] = tokenizer ? nlohmann::json(*tokenizer) : nlohmann::json(nullptr);
    for (const auto& t : weights.tensors()) {
      out["tensors"].push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.end - t.begin}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  const auto& c = config;
  std::cout << format("%s\n  GPT-2: %lld layers, %lld heads, width %lld, MLP %lld, context %lld, vocabulary %lld\n",
                      o.dir.c_str(), (long long)c.n_layer, (long long)c.n_head, (long long)c.n_embd,
                      (long long)c.mlp_width(), (long long)c.n_positions, (long long)c.vocab_size);
  std::cout << format("  activation %s, layer-norm eps %g, scale_attn_weights %s, scale_attn_by_inverse_layer_idx %s, "
                      "tied head %s\n",
                      c.activation_function.c_str(), c.layer_norm_epsilon, c.scale_attn_weights ? "true" : "false",
                      c.scale_attn_by_inverse_layer_idx ? "true" : "false", c.tie_word_embeddings ? "true" : "false");
  std::cout << format("  parameters: %lld (%.2f M)\n", (long long)parameters, parameters / 1e6);
  std::cout << "  stored dtypes:";
  for (const auto& [dtype, count] : dtype_counts) std::cout << format(" %s x%lld", dtype.c_str(), (long long)count);
  std::cout << "\n  tokenizer: " << (tokenizer ? *tokenizer : "none found (pass --tokenizer to commands)") << "\n\n";
  std::cout << format("  %-44s %-5s %18s %12s\n", "tensor", "dtype", "shape", "bytes");
  for (const auto& t : weights.tensors()) {
    std::cout << format("  %-44s %-5s %18s %12llu\n", t.name.c_str(), t.dtype.c_str(), shape_text(t.shape).c_str(),
                        (unsigned long long)(t.end - t.begin));
  }
}

}  // namespace

void register_info(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  auto* command = app.add_subcommand("info", "Show a model directory's config, parameter count, dtypes and tensors");
  command->add_option("DIR", options->dir, "HF GPT-2 directory (config.json + model.safetensors)")->required();
  command->add_flag("--json", options->json, "Print JSON instead of a table");
  command->callback([options] { run_info(*options); });
}

}  // namespace superpose::cli
