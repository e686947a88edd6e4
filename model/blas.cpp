#include "model/blas.h"

#include <dlfcn.h>

#include "util/error.h"

namespace openba {
namespace {

using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

Sgemm sgemm() {
  static Sgemm fn = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

}  // namespace

bool have_direct_sgemm() { return sgemm() != nullptr; }

void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                     int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  Sgemm fn = sgemm();
  if (!fn) throw Error("no BLAS sgemm_ in this process");
  // A row-major matrix is the column-major view of its transpose, so
  // C^T = op(B)^T op(A)^T in column-major terms: swap the operands.
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  fn(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

}  // namespace openba
