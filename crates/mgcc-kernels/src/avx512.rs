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

/// Offset of row block `b` (rows `b·MR..`) in cache block `k0..` of a [`pack_rows`] buffer.
fn packed_at(m: usize, k: usize, b: usize, k0: usize) -> usize {
    let m_pad = m.div_ceil(MR) * MR;
    k0 * m_pad + b * KC.min(k - k0) * MR
}

/// Index of `a[r, kk]` in a [`pack_rows`] buffer of an `m × k` matrix (which holds
/// `⌈m / MR⌉·MR·k` values, rows past `m` zero).
pub fn packed_index(m: usize, k: usize, r: usize, kk: usize) -> usize {
    packed_at(m, k, r / MR, kk / KC * KC) + (kk % KC) * MR + r % MR
}

/// Packs the `m × k` row-major matrix `a` for [`shift_gemm`]: cache block by cache block of
/// [`KC`] columns, and within one, row block by row block of [`MR`] rows interleaved
/// (`a[b·MR + i, k0 + kk]` at `packed_at(b, k0) + kk·MR + i`; rows past `m` are zero), so the
/// kernel reads each cache block of `a` as one sequential stream.
pub fn pack_rows(a: &[f32], m: usize, k: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let blocks = m.div_ceil(MR);
    let mut p = crate::scratch::take(blocks * MR * k);
    // Cache block `k0..k0 + kc` occupies `k0·m_pad..(k0 + kc)·m_pad`: pack them in parallel.
    p[..blocks * MR * k]
        .par_chunks_mut(KC * blocks * MR)
        .enumerate()
        .for_each(|(c, chunk)| {
            let k0 = c * KC;
            let kc = KC.min(k - k0);
            let zeros = [0.0f32; KC];
            for (b, dst) in chunk.chunks_exact_mut(kc * MR).enumerate() {
                let row = |i: usize| {
                    let r = b * MR + i;
                    if r < m {
                        &a[r * k + k0..r * k + k0 + kc]
                    } else {
                        &zeros[..kc]
                    }
                };
                let [r0, r1, r2, r3] = [row(0), row(1), row(2), row(3)];
                for ((((d, &v0), &v1), &v2), &v3) in
                    dst.chunks_exact_mut(MR).zip(r0).zip(r1).zip(r2).zip(r3)
                {
                    d.copy_from_slice(&[v0, v1, v2, v3]);
                }
            }
        });
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

/// Source rows per cache block of [`shift_gemm`]: a packed panel of `KC × NV` vectors (24 KiB)
/// stays in L1 while every row block of `a` streams past it.
pub const KC: usize = 96;

/// One register tile of [`shift_gemm`] over one packed panel: `R ≤ MR` rows × `V ≤ NV`
/// segments, `kc` source rows. Starts from `start` (first panel) or from `out` (later panels).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const V: usize>(
    apack: *const f32,
    panel: *const __m512,
    kc: usize,
    out: *mut f32,
    ldo: usize,
    dst: &[usize; NV],
    mk: &[__mmask16; NV],
    start: Option<&[f32; MR]>,
    epi: Option<&RowEpilogue>,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for (i, row) in acc.iter_mut().enumerate() {
        for (v, a) in row.iter_mut().enumerate() {
            *a = match start {
                Some(s) => _mm512_set1_ps(s[i]),
                // SAFETY: the caller owns rows `i < R` of `out` at the segments' destinations,
                // written by an earlier panel.
                None => unsafe { _mm512_maskz_loadu_ps(mk[v], out.add(i * ldo + dst[v])) },
            };
        }
    }
    for k in 0..kc {
        // SAFETY: the panel holds `kc · V` vectors and `apack` `kc · MR` values.
        unsafe {
            let p = panel.add(k * V);
            let mut x = [_mm512_setzero_ps(); V];
            for (v, xv) in x.iter_mut().enumerate() {
                *xv = *p.add(v);
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
    if let Some(e) = epi {
        for (i, row) in acc.iter_mut().enumerate() {
            let (scale, shift) = (_mm512_set1_ps(e.scale[i]), _mm512_set1_ps(e.shift[i]));
            for a in row.iter_mut() {
                *a = _mm512_fmadd_ps(*a, scale, shift);
                if e.relu {
                    *a = _mm512_max_ps(*a, _mm512_setzero_ps());
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, a) in row.iter().enumerate() {
            // SAFETY: the caller owns rows `i < R` of `out` at the segments' destinations.
            unsafe { _mm512_mask_storeu_ps(out.add(i * ldo + dst[v]), mk[v], *a) };
        }
    }
}

type TileFn = unsafe fn(
    *const f32,
    *const __m512,
    usize,
    *mut f32,
    usize,
    &[usize; NV],
    &[__mmask16; NV],
    Option<&[f32; MR]>,
    Option<&RowEpilogue>,
);

/// Per-row affine map (then optional ReLU) applied to a finished tile: `y = acc·scale + shift`.
struct RowEpilogue {
    scale: [f32; MR],
    shift: [f32; MR],
    relu: bool,
}

/// Per-output-row `y = max?(v·scale[r] + shift[r], 0)` applied by [`shift_gemm`] as it stores
/// its results (an inference batch norm, optionally followed by ReLU, fused into the product).
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Scale per output row.
    pub scale: &'a [f32],
    /// Shift per output row.
    pub shift: &'a [f32],
    /// Whether ReLU follows.
    pub relu: bool,
}

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

/// Copies the masked lanes of source rows `koff` for the segments `group` into `panel`
/// (`koff.len() · group.len()` vectors, row-major, unused lanes zero).
#[target_feature(enable = "avx512f")]
unsafe fn pack_panel(src: *const f32, koff: &[usize], group: &[Seg], panel: &mut [__m512]) {
    let v = group.len();
    for (k, &o) in koff.iter().enumerate() {
        for (j, seg) in group.iter().enumerate() {
            // SAFETY: the caller guarantees the masked lanes are readable.
            panel[k * v + j] = unsafe { _mm512_maskz_loadu_ps(seg.mask, src.add(o + seg.src)) };
        }
    }
}

/// `out[r, seg.dst + l] = init[r] + Σ_kk a[r, kk] · src[koff[kk] + seg.src + l]` for `r < m`,
/// every segment and its lanes `l`.
///
/// Only the rows in `rows` (starting at a multiple of [`MR`]) are computed. `apack` is `a`
/// (`m × koff.len()`) packed by [`pack_rows`]; row `r` of `out` starts at `out + r·ldo`;
/// `init` is the per-row start value (bias) or `None` for 0; `epilogue`, when given, maps each
/// finished value of row `r` to `max?(v·scale[r] + shift[r], 0)` before it is stored. The source rows are
/// taken [`KC`] at a time into a packed, L1-resident panel per group of [`NV`] segments.
///
/// # Safety
/// [`available`] must hold; `src + koff[kk] + seg.src + l` must be readable and
/// `out + r·ldo + seg.dst + l` writable (and not aliased) for every `kk`, `r < m`, segment and
/// lane `l` in its mask.
#[allow(clippy::too_many_arguments)]
pub unsafe fn shift_gemm(
    m: usize,
    rows: std::ops::Range<usize>,
    segs: &[Seg],
    apack: &[f32],
    koff: &[usize],
    src: *const f32,
    out: *mut f32,
    ldo: usize,
    init: Option<&[f32]>,
    epilogue: Option<Epilogue<'_>>,
) {
    let k = koff.len();
    assert!(
        apack.len() >= m.div_ceil(MR) * k * MR,
        "packed operand too small"
    );
    assert!(rows.start.is_multiple_of(MR) && rows.end <= m);
    let blocks = rows.start / MR..rows.end.div_ceil(MR);
    // Groups of segments per super-block: its output (`m × SB·NV·16` values) stays in L2, so
    // each cache block of `a` is read from memory once per super-block.
    let sb = (L2_OUT / (blocks.len() * MR * NV * 16 * 4).max(1)).max(1);
    // One panel per thread, reused across calls (many small products, e.g. Winograd's).
    thread_local! {
        static PANEL: std::cell::RefCell<Vec<__m512>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut panel = PANEL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if panel.len() < KC * NV {
        // SAFETY: AVX-512 is available (caller contract); `__m512` is plain data.
        panel = vec![unsafe { _mm512_setzero_ps() }; KC * NV];
    }
    for block in segs.chunks(NV * sb) {
        for k0 in (0..k.max(1)).step_by(KC) {
            let k1 = (k0 + KC).min(k);
            for group in block.chunks(NV) {
                let mut dst = [0usize; NV];
                let mut mk = [0 as __mmask16; NV];
                for (j, seg) in group.iter().enumerate() {
                    dst[j] = seg.dst;
                    mk[j] = seg.mask;
                }
                // SAFETY: forwarded caller contract.
                unsafe { pack_panel(src, &koff[k0..k1], group, &mut panel) };
                for b in blocks.clone() {
                    let nr = MR.min(rows.end - b * MR);
                    let mut start = [0.0f32; MR];
                    if let Some(init) = init {
                        start[..nr].copy_from_slice(&init[b * MR..b * MR + nr]);
                    }
                    let epi = epilogue.filter(|_| k1 == k).map(|e| {
                        let mut r = RowEpilogue {
                            scale: [0.0; MR],
                            shift: [0.0; MR],
                            relu: e.relu,
                        };
                        r.scale[..nr].copy_from_slice(&e.scale[b * MR..b * MR + nr]);
                        r.shift[..nr].copy_from_slice(&e.shift[b * MR..b * MR + nr]);
                        r
                    });
                    // SAFETY: forwarded caller contract; the tile covers rows
                    // `b·MR..b·MR+rows`, and panels after the first continue from the values
                    // the first one stored.
                    unsafe {
                        tile_fn(nr, group.len())(
                            apack.as_ptr().add(packed_at(m, k, b, k0)),
                            panel.as_ptr(),
                            k1 - k0,
                            out.add(b * MR * ldo),
                            ldo,
                            &dst,
                            &mk,
                            (k0 == 0).then_some(&start),
                            epi.as_ref(),
                        );
                    }
                }
            }
        }
    }
    PANEL.with(|p| *p.borrow_mut() = panel);
}

/// Bytes of output a super-block of [`shift_gemm`] keeps in L2.
const L2_OUT: usize = 1 << 20;

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

/// A run of consecutive pixels for [`outer_gemm`]: source offset, pixel index, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Offset of the first pixel in the (shifted) source rows.
    pub src: usize,
    /// Index of the first pixel in the transposed output gradient.
    pub dst: usize,
    /// Pixels in the run.
    pub len: usize,
}

/// Accumulator rows (source rows) per tile of [`outer_gemm`] for `mv` vectors of 16 output
/// channels: `KT·MV = 24` accumulators, plus `MV` gradient vectors and one broadcast.
pub const fn outer_rows(mv: usize) -> usize {
    24 / mv
}

/// One tile of [`outer_gemm`]: `KT` source rows × `MV` vectors of output channels, kept in
/// registers over all `runs`.
#[target_feature(enable = "avx512f")]
unsafe fn outer_tile<const KT: usize, const MV: usize>(
    src: *const f32,
    koff: &[usize],
    runs: &[Run],
    dyt: *const f32,
    ldt: usize,
    acc: *mut f32,
    lda: usize,
) {
    let mut a = [[_mm512_setzero_ps(); MV]; KT];
    let mut ko = [0usize; KT];
    ko.copy_from_slice(&koff[..KT]);
    // SAFETY (whole body): the caller guarantees `acc` holds `KT` rows of `lda ≥ 16·MV`
    // values, the runs' source reads and gradient rows are in bounds.
    unsafe {
        for (t, row) in a.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(acc.add(t * lda + v * 16));
            }
        }
        for run in runs {
            let s = src.add(run.src);
            let mut d = dyt.add(run.dst * ldt);
            for j in 0..run.len {
                let mut dv = [_mm512_setzero_ps(); MV];
                for (v, x) in dv.iter_mut().enumerate() {
                    *x = _mm512_loadu_ps(d.add(v * 16));
                }
                for (t, row) in a.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*s.add(ko[t] + j));
                    for (v, acc) in row.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_ps(x, dv[v], *acc);
                    }
                }
                d = d.add(ldt);
            }
        }
        for (t, row) in a.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                _mm512_storeu_ps(acc.add(t * lda + v * 16), *x);
            }
        }
    }
}

