//! AVX-512 microkernels for "shifted" matrix products, the core of [`crate::shifted`].
//!
//! Both kernels read a source matrix whose row `k` is a contiguous slice `src[koff[k] + q]` of a
//! larger buffer (a shifted view of a zero-padded image), so no im2col matrix is ever built:
//!
//! * [`shift_gemm`]: `out[m, q] = init[m] + Σ_k a[m, k] · src[koff[k] + q]` (forward and input
//!   gradient). Tiles of 4 rows × 6 column segments live in 24 zmm accumulators.
//! * [`shift_gemm_nt`]: `acc[k][m] += Σ_q d[m, q] · src[koff[k] + q]` (weight gradient), with
//!   16-lane vector accumulators kept in memory between cache blocks and reduced by
//!   [`reduce_lanes`].
//!
//! Columns come as [`Seg`]ments of up to 16 lanes with separate source and destination offsets,
//! so a padded source (row pitch `Wp`) maps straight onto an unpadded destination (pitch `OW`).
//! Every caller checks [`available`] first; loads and stores are masked to the segments' lanes,
//! so nothing outside them is read or written.

use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Rows of `a` per register tile (and the row interleave of [`pack_rows`]).
pub const MR: usize = 4;
/// 16-lane vectors per register tile in [`shift_gemm`].
pub const NV: usize = 6;
/// Source rows per register tile in [`shift_gemm_nt`] (4 × 4 accumulators, 4 + 1 operands:
/// no spills).
pub const KB: usize = 4;

/// Whether this CPU runs the AVX-512 kernels (checked once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

/// Packs the `m × k` row-major matrix `a` into row blocks of [`MR`]: block `b` holds
/// `a[b·MR + i, kk]` at `b·k·MR + kk·MR + i` (rows past `m` are zero).
pub fn pack_rows(a: &[f32], m: usize, k: usize) -> Vec<f32> {
    let blocks = m.div_ceil(MR);
    let mut p = vec![0.0f32; blocks * k * MR];
    for (r, row) in a.chunks_exact(k).take(m).enumerate() {
        let (b, i) = (r / MR, r % MR);
        let block = &mut p[b * k * MR..(b + 1) * k * MR];
        for (kk, &v) in row.iter().enumerate() {
            block[kk * MR + i] = v;
        }
    }
    p
}

/// A run of at most 16 consecutive columns: source offset, destination offset, lane mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    /// Column offset in the (shifted) source rows.
    pub src: usize,
    /// Column offset in the destination (or, in [`shift_gemm_nt`], the `d`) rows.
    pub dst: usize,
    /// Lanes in use (the low `n` bits for `n` columns).
    pub mask: u16,
}

impl Seg {
    /// `n ≤ 16` columns starting at `src` / `dst`.
    pub fn new(src: usize, dst: usize, n: usize) -> Self {
        debug_assert!((1..=16).contains(&n));
        Self {
            src,
            dst,
            mask: ((1u32 << n) - 1) as u16,
        }
    }

    /// Columns `0..n` of rows `0..rows`, source row pitch `src_pitch`, destination pitch `n`,
    /// source rows starting at `src0`: segments of 16 per row (the last of a row masked).
    pub fn rows(rows: usize, n: usize, src0: usize, src_pitch: usize) -> Vec<Self> {
        let mut segs = Vec::with_capacity(rows * n.div_ceil(16));
        for r in 0..rows {
            for c in (0..n).step_by(16) {
                segs.push(Self::new(
                    src0 + r * src_pitch + c,
                    r * n + c,
                    16.min(n - c),
                ));
            }
        }
        segs
    }
}

