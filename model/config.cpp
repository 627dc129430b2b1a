// Reading GPT-2 config.json files strictly: every size checked, unknown model types refused.
#include "model/config.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "model/errors.h"

namespace superpose {
namespace {

int64_t positive_int(const nlohmann::json& json, const char* key, int64_t fallback,
                     const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  const auto& value = json.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() <= 0) {
    throw Error(where, std::string("'") + key + "' must be a positive integer, got " + value.dump());
  }
  return value.get<int64_t>();
}

bool boolean(const nlohmann::json& json, const char* key, bool fallback, const std::string& where) {
  if (!json.contains(key) || json.at(key).is_null()) return fallback;
  if (!json.at(key).is_boolean()) {
    throw Error(where, std::string("'") + key + "' must be true or false, got " + json.at(key).dump());
  }
  return json.at(key).get<bool>();
}

}  // namespace

GPT2Config parse_gpt2_config(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw Error(where, "expected a JSON object");
  if (!json.contains("model_type")) throw Error(where, "no 'model_type' (expected \"gpt2\")");
  const auto& type = json.at("model_type");
  if (!type.is_string() || type.get<std::string>() != "gpt2") {
    throw Error(where, "model_type " + type.dump() + " is not supported (expected \"gpt2\")");
  }
  GPT2Config c;
  c.n_layer = positive_int(json, "n_layer", c.n_layer, where);
  c.n_head = positive_int(json, "n_head", c.n_head, where);
  c.n_embd = positive_int(json, "n_embd", c.n_embd, where);
  // Old configs name the context n_ctx; n_positions wins where both exist.
  c.n_positions = positive_int(json, "n_ctx", c.n_positions, where);
  c.n_positions = positive_int(json, "n_positions", c.n_positions, where);
  c.vocab_size = positive_int(json, "vocab_size", c.vocab_size, where);
  c.n_inner = positive_int(json, "n_inner", 0, where);
  if (c.n_embd % c.n_head != 0) {
    throw Error(where, "n_embd " + std::to_string(c.n_embd) + " is not divisible by n_head " +
                           std::to_string(c.n_head));
  }
  if (json.contains("layer_norm_epsilon")) {
    const auto& eps = json.at("layer_norm_epsilon");
    if (!eps.is_number() || eps.get<double>() <= 0.0) {
      throw Error(where, "'layer_norm_epsilon' must be a positive number, got " + eps.dump());
    }
    c.layer_norm_epsilon = eps.get<double>();
  }
  if (json.contains("activation_function")) {
    const auto& act = json.at("activation_function");
    static const std::set<std::string> kSupported = {"gelu_new", "gelu", "gelu_pytorch_tanh", "relu"};
    if (!act.is_string() || !kSupported.count(act.get<std::string>())) {
      throw Error(where, "activation_function " + act.dump() +
                             " is not supported (gelu_new, gelu, gelu_pytorch_tanh, relu)");
    }
    c.activation_function = act.get<std::string>();
  }
  c.scale_attn_weights = boolean(json, "scale_attn_weights", c.scale_attn_weights, where);
  c.scale_attn_by_inverse_layer_idx =
      boolean(json, "scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx, where);
  c.tie_word_embeddings = boolean(json, "tie_word_embeddings", c.tie_word_embeddings, where);
  // reorder_and_upcast_attn is accepted and ignored: in HF it only changes
  // numerics under fp16 autocast; F32 results are identical.
  if (json.contains("bos_token_id") && json.at("bos_token_id").is_number_integer())
    c.bos_token_id = json.at("bos_token_id").get<int64_t>();
  if (json.contains("eos_token_id") && json.at("eos_token_id").is_number_integer())
    c.eos_token_id = json.at("eos_token_id").get<int64_t>();
  return c;
}

GPT2Config load_gpt2_config(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string(), "cannot open (missing or unreadable)");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path.string(), std::string("malformed JSON: ") + e.what());
  }
  return parse_gpt2_config(json, path.string());
}

nlohmann::json to_json(const GPT2Config& c) {
  return {
      {"model_type", "gpt2"},
      {"architectures", {"GPT2LMHeadModel"}},
      {"n_layer", c.n_layer},
      {"n_head", c.n_head},
      {"n_embd", c.n_embd},
      {"n_positions", c.n_positions},
      {"n_ctx", c.n_positions},
      {"vocab_size", c.vocab_size},
      {"n_inner", c.n_inner > 0 ? nlohmann::json(c.n_inner) : nlohmann::json(nullptr)},
      {"layer_norm_epsilon", c.layer_norm_epsilon},
      {"activation_function", c.activation_function},
      {"scale_attn_weights", c.scale_attn_weights},
      {"scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"bos_token_id", c.bos_token_id},
      {"eos_token_id", c.eos_token_id},
  };
}

}  // namespace superpose
