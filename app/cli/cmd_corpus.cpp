// superpose corpus: labeled train/validation JSONL built from a recipe of sources.
#include <cmath>
#include <iostream>
#include <optional>

#include "app/cli/common.h"
#include "model/corpus.h"
#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::cli {
namespace {

struct CorpusCliOptions {
  std::string recipe;
  std::string out;
  std::string validation_share = "0.1";
  std::string seed = "0";
  std::string max_mb;
};

void run_corpus(const CorpusCliOptions& o) {
  CorpusOptions options;
  options.validation_share = parse_number("--validation-share", o.validation_share);
  if (!(options.validation_share >= 0 && options.validation_share < 1)) {
    throw Error("--validation-share", "must be in [0, 1), got " + o.validation_share);
  }
  options.seed = parse_unsigned("--seed", o.seed);
  if (!o.max_mb.empty()) {
    options.max_mb = parse_number("--max-mb", o.max_mb);
    if (!(*options.max_mb > 0) || !std::isfinite(*options.max_mb)) {
      throw Error("--max-mb", "must be a number above 0, got " + o.max_mb);
    }
  }
  require_new_directory(o.out);  // before the long part
  const CorpusRecipe recipe = CorpusRecipe::load(o.recipe);
  ProgressBar progress("corpus", "files");
  const Corpus corpus =
      build_corpus(recipe, options, [&](int64_t done, int64_t total) { return progress.update(done, total); });
  progress.clear();
  write_corpus(corpus, o.out);
  std::string summary;
  for (const auto& [domain, stats] : corpus.stats["domains"].items()) {
    summary += format("; %s (label %d): %lld + %lld documents, %.2f + %.2f MB", domain.c_str(),
                      stats["label"].get<int>(), stats["train"]["documents"].get<long long>(),
                      stats["validation"]["documents"].get<long long>(), stats["train"]["bytes"].get<double>() / 1e6,
                      stats["validation"]["bytes"].get<double>() / 1e6);
  }
  std::cerr << "wrote " << o.out << ": train + validation" << summary << "\n";
}

}  // namespace

void register_corpus(CLI::App& app) {
  auto options = std::make_shared<CorpusCliOptions>();
  auto* command = app.add_subcommand(
      "corpus", "Build a labeled corpus (train.jsonl, validation.jsonl, stats.json) from the sources of a recipe");
  command->add_option("--recipe", options->recipe, "Recipe JSON listing the sources (assets/data/corpus-recipe.json)")
      ->required()
      ->type_name("FILE");
  command->add_option("--out", options->out, "New output directory (must not exist or be empty; written atomically)")
      ->required()
      ->type_name("DIR");
  command->add_option("--validation-share", options->validation_share,
                      "Share of documents for validation, in [0, 1); default 0.1")
      ->type_name("X");
  command->add_option("--seed", options->seed, "Seed of the train/validation split (and of --max-mb's choice); default 0")
      ->type_name("N");
  command->add_option("--max-mb", options->max_mb, "Keep at most this many MB (10^6 bytes) of text per domain")
      ->type_name("X");
  command->callback([options] { run_corpus(*options); });
}

}  // namespace superpose::cli
