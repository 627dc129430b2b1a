// Labeled corpora from text that packages ship: a recipe names the sources,
// build_corpus() extracts, filters, deduplicates and splits their documents.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/dataset.h"
#include "model/text_extract.h"

namespace superpose {

// How a source's files are read (text_extract.h).
enum class SourceKind { kBrown, kHtml, kMan, kText };

// One source of a recipe. A recipe is a JSON file:
//   {"description": "...",               optional, for readers only
//    "min_document_bytes": 200,          optional (default 200)
//    "min_stopword_share": 0.1,          optional (default 0.1)
//    "sources": [{
//      "name": "manpages-fr",            unique; documents are "name/FILE[#SECTION]", FILE
//                                        the path below the directory that all the
//                                        source's files share, without ".gz"
//      "domain": "fr", "label": 1,       label 0 (base) or 1 (fine), one label per domain
//      "kind": "man",                    brown | html | man | text
//      "package": "manpages-fr",         where the files come from (Debian or npm package)
//      "licence": "GPL-3+",              the files' licence, as their copyright file says
//      "paths": ["/usr/share/man/fr/man*/*.gz"],   glob(3) patterns; relative ones
//                                        are relative to the recipe's directory; a
//                                        symbolic link to another matched file is skipped
//      "exclude": ["*/index.html"],      optional fnmatch(3) patterns on the matched paths
//      "package_files_only": true,       optional: keep only the matched files that dpkg
//                                        lists for "package" (/var/lib/dpkg/info/PACKAGE.list
//                                        or PACKAGE:ARCH.list), so that other packages' files
//                                        in the same directories stay out (default false)
//      "language": "fr",                 optional: en | fr | any (default: the domain
//                                        when it is en or fr, else any)
//      "section_bytes": 4000,            optional: split documents into sections of
//                                        about this many bytes at paragraph ends (0 = whole)
//      "drop_sections": ["SYNOPSIS"],    optional, man only: sections left out
//      "skip_classes": ["sidebar"]}]}    optional, html only: more classes left out
// Unknown keys are errors (a misspelt option would otherwise be ignored).
struct CorpusSource {
  std::string name;
  std::string domain;
  int64_t label = 0;
  SourceKind kind = SourceKind::kText;
  std::string package;
  std::string licence;
  std::vector<std::string> paths;
  std::vector<std::string> exclude;
  bool package_files_only = false;
  std::string language;  // "en", "fr" or "" (no language check)
  size_t section_bytes = 0;
  std::vector<std::string> drop_sections;
  std::vector<std::string> skip_classes;
};

struct CorpusRecipe {
  std::filesystem::path file;  // where it was read from; relative paths start at its directory
  size_t min_document_bytes = 200;
  double min_stopword_share = 0.1;
  std::vector<CorpusSource> sources;

  // Throws Error naming the file (and the source: "recipe.json: sources[2] (\"brown\"): ...")
  // for a missing or unreadable file, bad JSON, a missing or mistyped field,
  // an unknown key or kind, a label other than 0/1, two labels for one
  // domain, two sources with one name, or an empty "paths".
  static CorpusRecipe load(const std::filesystem::path& file);
};

struct CorpusOptions {
  double validation_share = 0.1;   // in [0, 1)
  uint64_t seed = 0;
  std::optional<double> max_mb;    // per domain, in 10^6 bytes of text; > 0
};

// Language check (applied when a source has a language). Words are runs of
// ASCII letters and Latin-1/Latin Extended-A/B letters, lower-cased in
// ASCII; each language has a short list of frequent function words that the
// other language does not use ("the", "of", "and", ... / "le", "les", "des",
// "est", "dans", ...). A paragraph of at least 5 words with at least 2 stop
// words of the other language, and more of them than of its own, is dropped
// (an untranslated paragraph in a translated page); a document is kept when at least
// min_stopword_share of its words are its language's stop words and they
// outnumber the other language's.
struct StopwordCounts {
  int64_t words = 0;
  int64_t english = 0;
  int64_t french = 0;
};
StopwordCounts count_stopwords(std::string_view text);

// Whether a document goes to validation: splitmix64(fnv1a64(key) ^
// splitmix64(seed)) / 2^64 < share. The key is the document's "source" name,
// so the split does not depend on the order of documents or on their text.
bool in_validation(std::string_view key, uint64_t seed, double share);

// Documents of one file, before filtering: its paragraphs cut into sections
// of about `section_bytes` (a section ends at the first paragraph end past
// it; a last section shorter than a quarter of it joins the one before), or
// one document when section_bytes is 0. Paragraphs are joined by "\n\n".
std::vector<std::string> split_sections(const Paragraphs& paragraphs, size_t section_bytes);

// The paragraphs of one file of a source, by its kind (text_extract.h).
// Throws Error naming the file when it cannot be read.
Paragraphs extract_paragraphs(const CorpusSource& source, const std::filesystem::path& file);

struct Corpus {
  std::vector<Document> train;
  std::vector<Document> validation;
  // Per source and per domain: files, documents and bytes kept in each split,
  // documents dropped and why (short, language, duplicate, capped),
  // paragraphs dropped for language; and the options used.
  nlohmann::ordered_json stats;  // in the order written to stats.json
};

// Builds the corpus: every source in recipe order, its files in byte order
// of their paths; per file, paragraphs -> language filter -> sections ->
// documents. A document is dropped when shorter than min_document_bytes,
// failing its language check, or equal to an earlier one after whitespace
// normalisation (collapse_whitespace). With max_mb, each domain keeps the
// documents that come first in a seeded hash order until the next one would
// pass the cap. Then each document goes to train or validation
// (in_validation). Documents keep recipe order within each split.
// `progress(files done, files)` may return false to cancel
// (Error("corpus", "cancelled")). Throws Error naming the source for a path
// pattern that matches no file, and naming the file for one it cannot read.
using CorpusProgress = std::function<bool(int64_t done, int64_t total)>;
Corpus build_corpus(const CorpusRecipe& recipe, const CorpusOptions& options, const CorpusProgress& progress = nullptr);

// Writes DIR/train.jsonl, DIR/validation.jsonl and DIR/stats.json, all or
// nothing (AtomicDirectory: `dir` must not exist or be empty).
void write_corpus(const Corpus& corpus, const std::filesystem::path& dir);

}  // namespace superpose
