// GPT-2 byte-level BPE: file loading, PCRE2 pre-tokenization, rank-ordered
// merges and a word cache. The algorithm mirrors HF tokenizers' BPE::merge_word.
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "model/errors.h"

namespace superpose {
namespace {

// GPT-2's pre-tokenizer. `\s` is spelled out as [\t-\r\x{85}\p{Z}] (the
// Unicode White_Space set, which is what Oniguruma's \s means inside HF
// tokenizers): PCRE2's UCP \s also takes U+180E, which would split text
// differently from the reference.
constexpr const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\t-\r\x{85}\p{Z}\p{L}\p{N}]+)"
    R"(|[\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}])|[\t-\r\x{85}\p{Z}]+)";

constexpr const char* kEndOfText = "<|endoftext|>";
// Pieces longer than this are encoded every time instead of being cached, so
// that one huge run of letters cannot fill the cache.
constexpr size_t kMaxCachedPiece = 96;

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other 68 bytes are moved to U+0100.. in byte order.
struct ByteAlphabet {
  std::array<uint32_t, 256> code_point{};  // byte -> code point
  std::array<int16_t, 324> byte{};         // code point -> byte, -1 outside the alphabet

  ByteAlphabet() {
    byte.fill(-1);
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      code_point[b] = printable ? static_cast<uint32_t>(b) : next_extra++;
      byte[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// Where the first invalid UTF-8 sequence of `text` starts and why; offset ==
// npos when the text is valid. Rules of RFC 3629 (no overlongs, surrogates or
// code points above U+10FFFF).
struct Utf8Problem {
  size_t offset = std::string_view::npos;
  std::string reason;
};

Utf8Problem find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto is_cont = [&](size_t k) { return k < n && (s[k] & 0xC0) == 0x80; };
  while (i < n) {
    // Eight ASCII bytes at a time: most text is mostly ASCII.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c < 0xC0) return {i, "unexpected continuation byte"};
    if (c < 0xC2) return {i, "overlong encoding"};
    size_t len;
    if (c < 0xE0) {
      len = 2;
    } else if (c < 0xF0) {
      len = 3;
    } else if (c < 0xF5) {
      len = 4;
    } else {
      char reason[48];
      std::snprintf(reason, sizeof reason, "byte 0x%02X never occurs in UTF-8", c);
      return {i, reason};
    }
    for (size_t k = 1; k < len; ++k) {
      if (!is_cont(i + k)) return {i, "truncated sequence"};
    }
    if (len == 3) {
      if (c == 0xE0 && s[i + 1] < 0xA0) return {i, "overlong encoding"};
      if (c == 0xED && s[i + 1] >= 0xA0) return {i, "UTF-16 surrogate code point"};
    } else if (len == 4) {
      if (c == 0xF0 && s[i + 1] < 0x90) return {i, "overlong encoding"};
      if (c == 0xF4 && s[i + 1] >= 0x90) return {i, "code point above U+10FFFF"};
    }
    i += len;
  }
  return {};
}

// Decodes one code point of already-valid UTF-8 at s[i], advancing i.
uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  uint32_t cp;
  if (c < 0x80) {
    cp = c;
    i += 1;
  } else if (c < 0xE0) {
    cp = ((c & 0x1Fu) << 6) | cont(1);
    i += 2;
  } else if (c < 0xF0) {
    cp = ((c & 0x0Fu) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = ((c & 0x07u) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

// A token string for messages: JSON-quoted so that control characters and
// spaces stay visible and the message stays on one line.
std::string json_quoted(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string read_whole_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path.string(), "file not found");
  if (std::filesystem::is_directory(path, ec)) throw Error(path.string(), "is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string(), std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path.string(), "read failed");
  return std::move(buffer).str();
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// (left id, right id) -> (rank, merged id), open addressing: the lookup runs
// once per adjacent symbol pair during BPE.
class MergeTable {
 public:
  struct Merge {
    uint32_t rank;
    int32_t merged;
  };

  void reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    slots_.assign(capacity, Slot{kEmpty, {0, 0}});
    mask_ = capacity - 1;
  }

  // Returns the rank already stored for this pair, or inserts and returns nullopt.
  std::optional<uint32_t> insert(uint64_t key, Merge merge) {
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, merge};
        return std::nullopt;
      }
      if (slots_[i].key == key) return slots_[i].merge.rank;
    }
  }

  const Merge* find(uint64_t key) const {
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  // Ids are < 2^31, so no real pair has both halves at 0xFFFFFFFF.
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  size_t hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Per-call scratch space for BPE, reused across the pieces of one encode().
struct BpeScratch {
  struct Symbol {
    int32_t id;
    int32_t prev;  // index of the previous live symbol, -1 at the start
    int32_t next;  // index of the next live symbol, -1 at the end
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t merged;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::vector<int32_t> result;
};

// Heap order: lowest rank first, then leftmost (HF's Merge ordering).
bool later_candidate(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

// GPT-2's pattern compiled once for the process (PCRE2 code is immutable and
// may be matched from several threads, each with its own match data).
class PreTokenizer {
 public:
  PreTokenizer() {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &error_code, &error_offset, nullptr);
    if (code_ == nullptr) {
      // Only a PCRE2 built without Unicode support gets here.
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof message);
      throw Error("tokenizer", std::string("PCRE2 cannot compile the GPT-2 pattern: ") +
                                   reinterpret_cast<const char*>(message));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~PreTokenizer() { pcre2_code_free(code_); }
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls emit(piece) for each piece of already-validated UTF-8 `text`, in order.
  template <typename Emit>
  void for_each_piece(std::string_view text, Emit&& emit) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> match(
        pcre2_match_data_create_from_pattern(code_, nullptr), pcre2_match_data_free);
    if (!match) throw std::bad_alloc();
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t offset = 0;
    while (offset < text.size()) {
      // The text was validated by the caller, so PCRE2 need not check it again.
      int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), offset, 0, match.get(), nullptr)
                    : PCRE2_ERROR_JIT_STACKLIMIT;
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // no JIT, or its 32 KB stack ran out: the interpreter has a heap
        rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw Error("text", "pre-tokenizer failed at byte " + std::to_string(offset) + ": " +
                                reinterpret_cast<const char*>(message));
      }
      const size_t start = ovector[0];
      const size_t end = ovector[1];
      // The pattern's alternatives cover every character, so there are no
      // gaps; were there one, HF keeps it as a piece of its own, and so do we.
      if (start > offset) emit(text.substr(offset, start - offset));
      if (end == start) break;  // cannot happen: no alternative matches the empty string
      emit(text.substr(start, end - start));
      offset = end;
    }
    if (offset < text.size()) emit(text.substr(offset));
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

const PreTokenizer& pre_tokenizer() {
  static const PreTokenizer instance;
  return instance;
}

void check_utf8(std::string_view text) {
  const Utf8Problem problem = find_invalid_utf8(text);
  if (problem.offset != std::string_view::npos) {
    throw Error("text", "invalid UTF-8 at byte " + std::to_string(problem.offset) + ": " + problem.reason);
  }
}

}  // namespace

struct Tokenizer::Tables {
  std::string token_bytes;             // all tokens' raw bytes, back to back
  std::vector<uint32_t> token_offset;  // id -> start in token_bytes; size N + 1
  std::unordered_map<std::string, int32_t> id_of_string;  // vocab.json's key -> id
  std::array<int32_t, 256> byte_id{};  // id of each single-byte token
  MergeTable merges;

  std::string_view bytes_of(int32_t id) const {
    return std::string_view(token_bytes).substr(token_offset[id], token_offset[id + 1] - token_offset[id]);
  }

  void load_vocab(const std::filesystem::path& path);
  void load_merges(const std::filesystem::path& path);
  // Appends the BPE ids of one pre-tokenized piece to scratch.result.
  void bpe(std::string_view piece, BpeScratch& scratch) const;
};

// Piece bytes -> ids, guarded by a mutex because encode() is const and may
// run on several threads. An open-addressing index of (hash tag, entry) words
// points into 64-byte entries that hold short keys and id lists inline, so a
// hit costs about two cache misses and no allocation; longer ones spill into
// two arenas.
class Tokenizer::WordCache {
 public:
  static uint64_t hash_of(std::string_view piece) { return std::hash<std::string_view>()(piece); }

  // Appends the cached ids of `piece` to `out`; false when not cached.
  bool lookup(std::string_view piece, uint64_t hash, std::vector<int64_t>& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Entry* entry = find(piece, hash);
    if (entry == nullptr) return false;
    const int32_t* ids = entry->ids_len <= kInlineIds ? entry->ids : ids_.data() + entry->ids_offset;
    out.insert(out.end(), ids, ids + entry->ids_len);
    return true;
  }

  void insert(std::string_view piece, uint64_t hash, const std::vector<int32_t>& ids) {
    if (piece.size() > kMaxCachedPiece || ids.size() > kMaxCachedPiece) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (find(piece, hash) != nullptr) return;  // another thread got there first
    // Bounded memory: start over rather than grow without end on a
    // long-running worker that sees an endless variety of words.
    if (entries_.size() >= kMaxEntries) clear();
    if (4 * (entries_.size() + 1) > 3 * slots_.size()) grow();

    Entry entry{};
    entry.key_len = static_cast<uint16_t>(piece.size());
    entry.ids_len = static_cast<uint16_t>(ids.size());
    if (piece.size() <= kInlineKey) {
      std::memcpy(entry.key, piece.data(), piece.size());
    } else {
      entry.key_offset = static_cast<uint32_t>(keys_.size());
      keys_.append(piece);
    }
    if (ids.size() <= kInlineIds) {
      std::copy(ids.begin(), ids.end(), entry.ids);
    } else {
      entry.ids_offset = static_cast<uint32_t>(ids_.size());
      ids_.insert(ids_.end(), ids.begin(), ids.end());
    }
    entries_.push_back(entry);
    place(hash, static_cast<uint32_t>(entries_.size()));
  }

 private:
  static constexpr size_t kInlineKey = 24;
  static constexpr size_t kInlineIds = 7;
  static constexpr size_t kMaxEntries = size_t{1} << 17;  // ~10 MB; the Brown corpus needs 54k
  struct Entry {
    uint16_t key_len;
    uint16_t ids_len;
    uint32_t key_offset;  // into keys_ when key_len > kInlineKey
    uint32_t ids_offset;  // into ids_ when ids_len > kInlineIds
    char key[kInlineKey];
    int32_t ids[kInlineIds];
  };
  static_assert(sizeof(Entry) == 64, "one cache line per entry");

  // A slot is (upper 32 bits of the hash, entry number counted from 1); 0 is
  // empty. Probing starts at the hash's low bits.
  static uint64_t tag(uint64_t hash) { return hash >> 32; }

  const Entry* find(std::string_view piece, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    const uint64_t want = tag(hash);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return nullptr;
      if ((slot >> 32) != want) continue;
      const Entry& entry = entries_[static_cast<uint32_t>(slot) - 1];
      if (entry.key_len != piece.size()) continue;
      const char* key = entry.key_len <= kInlineKey ? entry.key : keys_.data() + entry.key_offset;
      if (std::memcmp(key, piece.data(), piece.size()) == 0) return &entry;
    }
  }

  void place(uint64_t hash, uint32_t number) {
    size_t i = hash & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = (tag(hash) << 32) | number;
  }

  void clear() {
    slots_.clear();
    entries_.clear();
    keys_.clear();
    ids_.clear();
    mask_ = 0;
  }

  void grow() {
    const size_t capacity = slots_.empty() ? 8192 : 2 * slots_.size();
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    // Slots keep only half of the hash: rehash the keys (rare, amortised).
    for (uint32_t number = 1; number <= entries_.size(); ++number) {
      const Entry& entry = entries_[number - 1];
      const char* key = entry.key_len <= kInlineKey ? entry.key : keys_.data() + entry.key_offset;
      place(hash_of(std::string_view(key, entry.key_len)), number);
    }
  }

  std::mutex mutex_;
  std::vector<uint64_t> slots_;
  std::vector<Entry> entries_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t mask_ = 0;
};

void Tokenizer::Tables::load_vocab(const std::filesystem::path& path) {
  const std::string where = path.string();
  const std::string text = read_whole_file(path);
  // nlohmann keeps the last of two equal keys; catch them on the way in.
  std::unordered_set<std::string> seen_keys;
  std::string duplicate_key;
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate_key.empty() &&
          !seen_keys.insert(parsed.get<std::string>()).second) {
        duplicate_key = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("malformed JSON: ") + e.what());
  }
  if (!vocab.is_object()) throw Error(where, "expected a JSON object mapping token strings to ids");
  if (!duplicate_key.empty()) throw Error(where, "token " + json_quoted(duplicate_key) + " appears twice");
  if (vocab.empty()) throw Error(where, "the vocabulary is empty");
  if (vocab.size() >= (size_t{1} << 31)) throw Error(where, "too many tokens");

