/* Native kernels of common/md/neighbors.py: a brute-force pair search for small systems and the
 * dense neighbour matrix's row rewrite. */

/* All pairs within `cutoff` of one small system, periodic images included, by brute force.
 *
 * For a few dozen to a few hundred atoms in a cell about as wide as the cutoff (the engine's
 * "many small systems"), checking every pair against every periodic image it can reach costs
 * tens of microseconds, where a cell-list search pays its setup on every call. Positions need
 * not be wrapped: each pair is first brought to its nearest image in fractional coordinates,
 * then every shift that can lie within the cutoff is tried (a vector is at least |its
 * fractional component a| x the width of the cell across a long).
 *
 * pos (n, 3); cell (3, 3), rows = cell vectors; periodic[3] (0/1). Writes the full list (both
 * directions, sorted by i, then j, then shift) as rows (i, j, S0, S1, S2) of `out` (cap, 5)
 * and the offsets S @ cell as rows of `offsets` (cap, 3): the pair vector is x_j - x_i + offset.
 * Returns the number of pairs -- if it is more than
 * `cap`, nothing past `cap` was written and the caller calls again with room for that many --
 * or -1 (out of memory), -2 (cell singular along a periodic direction), -3 (more than
 * `max_checks` pair-image checks: the caller should use a cell-list search).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int64_t pairs_small(int64_t n, const double *pos, const double *cell, const int32_t *periodic,
                    double cutoff, double max_checks, int32_t *out, double *offsets,
                    int64_t cap) {
    const double c2 = cutoff * cutoff;
    const int any_periodic = periodic[0] || periodic[1] || periodic[2];
    double inv[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};  /* cell^-1; columns = reciprocal vectors */
    int32_t reach[3] = {0, 0, 0};
    if (any_periodic) {
        const double *h = cell;
        const double det = h[0] * (h[4] * h[8] - h[5] * h[7]) - h[1] * (h[3] * h[8] - h[5] * h[6])
                           + h[2] * (h[3] * h[7] - h[4] * h[6]);
        if (!(fabs(det) > 1e-9)) return -2;
        inv[0] = (h[4] * h[8] - h[5] * h[7]) / det; inv[1] = (h[2] * h[7] - h[1] * h[8]) / det;
        inv[2] = (h[1] * h[5] - h[2] * h[4]) / det; inv[3] = (h[5] * h[6] - h[3] * h[8]) / det;
        inv[4] = (h[0] * h[8] - h[2] * h[6]) / det; inv[5] = (h[2] * h[3] - h[0] * h[5]) / det;
        inv[6] = (h[3] * h[7] - h[4] * h[6]) / det; inv[7] = (h[1] * h[6] - h[0] * h[7]) / det;
        inv[8] = (h[0] * h[4] - h[1] * h[3]) / det;
        for (int a = 0; a < 3; a++) {  /* shells to try: the cutoff over the width across a */
            const double rec = sqrt(inv[a] * inv[a] + inv[3 + a] * inv[3 + a]
                                    + inv[6 + a] * inv[6 + a]);
            reach[a] = periodic[a] ? (int32_t)floor(cutoff * rec + 0.5) : 0;
        }
    }
    const int64_t m0 = 2 * reach[0] + 1, m1 = 2 * reach[1] + 1, m2 = 2 * reach[2] + 1;
    const int64_t m = m0 * m1 * m2;
    if ((double)n * (double)n * (double)m > max_checks) return -3;
    /* the image shifts tried around a pair's nearest image, and their vectors (S @ cell) */
    int32_t *sh = malloc(sizeof(int32_t) * 3 * m);
    double *tv = malloc(sizeof(double) * 3 * m);
    if (sh == NULL || tv == NULL) { free(sh); free(tv); return -1; }
    for (int64_t k = 0; k < m; k++) {
        sh[3 * k] = (int32_t)(k / (m1 * m2)) - reach[0];
        sh[3 * k + 1] = (int32_t)((k / m2) % m1) - reach[1];
        sh[3 * k + 2] = (int32_t)(k % m2) - reach[2];
        for (int b = 0; b < 3; b++)
            tv[3 * k + b] = sh[3 * k] * cell[b] + sh[3 * k + 1] * cell[3 + b]
                            + sh[3 * k + 2] * cell[6 + b];
    }
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++) {
            double d[3];
            int32_t base[3];
            for (int a = 0; a < 3; a++) d[a] = pos[3 * j + a] - pos[3 * i + a];
            for (int a = 0; a < 3; a++) {  /* fractional coordinate a of d (d = f @ cell) */
                const double f = d[0] * inv[a] + d[1] * inv[3 + a] + d[2] * inv[6 + a];
                base[a] = periodic[a] ? (int32_t)(-floor(f + 0.5)) : 0;
            }
            const double x0 = d[0] + base[0] * cell[0] + base[1] * cell[3] + base[2] * cell[6];
            const double y0 = d[1] + base[0] * cell[1] + base[1] * cell[4] + base[2] * cell[7];
            const double z0 = d[2] + base[0] * cell[2] + base[1] * cell[5] + base[2] * cell[8];
            for (int64_t k = 0; k < m; k++) {
                const double x = x0 + tv[3 * k], y = y0 + tv[3 * k + 1], z = z0 + tv[3 * k + 2];
                if (x * x + y * y + z * z < c2) {
                    const int32_t s0 = sh[3 * k] + base[0], s1 = sh[3 * k + 1] + base[1];
                    const int32_t s2 = sh[3 * k + 2] + base[2];
                    if (i == j && s0 == 0 && s1 == 0 && s2 == 0) continue;
                    if (count < cap) {
                        int32_t *row = out + 5 * count;
                        row[0] = (int32_t)i; row[1] = (int32_t)j;
                        row[2] = s0; row[3] = s1; row[4] = s2;
                        for (int b = 0; b < 3; b++)
                            offsets[3 * count + b] = s0 * cell[b] + s1 * cell[3 + b]
                                                     + s2 * cell[6 + b];
                    }
                    count++;
                }
            }
        }
    }
    free(sh);
    free(tv);
    return count;
}

