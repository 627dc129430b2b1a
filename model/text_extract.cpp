// Prose out of Brown, HTML (libxml2), roff and plain text; gzip via zlib.
#include "model/text_extract.h"

#include <zlib.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "model/errors.h"
#include "model/tokenizer.h"

namespace superpose {
namespace {

// Collects text into lines and paragraphs; whitespace is collapsed per line.
class ParagraphBuilder {
 public:
  void text(std::string_view s) { pending_ += s; }
  // Appends `s` right after the text so far, without a space between
  // (punctuation that follows a link).
  void attach(std::string_view s) {
    while (!pending_.empty() && std::isspace(static_cast<unsigned char>(pending_.back()))) pending_.pop_back();
    pending_ += s;
  }
  void line_break() {
    std::string line = collapse_whitespace(pending_);
    pending_.clear();
    if (line.empty()) return;
    if (!paragraph_.empty()) paragraph_ += '\n';
    paragraph_ += line;
  }
  void end_paragraph() {
    line_break();
    if (!paragraph_.empty()) paragraphs_.push_back(std::move(paragraph_));
    paragraph_.clear();
  }
  Paragraphs finish() {
    end_paragraph();
    return std::move(paragraphs_);
  }

 private:
  std::string pending_;
  std::string paragraph_;
  Paragraphs paragraphs_;
};

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// ---- Brown ----

bool sentence_final(std::string_view word) { return word == ";" || word == "?" || word == "!" || word == "."; }
bool attaches_left(std::string_view word) {
  return word == "," || word == "." || word == ";" || word == ":" || word == "?" || word == "!" || word == ")" ||
         word == "]" || word == "}" || word == "'";
}
bool attaches_right(std::string_view word) { return word == "(" || word == "[" || word == "{" || word == "`"; }

// A headline: every token's tag carries "-hl" ("Merger/nn-hl proposed/vbn-hl").
bool brown_headline(std::string_view line) {
  bool any = false;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t end = i;
    while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
    if (end == i) break;
    const std::string_view token = line.substr(i, end - i);
    const size_t slash = token.rfind('/');
    if (slash == std::string_view::npos || token.substr(slash).find("-hl") == std::string_view::npos) return false;
    any = true;
    i = end;
  }
  return any;
}

// One tagged sentence line as prose.
std::string brown_sentence(std::string_view line) {
  std::string out;
  bool glue = true;  // no space before the next word
  std::string_view previous;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t end = i;
    while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
    std::string_view token = line.substr(i, end - i);
    i = end;
    if (token.empty()) continue;
    const size_t slash = token.rfind('/');
    std::string_view word = slash == std::string_view::npos || slash == 0 ? token : token.substr(0, slash);
    if (word.substr(0, 2) == "**") continue;  // a formula placeholder
    if (sentence_final(word) && word == previous) continue;
    if (word == "." && !out.empty() && out.back() == '.') continue;  // "Jr./np ./." ends the sentence once
    previous = word;
    auto space_before = [&] {
      if (!glue && !out.empty()) out += ' ';
    };
    if (word == "``") {
      space_before();
      out += '"';
      glue = true;
    } else if (word == "''") {
      out += '"';
      glue = false;
    } else if (attaches_left(word)) {
      out += word;
      glue = false;
    } else if (attaches_right(word)) {
      space_before();
      out += word;
      glue = true;
    } else {
      space_before();
      out += word;
      glue = false;
    }
  }
  return out;
}

// ---- HTML ----

const std::unordered_set<std::string>& skipped_html_elements() {
  static const std::unordered_set<std::string> names = {
      "head", "script", "style", "pre", "nav", "noscript", "template", "svg", "math", "table", "form",
      "button", "select", "textarea", "iframe", "object", "embed", "canvas", "audio", "video"};
  return names;
}

const std::unordered_set<std::string>& html_block_elements() {
  static const std::unordered_set<std::string> names = {
      "html", "body", "p", "div", "section", "article", "main", "aside", "header", "footer", "h1", "h2", "h3",
      "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "blockquote", "hr", "address", "figure",
      "figcaption", "center", "caption", "fieldset", "legend", "details", "summary", "title", "tr", "td", "th"};
  return names;
}

// An attribute's value ("" when absent).
std::string attribute(xmlNode* node, const char* name) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(value));
  xmlFree(value);
  return out;
}

