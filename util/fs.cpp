#include "util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace openba {
namespace fs = std::filesystem;

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return buffer.str();
}

void write_file_durably(const std::string& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw Error(path + ": write failed: " + std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    throw Error(path + ": fsync/close failed: " + std::strerror(errno));
  }
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(path + ": cannot stat: " + std::strerror(errno));
  }
  return static_cast<uint64_t>(st.st_size);
}

std::string path_relative_to(const std::string& path, const std::string& dir) {
  const fs::path rel = fs::weakly_canonical(path).lexically_relative(fs::weakly_canonical(dir));
  return rel.empty() || rel.string().rfind("..", 0) == 0 ? path : rel.string();
}

bool path_is_same_or_inside(const std::string& candidate, const std::string& root) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(fs::absolute(candidate), ec);
  const fs::path r = fs::weakly_canonical(fs::absolute(root), ec);
  auto ci = c.begin();
  for (auto ri = r.begin(); ri != r.end(); ++ri, ++ci) {
    if (ri->empty()) continue;  // trailing separator
    if (ci == c.end() || *ci != *ri) return false;
  }
  return true;
}

namespace {
std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter++);
}
}  // namespace

StagingDir::StagingDir(const std::string& final_path) : final_path_(final_path) {
  fs::path target = fs::absolute(final_path).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  final_path_ = target.string();
  const fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error(parent.string() + ": cannot create directory: " + ec.message());
  staging_path_ =
      (parent / ("." + target.filename().string() + ".tmp-" + unique_suffix())).string();
  fs::create_directory(staging_path_, ec);
  if (ec) throw Error(staging_path_ + ": cannot create staging directory: " + ec.message());
}

StagingDir::~StagingDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_path_, ec);
  }
}

void StagingDir::write_file_atomically(const std::string& path, const std::string& data) {
  const std::string temp = path + ".tmp-" + unique_suffix();
  write_file_durably(temp, data);
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw Error(path + ": cannot rename into place");
  }
}

void StagingDir::commit(bool replace_existing) {
  if (committed_) throw Error(final_path_ + ": staging directory committed twice");
  for (const auto& entry : fs::directory_iterator(staging_path_)) {
    if (entry.is_regular_file()) fsync_path(entry.path().string());
  }
  fsync_path(staging_path_);
  std::error_code ec;
  std::string moved_aside;
  if (fs::exists(final_path_, ec)) {
    if (!replace_existing) {
      throw Error(final_path_ + ": already exists (refusing to overwrite)");
    }
    moved_aside = fs::path(staging_path_).string() + ".old";
    fs::rename(final_path_, moved_aside, ec);
    if (ec) throw Error(final_path_ + ": cannot move existing directory aside: " + ec.message());
  }
  fs::rename(staging_path_, final_path_, ec);
  if (ec) throw Error(final_path_ + ": cannot rename staging directory into place: " + ec.message());
  committed_ = true;
  fsync_path(fs::path(final_path_).parent_path().string());
  if (!moved_aside.empty()) fs::remove_all(moved_aside, ec);
}

}  // namespace openba
