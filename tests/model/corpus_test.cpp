// Corpus recipes and building: every recipe error names the file and what is
// wrong, the split is a deterministic hash, duplicates and other languages
// go, and the fixture recipe builds and writes the corpus worked out by hand.
#include "model/corpus.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "model/errors.h"
#include "model/file_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(SUPERPOSE_FIXTURES) / "corpus";

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A recipe with one text source of package `package`, `fields` spliced into it.
std::string one_source(const std::string& fields, const std::string& package = "p") {
  return R"({"min_document_bytes": 20, "sources": [{"name": "s", "domain": "en", "label": 0, "kind": "text",
                          "licence": "l", "paths": ["*.txt"], "package": ")" +
         package + "\"" + fields + "}]}";
}

TEST(CorpusRecipe, LoadsTheFixtureRecipe) {
  const CorpusRecipe recipe = CorpusRecipe::load(kCorpus / "recipe.json");
  EXPECT_EQ(recipe.min_document_bytes, 60u);
  EXPECT_DOUBLE_EQ(recipe.min_stopword_share, 0.1);
  ASSERT_EQ(recipe.sources.size(), 4u);
  EXPECT_EQ(recipe.sources[0].kind, SourceKind::kBrown);
  EXPECT_EQ(recipe.sources[0].language, "en");  // from the domain
  EXPECT_EQ(recipe.sources[2].drop_sections, (std::vector<std::string>{"SYNOPSIS", "SEE ALSO"}));
  EXPECT_EQ(recipe.sources[3].label, 1);
  EXPECT_FALSE(recipe.sources[3].package_files_only);
}

TEST(CorpusRecipe, EachErrorNamesTheFileAndWhatIsWrong) {
  testing::TempDir tmp;
  const fs::path file = tmp / "recipe.json";
  SUPERPOSE_EXPECT_THROW_WITH(CorpusRecipe::load(file), Error, "recipe.json");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{oops", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {"{}", "\"sources\" must be a non-empty list"},
      {R"({"sources": []})", "\"sources\" must be a non-empty list"},
      {R"({"sources": [3]})", "sources[0]: expected a JSON object"},
      {R"({"min_document_bytes": 0, "sources": [{}]})", "\"min_document_bytes\" must be an integer >= 1"},
      {R"({"min_stopword_share": 1, "sources": [{}]})", "\"min_stopword_share\" must be a number in [0, 1)"},
      {R"({"colour": 1, "sources": [{}]})", "unknown key \"colour\""},
      {R"({"sources": [{"domain": "en"}]})", "sources[0]: missing \"name\""},
      {one_source(R"(, "lable": 1)"), "sources[0] (\"s\"): unknown key \"lable\""},
      {one_source(R"(, "exclude": "x")"), "\"exclude\" must be a list of non-empty strings"},
      {one_source(R"(, "language": "de")"), "\"language\" must be en, fr or any"},
      {one_source(R"(, "section_bytes": -1)"), "\"section_bytes\" must be an integer >= 0"},
      {one_source(R"(, "package_files_only": 1)"), "\"package_files_only\" must be true or false"},
      {one_source(R"(, "drop_sections": ["SYNOPSIS"])"), "\"drop_sections\" is for kind man only"},
      {one_source(R"(, "skip_classes": ["nav"])"), "\"skip_classes\" is for kind html only"},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 2, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["a"]}]})",
       "\"label\" must be 0 (base domain) or 1 (fine domain), got 2"},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 0, "kind": "pdf", "package": "p", "licence": "l",
                        "paths": ["a"]}]})",
       "unknown kind \"pdf\""},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 0, "kind": "text", "package": "p", "licence": "l",
                        "paths": []}]})",
       "\"paths\" is empty"},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 0, "kind": "text", "package": "p", "paths": ["a"]}]})",
       "missing \"licence\""},
      {R"({"sources": [{"name": "a/b", "domain": "en", "label": 0, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["a"]}]})",
       "\"name\" must not contain '/'"},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 0, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["a"]},
                       {"name": "s", "domain": "en", "label": 0, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["b"]}]})",
       "sources[1] (\"s\"): another source has this name"},
      {R"({"sources": [{"name": "s", "domain": "en", "label": 0, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["a"]},
                       {"name": "t", "domain": "en", "label": 1, "kind": "text", "package": "p", "licence": "l",
                        "paths": ["b"]}]})",
       "domain \"en\" has label 0 in an earlier source, not 1"},
  };
  for (const auto& [json, fragment] : cases) {
    write_text(file, json);
    try {
      CorpusRecipe::load(file);
      ADD_FAILURE() << json << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << message << "' lacks '" << fragment << "'";
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

TEST(Corpus, PatternsThatMatchNothingAreErrorsBeforeAnyFileIsRead) {
  testing::TempDir tmp;
  write_text(tmp / "a.txt", "Some text.");
  write_text(tmp / "recipe.json", one_source(R"(, "exclude": ["*/a.txt"])"));
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(CorpusRecipe::load(tmp / "recipe.json"), {}), Error, "recipe.json",
                              "source \"s\"", "*.txt\" matches no file");
  write_text(tmp / "recipe.json", one_source(R"(, "package_files_only": true)", "superpose-no-such-package"));
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(CorpusRecipe::load(tmp / "recipe.json"), {}), Error,
                              "package \"superpose-no-such-package\" is not installed");
}