class HtmlWalker {
 public:
  explicit HtmlWalker(const std::vector<std::string>& extra_classes) {
    skipped_classes_.insert(kSkippedHtmlClasses.begin(), kSkippedHtmlClasses.end());
    skipped_classes_.insert(extra_classes.begin(), extra_classes.end());
  }

  void walk(xmlNode* node) {
    for (xmlNode* child = node->children; child != nullptr; child = child->next) {
      if (child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE) {
        if (child->content != nullptr) builder_.text(reinterpret_cast<const char*>(child->content));
        continue;
      }
      if (child->type != XML_ELEMENT_NODE) continue;
      const std::string name = ascii_lower(reinterpret_cast<const char*>(child->name));
      if (skipped(child, name)) continue;
      if (name == "br") {
        builder_.line_break();
        continue;
      }
      const bool block = html_block_elements().count(name) != 0;
      if (block) builder_.end_paragraph();
      walk(child);
      if (block) builder_.end_paragraph();
    }
  }

  Paragraphs finish() { return builder_.finish(); }

 private:
  static std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  bool skipped(xmlNode* node, const std::string& name) const {
    if (skipped_html_elements().count(name) != 0) return true;
    const std::string role = attribute(node, "role");
    if (role == "navigation" || role == "search" || role == "contentinfo") return true;
    const std::string classes = attribute(node, "class");
    size_t i = 0;
    while (i < classes.size()) {
      while (i < classes.size() && std::isspace(static_cast<unsigned char>(classes[i]))) ++i;
      size_t end = i;
      while (end < classes.size() && !std::isspace(static_cast<unsigned char>(classes[end]))) ++end;
      if (end > i && skipped_classes_.count(classes.substr(i, end - i)) != 0) return true;
      i = end;
    }
    return false;
  }

  std::unordered_set<std::string> skipped_classes_;
  ParagraphBuilder builder_;
};

// ---- roff ----

const std::unordered_map<std::string, std::string>& roff_special_characters() {
  static const std::unordered_map<std::string, std::string> table = {
      {"em", "—"}, {"en", "–"}, {"hy", "-"}, {"mi", "-"}, {"aq", "'"}, {"dq", "\""}, {"lq", "“"}, {"rq", "”"},
      {"oq", "‘"}, {"cq", "’"}, {"Fo", "«"}, {"Fc", "»"}, {"fo", "‹"}, {"fc", "›"}, {"bu", "•"}, {"co", "©"},
      {"rg", "®"}, {"tm", "™"}, {"de", "°"}, {"mu", "×"}, {"di", "÷"}, {"+-", "±"}, {"<=", "≤"}, {">=", "≥"},
      {"!=", "≠"}, {"->", "→"}, {"<-", "←"}, {"<>", "↔"}, {"ua", "↑"}, {"da", "↓"}, {"==", "≡"}, {"~=", "≈"},
      {"ti", "~"}, {"ha", "^"}, {"rs", "\\"}, {"sl", "/"}, {"ga", "`"}, {"aa", "´"}, {"ul", "_"}, {"ba", "|"},
      {"or", "|"}, {"ct", "¢"}, {"Po", "£"}, {"Eu", "€"}, {"eu", "€"}, {"Ye", "¥"}, {"ss", "ß"}, {"sc", "§"},
      {"ps", "¶"}, {"pl", "+"}, {"eq", "="}, {"**", "*"}, {"lB", "["}, {"rB", "]"}, {"lC", "{"}, {"rC", "}"},
      {"la", "⟨"}, {"ra", "⟩"}, {"at", "@"}, {"sh", "#"}, {"Do", "$"}, {"dg", "†"}, {"dd", "‡"}, {"sd", "″"},
      {"fm", "′"}, {"r!", "¡"}, {"r?", "¿"}, {"ae", "æ"}, {"AE", "Æ"}, {"oe", "œ"}, {"OE", "Œ"}, {"o/", "ø"},
      {"O/", "Ø"}, {"12", "½"}, {"14", "¼"}, {"34", "¾"}, {"S1", "¹"}, {"S2", "²"}, {"S3", "³"}, {"ff", "ff"},
      {"fi", "fi"}, {"fl", "fl"}, {"'e", "é"}, {"`e", "è"}, {"^e", "ê"}, {":e", "ë"}, {"'a", "á"}, {"`a", "à"},
      {"^a", "â"}, {":a", "ä"}, {"'i", "í"}, {"^i", "î"}, {":i", "ï"}, {"'o", "ó"}, {"^o", "ô"}, {":o", "ö"},
      {"'u", "ú"}, {"`u", "ù"}, {"^u", "û"}, {":u", "ü"}, {",c", "ç"}, {",C", "Ç"}, {"'E", "É"}, {"`E", "È"},
      {"^E", "Ê"}, {"`A", "À"}, {"~n", "ñ"}, {"~N", "Ñ"}, {"~a", "ã"}, {"~o", "õ"}, {":y", "ÿ"}, {"'y", "ý"},
      {"Lq", "“"}, {"Rq", "”"}, {"R", "®"}, {"Tm", "™"}, {"Aq", "'"}};
  return table;
}

