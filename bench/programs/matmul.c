/* Double-precision 24x24 matrix multiply, n times (the float kernel). */
#include "bench.h"
#define N 24
static double a[N][N], b[N][N], c[N][N];

u32 bench(u32 n) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { a[i][j] = (i * N + j) * 0.5; b[i][j] = (j - i) * 0.25; }
    for (u32 r = 0; r < n; r++)
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
                c[i][j] = s + r;
            }
    double t = 0;
    for (int i = 0; i < N; i++) t += c[i][i];
    return (u32)(long long)t;
}
