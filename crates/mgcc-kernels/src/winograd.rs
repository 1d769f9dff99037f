//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, "same" (padding 1) layers.
//!
//! Each 2×2 output tile is `Y = Aᵀ [Σ_c (G g_{o,c} Gᵀ) ⊙ (Bᵀ d_c B)] A` (Lavin & Gray 2016),
//! with `d_c` the 4×4 input patch of channel `c`. The sum over channels is 16 matrix products
//! `M_ξ = U_ξ · V_ξ` (`U_ξ`: `Cout × Cin`, `V_ξ`: `Cin × tiles`), one per element ξ of the 4×4
//! transformed tile: 16 multiply-adds per tile and channel pair instead of 36, i.e. 2.25× fewer.
//! The products run on [`microkernels::shift_gemm`]; the transforms are vectorised over one
//! vector of tiles of a tile row (16 with AVX-512, 8 with AVX2), written once over [`Lanes`].
//! Results equal the direct convolution up to floating-point rounding (the transforms
//! only add, subtract and halve).
//!
//! Work is split into tasks (image × block of tile rows × output-channel range) that each
//! transform their block, multiply and write their own output rows, so results do not depend
//! on scheduling.

use rayon::prelude::*;

use crate::sync_ptr::SyncPtr;

use crate::geometry::ConvGeometry;
use crate::lanes::{Avx2, Avx512, Lanes, by_level, lanes_entry};
use crate::microkernels::{self, Epilogue, Kernels, MR, Seg};
use crate::scratch;
use crate::simd::Level;

/// Fewest input and output channels for which the transforms pay off.
const MIN_CHANNELS: usize = 32;
/// Fewest output pixels (whole batch) for which the kernel transform (∝ Cin·Cout) pays off
/// (one 32×32 image with 512 channels: ~12 % faster than the direct kernel in `conv_bench`).
const MIN_PIXELS: usize = 1024;
/// Tiles per task (16 segments of 16 for the products; the transformed input of one task,
/// `16·Cin·tiles` values, streams through L2 once).
const BLOCK_TILES: usize = 256;

/// Layout of one Winograd convolution.
#[derive(Debug, Clone)]
pub struct Winograd {
    /// SIMD level of the transforms and products.
    level: Level,
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    /// Tile rows.
    th: usize,
    /// Tile columns rounded up to a multiple of 16 (the extra tiles read zero padding).
    twp: usize,
}

/// `U = G g Gᵀ` for one 3×3 kernel `g` (row-major), `G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]]`.
fn transform_kernel(g: &[f32]) -> [f32; 16] {
    let mut t = [[0.0f32; 3]; 4];
    for j in 0..3 {
        let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
        t[0][j] = a;
        t[1][j] = 0.5 * (a + b + c);
        t[2][j] = 0.5 * (a - b + c);
        t[3][j] = c;
    }
    let mut u = [0.0f32; 16];
    for (i, r) in t.iter().enumerate() {
        u[i * 4] = r[0];
        u[i * 4 + 1] = 0.5 * (r[0] + r[1] + r[2]);
        u[i * 4 + 2] = 0.5 * (r[0] - r[1] + r[2]);
        u[i * 4 + 3] = r[2];
    }
    u
}

/// All `U_ξ = G g Gᵀ` of `w [Cout, Cin, 3, 3]` as `[16][Cout][Cin]` (in a [`scratch`] buffer):
/// `L::N` input channels at a time (the nine taps gathered with stride 9), in parallel over
/// output channels. The level must be supported.
fn transform_kernels<L: WinogradKernels>(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let n = L::N;
    let plane = cout * cin;
    let mut u = scratch::take(16 * plane);
    let up = SyncPtr(u.as_mut_ptr());
    (0..cout).into_par_iter().for_each(|o| {
        let full = cin / n * n;
        for c0 in (0..full).step_by(n) {
            // SAFETY: the level is supported (caller); the gathers read
            // `w[(o·cin + c0 + l)·9 + t]` for l < N, t < 9, inside `w`; the stores write
            // `u[ξ·plane + o·cin + c0 ..][..N]`, owned by this task (output channel `o`).
            unsafe {
                L::transform_fn()(
                    w.as_ptr().add((o * cin + c0) * 9),
                    up.get().add(o * cin + c0),
                    plane,
                )
            };
        }
        for c in full..cin {
            let t = transform_kernel(&w[(o * cin + c) * 9..(o * cin + c) * 9 + 9]);
            for (xi, v) in t.iter().enumerate() {
                // SAFETY: as above, scalar tail.
                unsafe { up.get().add(xi * plane + o * cin + c).write(*v) };
            }
        }
    });
    u
}

