// Prose extraction: each format's fixture against the paragraphs worked out
// by hand, escapes and whitespace, gzip and its errors.
#include "model/text_extract.h"

#include <gtest/gtest.h>

#include <fstream>

#include "model/errors.h"
#include "model/file_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(SUPERPOSE_FIXTURES) / "corpus";

void write_bytes(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(TextExtract, BrownLosesItsTagsAndKeepsParagraphsAndHeadlines) {
  EXPECT_EQ(brown_paragraphs(read_maybe_gzipped(kCorpus / "brown/cx01")),
            (Paragraphs{
                "The old mill stood by the river. Its wheel had not turned since 1931.",
                "Repairs begin",
                "Mr. Hale, the owner, said \"we will start in May\". He hired J. Dunn Jr.",
                "The cost (about $4,000) was paid; the town gave the rest, and the formula held.",
                "Was it worth it? Everyone agreed it was.",
            }));
}

TEST(TextExtract, HtmlKeepsProseAndDropsNavigationTablesAndCode) {
  EXPECT_EQ(html_paragraphs(read_maybe_gzipped(kCorpus / "html/guide.html")),
            (Paragraphs{
                "2. Building a package",
                "A package is built from its source tree with dpkg-buildpackage, which runs the rules file.",
                "Check the changelog first.",
                "Then build.\nThen test.",
                "lintian",
                "checks the result for common mistakes.",
                "Café & crème are fine in a description.",
            }));
}

TEST(TextExtract, HtmlExtraClassesAndLatin1Pages) {
  const std::string page = "<html><body><p class=\"x ad\">Buy now.</p><p>Kept text.</p></body></html>";
  EXPECT_EQ(html_paragraphs(page, {"ad"}), (Paragraphs{"Kept text."}));
  EXPECT_EQ(html_paragraphs(page).size(), 2u);
  // Not UTF-8: the declared charset decides.
  const std::string latin1 =
      "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"></head>"
      "<body><p>Caf\xe9</p></body></html>";
  EXPECT_EQ(html_paragraphs(latin1), (Paragraphs{"Café"}));
  EXPECT_TRUE(html_paragraphs("").empty());
}

const Paragraphs kHelloParagraphs = {
    "NAME",
    "hello - print a friendly greeting",
    "DESCRIPTION",
    "hello prints a greeting on standard output and exits — nothing more. It knows the café on the corner.",
    "The greeting can be changed with -g, see below.",
    "Options",
    "-g, --greeting=text\nUse text instead of the default greeting.",
    "-v\nPrint the version.",
    "EXAMPLES",
    "Greetings are one line.\nLong ones are cut.",
};

TEST(TextExtract, ManPageProseWithoutMacrosExamplesOrDroppedSections) {
  EXPECT_EQ(man_paragraphs(read_maybe_gzipped(kCorpus / "man/hello.1"), {"synopsis", "SEE ALSO"}), kHelloParagraphs);
  // Without drop_sections the synopsis and "see also" stay.
  const Paragraphs all = man_paragraphs(read_maybe_gzipped(kCorpus / "man/hello.1"));
  ASSERT_EQ(all.size(), kHelloParagraphs.size() + 4);
  EXPECT_EQ(all[2], "SYNOPSIS");
  EXPECT_EQ(all[3], "hello [-g text]");
  EXPECT_EQ(all.back(), "printf(1)");
}

TEST(TextExtract, GzippedFilesReadLikeTheirPlainCopies) {
  EXPECT_EQ(read_maybe_gzipped(kCorpus / "man/hello.1.gz"), read_maybe_gzipped(kCorpus / "man/hello.1"));
}

TEST(TextExtract, RoffEscapes) {
  EXPECT_EQ(man_paragraphs("\\fBbold\\fR, \\fIitalic\\fP and \\s-1small\\s0 text\n"),
            (Paragraphs{"bold, italic and small text"}));
  EXPECT_EQ(man_paragraphs("\\(lqquoted\\(rq \\*(lqtoo\\*(rq \\[em] \\(co \\-1\n"),
            (Paragraphs{"“quoted” “too” — © -1"}));
  EXPECT_EQ(man_paragraphs("caf\\[u00E9] \\[u1F600] \\[uD800]x \\[u110000]y\n"), (Paragraphs{"café 😀 x y"}));
  EXPECT_EQ(man_paragraphs("a \\\" comment\nb\n.\\\" another\nc\n"), (Paragraphs{"a b c"}));
  EXPECT_EQ(man_paragraphs(".SH\nHeading on the next line\ntext\n"), (Paragraphs{"Heading on the next line", "text"}));
  EXPECT_EQ(man_paragraphs(".TS\ntab(:);\nl l.\na:b\n.TE\nafter\n"), (Paragraphs{"after"}));
  EXPECT_EQ(man_paragraphs(".ig\nignored\n..\nkept\n"), (Paragraphs{"kept"}));
}

TEST(TextExtract, CollapseWhitespace) {
  EXPECT_EQ(collapse_whitespace("  a \t b\r\n c  "), "a b c");
  EXPECT_EQ(collapse_whitespace("no\xc2\xa0" "break\xe2\x80\xaf" "narrow"), "no break narrow");
  EXPECT_EQ(collapse_whitespace("soft\xc2\xadhy\xe2\x80\x8bphen\x01"), "softhyphen");
  EXPECT_EQ(collapse_whitespace(""), "");
}

TEST(TextExtract, Latin1FallbackAndPlainText) {
  EXPECT_EQ(utf8_or_latin1("d\xe9j\xe0"), "déjà");
  EXPECT_EQ(utf8_or_latin1("déjà"), "déjà");
  EXPECT_EQ(text_paragraphs("one\ntwo  lines\n\n\n  three\n"), (Paragraphs{"one two lines", "three"}));
}

TEST(TextExtract, ReadErrorsNameTheFile) {
  testing::TempDir tmp;
  SUPERPOSE_EXPECT_THROW_WITH(read_maybe_gzipped(tmp / "missing.gz"), Error, "missing.gz", "file not found");
  SUPERPOSE_EXPECT_THROW_WITH(read_maybe_gzipped(tmp.path()), Error, "is a directory");
  const std::string gz = read_file(kCorpus / "man/hello.1.gz");
  write_bytes(tmp / "truncated.gz", gz.substr(0, gz.size() / 2));
  SUPERPOSE_EXPECT_THROW_WITH(read_maybe_gzipped(tmp / "truncated.gz"), Error, "truncated.gz");
}

}  // namespace
}  // namespace superpose
