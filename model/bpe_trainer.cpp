// Byte-level BPE training with incremental pair counts (see bpe_trainer.h).
#include "model/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <optional>
#include <queue>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/tokenizer.h"

namespace superpose {
namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

using PairKey = uint64_t;

PairKey pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t left_of(PairKey key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(PairKey key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

// A heap entry: a pair and its count when pushed. Counts of existing pairs
// only fall, so an entry whose count no longer matches is stale: it is
// dropped or pushed again with the current count when it reaches the top.
struct Candidate {
  int64_t count;
  PairKey pair;
};

class Training {
 public:
  Training(const std::unordered_map<std::string, int64_t>& word_counts, const BpeTrainingOptions& options)
      : options_(options), heap_(Order{&vocabulary_.tokens}) {
    // GPT-2's byte order: sorting the byte-level strings by code point.
    std::array<int, 256> bytes;
    std::iota(bytes.begin(), bytes.end(), 0);
    std::sort(bytes.begin(), bytes.end(), [](int a, int b) {
      return byte_level_string(std::string(1, static_cast<char>(a))) <
             byte_level_string(std::string(1, static_cast<char>(b)));
    });
    std::array<int32_t, 256> byte_id{};
    for (int32_t id = 0; id < 256; ++id) {
      byte_id[bytes[id]] = id;
      add_token(std::string(1, static_cast<char>(bytes[id])));
    }
    words_.reserve(word_counts.size());
    for (const auto& [text, count] : word_counts) {
      Word word{{}, count};
      word.symbols.reserve(text.size());
      for (const char c : text) word.symbols.push_back(byte_id[static_cast<unsigned char>(c)]);
      words_.push_back(std::move(word));
    }
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const PairKey pair = pair_key(word.symbols[i], word.symbols[i + 1]);
        pair_counts_[pair] += word.count;
        words_of_pair_[pair].push_back(w);
      }
    }
    std::vector<Candidate> initial;
    initial.reserve(pair_counts_.size());
    for (const auto& [pair, count] : pair_counts_) initial.push_back({count, pair});
    heap_ = Heap(Order{&vocabulary_.tokens}, std::move(initial));
  }

  BpeVocabulary run(const BpeTrainer::Progress& progress) {
    const int64_t wanted_tokens = options_.vocab_size - 1;  // EOS comes last
    if (progress && !progress(static_cast<int64_t>(vocabulary_.tokens.size()) + 1, options_.vocab_size)) {
      throw Error("training", "cancelled");
    }
    int64_t steps = 0;
    while (static_cast<int64_t>(vocabulary_.tokens.size()) < wanted_tokens) {
      const auto best = next_pair();
      if (!best) {
        throw Error("vocab size", std::to_string(options_.vocab_size) + " is more than the data can make: no pair " +
                                      "occurs at least " + std::to_string(options_.min_frequency) +
                                      " times after " + std::to_string(vocabulary_.tokens.size() + 1) +
                                      " tokens; ask for at most that many, add text, or lower the min frequency");
      }
      merge(*best);
      if (progress && (++steps % 64 == 0) &&
          !progress(static_cast<int64_t>(vocabulary_.tokens.size()) + 1, options_.vocab_size)) {
        throw Error("training", "cancelled");
      }
    }
    if (progress) progress(options_.vocab_size, options_.vocab_size);
    return std::move(vocabulary_);
  }

 private:
  // Max-heap order: higher count first; on equal counts the pair whose bytes
  // (left, then right) sort first.
  struct Order {
    const std::vector<std::string>* tokens;
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string& a_left = (*tokens)[left_of(a.pair)];
      const std::string& b_left = (*tokens)[left_of(b.pair)];
      if (a_left != b_left) return a_left > b_left;
      return (*tokens)[right_of(a.pair)] > (*tokens)[right_of(b.pair)];
    }
  };
  using Heap = std::priority_queue<Candidate, std::vector<Candidate>, Order>;

  int32_t add_token(std::string bytes) {
    const auto id = static_cast<int32_t>(vocabulary_.tokens.size());
    id_of_bytes_.emplace(bytes, id);
    vocabulary_.tokens.push_back(std::move(bytes));
    return id;
  }

  int64_t count_of(PairKey pair) const {
    const auto it = pair_counts_.find(pair);
    return it == pair_counts_.end() ? 0 : it->second;
  }

  // The pair to merge next, or nothing when none is frequent enough.
  std::optional<PairKey> next_pair() {
    while (!heap_.empty()) {
      const Candidate top = heap_.top();
      heap_.pop();
      const int64_t count = count_of(top.pair);
      if (count != top.count) {
        if (count > 0) heap_.push({count, top.pair});
        continue;
      }
      if (count < options_.min_frequency) return std::nullopt;
      return top.pair;
    }
    return std::nullopt;
  }

