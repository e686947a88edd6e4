#include "report/report_data.h"

#include <cmath>
#include <filesystem>

#include "util/error.h"
#include "util/fs.h"

namespace openba {
namespace {

using ojson = nlohmann::ordered_json;

// Field readers for report.json: absent or null reads as empty; a value of
// the wrong type is an error naming where it is.
std::optional<double> number_at(const ojson& o, const char* key, const std::string& where) {
  if (!o.contains(key) || o[key].is_null()) return std::nullopt;
  if (!o[key].is_number()) throw Error(where + ": '" + key + "' is not a number");
  return o[key].get<double>();
}

std::optional<int64_t> integer_at(const ojson& o, const char* key, const std::string& where) {
  if (!o.contains(key) || o[key].is_null()) return std::nullopt;
  if (!o[key].is_number_integer()) throw Error(where + ": '" + key + "' is not an integer");
  return o[key].get<int64_t>();
}

std::string string_at(const ojson& o, const char* key, const std::string& where, bool required = false) {
  if (!o.contains(key) || o[key].is_null()) {
    if (required) throw Error(where + ": '" + key + "' is missing");
    return "";
  }
  if (!o[key].is_string()) throw Error(where + ": '" + key + "' is not a string");
  return o[key].get<std::string>();
}

// o[key] as an object, or an empty object when absent or null.
const ojson& object_at(const ojson& o, const char* key, const std::string& where) {
  static const ojson empty = ojson::object();
  if (!o.contains(key) || o[key].is_null()) return empty;
  if (!o[key].is_object()) throw Error(where + ": '" + key + "' is not an object");
  return o[key];
}

std::optional<Measured> read_measured(const ojson& o, const char* key, const std::string& where) {
  const ojson& m = object_at(o, key, where);
  if (m.empty()) return std::nullopt;
  const std::string at = where + ": " + key;
  Measured out;
  const ojson& speed = object_at(m, "speed", at);
  if (!speed.empty()) {
    out.encoder_tokens_per_s = number_at(speed, "encoder_tokens_per_s", at + ".speed");
    out.peak_memory_bytes = number_at(speed, "peak_memory_bytes", at + ".speed");
    out.peak_memory_kind = string_at(speed, "peak_memory_kind", at + ".speed");
    if (!speed.contains("decode") || !speed["decode"].is_array()) throw Error(at + ".speed: 'decode' is not a list");
    for (const auto& d : speed["decode"]) {
      const auto batch = integer_at(d, "batch", at + ".speed.decode");
      const auto rate = number_at(d, "tokens_per_s", at + ".speed.decode");
      if (!batch || !rate) throw Error(at + ".speed.decode: an entry without batch or tokens_per_s");
      out.decode_tokens_per_s.push_back({*batch, *rate});
      out.new_tokens = integer_at(d, "new_tokens", at + ".speed.decode");
    }
  }
  if (m.contains("tasks")) {
    if (!m["tasks"].is_array()) throw Error(at + ": 'tasks' is not a list");
    for (const auto& t : m["tasks"]) {
      MeasuredTask task;
      task.file = string_at(t, "file", at + ".tasks", true);
      task.skipped = string_at(t, "skipped", at + ".tasks");
      task.accuracy = number_at(t, "accuracy", at + ".tasks");
      task.accuracy_stderr = number_at(t, "accuracy_stderr", at + ".tasks");
      task.accuracy_mean_token = number_at(t, "accuracy_mean_token", at + ".tasks");
      task.chance = number_at(t, "chance", at + ".tasks");
      task.items = integer_at(t, "items", at + ".tasks");
      out.tasks.push_back(task);
    }
  }
  return out;
}

ReportStep read_step(const ojson& s, const std::string& where) {
  if (!s.is_object()) throw Error(where + ": not an object");
  ReportStep r;
  const auto index = integer_at(s, "index", where);
  if (!index) throw Error(where + ": 'index' is missing");
  r.index = static_cast<int>(*index);
  r.id = string_at(s, "id", where, true);
  const std::string at = where + " (" + r.id + ")";
  r.name = string_at(s, "name", at);
  const std::string kind = string_at(s, "kind", at, true);
  const auto parsed = parse_step_kind(kind);
  if (!parsed) throw Error(at + ": unknown step kind '" + kind + "'");
  r.kind = *parsed;
  r.status = string_at(s, "status", at, true);
  r.seconds = number_at(s, "seconds", at);
  r.architecture = string_at(s, "architecture", at);
  r.encoder_layers = integer_at(s, "encoder_layers", at);
  r.decoder_layers = integer_at(s, "decoder_layers", at);
  r.d_model = integer_at(s, "d_model", at);
  r.num_heads = integer_at(s, "num_heads", at);
  r.ffn_hidden = integer_at(s, "ffn_hidden", at);
  r.vocab_size = integer_at(s, "vocab_size", at);
  r.parameters = number_at(s, "parameters", at);
  r.compression_ratio = number_at(s, "compression_ratio", at);
  r.removed_fraction = number_at(s, "removed_fraction", at);
  r.heldout_before = number_at(s, "heldout_before", at);
  r.heldout_after = number_at(s, "heldout_after", at);
  r.summary = string_at(s, "summary", at);
  r.report = string_at(s, "report", at);
  const ojson& baseline = object_at(s, "baseline", at);
  if (!baseline.empty()) {
    r.baseline_heldout_after = number_at(baseline, "heldout_after", at + ": baseline");
    r.baseline_score = string_at(baseline, "score", at + ": baseline");
    r.baseline_kind = string_at(baseline, "kind", at + ": baseline");
    if (r.baseline_kind.empty()) r.baseline_kind = "random";  // reports written before pretrain baselines
  }
  const ojson& train = object_at(s, "train", at);
  r.metrics = string_at(train, "metrics", at + ": train");
  r.train_steps = integer_at(train, "steps", at + ": train");
  r.train_tokens = integer_at(train, "tokens", at + ": train");
  r.measured = read_measured(s, "measured", at);
  return r;
}

std::vector<std::pair<double, double>> curve_at(const ojson& o, const char* key, const std::string& where) {
  std::vector<std::pair<double, double>> out;
  if (!o.contains(key) || o[key].is_null()) return out;
  if (!o[key].is_array()) throw Error(where + ": '" + key + "' is not a list of [tokens, loss] pairs");
  for (const auto& p : o[key]) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number()) {
      throw Error(where + ": '" + key + "' is not a list of [tokens, loss] pairs");
    }
    out.push_back({p[0].get<double>(), p[1].get<double>()});
  }
  return out;
}

