#include "pipeline/run_state.h"

#include "util/error.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace openba {

namespace {

std::vector<StepRecord> read_records(const nlohmann::ordered_json& list) {
  std::vector<StepRecord> out;
  for (const auto& r : list) {
    StepRecord rec;
    rec.id = r.at("id").get<std::string>();
    rec.kind = r.at("kind").get<std::string>();
    rec.chain = r.at("chain").get<std::string>();
    rec.spec = r.at("spec");
    rec.status = r.at("status").get<std::string>();
    if (r.contains("entry")) rec.entry = r.at("entry");
    out.push_back(rec);
  }
  return out;
}

nlohmann::ordered_json records_json(const std::vector<StepRecord>& records) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& r : records) {
    nlohmann::ordered_json e;
    e["id"] = r.id;
    e["kind"] = r.kind;
    e["chain"] = r.chain;
    e["status"] = r.status;
    e["spec"] = r.spec;
    if (!r.entry.is_null()) e["entry"] = r.entry;
    list.push_back(e);
  }
  return list;
}

void put_record(std::vector<StepRecord>& records, const StepRecord& record) {
  for (auto& r : records) {
    if (r.id == record.id) {
      r = record;
      return;
    }
  }
  records.push_back(record);
}

const StepRecord* find_record(const std::vector<StepRecord>& records, const std::string& id) {
  for (const auto& r : records) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

}  // namespace

RunState RunState::load(const std::string& path) {
  RunState s;
  try {
    const auto j = nlohmann::ordered_json::parse(read_text_file(path));
    s.name = j.at("name").get<std::string>();
    s.file = j.at("file").get<std::string>();
    s.model = j.at("model").get<std::string>();
    s.steps = read_records(j.at("steps"));
    if (j.contains("baselines")) s.baselines = read_records(j.at("baselines"));
    if (j.contains("input_measured")) s.input_measured = j.at("input_measured");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed pipeline state (" + e.what() + ")");
  }
  return s;
}

void RunState::save(const std::string& path) const {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["file"] = file;
  j["model"] = model;
  j["steps"] = records_json(steps);
  j["baselines"] = records_json(baselines);
  if (!input_measured.is_null()) j["input_measured"] = input_measured;
  StagingDir::write_file_atomically(path, j.dump(1) + "\n");
}

const StepRecord* RunState::find(const std::string& id) const { return find_record(steps, id); }
void RunState::put(const StepRecord& record) { put_record(steps, record); }
const StepRecord* RunState::find_baseline(const std::string& id) const { return find_record(baselines, id); }
void RunState::put_baseline(const StepRecord& record) { put_record(baselines, record); }

void RunState::truncate(size_t index) {
  if (index < steps.size()) steps.resize(index);
}

std::string chain_hash(const std::string& previous, const nlohmann::ordered_json& spec) {
  return sha256_hex(previous + "\n" + spec.dump());
}

namespace {

void diff(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b, const std::string& path, std::string& out) {
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string p = path.empty() ? it.key() : path + "." + it.key();
      diff(it.value(), b.contains(it.key()) ? b.at(it.key()) : nlohmann::ordered_json(), p, out);
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!a.contains(it.key())) diff(nlohmann::ordered_json(), it.value(), path.empty() ? it.key() : path + "." + it.key(), out);
    }
    return;
  }
  if (a != b) out += (out.empty() ? "" : "; ") + path + ": " + a.dump() + " -> " + b.dump();
}

}  // namespace

std::string spec_difference(const nlohmann::ordered_json& before, const nlohmann::ordered_json& now) {
  std::string out;
  diff(before, now, "", out);
  return out.empty() ? "the steps before it changed" : out;
}

}  // namespace openba
