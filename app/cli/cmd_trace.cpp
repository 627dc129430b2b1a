// superpose trace: one forward pass, every state written to a safetensors file.
#include <iostream>

#include <torch/torch.h>

#include "analysis/state_recorder.h"
#include "app/cli/common.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace superpose::cli {
namespace {

struct TraceOptions {
  std::string model;
  SuperpositionOptions superposition;
  std::string tokenizer;
  std::string prompt;
  std::string out;
  DeviceOptions device;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

torch::Tensor ids_tensor(const std::vector<int64_t>& ids, torch::Device device) {
  return torch::tensor(ids, torch::kLong).view({1, -1}).to(device);  // (1,T)
}

// token_ids, logits, hidden.{0..L} (SPEC §7, single model).
NamedTensors trace_model(const TraceOptions& o, torch::Device device, torch::Dtype dtype,
                         std::map<std::string, std::string>& metadata) {
  LoadedModel loaded = load_model(o.model, device, dtype);
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, std::filesystem::path(o.model));
  const auto ids = encode_prompt(tokenizer, o.prompt, loaded.config.n_positions);
  c10::InferenceMode inference;
  StateRecorder recorder({Site::kResidual});
  const auto logits = loaded.model->forward(ids_tensor(ids, device), nullptr, &recorder);  // (1,T,V)
  NamedTensors tensors;
  tensors.emplace_back("token_ids", torch::tensor(ids, torch::kLong));          // (T)
  tensors.emplace_back("logits", logits[0].to(torch::kCPU, torch::kFloat32));  // (T,V)
  for (int64_t i = 0; i <= loaded.config.n_layer; ++i) {
    tensors.emplace_back("hidden." + std::to_string(i), recorder.at(Site::kResidual, i)[0]);  // (T,C)
  }
  metadata["model"] = o.model;
  return tensors;
}

// token_ids, logits, state.{0..L}, base.{l}, fine.{l}, blended.{l}, alpha (SPEC §7, superposition).
NamedTensors trace_superposition(const TraceOptions& o, torch::Device device, torch::Dtype dtype,
                                 std::map<std::string, std::string>& metadata) {
  auto loaded = o.superposition.load(device, dtype);
  o.superposition.apply_overrides(loaded.model);
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, loaded.base.files.dir);
  const auto ids = encode_prompt(tokenizer, o.prompt, loaded.model->context());
  c10::InferenceMode inference;
  StateRecorder recorder({Site::kState, Site::kBaseOutput, Site::kFineOutput, Site::kBlended});
  const auto logits = loaded.model->forward(ids_tensor(ids, device), nullptr, &recorder);  // (1,T,V)
  const int64_t L = loaded.model->n_layer();
  NamedTensors tensors;
  tensors.emplace_back("token_ids", torch::tensor(ids, torch::kLong));
  tensors.emplace_back("logits", logits[0].to(torch::kCPU, torch::kFloat32));
  for (int64_t i = 0; i <= L; ++i) tensors.emplace_back("state." + std::to_string(i), recorder.at(Site::kState, i)[0]);
  for (int64_t l = 0; l < L; ++l) {
    const auto s = std::to_string(l);
    tensors.emplace_back("base." + s, recorder.at(Site::kBaseOutput, l)[0]);
    tensors.emplace_back("fine." + s, recorder.at(Site::kFineOutput, l)[0]);
    tensors.emplace_back("blended." + s, recorder.at(Site::kBlended, l)[0]);
  }
  tensors.emplace_back("alpha", loaded.model->effective_alpha().to(torch::kCPU, torch::kFloat32).contiguous());
  metadata["superposition"] = o.superposition.superposition;
  metadata["causal"] = loaded.model->causal() ? "true" : "false";
  metadata["convolution"] = conv_mode_name(loaded.model->config().autoencoder.conv);
  if (!loaded.model->causal()) {
    std::cerr << "note: " << o.superposition.superposition
              << " is non-causal (centered convolution): its outputs at a position read the next token\n";
  }
  return tensors;
}

void run_trace(const TraceOptions& o) {
  if (o.model.empty() == o.superposition.superposition.empty()) {
    throw Error("--model", "give either --model DIR or --superposition DIR");
  }
  o.superposition.require_for("--model", o.model);
  const torch::Device device = o.device.parsed_device();
  const torch::Dtype dtype = o.device.parsed_dtype();
  std::map<std::string, std::string> metadata = {{"format", "superpose-trace"},
                                                 {"prompt", o.prompt},
                                                 {"device", device_name(device)},
                                                 {"dtype", dtype_name(dtype)}};
  const auto tensors = o.model.empty() ? trace_superposition(o, device, dtype, metadata)
                                       : trace_model(o, device, dtype, metadata);
  save_safetensors(o.out, tensors, metadata);
  std::cerr << "wrote " << o.out << ": " << tensors.front().second.size(0) << " tokens, " << tensors.size()
            << " tensors\n";
}

}  // namespace

void register_trace(CLI::App& app) {
  auto options = std::make_shared<TraceOptions>();
  auto* command = app.add_subcommand(
      "trace",
      "Run a prompt through a model or a superposition and write every state (F32) to safetensors: "
      "token_ids, logits, hidden.{0..L} (model) or state.{0..L}, base.{l}, fine.{l}, blended.{l}, alpha "
      "(superposition)");
  command->add_option("--model", options->model, "HF GPT-2 directory")->check(kExistingDir);
  add_superposition_options(*command, options->superposition, true);
  command->add_option("--tokenizer", options->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--prompt", options->prompt, "Text to run")->required();
  command->add_option("--out", options->out, "Output .safetensors file (written atomically)")->required();
  add_device_options(*command, options->device);
  command->callback([options] { run_trace(*options); });
}

}  // namespace superpose::cli