  std::vector<const std::string*> string_of_id(vocab.size(), nullptr);
  id_of_string.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const nlohmann::json& value = it.value();
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      throw Error(where, "token " + json_quoted(it.key()) + ": id must be a non-negative integer, got " + value.dump());
    }
    const int64_t id = value.get<int64_t>();
    if (id >= static_cast<int64_t>(vocab.size())) {
      throw Error(where, "token " + json_quoted(it.key()) + ": id " + std::to_string(id) + " is not below the token count " +
                             std::to_string(vocab.size()) + " (ids must be 0..N-1)");
    }
    if (string_of_id[id] != nullptr) {
      throw Error(where, "id " + std::to_string(id) + " is used by both " + json_quoted(*string_of_id[id]) + " and " +
                             json_quoted(it.key()));
    }
    string_of_id[id] = &it.key();
    id_of_string.emplace(it.key(), static_cast<int32_t>(id));
  }
  // N distinct ids in 0..N-1: every id has a token.

  const ByteAlphabet& alphabet = byte_alphabet();
  token_offset.reserve(vocab.size() + 1);
  std::string raw;
  for (const std::string* token : string_of_id) {
    token_offset.push_back(static_cast<uint32_t>(token_bytes.size()));
    raw.clear();
    bool byte_level = true;
    for (size_t i = 0; i < token->size() && byte_level;) {
      const uint32_t cp = next_code_point(*token, i);
      if (cp < alphabet.byte.size() && alphabet.byte[cp] >= 0) {
        raw.push_back(static_cast<char>(alphabet.byte[cp]));
      } else {
        byte_level = false;
      }
    }
    // An added token outside the byte alphabet decodes to its own text, as
    // HF's ByteLevel decoder does.
    token_bytes += byte_level ? raw : *token;
  }
  token_offset.push_back(static_cast<uint32_t>(token_bytes.size()));

  for (int b = 0; b < 256; ++b) {
    std::string token;
    append_utf8(token, alphabet.code_point[b]);
    const auto it = id_of_string.find(token);
    if (it == id_of_string.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      throw Error(where, std::string("no token for byte ") + hex + " (" + json_quoted(token) +
                             "): a byte-level vocabulary needs all 256");
    }
    byte_id[b] = it->second;
  }
}

