// Corpus recipes and building: sources -> documents -> filters -> splits.
#include "model/corpus.h"

#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <map>
#include <numeric>
#include <set>
#include <unordered_set>

#include "model/errors.h"
#include "model/file_util.h"
#include "model/tokenizer.h"

namespace superpose {
namespace {

// ---- the recipe ----

const std::map<std::string, SourceKind>& kinds() {
  static const std::map<std::string, SourceKind> table = {
      {"brown", SourceKind::kBrown}, {"html", SourceKind::kHtml}, {"man", SourceKind::kMan}, {"text", SourceKind::kText}};
  return table;
}

// Reads one source object, naming it in every error.
class SourceReader {
 public:
  SourceReader(const nlohmann::json& object, std::string where) : object_(object), where_(std::move(where)) {}

  void check_keys(const std::set<std::string>& allowed) const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (allowed.count(it.key()) == 0) fail("unknown key \"" + it.key() + "\"");
    }
  }
  std::string string(const char* key, bool required) const {
    const auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) fail(std::string("missing \"") + key + "\"");
      return {};
    }
    if (!it->is_string() || it->get<std::string>().empty()) fail(std::string("\"") + key + "\" must be a non-empty string");
    return it->get<std::string>();
  }
  std::vector<std::string> strings(const char* key, bool required) const {
    const auto it = object_.find(key);
    if (it == object_.end()) {
      if (required) fail(std::string("missing \"") + key + "\"");
      return {};
    }
    const bool ok = it->is_array() && std::all_of(it->begin(), it->end(), [](const nlohmann::json& v) {
                      return v.is_string() && !v.get<std::string>().empty();
                    });
    if (!ok) fail(std::string("\"") + key + "\" must be a list of non-empty strings");
    return it->get<std::vector<std::string>>();
  }
  const nlohmann::json* find(const char* key) const {
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(where_ + ": " + what); }

 private:
  const nlohmann::json& object_;
  std::string where_;
};

CorpusSource read_source(const nlohmann::json& object, const std::string& where_base) {
  if (!object.is_object()) throw Error(where_base + ": expected a JSON object");
  std::string where = where_base;
  if (const auto name = object.find("name"); name != object.end() && name->is_string()) {
    where += " (\"" + name->get<std::string>() + "\")";
  }
  const SourceReader in(object, where);
  in.check_keys({"name", "domain", "label", "kind", "package", "licence", "paths", "exclude", "package_files_only",
                 "language", "section_bytes", "drop_sections", "skip_classes"});
  CorpusSource source;
  source.name = in.string("name", true);
  if (source.name.find('/') != std::string::npos) in.fail("\"name\" must not contain '/'");
  source.domain = in.string("domain", true);
  const nlohmann::json* label = in.find("label");
  if (label == nullptr) in.fail("missing \"label\" (0 = base domain, 1 = fine domain)");
  if (!label->is_number_integer() || (label->get<int64_t>() != 0 && label->get<int64_t>() != 1)) {
    in.fail("\"label\" must be 0 (base domain) or 1 (fine domain), got " + label->dump());
  }
  source.label = label->get<int64_t>();
  const std::string kind = in.string("kind", true);
  const auto known = kinds().find(kind);
  if (known == kinds().end()) in.fail("unknown kind \"" + kind + "\" (expected brown, html, man or text)");
  source.kind = known->second;
  source.package = in.string("package", true);
  source.licence = in.string("licence", true);
  source.paths = in.strings("paths", true);
  if (source.paths.empty()) in.fail("\"paths\" is empty");
  source.exclude = in.strings("exclude", false);
  if (const nlohmann::json* only = in.find("package_files_only")) {
    if (!only->is_boolean()) in.fail("\"package_files_only\" must be true or false");
    source.package_files_only = only->get<bool>();
  }
  const std::string language = in.string("language", false);
  if (language.empty()) {
    source.language = source.domain == "en" || source.domain == "fr" ? source.domain : "";
  } else if (language == "en" || language == "fr") {
    source.language = language;
  } else if (language != "any") {
    in.fail("\"language\" must be en, fr or any, got \"" + language + "\"");
  }
  if (const nlohmann::json* bytes = in.find("section_bytes")) {
    if (!bytes->is_number_integer() || bytes->get<int64_t>() < 0) in.fail("\"section_bytes\" must be an integer >= 0");
    source.section_bytes = static_cast<size_t>(bytes->get<int64_t>());
  }
  source.drop_sections = in.strings("drop_sections", false);
  if (!source.drop_sections.empty() && source.kind != SourceKind::kMan) in.fail("\"drop_sections\" is for kind man only");
  source.skip_classes = in.strings("skip_classes", false);
  if (!source.skip_classes.empty() && source.kind != SourceKind::kHtml) in.fail("\"skip_classes\" is for kind html only");
  return source;
}

