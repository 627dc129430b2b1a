// superpose capture: per-layer states (and MLP activations) of the experts and
// the superposition on a labeled JSONL set, saved as safetensors.
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/capture.h"
#include "app/cli/common.h"
#include "model/device.h"
#include "model/errors.h"

namespace superpose::cli {
namespace {

struct CaptureCliOptions {
  SuperpositionOptions superposition;  // --superposition [--base --fine] and the α / AE overrides
  std::string data, out, tokenizer;
  std::string models, layers, mlp_layers, positions = "all";
  int64_t seq_len = 0, batch_size = 16, max_documents = 0;
  bool json = false;
  DeviceOptions device{"auto", "f32"};
};

void run_capture(const CaptureCliOptions& o) {
  CaptureOptions options;
  options.positions = parse_positions(o.positions);
  options.models = o.models.empty() ? std::vector<CaptureModel>{}
                                    : parse_capture_models(o.models, /*with_superposition=*/true);
  if (o.layers == "none") {
    options.residual = false;
  } else if (!o.layers.empty()) {
    options.residual_layers = parse_index_list(o.layers, "--layers");
  }
  if (!o.mlp_layers.empty()) options.mlp_layers = parse_index_list(o.mlp_layers, "--mlp-layers");
  options.seq_len = o.seq_len;
  options.batch_size = o.batch_size;
  options.max_documents = o.max_documents;
  const torch::Device device = resolve_device(o.device);
  const torch::Dtype dtype = parse_dtype(o.device.dtype, device);
  const std::vector<Document> documents = read_jsonl(o.data);
  // The output is checked before anything heavy runs; it is written at the end, atomically.
  { ReservedOutput reserved("--out", o.out); }

  LoadedSuperposition loaded = o.superposition.load(device, dtype);
  o.superposition.apply_overrides(loaded.model);
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, loaded.base.files.dir);
  ProgressBar progress("capture", "batches");
  options.progress = [&progress](int64_t done, int64_t total) { return progress.update(done, total); };
  Capture capture = capture_states(loaded.base, loaded.fine, loaded.model, documents, tokenizer, options);
  capture.data = o.data;
  progress.clear();
  save_capture(o.out, capture);

  int64_t bytes = 0;
  for (const auto& [name, value] : capture.tensors) bytes += value.numel() * 4;
  if (o.json) {
    std::cout << nlohmann::json{{"out", o.out},
                                {"rows", capture.rows()},
                                {"documents", static_cast<int64_t>(capture.sources.size())},
                                {"models", capture.models},
                                {"residual_layers", capture.residual_layers},
                                {"mlp_layers", capture.mlp_layers},
                                {"positions", capture.positions_mode.name()},
                                {"tensors", static_cast<int64_t>(capture.tensors.size())},
                                {"bytes", bytes},
                                {"causal", capture.causal}}
                     .dump()
              << "\n";
  } else {
    std::cerr << format("captured %lld rows from %zu documents: %zu tensors, %.1f MB; wrote %s\n",
                        static_cast<long long>(capture.rows()), capture.sources.size(), capture.tensors.size(),
                        static_cast<double>(bytes) / 1e6, o.out.c_str());
  }
  if (!capture.causal) {
    std::cerr << "note: " << o.superposition.superposition
              << " is non-causal (centered convolution): its states read the next token\n";
  }
}

}  // namespace

void register_capture(CLI::App& app) {
  auto o = std::make_shared<CaptureCliOptions>();
  auto* command = app.add_subcommand(
      "capture",
      "Per-layer states (and MLP activations) of base, fine and the superposition on a labeled JSONL set, with "
      "labels, token ids and positions, as safetensors");
  add_superposition_options(*command, o->superposition, /*with_overrides=*/true);
  command->get_option("--superposition")->required();
  command->add_option("--data", o->data, "Labeled JSONL: {\"text\", \"label\": 0|1, \"domain\"} per line")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--out", o->out, "Output safetensors file")->required()->type_name("FILE.safetensors");
  command->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--models", o->models, "Comma-separated subset of base, fine, superposition (default: all)");
  command->add_option("--layers", o->layers,
                      "Residual states to keep, 0..L (0 = embeddings, i = after block i-1): i,i,...; none = "
                      "only MLP activations (default: all)");
  command->add_option("--mlp-layers", o->mlp_layers, "Also keep the MLP activations of these blocks: l,l,...");
  command->add_option("--positions", o->positions,
                      "all (every text token), mean (per document), first, last, or a token index N")
      ->capture_default_str();
  command->add_option("--seq-len", o->seq_len, "Tokens per forward window, 1..n_positions; 0 = 128 or the model's context if shorter")->capture_default_str();
  command->add_option("--batch-size", o->batch_size, "Windows per forward pass")->capture_default_str();
  command->add_option("--max-documents", o->max_documents, "Per domain, the first N documents; 0 = all")
      ->capture_default_str();
  command->add_flag("--json", o->json, "Print {\"out\", \"rows\", \"tensors\", ...} on stdout");
  command->add_option("--device", o->device.device, "auto (CUDA when there is one), cpu, cuda or cuda:N")
      ->capture_default_str();
  command->add_option("--dtype", o->device.dtype, "f32, or bf16 / f16 on CUDA (states are saved as f32)")
      ->capture_default_str();
  command->callback([o] { run_capture(*o); });
}

}  // namespace superpose::cli
