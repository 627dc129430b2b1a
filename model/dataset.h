// Labeled text datasets: JSONL documents, tokenized into fixed-length
// training/evaluation windows with domain labels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/tokenizer.h"

namespace superpose {

// One document of a labeled corpus. JSONL, one object per line:
//   {"text": "...", "label": 0, "domain": "en", "source": "brown/ca01"}
// `label` is the domain's expert: 0 = base, 1 = fine (SPEC §5). `domain`
// (a short name shown in tables) and `source` (where the text came from)
// are optional; other keys are ignored.
struct Document {
  std::string text;
  int64_t label = 0;
  std::string domain;  // may be empty
  std::string source;  // may be empty
};

// Reads a JSONL file. Blank lines are skipped. Throws Error("FILE:LINE", ...)
// for a line that is not a JSON object, a missing or non-string "text", text
// that is not valid UTF-8 or is empty, or a "label" that is not 0 or 1; and
// Error(FILE, "holds no documents") for a file without any.
std::vector<Document> read_jsonl(const std::filesystem::path& path);

// Writes documents as JSONL, atomically (nothing at `path` on failure).
void write_jsonl(const std::filesystem::path& path, const std::vector<Document>& documents);

// The display name of each label: the first non-empty `domain` seen with it,
// else "base" / "fine". Index = label.
std::vector<std::string> domain_names(const std::vector<Document>& documents);

// The token sequence training, evaluation and capture read for a document:
// the tokenizer's EOS id ("<|endoftext|>") first when the vocabulary has one,
// then the text's tokens. Tokenizer errors are rethrown as
// Error("document N", ...) with N = `index`.
std::vector<int64_t> document_sequence(const Document& document, const Tokenizer& tokenizer, size_t index);

// A batch of windows. Positions without a target (padding) hold
// kIgnoreIndex in `targets` and the EOS (or 0) id in `ids`.
struct Batch {
  static constexpr int64_t kIgnoreIndex = -100;  // torch's cross_entropy default
  torch::Tensor ids;       // (B,T) int64
  torch::Tensor targets;   // (B,T) int64: the next token, or kIgnoreIndex
  torch::Tensor labels;    // (B) int64, 0 or 1
  torch::Tensor documents; // (B) int64, index into the document list
  torch::Tensor offsets;   // (B) int64, token offset of the window in its document
  int64_t size() const { return ids.size(0); }
  Batch to(torch::Device device) const;
};

// Every document tokenized and cut into windows of at most `seq_len`
// predictions. Each document is preceded by the tokenizer's EOS id
// ("<|endoftext|>") when the vocabulary has one, so its first token is
// predicted too; windows overlap by one token, so every token of every
// document is a target exactly once. Windows never span two documents.
class TokenDataset {
 public:
  struct Window {
    int64_t document;  // index into the documents given to build()
    int64_t begin;     // offset into that document's token sequence (EOS included)
    int64_t length;    // number of tokens, 2..seq_len+1 (inputs = length-1)
    int64_t label;
  };

  // Throws Error("seq_len", ...) for seq_len < 1; tokenizer errors name the
  // document ("document N: ...").
  static TokenDataset build(const std::vector<Document>& documents, const Tokenizer& tokenizer,
                            int64_t seq_len);

  int64_t seq_len() const { return seq_len_; }
  size_t size() const { return windows_.size(); }
  const std::vector<Window>& windows() const { return windows_; }
  const std::vector<int64_t>& tokens(int64_t document) const { return tokens_[static_cast<size_t>(document)]; }
  size_t document_count() const { return tokens_.size(); }
  // Number of target tokens (predictions) in all windows with this label.
  int64_t target_count(int64_t label) const;
  int64_t pad_id() const { return pad_id_; }

  // The windows `indices` as one batch of width seq_len (padded on the right).
  Batch batch(const std::vector<size_t>& indices) const;
  // A seeded permutation of all windows for one epoch: the same (seed, epoch)
  // always gives the same order, on every platform (mt19937_64 + Fisher-Yates).
  std::vector<size_t> epoch_order(uint64_t seed, int64_t epoch) const;
  // Windows [first, first+count) in order (clipped to size()).
  std::vector<size_t> range(size_t first, size_t count) const;

 private:
  int64_t seq_len_ = 0;
  int64_t pad_id_ = 0;
  std::vector<std::vector<int64_t>> tokens_;
  std::vector<Window> windows_;
};

}  // namespace superpose
