// Pieces every superpose subcommand shares: options, tokenizer lookup, prompt checks.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/types.h>

#include "model/tokenizer.h"

namespace superpose::cli {

// Subcommands register themselves on the top-level app.
void register_info(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_trace(CLI::App& app);
void register_generate(CLI::App& app);
void register_merge(CLI::App& app);

struct DeviceOptions {
  std::string device = "cpu";
  std::string dtype = "f32";
  torch::Device parsed_device() const;
  torch::Dtype parsed_dtype() const;
};
void add_device_options(CLI::App& command, DeviceOptions& options);
// --device alone, for commands whose precision is not the user's choice.
void add_device_option(CLI::App& command, DeviceOptions& options);

// --tokenizer DIR, else the model directory, else the defaults (model_dir.h).
Tokenizer load_tokenizer(const std::string& tokenizer_option, const std::optional<std::filesystem::path>& model_dir);

// Encodes text; invalid UTF-8 throws Error(where, "invalid UTF-8 at byte N: ...").
std::vector<int64_t> encode_text(const Tokenizer& tokenizer, const std::string& text, const std::string& where);

// Encodes a prompt for a model with `context` positions. Throws Error("--prompt", ...)
// when it is empty, not valid UTF-8, or longer than the context.
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt, int64_t context);

// printf-style formatting into a std::string (LibTorch 2.x bundles its own
// fmt, which clashes with the system's, so the CLI does not use fmt).
std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

// CLI11 validator: the path must be an existing directory (message names it).
extern const CLI::Validator kExistingDir;

}  // namespace superpose::cli