type OuterFn = unsafe fn(*const f32, &[usize], &[Run], *const f32, usize, *mut f32, usize);

fn outer_fn(mv: usize, kt: usize) -> OuterFn {
    macro_rules! by_kt {
        ($mv:literal; $($k:literal)*) => {
            match kt {
                $($k => outer_tile::<$k, $mv> as OuterFn,)*
                _ => unreachable!("tile rows {kt} > {}", outer_rows($mv)),
            }
        };
    }
    match mv {
        1 => by_kt!(1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24),
        2 => by_kt!(2; 1 2 3 4 5 6 7 8 9 10 11 12),
        4 => by_kt!(4; 1 2 3 4 5 6),
        _ => unreachable!("mv must be 1, 2 or 4"),
    }
}

/// `acc[kk·lda + c] += Σ_runs Σ_j src[koff[kk] + run.src + j] · dyt[(run.dst + j)·ldt + c]` for
/// every `kk` and `c < 16·mv` (weight gradient with channels-last output gradient `dyt`):
/// outer products, the gradient as vectors over output channels, the source as broadcasts.
///
/// # Safety
/// [`available`] must hold; `mv ∈ {1, 2, 4}`; `acc` holds `koff.len()` rows of `lda ≥ 16·mv`
/// values; `src + koff[kk] + run.src + j` and `dyt + (run.dst + j)·ldt + c` are readable for
/// every `kk`, run, `j < run.len`, `c < 16·mv`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn outer_gemm(
    mv: usize,
    src: *const f32,
    koff: &[usize],
    runs: &[Run],
    dyt: *const f32,
    ldt: usize,
    acc: &mut [f32],
    lda: usize,
) {
    assert!(lda >= 16 * mv && acc.len() >= koff.len() * lda);
    let kt = outer_rows(mv);
    for (i, offs) in koff.chunks(kt).enumerate() {
        // SAFETY: forwarded caller contract; rows `i·kt..` of `acc` are in bounds (asserted).
        unsafe {
            outer_fn(mv, offs.len())(
                src,
                offs,
                runs,
                dyt,
                ldt,
                acc.as_mut_ptr().add(i * kt * lda),
                lda,
            );
        }
    }
}