/// The level-specific (`#[target_feature]`) entry points of the transforms.
pub trait WinogradKernels: Kernels {
    #[doc(hidden)]
    fn transform_fn() -> unsafe fn(*const f32, *mut f32, usize);
    #[doc(hidden)]
    fn input_fn() -> unsafe fn(*const f32, [usize; 2], [usize; 2], *mut f32, usize);
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn output_fn() -> unsafe fn(*const f32, usize, *mut f32, [usize; 2], [usize; 2], [f32; 2], bool);
}

/// Implements [`WinogradKernels`] for a level.
macro_rules! impl_winograd {
    ($l:ty, $m:ident, $feat:literal) => {
        mod $m {
            use super::*;
            lanes_entry!($feat, $l;
                fn transform<>(w: *const f32, u: *mut f32, ld: usize) = transform_body;
                fn input_tile<>(x: *const f32, hw: [usize; 2], at: [usize; 2], dst: *mut f32, ld: usize) = input_tile_body;
                fn output_tile<>(
                    m: *const f32, ld: usize, dst: *mut f32, hw: [usize; 2], at: [usize; 2],
                    affine: [f32; 2], relu: bool
                ) = output_tile_body;
            );
        }

        impl WinogradKernels for $l {
            fn transform_fn() -> unsafe fn(*const f32, *mut f32, usize) {
                $m::transform
            }
            fn input_fn() -> unsafe fn(*const f32, [usize; 2], [usize; 2], *mut f32, usize) {
                $m::input_tile
            }
            fn output_fn(
            ) -> unsafe fn(*const f32, usize, *mut f32, [usize; 2], [usize; 2], [f32; 2], bool) {
                $m::output_tile
            }
        }
    };
}

impl_winograd!(Avx512, avx512_entries, "avx512f");
impl_winograd!(Avx2, avx2_entries, "avx2,fma");

/// [`transform_kernel`] for `N` consecutive kernels at `w` (9 values each), writing element ξ
/// of the `N` results to `u + ξ·ld`.
#[inline(always)]
unsafe fn transform_body<L: Lanes>(w: *const f32, u: *mut f32, ld: usize) {
    // SAFETY: the level's features are enabled (entry point); the caller guarantees `9·N`
    // readable values at `w` and 16 writable rows of `N` at `u`.
    unsafe {
        // Loops, not closures, in these bodies: a closure would not inherit the entry point's
        // features, and its vector operations would stay calls.
        let mut g = [L::zero(); 9];
        for (t, v) in g.iter_mut().enumerate() {
            *v = L::gather9(w.add(t));
        }
        let half = L::splat(0.5);
        // t = G g (4 × 3), then U = t Gᵀ (4 × 4).
        let mut t = [[L::zero(); 3]; 4];
        for j in 0..3 {
            let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
            let ac = L::add(a, c);
            t[0][j] = a;
            t[1][j] = L::mul(half, L::add(ac, b));
            t[2][j] = L::mul(half, L::sub(ac, b));
            t[3][j] = c;
        }
        for (i, r) in t.iter().enumerate() {
            let ac = L::add(r[0], r[2]);
            let row = [
                r[0],
                L::mul(half, L::add(ac, r[1])),
                L::mul(half, L::sub(ac, r[1])),
                r[2],
            ];
            for (j, v) in row.iter().enumerate() {
                L::store(u.add((i * 4 + j) * ld), *v);
            }
        }
    }
}