// ---- files ----

// `path` with every symbolic link resolved (itself when that fails).
std::string real_path(const std::string& path) {
  std::unique_ptr<char, void (*)(void*)> resolved(::realpath(path.c_str(), nullptr), std::free);
  return resolved ? std::string(resolved.get()) : path;
}

// The paths that dpkg installed for `package`, from its file list in the
// dpkg database. Throws Error when the package is not installed.
std::unordered_set<std::string> dpkg_files(const std::string& package, const std::string& where) {
  const std::string info = "/var/lib/dpkg/info/";
  std::string list = info + package + ".list";
  if (::access(list.c_str(), R_OK) != 0) {  // Multi-Arch: same packages have PACKAGE:ARCH.list
    glob_t matches{};
    if (::glob((info + package + ":*.list").c_str(), 0, nullptr, &matches) == 0 && matches.gl_pathc > 0) {
      list = matches.gl_pathv[0];
    }
    ::globfree(&matches);
  }
  if (::access(list.c_str(), R_OK) != 0) {
    throw Error(where + ": package \"" + package + "\" is not installed (no " + info + package + ".list)");
  }
  std::unordered_set<std::string> files;
  const std::string text = read_file(list);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) files.insert(text.substr(start, end - start));
    start = end + 1;
  }
  return files;
}

// The files that a source's patterns match, minus the excluded ones (and,
// with package_files_only, those its package did not install), in byte
// order. Throws Error for a pattern that matches nothing.
std::vector<std::string> source_files(const CorpusRecipe& recipe, const CorpusSource& source, const std::string& where) {
  const std::filesystem::path base = recipe.file.parent_path();
  const std::unordered_set<std::string> owned =
      source.package_files_only ? dpkg_files(source.package, where) : std::unordered_set<std::string>();
  std::vector<std::string> files;
  for (const std::string& pattern : source.paths) {
    const std::string full = std::filesystem::path(pattern).is_absolute() ? pattern : (base / pattern).string();
    glob_t matches{};
    const int rc = ::glob(full.c_str(), GLOB_NOSORT, nullptr, &matches);
    std::vector<std::string> found;
    if (rc == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) found.emplace_back(matches.gl_pathv[i]);
    }
    ::globfree(&matches);
    if (rc != 0 && rc != GLOB_NOMATCH) throw Error(where + ": cannot read the directories of \"" + full + "\"");
    size_t kept = 0;
    for (std::string& file : found) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(file, ec)) continue;
      const bool excluded = std::any_of(source.exclude.begin(), source.exclude.end(), [&](const std::string& x) {
        return ::fnmatch(x.c_str(), file.c_str(), 0) == 0;
      });
      if (excluded) continue;
      if (source.package_files_only && owned.count(file) == 0) continue;
      files.push_back(std::move(file));
      ++kept;
    }
    if (kept == 0) {
      throw Error(where + ": \"" + full + "\" matches no file" +
                  (source.package_files_only ? " of " + source.package : " (is " + source.package + " installed?)"));
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  // A symbolic link to another matched file (a man page under another of its
  // names) adds nothing: the file is read under its own name.
  std::unordered_set<std::string> real_paths;
  for (const std::string& file : files) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) real_paths.insert(real_path(file));
  }
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const std::string& file) {
                               struct stat st {};
                               return ::lstat(file.c_str(), &st) == 0 && S_ISLNK(st.st_mode) &&
                                      real_paths.count(real_path(file)) != 0;
                             }),
              files.end());
  return files;
}

