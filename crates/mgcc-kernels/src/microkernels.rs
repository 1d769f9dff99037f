//! SIMD microkernels for "shifted" matrix products, the core of [`crate::shifted`], written once
//! over [`Lanes`] and compiled for AVX-512 (16 lanes) and AVX2 + FMA (8 lanes) ([`Kernels`]).
//!
//! Both kernels read a source matrix whose row `k` is a contiguous slice `src[koff[k] + q]` of a
//! larger buffer (a shifted view of a zero-padded image), so no im2col matrix is ever built:
//!
//! * [`shift_gemm`]: `out[m, q] = init[m] + Σ_k a[m, k] · src[koff[k] + q]` (forward and input
//!   gradient). Tiles of [`MR`] rows × `NV` vectors live in registers (4 × 6 zmm, 4 × 2 ymm).
//! * [`shift_gemm_nt`]: `acc[k][m] += Σ_q d[m, q] · src[koff[k] + q]` (weight gradient), with
//!   `N`-lane vector accumulators kept in memory between cache blocks and reduced by
//!   [`reduce_lanes`].
//! * [`outer_gemm`]: the weight gradient as outer products with a channels-last gradient.
//!
//! Columns come as [`Seg`]ments of up to `N` lanes with separate source and destination
//! offsets, so a padded source (row pitch `Wp`) maps straight onto an unpadded destination
//! (pitch `OW`). Loads and stores are masked to the segments' lanes, so nothing outside them is
//! read or written. Every kernel needs its level's CPU features ([`crate::simd`]).

use crate::lanes::{Avx2, Avx512, Lanes, lanes_entry};

/// Rows of `a` per register tile (and the row interleave of [`pack_rows`]), at every level.
pub const MR: usize = 4;
/// Most vectors per register tile of [`shift_gemm`] at any level (`Lanes::NV ≤ NV_MAX`).
const NV_MAX: usize = 6;

/// The level-specific (`#[target_feature]`) entry points of the kernels.
pub trait Kernels: Lanes {
    #[doc(hidden)]
    fn tile_fn(rows: usize, segments: usize) -> TileFn<Self>;
    #[doc(hidden)]
    fn pack_panel_fn() -> PackFn<Self>;
    #[doc(hidden)]
    fn nt_fn(rows: usize, cols: usize) -> NtFn;
    #[doc(hidden)]
    fn outer_fn(mv: usize, kt: usize) -> OuterFn;
    #[doc(hidden)]
    fn transpose_fn() -> TransposeFn;
}

#[doc(hidden)]
pub type TileFn<L> = unsafe fn(
    *const f32,
    *const <L as Lanes>::V,
    usize,
    *mut f32,
    usize,
    &[usize; NV_MAX],
    &[u16; NV_MAX],
    Option<&[f32; MR]>,
    Option<&RowEpilogue>,
);
#[doc(hidden)]
pub type PackFn<L> = unsafe fn(*const f32, &[usize], &[Seg], *mut <L as Lanes>::V);
#[doc(hidden)]
pub type NtFn = unsafe fn(*const f32, usize, *const f32, &[usize], &[Seg], *mut f32, usize);
#[doc(hidden)]
pub type OuterFn = unsafe fn(*const f32, &[usize], &[Run], *const f32, usize, *mut f32, usize);
#[doc(hidden)]
pub type TransposeFn = unsafe fn(*const f32, usize, *mut f32, usize);

/// `f::<…, v, …>` as a function pointer of type `ty` for the run-time `x == v`, `v` one of the
/// listed values; `_` in the generic arguments marks where `v` goes.
macro_rules! pick {
    ($m:ident::$f:ident::<_, $b:literal>, $x:expr, $ty:ty; $($v:literal)*) => {
        match $x {
            $($v => $m::$f::<$v, $b> as $ty,)*
            x => unreachable!("{} {x} out of range", stringify!($f)),
        }
    };
    ($m:ident::$f:ident::<$a:literal, _>, $x:expr, $ty:ty; $($v:literal)*) => {
        match $x {
            $($v => $m::$f::<$a, $v> as $ty,)*
            x => unreachable!("{} {x} out of range", stringify!($f)),
        }
    };
}