ScratchRun read_scratch_run(const ojson& o, const std::string& where) {
  if (!o.is_object()) throw Error(where + ": not an object");
  ScratchRun r;
  r.lr = number_at(o, "lr", where).value_or(0);
  r.done = string_at(o, "status", where) == "done";
  r.tokens = number_at(o, "tokens", where);
  r.heldout_loss = number_at(o, "heldout_loss", where);
  return r;
}

ScratchReport read_scratch(const ojson& s, const std::string& where) {
  ScratchReport r;
  r.compared_step = string_at(s, "compared_step", where);
  r.architecture = string_at(s, "architecture", where);
  r.verdict = string_at(s, "verdict", where);
  r.compared_loss = number_at(s, "compared_loss", where);
  r.parameters = number_at(s, "parameters", where);
  r.recovery_tokens = number_at(s, "recovery_tokens", where);
  r.margin = number_at(s, "margin", where);
  r.tokens_to_match = number_at(s, "tokens_to_match", where);
  r.tokens_to_match_ratio = number_at(s, "tokens_to_match_ratio", where);
  r.searched_tokens = number_at(s, "searched_tokens", where);
  r.steps = integer_at(s, "steps", where);
  r.extend = integer_at(s, "extend", where);
  if (s.contains("sweep") && !s["sweep"].is_null()) {
    if (!s["sweep"].is_array()) throw Error(where + ": 'sweep' is not a list");
    for (size_t i = 0; i < s["sweep"].size(); ++i) {
      r.sweep.push_back(read_scratch_run(s["sweep"][i], where + ": sweep[" + std::to_string(i) + "]"));
    }
  }
  if (s.contains("best") && !s["best"].is_null()) r.best = read_scratch_run(s["best"], where + ": best");
  if (s.contains("extended") && !s["extended"].is_null()) r.extended = read_scratch_run(s["extended"], where + ": extended");
  r.lineage_curve = curve_at(s, "lineage_curve", where);
  r.scratch_curve = curve_at(s, "scratch_curve", where);
  r.extended_curve = curve_at(s, "extended_curve", where);
  return r;
}

}  // namespace

