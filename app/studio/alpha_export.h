// The α curve as a publication figure, through the analysis figure exporter.
#pragma once

#include <filesystem>
#include <functional>
#include <vector>

#include "analysis/figure.h"
#include "app/studio/worker.h"

namespace superpose::studio {

// Learned α and α in force per layer (2D: mean over dimensions), one line
// each; 2D adds a layer × dimension heat map of the α in force. Titles say
// "non-causal" when the superposition reads the next token.
Figure alpha_figure(const SuperpositionInfo& info);

// Writes <base>.pdf, <base>.png and <base>.csv (any extension of `base` is
// replaced) and returns the three paths. Throws Error naming the file.
std::vector<std::filesystem::path> export_alpha_figure(const SuperpositionInfo& info,
                                                       const std::filesystem::path& base);

// Writes any figure as <base>.pdf, <base>.png and <base>.csv (an extension
// of `base` is replaced) and returns the three paths. Throws Error naming the
// file, or Error("export", ...) for an empty name.
std::vector<std::filesystem::path> export_figure(const Figure& figure, const std::filesystem::path& base);

// Runs an export and reports it in the status line: "Exported <pdf>, .png
// and .csv", or the error in red. Returns whether it worked.
struct AppState;
bool report_export(AppState& state, const std::function<std::vector<std::filesystem::path>()>& write);

// Mean over dimensions: L values from L or L·C (row-major).
std::vector<float> alpha_per_layer(const std::vector<float>& alpha, const std::vector<int64_t>& shape);

}  // namespace superpose::studio