/// One register tile of [`shift_gemm`]: `R ≤ MR` rows × `V ≤ NV` segments.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const V: usize>(
    apack: *const f32,
    koff: &[usize],
    src: *const f32,
    segs: &[Seg],
    out: *mut f32,
    ldo: usize,
    init: &[f32; MR],
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for (i, row) in acc.iter_mut().enumerate() {
        *row = [_mm512_set1_ps(init[i]); V];
    }
    let mut so = [0usize; V];
    let mut mk = [0 as __mmask16; V];
    for v in 0..V {
        so[v] = segs[v].src;
        mk[v] = segs[v].mask;
    }
    for (k, &o) in koff.iter().enumerate() {
        // SAFETY: the caller guarantees `src + koff[k] + seg.src` is readable for the masked
        // lanes of every segment.
        unsafe {
            let p = src.add(o);
            let mut x = [_mm512_setzero_ps(); V];
            for v in 0..V {
                x[v] = _mm512_maskz_loadu_ps(mk[v], p.add(so[v]));
            }
            let w = apack.add(k * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let wi = _mm512_set1_ps(*w.add(i));
                for (a, xv) in row.iter_mut().zip(&x) {
                    *a = _mm512_fmadd_ps(wi, *xv, *a);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            // SAFETY: the caller owns rows `i < R` of `out` at the segments' destinations.
            unsafe { _mm512_mask_storeu_ps(out.add(i * ldo + segs[v].dst), mk[v], *a) };
        }
    }
}

type TileFn = unsafe fn(*const f32, &[usize], *const f32, &[Seg], *mut f32, usize, &[f32; MR]);

fn tile_fn(rows: usize, segments: usize) -> TileFn {
    macro_rules! by_v {
        ($r:literal) => {
            match segments {
                1 => tile::<$r, 1> as TileFn,
                2 => tile::<$r, 2>,
                3 => tile::<$r, 3>,
                4 => tile::<$r, 4>,
                5 => tile::<$r, 5>,
                _ => tile::<$r, 6>,
            }
        };
    }
    match rows {
        1 => by_v!(1),
        2 => by_v!(2),
        3 => by_v!(3),
        _ => by_v!(4),
    }
}

/// `out[r, seg.dst + l] = init[r] + Σ_kk a[r, kk] · src[koff[kk] + seg.src + l]` for `r < m`,
/// every segment and its lanes `l`.
///
/// `apack` is `a` (`m × koff.len()`) packed by [`pack_rows`]; row `r` of `out` starts at
/// `out + r·ldo`; `init` is the per-row start value (bias) or `None` for 0.
///
/// # Safety
/// [`available`] must hold; `src + koff[kk] + seg.src + l` must be readable and
/// `out + r·ldo + seg.dst + l` writable (and not aliased) for every `kk`, `r < m`, segment and
/// lane `l` in its mask.
#[allow(clippy::too_many_arguments)]
pub unsafe fn shift_gemm(
    m: usize,
    segs: &[Seg],
    apack: &[f32],
    koff: &[usize],
    src: *const f32,
    out: *mut f32,
    ldo: usize,
    init: Option<&[f32]>,
) {
    let k = koff.len();
    assert!(
        apack.len() >= m.div_ceil(MR) * k * MR,
        "packed operand too small"
    );
    for group in segs.chunks(NV) {
        for b in 0..m.div_ceil(MR) {
            let rows = MR.min(m - b * MR);
            let mut start = [0.0f32; MR];
            if let Some(init) = init {
                start[..rows].copy_from_slice(&init[b * MR..b * MR + rows]);
            }
            // SAFETY: forwarded caller contract; the tile covers rows `b·MR..b·MR+rows`.
            unsafe {
                tile_fn(rows, group.len())(
                    apack.as_ptr().add(b * k * MR),
                    koff,
                    src,
                    group,
                    out.add(b * MR * ldo),
                    ldo,
                    &start,
                );
            }
        }
    }
}

/// One tile of [`shift_gemm_nt`]: `R ≤ MR` rows of `d` against `C ≤ KB` source rows.
/// Accumulator `(c, i)` lives at `acc[c·acc_stride + i]`.
#[target_feature(enable = "avx512f")]
unsafe fn nt_tile<const R: usize, const C: usize>(
    d: *const f32,
    ldd: usize,
    src: *const f32,
    koff: &[usize],
    segs: &[Seg],
    acc: *mut [f32; 16],
    acc_stride: usize,
) {
    let mut a = [[_mm512_setzero_ps(); C]; R];
    let mut ko = [0usize; C];
    ko.copy_from_slice(&koff[..C]);
    for c in 0..C {
        for (i, row) in a.iter_mut().enumerate() {
            // SAFETY: the caller provides `C` accumulator rows of at least `R` vectors.
            row[c] = unsafe { _mm512_loadu_ps((*acc.add(c * acc_stride + i)).as_ptr()) };
        }
    }
    for seg in segs {
        // SAFETY: the caller guarantees rows `i < R` of `d` at `seg.dst` and
        // `src + koff[c] + seg.src` are readable for the segment's lanes.
        unsafe {
            let mut dv = [_mm512_setzero_ps(); R];
            for (i, v) in dv.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(seg.mask, d.add(i * ldd + seg.dst));
            }
            let p = src.add(seg.src);
            for c in 0..C {
                let x = _mm512_maskz_loadu_ps(seg.mask, p.add(ko[c]));
                for (i, row) in a.iter_mut().enumerate() {
                    row[c] = _mm512_fmadd_ps(dv[i], x, row[c]);
                }
            }
        }
    }
    for c in 0..C {
        for (i, row) in a.iter().enumerate() {
            // SAFETY: as for the load above.
            unsafe { _mm512_storeu_ps((*acc.add(c * acc_stride + i)).as_mut_ptr(), row[c]) };
        }
    }
}

type NtFn = unsafe fn(*const f32, usize, *const f32, &[usize], &[Seg], *mut [f32; 16], usize);

fn nt_fn(rows: usize, cols: usize) -> NtFn {
    macro_rules! by_c {
        ($r:literal) => {
            match cols {
                1 => nt_tile::<$r, 1> as NtFn,
                2 => nt_tile::<$r, 2>,
                3 => nt_tile::<$r, 3>,
                _ => nt_tile::<$r, 4>,
            }
        };
    }
    match rows {
        1 => by_c!(1),
        2 => by_c!(2),
        3 => by_c!(3),
        _ => by_c!(4),
    }
}