// The part of each path after the directory all of them share, without
// ".gz": "man1/ls.1", "ch03.fr.html".
std::vector<std::string> relative_names(const std::vector<std::string>& files) {
  std::string_view prefix = files.empty() ? std::string_view() : std::string_view(files.front());
  for (const std::string& file : files) {
    size_t n = 0;
    while (n < prefix.size() && n < file.size() && prefix[n] == file[n]) ++n;
    prefix = prefix.substr(0, n);
  }
  const size_t slash = prefix.rfind('/');
  const size_t common = slash == std::string_view::npos ? 0 : slash + 1;
  std::vector<std::string> names;
  names.reserve(files.size());
  for (const std::string& file : files) {
    std::string name = file.substr(common);
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0) name.resize(name.size() - 3);
    names.push_back(std::move(name));
  }
  return names;
}

// ---- language ----

const std::unordered_set<std::string>& english_stopwords() {
  static const std::unordered_set<std::string> words = {
      "the",   "of",    "and",   "to",    "in",   "is",   "that",  "for",   "it",   "with",  "was",  "be",
      "by",    "this",  "are",   "not",   "from", "at",   "which", "have",  "but",  "you",   "can",  "if",
      "will",  "they",  "their", "has",   "its",  "been", "would", "should", "these", "there", "when", "what",
      "who",   "into",  "than",  "then",  "also", "only", "such",  "we",    "he",   "she",   "his",  "her",
      "them",  "were",  "had",   "any",   "each", "other", "more", "most",  "may",  "must",  "does", "do",
      "how",   "all",   "one",   "some",  "about", "so",  "used", "using", "use",  "where", "while", "it's"};
  return words;
}

const std::unordered_set<std::string>& french_stopwords() {
  static const std::unordered_set<std::string> words = {
      "le",     "la",     "les",   "de",    "des",   "du",    "un",    "une",   "et",    "est",     "sont",  "dans",
      "pour",   "par",    "sur",   "pas",   "ne",    "au",    "aux",   "ce",    "cette", "ces",     "il",    "elle",
      "ils",    "elles",  "avec",  "qui",   "que",   "qu",    "où",    "être",  "été",   "avoir",   "fait",  "son",
      "sa",     "ses",    "se",    "si",    "peut",  "peuvent", "nous", "vous", "leur",  "leurs",   "comme", "mais",
      "tout",   "tous",   "toutes", "aussi", "sans", "lors",  "donc",  "car",   "entre", "même",    "très",  "avant",
      "après",  "cela",   "ceci",  "lorsque", "alors", "dont", "ou",   "en",    "à"};
  return words;
}

// ASCII letters and the letters of Latin-1, Latin Extended-A and -B.
bool is_letter(uint32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7);
}