/// Implements [`Kernels`] for a level: `#[target_feature]` instances of the generic bodies.
macro_rules! impl_kernels {
    ($l:ty, $m:ident, $feat:literal) => {
        mod $m {
            use super::*;
            lanes_entry!($feat, $l;
                fn tile<const R: usize, const V: usize>(
                    apack: *const f32, panel: *const <$l as Lanes>::V, kc: usize, out: *mut f32,
                    ldo: usize, dst: &[usize; NV_MAX], bits: &[u16; NV_MAX],
                    start: Option<&[f32; MR]>, epi: Option<&RowEpilogue>
                ) = tile_body;
                fn pack_panel<>(src: *const f32, koff: &[usize], group: &[Seg], panel: *mut <$l as Lanes>::V) = pack_panel_body;
                fn nt_tile<const R: usize, const C: usize>(
                    d: *const f32, ldd: usize, src: *const f32, koff: &[usize], segs: &[Seg],
                    acc: *mut f32, acc_stride: usize
                ) = nt_tile_body;
                fn outer_tile<const KT: usize, const MV: usize>(
                    src: *const f32, koff: &[usize], runs: &[Run], dyt: *const f32, ldt: usize,
                    acc: *mut f32, lda: usize
                ) = outer_tile_body;
                fn transpose<>(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) = transpose_body;
            );
        }

        impl Kernels for $l {
            fn tile_fn(rows: usize, segments: usize) -> TileFn<Self> {
                debug_assert!(segments <= Self::NV);
                match rows {
                    1 => pick!($m::tile::<1, _>, segments, TileFn<Self>; 1 2 3 4 5 6),
                    2 => pick!($m::tile::<2, _>, segments, TileFn<Self>; 1 2 3 4 5 6),
                    3 => pick!($m::tile::<3, _>, segments, TileFn<Self>; 1 2 3 4 5 6),
                    _ => pick!($m::tile::<4, _>, segments, TileFn<Self>; 1 2 3 4 5 6),
                }
            }

            fn pack_panel_fn() -> PackFn<Self> {
                $m::pack_panel
            }

            fn nt_fn(rows: usize, cols: usize) -> NtFn {
                debug_assert!(cols <= Self::KB);
                match rows {
                    1 => pick!($m::nt_tile::<1, _>, cols, NtFn; 1 2 3 4),
                    2 => pick!($m::nt_tile::<2, _>, cols, NtFn; 1 2 3 4),
                    3 => pick!($m::nt_tile::<3, _>, cols, NtFn; 1 2 3 4),
                    _ => pick!($m::nt_tile::<4, _>, cols, NtFn; 1 2 3 4),
                }
            }

            fn outer_fn(mv: usize, kt: usize) -> OuterFn {
                assert!(kt <= outer_rows::<Self>(mv), "tile rows {kt} for {mv} vectors");
                match mv {
                    1 => pick!($m::outer_tile::<_, 1>, kt, OuterFn;
                        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24),
                    2 => pick!($m::outer_tile::<_, 2>, kt, OuterFn; 1 2 3 4 5 6 7 8 9 10 11 12),
                    4 => pick!($m::outer_tile::<_, 4>, kt, OuterFn; 1 2 3 4 5 6),
                    _ => unreachable!("mv must be 1, 2 or 4"),
                }
            }

            fn transpose_fn() -> TransposeFn {
                $m::transpose
            }
        }
    };
}

impl_kernels!(Avx512, avx512_entries, "avx512f");
impl_kernels!(Avx2, avx2_entries, "avx2,fma");

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
    let mut p = crate::scratch::take(m.div_ceil(MR) * MR * k);
    pack_rows_into(a, m, k, &mut p);
    p
}

/// [`pack_rows`] into the first `⌈m / MR⌉·MR·k` values of `p`.
pub fn pack_rows_into(a: &[f32], m: usize, k: usize, p: &mut [f32]) {
    use rayon::prelude::*;
    let blocks = m.div_ceil(MR);
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
}