// A special character or predefined string by name: "em", "u00E9", ...
std::string roff_named(std::string_view name) {
  if (name.size() >= 5 && name[0] == 'u' &&
      std::all_of(name.begin() + 1, name.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '_'; })) {
    // \[u00E9], or a composite \[u0065_0301]: its first code point.
    const std::string hex(name.substr(1, name.find('_') == std::string_view::npos ? name.size() - 1 : name.find('_') - 1));
    if (hex.empty() || hex.size() > 6) return {};
    const auto cp = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
    if (cp >= 0x110000 || (cp >= 0xD800 && cp <= 0xDFFF)) return {};  // not a character
    std::string out;
    append_utf8(out, cp);
    return out;
  }
  const auto& table = roff_special_characters();
  const auto it = table.find(std::string(name));
  return it == table.end() ? std::string() : it->second;
}

// The name after \( \[ \* \n \f ...: "(xy", "[long]" or one character.
// Returns it and advances i past it.
std::string_view roff_escape_name(std::string_view s, size_t& i) {
  if (i >= s.size()) return {};
  if (s[i] == '(') {
    const std::string_view name = s.substr(i + 1, 2);
    i = std::min(s.size(), i + 3);
    return name;
  }
  if (s[i] == '[') {
    const size_t close = s.find(']', i + 1);
    const size_t end = close == std::string_view::npos ? s.size() : close;
    const std::string_view name = s.substr(i + 1, end - i - 1);
    i = std::min(s.size(), end + 1);
    return name;
  }
  return s.substr(i++, 1);
}

// Skips a delimited argument such as 'text' after \w \h \v ...; returns it.
std::string_view roff_delimited(std::string_view s, size_t& i) {
  if (i >= s.size()) return {};
  const char delimiter = s[i];
  const size_t close = s.find(delimiter, i + 1);
  const size_t end = close == std::string_view::npos ? s.size() : close;
  const std::string_view inside = s.substr(i + 1, end - i - 1);
  i = std::min(s.size(), end + 1);
  return inside;
}

// A line of roff text with its escapes interpreted.
std::string roff_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i++];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= s.size()) break;
    const char e = s[i++];
    switch (e) {
      case '"':
      case '#':
        return out;  // a comment runs to the end of the line
      case '-': out += '-'; break;
      case 'e':
      case '\\': out += '\\'; break;
      case '.': out += '.'; break;
      case '\'': out += "'"; break;
      case '`': out += '`'; break;
      case ' ':
      case '~':
      case '0':
      case 't': out += ' '; break;
      case '&': case ')': case '/': case ',': case '|': case '^': case '%': case ':': case '{': case '}':
      case 'd': case 'u': case 'c': case 'p': case 'r': case 'z':
        break;
      case 'f': case 'n': case 'g': case 'm': case 'M': case 'F': case 'Y': case 'V': case '$':
        if (e == 'n' && i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        roff_escape_name(s, i);
        break;
      case 'k':
        if (i < s.size()) ++i;
        break;
      case '*': out += roff_named(roff_escape_name(s, i)); break;
      case '(':
      case '[':
        --i;
        out += roff_named(roff_escape_name(s, i));
        break;
      case 's':
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (i < s.size() && (s[i] == '(' || s[i] == '[')) {
          roff_escape_name(s, i);
        } else if (i < s.size() && s[i] == '\'') {
          roff_delimited(s, i);
        } else if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
          ++i;
        }
        break;
      case 'C': out += roff_named(roff_delimited(s, i)); break;
      case 'h': case 'v': case 'w': case 'o': case 'l': case 'L': case 'X': case 'D': case 'b': case 'x':
      case 'Z': case 'A': case 'N': case 'R': case 'B': case 'S': case 'H':
        roff_delimited(s, i);
        break;
      default: out += e; break;  // an escaped ordinary character stands for itself
    }
  }
  return out;
}