uint32_t decode(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const int length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = length == 1 ? c : length == 2 ? c & 0x1F : length == 3 ? c & 0x0F : c & 0x07;
  for (int k = 1; k < length && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += length;
  return cp;
}

// ---- hashing ----

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

uint64_t document_hash(std::string_view key, uint64_t seed) { return splitmix64(fnv1a64(key) ^ splitmix64(seed)); }

// The cap's order must not be the split's order, or capping would empty one split first.
constexpr uint64_t kCapSalt = 0x5DEECE66DULL;

bool language_ok(const StopwordCounts& counts, const std::string& language, double min_share) {
  const int64_t own = language == "en" ? counts.english : counts.french;
  const int64_t other = language == "en" ? counts.french : counts.english;
  return counts.words > 0 && own > other && static_cast<double>(own) >= min_share * static_cast<double>(counts.words);
}

// A paragraph clearly in the other language: long enough to tell, at least
// two of the other language's stop words and more of them than of its own.
// (Untranslated paragraphs are often short lines: "It can filter mails by
// their attributes.")
bool other_language(const std::string& paragraph, const std::string& language) {
  const StopwordCounts counts = count_stopwords(paragraph);
  if (counts.words < 5) return false;
  const int64_t own = language == "en" ? counts.english : counts.french;
  const int64_t other = language == "en" ? counts.french : counts.english;
  return other >= 2 && other > own;
}

struct Split {
  int64_t documents = 0;
  int64_t bytes = 0;
  void add(const std::string& text) {
    ++documents;
    bytes += static_cast<int64_t>(text.size());
  }
  nlohmann::ordered_json json() const { return {{"documents", documents}, {"bytes", bytes}}; }
};

struct SourceStats {
  int64_t files = 0;
  int64_t documents = 0;
  int64_t short_documents = 0;
  int64_t language_documents = 0;
  int64_t duplicates = 0;
  int64_t capped = 0;
  int64_t language_paragraphs = 0;
  Split train, validation;
};

struct Candidate {
  Document document;
  size_t source;
  bool capped = false;
};

}  // namespace

CorpusRecipe CorpusRecipe::load(const std::filesystem::path& file) {
  const std::string where = file.string();
  const std::string text = read_file(file);
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) throw Error(where, "expected a JSON object {\"sources\": [...]}");
  CorpusRecipe recipe;
  recipe.file = file;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& key = it.key();
    if (key == "sources" || key == "description") continue;
    if (key == "min_document_bytes") {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) throw Error(where, "\"min_document_bytes\" must be an integer >= 1");
      recipe.min_document_bytes = static_cast<size_t>(it->get<int64_t>());
    } else if (key == "min_stopword_share") {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() >= 1) {
        throw Error(where, "\"min_stopword_share\" must be a number in [0, 1)");
      }
      recipe.min_stopword_share = it->get<double>();
    } else {
      throw Error(where, "unknown key \"" + key + "\"");
    }
  }
  const auto sources = root.find("sources");
  if (sources == root.end() || !sources->is_array() || sources->empty()) {
    throw Error(where, "\"sources\" must be a non-empty list of sources");
  }
  std::map<std::string, int64_t> label_of_domain;
  std::set<std::string> names;
  for (size_t i = 0; i < sources->size(); ++i) {
    CorpusSource source = read_source((*sources)[i], where + ": sources[" + std::to_string(i) + "]");
    const std::string named = where + ": sources[" + std::to_string(i) + "] (\"" + source.name + "\")";
    if (!names.insert(source.name).second) throw Error(named + ": another source has this name");
    const auto [known, added] = label_of_domain.emplace(source.domain, source.label);
    if (!added && known->second != source.label) {
      throw Error(named + ": domain \"" + source.domain + "\" has label " + std::to_string(known->second) +
                  " in an earlier source, not " + std::to_string(source.label));
    }
    recipe.sources.push_back(std::move(source));
  }
  return recipe;
}

StopwordCounts count_stopwords(std::string_view text) {
  StopwordCounts counts;
  const auto& english = english_stopwords();
  const auto& french = french_stopwords();
  std::string word;
  auto finish_word = [&] {
    if (word.empty()) return;
    ++counts.words;
    counts.english += english.count(word);
    counts.french += french.count(word);
    word.clear();
  };
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const uint32_t cp = decode(text, i);
    if (!is_letter(cp)) {
      finish_word();
      continue;
    }
    if (cp < 0x80) {
      word += static_cast<char>(std::tolower(static_cast<int>(cp)));
    } else {
      word.append(text.substr(start, i - start));
    }
  }
  finish_word();
  return counts;
}

bool in_validation(std::string_view key, uint64_t seed, double share) {
  const double u = static_cast<double>(document_hash(key, seed) >> 11) * 0x1.0p-53;
  return u < share;
}

