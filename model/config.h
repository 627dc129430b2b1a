// GPT-2 hyper-parameters, read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace superpose {

// Mirrors transformers' GPT2Config. Field defaults are HF's defaults for a key
// that is absent from config.json.
struct GPT2Config {
  int64_t n_layer = 12;          // L
  int64_t n_head = 12;           // H
  int64_t n_embd = 768;          // C
  int64_t n_positions = 1024;    // longest sequence the position table covers
  int64_t vocab_size = 50257;    // V
  int64_t n_inner = 0;           // MLP width; 0 means 4 * C (HF writes null)
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";
  bool scale_attn_weights = true;                // divide scores by sqrt(C/H)
  bool scale_attn_by_inverse_layer_idx = false;  // and by (layer index + 1)
  bool tie_word_embeddings = true;
  int64_t bos_token_id = 50256;
  int64_t eos_token_id = 50256;

  int64_t head_dim() const { return n_embd / n_head; }
  int64_t mlp_width() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
};

// Reads and validates a GPT-2 config.json. Throws Error naming the file when
// it is missing or malformed, when model_type is not "gpt2", when a size is
// not a positive integer, when n_embd is not divisible by n_head, or when the
// activation is not one this project implements (gelu_new, gelu,
// gelu_pytorch_tanh, relu).
GPT2Config load_gpt2_config(const std::filesystem::path& path);

// Parses an already-loaded JSON object; `where` names its source in errors.
GPT2Config parse_gpt2_config(const nlohmann::json& json, const std::string& where);

// The config as HF writes it (model_type, architectures and the fields above).
nlohmann::json to_json(const GPT2Config& config);

}  // namespace superpose
