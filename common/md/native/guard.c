/* The blow-up guard's common case in one pass: is every value finite and within its limit?
 *
 * pos, vel, forces (n, 3); masses (n,); sys (n,) int64 system index; inv_dof (n_sys,) =
 * 1 / (kB x degrees of freedom) per system; energy (n_sys,); ke2 (n_sys,) scratch. Returns 1
 * when every force component is within +-fmax, every position and energy is finite and every
 * system's kinetic temperature sum(m v^2) / (kB dof) is at most tmax; 0 otherwise (NaN fails
 * every comparison), and the caller then finds which system and why. Same test as the torch
 * fast path of common/md/guard.py (BlowUpGuard.check).
 */
#include <math.h>
#include <stdint.h>

#define GUARD(NAME, REAL)                                                                     \
int NAME(int64_t n, int64_t n_sys, const REAL *pos, const REAL *vel, const REAL *forces,      \
         const REAL *masses, const int64_t *sys, const REAL *inv_dof, const REAL *energy,    \
         double fmax, double tmax, double *ke2) {                                             \
    int ok = 1;                                                                               \
    for (int64_t s = 0; s < n_sys; s++) {                                                     \
        ke2[s] = 0.0;                                                                         \
        if (!isfinite((double)energy[s])) ok = 0;                                             \
    }                                                                                         \
    for (int64_t a = 0; a < n; a++) {                                                         \
        double v2 = 0.0;                                                                      \
        for (int c = 0; c < 3; c++) {                                                         \
            const double f = (double)forces[3 * a + c], v = (double)vel[3 * a + c];           \
            if (!(fabs(f) <= fmax) || !isfinite((double)pos[3 * a + c])) ok = 0;             \
            v2 += v * v;                                                                      \
        }                                                                                     \
        const int64_t s = sys[a];                                                             \
        if (s < 0 || s >= n_sys) return 0;                                                    \
        ke2[s] += (double)masses[a] * v2;                                                     \
    }                                                                                         \
    for (int64_t s = 0; s < n_sys; s++)                                                       \
        if (!(ke2[s] * (double)inv_dof[s] <= tmax)) ok = 0;                                   \
    return ok;                                                                                \
}

GUARD(guard_fine_f64, double)
GUARD(guard_fine_f32, float)
