// The human-readable pipeline report: RUN_DIR/report.html (one
// self-contained page: inline CSS and SVG charts, no scripts, no network) and
// the plain-text table printed at the end of a run.
//
// RUN_DIR/report.json, which both read ("openba-pipeline-report/1"):
//   pipeline: {name, description, file, sha256}, run_dir,
//   input:    {dir, architecture, parameters, heldout_loss|null},
//   heldout:  {data, examples, per_denoiser, seed, encoder_tokens, decoder_tokens} | null,
//   steps: [{index (1-based), id ("03-layer"), name, kind (layer|neuron|vocab|
//            pretrain|eval), status ("done"|"not run"), seconds|null, input,
//            output, architecture, encoder_layers, decoder_layers, d_model,
//            num_heads, ffn_hidden, vocab_size, parameters,
//            compression_ratio (input params / this step's), removed_fraction,
//            heldout_before|null, heldout_after|null, heldout_after_by_denoiser,
//            summary, report (the step's report.json, relative to run_dir),
//            baseline?: {kind ("random": a neuron step's random selection;
//                        "ul2": a pretrain step trained without distillation),
//                        score, heldout_after, dir, report, metrics?, tokens?},
//            train?: {steps, tokens, metrics (metrics.jsonl, relative), launcher,
//                     distill?: {teacher, teacher_ref, alpha, temperature, top_k}}}],
//   summary: {base_step, base_parameters, final_parameters, compression_ratio,
//             removed_fraction, base_heldout_loss, final_heldout_loss,
//             wall_time_s, steps_done, steps_total},
//   baselines: null | {scratch: {compared_step, compared_loss, architecture,
//             parameters, recovery_steps, recovery_examples, recovery_tokens,
//             steps, global_batch, examples, lr_sweep, min_lr_ratio, seed, extend,
//             sweep: [{lr, status, steps, examples, tokens, heldout_loss, dir,
//                      metrics, seconds}], best (a sweep entry) | null,
//             extended (the same) | null, lineage_curve / scratch_curve /
//             extended_curve: [[tokens, held-out loss], ...], margin (scratch's
//             best loss - compressed; > 0: compression wins) | null,
//             tokens_to_match | null, tokens_to_match_ratio | null,
//             searched_tokens | null, best_at_sweep_edge (the best lr is the
//             sweep's smallest or largest) | null, verdict}}
// A step that has not run may have null model fields; it is shown greyed.
// From the step reports the page reads: layer "scores", "removed", "input";
// neuron "scores", "kept"; vocab "tokenizer" (with "coverage_curve"); and
// each pretrain step's metrics.jsonl ("loss" and "eval_loss" lines).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace openba {

// The page for `report` (the content of RUN_DIR/report.json). Referenced
// files are read relative to `run_dir`; a missing or malformed one is an
// openba::Error naming it, as is a malformed field of the report itself.
std::string render_report_html(const nlohmann::ordered_json& report, const std::string& run_dir);

// The final text table: one row per step (shape, parameters, cumulative
// compression, held-out loss before -> after, time), then the base-against-
// final summary lines.
std::string pipeline_table(const nlohmann::ordered_json& report);

}  // namespace openba