/// A run of at most 16 consecutive destination columns (at most `N` for an `N`-lane level):
/// source offset, destination offset, lane mask, and optionally a second source run.
///
/// With `second = Some((split, src2))` lanes `l < split` read `src + l` and lanes `l ≥ split`
/// read `src2 + (l − split)`: two short output rows that are contiguous in the destination but
/// not in the padded source share one vector ([`Seg::row_pairs`]). Only [`shift_gemm`] reads
/// such segments (its panel packing joins the two runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    /// Column offset in the (shifted) source rows.
    pub src: usize,
    /// Column offset in the destination (or, in [`shift_gemm_nt`], the `d`) rows.
    pub dst: usize,
    /// Lanes in use (the low `n` bits for `n` columns).
    pub mask: u16,
    /// `(split, src2)`: lanes from `split` on read from `src2` onwards.
    pub second: Option<(usize, usize)>,
}

impl Seg {
    /// `n ≤ 16` columns starting at `src` / `dst`.
    pub fn new(src: usize, dst: usize, n: usize) -> Self {
        debug_assert!((1..=16).contains(&n));
        Self {
            src,
            dst,
            mask: ((1u32 << n) - 1) as u16,
            second: None,
        }
    }

    /// Columns `0..n` of rows `0..rows`, source row pitch `src_pitch`, destination pitch `n`,
    /// source rows starting at `src0`: segments of `lanes` (≤ 16) per row, the last of a row
    /// masked.
    pub fn rows(rows: usize, n: usize, src0: usize, src_pitch: usize, lanes: usize) -> Vec<Self> {
        let mut segs = Vec::with_capacity(rows * n.div_ceil(lanes));
        for r in 0..rows {
            for c in (0..n).step_by(lanes) {
                segs.push(Self::new(
                    src0 + r * src_pitch + c,
                    r * n + c,
                    lanes.min(n - c),
                ));
            }
        }
        segs
    }

    /// [`Seg::rows`] for rows of `n ≤ lanes/2` columns: two rows per segment (the last row
    /// alone when `rows` is odd), so narrow images fill the vectors (an 8-wide image uses all
    /// 16 AVX-512 lanes instead of 8).
    pub fn row_pairs(
        rows: usize,
        n: usize,
        src0: usize,
        src_pitch: usize,
        lanes: usize,
    ) -> Vec<Self> {
        assert!(n >= 1 && 2 * n <= lanes.min(16), "rows too wide to pair");
        (0..rows)
            .step_by(2)
            .map(|r| {
                let src = src0 + r * src_pitch;
                if r + 1 < rows {
                    Self {
                        src,
                        dst: r * n,
                        mask: ((1u32 << (2 * n)) - 1) as u16,
                        second: Some((n, src + src_pitch)),
                    }
                } else {
                    Self::new(src, r * n, n)
                }
            })
            .collect()
    }

    /// One past the last source column this segment reads.
    pub fn src_end(&self) -> usize {
        let lanes = 16 - self.mask.leading_zeros() as usize;
        match self.second {
            Some((split, src2)) => (self.src + split).max(src2 + lanes - split),
            None => self.src + lanes,
        }
    }

    /// The lane masks of the first and the second source run.
    fn part_masks(&self) -> (u16, u16) {
        match self.second {
            Some((split, _)) => {
                let lo = ((1u32 << split) - 1) as u16;
                (self.mask & lo, self.mask & !lo)
            }
            None => (self.mask, 0),
        }
    }
}

/// Whether every segment's lanes lie within `L`'s vectors.
pub fn fits<L: Lanes>(segs: &[Seg]) -> bool {
    segs.iter().all(|s| u32::from(s.mask) >> L::N == 0)
}

/// Source rows per cache block of [`shift_gemm`]: a packed panel of `KC × NV` vectors (36 KiB
/// of zmm, 9 KiB of ymm) stays in L1 while every row block of `a` streams past it.
pub const KC: usize = 96;

