#include "formats/torch_bin.h"

#include <set>
#include <unordered_map>

#include "formats/torch_pickle.h"
#include "formats/zip_archive.h"
#include "util/error.h"

namespace openba {

std::vector<TensorRecord> read_torch_bin_index(const uint8_t* file, uint64_t size,
                                               const std::string& source) {
  const std::vector<ZipEntry> entries = read_zip_directory(file, size, source);
  std::unordered_map<std::string, const ZipEntry*> by_name;
  const ZipEntry* pickle = nullptr;
  for (const ZipEntry& e : entries) {
    by_name[e.name] = &e;
    const std::string suffix = "data.pkl";
    if (e.name.size() >= suffix.size() &&
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        (e.name.size() == suffix.size() || e.name[e.name.size() - suffix.size() - 1] == '/')) {
      if (pickle) throw Error(source + ": archive holds more than one data.pkl");
      pickle = &e;
    }
  }
  if (!pickle) throw Error(source + ": not a torch.save archive (no data.pkl entry)");
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - 8);  // keeps the '/'
  if (pickle->method != 0) throw Error(source + ": data.pkl is compressed (unsupported)");

  if (auto it = by_name.find(prefix + "byteorder"); it != by_name.end()) {
    const ZipEntry& e = *it->second;
    if (e.method != 0) throw Error(source + ": byteorder entry is compressed");
    const std::string order(reinterpret_cast<const char*>(file + e.data_offset), e.compressed_size);
    if (order != "little") {
      throw Error(source + ": archive byte order is '" + order + "'; only little-endian is supported");
    }
  }

  const std::vector<PickledTensor> tensors =
      parse_state_dict_pickle(file + pickle->data_offset, pickle->compressed_size, source);

  std::vector<TensorRecord> records;
  records.reserve(tensors.size());
  std::set<std::string> names;
  for (const PickledTensor& t : tensors) {
    const std::string where = source + ": tensor '" + t.name + "'";
    if (!names.insert(t.name).second) throw Error(where + ": duplicate name in state dict");
    auto it = by_name.find(prefix + "data/" + t.storage_key);
    if (it == by_name.end()) {
      throw Error(where + ": storage entry '" + prefix + "data/" + t.storage_key + "' is missing");
    }
    const ZipEntry& storage = *it->second;
    if (storage.method != 0) {
      throw Error(where + ": storage '" + storage.name +
                  "' is compressed; torch.save writes stored entries (re-save the file with torch.save)");
    }
    const uint64_t elem = dtype_size(t.dtype);
    if (static_cast<uint64_t>(t.storage_numel) > UINT64_MAX / elem ||
        static_cast<uint64_t>(t.storage_numel) * elem != storage.uncompressed_size) {
      throw Error(where + ": storage '" + storage.name + "' holds " +
                  std::to_string(storage.uncompressed_size) + " bytes but the pickle declares " +
                  std::to_string(t.storage_numel) + " x " + dtype_name(t.dtype));
    }
    TensorRecord r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.strides = t.strides;
    int64_t numel = 0;
    if (!checked_numel(t.shape, &numel)) throw Error(where + ": shape overflows");
    // Highest element index the view touches, checked against the storage.
    if (numel > 0) {
      uint64_t last = static_cast<uint64_t>(t.storage_offset);
      for (size_t i = 0; i < t.shape.size(); ++i) {
        const uint64_t step = static_cast<uint64_t>(t.shape[i] - 1);
        const uint64_t stride = static_cast<uint64_t>(t.strides[i]);
        if (stride != 0 && step > (UINT64_MAX - last) / stride) throw Error(where + ": view overflows");
        last += step * stride;
      }
      if (last >= static_cast<uint64_t>(t.storage_numel)) {
        throw Error(where + ": view (offset " + std::to_string(t.storage_offset) +
                    ") reaches element " + std::to_string(last) + " of a storage holding " +
                    std::to_string(t.storage_numel));
      }
      r.span_bytes = (last - t.storage_offset + 1) * elem;
    } else if (static_cast<uint64_t>(t.storage_offset) > static_cast<uint64_t>(t.storage_numel)) {
      throw Error(where + ": storage offset beyond its storage");
    }
    if (r.is_contiguous()) r.strides.clear();
    r.offset = storage.data_offset + static_cast<uint64_t>(t.storage_offset) * elem;
    r.storage_id = source + "#" + t.storage_key;
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace openba