ReportInfo read_report_info(const ojson& report, const std::string& source) {
  if (!report.is_object()) throw Error(source + ": not a JSON object");
  const std::string format = string_at(report, "format", source);
  if (format.rfind("openba-pipeline-report/", 0) != 0) {
    throw Error(source + ": not a pipeline report (format '" + format + "', expected openba-pipeline-report/1)");
  }
  ReportInfo info;
  info.source = source;
  const ojson& pipeline = object_at(report, "pipeline", source);
  info.name = string_at(pipeline, "name", source + ": pipeline");
  info.description = string_at(pipeline, "description", source + ": pipeline");
  info.file = string_at(pipeline, "file", source + ": pipeline");
  info.sha256 = string_at(pipeline, "sha256", source + ": pipeline");
  info.run_dir = string_at(report, "run_dir", source);
  const ojson& input = object_at(report, "input", source);
  info.input_dir = string_at(input, "dir", source + ": input");
  info.input_architecture = string_at(input, "architecture", source + ": input");
  info.input_parameters = number_at(input, "parameters", source + ": input");
  info.input_heldout_loss = number_at(input, "heldout_loss", source + ": input");
  info.input_measured = read_measured(input, "measured", source + ": input");
  const ojson& heldout = object_at(report, "heldout", source);
  info.heldout_data = string_at(heldout, "data", source + ": heldout");
  info.heldout_examples = integer_at(heldout, "examples", source + ": heldout");
  info.heldout_encoder_tokens = integer_at(heldout, "encoder_tokens", source + ": heldout");
  info.heldout_decoder_tokens = integer_at(heldout, "decoder_tokens", source + ": heldout");
  if (!report.contains("steps") || !report["steps"].is_array()) throw Error(source + ": 'steps' is missing or not a list");
  for (size_t i = 0; i < report["steps"].size(); ++i) {
    info.steps.push_back(read_step(report["steps"][i], source + ": steps[" + std::to_string(i) + "]"));
  }
  const ojson& summary = object_at(report, "summary", source);
  const std::string at = source + ": summary";
  info.base_step = string_at(summary, "base_step", at);
  info.base_parameters = number_at(summary, "base_parameters", at);
  info.final_parameters = number_at(summary, "final_parameters", at);
  info.compression_ratio = number_at(summary, "compression_ratio", at);
  info.removed_fraction = number_at(summary, "removed_fraction", at);
  info.base_heldout_loss = number_at(summary, "base_heldout_loss", at);
  info.final_heldout_loss = number_at(summary, "final_heldout_loss", at);
  info.wall_time_s = number_at(summary, "wall_time_s", at);
  int done = 0;
  for (const auto& s : info.steps) done += s.done() ? 1 : 0;
  info.steps_done = static_cast<int>(integer_at(summary, "steps_done", at).value_or(done));
  info.steps_total = static_cast<int>(integer_at(summary, "steps_total", at).value_or(static_cast<int64_t>(info.steps.size())));
  const ojson& baselines = object_at(report, "baselines", source);
  const ojson& scratch = object_at(baselines, "scratch", source + ": baselines");
  if (!scratch.empty()) info.scratch = read_scratch(scratch, source + ": baselines.scratch");
  return info;
}

std::string RunFiles::path(const std::string& relative) const {
  const std::filesystem::path p(relative);
  return p.is_absolute() ? relative : (std::filesystem::path(run_dir_) / p).string();
}

const nlohmann::json& RunFiles::json(const std::string& relative) {
  const auto it = cache_.find(relative);
  if (it != cache_.end()) return it->second;
  const std::string file = path(relative);
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(read_text_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": malformed JSON: " + e.what());
  }
  if (!parsed.is_object()) throw Error(file + ": not a JSON object");
  return cache_.emplace(relative, std::move(parsed)).first->second;
}

std::vector<MetricsLine> RunFiles::metrics(const std::string& relative) {
  const std::string file = path(relative);
  const std::string text = read_text_file(file);
  std::vector<MetricsLine> lines;
  size_t start = 0, number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file + ":" + std::to_string(number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": malformed JSON: " + e.what());
    }
    if (!j.is_object()) throw Error(where + ": not a JSON object");
    const bool training = j.contains("loss"), evaluation = j.contains("eval_loss");
    if (!training && !evaluation) continue;  // other records (e.g. run metadata)
    if (!j.contains("step") || !j["step"].is_number()) throw Error(where + ": 'step' is missing or not a number");
    MetricsLine m;
    m.step = j["step"].get<int64_t>();
    // A non-finite loss is logged as null: keep it as NaN (a gap in the curve).
    auto read = [&](const char* key) -> std::optional<double> {
      if (!j.contains(key)) return std::nullopt;
      if (j[key].is_null()) return NAN;
      if (!j[key].is_number()) throw Error(where + ": '" + key + "' is not a number");
      return j[key].get<double>();
    };
    m.loss = read("loss");
    m.eval_loss = read("eval_loss");
    m.tokens = read("tokens");
    lines.push_back(m);
  }
  return lines;
}

std::vector<double> json_numbers(const nlohmann::json& value, const std::string& source, const std::string& field) {
  if (!value.is_array()) throw Error(source + ": '" + field + "' is not a list of numbers");
  std::vector<double> out;
  out.reserve(value.size());
  for (const auto& v : value) {
    if (v.is_null()) {
      out.push_back(NAN);
    } else if (v.is_number()) {
      out.push_back(v.get<double>());
    } else {
      throw Error(source + ": '" + field + "' is not a list of numbers");
    }
  }
  return out;
}

std::vector<std::vector<double>> json_number_rows(const nlohmann::json& value, const std::string& source,
                                                  const std::string& field) {
  if (!value.is_array()) throw Error(source + ": '" + field + "' is not a list of lists");
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < value.size(); ++i) {
    out.push_back(json_numbers(value[i], source, field + "[" + std::to_string(i) + "]"));
  }
  return out;
}

const nlohmann::json* json_member(const nlohmann::json& object, const std::string& key, const std::string& source) {
  if (!object.contains(key) || object[key].is_null()) return nullptr;
  if (!object[key].is_object()) throw Error(source + ": '" + key + "' is not an object");
  return &object[key];
}

}  // namespace openba