/// One register tile of [`shift_gemm`] over one packed panel: `R ≤ MR` rows × `V ≤ NV`
/// segments, `kc` source rows. Starts from `start` (first panel) or from `out` (later panels).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_body<L: Lanes, const R: usize, const V: usize>(
    apack: *const f32,
    panel: *const L::V,
    kc: usize,
    out: *mut f32,
    ldo: usize,
    dst: &[usize; NV_MAX],
    bits: &[u16; NV_MAX],
    start: Option<&[f32; MR]>,
    epi: Option<&RowEpilogue>,
) {
    // SAFETY (whole body): the level's features are enabled (entry point); the caller owns rows
    // `i < R` of `out` at the segments' destinations (written by an earlier panel when `start`
    // is `None`), the panel holds `kc · V` vectors and `apack` `kc · MR` values.
    unsafe {
        // Loops, not closures, in these bodies: a closure would not inherit the entry point's
        // features, and its vector operations would stay calls.
        let mut mk = [L::mask(0); V];
        for (m, b) in mk.iter_mut().zip(bits) {
            *m = L::mask(*b);
        }
        let mut acc = [[L::zero(); V]; R];
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, a) in row.iter_mut().enumerate() {
                *a = match start {
                    Some(s) => L::splat(s[i]),
                    None => L::load_part(mk[v], out.add(i * ldo + dst[v])),
                };
            }
        }
        for k in 0..kc {
            let p = panel.add(k * V);
            let mut x = [L::zero(); V];
            for (v, xv) in x.iter_mut().enumerate() {
                *xv = *p.add(v);
            }
            let w = apack.add(k * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let wi = L::splat(*w.add(i));
                for (a, xv) in row.iter_mut().zip(&x) {
                    *a = L::fma(wi, *xv, *a);
                }
            }
        }
        if let Some(e) = epi {
            for (i, row) in acc.iter_mut().enumerate() {
                let (scale, shift) = (L::splat(e.scale[i]), L::splat(e.shift[i]));
                for a in row.iter_mut() {
                    *a = L::fma(*a, scale, shift);
                    if e.relu {
                        *a = L::max(*a, L::zero());
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                L::store_part(out.add(i * ldo + dst[v]), mk[v], *a);
            }
        }
    }
}