impl Winograd {
    /// The layout for `g` at the process's SIMD level, or `None` unless `g` is a 3×3, stride-1,
    /// dilation-1, ungrouped convolution with padding 1 on every side, at least `MIN_CHANNELS`
    /// (32) channels in and out, an image at least 32 wide, `MIN_PIXELS` (1024) output pixels,
    /// and the level is not scalar.
    pub fn new(g: &ConvGeometry) -> Option<Self> {
        Self::with_level(g, crate::simd::level())
    }

    /// [`Winograd::new`] at a given level.
    ///
    /// # Panics
    /// When the CPU does not support `level`.
    pub fn with_level(g: &ConvGeometry, level: Level) -> Option<Self> {
        assert!(
            level.supported(),
            "SIMD level {level} is not supported here"
        );
        let applies = level != Level::Scalar
            && g.kernel == [3, 3]
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.groups == 1
            && g.pad == [1, 1]
            && g.out_hw == g.in_hw
            && g.in_hw[1] >= 32
            && g.batch * g.in_hw[0] * g.in_hw[1] >= MIN_PIXELS
            && g.cin >= MIN_CHANNELS
            && g.cout >= MIN_CHANNELS;
        if !applies {
            return None;
        }
        let [h, w] = g.in_hw;
        let th = h.div_ceil(2);
        let twp = w.div_ceil(2).div_ceil(16) * 16;
        Some(Self {
            level,
            batch: g.batch,
            cin: g.cin,
            cout: g.cout,
            h,
            w,
            th,
            twp,
        })
    }

    /// `x [B, Cin, H, W]`, `w [Cout, Cin, 3, 3]`, optional `bias [Cout]` and per-channel
    /// epilogue (`y = max?(v·scale + shift, 0)`) → `[B, Cout, H, W]`.
    pub fn forward_fused(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        by_level!(self.level, L => self.forward_at::<L>(x, w, bias, epilogue))
    }