void Tokenizer::Tables::load_merges(const std::filesystem::path& path) {
  const std::string text = read_whole_file(path);
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();

  merges.reserve(lines.size());
  std::string merged;
  uint32_t rank = 0;
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string_view line = lines[n];
    const std::string where = path.string() + ":" + std::to_string(n + 1);
    if (n == 0 && line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (line.empty() || space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      throw Error(where, "expected two tokens separated by one space, got " + json_quoted(line));
    }
    const std::string left(line.substr(0, space));
    const std::string right(line.substr(space + 1));
    merged = left + right;
    int32_t ids[3];
    const std::string* parts[3] = {&left, &right, &merged};
    for (int k = 0; k < 3; ++k) {
      const auto it = id_of_string.find(*parts[k]);
      if (it == id_of_string.end()) {
        throw Error(where, "merge " + json_quoted(line) + ": " + json_quoted(*parts[k]) + " is not in the vocabulary");
      }
      ids[k] = it->second;
    }
    if (const auto previous = merges.insert(pair_key(ids[0], ids[1]), {rank, ids[2]})) {
      throw Error(where, "merge " + json_quoted(line) + " already appeared (rank " + std::to_string(*previous) + ")");
    }
    ++rank;
  }
}

void Tokenizer::Tables::bpe(std::string_view piece, BpeScratch& scratch) const {
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  const int32_t n = static_cast<int32_t>(piece.size());
  symbols.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_id[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  for (int32_t i = 0; i + 1 < n; ++i) {
    if (const auto* m = merges.find(pair_key(symbols[i].id, symbols[i + 1].id))) {
      heap.push_back({m->rank, i, m->merged});
    }
  }
  std::make_heap(heap.begin(), heap.end(), later_candidate);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later_candidate);
    const BpeScratch::Candidate top = heap.back();
    heap.pop_back();
    BpeScratch::Symbol& left = symbols[top.pos];
    // Stale candidates: the left symbol was absorbed, or its right
    // neighbour has grown since this pair was queued.
    if (left.id < 0 || left.next < 0) continue;
    BpeScratch::Symbol& right = symbols[left.next];
    const auto* m = merges.find(pair_key(left.id, right.id));
    if (m == nullptr || m->merged != top.merged) continue;

    left.id = top.merged;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const auto* p = merges.find(pair_key(symbols[left.prev].id, left.id))) {
        heap.push_back({p->rank, left.prev, p->merged});
        std::push_heap(heap.begin(), heap.end(), later_candidate);
      }
    }
    if (left.next >= 0) {
      if (const auto* p = merges.find(pair_key(left.id, symbols[left.next].id))) {
        heap.push_back({p->rank, top.pos, p->merged});
        std::push_heap(heap.begin(), heap.end(), later_candidate);
      }
    }
  }
  for (int32_t i = 0; i >= 0 && n > 0; i = symbols[i].next) scratch.result.push_back(symbols[i].id);
}