std::vector<std::string> split_sections(const Paragraphs& paragraphs, size_t section_bytes) {
  std::vector<std::string> sections;
  std::string current;
  for (const std::string& paragraph : paragraphs) {
    if (!current.empty()) current += "\n\n";
    current += paragraph;
    if (section_bytes > 0 && current.size() >= section_bytes) sections.push_back(std::move(current)), current.clear();
  }
  if (!current.empty()) {
    if (!sections.empty() && current.size() < section_bytes / 4) {
      sections.back() += "\n\n" + current;
    } else {
      sections.push_back(std::move(current));
    }
  }
  return sections;
}

Paragraphs extract_paragraphs(const CorpusSource& source, const std::filesystem::path& file) {
  std::string bytes = read_maybe_gzipped(file);
  switch (source.kind) {
    case SourceKind::kBrown: return brown_paragraphs(utf8_or_latin1(std::move(bytes)));
    case SourceKind::kHtml: return html_paragraphs(bytes, source.skip_classes);
    case SourceKind::kMan: return man_paragraphs(utf8_or_latin1(std::move(bytes)), source.drop_sections);
    case SourceKind::kText: return text_paragraphs(utf8_or_latin1(std::move(bytes)));
  }
  return {};
}

Corpus build_corpus(const CorpusRecipe& recipe, const CorpusOptions& options, const CorpusProgress& progress) {
  if (!(options.validation_share >= 0 && options.validation_share < 1)) {
    throw Error("validation share", "must be in [0, 1), got " + std::to_string(options.validation_share));
  }
  if (options.max_mb && !(*options.max_mb > 0)) throw Error("max MB", "must be above 0");

  // Every pattern is checked before any file is read.
  std::vector<std::vector<std::string>> files;
  int64_t total_files = 0;
  for (size_t s = 0; s < recipe.sources.size(); ++s) {
    const std::string where = recipe.file.string() + ": source \"" + recipe.sources[s].name + "\"";
    files.push_back(source_files(recipe, recipe.sources[s], where));
    total_files += static_cast<int64_t>(files.back().size());
  }

  std::vector<SourceStats> stats(recipe.sources.size());
  std::vector<Candidate> kept;
  std::unordered_set<std::string> seen;
  int64_t done = 0;
  for (size_t s = 0; s < recipe.sources.size(); ++s) {
    const CorpusSource& source = recipe.sources[s];
    const std::vector<std::string> names = relative_names(files[s]);
    stats[s].files = static_cast<int64_t>(files[s].size());
    for (size_t f = 0; f < files[s].size(); ++f) {
      Paragraphs paragraphs = extract_paragraphs(source, files[s][f]);
      if (!source.language.empty()) {
        const auto end = std::remove_if(paragraphs.begin(), paragraphs.end(),
                                        [&](const std::string& p) { return other_language(p, source.language); });
        stats[s].language_paragraphs += paragraphs.end() - end;
        paragraphs.erase(end, paragraphs.end());
      }
      std::vector<std::string> sections = split_sections(paragraphs, source.section_bytes);
      for (size_t k = 0; k < sections.size(); ++k) {
        ++stats[s].documents;
        std::string& text = sections[k];
        if (text.size() < recipe.min_document_bytes) {
          ++stats[s].short_documents;
          continue;
        }
        if (!source.language.empty() && !language_ok(count_stopwords(text), source.language, recipe.min_stopword_share)) {
          ++stats[s].language_documents;
          continue;
        }
        if (!seen.insert(collapse_whitespace(text)).second) {
          ++stats[s].duplicates;
          continue;
        }
        std::string key = source.name + "/" + names[f];
        if (sections.size() > 1) key += "#" + std::to_string(k + 1);
        kept.push_back({Document{std::move(text), source.label, source.domain, std::move(key)}, s});
      }
      if (progress && !progress(++done, total_files)) throw Error("corpus", "cancelled");
    }
  }

  std::map<std::string, Split> capped_domains;
  if (options.max_mb) {
    const auto cap = static_cast<int64_t>(*options.max_mb * 1e6);
    std::map<std::string, std::vector<size_t>> by_domain;
    for (size_t i = 0; i < kept.size(); ++i) by_domain[kept[i].document.domain].push_back(i);
    for (auto& [domain, indices] : by_domain) {
      std::vector<uint64_t> order_key(indices.size());
      for (size_t j = 0; j < indices.size(); ++j) {
        order_key[j] = document_hash(kept[indices[j]].document.source, options.seed ^ kCapSalt);
      }
      std::vector<size_t> order(indices.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return order_key[a] < order_key[b]; });
      int64_t bytes = 0;
      bool full = false;
      for (const size_t j : order) {
        Candidate& candidate = kept[indices[j]];
        full = full || bytes + static_cast<int64_t>(candidate.document.text.size()) > cap;
        if (full) {
          candidate.capped = true;
          ++stats[candidate.source].capped;
        } else {
          bytes += static_cast<int64_t>(candidate.document.text.size());
        }
      }
    }
  }

  Corpus corpus;
  std::map<std::string, std::pair<Split, Split>> domains;
  for (Candidate& candidate : kept) {
    if (candidate.capped) continue;
    const bool validation = in_validation(candidate.document.source, options.seed, options.validation_share);
    SourceStats& source_stats = stats[candidate.source];
    auto& [domain_train, domain_validation] = domains[candidate.document.domain];
    (validation ? source_stats.validation : source_stats.train).add(candidate.document.text);
    (validation ? domain_validation : domain_train).add(candidate.document.text);
    (validation ? corpus.validation : corpus.train).push_back(std::move(candidate.document));
  }

  nlohmann::ordered_json sources = nlohmann::ordered_json::object();
  for (size_t s = 0; s < recipe.sources.size(); ++s) {
    const CorpusSource& source = recipe.sources[s];
    const SourceStats& st = stats[s];
    sources[source.name] = {
        {"domain", source.domain},
        {"label", source.label},
        {"package", source.package},
        {"licence", source.licence},
        {"files", st.files},
        {"documents", st.documents},
        {"dropped", {{"short", st.short_documents},
                     {"language", st.language_documents},
                     {"duplicate", st.duplicates},
                     {"capped", st.capped}}},
        {"paragraphs_dropped_for_language", st.language_paragraphs},
        {"train", st.train.json()},
        {"validation", st.validation.json()}};
  }
  nlohmann::ordered_json domain_stats = nlohmann::ordered_json::object();
  Split total_train, total_validation;
  for (const CorpusSource& source : recipe.sources) {
    if (domain_stats.contains(source.domain)) continue;
    const auto& [train, validation] = domains[source.domain];
    domain_stats[source.domain] = {{"label", source.label}, {"train", train.json()}, {"validation", validation.json()}};
    total_train.documents += train.documents;
    total_train.bytes += train.bytes;
    total_validation.documents += validation.documents;
    total_validation.bytes += validation.bytes;
  }
  nlohmann::ordered_json out = {{"recipe", recipe.file.string()},
                     {"seed", options.seed},
                     {"validation_share", options.validation_share},
                     {"max_mb", options.max_mb ? nlohmann::ordered_json(*options.max_mb) : nlohmann::ordered_json(nullptr)},
                     {"min_document_bytes", recipe.min_document_bytes},
                     {"min_stopword_share", recipe.min_stopword_share},
                     {"domains", domain_stats},
                     {"total", {{"train", total_train.json()}, {"validation", total_validation.json()}}},
                     {"sources", sources}};
  corpus.stats = std::move(out);
  return corpus;
}

void write_corpus(const Corpus& corpus, const std::filesystem::path& dir) {
  AtomicDirectory out(dir);
  write_jsonl(out / "train.jsonl", corpus.train);
  write_jsonl(out / "validation.jsonl", corpus.validation);
  write_file_atomic(out / "stats.json", corpus.stats.dump(2) + "\n");
  out.commit();
}

}  // namespace superpose