/// Transposes the 16×16 block `src[i·lds + j]` into `dst[j·ldd + i]`.
///
/// # Safety
/// [`available`] must hold; both blocks must be in bounds.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose16(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    // SAFETY: in-bounds by the caller's contract.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * lds)));
        // Pairs of rows interleaved within 128-bit lanes, then pairs of pairs: `u[4g + c]`
        // holds rows 4g..4g+4 at column 4l + c in lane l.
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, c) = (i / 4, i % 4);
            let a = _mm512_castps_pd(t[4 * g + c / 2]);
            let b = _mm512_castps_pd(t[4 * g + 2 + c / 2]);
            _mm512_castpd_ps(if c % 2 == 0 {
                _mm512_unpacklo_pd(a, b)
            } else {
                _mm512_unpackhi_pd(a, b)
            })
        });
        for c in 0..4 {
            let v0 = _mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]);
            let v1 = _mm512_shuffle_f32x4::<0xEE>(u[c], u[4 + c]);
            let w0 = _mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]);
            let w1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + c], u[12 + c]);
            _mm512_storeu_ps(dst.add(c * ldd), _mm512_shuffle_f32x4::<0x88>(v0, w0));
            _mm512_storeu_ps(dst.add((4 + c) * ldd), _mm512_shuffle_f32x4::<0xDD>(v0, w0));
            _mm512_storeu_ps(dst.add((8 + c) * ldd), _mm512_shuffle_f32x4::<0x88>(v1, w1));
            _mm512_storeu_ps(
                dst.add((12 + c) * ldd),
                _mm512_shuffle_f32x4::<0xDD>(v1, w1),
            );
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
                    0..m,
                    &segs,
                    &pack_rows(&a, m, k),
                    &koff,
                    src.as_ptr(),
                    out.as_mut_ptr(),
                    ldo,
                    Some(&bias),
                    None,
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

    #[test]
    fn transpose16_transposes() {
        if !available() {
            return;
        }
        let src = data(16 * 19, 4);
        let mut dst = vec![0.0f32; 16 * 21];
        // SAFETY: AVX-512 checked; both blocks in bounds.
        unsafe { transpose16(src.as_ptr(), 19, dst.as_mut_ptr(), 21) };
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(dst[j * 21 + i], src[i * 19 + j], "({i}, {j})");
            }
        }
    }

    #[test]
    fn outer_gemm_matches_naive_for_all_tile_shapes() {
        if !available() {
            return;
        }
        let src = data(4000, 1);
        for mv in [1, 2, 4] {
            let ldt = 16 * mv + 16;
            let pixels = 40;
            let dyt = data(pixels * ldt, 2);
            let runs = [
                Run {
                    src: 3,
                    dst: 0,
                    len: 17,
                },
                Run {
                    src: 100,
                    dst: 17,
                    len: 1,
                },
                Run {
                    src: 51,
                    dst: 20,
                    len: 20,
                },
            ];
            for k in [
                1,
                outer_rows(mv) - 1,
                outer_rows(mv),
                2 * outer_rows(mv) + 3,
            ] {
                let koff: Vec<usize> = (0..k).map(|i| (i * 37) % 3000).collect();
                let lda = 16 * mv + 5;
                let start = data(k * lda, 3);
                let mut acc = start.clone();
                // SAFETY: AVX-512 checked; reads stay below 3000 + 140 < 4000 and 40·ldt.
                unsafe {
                    outer_gemm(
                        mv,
                        src.as_ptr(),
                        &koff,
                        &runs,
                        dyt.as_ptr(),
                        ldt,
                        &mut acc,
                        lda,
                    );
                }
                for kk in 0..k {
                    for c in 0..lda {
                        let mut want = start[kk * lda + c];
                        if c < 16 * mv {
                            for r in &runs {
                                for j in 0..r.len {
                                    want += src[koff[kk] + r.src + j] * dyt[(r.dst + j) * ldt + c];
                                }
                            }
                        }
                        let got = acc[kk * lda + c];
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "mv {mv} k {k}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
