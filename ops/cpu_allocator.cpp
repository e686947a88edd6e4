#include "ops/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace openba {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kLargeBlock = 1 << 20;  // cache blocks of 1 MiB and up
constexpr size_t kGranule = 1 << 16;     // large sizes rounded up to 64 KiB

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    void* ptr = obtain(bytes);
    return {ptr, ptr, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }

  static CachingCpuAllocator& instance() {
    static CachingCpuAllocator allocator;
    return allocator;
  }

  void set_limit(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    trim_locked(limit_);
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    trim_locked(0);
  }
  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  static void* aligned(size_t bytes) {
    void* ptr = nullptr;
    if (posix_memalign(&ptr, kAlignment, bytes == 0 ? kAlignment : bytes) != 0) throw std::bad_alloc();
    return ptr;
  }

  void* obtain(size_t bytes) const {
    if (bytes < kLargeBlock) return aligned(bytes);
    const size_t size = (bytes + kGranule - 1) / kGranule * kGranule;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Smallest cached block that fits without wasting more than a quarter.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= size + size / 4) {
        void* ptr = it->second;
        live_[ptr] = it->first;
        stats_.cached_bytes -= it->first;
        free_.erase(it);
        ++stats_.reused;
        return ptr;
      }
      ++stats_.fresh;
    }
    void* ptr = aligned(size);
    std::lock_guard<std::mutex> lock(mutex_);
    live_[ptr] = size;
    return ptr;
  }

  static void release(void* ptr) { instance().give_back(ptr); }

  void give_back(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) {  // a small block
      std::free(ptr);
      return;
    }
    const size_t size = it->second;
    live_.erase(it);
    if (size > limit_) {
      std::free(ptr);
      return;
    }
    trim_locked(limit_ - size);
    free_.emplace(size, ptr);
    stats_.cached_bytes += size;
  }

  // Frees cached blocks, largest first, until at most `keep` bytes remain.
  void trim_locked(uint64_t keep) {
    while (stats_.cached_bytes > keep && !free_.empty()) {
      auto last = std::prev(free_.end());
      stats_.cached_bytes -= last->first;
      std::free(last->second);
      free_.erase(last);
    }
  }

  mutable std::mutex mutex_;
  mutable std::multimap<size_t, void*> free_;
  mutable std::unordered_map<void*, size_t> live_;
  mutable CpuCacheStats stats_;
  uint64_t limit_ = 0;
};

std::once_flag installed;

}  // namespace

void install_caching_cpu_allocator(uint64_t max_cached_bytes) {
  CachingCpuAllocator::instance().set_limit(max_cached_bytes);
  std::call_once(installed, [] {
    // Priority above the default allocator's registration.
    c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/10);
  });
}

void release_cached_cpu_memory() { CachingCpuAllocator::instance().release_all(); }

CpuCacheStats cpu_cache_stats() { return CachingCpuAllocator::instance().stats(); }

}  // namespace openba
