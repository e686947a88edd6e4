// RUN_DIR/report.json (the schema is in report/report_html.h) built from
// the run's state: one entry per step (done, or planned and not run yet),
// the input model and the summary (base against final model).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/openba/config.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/pipeline_steps.h"
#include "pipeline/run_state.h"

namespace openba {

// The report.json entry of a step that just finished.
nlohmann::ordered_json done_step_entry(const PipelineStep& step, const std::string& input, const StepOutcome& outcome,
                                       double seconds, const std::string& run_dir, int64_t input_parameters);

// Writes RUN_DIR/report.json and report.html; returns the report.
nlohmann::ordered_json write_run_report(const PipelineConfig& pipeline, const std::vector<ModelConfig>& shapes,
                                        const RunState& state, const std::string& run_dir,
                                        const nlohmann::ordered_json& heldout);

}  // namespace openba