TEST(Corpus, PackageFilesOnlyKeepsWhatDpkgInstalled) {
  if (::access("/var/lib/dpkg/info/base-files.list", R_OK) != 0 || ::access("/var/lib/dpkg/info/bash.list", R_OK) != 0) {
    GTEST_SKIP() << "no dpkg database with base-files and bash here";
  }
  testing::TempDir tmp;
  const std::string source = R"({"sources": [{"name": "gpl", "domain": "en", "label": 0, "kind": "text",
      "licence": "l", "paths": ["/usr/share/common-licenses/GPL-2"], "package_files_only": true, "package": )";
  write_text(tmp / "recipe.json", source + "\"base-files\"}]}");
  const Corpus corpus = build_corpus(CorpusRecipe::load(tmp / "recipe.json"), {});
  EXPECT_EQ(corpus.stats["sources"]["gpl"]["files"], 1);
  write_text(tmp / "recipe.json", source + "\"bash\"}]}");
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(CorpusRecipe::load(tmp / "recipe.json"), {}), Error,
                              "matches no file of bash");
}

TEST(Corpus, LinksToAnotherMatchedFileAreReadOnce) {
  testing::TempDir tmp;
  write_text(tmp / "a.txt", "The first file holds the only text of this source, which is long enough to keep.");
  ASSERT_EQ(::symlink("a.txt", (tmp / "b.txt").c_str()), 0);
  write_text(tmp / "recipe.json", one_source(R"(, "language": "any")"));
  CorpusOptions options;
  options.validation_share = 0.0;
  const Corpus corpus = build_corpus(CorpusRecipe::load(tmp / "recipe.json"), options);
  EXPECT_EQ(corpus.stats["sources"]["s"]["files"], 1);
  ASSERT_EQ(corpus.train.size(), 1u);
  EXPECT_EQ(corpus.train[0].source, "s/a.txt");
}

TEST(Corpus, ValidationSplitIsADeterministicHashNearTheShare) {
  int64_t in = 0;
  std::set<int> first, again, other_seed;
  for (int i = 0; i < 10000; ++i) {
    const std::string key = "source/file" + std::to_string(i);
    if (in_validation(key, 0, 0.1)) first.insert(i);
    if (in_validation(key, 0, 0.1)) again.insert(i);
    if (in_validation(key, 1, 0.1)) other_seed.insert(i);
    EXPECT_FALSE(in_validation(key, 0, 0.0));
    in += in_validation(key, 7, 0.5);
  }
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other_seed);
  EXPECT_NEAR(static_cast<double>(first.size()), 1000.0, 100.0);
  EXPECT_NEAR(static_cast<double>(other_seed.size()), 1000.0, 100.0);
  EXPECT_NEAR(static_cast<double>(in), 5000.0, 250.0);
  // A larger share only adds documents: the split is a threshold on one hash.
  for (const int i : first) EXPECT_TRUE(in_validation("source/file" + std::to_string(i), 0, 0.2));
}

TEST(Corpus, SectionsEndAtParagraphEnds) {
  const Paragraphs paragraphs = {"aaaa", "bbbb", "cccc", "dd", "e"};
  EXPECT_EQ(split_sections(paragraphs, 0), (std::vector<std::string>{"aaaa\n\nbbbb\n\ncccc\n\ndd\n\ne"}));
  EXPECT_EQ(split_sections(paragraphs, 10), (std::vector<std::string>{"aaaa\n\nbbbb", "cccc\n\ndd\n\ne"}));
  // A last section under a quarter of the size joins the one before.
  EXPECT_EQ(split_sections({"aaaaaaaaaa", "b"}, 8), (std::vector<std::string>{"aaaaaaaaaa\n\nb"}));
  EXPECT_TRUE(split_sections({}, 8).empty());
}

TEST(Corpus, StopwordsCountPerLanguage) {
  const StopwordCounts en = count_stopwords("The cat and THE dog, which sat.");
  EXPECT_EQ(en.words, 7);
  EXPECT_EQ(en.english, 4);  // the, and, the, which
  EXPECT_EQ(en.french, 0);
  const StopwordCounts fr = count_stopwords("Le chat est dans l’arbre, où il dort.");
  EXPECT_EQ(fr.words, 9);
  EXPECT_EQ(fr.french, 5);  // le, est, dans, où, il
  EXPECT_EQ(fr.english, 0);
}