    fn forward_at<L: WinogradKernels>(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        let n = L::N;
        let (cin, cout, h, wd) = (self.cin, self.cout, self.h, self.w);
        assert!(x.len() >= self.batch * cin * h * wd && w.len() >= cout * cin * 9);
        // Tasks: image × block of tile rows × output-channel part.
        let threads = rayon::current_num_threads().max(1);
        // About BLOCK_TILES tiles per task, tile rows split evenly.
        let row_blocks = (self.th * self.twp).div_ceil(BLOCK_TILES).max(1);
        let block_rows = self.th.div_ceil(row_blocks);
        let row_blocks = self.th.div_ceil(block_rows);
        let blocks = self.batch * row_blocks;
        let parts = if blocks >= 2 * threads {
            1
        } else {
            (2 * threads).div_ceil(blocks).min(cout / 16).max(1)
        };
        let part = cout.div_ceil(parts).div_ceil(MR) * MR;
        let ranges: Vec<(usize, usize)> = (0..cout)
            .step_by(part)
            .map(|o0| (o0, (o0 + part).min(cout)))
            .collect();
        // Transformed kernels U_ξ = G g Gᵀ ([ξ][o][c], vectorised over 16 input channels), then
        // packed for `shift_gemm` per output-channel part.
        let u = transform_kernels::<L>(w, cout, cin);
        let packs: Vec<Vec<Vec<f32>>> = ranges
            .iter()
            .map(|&(o0, o1)| {
                (0..16)
                    .map(|xi| {
                        let plane = &u[xi * cout * cin..(xi + 1) * cout * cin];
                        microkernels::pack_rows(&plane[o0 * cin..o1 * cin], o1 - o0, cin)
                    })
                    .collect()
            })
            .collect();
        let len = self.batch * cout * h * wd;
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let out = SyncPtr(y.as_mut_ptr());
        let n_parts = ranges.len();
        let tasks: Vec<(usize, usize, usize)> = (0..self.batch)
            .flat_map(|b| (0..row_blocks).flat_map(move |rb| (0..n_parts).map(move |p| (b, rb, p))))
            .collect();
        tasks.into_par_iter().for_each(|(b, rb, p)| {
            let t0 = rb * block_rows;
            let t1 = (t0 + block_rows).min(self.th);
            let (o0, o1) = ranges[p];
            let tiles = (t1 - t0) * self.twp;
            let mut v = scratch::take(16 * cin * tiles);
            let mut m = scratch::take(16 * (o1 - o0) * tiles);
            let image = &x[b * cin * h * wd..(b + 1) * cin * h * wd];
            // SAFETY (all three stages): the level is supported (`with_level`); input reads are masked to
            // the image's planes; `v`
            // and `m` hold 16 planes of `cin`/`o1 − o0` rows × `tiles`; each task writes only
            // output rows `2·t0..2·t1` of channels `o0..o1` of image `b`, disjoint from every
            // other task's.
            unsafe {
                for c in 0..cin {
                    let src = image.as_ptr().add(c * h * wd);
                    for ti in t0..t1 {
                        let col0 = (ti - t0) * self.twp;
                        for j0 in (0..self.twp).step_by(n) {
                            L::input_fn()(
                                src,
                                [h, wd],
                                [2 * ti, 2 * j0],
                                v.as_mut_ptr().add(c * tiles + col0 + j0),
                                cin * tiles,
                            );
                        }
                    }
                }
                let segs = Seg::rows(1, tiles, 0, 0, n);
                let koff: Vec<usize> = (0..cin).map(|c| c * tiles).collect();
                for (xi, pack) in packs[p].iter().enumerate() {
                    microkernels::shift_gemm::<L>(
                        o1 - o0,
                        0..o1 - o0,
                        &segs,
                        pack,
                        &koff,
                        v.as_ptr().add(xi * cin * tiles),
                        m.as_mut_ptr().add(xi * (o1 - o0) * tiles),
                        tiles,
                        None,
                        None,
                    );
                }
                for o in o0..o1 {
                    let mut scale = 1.0f32;
                    let mut shift = bias.map_or(0.0, |bs| bs[o]);
                    let mut relu = false;
                    if let Some(e) = epilogue {
                        // (v + bias)·s + t = v·s + (bias·s + t)
                        shift = shift * e.scale[o] + e.shift[o];
                        scale = e.scale[o];
                        relu = e.relu;
                    }
                    let dst = out.get().add((b * cout + o) * h * wd);
                    for ti in t0..t1 {
                        let col0 = (ti - t0) * self.twp;
                        for j0 in (0..self.twp).step_by(n) {
                            L::output_fn()(
                                m.as_ptr().add((o - o0) * tiles + col0 + j0),
                                (o1 - o0) * tiles,
                                dst,
                                [h, wd],
                                [2 * ti, 2 * j0],
                                [scale, shift],
                                relu,
                            );
                        }
                    }
                }
            }
            scratch::give(v);
            scratch::give(m);
        });
        packs.into_iter().flatten().for_each(scratch::give);
        scratch::give(u);
        // SAFETY: the tasks cover every tile of every image and output channel, and each tile
        // writes all of its in-image pixels, so all `len` values are written.
        unsafe { y.set_len(len) };
        y
    }
}

/// `N` values of image row `row` from column `col` (both possibly outside the `hw` plane
/// `x`); values outside the plane read as 0 and are never accessed.
#[inline(always)]
unsafe fn load_masked<L: Lanes>(x: *const f32, hw: [usize; 2], row: isize, col: isize) -> L::V {
    let n = L::N as isize;
    // SAFETY (whole body): the level's features are enabled (entry point).
    unsafe {
        if row < 0 || row >= hw[0] as isize {
            return L::zero();
        }
        let w = hw[1] as isize;
        if col >= 0 && col + n <= w {
            // All `N` columns lie inside row `row` of the plane.
            return L::load(x.offset(row * w + col));
        }
        let first = (-col).clamp(0, n);
        let last = (w - col).clamp(0, n);
        if first >= last {
            return L::zero();
        }
        let mask = (((1u32 << last) - 1) & !((1u32 << first) - 1)) as u16;
        // The pointer may lie outside the plane; the masked load touches only lanes
        // `first..last` (columns 0 ≤ col + l < w of an existing row).
        let p = x.wrapping_offset(row * w + col);
        L::load_part(L::mask(mask), p)
    }
}

