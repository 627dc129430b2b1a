// Shared option handling for the superpose subcommands.
#include "app/cli/common.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <utility>

#include <torch/cuda.h>

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

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

}  // namespace

double parse_number(const std::string& option, const std::string& text) {
  size_t used = 0;
  double value = 0.0;
  try {
    if (!text.empty() && !std::isspace(static_cast<unsigned char>(text[0]))) value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Error(option, "'" + text + "' is not a number");
  return value;
}

uint64_t parse_unsigned(const std::string& option, const std::string& text) {
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
  try {
    if (digits) return std::stoull(text);
  } catch (const std::out_of_range&) {
  }
  throw Error(option, "'" + text + "' is not an integer in [0, 2^64)");
}

std::vector<double> parse_number_list(const std::string& text, const std::string& option) {
  std::vector<double> values;
  for (const auto& item : split_commas(text)) values.push_back(parse_number(option, item));
  return values;
}

std::vector<int64_t> parse_index_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> values;
  for (const auto& item : split_commas(text)) {
    if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 9) {
      throw Error(option, "'" + item + "' is not a layer number (0, 1, ...)");
    }
    values.push_back(std::stoll(item));
  }
  return values;
}

LoadedSuperposition SuperpositionOptions::load(torch::Device device, torch::Dtype dtype) const {
  if (base.empty() != fine.empty()) throw Error(base.empty() ? "--fine" : "--base", "give --base and --fine together");
  std::optional<std::filesystem::path> base_dir, fine_dir;
  if (!base.empty()) {
    base_dir = base;
    fine_dir = fine;
  }
  return load_superposition(superposition, base_dir, fine_dir, device, dtype);
}

void SuperpositionOptions::apply_overrides(SuperposedModel& model) const {
  const int64_t L = model->n_layer();
  auto check_range = [](double v, const std::string& option) {
    if (!(v >= 0.0 && v <= 1.0)) throw Error(option, "α value " + format("%g", v) + " is outside [0, 1]");
  };
  if (!alpha.empty() && !alpha_layers.empty()) throw Error("--alpha", "give --alpha or --alpha-layers, not both");
  if (!alpha.empty()) {
    const auto values = parse_number_list(alpha, "--alpha");
    if (values.size() != 1) throw Error("--alpha", "takes one value; use --alpha-layers for one per layer");
    check_range(values[0], "--alpha");
    model->set_alpha(values[0]);
  }
  if (!alpha_layers.empty()) {
    const auto values = parse_number_list(alpha_layers, "--alpha-layers");
    if (static_cast<int64_t>(values.size()) != L) {
      throw Error("--alpha-layers", "got " + std::to_string(values.size()) + " values; the model has " +
                                        std::to_string(L) + " layers");
    }
    for (int64_t l = 0; l < L; ++l) {
      check_range(values[static_cast<size_t>(l)], "--alpha-layers");
      model->set_alpha_layer(l, values[static_cast<size_t>(l)]);
    }
  }
  if (!ae_off.empty()) {
    for (int64_t l : parse_index_list(ae_off, "--ae-off")) {
      if (l >= L) throw Error("--ae-off", "layer " + std::to_string(l) + " is outside 0.." + std::to_string(L - 1));
      if (!model->has_autoencoder(l)) throw Error("--ae-off", "layer " + std::to_string(l) + " has no autoencoder");
      model->set_autoencoder_enabled(l, false);
    }
  }
}

void SuperpositionOptions::require_for(const std::string& model_option, const std::string& model) const {
  if (model.empty()) return;
  const std::pair<const char*, const std::string*> only[] = {
      {"--base", &base}, {"--fine", &fine}, {"--alpha", &alpha}, {"--alpha-layers", &alpha_layers}, {"--ae-off", &ae_off}};
  for (const auto& [name, value] : only) {
    if (!value->empty()) throw Error(name, std::string("applies to --superposition, not to ") + model_option);
  }
}

void add_superposition_options(CLI::App& command, SuperpositionOptions& options, bool with_overrides) {
  command.add_option("--superposition", options.superposition, "Superposition checkpoint directory")
      ->check(kExistingDir);
  command.add_option("--base", options.base, "Base expert directory (instead of the checkpoint's)")->check(kExistingDir);
  command.add_option("--fine", options.fine, "Fine expert directory (instead of the checkpoint's)")->check(kExistingDir);
  if (!with_overrides) return;
  command.add_option("--alpha", options.alpha, "Override α: one value in [0, 1] for every layer");
  command.add_option("--alpha-layers", options.alpha_layers, "Override α per layer: a0,a1,... (L values in [0, 1])");
  command.add_option("--ae-off", options.ae_off, "Switch these layers' autoencoders off: l,l,...");
}

ProgressBar::ProgressBar(std::string label, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { clear(); }

void ProgressBar::clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

bool ProgressBar::update(int64_t done, int64_t total) {
  if (!enabled_ || total <= 0) return true;
  const auto now = std::chrono::steady_clock::now();
  // A few redraws a second are enough to read; the last one always shows.
  if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return true;
  last_draw_ = now;
  drawn_ = true;
  constexpr int kWidth = 30;
  const double share = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const auto filled = static_cast<int>(share * kWidth);
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const std::string eta = rate > 0 ? format("%.0f s", static_cast<double>(total - done) / rate) : "?";
  std::fprintf(stderr, "\r\033[K%s [%s%s] %lld/%lld %s, %.2f %s/s, ETA %s", label_.c_str(),
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), static_cast<long long>(done),
               static_cast<long long>(total), unit_.c_str(), rate, unit_.c_str(), eta.c_str());
  std::fflush(stderr);
  return true;
}

const CLI::Validator kExistingDir(
    [](std::string& path) -> std::string {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) return path + ": no such directory";
      if (!std::filesystem::is_directory(path, ec)) return path + ": not a directory";
      return {};
    },
    "DIR");

torch::Device resolve_device(const DeviceOptions& o) {
  if (o.device != "auto") return o.parsed_device();
  return DeviceOptions{torch::cuda::is_available() ? "cuda" : "cpu", o.dtype}.parsed_device();
}

ReservedOutput::ReservedOutput(std::string option, const std::string& path) : option_(std::move(option)) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw Error(option_, path + ": is a directory");
  try {
    file_.emplace(path);
  } catch (const Error& e) {
    throw Error(option_, e.what());
  }
}

void ReservedOutput::write(const std::string& bytes) {
  try {
    file_->write(bytes);
  } catch (const Error& e) {
    throw Error(option_, e.what());
  }
}

void ReservedOutput::commit() {
  try {
    file_->commit();
  } catch (const Error& e) {
    throw Error(option_, e.what());
  }
}

}  // namespace superpose::cli