// The fixture recipe, built by hand: brown's two samples, the guide, one of
// the two copies of hello.1 (the other is a duplicate), and notes.txt
// without its English paragraph (untranslated.txt loses its only paragraph,
// options.txt fails the language check).
TEST(Corpus, BuildsAndWritesTheFixtureCorpus) {
  const CorpusRecipe recipe = CorpusRecipe::load(kCorpus / "recipe.json");
  CorpusOptions options;
  options.validation_share = 0.0;
  int64_t calls = 0;
  const Corpus corpus = build_corpus(recipe, options, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 8);
    EXPECT_EQ(done, ++calls);
    return true;
  });
  EXPECT_EQ(calls, 8);
  std::vector<std::string> sources;
  for (const Document& d : corpus.train) sources.push_back(d.source);
  EXPECT_EQ(sources, (std::vector<std::string>{"brown/cx01", "brown/cx02", "guide/guide.html", "hello/hello.1",
                                               "notes/notes.txt"}));
  EXPECT_TRUE(corpus.validation.empty());
  EXPECT_EQ(corpus.train[0].text.substr(0, 72),
            "The old mill stood by the river. Its wheel had not turned since 1931.\n\nR");
  EXPECT_EQ(corpus.train[4].label, 1);
  EXPECT_EQ(corpus.train[4].domain, "fr");
  EXPECT_EQ(corpus.train[4].text.find("English"), std::string::npos);

  const auto& stats = corpus.stats;
  EXPECT_EQ(stats["sources"]["hello"]["dropped"]["duplicate"], 1);
  EXPECT_EQ(stats["sources"]["notes"]["files"], 3);
  EXPECT_EQ(stats["sources"]["notes"]["dropped"]["language"], 1);
  EXPECT_EQ(stats["sources"]["notes"]["paragraphs_dropped_for_language"], 2);
  EXPECT_EQ(stats["domains"]["en"]["train"]["documents"], 4);
  EXPECT_EQ(stats["domains"]["fr"]["label"], 1);
  int64_t bytes = 0;
  for (const Document& d : corpus.train) bytes += static_cast<int64_t>(d.text.size());
  EXPECT_EQ(stats["total"]["train"]["bytes"], bytes);

  testing::TempDir tmp;
  write_corpus(corpus, tmp / "out");
  const std::vector<Document> train = read_jsonl(tmp / "out/train.jsonl");
  ASSERT_EQ(train.size(), corpus.train.size());
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(train[i].text, corpus.train[i].text);
    EXPECT_EQ(train[i].source, corpus.train[i].source);
  }
  EXPECT_EQ(read_file(tmp / "out/validation.jsonl"), "");
  EXPECT_EQ(nlohmann::ordered_json::parse(read_file(tmp / "out/stats.json")), corpus.stats);
  SUPERPOSE_EXPECT_THROW_WITH(write_corpus(corpus, tmp / "out"), Error, "out", "not empty");

  // The same recipe and seed give the same corpus; the split follows the seed.
  options.validation_share = 0.5;
  const Corpus half = build_corpus(recipe, options);
  const Corpus half_again = build_corpus(recipe, options);
  ASSERT_EQ(half.validation.size(), half_again.validation.size());
  for (size_t i = 0; i < half.validation.size(); ++i) EXPECT_EQ(half.validation[i].source, half_again.validation[i].source);
  EXPECT_EQ(half.train.size() + half.validation.size(), 5u);
  for (const Document& d : half.validation) EXPECT_TRUE(in_validation(d.source, 0, 0.5)) << d.source;
}

TEST(Corpus, MaxMbCapsEachDomain) {
  const CorpusRecipe recipe = CorpusRecipe::load(kCorpus / "recipe.json");
  CorpusOptions options;
  options.validation_share = 0.0;
  options.max_mb = 0.0005;  // 500 bytes
  const Corpus corpus = build_corpus(recipe, options);
  int64_t en = 0, fr = 0;
  for (const Document& d : corpus.train) (d.domain == "en" ? en : fr) += static_cast<int64_t>(d.text.size());
  EXPECT_GT(en, 0);
  EXPECT_LE(en, 500);
  EXPECT_LE(fr, 500);
  EXPECT_EQ(fr, corpus.stats["domains"]["fr"]["train"]["bytes"].get<int64_t>());
  int64_t capped = 0;
  for (const auto& [name, source] : corpus.stats["sources"].items()) capped += source["dropped"]["capped"].get<int64_t>();
  EXPECT_EQ(capped + static_cast<int64_t>(corpus.train.size()), 5);
  EXPECT_GT(capped, 0);
}

TEST(Corpus, BadOptionsAndCancelling) {
  const CorpusRecipe recipe = CorpusRecipe::load(kCorpus / "recipe.json");
  CorpusOptions options;
  options.validation_share = 1.0;
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(recipe, options), Error, "validation share");
  options.validation_share = 0.1;
  options.max_mb = 0.0;
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(recipe, options), Error, "max MB");
  SUPERPOSE_EXPECT_THROW_WITH(build_corpus(recipe, {}, [](int64_t, int64_t) { return false; }), Error, "cancelled");
}

}  // namespace
}  // namespace superpose
