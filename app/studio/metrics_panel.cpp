// Metrics panel: the evaluation's table per model × domain, the per-layer L2
// distances of one model's states to the experts' per domain, and the
// perplexity and L2 figures' export.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <imgui.h>

#include "analysis/paper_figures.h"
#include "app/studio/alpha_export.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

EvalReport to_report(const EvalResults& results) {
  EvalReport report;
  report.causal = results.causal;
  report.seq_len = results.seq_len;
  report.missing_domains = results.missing_domains;
  for (const EvalResultRow& r : results.rows) {
    EvalRow row;
    row.model = r.model;
    row.domain = r.domain;
    row.ppl = r.ppl, row.ppl_lo = r.ppl_lo, row.ppl_hi = r.ppl_hi;
    row.acc = r.acc, row.jsd = r.jsd, row.cosine = r.cosine, row.mse = r.mse;
    row.tokens = r.tokens, row.documents = r.documents;
    row.causal = r.causal;
    report.rows.push_back(std::move(row));
  }
  for (const EvalLayerResult& r : results.layers) {
    EvalLayerRow row;
    row.model = r.model;
    row.domain = r.domain;
    row.layer = r.layer;
    row.l2_base = r.l2_base, row.l2_fine = r.l2_fine, row.l2_base_fine = r.l2_base_fine;
    row.causal = r.causal;
    report.layers.push_back(std::move(row));
  }
  return report;
}

const EvalResults& finished_results(const Snapshot& snapshot) {
  if (!snapshot.eval || !snapshot.eval->finished || snapshot.eval->rows.empty()) {
    throw std::runtime_error("no evaluation to export yet: run one first");
  }
  return *snapshot.eval;
}

}  // namespace

bool export_perplexity(AppState& state, const Snapshot& snapshot) {
  return report_export(state, [&] {
    const EvalResults& results = finished_results(snapshot);
    Figure figure = perplexity_figure(to_report(results));
    if (!results.causal) mark_non_causal(figure);
    return export_figure(figure, state.metrics.export_path + "-perplexity");
  });
}

bool export_l2_distances(AppState& state, const Snapshot& snapshot) {
  return report_export(state, [&] {
    const EvalResults& results = finished_results(snapshot);
    Figure figure = l2_distance_figure(to_report(results), state.metrics.l2_model);
    if (!results.causal) mark_non_causal(figure);
    return export_figure(figure, state.metrics.export_path + "-l2");
  });
}

void MetricsPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.metrics) return;
  if (!ImGui::Begin("Metrics", &state.panels.metrics)) {
    ImGui::End();
    return;
  }
  MetricsUi& ui = state.metrics;
  int docs = static_cast<int>(ui.request.max_documents);
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputInt("docs/domain##metrics", &docs)) ui.request.max_documents = std::max(0, docs);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(-80.0f);
  input_text("models##metrics", ui.request.models);
  ImGui::SetNextItemWidth(-160.0f);
  input_text("data##metrics", ui.request.data);
  ImGui::SameLine();
  const bool running = snapshot.eval && snapshot.eval->running;
  ImGui::BeginDisabled(!snapshot.superposition || running);
  if (ImGui::Button("Evaluate")) worker.run_eval(ui.request);
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::BeginDisabled(!running);
  if (ImGui::Button("Cancel##metrics")) worker.cancel_eval();
  ImGui::EndDisabled();
  if (running) {
    // The evaluation's own progress: the job line may show a generation running between its batches.
    const EvalResults& e = *snapshot.eval;
    const float fraction = e.batches > 0 ? static_cast<float>(e.batches_done) / static_cast<float>(e.batches) : 0.0f;
    const std::string label = "evaluating: batch " + std::to_string(e.batches_done) + " of " + std::to_string(e.batches);
    ImGui::ProgressBar(fraction, ImVec2(-1.0f, 0.0f), label.c_str());
  }
  if (!snapshot.eval) {
    ImGui::TextDisabled("Evaluate scores every model on the data (perplexity, accuracy, JSD, cosine, MSE).");
    ImGui::End();
    return;
  }
  const EvalResults& results = *snapshot.eval;
  if (results.cancelled) ImGui::TextDisabled("cancelled");
  if (!results.finished) {
    ImGui::End();
    return;
  }
  ImGui::Text("%zu rows, windows of %lld tokens", results.rows.size(), static_cast<long long>(results.seq_len));
  if (!results.causal) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.6f, 0.2f, 1.0f), "non-causal: the superposition's scores read the next token");
  }
  for (const auto& domain : results.missing_domains) ImGui::TextDisabled("no target token in domain %s", domain.c_str());

  ImGui::SetNextItemWidth(140.0f);
  input_text("##metrics_export", ui.export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export perplexity")) export_perplexity(state, snapshot);
  ImGui::SameLine();
  if (ImGui::Button("Export L2")) export_l2_distances(state, snapshot);

  const float table_height = std::min(ImGui::GetContentRegionAvail().y * 0.55f,
                                      ImGui::GetTextLineHeightWithSpacing() * (results.rows.size() + 2.0f));
  const ImGuiTableFlags flags = ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY |
                                ImGuiTableFlags_SizingFixedFit;
  if (ImGui::BeginTable("##eval_rows", 8, flags, ImVec2(0.0f, table_height))) {
    ImGui::TableSetupScrollFreeze(0, 1);
    for (const char* name : {"model", "domain", "ppl [95% CI]", "acc", "JSD", "cosine", "MSE", "tokens"}) {
      ImGui::TableSetupColumn(name);
    }
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < results.rows.size(); ++i) {
      const EvalResultRow& r = results.rows[i];
      ImGui::PushID(static_cast<int>(i));
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted((r.model + (r.causal ? "" : " *")).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(r.domain.c_str());
      ImGui::TableNextColumn();
      if (std::isnan(r.ppl_lo)) {
        ImGui::Text("%.3f [n/a]", r.ppl);
      } else {
        ImGui::Text("%.3f [%.3f, %.3f]", r.ppl, r.ppl_lo, r.ppl_hi);
      }
      ImGui::TableNextColumn();
      ImGui::Text("%.4f", r.acc);
      ImGui::TableNextColumn();
      ImGui::Text("%.4f", r.jsd);
      ImGui::TableNextColumn();
      ImGui::Text("%.4f", r.cosine);
      ImGui::TableNextColumn();
      ImGui::Text("%.4g", r.mse);
      ImGui::TableNextColumn();
      ImGui::Text("%lld", static_cast<long long>(r.tokens));
      ImGui::PopID();
    }
    ImGui::EndTable();
  }
  if (!results.causal) ImGui::TextDisabled("* non-causal");

  // Per-layer L2 distances of one model, one small plot per domain and distance.
  std::vector<std::string> models, domains;
  for (const EvalLayerResult& r : results.layers) {
    if (std::find(models.begin(), models.end(), r.model) == models.end()) models.push_back(r.model);
    if (std::find(domains.begin(), domains.end(), r.domain) == domains.end()) domains.push_back(r.domain);
  }
  ImGui::SetNextItemWidth(180.0f);
  if (ImGui::BeginCombo("L2 of", ui.l2_model.c_str())) {
    for (const auto& name : models) {
      if (ImGui::Selectable(name.c_str(), name == ui.l2_model)) ui.l2_model = name;
    }
    ImGui::EndCombo();
  }
  const float plot_width = std::max(80.0f, (ImGui::GetContentRegionAvail().x - 20.0f) / 3.0f);
  for (size_t d = 0; d < domains.size(); ++d) {
    std::vector<float> to_base, to_fine, experts;
    for (const EvalLayerResult& r : results.layers) {
      if (r.model != ui.l2_model || r.domain != domains[d]) continue;
      to_base.push_back(static_cast<float>(r.l2_base));
      to_fine.push_back(static_cast<float>(r.l2_fine));
      experts.push_back(static_cast<float>(r.l2_base_fine));
    }
    if (to_base.empty()) continue;
    ImGui::PushID(static_cast<int>(d));
    ImGui::Text("%s, layers 0..%zu:", domains[d].c_str(), to_base.size() - 1);
    float hi = 0.0f;
    for (const auto* v : {&to_base, &to_fine, &experts}) {
      for (float x : *v) hi = std::max(hi, x);
    }
    const ImVec2 plot(plot_width, 60.0f);
    ImGui::PlotLines("##to_base", to_base.data(), static_cast<int>(to_base.size()), 0, "to base", 0.0f, hi, plot);
    ImGui::SameLine();
    ImGui::PlotLines("##to_fine", to_fine.data(), static_cast<int>(to_fine.size()), 0, "to fine", 0.0f, hi, plot);
    ImGui::SameLine();
    ImGui::PlotLines("##experts", experts.data(), static_cast<int>(experts.size()), 0, "base to fine", 0.0f, hi, plot);
    ImGui::PopID();
  }
  ImGui::End();
}

}  // namespace superpose::studio
