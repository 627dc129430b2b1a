// Byte-level BPE training: a vocabulary in GPT-2's format (vocab.json +
// merges.txt) learnt from text, loadable unchanged by Tokenizer::from_dir.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace superpose {

// What training produced. Ids, as written to vocab.json:
//   0..255      the single-byte tokens, in GPT-2's order (printable bytes
//               first, as bytes_to_unicode() lists them; GPT-2's own
//               vocab.json starts the same way);
//   256..N-2    the merged tokens, in the order they were learnt;
//   N-1         "<|endoftext|>".
// `merges` holds (left id, right id) in priority order (merges.txt's order).
// Two merges may make the same bytes ("ab"+"c" and "a"+"bc"); the second one
// reuses the first one's id, so there can be more merges than N - 257.
struct BpeVocabulary {
  std::vector<std::string> tokens;  // raw bytes of ids 0..N-2 (the EOS token is implicit)
  std::vector<std::pair<int32_t, int32_t>> merges;
  int64_t vocab_size() const { return static_cast<int64_t>(tokens.size()) + 1; }
};

struct BpeTrainingOptions {
  int64_t vocab_size = 0;     // N, EOS included; at least 257
  int64_t min_frequency = 2;  // a pair seen fewer times (weighted by word counts) is never merged
};

// Counts GPT-2 pre-tokenizer pieces ("words") over any number of texts, then
// learns merges.
//
// Training is standard BPE: every word starts as its bytes; repeatedly the
// adjacent pair with the highest count (summed over words, each weighted by
// how often it occurs) is merged everywhere. Ties go to the pair whose left
// token's bytes sort first, then whose right token's bytes sort first (bytes
// compared as unsigned, like memcmp), so the result depends only on the word
// counts, never on hashing or insertion order. Pair counts are kept up to
// date incrementally: an index from each pair to the words that hold it
// means a merge only revisits those words, and a lazily corrected max-heap
// finds the next pair.
//
// Errors: add_text() throws Error("text", "invalid UTF-8 ...") like encode();
// train() throws Error("vocab size", ...) for N < 257 or when the words run
// out of pairs seen min_frequency times before N tokens are reached (it says
// how many it could make), Error("min frequency", ...) for a value below 1,
// and Error("training", "cancelled") when `progress` returns false.
// Not thread-safe.
class BpeTrainer {
 public:
  // Called before the first merge, every 64 merges and at the end with
  // (tokens made so far, tokens wanted, EOS included); return false to
  // cancel (the last call cannot cancel).
  using Progress = std::function<bool(int64_t done, int64_t total)>;

  void add_text(std::string_view text);
  int64_t distinct_words() const { return static_cast<int64_t>(word_counts_.size()); }
  int64_t word_count() const { return words_seen_; }

  BpeVocabulary train(const BpeTrainingOptions& options, const Progress& progress = nullptr) const;

 private:
  std::unordered_map<std::string, int64_t> word_counts_;
  int64_t words_seen_ = 0;
};

// Writes DIR/vocab.json (token string in GPT-2's byte alphabet -> id, in id
// order) and DIR/merges.txt ("#version: 0.2", then "left right" per merge),
// all or nothing (AtomicDirectory: `dir` must not exist or be empty).
void write_bpe_vocabulary(const BpeVocabulary& vocabulary, const std::filesystem::path& dir);

}  // namespace superpose
