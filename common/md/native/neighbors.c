/* Native kernels of common/md/neighbors.py: a brute-force pair search for small systems (one,
 * or several of a batch in one call), the dense neighbour matrix's row rewrite, and the check of
 * which systems moved beyond half the skin.
 *
 * pairs_small: all pairs within `cutoff` of one small system, periodic images included, by
 * brute force. For a few dozen to a few hundred atoms in a cell about as wide as the cutoff (the
 * engine's "many small systems"), checking every pair against the periodic images it can reach
 * costs tens of microseconds, where a cell-list search pays its setup on every call. Positions
 * need not be wrapped: each pair is first brought to its nearest image in fractional
 * coordinates, then only the shifts s with |f_a + s_a| < cutoff / width_a along each periodic
 * direction a are tried (a vector is at least |its fractional component a| x the width of the
 * cell across a long).
 *
 * pos (n, 3); cell (3, 3), rows = cell vectors; periodic[3] (0/1). Writes the full list (both
 * directions, sorted by i, then j, then shift) into i_out, j_out (+ first: global indices),
 * S_out (cap, 3; integer shifts as doubles) and offsets (cap, 3; S @ cell): the pair vector is
 * x_j - x_i + offset. Returns the number of pairs -- if it is more than `cap`, nothing past
 * `cap` was written and the caller calls again with room for that many -- or -2 (cell singular
 * along a periodic direction) or -3 (more than `max_checks` pair-image checks at most: the
 * caller should use a cell-list search).
 */
#include <math.h>
#include <stdint.h>

static int64_t pairs_small(int64_t n, const double *pos, const double *cell,
                           const int32_t *periodic, double cutoff, double max_checks,
                           int64_t *i_out, int64_t *j_out, double *S_out, double *offsets,
                           int64_t cap, int64_t first) {
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
    const int64_t m = (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1);
    if ((double)n * (double)n * (double)m > max_checks) return -3;
    double cr[3];  /* the cutoff in units of the cell's width across a */
    for (int a = 0; a < 3; a++)
        cr[a] = cutoff * sqrt(inv[a] * inv[a] + inv[3 + a] * inv[3 + a] + inv[6 + a] * inv[6 + a]);
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < n; j++) {
            double d[3];
            int32_t base[3], lo[3], hi[3];
            for (int a = 0; a < 3; a++) d[a] = pos[3 * j + a] - pos[3 * i + a];
            for (int a = 0; a < 3; a++) {  /* fractional coordinate a of d (d = f @ cell) */
                const double f = d[0] * inv[a] + d[1] * inv[3 + a] + d[2] * inv[6 + a];
                base[a] = lo[a] = hi[a] = 0;
                if (periodic[a]) {  /* nearest image, then the shifts with |f + s| < cr */
                    base[a] = (int32_t)(-floor(f + 0.5));
                    const double fp = f + base[a];
                    lo[a] = (int32_t)ceil(-cr[a] - fp);
                    hi[a] = (int32_t)floor(cr[a] - fp);
                }
            }
            const double x0 = d[0] + base[0] * cell[0] + base[1] * cell[3] + base[2] * cell[6];
            const double y0 = d[1] + base[0] * cell[1] + base[1] * cell[4] + base[2] * cell[7];
            const double z0 = d[2] + base[0] * cell[2] + base[1] * cell[5] + base[2] * cell[8];
            for (int32_t t0 = lo[0]; t0 <= hi[0]; t0++)
            for (int32_t t1 = lo[1]; t1 <= hi[1]; t1++)
            for (int32_t t2 = lo[2]; t2 <= hi[2]; t2++) {
                const double x = x0 + t0 * cell[0] + t1 * cell[3] + t2 * cell[6];
                const double y = y0 + t0 * cell[1] + t1 * cell[4] + t2 * cell[7];
                const double z = z0 + t0 * cell[2] + t1 * cell[5] + t2 * cell[8];
                if (x * x + y * y + z * z < c2) {
                    const int32_t s0 = t0 + base[0], s1 = t1 + base[1], s2 = t2 + base[2];
                    if (i == j && s0 == 0 && s1 == 0 && s2 == 0) continue;
                    if (count < cap) {
                        i_out[count] = i + first;
                        j_out[count] = j + first;
                        S_out[3 * count] = s0; S_out[3 * count + 1] = s1;
                        S_out[3 * count + 2] = s2;
                        for (int c = 0; c < 3; c++)
                            offsets[3 * count + c] = s0 * cell[c] + s1 * cell[3 + c]
                                                     + s2 * cell[6 + c];
                    }
                    count++;
                }
            }
        }
    }
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

/* pairs_small for systems[k] of a batch (ascending) in one call: atom ranges start[s] ..
 * start[s+1] of pos, cells (n_sys, 3, 3), periodic (n_sys, 3). The lists (i, j global atom
 * indices) are written system after system; counts[k] gets each system's number of pairs.
 * Returns the total (if more than `cap`, call again with that much room) or the first
 * system's error code (-2, -3 as pairs_small; the caller then searches one by one). */
int64_t pairs_systems(int64_t n_sel, const int64_t *systems, const int64_t *start,
                      const double *pos, const double *cells, const int32_t *periodic,
                      double cutoff, double max_checks, int64_t *i_out, int64_t *j_out,
                      double *S_out, double *offsets, int64_t cap, int64_t *counts) {
    int64_t total = 0;
    for (int64_t k = 0; k < n_sel; k++) {
        const int64_t s = systems[k], a = start[s], n = start[s + 1] - a;
        const int64_t room = total < cap ? cap - total : 0, at = total < cap ? total : 0;
        const int64_t c = pairs_small(n, pos + 3 * a, cells + 9 * s, periodic + 3 * s, cutoff,
                                      max_checks, i_out + at, j_out + at, S_out + 3 * at,
                                      offsets + 3 * at, room, a);
        if (c < 0) return c;
        counts[k] = c;
        total += c;
    }
    return total;
}

/* Systems with an atom that moved more than sqrt(thr2) since the lists were built: x, ref
 * (n, 3), sys (n,) system index. Writes their indices (ascending) into `out` and returns how
 * many. A NaN counts as not moved (the blow-up guard reports it). NeighborList._stale_systems
 * on a CPU when the cells did not change. */
#define STALE(NAME, REAL)                                                                     \
int64_t NAME(int64_t n, const REAL *x, const REAL *ref, const int64_t *sys, int64_t n_sys,    \
             double thr2, int64_t *out) {                                                     \
    int64_t found = 0, last = -1;                                                             \
    for (int64_t a = 0; a < n; a++) {                                                         \
        const int64_t s = sys[a];                                                             \
        if (s == last || s < 0 || s >= n_sys) continue;                                       \
        const double dx = (double)x[3 * a] - ref[3 * a];                                      \
        const double dy = (double)x[3 * a + 1] - ref[3 * a + 1];                              \
        const double dz = (double)x[3 * a + 2] - ref[3 * a + 2];                              \
        if (dx * dx + dy * dy + dz * dz > thr2) {                                             \
            out[found++] = s;                                                                 \
            last = s;                                                                         \
        }                                                                                     \
    }                                                                                         \
    return found;                                                                             \
}

STALE(stale_systems_f64, double)
STALE(stale_systems_f32, float)
