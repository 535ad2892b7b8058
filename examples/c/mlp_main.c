/* Runs examples/mlp.nxir through its ahead-of-time artifact and checks the
 * result against the same model computed here in plain C (double precision).
 * Build (see README.md):
 *   tensorc compile ../mlp.nxir --emit shared --emit static --emit header -o mlp
 *   cc -O2 -I. mlp_main.c ./mlp.so -o mlp_shared   # or: mlp_main.c mlp.a -lm
 * Exit code 0 when every output matches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"

enum { B = 4, F = 8, H = 16, C = 3 };

/* Deterministic inputs in [-1, 1): a small linear congruential generator. */
static unsigned state = 12345u;
static float next_value(void) {
  state = state * 1103515245u + 12345u;
  return (float)((state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

int main(void) {
  float x[B][F], w1[F][H], b1[H], w2[H][C], b2[C];
  float probs[B][C];
  int32_t cls[B];
  int i, j, k, failures = 0;
  for (i = 0; i < B; i++) for (j = 0; j < F; j++) x[i][j] = next_value();
  for (i = 0; i < F; i++) for (j = 0; j < H; j++) w1[i][j] = next_value();
  for (j = 0; j < H; j++) b1[j] = next_value();
  for (i = 0; i < H; i++) for (j = 0; j < C; j++) w2[i][j] = next_value();
  for (j = 0; j < C; j++) b2[j] = next_value();

  if (tensorc_main(&x[0][0], &w1[0][0], b1, &w2[0][0], b2, &probs[0][0], cls) != 0) {
    fprintf(stderr, "tensorc_main failed\n");
    return 1;
  }

  for (i = 0; i < B; i++) {
    double h[H], logits[C], m, s = 0.0, expect[C];
    int best = 0;
    for (j = 0; j < H; j++) {
      double a = b1[j];
      for (k = 0; k < F; k++) a += (double)x[i][k] * w1[k][j];
      h[j] = a > 0.0 ? a : 0.0;
    }
    for (j = 0; j < C; j++) {
      double a = b2[j];
      for (k = 0; k < H; k++) a += h[k] * w2[k][j];
      logits[j] = a;
    }
    m = logits[0];
    for (j = 1; j < C; j++) if (logits[j] > m) m = logits[j];
    for (j = 0; j < C; j++) { expect[j] = exp(logits[j] - m); s += expect[j]; }
    for (j = 0; j < C; j++) {
      expect[j] /= s;
      if (expect[j] > expect[best]) best = j; /* first maximum, as Nx argmax */
      if (fabs(expect[j] - probs[i][j]) > 1e-5) {
        fprintf(stderr, "probs[%d][%d] = %.7f, expected %.7f\n", i, j, probs[i][j], expect[j]);
        failures++;
      }
    }
    if (cls[i] != best) {
      fprintf(stderr, "class[%d] = %d, expected %d\n", i, (int)cls[i], best);
      failures++;
    }
    printf("row %d: probs %.6f %.6f %.6f class %d\n", i, probs[i][0], probs[i][1], probs[i][2],
           (int)cls[i]);
  }
  if (failures) {
    fprintf(stderr, "%d mismatches\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