/// Per-row affine map (then optional ReLU) applied to a finished tile: `y = acc·scale + shift`.
#[doc(hidden)]
pub struct RowEpilogue {
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

/// Copies the masked lanes of source rows `koff` for the segments `group` into `panel`
/// (`koff.len() · group.len()` vectors, row-major, unused lanes zero); a segment with a second
/// source run gets its lanes from both.
#[inline(always)]
unsafe fn pack_panel_body<L: Lanes>(
    src: *const f32,
    koff: &[usize],
    group: &[Seg],
    panel: *mut L::V,
) {
    let v = group.len();
    // SAFETY: the caller guarantees the masked lanes are readable and the panel large enough;
    // the second run's base pointer is formed with wrapping arithmetic and only its own lanes
    // (`l ≥ split`, at `src2 + l − split`) are accessed.
    unsafe {
        let mut mk = [L::mask(0); NV_MAX];
        let mut mk2 = [L::mask(0); NV_MAX];
        let mut second = [None; NV_MAX];
        for (j, seg) in group.iter().enumerate() {
            let (lo, hi) = seg.part_masks();
            mk[j] = L::mask(lo);
            mk2[j] = L::mask(hi);
            second[j] = seg.second;
        }
        if second[..v].iter().all(Option::is_none) {
            // Single runs only: one masked load per vector.
            for (k, &o) in koff.iter().enumerate() {
                for (j, seg) in group.iter().enumerate() {
                    *panel.add(k * v + j) = L::load_part(mk[j], src.add(o + seg.src));
                }
            }
            return;
        }
        for (k, &o) in koff.iter().enumerate() {
            for (j, seg) in group.iter().enumerate() {
                let mut x = L::load_part(mk[j], src.add(o + seg.src));
                if let Some((split, src2)) = second[j] {
                    let base = src.wrapping_add(o + src2).wrapping_sub(split);
                    x = L::add(x, L::load_part(mk2[j], base));
                }
                *panel.add(k * v + j) = x;
            }
        }
    }
}

/// Storage for one thread's [`shift_gemm`] panel: 64-byte aligned, so any level's vectors can
/// be read from it in place.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct PanelBlock([f32; 16]);

/// `out[r, seg.dst + l] = init[r] + Σ_kk a[r, kk] · src[koff[kk] + seg.src + l]` for `r < m`,
/// every segment and its lanes `l`.
///
/// Only the rows in `rows` (starting at a multiple of [`MR`]) are computed. `apack` is `a`
/// (`m × koff.len()`) packed by [`pack_rows`]; row `r` of `out` starts at `out + r·ldo`;
/// `init` is the per-row start value (bias) or `None` for 0; `epilogue`, when given, maps each
/// finished value of row `r` to `max?(v·scale[r] + shift[r], 0)` before it is stored. The
/// source rows are taken [`KC`] at a time into a packed, L1-resident panel per group of `NV`
/// segments.
///
/// # Safety
/// The CPU supports `L`'s level; segments have at most `L::N` lanes;
/// `src + koff[kk] + seg.src + l` must be readable and `out + r·ldo + seg.dst + l` writable
/// (and not aliased) for every `kk`, `r < m`, segment and lane `l` in its mask.
#[allow(clippy::too_many_arguments)]
pub unsafe fn shift_gemm<L: Kernels>(
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
    let nv = L::NV;
    assert!(
        apack.len() >= m.div_ceil(MR) * k * MR,
        "packed operand too small"
    );
    assert!(rows.start.is_multiple_of(MR) && rows.end <= m);
    debug_assert!(fits::<L>(segs), "segments wider than {} lanes", L::N);
    let blocks = rows.start / MR..rows.end.div_ceil(MR);
    // Groups of segments per super-block: its output (`m × SB·NV·N` values) stays in L2, so
    // each cache block of `a` is read from memory once per super-block.
    let sb = (L2_OUT / (blocks.len() * MR * nv * L::N * 4).max(1)).max(1);
    // One panel per thread, reused across calls (many small products, e.g. Winograd's).
    thread_local! {
        static PANEL: std::cell::RefCell<Vec<PanelBlock>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut panel = PANEL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if panel.len() < KC * NV_MAX {
        panel = vec![PanelBlock([0.0; 16]); KC * NV_MAX];
    }
    let panel_v = panel.as_mut_ptr().cast::<L::V>();
    for block in segs.chunks(nv * sb) {
        for k0 in (0..k.max(1)).step_by(KC) {
            let k1 = (k0 + KC).min(k);
            for group in block.chunks(nv) {
                let mut dst = [0usize; NV_MAX];
                let mut mk = [0u16; NV_MAX];
                for (j, seg) in group.iter().enumerate() {
                    dst[j] = seg.dst;
                    mk[j] = seg.mask;
                }
                // SAFETY: forwarded caller contract; the panel holds `KC·NV_MAX·16` values,
                // at least `KC·NV·N`.
                unsafe { L::pack_panel_fn()(src, &koff[k0..k1], group, panel_v) };
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
                        L::tile_fn(nr, group.len())(
                            apack.as_ptr().add(packed_at(m, k, b, k0)),
                            panel_v,
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
/// Accumulator `(c, i)` is the `N` values at `acc + (c·acc_stride + i)·N`.
#[inline(always)]
unsafe fn nt_tile_body<L: Lanes, const R: usize, const C: usize>(
    d: *const f32,
    ldd: usize,
    src: *const f32,
    koff: &[usize],
    segs: &[Seg],
    acc: *mut f32,
    acc_stride: usize,
) {
    let n = L::N;
    let mut ko = [0usize; C];
    ko.copy_from_slice(&koff[..C]);
    // SAFETY (whole body): the level's features are enabled; the caller provides `C`
    // accumulator rows of at least `R` vectors, and rows `i < R` of `d` at `seg.dst` and
    // `src + koff[c] + seg.src` readable for the segments' lanes.
    unsafe {
        let mut a = [[L::zero(); C]; R];
        for c in 0..C {
            for (i, row) in a.iter_mut().enumerate() {
                row[c] = L::load(acc.add((c * acc_stride + i) * n));
            }
        }
        for seg in segs {
            let mk = L::mask(seg.mask);
            let mut dv = [L::zero(); R];
            for (i, v) in dv.iter_mut().enumerate() {
                *v = L::load_part(mk, d.add(i * ldd + seg.dst));
            }
            let p = src.add(seg.src);
            for c in 0..C {
                let x = L::load_part(mk, p.add(ko[c]));
                for (i, row) in a.iter_mut().enumerate() {
                    row[c] = L::fma(dv[i], x, row[c]);
                }
            }
        }
        for c in 0..C {
            for (i, row) in a.iter().enumerate() {
                L::store(acc.add((c * acc_stride + i) * n), row[c]);
            }
        }
    }
}

/// Segments per cache block of [`shift_gemm_nt`].
const NT_BLOCK: usize = 16;

/// `acc[(kk·m_pad + r)·N + l] += d[r, seg.dst + l] · src[koff[kk] + seg.src + l]` lane-wise
/// (`N` partial sums per entry, in a fixed order) for `r < m`, every `kk`, segment and lane
/// `l`; `m_pad = ⌈m / MR⌉·MR`.
///
/// # Safety
/// The CPU supports `L`'s level; segments have at most `L::N` lanes; `d + r·ldd + seg.dst + l`
/// and `src + koff[kk] + seg.src + l` must be readable for all `r < m`, `kk`, segments and
/// their lanes.
pub unsafe fn shift_gemm_nt<L: Kernels>(
    m: usize,
    d: *const f32,
    ldd: usize,
    src: *const f32,
    koff: &[usize],
    segs: &[Seg],
    acc: &mut [f32],
) {
    let blocks = m.div_ceil(MR);
    let m_pad = blocks * MR;
    assert!(acc.len() >= koff.len() * m_pad * L::N);
    debug_assert!(fits::<L>(segs), "segments wider than {} lanes", L::N);
    assert!(
        segs.iter().all(|s| s.second.is_none()),
        "shift_gemm_nt reads single-run segments only"
    );
    for chunk in segs.chunks(NT_BLOCK) {
        for b in 0..blocks {
            let rows = MR.min(m - b * MR);
            for (kb, offs) in koff.chunks(L::KB).enumerate() {
                // SAFETY: forwarded caller contract; accumulators `(kb·KB + c)·m_pad + b·MR + i`
                // lie inside `acc` (asserted above).
                unsafe {
                    L::nt_fn(rows, offs.len())(
                        d.add(b * MR * ldd),
                        ldd,
                        src,
                        offs,
                        chunk,
                        acc.as_mut_ptr().add((kb * L::KB * m_pad + b * MR) * L::N),
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

/// Accumulator rows (source rows) per tile of [`outer_gemm`] for `mv` vectors of output
/// channels: `KT·MV = OUTER_ACC` accumulators (24 zmm, 12 ymm), plus `MV` gradient vectors and
/// one broadcast.
pub const fn outer_rows<L: Lanes>(mv: usize) -> usize {
    L::OUTER_ACC / mv
}

/// One tile of [`outer_gemm`]: `KT` source rows × `MV` vectors of output channels, kept in
/// registers over all `runs`.
#[inline(always)]
unsafe fn outer_tile_body<L: Lanes, const KT: usize, const MV: usize>(
    src: *const f32,
    koff: &[usize],
    runs: &[Run],
    dyt: *const f32,
    ldt: usize,
    acc: *mut f32,
    lda: usize,
) {
    let n = L::N;
    let mut ko = [0usize; KT];
    ko.copy_from_slice(&koff[..KT]);
    // SAFETY (whole body): the level's features are enabled; the caller guarantees `acc` holds
    // `KT` rows of `lda ≥ N·MV` values, the runs' source reads and gradient rows are in bounds.
    unsafe {
        let mut a = [[L::zero(); MV]; KT];
        for (t, row) in a.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = L::load(acc.add(t * lda + v * n));
            }
        }
        for run in runs {
            let s = src.add(run.src);
            let mut d = dyt.add(run.dst * ldt);
            for j in 0..run.len {
                let mut dv = [L::zero(); MV];
                for (v, x) in dv.iter_mut().enumerate() {
                    *x = L::load(d.add(v * n));
                }
                for (t, row) in a.iter_mut().enumerate() {
                    let x = L::splat(*s.add(ko[t] + j));
                    for (v, acc) in row.iter_mut().enumerate() {
                        *acc = L::fma(x, dv[v], *acc);
                    }
                }
                d = d.add(ldt);
            }
        }
        for (t, row) in a.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                L::store(acc.add(t * lda + v * n), *x);
            }
        }
    }
}

/// `acc[kk·lda + c] += Σ_runs Σ_j src[koff[kk] + run.src + j] · dyt[(run.dst + j)·ldt + c]` for
/// every `kk` and `c < N·mv` (weight gradient with channels-last output gradient `dyt`):
/// outer products, the gradient as vectors over output channels, the source as broadcasts.
///
/// # Safety
/// The CPU supports `L`'s level; `mv ∈ {1, 2, 4}`; `acc` holds `koff.len()` rows of
/// `lda ≥ N·mv` values; `src + koff[kk] + run.src + j` and `dyt + (run.dst + j)·ldt + c` are
/// readable for every `kk`, run, `j < run.len`, `c < N·mv`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn outer_gemm<L: Kernels>(
    mv: usize,
    src: *const f32,
    koff: &[usize],
    runs: &[Run],
    dyt: *const f32,
    ldt: usize,
    acc: &mut [f32],
    lda: usize,
) {
    assert!(lda >= L::N * mv && acc.len() >= koff.len() * lda);
    let kt = outer_rows::<L>(mv);
    for (i, offs) in koff.chunks(kt).enumerate() {
        // SAFETY: forwarded caller contract; rows `i·kt..` of `acc` are in bounds (asserted).
        unsafe {
            L::outer_fn(mv, offs.len())(
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

#[inline(always)]
unsafe fn transpose_body<L: Lanes>(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { L::transpose(src, lds, dst, ldd) }
}

/// Transposes the `N × N` block `src[i·lds + j]` into `dst[j·ldd + i]`.
///
/// # Safety
/// The CPU supports `L`'s level; both blocks must be in bounds.
pub unsafe fn transpose<L: Kernels>(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { L::transpose_fn()(src, lds, dst, ldd) }
}

/// Sum of the lanes of one accumulator (16 or 8 values), halving in a fixed order.
pub fn reduce_lanes(v: &[f32]) -> f32 {
    debug_assert!(v.len().is_power_of_two() && v.len() <= 16);
    let mut s = [0.0f32; 16];
    s[..v.len()].copy_from_slice(v);
    let mut n = v.len();
    while n > 1 {
        n /= 2;
        for i in 0..n {
            s[i] += s[i + n];
        }
    }
    s[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Level;

    /// Runs `$f::<L>()` for every level `L` the CPU supports; the number of levels run.
    macro_rules! each_level {
        ($f:ident) => {{
            let mut ran = 0;
            if Level::Avx512.supported() {
                $f::<Avx512>();
                ran += 1;
            }
            if Level::Avx2.supported() {
                $f::<Avx2>();
                ran += 1;
            }
            assert_eq!(ran, Level::all_supported().len() - 1);
        }};
    }

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 7.0)
            .collect()
    }

    #[test]
    fn shift_gemm_matches_naive_for_all_tails() {
        each_level!(shift_gemm_case);
    }

    fn shift_gemm_case<L: Kernels>() {
        let single = [(1, 1, 5), (3, 2, 17), (4, 3, 32), (6, 2, 40), (9, 5, 13)]
            .map(|(m, rows, n)| (m, rows, n, false));
        // Two rows per segment: every width up to half a vector, odd and even row counts.
        let paired = (1..=L::N / 2).flat_map(|n| [(5, 4, n, true), (4, 7, n, true)]);
        for (m, rows, n, pairs) in single.into_iter().chain(paired) {
            let koff = [0usize, 3, 40, 41, 77];
            let k = koff.len();
            let a = data(m * k, 1);
            let pitch = n + 3;
            let src = data(rows * pitch + 100, 2);
            let bias = data(m, 3);
            let segs = if pairs {
                let segs = Seg::row_pairs(rows, n, 1, pitch, L::N);
                assert_eq!(segs.len(), rows.div_ceil(2));
                segs
            } else {
                Seg::rows(rows, n, 1, pitch, L::N)
            };
            let ldo = rows * n + 3;
            let mut out = vec![f32::NAN; m * ldo];
            unsafe {
                shift_gemm::<L>(
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
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{} m{m} r{r} y{y} c{c} pairs {pairs}",
                            L::LEVEL
                        );
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
        each_level!(shift_gemm_nt_case);
    }

    fn shift_gemm_nt_case<L: Kernels>() {
        for (m, rows, n) in [(1, 1, 7), (4, 2, 16), (7, 3, 50)] {
            let koff = [0usize, 1, 5, 9, 30, 31, 32, 60];
            let ldd = rows * n + 2;
            let d = data(m * ldd, 4);
            let pitch = n + 2;
            let src = data(rows * pitch + 70, 5);
            let segs = Seg::rows(rows, n, 0, pitch, L::N);
            let m_pad = m.div_ceil(MR) * MR;
            let mut acc = vec![0.0f32; koff.len() * m_pad * L::N];
            unsafe { shift_gemm_nt::<L>(m, d.as_ptr(), ldd, src.as_ptr(), &koff, &segs, &mut acc) };
            for (kk, &o) in koff.iter().enumerate() {
                for i in 0..m {
                    let want: f32 = (0..rows)
                        .flat_map(|y| (0..n).map(move |c| (y, c)))
                        .map(|(y, c)| d[i * ldd + y * n + c] * src[o + y * pitch + c])
                        .sum();
                    let at = (kk * m_pad + i) * L::N;
                    let got = reduce_lanes(&acc[at..at + L::N]);
                    assert!(
                        (got - want).abs() < 1e-3,
                        "{} m{m} kk{kk} i{i}: {got} vs {want}",
                        L::LEVEL
                    );
                }
            }
        }
    }

    #[test]
    fn transpose_transposes() {
        each_level!(transpose_case);
    }

    fn transpose_case<L: Kernels>() {
        let n = L::N;
        let src = data(n * 19, 4);
        let mut dst = vec![0.0f32; n * 21];
        // SAFETY: the level is supported (each_level); both blocks in bounds.
        unsafe { transpose::<L>(src.as_ptr(), 19, dst.as_mut_ptr(), 21) };
        for i in 0..n {
            for j in 0..n {
                assert_eq!(dst[j * 21 + i], src[i * 19 + j], "{} ({i}, {j})", L::LEVEL);
            }
        }
    }

    #[test]
    fn segments_are_cut_to_the_vector_width() {
        let wide = Seg::rows(2, 20, 0, 24, 16);
        let narrow = Seg::rows(2, 20, 0, 24, 8);
        assert_eq!((wide.len(), narrow.len()), (4, 6));
        assert!(fits::<Avx512>(&wide) && fits::<Avx512>(&narrow));
        assert!(!fits::<Avx2>(&wide) && fits::<Avx2>(&narrow));
        assert_eq!(narrow[2], Seg::new(16, 16, 4));
        assert_eq!(narrow[3], Seg::new(24, 20, 8));
    }

    #[test]
    fn reduce_lanes_sums_in_a_fixed_order() {
        let v: Vec<f32> = (1..=16).map(|i| i as f32).collect();
        assert_eq!(reduce_lanes(&v), 136.0);
        assert_eq!(reduce_lanes(&v[..8]), 36.0);
    }

    #[test]
    fn outer_gemm_matches_naive_for_all_tile_shapes() {
        each_level!(outer_gemm_case);
    }

    fn outer_gemm_case<L: Kernels>() {
        let n = L::N;
        let src = data(4000, 1);
        for mv in [1, 2, 4] {
            let ldt = n * mv + 16;
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
                outer_rows::<L>(mv) - 1,
                outer_rows::<L>(mv),
                2 * outer_rows::<L>(mv) + 3,
            ] {
                let koff: Vec<usize> = (0..k).map(|i| (i * 37) % 3000).collect();
                let lda = n * mv + 5;
                let start = data(k * lda, 3);
                let mut acc = start.clone();
                // SAFETY: level supported; reads stay below 3000 + 140 < 4000 and 40·ldt.
                unsafe {
                    outer_gemm::<L>(
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
                        if c < n * mv {
                            for r in &runs {
                                for j in 0..r.len {
                                    want += src[koff[kk] + r.src + j] * dyt[(r.dst + j) * ldt + c];
                                }
                            }
                        }
                        let got = acc[kk * lda + c];
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{} mv {mv} k {k}: {got} vs {want}",
                            L::LEVEL
                        );
                    }
                }
            }
        }
    }
}
