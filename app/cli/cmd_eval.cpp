// superpose eval: a superposition, its experts and weight-space merges scored
// per domain on a labeled JSONL set (SPEC §6), as Markdown, JSON or CSV.
#include <sys/stat.h>

#include <deque>
#include <iostream>
#include <optional>
#include <tuple>
#include <utility>

#include <torch/torch.h>

#include "analysis/eval.h"
#include "app/cli/common.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::cli {
namespace {

struct EvalCliOptions {
  SuperpositionOptions superposition;  // --superposition [--base --fine], --ae-off
  std::string data;
  std::string tokenizer;
  std::string models;
  int64_t seq_len = 128;
  int64_t batch_size = 16;
  int64_t max_documents = 0;
  bool json = false;
  std::string csv, markdown;
  DeviceOptions device{"auto", "f32"};
};

// "results.csv" -> "results-layers.csv" (same folder; "-layers" appended
// when there is no extension).
std::string layers_csv_path(const std::string& rows_path) {
  const std::filesystem::path p(rows_path);
  return (p.parent_path() / (p.stem().string() + "-layers" + p.extension().string())).string();
}

void check_outputs_differ(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (std::filesystem::path(outputs[i].second).lexically_normal() ==
          std::filesystem::path(outputs[j].second).lexically_normal()) {
        throw Error(outputs[i].first, outputs[i].second + " is also the output of " + outputs[j].first);
      }
    }
  }
}

void run_eval(const EvalCliOptions& o) {
  const auto& sp = o.superposition;
  const bool with_superposition = sp.given();
  if (!with_superposition && (sp.base.empty() || sp.fine.empty())) {
    throw Error(sp.base.empty() ? "--base" : "--fine", "give --superposition DIR, or --base DIR and --fine DIR");
  }
  if (!with_superposition && !sp.ae_off.empty()) throw Error("--ae-off", "applies to --superposition only");
  EvalOptions options;
  options.seq_len = o.seq_len;
  options.batch_size = o.batch_size;
  options.max_documents = o.max_documents;
  options.models = o.models.empty() ? default_eval_models(with_superposition)
                                    : parse_eval_models(o.models, with_superposition);
  if (o.seq_len < 1) throw Error("--seq-len", "must be at least 1, got " + std::to_string(o.seq_len));
  if (o.batch_size < 1) throw Error("--batch-size", "must be at least 1, got " + std::to_string(o.batch_size));
  if (o.max_documents < 0) {
    throw Error("--max-documents", "must be 0 (all) or more, got " + std::to_string(o.max_documents));
  }
  const torch::Device device = resolve_device(o.device);
  const torch::Dtype dtype = parse_dtype(o.device.dtype, device);
  const std::vector<Document> documents = read_jsonl(o.data);

  // Outputs are taken before anything heavy runs and written only at the end.
  std::vector<std::pair<std::string, std::string>> paths;
  if (!o.csv.empty()) {
    paths.emplace_back("--csv", o.csv);
    paths.emplace_back("--csv", layers_csv_path(o.csv));
  }
  if (!o.markdown.empty()) paths.emplace_back("--markdown", o.markdown);
  check_outputs_differ(paths);
  std::deque<ReservedOutput> outputs;  // not movable: a deque builds them in place
  for (const auto& [option, path] : paths) outputs.emplace_back(option, path);

  LoadedSuperposition loaded;
  if (with_superposition) {
    loaded = sp.load(device, dtype);
    sp.apply_overrides(loaded.model);
  } else {
    std::tie(loaded.base, loaded.fine) = load_experts(sp.base, sp.fine, device, dtype);
  }
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, loaded.base.files.dir);

  ProgressBar progress("eval", "batches");
  options.progress = [&progress](int64_t done, int64_t total) { return progress.update(done, total); };
  const EvalReport report = evaluate(loaded.base, loaded.fine, loaded.model, documents, tokenizer, options);

  const std::string markdown = eval_markdown(report, o.data);
  size_t next = 0;
  if (!o.csv.empty()) {
    outputs[next++].write(eval_rows_csv(report));
    outputs[next++].write(eval_layers_csv(report));
  }
  if (!o.markdown.empty()) outputs[next++].write(markdown);
  for (auto& output : outputs) output.commit();
  if (!report.causal) {
    std::cerr << "note: " << sp.superposition
              << " is non-causal (centered convolution): its scores read the next token\n";
  }
  if (o.json) {
    std::cout << eval_json(report, o.data).dump() << "\n";
  } else {
    std::cout << markdown;
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCliOptions>();
  auto* command = app.add_subcommand(
      "eval",
      "Score a superposition, its experts and weight-space merges per domain on a labeled JSONL set: perplexity "
      "with a 95% CI, next-token accuracy, JSD and cosine against the experts' average, hidden-state MSE, "
      "per-layer L2 distances");
  command->add_option("--superposition", o->superposition.superposition, "Superposition checkpoint directory")
      ->check(kExistingDir);
  command
      ->add_option("--base", o->superposition.base,
                   "Base expert directory (with --superposition: instead of the checkpoint's; without: evaluate "
                   "base, fine and their merges only)")
      ->check(kExistingDir);
  command->add_option("--fine", o->superposition.fine, "Fine expert directory (see --base)")->check(kExistingDir);
  command->add_option("--ae-off", o->superposition.ae_off,
                      "Switch these layers' autoencoders off for the superposition rows: l,l,...");
  command->add_option("--data", o->data, "Labeled JSONL: {\"text\", \"label\": 0|1, \"domain\"} per line")
      ->required();
  command->add_option("--tokenizer", o->tokenizer, "Directory with vocab.json + merges.txt")->check(kExistingDir);
  command->add_option("--seq-len", o->seq_len, "Predictions per window, 1..n_positions")->capture_default_str();
  command->add_option("--batch-size", o->batch_size, "Windows per forward pass")->capture_default_str();
  command->add_option("--max-documents", o->max_documents, "Per domain, the first N documents; 0 = all")
      ->capture_default_str();
  command->add_option("--models", o->models,
                      "Comma-separated subset of base, fine, superposition, superposition-a0, superposition-a1, "
                      "linear, task-arithmetic, alpha-hard (default: all that apply)");
  command->add_flag("--json", o->json, "Print JSON {rows, layers, causal, data, seq_len} instead of Markdown");
  command->add_option("--csv", o->csv,
                      "Also write the rows as CSV to FILE, and the per-layer table to FILE with -layers before "
                      "the extension (results.csv -> results-layers.csv)")
      ->type_name("FILE");
  command->add_option("--markdown", o->markdown, "Also write the Markdown report to FILE")->type_name("FILE");
  command->add_option("--device", o->device.device, "auto (CUDA when there is one), cpu, cuda or cuda:N")
      ->capture_default_str();
  command->add_option("--dtype", o->device.dtype, "f32, or bf16 / f16 on CUDA (metrics are computed in f64)")
      ->capture_default_str();
  command->callback([o] { run_eval(*o); });
}

}  // namespace superpose::cli
