// Filesystem helpers shared by every tool: whole-file reads of small text
// files, durable writes, and StagingDir, which is how every output directory is
// produced (written under a hidden temporary name, renamed into place only
// when complete, so an interrupted run never leaves a directory that looks
// whole).
#pragma once

#include <cstdint>
#include <string>

namespace openba {

// Reads a whole (small) file; throws Error naming the path on failure.
std::string read_text_file(const std::string& path);

// Writes `data` to `path` and fsyncs it; throws Error naming the path.
void write_file_durably(const std::string& path, const std::string& data);

// fsync a file or directory by path (best effort for directories).
void fsync_path(const std::string& path);

// Size of a regular file in bytes; throws Error naming the path.
uint64_t file_size(const std::string& path);

// True when `candidate` is `root` or lies under it, after resolving symlinks
// and relative parts of both (paths need not exist yet).
bool path_is_same_or_inside(const std::string& candidate, const std::string& root);

// `path` relative to `dir` when it lies under it (how a run's reports refer
// to its files), else `path` unchanged.
std::string path_relative_to(const std::string& path, const std::string& dir);

// A directory being built. Create it, write files into path(), then commit().
// If the object is destroyed without commit() the partial directory is
// removed. The final path must not exist unless commit(true) is asked to
// replace it.
class StagingDir {
 public:
  explicit StagingDir(const std::string& final_path);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::string& path() const { return staging_path_; }
  const std::string& final_path() const { return final_path_; }

  // fsyncs the staged files and renames the directory into place.
  // With replace_existing, an existing final_path is moved aside first and
  // deleted after the rename.
  void commit(bool replace_existing = false);

  // Writes one file as a whole: to a temporary name beside it, then renamed.
  static void write_file_atomically(const std::string& path, const std::string& data);

 private:
  std::string final_path_;
  std::string staging_path_;
  bool committed_ = false;
};

}  // namespace openba
