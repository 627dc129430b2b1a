// superpose tokenize: GPT-2 BPE ids of texts as JSON, or texts of id lists.
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli/common.h"
#include "model/errors.h"

namespace superpose::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  bool decode = false;
  std::vector<std::string> inputs;
};

// "15496 995", "15496,995" or "[15496, 995]" -> ids.
std::vector<int64_t> parse_ids(const std::string& text, size_t position) {
  const std::string where = "TEXT #" + std::to_string(position + 1);
  std::string cleaned = text;
  for (char& c : cleaned) {
    if (c == ',' || c == '[' || c == ']') c = ' ';
  }
  std::istringstream in(cleaned);
  std::vector<int64_t> ids;
  std::string word;
  while (in >> word) {
    if (word.find_first_not_of("0123456789") != std::string::npos || word.size() > 18) {
      throw Error(where, "'" + word + "' is not a token id (expected non-negative integers)");
    }
    ids.push_back(std::stoll(word));
  }
  return ids;
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tokenizer = load_tokenizer(o.tokenizer, std::nullopt);
  nlohmann::json out;
  if (o.decode) {
    out["texts"] = nlohmann::json::array();
    for (size_t i = 0; i < o.inputs.size(); ++i) {
      const auto ids = parse_ids(o.inputs[i], i);
      for (int64_t id : ids) {
        if (id >= tokenizer.vocab_size()) {
          throw Error("TEXT #" + std::to_string(i + 1),
                      "token id " + std::to_string(id) + " is outside the vocabulary of " +
                          std::to_string(tokenizer.vocab_size()));
        }
      }
      out["texts"].push_back(tokenizer.decode(ids));
    }
  } else {
    out["ids"] = nlohmann::json::array();
    for (size_t i = 0; i < o.inputs.size(); ++i) {
      out["ids"].push_back(encode_text(tokenizer, o.inputs[i], "TEXT #" + std::to_string(i + 1)));
    }
  }
  // Decoded ids may end inside a UTF-8 character: such bytes become U+FFFD.
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  auto* command = app.add_subcommand("tokenize", "Encode texts to GPT-2 token ids (JSON), or decode id lists");
  command->add_option("--tokenizer", options->tokenizer, "Directory with vocab.json + merges.txt (default: GPT-2's)")
      ->check(kExistingDir);
  command->add_flag("--decode", options->decode, "Inputs are id lists ('15496 995' or '[15496, 995]'); print texts");
  // Texts are taken verbatim from the remaining arguments: CLI11 would split
  // an argument like "[15496, 995]" into several values.
  command->allow_extras();
  command->footer("TEXT...: the texts to encode (or id lists with --decode), taken verbatim.");
  command->callback([options, command] {
    options->inputs = command->remaining();
    if (options->inputs.empty()) throw Error("TEXT", "give at least one text (or id list with --decode)");
    run_tokenize(*options);
  });
}

}  // namespace superpose::cli