  void add_pairs(const Word& word, int64_t sign) {
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const PairKey pair = pair_key(word.symbols[i], word.symbols[i + 1]);
      const auto it = pair_counts_.try_emplace(pair, 0).first;
      it->second += sign * word.count;
      if (it->second == 0) pair_counts_.erase(it);
    }
  }

  void merge(PairKey pair) {
    const int32_t left = left_of(pair);
    const int32_t right = right_of(pair);
    std::string bytes = vocabulary_.tokens[left] + vocabulary_.tokens[right];
    const auto existing = id_of_bytes_.find(bytes);
    const int32_t merged = existing != id_of_bytes_.end() ? existing->second : add_token(std::move(bytes));
    // A pair merged before can come back when a later merge rebuilds one of
    // its tokens ("a"+"bc" after "ab"+"c"); merges.txt lists it once.
    if (merged_pairs_.insert(pair).second) vocabulary_.merges.emplace_back(left, right);

    std::vector<uint32_t> holders = std::move(words_of_pair_[pair]);
    words_of_pair_.erase(pair);
    std::sort(holders.begin(), holders.end());
    holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
    std::vector<PairKey> new_pairs;
    std::vector<int32_t> merged_symbols;
    for (const uint32_t w : holders) {
      Word& word = words_[w];
      const auto& s = word.symbols;
      merged_symbols.clear();
      bool changed = false;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          merged_symbols.push_back(merged);
          ++i;
          changed = true;
        } else {
          merged_symbols.push_back(s[i]);
        }
      }
      if (!changed) continue;  // an index entry from before an earlier merge
      // Subtracting every pair of the old word and adding every pair of the
      // new one is simple and exact; words are short.
      add_pairs(word, -1);
      word.symbols.swap(merged_symbols);
      add_pairs(word, +1);
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        if (word.symbols[i] != merged && word.symbols[i + 1] != merged) continue;
        const PairKey touched = pair_key(word.symbols[i], word.symbols[i + 1]);
        words_of_pair_[touched].push_back(w);
        new_pairs.push_back(touched);
      }
    }
    // Only pairs with the merged token can have grown: queue them at their
    // current counts (pairs without it only shrink and are corrected lazily).
    std::sort(new_pairs.begin(), new_pairs.end());
    new_pairs.erase(std::unique(new_pairs.begin(), new_pairs.end()), new_pairs.end());
    for (const PairKey p : new_pairs) {
      const int64_t count = count_of(p);
      if (count > 0) heap_.push({count, p});
    }
  }

  BpeTrainingOptions options_;
  BpeVocabulary vocabulary_;
  std::unordered_map<std::string, int32_t> id_of_bytes_;
  std::vector<Word> words_;
  std::unordered_set<PairKey> merged_pairs_;
  std::unordered_map<PairKey, int64_t> pair_counts_;
  std::unordered_map<PairKey, std::vector<uint32_t>> words_of_pair_;
  Heap heap_;
};

}  // namespace

void BpeTrainer::add_text(std::string_view text) {
  for (const std::string_view piece : pretokenize(text)) {
    ++word_counts_[std::string(piece)];
    ++words_seen_;
  }
}

BpeVocabulary BpeTrainer::train(const BpeTrainingOptions& options, const Progress& progress) const {
  if (options.vocab_size < 257) {
    throw Error("vocab size", "must be at least 257 (256 byte tokens and <|endoftext|>), got " +
                                  std::to_string(options.vocab_size));
  }
  if (options.vocab_size > (int64_t{1} << 30)) {
    throw Error("vocab size", std::to_string(options.vocab_size) + " is too large");
  }
  if (options.min_frequency < 1) {
    throw Error("min frequency", "must be at least 1, got " + std::to_string(options.min_frequency));
  }
  return Training(word_counts_, options).run(progress);
}

void write_bpe_vocabulary(const BpeVocabulary& vocabulary, const std::filesystem::path& dir) {
  auto quoted = [](const std::string& bytes) { return nlohmann::json(byte_level_string(bytes)).dump(); };
  std::string vocab = "{";
  for (size_t id = 0; id < vocabulary.tokens.size(); ++id) {
    vocab += quoted(vocabulary.tokens[id]) + ": " + std::to_string(id) + ", ";
  }
  vocab += nlohmann::json(kEndOfText).dump() + ": " + std::to_string(vocabulary.tokens.size()) + "}\n";
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : vocabulary.merges) {
    merges += byte_level_string(vocabulary.tokens[left]) + " " + byte_level_string(vocabulary.tokens[right]) + "\n";
  }
  AtomicDirectory out(dir);
  write_file_atomic(out / "vocab.json", vocab);
  write_file_atomic(out / "merges.txt", merges);
  out.commit();
}

}  // namespace superpose
