// superpose train-tokenizer: a byte-level BPE vocabulary (vocab.json + merges.txt) from JSONL text.
#include <chrono>
#include <iostream>

#include "app/cli/common.h"
#include "model/bpe_trainer.h"
#include "model/dataset.h"
#include "model/errors.h"
#include "model/file_util.h"

namespace superpose::cli {
namespace {

struct TrainTokenizerOptions {
  std::vector<std::string> data;
  std::string vocab_size;
  std::string min_frequency = "2";
  std::string out;
};

int64_t parse_count(const std::string& option, const std::string& text) {
  const uint64_t value = parse_unsigned(option, text);
  if (value > (uint64_t{1} << 31)) throw Error(option, text + " is too large");
  return static_cast<int64_t>(value);
}

void run_train_tokenizer(const TrainTokenizerOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  BpeTrainingOptions options;
  options.vocab_size = parse_count("--vocab-size", o.vocab_size);
  if (options.vocab_size < 257) {
    throw Error("--vocab-size", "must be at least 257 (256 byte tokens and <|endoftext|>), got " + o.vocab_size);
  }
  options.min_frequency = parse_count("--min-frequency", o.min_frequency);
  if (options.min_frequency < 1) throw Error("--min-frequency", "must be at least 1, got " + o.min_frequency);
  require_new_directory(o.out);  // before the long part

  BpeTrainer trainer;
  int64_t documents = 0;
  int64_t bytes = 0;
  for (const std::string& file : o.data) {
    for (const Document& document : read_jsonl(file)) {
      trainer.add_text(document.text);
      ++documents;
      bytes += static_cast<int64_t>(document.text.size());
    }
  }
  ProgressBar progress("train-tokenizer", "tokens");
  const BpeVocabulary vocabulary =
      trainer.train(options, [&](int64_t done, int64_t total) { return progress.update(done, total); });
  progress.clear();
  write_bpe_vocabulary(vocabulary, o.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << format("wrote %s: %lld tokens (%zu merges) from %lld documents, %.2f MB, %lld words (%lld distinct) "
                      "in %.1f s\n",
                      o.out.c_str(), static_cast<long long>(vocabulary.vocab_size()), vocabulary.merges.size(),
                      static_cast<long long>(documents), static_cast<double>(bytes) / 1e6,
                      static_cast<long long>(trainer.word_count()), static_cast<long long>(trainer.distinct_words()),
                      seconds);
}

}  // namespace

void register_train_tokenizer(CLI::App& app) {
  auto options = std::make_shared<TrainTokenizerOptions>();
  auto* command = app.add_subcommand(
      "train-tokenizer", "Train a GPT-2-style byte-level BPE tokenizer (vocab.json + merges.txt) on JSONL documents");
  command->add_option("--data", options->data, "JSONL documents {\"text\", \"label\"} (repeat for several files)")
      ->required()
      ->type_name("FILE");
  command->add_option("--vocab-size", options->vocab_size,
                      "Tokens in the vocabulary: 256 bytes, the merges, <|endoftext|>; at least 257")
      ->required()
      ->type_name("N");
  command->add_option("--min-frequency", options->min_frequency,
                      "Never merge a pair seen fewer times than this; default 2")
      ->type_name("N");
  command->add_option("--out", options->out, "New output directory (must not exist or be empty; written atomically)")
      ->required()
      ->type_name("DIR");
  command->callback([options] { run_train_tokenizer(*options); });
}

}  // namespace superpose::cli