/* Rewrite rows [a, b) of the padded neighbour matrix from one system's pair list.
 *
 * i, j (count,) int64 and sorted by i, all within [a, b); S and o (count, 3): integer shifts
 * and offsets (S @ cell). nbr (n, K) int32; offs and shifts (3, n, K), structure of arrays.
 * Padding: an atom points at itself, offset `pad`, shift NaN. Returns the largest number of
 * pairs of one row; if that is more than K nothing was written and the caller grows K first.
 * Same layout as NeighborList._update_dense (common/md/neighbors.py), which this replaces on a CPU.
 */

#define DENSE_ROWS(NAME, REAL)                                                                \
int64_t NAME(int64_t n, int64_t K, int64_t a, int64_t b, int64_t count, const int64_t *i,     \
             const int64_t *j, const REAL *S, const REAL *o, int32_t *nbr, REAL *offs,        \
             REAL *shifts, double pad) {                                                      \
    int64_t kmax = 0, run = 0;                                                                \
    for (int64_t p = 0; p < count; p++) {                                                     \
        run = (p > 0 && i[p] == i[p - 1]) ? run + 1 : 1;                                      \
        if (run > kmax) kmax = run;                                                           \
    }                                                                                         \
    if (kmax > K) return kmax;                                                                \
    const int64_t nK = n * K;                                                                 \
    for (int64_t r = a; r < b; r++)                                                           \
        for (int64_t k = 0; k < K; k++) {                                                     \
            nbr[r * K + k] = (int32_t)r;                                                      \
            for (int c = 0; c < 3; c++) {                                                     \
                offs[c * nK + r * K + k] = (REAL)pad;                                         \
                shifts[c * nK + r * K + k] = (REAL)NAN;                                       \
            }                                                                                 \
        }                                                                                     \
    int64_t slot = 0;                                                                         \
    for (int64_t p = 0; p < count; p++) {                                                     \
        slot = (p > 0 && i[p] == i[p - 1]) ? slot + 1 : 0;                                    \
        const int64_t at = i[p] * K + slot;                                                   \
        nbr[at] = (int32_t)j[p];                                                              \
        for (int c = 0; c < 3; c++) {                                                         \
            offs[c * nK + at] = o[3 * p + c];                                                 \
            shifts[c * nK + at] = S[3 * p + c];                                               \
        }                                                                                     \
    }                                                                                         \
    return kmax;                                                                              \
}

DENSE_ROWS(dense_rows_f64, double)
DENSE_ROWS(dense_rows_f32, float)

/* The largest squared displacement of any atom since the lists were built: x, ref (n, 3).
 * A NaN is skipped (the blow-up guard reports it); NeighborList._stale_systems on a CPU. */
#define MAX_DISP(NAME, REAL)                                                                  \
double NAME(int64_t n, const REAL *x, const REAL *ref) {                                      \
    double m = 0.0;                                                                           \
    for (int64_t a = 0; a < n; a++) {                                                         \
        const double dx = (double)x[3 * a] - ref[3 * a];                                      \
        const double dy = (double)x[3 * a + 1] - ref[3 * a + 1];                              \
        const double dz = (double)x[3 * a + 2] - ref[3 * a + 2];                              \
        const double d2 = dx * dx + dy * dy + dz * dz;                                        \
        if (d2 > m) m = d2;                                                                   \
    }                                                                                         \
    return m;                                                                                 \
}

MAX_DISP(max_sq_disp_f64, double)
MAX_DISP(max_sq_disp_f32, float)