/// `d Bᵀ`-side terms of one input row for `N` tiles: with `d_j` the columns `col + 2t + j`,
/// `[d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃]`.
#[inline(always)]
unsafe fn row_terms<L: Lanes>(x: *const f32, hw: [usize; 2], row: isize, col: isize) -> [L::V; 4] {
    let n = L::N as isize;
    // SAFETY: the level's features are enabled; reads are masked to the plane.
    unsafe {
        let (d0, d1) = L::deinterleave(
            load_masked::<L>(x, hw, row, col),
            load_masked::<L>(x, hw, row, col + n),
        );
        let (d2, d3) = L::deinterleave(
            load_masked::<L>(x, hw, row, col + 2),
            load_masked::<L>(x, hw, row, col + n + 2),
        );
        [
            L::sub(d0, d2),
            L::add(d1, d2),
            L::sub(d2, d1),
            L::sub(d1, d3),
        ]
    }
}

/// `V = Bᵀ d B` for `N` consecutive tiles of one tile row, read straight from the unpadded
/// plane `x` (`hw`): the tiles' patches start at row `at[0] − 1`, column `at[1] − 1` (padding
/// 1 reads as zero); writes element ξ of the `N` tiles at `dst + ξ·ld`.
#[inline(always)]
unsafe fn input_tile_body<L: Lanes>(
    x: *const f32,
    hw: [usize; 2],
    at: [usize; 2],
    dst: *mut f32,
    ld: usize,
) {
    // SAFETY: the level's features are enabled; reads are masked to the plane; the caller
    // guarantees 16 writable planes.
    unsafe {
        let col = at[1] as isize - 1;
        let row = at[0] as isize - 1;
        let (r0, r1, r2, r3) = (
            row_terms::<L>(x, hw, row, col),
            row_terms::<L>(x, hw, row + 1, col),
            row_terms::<L>(x, hw, row + 2, col),
            row_terms::<L>(x, hw, row + 3, col),
        );
        for j in 0..4 {
            let v = [
                L::sub(r0[j], r2[j]),
                L::add(r1[j], r2[j]),
                L::sub(r2[j], r1[j]),
                L::sub(r1[j], r3[j]),
            ];
            for (i, x) in v.iter().enumerate() {
                L::store(dst.add((i * 4 + j) * ld), *x);
            }
        }
    }
}

