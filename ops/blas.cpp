#include "ops/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "util/error.h"

namespace openba {
namespace {

using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);
using Sgemv = void (*)(const char* trans, const int* m, const int* n, const float* alpha, const float* a,
                       const int* lda, const float* x, const int* incx, const float* beta, float* y, const int* incy);
using SetThreads = void (*)(int);  // mkl_set_num_threads_local's result (the previous count) is not used
using GetThreads = int (*)();
using GetName = char* (*)();

struct Library {
  const char* name = "none";
  Sgemm sgemm = nullptr;
  Sgemv sgemv = nullptr;
  SetThreads set_threads = nullptr;
  GetThreads get_threads = nullptr;
  GetName kernel_name = nullptr;  // openblas_get_corename: the kernels it dispatched to
};

Library open_openblas() {
  Library lib;
  // RTLD_LOCAL: its symbols stay out of the process namespace, so LibTorch
  // keeps resolving to its own BLAS.
  void* handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!handle) return lib;
  lib.sgemm = reinterpret_cast<Sgemm>(dlsym(handle, "sgemm_"));
  lib.sgemv = reinterpret_cast<Sgemv>(dlsym(handle, "sgemv_"));
  lib.set_threads = reinterpret_cast<SetThreads>(dlsym(handle, "openblas_set_num_threads"));
  lib.get_threads = reinterpret_cast<GetThreads>(dlsym(handle, "openblas_get_num_threads"));
  lib.kernel_name = reinterpret_cast<GetName>(dlsym(handle, "openblas_get_corename"));
  if (lib.sgemm) lib.name = "openblas";
  return lib;
}

Library process_blas() {
  Library lib;
  lib.sgemm = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  if (!lib.sgemm) return lib;
  lib.sgemv = reinterpret_cast<Sgemv>(dlsym(RTLD_DEFAULT, "sgemv_"));
  lib.name = "torch";
  if ((lib.set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))) {
    lib.get_threads = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    lib.kernel_name = reinterpret_cast<GetName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  } else {
    // MKL's C entry points (mkl_service.h maps mkl_set_num_threads_local to
    // it); the wheel's lower-case names alias the Fortran ones, which take
    // pointers.
    lib.set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads_Local"));
    lib.get_threads = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "MKL_Get_Max_Threads"));
  }
  return lib;
}

Library choose() {
  const char* env = std::getenv("OPENBA_BLAS");
  const std::string wanted = env ? env : "";
  if (wanted == "openblas") {
    Library lib = open_openblas();
    if (!lib.sgemm) throw Error("OPENBA_BLAS=openblas: libopenblas.so.0 does not load (apt-get install libopenblas0-pthread)");
    return lib;
  }
  if (wanted == "torch") return process_blas();
  if (!wanted.empty()) throw Error("OPENBA_BLAS=" + wanted + ": expected openblas or torch");
  Library lib = open_openblas();
  return lib.sgemm ? lib : process_blas();
}

const Library& library() {
  static const Library lib = choose();
  return lib;
}

}  // namespace

bool have_direct_sgemm() { return library().sgemm != nullptr; }
const char* direct_blas_name() { return library().name; }

std::string direct_blas_description() {
  std::string out = library().name;
  if (library().kernel_name) {
    if (const char* kernel = library().kernel_name()) out += std::string(" ") + kernel + " kernels";
    if (const char* pinned = std::getenv("OPENBLAS_CORETYPE")) out += std::string(", OPENBLAS_CORETYPE=") + pinned;
  }
  return out;
}

int direct_blas_threads() { return library().get_threads ? library().get_threads() : -1; }

void set_direct_blas_threads(int threads) {
  if (library().set_threads) library().set_threads(threads);
}

void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                     int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  Sgemm fn = library().sgemm;
  if (!fn) throw Error("no BLAS sgemm_ in this process");
  // A row-major matrix is the column-major view of its transpose, so
  // C^T = op(B)^T op(A)^T in column-major terms: swap the operands.
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  fn(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

void sgemv_row_major(int n, int k, const float* a, int lda, const float* x, float* y) {
  if (Sgemv fn = library().sgemv) {
    // Row-major A [n, k] is column-major [k, n]: y = (A_cm)^T x.
    const char t = 'T';
    const int one = 1;
    const float alpha = 1.0f, beta = 0.0f;
    fn(&t, &k, &n, &alpha, a, &lda, x, &one, &beta, y, &one);
    return;
  }
  sgemm_row_major(false, true, 1, n, k, 1.0f, x, k, a, lda, 0.0f, y, n);
}

}  // namespace openba
