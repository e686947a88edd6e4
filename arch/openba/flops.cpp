#include "arch/openba/flops.h"

namespace openba {

double forward_flops_per_sequence(const ModelConfig& c, int64_t encoder_tokens,
                                  int64_t decoder_tokens) {
  const double d = static_cast<double>(c.d_model);
  const double a = static_cast<double>(c.attention_width());
  const double f = static_cast<double>(c.ffn_hidden);
  const double v = static_cast<double>(c.vocab_size);
  const double te = static_cast<double>(encoder_tokens);
  const double td = static_cast<double>(decoder_tokens);
  const double le = static_cast<double>(c.encoder_layers);
  const double ld = static_cast<double>(c.decoder_layers);
  const double mlp = (c.ffn_gated ? 3 : 2) * d * f;   // gated: gate, up and down projections
  double macs = 0;
  macs += te * le * (4 * d * a + mlp);               // encoder projections and MLP
  macs += le * 2 * te * te * a;                      // encoder self-attention scores + values
  macs += td * ld * (6 * d * a + mlp);               // decoder self/cross projections and MLP
  macs += te * ld * 2 * d * a;                       // cross-attention K/V over encoder tokens
  macs += ld * (2 * td * td * a + 2 * td * te * a);  // decoder self + cross attention
  macs += td * d * v;                                // lm_head
  return 2 * macs;
}

}  // namespace openba
