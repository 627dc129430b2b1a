// Diversity metrics against hand computations, published NLTK / fast-bleu
// values, and direct O(G²) reference implementations written here.
#include "analysis/diversity.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "model/errors.h"

namespace superpose {
namespace {

using Seq = std::vector<int64_t>;
using Seqs = std::vector<Seq>;

// ---- Direct reference implementations ----

std::map<Seq, int64_t> ngram_counts(const Seq& s, int64_t n) {
  std::map<Seq, int64_t> counts;
  for (int64_t i = 0; i + n <= static_cast<int64_t>(s.size()); ++i) ++counts[Seq(s.begin() + i, s.begin() + i + n)];
  return counts;
}

// nltk.translate.bleu_score.sentence_bleu(references, hypothesis,
// weights=(1/max_n,)*max_n, smoothing_function=SmoothingFunction().method1),
// transcribed line by line (modified_precision, closest_ref_length,
// brevity_penalty, corpus_bleu for one sentence).
double nltk_sentence_bleu(const Seqs& references, const Seq& hypothesis, int64_t max_n) {
  std::vector<std::pair<int64_t, int64_t>> p;  // numerator, denominator
  for (int64_t m = 1; m <= max_n; ++m) {
    const auto counts = ngram_counts(hypothesis, m);
    std::map<Seq, int64_t> max_counts;
    for (const Seq& reference : references) {
      const auto reference_counts = ngram_counts(reference, m);
      for (const auto& [ngram, count] : counts) {
        (void)count;
        const auto it = reference_counts.find(ngram);
        max_counts[ngram] = std::max(max_counts[ngram], it == reference_counts.end() ? int64_t{0} : it->second);
      }
    }
    int64_t numerator = 0, total = 0;
    for (const auto& [ngram, count] : counts) {
      numerator += std::min(count, max_counts[ngram]);
      total += count;
    }
    p.emplace_back(numerator, std::max<int64_t>(1, total));
  }
  const int64_t hyp_len = static_cast<int64_t>(hypothesis.size());
  int64_t closest = static_cast<int64_t>(references[0].size());
  for (const Seq& r : references) {
    const int64_t len = static_cast<int64_t>(r.size());
    if (std::make_pair(std::abs(len - hyp_len), len) < std::make_pair(std::abs(closest - hyp_len), closest)) {
      closest = len;
    }
  }
  const double bp = hyp_len > closest ? 1.0 : hyp_len == 0 ? 0.0 : std::exp(1.0 - double(closest) / double(hyp_len));
  if (p[0].first == 0) return 0.0;
  double s = 0;
  for (const auto& [num, den] : p) {
    const double value = num == 0 ? 0.1 / double(den) : double(num) / double(den);
    s += (1.0 / double(max_n)) * std::log(value);
  }
  return bp * std::exp(s);
}

std::vector<double> naive_self_bleu_scores(const Seqs& generations, int64_t max_n) {
  std::vector<double> scores;
  for (size_t i = 0; i < generations.size(); ++i) {
    Seqs others;
    for (size_t j = 0; j < generations.size(); ++j) {
      if (j != i) others.push_back(generations[j]);
    }
    scores.push_back(nltk_sentence_bleu(others, generations[i], max_n));
  }
  return scores;
}

// Distinct count, total and entropy (nats) of the pooled n-grams, by std::map.
struct DirectNgramStats {
  int64_t distinct = 0, total = 0;
  double nats = 0, mean_per_generation = 0;
};
DirectNgramStats direct_stats(const Seqs& generations, int64_t n) {
  std::map<Seq, int64_t> pooled;
  DirectNgramStats out;
  int64_t measured = 0;
  for (const Seq& g : generations) {
    const auto counts = ngram_counts(g, n);
    int64_t total = 0;
    for (const auto& [ngram, c] : counts) {
      pooled[ngram] += c;
      total += c;
    }
    if (total > 0) {
      out.mean_per_generation += double(counts.size()) / double(total);
      ++measured;
    }
    out.total += total;
  }
  out.distinct = static_cast<int64_t>(pooled.size());
  for (const auto& [ngram, c] : pooled) {
    const double p = double(c) / double(out.total);
    out.nats -= p * std::log(p);
  }
  out.mean_per_generation /= double(measured);
  return out;
}

// ---- Helpers ----

Seqs random_generations(std::mt19937_64& rng, int count, int64_t vocab, int max_length) {
  std::uniform_int_distribution<int64_t> token(0, vocab - 1);
  std::uniform_int_distribution<int> length(0, max_length);
  Seqs out(static_cast<size_t>(count));
  for (Seq& g : out) {
    g.resize(static_cast<size_t>(length(rng)));
    for (int64_t& t : g) t = token(rng);
  }
  return out;
}

// Words to ids, the same id for the same word across calls.
Seq words(const std::string& text, std::map<std::string, int64_t>& vocab) {
  Seq out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(vocab.emplace(w, static_cast<int64_t>(vocab.size())).first->second);
  return out;
}

// Largest |a_i − b_i|, printed with its index when above tolerance.
void expect_all_near(const std::vector<double>& got, const std::vector<double>& expected, double tolerance) {
  ASSERT_EQ(got.size(), expected.size());
  double worst = 0;
  size_t worst_index = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(got[i] - expected[i]);
    if (d > worst) {
      worst = d;
      worst_index = i;
    }
  }
  EXPECT_LE(worst, tolerance) << "worst at " << worst_index << ": got " << got[worst_index] << ", expected "
                              << expected[worst_index];
}

template <typename F>
void expect_error(F&& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "no Error thrown; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

// The texts of the NLTK bleu_score doctests and fast-bleu's README.
const char* kRef1 = "It is a guide to action that ensures that the military will forever heed Party commands";
const char* kRef2 =
    "It is the guiding principle which guarantees the military forces always being under the command of the Party";
const char* kRef3 = "It is the practical guide for the army always to heed the directions of the party";
const char* kHyp1 = "It is a guide to action which ensures that the military always obeys the commands of the party";
const char* kHyp2 = "he read the book because he was interested in world history";

// ---- distinct-n ----

TEST(DistinctN, HandExample) {
  // A = 1 1 2, B = 1 2 3, C = 2 2.
  // Unigrams: 8 tokens, distinct {1,2,3} -> 3/8.
  //   Per generation: A 2/3, B 3/3, C 1/2 -> mean (4/6 + 6/6 + 3/6)/3 = 13/18.
  // Bigrams: A (1,1)(1,2), B (1,2)(2,3), C (2,2): 5 in all, distinct 4 -> 4/5;
  //   per generation every bigram is distinct -> mean 1.
  // Trigrams: A (1,1,2), B (1,2,3) -> 2/2; C has none and is left out of the mean.
  // 4-grams: none at all -> NaN.
  const Seqs g = {{1, 1, 2}, {1, 2, 3}, {2, 2}};
  const auto d1 = distinct_n(g, 1);
  EXPECT_EQ(d1.distinct, 3);
  EXPECT_EQ(d1.ngrams, 8);
  EXPECT_DOUBLE_EQ(d1.corpus, 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(d1.mean_per_generation, 13.0 / 18.0);
  const auto d2 = distinct_n(g, 2);
  EXPECT_EQ(d2.distinct, 4);
  EXPECT_EQ(d2.ngrams, 5);
  EXPECT_DOUBLE_EQ(d2.corpus, 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(d2.mean_per_generation, 1.0);
  const auto d3 = distinct_n(g, 3);
  EXPECT_EQ(d3.ngrams, 2);
  EXPECT_DOUBLE_EQ(d3.corpus, 1.0);
  EXPECT_DOUBLE_EQ(d3.mean_per_generation, 1.0);
  const auto d4 = distinct_n(g, 4);
  EXPECT_EQ(d4.ngrams, 0);
  EXPECT_TRUE(std::isnan(d4.corpus));
  EXPECT_TRUE(std::isnan(d4.mean_per_generation));
}

// Orders 1..9, against std::map counts, over tokens drawn from 10,000 ids
// (the few hundred distinct ones present get 10-bit ranks: n <= 6 packs into
// 64-bit keys, n >= 7 takes the hashed-span path) and from 3 ids (2 bits:
// packed up to n = 32).
TEST(DistinctN, MatchesDirectCountsOnBothKeyPaths) {
  std::mt19937_64 rng(11);
  for (int64_t vocab : {int64_t{3}, int64_t{10000}}) {
    for (int repeat = 0; repeat < 3; ++repeat) {
      Seqs g = random_generations(rng, 40, vocab, 30);
      // Repeated material so that long n-grams recur across generations.
      g.push_back(g[0]);
      g.push_back(Seq(g[1].begin(), g[1].begin() + std::min<size_t>(g[1].size(), 12)));
      for (int64_t n = 1; n <= 9; ++n) {
        SCOPED_TRACE("vocab " + std::to_string(vocab) + ", n " + std::to_string(n));
        const auto expected = direct_stats(g, n);
        const auto d = distinct_n(g, n);
        EXPECT_EQ(d.distinct, expected.distinct);
        EXPECT_EQ(d.ngrams, expected.total);
        EXPECT_DOUBLE_EQ(d.corpus, double(expected.distinct) / double(expected.total));
        EXPECT_NEAR(d.mean_per_generation, expected.mean_per_generation, 1e-12);
        const auto e = ngram_entropy(g, n);
        EXPECT_EQ(e.distinct, expected.distinct);
        EXPECT_EQ(e.ngrams, expected.total);
        EXPECT_NEAR(e.nats, expected.nats, 1e-12);
      }
    }
  }
}

// 33-grams over a 3-token vocabulary (66 bits) take the hashed-span path too.
TEST(DistinctN, LongOrdersOverSmallVocabulary) {
  std::mt19937_64 rng(5);
  Seqs g = random_generations(rng, 20, 3, 60);
  g.push_back(g[3]);
  for (int64_t n : {32, 33, 40}) {
    const auto expected = direct_stats(g, n);
    const auto d = distinct_n(g, n);
    EXPECT_EQ(d.distinct, expected.distinct) << "n " << n;
    EXPECT_EQ(d.ngrams, expected.total) << "n " << n;
  }
}

// ---- n-gram entropy ----

TEST(NgramEntropy, KnownDistributions) {
  // Unigrams of 1 1 2 3: p = (1/2, 1/4, 1/4), H = 1.5 bits = 1.5 ln 2 nats.
  const auto e1 = ngram_entropy({{1, 1, 2, 3}}, 1);
  EXPECT_NEAR(e1.nats, 1.5 * std::log(2.0), 1e-15);
  EXPECT_EQ(e1.distinct, 3);
  // Bigrams of 1 1 2 3: (1,1)(1,2)(2,3), uniform over 3 -> ln 3.
  EXPECT_NEAR(ngram_entropy({{1, 1, 2, 3}}, 2).nats, std::log(3.0), 1e-15);
  // Eight distinct tokens spread over two generations, uniform -> ln 8 (3 bits).
  EXPECT_NEAR(ngram_entropy({{0, 1, 2, 3}, {4, 5, 6, 7}}, 1).nats, std::log(8.0), 1e-15);
  // One repeated token: a point mass, 0.
  EXPECT_EQ(ngram_entropy({{9, 9, 9}, {9}}, 1).nats, 0.0);
  // No bigram anywhere: undefined.
  EXPECT_TRUE(std::isnan(ngram_entropy({{1}, {}}, 2).nats));
}

// ---- BLEU ----

TEST(Bleu, IdenticalPairIsOne) {
  // Every precision 1, equal lengths -> BP = 1 -> exactly 1.
  const Seq s = {4, 8, 15, 16, 23, 42};
  EXPECT_EQ(sentence_bleu(s, {s}), 1.0);
}

TEST(Bleu, DisjointPairIsZero) {
  // No unigram matches: NLTK returns 0 before smoothing, so exactly 0.
  EXPECT_EQ(sentence_bleu({1, 2, 3, 4}, {{5, 6, 7, 8}}), 0.0);
  // An empty hypothesis, likewise.
  EXPECT_EQ(sentence_bleu({}, {{5, 6, 7, 8}}), 0.0);
}

TEST(Bleu, SmoothedPartialOverlap) {
  // Hypothesis 1 2 3 4, reference 1 2 5 6:
  //   p1 = 2/4, p2 = 1/3 ((1,2)), p3 = 0/2 -> 0.1/2, p4 = 0/1 -> 0.1/1 (method1);
  //   lengths 4 and 4 -> BP = exp(1 − 4/4) = 1;
  //   BLEU = (1/2 · 1/3 · 1/20 · 1/10)^(1/4) = (1/1200)^(1/4) = 0.16990442448471227.
  EXPECT_NEAR(sentence_bleu({1, 2, 3, 4}, {{1, 2, 5, 6}}), 0.16990442448471227, 1e-15);
}

TEST(Bleu, ClipsByLargestCountInOneReference) {
  // NLTK's "the the the" example: "the" appears twice in reference 1 and
  // once in reference 2, so 7 × "the" is clipped at 2 (not 3): p1 = 2/7.
  // Lengths: hypothesis 7, references 6 and 7 -> closest 7 -> BP 1.
  std::map<std::string, int64_t> v;
  const Seq hyp = words("the the the the the the the", v);
  const Seqs refs = {words("the cat is on the mat", v), words("there is a cat on the mat", v)};
  EXPECT_DOUBLE_EQ(sentence_bleu(hyp, refs, 1), 2.0 / 7.0);
}

TEST(Bleu, BrevityPenaltyUsesClosestReferenceShorterOnTies) {
  // Hypothesis of 12 against references of 13 and 11 (equally close): the
  // shorter, 11, is used, and 12 > 11 gives BP = 1 (NLTK doctest). Against 13
  // and 2: 13, BP = exp(1 − 13/12) = 0.9200...
  const Seq hyp(12, 1);
  EXPECT_EQ(sentence_bleu(hyp, {Seq(13, 1), Seq(11, 1)}, 1), 1.0);
  EXPECT_EQ(sentence_bleu(hyp, {Seq(11, 1), Seq(13, 1)}, 1), 1.0);
  EXPECT_DOUBLE_EQ(sentence_bleu(hyp, {Seq(13, 1), Seq(2, 1)}, 1), std::exp(1.0 - 13.0 / 12.0));
  // mteval-v13a example from the same doctest: 7 against 11 and 8 -> 0.8668...
  EXPECT_NEAR(sentence_bleu(Seq(7, 1), {Seq(11, 1), Seq(8, 1)}, 1), std::exp(1.0 - 8.0 / 7.0), 1e-15);
  EXPECT_GE(sentence_bleu(Seq(7, 1), {Seq(11, 1), Seq(8, 1)}, 1), 0.8668);
}

// nltk is not installed here, so these are values published by others, not
// regenerated: the NLTK bleu_score.py doctests (shown there truncated with
// "...", checked here to their printed digits) and the fast-bleu README
// (Danial-Alh/fast-bleu; full precision, NLTK's definition with method1).
TEST(Bleu, PublishedNltkAndFastBleuValues) {
  std::map<std::string, int64_t> v;
  const Seq ref1 = words(kRef1, v), ref2 = words(kRef2, v), ref3 = words(kRef3, v);
  const Seq hyp1 = words(kHyp1, v), hyp2 = words(kHyp2, v);
  // NLTK: sentence_bleu([reference1, reference2, reference3], hypothesis1) -> 0.5045...
  // (every precision is non-zero, so smoothing does not change it).
  const double b = sentence_bleu(hyp1, {ref1, ref2, ref3});
  EXPECT_GE(b, 0.5045);
  EXPECT_LT(b, 0.5046);
  // NLTK SmoothingFunction doctest: sentence_bleu([reference1], hypothesis1,
  // smoothing_function=chencherry.method1) -> 0.4118...
  const double b1 = sentence_bleu(hyp1, {ref1});
  EXPECT_GE(b1, 0.4118);
  EXPECT_LT(b1, 0.4119);
  // fast-bleu README, BLEU(list_of_references=[ref1, ref2, ref3]):
  //   bigram  [0.7453559924999299, 0.0191380231127159]
  //   trigram [0.6240726901657495, 0.013720869575946234]
  // fast-bleu keeps its weights as C++ float: 1/2 is exact, but its 1/3 is
  // 0.3333333432674408, so its trigram scores are BP·exp(w_f·S) instead of
  // NLTK's BP·exp(S/3) (S = Σ ln p_m), about 1e-8 off. Undoing that exponent
  // recovers NLTK's value to 1e-12.
  const double third_as_float = static_cast<double>(static_cast<float>(1.0 / 3.0));
  auto nltk_from_fast_bleu_trigram = [&](double published, double bp) {
    return bp * std::pow(published / bp, (1.0 / 3.0) / third_as_float);
  };
  const double bp_hyp2 = std::exp(1.0 - 16.0 / 11.0);  // 11 tokens, closest reference 16
  EXPECT_NEAR(sentence_bleu(hyp1, {ref1, ref2, ref3}, 2), 0.7453559924999299, 1e-12);
  EXPECT_NEAR(sentence_bleu(hyp2, {ref1, ref2, ref3}, 2), 0.0191380231127159, 1e-12);
  EXPECT_NEAR(sentence_bleu(hyp1, {ref1, ref2, ref3}, 3), nltk_from_fast_bleu_trigram(0.6240726901657495, 1.0), 1e-12);
  EXPECT_NEAR(sentence_bleu(hyp2, {ref1, ref2, ref3}, 3), nltk_from_fast_bleu_trigram(0.013720869575946234, bp_hyp2),
              1e-12);
  // fast-bleu README, SelfBLEU([ref1, ref2, ref3]):
  //   bigram  [0.25819888974716115, 0.3615507630310936, 0.37080992435478316]
  //   trigram [0.07808966062765045, 0.20140620205719248, 0.21415334758254043]
  // (BP = 1 for all three: lengths 16, 18, 16). By hand for ref1 at bigrams:
  // references ref2 (18 tokens) and ref3 (16) -> closest 16 -> BP 1; unigrams
  // It is guide to the military heed Party match: 8/16; bigrams "It is",
  // "the military": 2/15; BLEU-2 = sqrt(1/15).
  const Seqs refs = {ref1, ref2, ref3};
  expect_all_near(self_bleu_scores(refs, 2), {0.25819888974716115, 0.3615507630310936, 0.37080992435478316}, 1e-12);
  expect_all_near(self_bleu_scores(refs, 3),
                  {nltk_from_fast_bleu_trigram(0.07808966062765045, 1.0),
                   nltk_from_fast_bleu_trigram(0.20140620205719248, 1.0),
                   nltk_from_fast_bleu_trigram(0.21415334758254043, 1.0)},
                  1e-12);
  EXPECT_NEAR(self_bleu_scores(refs, 2)[0], std::sqrt(1.0 / 15.0), 1e-15);
}

TEST(Bleu, MatchesTranscribedNltkOnRandomData) {
  std::mt19937_64 rng(3);
  std::vector<double> got, expected;
  for (int trial = 0; trial < 300; ++trial) {
    const Seqs refs = random_generations(rng, 1 + trial % 4, 6, 12);
    const Seq hyp = random_generations(rng, 1, 6, 12)[0];
    const int64_t max_n = 1 + trial % 5;
    got.push_back(sentence_bleu(hyp, refs, max_n));
    expected.push_back(nltk_sentence_bleu(refs, hyp, max_n));
  }
  expect_all_near(got, expected, 1e-12);
}

// ---- self-BLEU ----

TEST(SelfBleu, HandWorkedExample) {
  // G1 = 1 2 3 4, G2 = 1 2 3 5, G3 = 2 3 4; BLEU-4, method1 (ε = 0.1).
  // G1 against {G2, G3}: unigrams 1 2 3 (G2) and 4 (G3) -> 4/4; bigrams (1,2)
  //   (2,3) (G2), (3,4) (G3) -> 3/3; trigrams (1,2,3) (G2), (2,3,4) (G3) -> 2/2;
  //   4-gram (1,2,3,4) in neither -> 0/1 -> 0.1. Lengths 4 vs {4, 3} -> 4,
  //   BP 1. BLEU = 0.1^(1/4) = 0.5623413251903491.
  // G2 against {G1, G3}: 1 2 3 match, 5 not -> 3/4; (1,2) (2,3) -> 2/3;
  //   (1,2,3) -> 1/2; 4-gram -> 0.1. BP 1. BLEU = (3/4·2/3·1/2·0.1)^(1/4)
  //   = 0.025^(1/4) = 0.3976353643835253.
  // G3 against {G1, G2}: 3/3, 2/2, 1/1 (all in G1); no 4-gram: 0/max(1,0)
  //   -> 0.1. Lengths 3 vs {4, 4} -> BP = exp(1 − 4/3) = exp(−1/3).
  //   BLEU = exp(−1/3)·0.1^(1/4) = 0.40293516672844226.
  // Mean: 0.4543039521007722.
  const Seqs g = {{1, 2, 3, 4}, {1, 2, 3, 5}, {2, 3, 4}};
  expect_all_near(self_bleu_scores(g), {0.5623413251903491, 0.3976353643835253, 0.40293516672844226}, 1e-15);
  EXPECT_NEAR(self_bleu(g), 0.4543039521007722, 1e-15);
}

TEST(SelfBleu, ClipsByLargestCountAmongOthersNotTheirSum) {
  // G1 = 1 1, G2 = 1, G3 = 1; BLEU-1. For G1 the others hold "1" once each:
  // the clip is max(1, 1) = 1, not 1 + 1 = 2 -> p1 = 1/2; lengths 2 vs {1, 1}
  // -> BP 1 -> 0.5. For G2 the others are G1 (count 2) and G3 (1): clip 2,
  // p1 = 1/1; closest length to 1 among {2, 1} is 1 -> BP 1 -> 1. G3 alike.
  // G1 holds the largest count of "1": the others see the second largest.
  const Seqs g = {{1, 1}, {1}, {1}};
  expect_all_near(self_bleu_scores(g, 1), {0.5, 1.0, 1.0}, 0.0);
}

TEST(SelfBleu, FastEqualsNaiveOnRandomData) {
  std::mt19937_64 rng(7);
  struct Case {
    int count;
    int64_t vocab;
    int max_length;
    int64_t max_n;
  };
  const std::vector<Case> cases = {{2, 4, 10, 4},  {3, 3, 8, 4},     {25, 3, 12, 4}, {40, 8, 20, 4},
                                   {30, 50, 16, 2}, {30, 5, 16, 1},   {20, 4, 6, 7},  {35, 10000, 24, 4},
                                   {15, 2, 30, 5},  {20, 3, 5, 100},
                                   {20, 10000, 40, 9}};  // ~400 distinct ids, 9-bit ranks: orders 8, 9 hashed
  for (const Case& c : cases) {
    Seqs g = random_generations(rng, c.count, c.vocab, c.max_length);
    // Exact duplicates tie for the largest count; an empty generation scores 0.
    g.push_back(g[0]);
    g.push_back(g[1]);
    g.push_back({});
    SCOPED_TRACE("count " + std::to_string(g.size()) + ", vocab " + std::to_string(c.vocab) + ", max_n " +
                 std::to_string(c.max_n));
    const auto expected = naive_self_bleu_scores(g, c.max_n);
    expect_all_near(self_bleu_scores(g, c.max_n), expected, 1e-12);
    double mean = 0;
    for (double s : expected) mean += s;
    EXPECT_NEAR(self_bleu(g, c.max_n), mean / double(expected.size()), 1e-12);
  }
}

// ---- Invariances ----

TEST(Invariance, PermutingGenerationsChangesNothing) {
  std::mt19937_64 rng(19);
  const Seqs g = random_generations(rng, 60, 20, 25);
  Seqs shuffled = g;
  std::vector<size_t> order(g.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i = 0; i < order.size(); ++i) shuffled[i] = g[order[i]];

  const DiversityOptions options{{1, 2, 3}, 4, 4};
  const auto a = diversity_report(g, options), b = diversity_report(shuffled, options);
  for (size_t k = 0; k < a.distinct.size(); ++k) {
    EXPECT_EQ(a.distinct[k].distinct, b.distinct[k].distinct);
    EXPECT_EQ(a.distinct[k].corpus, b.distinct[k].corpus);
    EXPECT_NEAR(a.distinct[k].mean_per_generation, b.distinct[k].mean_per_generation, 1e-12);
  }
  for (size_t k = 0; k < a.entropy.size(); ++k) EXPECT_NEAR(a.entropy[k].nats, b.entropy[k].nats, 1e-12);
  EXPECT_NEAR(a.self_bleu, b.self_bleu, 1e-12);
  // Per generation, self-BLEU follows its generation exactly.
  const auto sa = self_bleu_scores(g), sb = self_bleu_scores(shuffled);
  std::vector<double> permuted(sa.size());
  for (size_t i = 0; i < order.size(); ++i) permuted[i] = sa[order[i]];
  expect_all_near(sb, permuted, 0.0);
}

TEST(Invariance, RelabellingTokenIdsChangesNothing) {
  // Ids are opaque symbols: a bijection onto negative and 60-bit values
  // gives identical results.
  std::mt19937_64 rng(23);
  const Seqs g = random_generations(rng, 50, 30, 20);
  Seqs relabelled = g;
  for (Seq& s : relabelled) {
    for (int64_t& t : s) t = (t % 2 == 0 ? -1 : 1) * ((int64_t{1} << 60) - 977 * t);
  }
  const auto a = diversity_report(g), b = diversity_report(relabelled);
  EXPECT_EQ(to_json(a).dump(), to_json(b).dump());
}

TEST(Invariance, DuplicatingTheWholeSet) {
  // Concatenating the set with itself keeps the distinct n-grams, the
  // per-generation distinct-n and the n-gram distribution (so the entropy),
  // but doubles the total: corpus distinct-n halves. Self-BLEU is not
  // invariant: each generation now has its copy among the references, so
  // every generation of at least 4 tokens scores exactly 1 at BLEU-4.
  std::mt19937_64 rng(29);
  Seqs g = random_generations(rng, 30, 12, 20);
  for (Seq& s : g) s.insert(s.end(), {1, 2, 3, 4});  // every generation has >= 4 tokens
  Seqs doubled = g;
  doubled.insert(doubled.end(), g.begin(), g.end());
  for (int64_t n = 1; n <= 4; ++n) {
    const auto a = distinct_n(g, n), b = distinct_n(doubled, n);
    EXPECT_EQ(b.distinct, a.distinct);
    EXPECT_EQ(b.ngrams, 2 * a.ngrams);
    EXPECT_DOUBLE_EQ(b.corpus, a.corpus / 2);
    EXPECT_NEAR(b.mean_per_generation, a.mean_per_generation, 1e-12);
    EXPECT_NEAR(ngram_entropy(doubled, n).nats, ngram_entropy(g, n).nats, 1e-12);
  }
  for (double s : self_bleu_scores(doubled)) EXPECT_EQ(s, 1.0);
}

// ---- Report ----

TEST(DiversityReport, AgreesWithTheFunctionsAndWritesJson) {
  std::mt19937_64 rng(31);
  const Seqs g = random_generations(rng, 20, 15, 10);
  DiversityOptions options;
  options.distinct_orders = {1, 2, 50};  // 50: longer than any generation -> null
  const auto report = diversity_report(g, options);
  EXPECT_EQ(report.generations, 20);
  int64_t tokens = 0;
  for (const Seq& s : g) tokens += static_cast<int64_t>(s.size());
  EXPECT_EQ(report.tokens, tokens);
  ASSERT_EQ(report.distinct.size(), 3u);
  EXPECT_EQ(report.distinct[1].corpus, distinct_n(g, 2).corpus);
  ASSERT_EQ(report.entropy.size(), 4u);
  EXPECT_EQ(report.entropy[3].nats, ngram_entropy(g, 4).nats);
  EXPECT_EQ(report.self_bleu, self_bleu(g, 4));

  const nlohmann::json j = to_json(report);
  EXPECT_EQ(j["generations"], 20);
  EXPECT_EQ(j["distinct"][0]["n"], 1);
  EXPECT_EQ(j["distinct"][1]["corpus"].get<double>(), report.distinct[1].corpus);
  EXPECT_TRUE(j["distinct"][2]["corpus"].is_null());
  EXPECT_TRUE(j["distinct"][2]["mean_per_generation"].is_null());
  EXPECT_NEAR(j["entropy"][0]["bits"].get<double>(), report.entropy[0].nats / std::log(2.0), 1e-15);
  EXPECT_EQ(j["self_bleu"]["max_n"], 4);
  EXPECT_EQ(j["self_bleu"]["smoothing"], "nltk-method1-epsilon-0.1");
  EXPECT_EQ(j["self_bleu"]["mean"].get<double>(), report.self_bleu);
}

TEST(DiversityErrors, EachBadInputNamesItsArgument) {
  const Seqs two = {{1, 2}, {3}};
  expect_error([] { distinct_n({}, 1); }, "generations: empty set: there is nothing to measure");
  expect_error([] { ngram_entropy({}, 2); }, "generations: empty set: there is nothing to measure");
  expect_error([&] { distinct_n(two, 0); }, "n: n-gram order must be at least 1, got 0");
  expect_error([&] { ngram_entropy(two, -3); }, "n: n-gram order must be at least 1, got -3");
  expect_error([] { self_bleu({}); }, "generations: empty set: there is nothing to measure");
  expect_error([] { self_bleu({{1, 2, 3}}); }, "generations: self-BLEU needs at least two generations, got 1");
  expect_error([] { self_bleu_scores({{1, 2, 3}}); }, "generations: self-BLEU needs at least two generations, got 1");
  expect_error([&] { self_bleu(two, 0); }, "max_n: n-gram order must be at least 1, got 0");
  expect_error([] { sentence_bleu({1, 2}, {}); }, "references: empty set: BLEU needs at least one reference");
  expect_error([] { sentence_bleu({1, 2}, {{1, 2}}, 0); }, "max_n: n-gram order must be at least 1, got 0");
  expect_error([] { diversity_report({}); }, "generations: empty set: there is nothing to measure");
  expect_error([] { diversity_report({{1, 2}}); }, "generations: self-BLEU needs at least two generations, got 1");
  expect_error([&] { diversity_report(two, DiversityOptions{{1, 0}, 4, 4}); },
               "distinct_orders: n-gram order must be at least 1, got 0");
  expect_error([&] { diversity_report(two, DiversityOptions{{1, 2}, 0, 4}); },
               "entropy_max_n: n-gram order must be at least 1, got 0");
  expect_error([&] { diversity_report(two, DiversityOptions{{1, 2}, 4, -1}); },
               "bleu_max_n: n-gram order must be at least 1, got -1");
}

}  // namespace
}  // namespace superpose
