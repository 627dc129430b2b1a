// superpose trace: one forward pass, every state written to a safetensors file.
#include <iostream>

#include <torch/torch.h>

#include "analysis/state_recorder.h"
#include "app/cli/common.h"
#include "model/device.h"
#include "model/model_dir.h"
#include "model/safetensors.h"

namespace superpose::cli {
namespace {

struct TraceOptions {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  std::string out;
  DeviceOptions device;
};

void run_trace(const TraceOptions& o) {
  const torch::Device device = o.device.parsed_device();
  const torch::Dtype dtype = o.device.parsed_dtype();
  LoadedModel loaded = load_model(o.model, device, dtype);
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, std::filesystem::path(o.model));
  const auto ids = encode_prompt(tokenizer, o.prompt, loaded.config.n_positions);

  c10::InferenceMode inference;
  StateRecorder recorder({Site::kResidual});
  auto input = torch::tensor(ids, torch::kLong).view({1, -1}).to(device);           // (1,T)
  auto logits = loaded.model->forward(input, nullptr, &recorder);                   // (1,T,V)
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  tensors.emplace_back("token_ids", torch::tensor(ids, torch::kLong));               // (T)
  tensors.emplace_back("logits", logits[0].to(torch::kCPU, torch::kFloat32));       // (T,V)
  for (int64_t i = 0; i <= loaded.config.n_layer; ++i) {
    tensors.emplace_back("hidden." + std::to_string(i), recorder.at(Site::kResidual, i)[0]);  // (T,C)
  }
  save_safetensors(o.out, tensors,
                   {{"format", "superpose-trace"},
                    {"model", o.model},
                    {"prompt", o.prompt},
                    {"device", device_name(device)},
                    {"dtype", dtype_name(dtype)}});
  std::cerr << "wrote " << o.out << ": " << ids.size() << " tokens, " << loaded.config.n_layer + 1
            << " hidden states\n";
}

}  // namespace

void register_trace(CLI::App& app) {
  auto options = std::make_shared<TraceOptions>();
  auto* command = app.add_subcommand(
      "trace", "Run a prompt through a model and write token_ids, logits and hidden.{0..L} (F32) to safetensors");
  command->add_option("--model", options->model, "HF GPT-2 directory")->required()->check(kExistingDir);
  command->add_option("--tokenizer", options->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--prompt", options->prompt, "Text to run")->required();
  command->add_option("--out", options->out, "Output .safetensors file (written atomically)")->required();
  add_device_options(*command, options->device);
  command->callback([options] { run_trace(*options); });
}

}  // namespace superpose::cli
