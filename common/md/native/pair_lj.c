/* Lennard-Jones 12-6 (ASE's shifted form) over a dense padded neighbour matrix.
 *
 * nbr (n, K) int32 neighbour indices; offs (3, n, K) pair offsets (structure of arrays, a
 * padding entry lies beyond the cutoff); pos (n, 3). Full list: each atom sums over its own
 * row, so rows run in parallel with no write conflicts, and the row's reduction is one SIMD
 * loop. Outputs: per-atom energy (half of each pair + e_atom0), forces (n, 3) and, if
 * `virial` is not NULL, the per-atom virial 0.5 * sum_j r_ij (x) (du/dr / r) r_ij, (n, 9).
 * Same arithmetic as the torch kernel in common/potential/pair.py (LennardJones.pair_terms).
 */
#include <stddef.h>
#include <stdint.h>

/* One neighbour entry k of atom i: its pair vector, energy and force (the virial loop adds to
 * it); the same in both loops of the kernel below. */
#define LJ_PAIR(REAL)                                                                         \
    const int64_t j = nb[k];                                                                  \
    const REAL dx = pos[3 * j] - xi + ox[k];                                                  \
    const REAL dy = pos[3 * j + 1] - yi + oy[k];                                              \
    const REAL dz = pos[3 * j + 2] - zi + oz[k];                                              \
    const REAL r2 = dx * dx + dy * dy + dz * dz;                                              \
    const REAL in = r2 < rc2 ? (REAL)1 : (REAL)0;                                             \
    const REAL inv2 = sig2 / r2;                                                              \
    const REAL c6 = inv2 * inv2 * inv2, c12 = c6 * c6;                                        \
    e += (eps4 * (c12 - c6) - e0) * in;                                                       \
    const REAL du_r = (c6 - 2 * c12) * (inv2 * in) * fpre;                                    \
    fx += dx * du_r; fy += dy * du_r; fz += dz * du_r;

#define LJ_KERNEL(NAME, REAL)                                                                 \
void NAME(int64_t n, int64_t K, const REAL *pos, const int32_t *nbr, const REAL *offs,        \
          double rc2_, double sig2_, double eps4_, double e0_, double fpre_, double e_atom0,  \
          REAL *e_out, REAL *f_out, REAL *virial, int nt) {                                   \
    const REAL rc2 = (REAL)rc2_, sig2 = (REAL)sig2_, eps4 = (REAL)eps4_, e0 = (REAL)e0_;     \
    const REAL fpre = (REAL)fpre_;                                                            \
    const int64_t nK = n * K;                                                                 \
    _Pragma("omp parallel for schedule(static) num_threads(nt)")                              \
    for (int64_t i = 0; i < n; i++) {                                                         \
        const REAL xi = pos[3 * i], yi = pos[3 * i + 1], zi = pos[3 * i + 2];                 \
        const int32_t *nb = nbr + i * K;                                                      \
        const REAL *ox = offs + i * K, *oy = offs + nK + i * K, *oz = offs + 2 * nK + i * K;  \
        REAL fx = 0, fy = 0, fz = 0, e = 0;                                                   \
        REAL wxx = 0, wxy = 0, wxz = 0, wyy = 0, wyz = 0, wzz = 0;                            \
        if (virial == NULL) {                                                                 \
            _Pragma("omp simd reduction(+:fx,fy,fz,e)")                                       \
            for (int64_t k = 0; k < K; k++) {                                                 \
                LJ_PAIR(REAL)                                                                 \
            }                                                                                 \
        } else {                                                                              \
            _Pragma("omp simd reduction(+:fx,fy,fz,e,wxx,wxy,wxz,wyy,wyz,wzz)")               \
            for (int64_t k = 0; k < K; k++) {                                                 \
                LJ_PAIR(REAL)                                                                 \
                wxx += dx * dx * du_r; wxy += dx * dy * du_r; wxz += dx * dz * du_r;          \
                wyy += dy * dy * du_r; wyz += dy * dz * du_r; wzz += dz * dz * du_r;          \
            }                                                                                 \
            REAL *w = virial + 9 * i;                                                         \
            w[0] = (REAL)0.5 * wxx; w[1] = (REAL)0.5 * wxy; w[2] = (REAL)0.5 * wxz;           \
            w[3] = w[1];            w[4] = (REAL)0.5 * wyy; w[5] = (REAL)0.5 * wyz;           \
            w[6] = w[2];            w[7] = w[5];            w[8] = (REAL)0.5 * wzz;           \
        }                                                                                     \
        e_out[i] = (REAL)0.5 * e + (REAL)e_atom0;                                             \
        f_out[3 * i] = fx; f_out[3 * i + 1] = fy; f_out[3 * i + 2] = fz;                      \
    }                                                                                         \
}

LJ_KERNEL(lj_f64, double)
LJ_KERNEL(lj_f32, float)
