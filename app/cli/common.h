// Pieces every superpose subcommand shares: options, tokenizer lookup, prompt checks.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/types.h>

#include "model/file_util.h"
#include "model/superposition_io.h"
#include "model/tokenizer.h"

namespace superpose::cli {

// Subcommands register themselves on the top-level app.
void register_info(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_trace(CLI::App& app);
void register_generate(CLI::App& app);
void register_import_seed(CLI::App& app);
void register_audit(CLI::App& app);
void register_merge(CLI::App& app);
void register_corpus(CLI::App& app);
void register_train_tokenizer(CLI::App& app);
void register_eval(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_finetune(CLI::App& app);
void register_train(CLI::App& app);
void register_tsne(CLI::App& app);
void register_capture(CLI::App& app);
void register_figures(CLI::App& app);
void register_neurons(CLI::App& app);

// Thrown by a command that finished on purpose with a non-zero status (an
// interrupted training run: 130); main() exits with `code`.
struct ExitStatus {
  int code;
};

struct DeviceOptions {
  std::string device = "cpu";
  std::string dtype = "f32";
  torch::Device parsed_device() const;
  torch::Dtype parsed_dtype() const;
};
void add_device_options(CLI::App& command, DeviceOptions& options);
// --device alone, for commands whose precision is not the user's choice.
void add_device_option(CLI::App& command, DeviceOptions& options);

// A whole string that is a number ("0.5", "inf"; no spaces, nothing after),
// else Error(option, "'text' is not a number"). Ranges are the caller's.
double parse_number(const std::string& option, const std::string& text);
// A whole string of decimal digits that fits 64 bits ("42"), else
// Error(option, "'text' is not an integer in [0, 2^64)").
uint64_t parse_unsigned(const std::string& option, const std::string& text);
// A comma-separated list of numbers ("0.2,0.9,0.5"), each parsed whole.
// Throws Error(option, ...) on an item (empty ones included) that is not a number.
std::vector<double> parse_number_list(const std::string& text, const std::string& option);
// A comma-separated list of non-negative integers ("3,4").
std::vector<int64_t> parse_index_list(const std::string& text, const std::string& option);

// --superposition DIR [--base DIR --fine DIR] and the α / autoencoder
// overrides [--alpha V | --alpha-layers a0,...] [--ae-off l,...].
struct SuperpositionOptions {
  std::string superposition;
  std::string base, fine;
  std::string alpha, alpha_layers, ae_off;

  bool given() const { return !superposition.empty(); }
  // Loads the checkpoint (experts from --base/--fine when given).
  LoadedSuperposition load(torch::Device device, torch::Dtype dtype) const;
  // Applies --alpha / --alpha-layers / --ae-off to `model`. Throws Error
  // naming the option for values outside [0, 1], a wrong count, both
  // --alpha and --alpha-layers, or a layer without an autoencoder.
  void apply_overrides(SuperposedModel& model) const;
  // With a single model (`model_option` = its value, non-empty), refuses
  // every superposition-only option with Error naming it.
  void require_for(const std::string& model_option, const std::string& model) const;
};
// Adds --superposition, --base, --fine; with_overrides adds the override options too.
void add_superposition_options(CLI::App& command, SuperpositionOptions& options, bool with_overrides);

// --tokenizer DIR, else the model directory, else the defaults (model_dir.h).
Tokenizer load_tokenizer(const std::string& tokenizer_option, const std::optional<std::filesystem::path>& model_dir);

// Encodes text; invalid UTF-8 throws Error(where, "invalid UTF-8 at byte N: ...").
std::vector<int64_t> encode_text(const Tokenizer& tokenizer, const std::string& text, const std::string& where);

// Encodes a prompt for a model with `context` positions. Throws Error("--prompt", ...)
// when it is empty, not valid UTF-8, or longer than the context.
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt, int64_t context);

// --device auto: CUDA when there is one, else the CPU; otherwise as given.
torch::Device resolve_device(const DeviceOptions& options);

// An output file taken before a long job starts: a directory in the way or a
// folder that cannot be written fails at once (Error naming `option`), and
// nothing appears at the path until commit(). Dropped uncommitted, it leaves
// nothing behind.
class ReservedOutput {
 public:
  ReservedOutput(std::string option, const std::string& path);
  void write(const std::string& bytes);
  void commit();

 private:
  std::string option_;
  std::optional<AtomicFile> file_;
};

// printf-style formatting into a std::string (LibTorch 2.x bundles its own
// fmt, which clashes with the system's, so the CLI does not use fmt).
std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

// A progress bar with rate and ETA on one stderr line, for long jobs. Drawn
// only when stderr is a terminal (logs and pipes stay clean); the line is
// erased when the bar goes out of scope. update() fits the libraries'
// progress callbacks and never cancels.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  bool update(int64_t done, int64_t total);
  // Erases the line now (before printing a result, say).
  void clear();

 private:
  std::string label_, unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// CLI11 validator: the path must be an existing directory (message names it).
extern const CLI::Validator kExistingDir;

}  // namespace superpose::cli