/// Segments per cache block of [`shift_gemm_nt`].
const NT_BLOCK: usize = 16;

/// `acc[kk·m_pad + r] += d[r, seg.dst + l] · src[koff[kk] + seg.src + l]` lane-wise (16 partial
/// sums per entry, in a fixed order) for `r < m`, every `kk`, segment and lane `l`;
/// `m_pad = ⌈m / MR⌉·MR`.
///
/// # Safety
/// [`available`] must hold; `d + r·ldd + seg.dst + l` and `src + koff[kk] + seg.src + l` must
/// be readable for all `r < m`, `kk`, segments and their lanes.
pub unsafe fn shift_gemm_nt(
    m: usize,
    d: *const f32,
    ldd: usize,
    src: *const f32,
    koff: &[usize],
    segs: &[Seg],
    acc: &mut [[f32; 16]],
) {
    let blocks = m.div_ceil(MR);
    let m_pad = blocks * MR;
    assert!(acc.len() >= koff.len() * m_pad);
    for chunk in segs.chunks(NT_BLOCK) {
        for b in 0..blocks {
            let rows = MR.min(m - b * MR);
            for (kb, offs) in koff.chunks(KB).enumerate() {
                // SAFETY: forwarded caller contract; accumulators `(kb·KB + c)·m_pad + b·MR + i`
                // lie inside `acc` (asserted above).
                unsafe {
                    nt_fn(rows, offs.len())(
                        d.add(b * MR * ldd),
                        ldd,
                        src,
                        offs,
                        chunk,
                        acc.as_mut_ptr().add(kb * KB * m_pad + b * MR),
                        m_pad,
                    );
                }
            }
        }
    }
}

/// Sum of the 16 lanes of each accumulator, in a fixed order.
pub fn reduce_lanes(v: &[f32; 16]) -> f32 {
    let mut s = [0.0f32; 8];
    for (i, x) in s.iter_mut().enumerate() {
        *x = v[i] + v[i + 8];
    }
    let t = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    (t[0] + t[2]) + (t[1] + t[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 7.0)
            .collect()
    }

    #[test]
    fn shift_gemm_matches_naive_for_all_tails() {
        if !available() {
            return;
        }
        for (m, rows, n) in [(1, 1, 5), (3, 2, 17), (4, 3, 32), (6, 2, 40), (9, 5, 13)] {
            let koff = [0usize, 3, 40, 41, 77];
            let k = koff.len();
            let a = data(m * k, 1);
            let pitch = n + 3;
            let src = data(rows * pitch + 100, 2);
            let bias = data(m, 3);
            let segs = Seg::rows(rows, n, 1, pitch);
            let ldo = rows * n + 3;
            let mut out = vec![f32::NAN; m * ldo];
            unsafe {
                shift_gemm(
                    m,
                    &segs,
                    &pack_rows(&a, m, k),
                    &koff,
                    src.as_ptr(),
                    out.as_mut_ptr(),
                    ldo,
                    Some(&bias),
                );
            }
            for r in 0..m {
                for y in 0..rows {
                    for c in 0..n {
                        let s = 1 + y * pitch + c;
                        let want: f32 = bias[r]
                            + (0..k)
                                .map(|kk| a[r * k + kk] * src[koff[kk] + s])
                                .sum::<f32>();
                        let got = out[r * ldo + y * n + c];
                        assert!((got - want).abs() < 1e-4, "m{m} r{r} y{y} c{c}");
                    }
                }
                assert!(
                    out[r * ldo + rows * n..(r + 1) * ldo]
                        .iter()
                        .all(|v| v.is_nan())
                );
            }
        }
    }

    #[test]
    fn shift_gemm_nt_matches_naive() {
        if !available() {
            return;
        }
        for (m, rows, n) in [(1, 1, 7), (4, 2, 16), (7, 3, 50)] {
            let koff = [0usize, 1, 5, 9, 30, 31, 32, 60];
            let ldd = rows * n + 2;
            let d = data(m * ldd, 4);
            let pitch = n + 2;
            let src = data(rows * pitch + 70, 5);
            let segs = Seg::rows(rows, n, 0, pitch);
            let m_pad = m.div_ceil(MR) * MR;
            let mut acc = vec![[0.0f32; 16]; koff.len() * m_pad];
            unsafe { shift_gemm_nt(m, d.as_ptr(), ldd, src.as_ptr(), &koff, &segs, &mut acc) };
            for (kk, &o) in koff.iter().enumerate() {
                for i in 0..m {
                    let want: f32 = (0..rows)
                        .flat_map(|y| (0..n).map(move |c| (y, c)))
                        .map(|(y, c)| d[i * ldd + y * n + c] * src[o + y * pitch + c])
                        .sum();
                    let got = reduce_lanes(&acc[kk * m_pad + i]);
                    assert!(
                        (got - want).abs() < 1e-3,
                        "m{m} kk{kk} i{i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