// A request line's arguments: blank-separated, "double quoted" with "" for a
// quote; a \" comment ends them. Escapes are interpreted.
std::vector<std::string> roff_arguments(std::string_view rest) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
    if (i >= rest.size()) break;
    if (rest.substr(i, 2) == "\\\"") break;
    std::string raw;
    if (rest[i] == '"') {
      ++i;
      while (i < rest.size()) {
        if (rest[i] == '"') {
          if (i + 1 < rest.size() && rest[i + 1] == '"') {
            raw += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        raw += rest[i++];
      }
    } else {
      while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t') {
        if (rest[i] == '\\' && i + 1 < rest.size()) raw += rest[i++];
        raw += rest[i++];
      }
    }
    args.push_back(roff_text(raw));
  }
  return args;
}

std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

size_t count_of(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

class ManReader {
 public:
  explicit ManReader(const std::vector<std::string>& drop_sections) {
    for (const auto& name : drop_sections) drop_.insert(ascii_upper(name));
  }

  void line(std::string_view raw) {
    if (!skip_until_.empty()) {
      const std::string_view trimmed = raw.substr(0, raw.find_first_of(" \t"));
      if (trimmed == skip_until_) skip_until_.clear();
      return;
    }
    if (brace_depth_ > 0) {
      brace_depth_ += static_cast<long>(count_of(raw, "\\{")) - static_cast<long>(count_of(raw, "\\}"));
      return;
    }
    const bool control = !raw.empty() && (raw[0] == '.' || raw[0] == '\'');
    if (!control) {
      if (!block_end_.empty() || dropping_) return;
      if (is_blank(raw)) {
        builder_.end_paragraph();
        return;
      }
      const bool joins_next = raw.size() >= 2 && raw.substr(raw.size() - 2) == "\\c";
      emit(roff_text(raw), !joins_next);
      return;
    }
    size_t i = 1;
    while (i < raw.size() && (raw[i] == ' ' || raw[i] == '\t')) ++i;
    size_t end = i;
    while (end < raw.size() && raw[end] != ' ' && raw[end] != '\t') ++end;
    const std::string name(raw.substr(i, end - i));
    if (name.empty() || name.rfind("\\\"", 0) == 0) return;  // "." alone, or a comment
    const std::string_view rest = raw.substr(end);
    request(name, rest);
  }

  Paragraphs finish() { return builder_.finish(); }

 private:
  void request(const std::string& name, std::string_view rest) {
    if (!block_end_.empty()) {
      const bool heading = name == "SH" || name == "SS" || name == "Sh" || name == "Ss";
      if (name == block_end_) {
        block_end_.clear();
        return;
      }
      // A heading ends a no-fill block that was never closed.
      if (!(heading && (block_end_ == "fi" || block_end_ == "EE"))) return;
      block_end_.clear();
    }
    if (name == "de" || name == "de1" || name == "am" || name == "am1" || name == "ig") {
      const auto args = roff_arguments(rest);
      const bool definition = name != "ig";
      skip_until_ = definition && args.size() >= 2 ? "." + args[1] : !definition && !args.empty() ? "." + args[0] : "..";
      return;
    }
    if (name == "if" || name == "ie" || name == "el" || name == "while") {
      brace_depth_ = static_cast<long>(count_of(rest, "\\{")) - static_cast<long>(count_of(rest, "\\}"));
      return;
    }
    static const std::unordered_map<std::string, std::string> blocks = {
        {"nf", "fi"}, {"EX", "EE"}, {"TS", "TE"}, {"EQ", "EN"}, {"PS", "PE"}, {"SY", "YS"}};
    if (const auto block = blocks.find(name); block != blocks.end()) {
      block_end_ = block->second;
      return;
    }
    if (name == "Bd") {
      if (rest.find("-literal") != std::string_view::npos || rest.find("-unfilled") != std::string_view::npos) {
        block_end_ = "Ed";
      }
      return;
    }
    if (name == "SH" || name == "Sh" || name == "SS" || name == "Ss") {
      builder_.end_paragraph();
      pending_tag_ = false;
      const int level = name == "SH" || name == "Sh" ? 1 : 2;
      const auto args = roff_arguments(rest);
      if (args.empty()) {
        pending_heading_ = level;
      } else {
        heading(level, joined(args, " "));
      }
      return;
    }
    if (dropping_) return;
    if (name == "PP" || name == "LP" || name == "P" || name == "Pp" || name == "Lp" || name == "sp" || name == "HP" ||
        name == "RS" || name == "RE" || name == "bp" || name == "Bl" || name == "El") {
      builder_.end_paragraph();
    } else if (name == "TP") {
      builder_.end_paragraph();
      pending_tag_ = true;
    } else if (name == "TQ") {
      builder_.line_break();
      pending_tag_ = true;
    } else if (name == "IP") {
      builder_.end_paragraph();
      const auto args = roff_arguments(rest);
      if (!args.empty() && !is_bullet(args[0])) {
        builder_.text(args[0]);
        builder_.line_break();
      }
    } else if (name == "br" || name == "in" || name == "ti" || name == "It") {
      builder_.line_break();
    } else if (name == "B" || name == "I" || name == "SM" || name == "SB") {
      const auto args = roff_arguments(rest);
      if (!args.empty()) emit(joined(args, " "), true);
    } else if (name == "BR" || name == "RB" || name == "BI" || name == "IB" || name == "IR" || name == "RI") {
      const auto args = roff_arguments(rest);
      if (!args.empty()) emit(joined(args, ""), true);
    } else if (name == "UE" || name == "ME") {
      builder_.attach(joined(roff_arguments(rest), ""));
      builder_.text(" ");
    }
    // Everything else (.TH, .so, .ds, .nr, .ft, .ad, .PD, .UR, .MT, .OP, ...)
    // carries no prose.
  }

  static bool is_bullet(const std::string& tag) {
    return tag == "•" || tag == "*" || tag == "-" || tag == "o" || tag == "·" || tag == "—" || tag == "–";
  }

  void heading(int level, const std::string& text) {
    if (level == 1) dropping_ = drop_.count(ascii_upper(collapse_whitespace(text))) != 0;
    if (dropping_) return;
    builder_.end_paragraph();
    builder_.text(text);
    builder_.end_paragraph();
  }

  void emit(const std::string& text, bool word_space) {
    if (pending_heading_ != 0) {
      const int level = pending_heading_;
      pending_heading_ = 0;
      heading(level, text);
      return;
    }
    if (dropping_) return;
    builder_.text(text);
    if (word_space) builder_.text(" ");
    if (pending_tag_) {
      pending_tag_ = false;
      builder_.line_break();
    }
  }

  std::unordered_set<std::string> drop_;
  ParagraphBuilder builder_;
  std::string skip_until_;  // inside a macro definition or .ig: the line that ends it
  std::string block_end_;   // inside a dropped block: the request that ends it
  long brace_depth_ = 0;    // inside a conditional's \{ ... \} lines
  bool dropping_ = false;   // inside a section named in drop_sections
  bool pending_tag_ = false;
  int pending_heading_ = 0;  // .SH / .SS without arguments: the next line is the heading
};

// Joins roff lines that end in an escaped newline ("...\" at the very end).
std::vector<std::string> roff_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::string pending;
  for (std::string_view line : split_lines(text)) {
    size_t backslashes = 0;
    while (backslashes < line.size() && line[line.size() - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    pending += line;
    lines.push_back(std::move(pending));
    pending.clear();
  }
  if (!pending.empty()) lines.push_back(std::move(pending));
  return lines;
}

}  // namespace

const std::vector<std::string> kSkippedHtmlClasses = {
    // DocBook XSL: navigation bars, tables of contents, tables, code listings.
    "navheader", "navfooter", "toc", "list-of-tables", "list-of-figures", "table", "informaltable", "screen",
    "programlisting", "synopsis", "cmdsynopsis", "funcsynopsis", "literallayout",
    // Sphinx: related links, sidebar, footer, permalink marks, highlighted code.
    "related", "sphinxsidebar", "footer", "headerlink", "highlight", "linenos",
    // Common page chrome.
    "navigation", "navbar", "breadcrumb", "breadcrumbs", "menu", "sidebar"};

std::string read_maybe_gzipped(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path.string(), "file not found");
  if (std::filesystem::is_directory(path, ec)) throw Error(path.string(), "is a directory, expected a file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw Error(path.string(), std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(file, 1 << 17);
  std::string out;
  char buffer[1 << 16];
  while (true) {
    const int n = gzread(file, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw Error(path.string(), "cannot read: " + message);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  int code = 0;
  const char* message = gzerror(file, &code);
  if (code != Z_OK && code != Z_BUF_ERROR) {
    const std::string text = message;
    gzclose(file);
    throw Error(path.string(), "cannot read: " + text);
  }
  // A truncated gzip stream reads short without an error from gzread: gzclose says so.
  if (gzclose(file) != Z_OK) throw Error(path.string(), "corrupt or truncated gzip data");
  return out;
}

std::string utf8_or_latin1(std::string bytes) {
  if (is_valid_utf8(bytes)) return bytes;
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (const char c : bytes) append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  const auto byte = [&](size_t k) { return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u; };
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = byte(i);
    enum { kKeep, kSpace, kDrop } what = kKeep;
    size_t length = 1;
    if (c == ' ' || (c >= '\t' && c <= '\r')) {
      what = kSpace;
    } else if (c < 0x20 || c == 0x7F) {
      what = kDrop;
    } else if (c == 0xC2 && (byte(i + 1) == 0xA0 || byte(i + 1) == 0xAD)) {
      what = byte(i + 1) == 0xA0 ? kSpace : kDrop;  // no-break space, soft hyphen
      length = 2;
    } else if (c == 0xE2 && byte(i + 1) == 0x80 && (byte(i + 2) == 0x87 || byte(i + 2) == 0xAF || byte(i + 2) == 0x8B)) {
      what = byte(i + 2) == 0x8B ? kDrop : kSpace;  // zero-width space; figure / narrow no-break spaces
      length = 3;
    }
    if (what == kSpace) {
      space = true;
    } else if (what == kKeep) {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(c);
    }
    i += length;
  }
  return out;
}

Paragraphs brown_paragraphs(std::string_view tagged) {
  ParagraphBuilder builder;
  for (const std::string_view line : split_lines(tagged)) {
    if (is_blank(line)) {
      builder.end_paragraph();
      continue;
    }
    if (brown_headline(line)) {
      builder.end_paragraph();
      builder.text(brown_sentence(line));
      builder.end_paragraph();
      continue;
    }
    if (line[0] == '\t') builder.end_paragraph();
    builder.text(brown_sentence(line));
    builder.text(" ");
  }
  return builder.finish();
}

Paragraphs html_paragraphs(std::string_view html, const std::vector<std::string>& extra_skip_classes) {
  static std::once_flag init;
  std::call_once(init, [] { xmlInitParser(); });
  if (html.empty()) return {};
  const char* encoding = is_valid_utf8(html) ? "UTF-8" : nullptr;
  const int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET;
  const int size = static_cast<int>(std::min<size_t>(html.size(), static_cast<size_t>(INT_MAX)));
  std::unique_ptr<xmlDoc, void (*)(xmlDoc*)> doc(htmlReadMemory(html.data(), size, nullptr, encoding, options),
                                                   xmlFreeDoc);
  if (!doc) return {};
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr) return {};
  HtmlWalker walker(extra_skip_classes);
  // The root itself may be skipped in principle; walk a virtual parent of it.
  xmlNode parent{};
  parent.children = root;
  walker.walk(&parent);
  return walker.finish();
}

Paragraphs man_paragraphs(std::string_view roff, const std::vector<std::string>& drop_sections) {
  ManReader reader(drop_sections);
  for (const std::string& line : roff_lines(roff)) reader.line(line);
  return reader.finish();
}

Paragraphs text_paragraphs(std::string_view text) {
  ParagraphBuilder builder;
  for (const std::string_view line : split_lines(text)) {
    if (is_blank(line)) {
      builder.end_paragraph();
      continue;
    }
    builder.text(line);
    builder.text(" ");
  }
  return builder.finish();
}

}  // namespace superpose
