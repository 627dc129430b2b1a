// Shared option handling for the superpose subcommands.
#include "app/cli/common.h"

#include <cstdarg>
#include <cstdio>

#include "model/device.h"
#include "model/errors.h"
#include "model/model_dir.h"

namespace superpose::cli {

torch::Device DeviceOptions::parsed_device() const { return parse_device(device); }
torch::Dtype DeviceOptions::parsed_dtype() const { return parse_dtype(dtype, parsed_device()); }

void add_device_option(CLI::App& command, DeviceOptions& options) {
  command.add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
}

void add_device_options(CLI::App& command, DeviceOptions& options) {
  add_device_option(command, options);
  command.add_option("--dtype", options.dtype, "f32, or bf16 / f16 on CUDA")->capture_default_str();
}

Tokenizer load_tokenizer(const std::string& tokenizer_option, const std::optional<std::filesystem::path>& model_dir) {
  std::optional<std::filesystem::path> explicit_dir;
  if (!tokenizer_option.empty()) explicit_dir = tokenizer_option;
  return Tokenizer::from_dir(resolve_tokenizer_dir(explicit_dir, model_dir));
}

std::vector<int64_t> encode_text(const Tokenizer& tokenizer, const std::string& text, const std::string& where) {
  try {
    return tokenizer.encode(text);
  } catch (const Error& e) {
    std::string what = e.what();  // "text: invalid UTF-8 at byte N: ..."
    if (what.rfind("text: ", 0) == 0) what.erase(0, 6);
    throw Error(where, what);
  }
}

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt, int64_t context) {
  if (prompt.empty()) throw Error("--prompt", "empty prompt: need at least one token");
  const auto ids = encode_text(tokenizer, prompt, "--prompt");
  if (static_cast<int64_t>(ids.size()) > context) {
    throw Error("--prompt", std::to_string(ids.size()) + " tokens exceed the model's context of " +
                                std::to_string(context) + " positions");
  }
  return ids;
}

std::string format(const char* pattern, ...) {
  va_list args;
  va_start(args, pattern);
  va_list copy;
  va_copy(copy, args);
  const int size = std::vsnprintf(nullptr, 0, pattern, copy);
  va_end(copy);
  std::string out(static_cast<size_t>(std::max(size, 0)) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), pattern, args);
  va_end(args);
  out.resize(static_cast<size_t>(std::max(size, 0)));
  return out;
}

const CLI::Validator kExistingDir(
    [](std::string& path) -> std::string {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) return path + ": no such directory";
      if (!std::filesystem::is_directory(path, ec)) return path + ": not a directory";
      return {};
    },
    "DIR");

}  // namespace superpose::cli