Tokenizer::Tokenizer(std::shared_ptr<const Tables> tables, std::shared_ptr<WordCache> cache)
    : tables_(std::move(tables)), cache_(std::move(cache)) {}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
  auto tables = std::make_shared<Tables>();
  tables->load_vocab(vocab_json);
  tables->load_merges(merges_txt);
  pre_tokenizer();  // a PCRE2 without Unicode support fails here, at load time
  return Tokenizer(std::move(tables), std::make_shared<WordCache>());
}

namespace {

bool is_file(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error(dir.string(), "not a directory");
  if (is_file(dir / "vocab.json") || is_file(dir / "merges.txt")) {
    return from_files(dir / "vocab.json", dir / "merges.txt");  // a missing half is named by from_files
  }
  if (is_file(dir / "encoder.json") && is_file(dir / "vocab.bpe")) {
    return from_files(dir / "encoder.json", dir / "vocab.bpe");
  }
  throw Error(dir.string(), "no tokenizer here: expected vocab.json + merges.txt (or encoder.json + vocab.bpe)");
}

bool Tokenizer::dir_has_tokenizer(const std::filesystem::path& dir) {
  return (is_file(dir / "vocab.json") && is_file(dir / "merges.txt")) ||
         (is_file(dir / "encoder.json") && is_file(dir / "vocab.bpe"));
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  check_utf8(text);
  std::vector<int64_t> ids;
  if (text.empty()) return ids;
  ids.reserve(text.size() / 3 + 8);

  const Tables& t = *tables_;
  BpeScratch scratch;
  pre_tokenizer().for_each_piece(text, [&](std::string_view piece) {
    if (piece.size() == 1) {
      ids.push_back(t.byte_id[static_cast<unsigned char>(piece[0])]);
      return;
    }
    const bool cacheable = piece.size() <= kMaxCachedPiece;
    const uint64_t hash = cacheable ? WordCache::hash_of(piece) : 0;
    if (cacheable && cache_->lookup(piece, hash, ids)) return;
    scratch.result.clear();
    t.bpe(piece, scratch);
    ids.insert(ids.end(), scratch.result.begin(), scratch.result.end());
    if (cacheable) cache_->insert(piece, hash, scratch.result);
  });
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  const Tables& t = *tables_;
  const int64_t n = vocab_size();
  size_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n) {
      throw Error("token ids", "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                   " is outside the vocabulary [0, " + std::to_string(n) + ")");
    }
    total += t.token_offset[ids[i] + 1] - t.token_offset[ids[i]];
  }
  std::string out;
  out.reserve(total);
  for (const int64_t id : ids) out += t.bytes_of(static_cast<int32_t>(id));
  return out;
}

std::string Tokenizer::token_bytes(int64_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw Error("token id", std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
  }
  return std::string(tables_->bytes_of(static_cast<int32_t>(id)));
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(tables_->token_offset.size()) - 1; }

std::optional<int64_t> Tokenizer::token_id(std::string_view token_string) const {
  const auto it = tables_->id_of_string.find(std::string(token_string));
  if (it == tables_->id_of_string.end()) return std::nullopt;
  return it->second;
}

std::optional<int64_t> Tokenizer::eos_id() const { return token_id(kEndOfText); }

std::vector<std::string_view> pretokenize(std::string_view text) {
  check_utf8(text);
  std::vector<std::string_view> pieces;
  pre_tokenizer().for_each_piece(text, [&](std::string_view piece) { pieces.push_back(piece); });
  return pieces;
}

void append_utf8(std::string& out, uint32_t cp) {
  assert(cp < 0x110000);
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string byte_level_string(std::string_view bytes) {
  const ByteAlphabet& alphabet = byte_alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char b : bytes) append_utf8(out, alphabet.code_point[static_cast<unsigned char>(b)]);
  return out;
}

bool is_valid_utf8(std::string_view text) { return find_invalid_utf8(text).offset == std::string_view::npos; }

}  // namespace superpose
