// superpose tsne: a t-SNE map of the rows of one tensor of a safetensors file, as CSV.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "analysis/tsne.h"
#include "app/cli/common.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "model/safetensors.h"

namespace superpose::cli {
namespace {

struct TsneCliOptions {
  std::string input, tensor, out;
  double perplexity = 30;
  int64_t iterations = 1000;
  uint64_t seed = 0;
  int64_t dims = 2;
  std::string method = "auto";
  bool json = false, quiet = false;
  DeviceOptions device;
};

TsneGradient parse_method(const std::string& text) {
  if (text == "auto") return TsneGradient::kAuto;
  if (text == "exact") return TsneGradient::kExact;
  if (text == "fft") return TsneGradient::kFft;
  throw Error("--method", "'" + text + "' is not one of auto, exact, fft");
}

void run_tsne(const TsneCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsFile file(o.input);
  auto data = file.load(o.tensor, torch::kFloat32);  // throws naming the file and tensor when absent
  if (data.dim() == 1) data = data.unsqueeze(1);
  if (data.dim() != 2) {
    std::ostringstream shape;
    shape << data.sizes();
    throw Error("--tensor", "'" + o.tensor + "' in " + o.input + " has shape " + shape.str() +
                                "; t-SNE maps the rows of a matrix (points, features)");
  }
  TsneOptions options;
  options.dims = o.dims;
  options.perplexity = o.perplexity;
  options.iterations = o.iterations;
  options.seed = o.seed;
  options.pca_init = true;
  options.gradient = parse_method(o.method);
  options.device = o.device.parsed_device();
  Tsne tsne(data, options);
  const bool bar = !o.quiet && !o.json && isatty(fileno(stderr));
  tsne.step(o.iterations, [&](int64_t it) {
    if (bar && (it % 50 == 0 || it == o.iterations)) {
      std::fprintf(stderr, "\rt-SNE iteration %lld/%lld", static_cast<long long>(it), static_cast<long long>(o.iterations));
    }
    return true;
  });
  if (bar) std::fprintf(stderr, "\n");
  const auto y = tsne.embedding();  // (N,dims)
  std::string csv;
  csv.reserve(static_cast<size_t>(y.size(0)) * 24 * static_cast<size_t>(o.dims));
  const auto a = y.accessor<float, 2>();
  char cell[32];
  for (int64_t i = 0; i < y.size(0); ++i) {
    for (int64_t d = 0; d < o.dims; ++d) {
      std::snprintf(cell, sizeof cell, d == 0 ? "%.7g" : ",%.7g", static_cast<double>(a[i][d]));
      csv += cell;
    }
    csv += '\n';
  }
  write_file_atomic(o.out, csv);
  const double kl = tsne.kl_divergence();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const char* method = tsne.method() == TsneGradient::kExact ? "exact" : "fft";
  if (o.json) {
    std::cout << nlohmann::json{{"kl_divergence", kl},    {"points", y.size(0)},     {"dims", o.dims},
                                {"iterations", tsne.iteration()}, {"perplexity", o.perplexity}, {"method", method},
                                {"device", o.device.device}, {"seconds", seconds}, {"out", o.out}}
                     .dump()
              << "\n";
  } else if (!o.quiet) {
    std::fprintf(stderr, "KL divergence %.6f (%lld points, %lld iterations, %s gradient, %.1f s); wrote %s\n", kl,
                 static_cast<long long>(y.size(0)), static_cast<long long>(tsne.iteration()), method, seconds,
                 o.out.c_str());
  }
}

}  // namespace

void register_tsne(CLI::App& app) {
  auto options = std::make_shared<TsneCliOptions>();
  auto* command = app.add_subcommand(
      "tsne", "t-SNE map of the rows of a tensor in a safetensors file (e.g. from `superpose capture` or `trace`)");
  command->add_option("--input", options->input, "safetensors file")->required()->check(CLI::ExistingFile);
  command->add_option("--tensor", options->tensor, "name of the (points, features) tensor to map")->required();
  command->add_option("--out", options->out, "CSV: one row per input row, its map coordinates (no header)")
      ->required()
      ->type_name("FILE.csv");
  command->add_option("--perplexity", options->perplexity, "effective number of neighbours, below the point count")
      ->capture_default_str();
  command->add_option("--iterations", options->iterations, "optimisation steps (the first 250 exaggerated)")
      ->capture_default_str();
  command->add_option("--seed", options->seed, "seed (the layout starts from PCA; the seed breaks no ties there)")
      ->capture_default_str();
  command->add_option("--dims", options->dims, "2 or 3")->capture_default_str();
  command->add_option("--method", options->method,
                      "gradient: exact (O(N²)), fft (grid interpolation) or auto (exact up to 5,000 points)")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print {\"kl_divergence\", \"points\", ...} on stdout");
  command->add_flag("--quiet", options->quiet, "no progress or summary on stderr");
  add_device_option(*command, options->device);
  command->callback([options] { run_tsne(*options); });
}

}  // namespace superpose::cli