/// `Y = Aᵀ M A` for `N` consecutive tiles (element ξ at `m + ξ·ld`), then `y·scale + shift`
/// (and ReLU), written to output rows `at[0]`, `at[0] + 1` from column `at[1]` of the
/// `hw`-sized plane `dst`, skipping pixels outside it.
#[inline(always)]
unsafe fn output_tile_body<L: Lanes>(
    m: *const f32,
    ld: usize,
    dst: *mut f32,
    hw: [usize; 2],
    at: [usize; 2],
    affine: [f32; 2],
    relu: bool,
) {
    let n = L::N;
    // SAFETY: the level's features are enabled; the caller guarantees 16 readable planes;
    // stores are masked to the plane.
    unsafe {
        let mut s = [[L::zero(); 2]; 4];
        for (i, row) in s.iter_mut().enumerate() {
            let mut e = [L::zero(); 4];
            for (j, v) in e.iter_mut().enumerate() {
                *v = L::load(m.add((i * 4 + j) * ld));
            }
            let [a, b, c, d] = e;
            row[0] = L::add(L::add(a, b), c);
            row[1] = L::sub(L::sub(b, c), d);
        }
        let (scale, shift) = (L::splat(affine[0]), L::splat(affine[1]));
        let cols = hw[1].saturating_sub(at[1]);
        let bits = |skip: usize| ((1u32 << cols.saturating_sub(skip).min(n)) - 1) as u16;
        let (m0, m1) = (L::mask(bits(0)), L::mask(bits(n)));
        for a in 0..2 {
            let row = at[0] + a;
            if row >= hw[0] {
                break;
            }
            let mut y = [L::zero(); 2];
            for (b, yb) in y.iter_mut().enumerate() {
                let v = if a == 0 {
                    L::add(L::add(s[0][b], s[1][b]), s[2][b])
                } else {
                    L::sub(L::sub(s[1][b], s[2][b]), s[3][b])
                };
                let v = L::fma(v, scale, shift);
                *yb = if relu { L::max(v, L::zero()) } else { v };
            }
            let (lo, hi) = L::interleave(y[0], y[1]);
            let p = dst.add(row * hw[1] + at[1]);
            L::store_part(p, m0, lo);
            L::store_part(p.add(n), m1, hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense;
    use crate::test_data::data;
    use burn::tensor::ops::ConvOptions;

    /// Same values as the direct (shifted) convolution, with bias and a fused epilogue, for
    /// even and odd sizes, widths not a multiple of 32, several blocks and channel parts.
    #[test]
    fn matches_the_direct_convolution() {
        let levels: Vec<Level> = Level::all_supported()
            .into_iter()
            .filter(|l| *l != Level::Scalar)
            .collect();
        for level in levels {
            matches_at(level);
        }
    }

    fn matches_at(level: Level) {
        for (b, cin, cout, h, w) in [
            (4, 32, 32, 32, 32),
            (6, 40, 36, 17, 45),
            (1, 33, 64, 70, 66),
            (14, 32, 48, 9, 33),
        ] {
            let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let g = ConvGeometry::new([b, cin, h, w], [cout, cin, 3, 3], &opts);
            let wg = Winograd::with_level(&g, level).expect("applies");
            let x = data(b * cin * h * w, 1);
            let wt = data(cout * cin * 9, 2);
            let bias = data(cout, 3);
            let scale = data(cout, 4);
            let shift = data(cout, 5);
            for epi in [
                None,
                Some(Epilogue {
                    scale: &scale,
                    shift: &shift,
                    relu: true,
                }),
            ] {
                let got = wg.forward_fused(&x, &wt, Some(&bias), epi);
                // The im2col convolution, then the epilogue by hand.
                let mut want = dense::forward(&g, &x, &wt, Some(&bias));
                if let Some(e) = epi {
                    for (i, v) in want.iter_mut().enumerate() {
                        let o = (i / (h * w)) % cout;
                        *v = (*v * e.scale[o] + e.shift[o]).max(0.0);
                    }
                }
                assert_eq!(got.len(), want.len());
                let size = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                for (i, (p, q)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (p - q).abs() / size < 1e-5,
                        "{level} {b}×{cin}→{cout} {h}×{w} [{i}]: {p} vs {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn applies_only_to_same_3x3_convolutions() {
        let g = |w: [usize; 4], opts: ConvOptions<2>| ConvGeometry::new([4, 32, 32, 32], w, &opts);
        let same = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        for level in Level::all_supported() {
            let applies = Winograd::with_level(&g([32, 32, 3, 3], same.clone()), level).is_some();
            assert_eq!(applies, level != Level::Scalar, "{level}");
        }
        assert!(
            Winograd::new(&g(
                [32, 32, 1, 1],
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1)
            ))
            .is_none()
        );
        assert!(
            Winograd::new(&g(
                [32, 32, 3, 3],
                ConvOptions::new([1, 1], [2, 2], [2, 2], 1)
            ))
            .is_none()
        );
        assert!(
            Winograd::new(&g(
                [32, 32, 3, 3],
                ConvOptions::new([2, 2], [1, 1], [1, 1], 1)
            ))
            .is_none()
        );
        assert!(Winograd::new(&g([16, 32, 3, 3], same.clone())).is_none());
        // Too few pixels for the kernel transform to pay off.
        let one = ConvGeometry::new([1, 32, 16, 32], [32, 32, 3, 3], &same);
        assert!(Winograd::new(&one).is_none());
    }
}
