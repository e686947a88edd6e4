#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "util/error.h"

namespace openba {
namespace {

using Json = nlohmann::json;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string tensor_where(const std::string& source, const std::string& name) {
  return source + ": tensor '" + name + "'";
}

}  // namespace

SafetensorsFile parse_safetensors(const uint8_t* file, uint64_t file_size,
                                  const std::string& source) {
  if (file_size < 8) {
    throw Error(source + ": truncated safetensors file (" + std::to_string(file_size) +
                " bytes, need at least 8 for the header length)");
  }
  SafetensorsFile out;
  out.header_bytes = read_u64_le(file);
  if (out.header_bytes > file_size - 8) {
    throw Error(source + ": header length " + std::to_string(out.header_bytes) +
                " is beyond the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  if (out.header_bytes > kMaxSafetensorsHeaderBytes) {
    throw Error(source + ": header length " + std::to_string(out.header_bytes) +
                " exceeds the " + std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit");
  }
  out.data_start = 8 + out.header_bytes;
  const uint64_t data_size = file_size - out.data_start;
  const char* header = reinterpret_cast<const char*>(file + 8);

  // Parse with a callback that sees every top-level key, so duplicate names
  // (which a plain parse would silently collapse) are caught.
  std::set<std::string> top_level_keys;
  std::string duplicate;
  Json::parser_callback_t watch_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1) {
      const std::string key = parsed.get<std::string>();
      if (!top_level_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  Json root;
  try {
    root = Json::parse(header, header + out.header_bytes, watch_keys);
  } catch (const Json::exception& e) {
    throw Error(source + ": malformed safetensors header JSON: " + e.what());
  }
  if (!duplicate.empty()) throw Error(tensor_where(source, duplicate) + ": duplicate name in header");
  if (!root.is_object()) throw Error(source + ": safetensors header is not a JSON object");

  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const Json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(source + ": __metadata__ must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          throw Error(source + ": __metadata__ value for '" + m.key() + "' is not a string");
        }
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = tensor_where(source, name);
    if (!entry.is_object()) throw Error(where + ": header entry is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || shape_it == entry.end() || offsets_it == entry.end()) {
      throw Error(where + ": header entry needs dtype, shape and data_offsets");
    }
    if (!dtype_it->is_string()) throw Error(where + ": dtype is not a string");
    auto dtype = dtype_from_safetensors(dtype_it->get<std::string>());
    if (!dtype) throw Error(where + ": unknown dtype '" + dtype_it->get<std::string>() + "'");

    TensorRecord record;
    record.name = name;
    record.dtype = *dtype;
    if (!shape_it->is_array()) throw Error(where + ": shape is not an array");
    if (shape_it->size() > 32) throw Error(where + ": shape has too many dimensions");
    for (const Json& dim : *shape_it) {
      if (!dim.is_number_unsigned()) throw Error(where + ": shape " + shape_it->dump() +
                                                 " holds a non-integer or negative dimension");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX)) throw Error(where + ": dimension too large");
      record.shape.push_back(static_cast<int64_t>(d));
    }
    int64_t numel = 0;
    if (!checked_numel(record.shape, &numel) ||
        static_cast<uint64_t>(numel) > UINT64_MAX / dtype_size(record.dtype)) {
      throw Error(where + ": shape " + shape_it->dump() + " overflows");
    }
    if (!offsets_it->is_array() || offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() ||
        !(*offsets_it)[1].is_number_unsigned()) {
      throw Error(where + ": data_offsets must be two non-negative integers");
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") are reversed");
    }
    if (end > data_size) {
      throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") out of range (data section holds " + std::to_string(data_size) +
                  " bytes; file truncated?)");
    }
    const uint64_t expected = static_cast<uint64_t>(numel) * dtype_size(record.dtype);
    if (end - begin != expected) {
      throw Error(where + ": data_offsets span " + std::to_string(end - begin) +
                  " bytes but shape " + shape_it->dump() + " x " + dtype_name(record.dtype) +
                  " needs " + std::to_string(expected));
    }
    record.offset = out.data_start + begin;
    record.span_bytes = expected;
    out.tensors.push_back(std::move(record));
  }

  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorRecord& a, const TensorRecord& b) {
              return a.offset != b.offset ? a.offset < b.offset : a.span_bytes < b.span_bytes;
            });
  for (size_t i = 1; i < out.tensors.size(); ++i) {
    const TensorRecord& prev = out.tensors[i - 1];
    const TensorRecord& cur = out.tensors[i];
    if (cur.offset < prev.offset + prev.span_bytes) {
      throw Error(tensor_where(source, cur.name) + ": data overlaps tensor '" + prev.name + "'");
    }
  }
  return out;
}

std::string build_safetensors_header(const std::vector<SafetensorsEntry>& entries,
                                     const std::map<std::string, std::string>& metadata,
                                     std::vector<uint64_t>* offsets_out) {
  // nlohmann::ordered_json keeps file order, which makes headers readable.
  nlohmann::ordered_json root;
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    root["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  if (offsets_out) offsets_out->clear();
  std::set<std::string> names;
  for (const auto& e : entries) {
    if (!names.insert(e.name).second) throw Error("safetensors writer: duplicate tensor '" + e.name + "'");
    int64_t numel = 0;
    if (!checked_numel(e.shape, &numel)) throw Error("safetensors writer: bad shape for '" + e.name + "'");
    const uint64_t bytes = static_cast<uint64_t>(numel) * dtype_size(e.dtype);
    nlohmann::ordered_json item;
    item["dtype"] = safetensors_dtype_name(e.dtype);
    item["shape"] = e.shape;
    item["data_offsets"] = {offset, offset + bytes};
    root[e.name] = item;
    if (offsets_out) offsets_out->push_back(offset);
    offset += bytes;
  }
  std::string json = root.dump();
  const size_t padded = (8 + json.size() + 7) / 8 * 8 - 8;
  json.append(padded - json.size(), ' ');
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

}  // namespace openba
