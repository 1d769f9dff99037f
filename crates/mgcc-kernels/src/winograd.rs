//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, "same" (padding 1) layers.
//!
//! Each 2×2 output tile is `Y = Aᵀ [Σ_c (G g_{o,c} Gᵀ) ⊙ (Bᵀ d_c B)] A` (Lavin & Gray 2016),
//! with `d_c` the 4×4 input patch of channel `c`. The sum over channels is 16 matrix products
//! `M_ξ = U_ξ · V_ξ` (`U_ξ`: `Cout × Cin`, `V_ξ`: `Cin × tiles`), one per element ξ of the 4×4
//! transformed tile: 16 multiply-adds per tile and channel pair instead of 36, i.e. 2.25× fewer.
//! The products run on [`microkernels::shift_gemm`]; the transforms are vectorised over a
//! *strip* of one vector of tiles (16 with AVX-512, 8 with AVX2), written once over [`Lanes`]:
//! consecutive tiles of one tile row, or, for narrow images whose tile rows divide the vector
//! (8 or 16 pixels wide), several whole tile rows stacked. Results equal the direct
//! convolution up to floating-point rounding (the transforms only add, subtract and halve).
//!
//! Tiles are numbered densely (no padding tiles), and the tile rows of all images form one
//! sequence cut into blocks of about [`BLOCK_TILES`] tiles, so a block of small images holds
//! several images and the products stay wide. With enough blocks for the pool, one task per
//! block transforms its input, multiplies and writes its own output rows; with fewer (small
//! images or batches) the work runs in three parallel phases (input transform by channel
//! range, products by ξ, output transform by channel range), so no transform or panel packing
//! is repeated. Either way each value is computed by one fixed sequence of operations, so
//! results do not depend on scheduling.

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
/// Narrowest image: 4 tile columns, four tile rows to an AVX-512 strip (at 8×8 with 128
/// channels and batch 16, 0.50 against 0.76 ms for the direct kernel, 2 threads).
const MIN_WIDTH: usize = 8;
/// Tiles per block (16 segments of 16 for the products; the transformed input of one block,
/// `16·Cin·tiles` values, streams through L2 once).
const BLOCK_TILES: usize = 256;

/// Values of the transformed input and output gradient (`16·(Cin + Cout)` per tile) that one
/// block of the weight gradient holds at most (4 MiB) unless that is under
/// `WEIGHT_GRAD_MIN_TILES` tiles: small enough to stay in cache between the transforms and the
/// products, long enough for the products' sums (`weight_grad` in the probe of
/// docs/performance.md: 16 MiB blocks were 15 % slower at 16×16 with 64 channels, 1 MiB ones
/// 8–14 % slower at 8×8 and 16×16).
const WEIGHT_GRAD_VALUES: usize = 1 << 20;
/// Fewest input and output channels for which the Winograd weight gradient pays off.
const WEIGHT_GRAD_MIN_CHANNELS: usize = 64;
/// Fewest tiles per block of the weight gradient.
const WEIGHT_GRAD_MIN_TILES: usize = 64;

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
    /// Tile columns.
    tw: usize,
}

/// One call of the input and output transforms: `N` tiles from `rows` tile rows of one image.
struct Strip {
    /// Index of its first tile in the task's dense tile numbering.
    at: usize,
    image: usize,
    /// Its first tile row in the image.
    tile_row: usize,
    /// Tile rows it owns (the tiles of later rows in its lanes belong to other strips).
    rows: usize,
    /// Segment length of the strip's values (see [`store_strip`]).
    seg: usize,
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
    fn input_fn() -> InputFn;
    #[doc(hidden)]
    fn output_fn() -> OutputFn;
    #[doc(hidden)]
    fn grad_fn() -> InputFn;
}

/// Input transform of one strip in several channels: `(x, hw, at, seg, channels, dst, ld,
/// ldc)`, see [`input_tile_body`].
type InputFn = unsafe fn(*const f32, [usize; 2], [usize; 2], usize, usize, *mut f32, usize, usize);
/// Output transform of one strip: `(m, ld, dst, hw, at, seg, affine, relu)`, see
/// [`output_tile_body`].
type OutputFn =
    unsafe fn(*const f32, usize, *mut f32, [usize; 2], [usize; 2], usize, [f32; 2], bool);

/// Implements [`WinogradKernels`] for a level.
macro_rules! impl_winograd {
    ($l:ty, $m:ident, $feat:literal) => {
        mod $m {
            use super::*;
            lanes_entry!($feat, $l;
                fn transform<>(w: *const f32, u: *mut f32, ld: usize) = transform_body;
                fn input_tile<>(
                    x: *const f32, hw: [usize; 2], at: [usize; 2], seg: usize, channels: usize,
                    dst: *mut f32, ld: usize, ldc: usize
                ) = input_tile_body;
                fn output_tile<>(
                    m: *const f32, ld: usize, dst: *mut f32, hw: [usize; 2], at: [usize; 2],
                    seg: usize, affine: [f32; 2], relu: bool
                ) = output_tile_body;
                fn grad_tile<>(
                    dy: *const f32, hw: [usize; 2], at: [usize; 2], seg: usize, channels: usize,
                    dst: *mut f32, ld: usize, ldc: usize
                ) = grad_tile_body;
            );
        }

        impl WinogradKernels for $l {
            fn transform_fn() -> unsafe fn(*const f32, *mut f32, usize) {
                $m::transform
            }
            fn input_fn() -> InputFn {
                $m::input_tile
            }
            fn output_fn() -> OutputFn {
                $m::output_tile
            }
            fn grad_fn() -> InputFn {
                $m::grad_tile
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
    /// (32) channels in and out, an image at least `MIN_WIDTH` (8) wide, `MIN_PIXELS` (1024)
    /// output pixels, and the level is not scalar.
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
            && g.in_hw[1] >= MIN_WIDTH
            && g.batch * g.in_hw[0] * g.in_hw[1] >= MIN_PIXELS
            && g.cin >= MIN_CHANNELS
            && g.cout >= MIN_CHANNELS;
        if !applies {
            return None;
        }
        let [h, w] = g.in_hw;
        Some(Self {
            level,
            batch: g.batch,
            cin: g.cin,
            cout: g.cout,
            h,
            w,
            th: h.div_ceil(2),
            tw: w.div_ceil(2),
        })
    }

    /// The strips of tile rows `t0..t1` (of all images' tile rows in sequence) for `L`: one
    /// per tile row when a tile row is at least a vector of tiles wide (or does not divide
    /// one), else `N / tw` tile rows of one image at a time.
    fn strips<L: Lanes>(&self, t0: usize, t1: usize) -> Vec<Strip> {
        let stacked = self.tw < L::N && L::N.is_multiple_of(self.tw);
        let (per, seg) = if stacked {
            (L::N / self.tw, 2 * self.tw)
        } else {
            (1, usize::MAX / 4)
        };
        let mut strips = Vec::new();
        let mut r = t0;
        while r < t1 {
            let (image, tile_row) = (r / self.th, r % self.th);
            let rows = per.min(self.th - tile_row).min(t1 - r);
            strips.push(Strip {
                at: (r - t0) * self.tw,
                image,
                tile_row,
                rows,
                seg,
            });
            r += rows;
        }
        strips
    }

    /// `V = Bᵀ d B` of channels `channels` of the `strips`' tiles of `x`, into `v`: element ξ
    /// of channel `c`'s tile `t` at `v[(ξ·Cin + c)·cs + t]`.
    ///
    /// # Safety
    /// The level is supported; `v` holds `16·Cin·cs` values and `cs` is at least the strips'
    /// tile count plus `N` (a strip's lanes spill past its own tiles, into tiles that later
    /// strips overwrite or into that slack, so the strips run in order).
    unsafe fn transform_input<L: WinogradKernels>(
        &self,
        x: &[f32],
        strips: &[Strip],
        channels: std::ops::Range<usize>,
        v: *mut f32,
        cs: usize,
    ) {
        // SAFETY: as the caller guarantees.
        unsafe { self.transform_strips::<L>(L::input_fn(), x, self.cin, strips, channels, v, cs) }
    }

    /// Runs the strip transform `f` ([`input_tile_body`] or [`grad_tile_body`]) over channels
    /// `channels` of `src [B, C, H, W]` for every strip, in order, into `dst` (element ξ of
    /// channel `c`'s tile `t` at `dst[(ξ·C + c)·cs + t]`).
    ///
    /// # Safety
    /// As [`Winograd::transform_input`], for `C` channels.
    #[allow(clippy::too_many_arguments)]
    unsafe fn transform_strips<L: WinogradKernels>(
        &self,
        f: InputFn,
        src: &[f32],
        c: usize,
        strips: &[Strip],
        channels: std::ops::Range<usize>,
        dst: *mut f32,
        cs: usize,
    ) {
        let (h, wd) = (self.h, self.w);
        assert!(src.len() >= self.batch * c * h * wd && channels.end <= c);
        for st in strips {
            for j0 in (0..self.tw).step_by(L::N) {
                // SAFETY: reads are masked to the planes of image `st.image`, channels
                // `channels`; writes stay in `dst` (caller).
                unsafe {
                    f(
                        src.as_ptr().add((st.image * c + channels.start) * h * wd),
                        [h, wd],
                        [2 * st.tile_row, 2 * j0],
                        st.seg,
                        channels.len(),
                        dst.add(channels.start * cs + st.at + j0),
                        c * cs,
                        cs,
                    )
                };
            }
        }
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
        // Blocks of tile rows, about BLOCK_TILES tiles each. The tile rows of all images form
        // one sequence (tile row `r` is row `r mod th` of image `r / th`), so a block of small
        // images holds several of them and the products stay wide.
        let threads = rayon::current_num_threads().max(1);
        let all_rows = self.batch * self.th;
        let (blocks, block_rows) = self.blocks(BLOCK_TILES);
        let block = |rb: usize| (rb * block_rows, ((rb + 1) * block_rows).min(all_rows));
        // Tiles are numbered densely within a block, tile row by tile row; a block's
        // transformed input keeps `N` values of slack after each channel's tiles (see
        // `transform_input`), and its products `N` after the last plane.
        let tiles = |rb: usize| {
            let (t0, t1) = block(rb);
            (t1 - t0) * self.tw
        };
        // Transformed kernels U_ξ = G g Gᵀ, packed for `shift_gemm`, one after the other.
        let u = transform_kernels::<L>(w, cout, cin);
        let packed_len = cout.div_ceil(MR) * MR * cin;
        let mut packs_buf = scratch::take(16 * packed_len);
        packs_buf[..16 * packed_len]
            .par_chunks_mut(packed_len)
            .enumerate()
            .for_each(|(xi, dst)| {
                microkernels::pack_rows_into(
                    &u[xi * cout * cin..(xi + 1) * cout * cin],
                    cout,
                    cin,
                    dst,
                )
            });
        scratch::give(u);
        let packs = &packs_buf[..16 * packed_len];
        let len = self.batch * cout * h * wd;
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let out = SyncPtr(y.as_mut_ptr());
        if blocks >= 2 * threads {
            // Enough blocks for the pool: one task per block transforms, multiplies and
            // writes back its own tile rows (its transformed input stays in cache).
            (0..blocks).into_par_iter().for_each(|rb| {
                let (t0, t1) = block(rb);
                let strips = self.strips::<L>(t0, t1);
                let (tiles, cs) = (tiles(rb), tiles(rb) + n);
                let mut v = scratch::take(16 * cin * cs);
                let mut m = scratch::take(16 * cout * tiles + n);
                // SAFETY: the level is supported (`with_level`); `v` and `m` have the sizes
                // the three stages ask for; the task writes only the pixel rows of its own
                // tile rows, disjoint from every other task's.
                unsafe {
                    self.transform_input::<L>(x, &strips, 0..cin, v.as_mut_ptr(), cs);
                    for xi in 0..16 {
                        self.multiply::<L>(packs, xi, v.as_ptr(), cs, m.as_mut_ptr(), tiles);
                    }
                    self.transform_output::<L>(
                        m.as_ptr(),
                        tiles,
                        &strips,
                        0..cout,
                        out,
                        bias,
                        epilogue,
                    );
                }
                scratch::give(v);
                scratch::give(m);
            });
        } else {
            // Few blocks (small images or batches): three parallel phases, over (block, input
            // channels), (block, ξ) and (block, output channels), so that every transform and
            // every panel packing of the products runs once.
            let mut vs: Vec<Vec<f32>> = (0..blocks)
                .map(|rb| scratch::take(16 * cin * (tiles(rb) + n)))
                .collect();
            let mut ms: Vec<Vec<f32>> = (0..blocks)
                .map(|rb| scratch::take(16 * cout * tiles(rb) + n))
                .collect();
            let vp: Vec<SyncPtr> = vs.iter_mut().map(|v| SyncPtr(v.as_mut_ptr())).collect();
            let mp: Vec<SyncPtr> = ms.iter_mut().map(|m| SyncPtr(m.as_mut_ptr())).collect();
            let split = |c: usize| c.div_ceil((2 * threads).div_ceil(blocks)).max(1);
            let (cchunk, ochunk) = (split(cin), split(cout));
            let over = |chunk: usize, total: usize| -> Vec<(usize, std::ops::Range<usize>)> {
                (0..blocks)
                    .flat_map(|rb| {
                        (0..total)
                            .step_by(chunk)
                            .map(move |c0| (rb, c0..(c0 + chunk).min(total)))
                    })
                    .collect()
            };
            // In all three phases the level is supported (`with_level`), `vs[rb]` and `ms[rb]`
            // have the sizes the stages ask for, and the phases run one after the other.
            over(cchunk, cin)
                .into_par_iter()
                .for_each(|(rb, cs_range)| {
                    let (t0, t1) = block(rb);
                    let strips = self.strips::<L>(t0, t1);
                    // SAFETY: as above; the task writes only the rows of its input channels.
                    unsafe {
                        self.transform_input::<L>(x, &strips, cs_range, vp[rb].get(), tiles(rb) + n)
                    };
                });
            (0..blocks)
                .flat_map(|rb| (0..16).map(move |xi| (rb, xi)))
                .collect::<Vec<_>>()
                .into_par_iter()
                // SAFETY: as above; the task writes only plane ξ of `ms[rb]`.
                .for_each(|(rb, xi)| unsafe {
                    self.multiply::<L>(
                        packs,
                        xi,
                        vp[rb].get(),
                        tiles(rb) + n,
                        mp[rb].get(),
                        tiles(rb),
                    )
                });
            over(ochunk, cout).into_par_iter().for_each(|(rb, os)| {
                let (t0, t1) = block(rb);
                let strips = self.strips::<L>(t0, t1);
                // SAFETY: as above; the task writes only its output channels of the block's
                // pixel rows.
                unsafe {
                    self.transform_output::<L>(
                        mp[rb].get(),
                        tiles(rb),
                        &strips,
                        os,
                        out,
                        bias,
                        epilogue,
                    )
                };
            });
            vs.into_iter().chain(ms).for_each(scratch::give);
        }
        scratch::give(packs_buf);
        // SAFETY: the tasks cover every tile of every image and output channel, and each tile
        // writes all of its in-image pixels, so all `len` values are written.
        unsafe { y.set_len(len) };
        y
    }

    /// Gradient with respect to the weight: `x [B, Cin, H, W]` and `dy [B, Cout, H, W]` →
    /// `dW [Cout, Cin, 3, 3]`. With `P = A dY Aᵀ` per output tile (the gradient of `M`),
    /// `dU_ξ = Σ_tiles P_ξ · V_ξᵀ` (`Cout × Cin`, 16 products over the tiles instead of 36
    /// multiply-adds per pixel pair) and `dW = Gᵀ dU G` per kernel.
    ///
    /// The blocks (as many tiles as `WEIGHT_GRAD_VALUES` transformed values allow) run one
    /// after the other, so memory stays bounded, each
    /// transforming its input and output gradient in parallel over channel ranges, then adding
    /// its 16 products in parallel over ξ; every `dU_ξ` sums the blocks in order, so the result
    /// does not depend on scheduling.
    pub fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        by_level!(self.level, L => self.weight_grad_at::<L>(x, dy))
    }

    /// Whether [`Winograd::weight_grad`] beats the direct weight gradient here: with at least
    /// `WEIGHT_GRAD_MIN_CHANNELS` (64) channels in and out. Its transforms cost `∝ Cin + Cout`
    /// per tile against products `∝ Cin·Cout`; in `train_conv_bench` 32 → 32 channels at 64×64
    /// took twice the direct kernel's time, 64 → 64 at 32×32 the same, 64 → 64 at 16×16 and
    /// 128 → 128 at 8×8 0.75–0.85×, 256 → 256 at 32×32 0.55×.
    pub fn weight_grad_pays(&self) -> bool {
        self.cin.min(self.cout) >= WEIGHT_GRAD_MIN_CHANNELS
    }

    fn weight_grad_at<L: WinogradKernels>(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let n = L::N;
        let (cin, cout, h, wd) = (self.cin, self.cout, self.h, self.w);
        assert!(x.len() >= self.batch * cin * h * wd && dy.len() >= self.batch * cout * h * wd);
        let threads = rayon::current_num_threads().max(1);
        // Blocks of WEIGHT_GRAD_VALUES transformed values (at least WEIGHT_GRAD_MIN_TILES tiles).
        let per_block = (WEIGHT_GRAD_VALUES / (16 * (cin + cout))).max(WEIGHT_GRAD_MIN_TILES);
        let (blocks, block_rows) = self.blocks(per_block);
        let all_rows = self.batch * self.th;
        let mut du = vec![0.0f32; 16 * cout * cin];
        for rb in 0..blocks {
            let (t0, t1) = (rb * block_rows, ((rb + 1) * block_rows).min(all_rows));
            let strips = self.strips::<L>(t0, t1);
            let tiles = (t1 - t0) * self.tw;
            let cs = tiles + n;
            let mut v = scratch::take(16 * cin * cs);
            let mut p = scratch::take(16 * cout * cs);
            let (vp, pp) = (SyncPtr(v.as_mut_ptr()), SyncPtr(p.as_mut_ptr()));
            // Transforms: input channels then output channels, in ranges of about a quarter
            // of a thread's share.
            let chunk = (cin + cout).div_ceil(4 * threads).max(1);
            let ranges: Vec<(bool, std::ops::Range<usize>)> = (0..cin)
                .step_by(chunk)
                .map(|c0| (true, c0..(c0 + chunk).min(cin)))
                .chain(
                    (0..cout)
                        .step_by(chunk)
                        .map(|o0| (false, o0..(o0 + chunk).min(cout))),
                )
                .collect();
            ranges.into_par_iter().for_each(|(input, range)| {
                // SAFETY: the level is supported (`with_level`); `v` and `p` hold 16 planes of
                // `cin` / `cout` rows of `cs = tiles + N`; each task writes its own rows.
                unsafe {
                    if input {
                        self.transform_input::<L>(x, &strips, range, vp.get(), cs);
                    } else {
                        self.transform_grad::<L>(dy, &strips, range, pp.get(), cs);
                    }
                }
            });
            du.par_chunks_mut(cout * cin)
                .enumerate()
                .for_each(|(xi, du)| {
                    // dU_ξ (cout × cin) += P_ξ (cout × tiles, row pitch cs) · V_ξᵀ (tiles ×
                    // cin: V_ξ's rows have pitch cs).
                    // SAFETY: the strides keep every read inside plane ξ of `p` and `v`
                    // (`cout`/`cin` rows of `cs ≥ tiles`) and every write inside `du`.
                    unsafe {
                        gemm::gemm(
                            cout,
                            cin,
                            tiles,
                            du.as_mut_ptr(),
                            1,
                            cin as isize,
                            true,
                            pp.get().add(xi * cout * cs),
                            1,
                            cs as isize,
                            vp.get().add(xi * cin * cs),
                            cs as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                });
            scratch::give(v);
            scratch::give(p);
        }
        // dW = Gᵀ dU G, G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]].
        let mut dw = vec![0.0f32; cout * cin * 9];
        let plane = cout * cin;
        dw.par_chunks_mut(cin * 9).enumerate().for_each(|(o, row)| {
            for (c, k) in row.chunks_exact_mut(9).enumerate() {
                let e = |xi: usize| du[xi * plane + o * cin + c];
                // t = Gᵀ dU (3 × 4), then k = t G (3 × 3).
                let mut t = [[0.0f32; 4]; 3];
                let [t0, t1, t2] = &mut t;
                for j in 0..4 {
                    let (a, b, cc, d) = (e(j), e(4 + j), e(8 + j), e(12 + j));
                    t0[j] = a + 0.5 * (b + cc);
                    t1[j] = 0.5 * (b - cc);
                    t2[j] = 0.5 * (b + cc) + d;
                }
                for (r, tr) in t.iter().enumerate() {
                    let [a, b, cc, d] = *tr;
                    k[r * 3] = a + 0.5 * (b + cc);
                    k[r * 3 + 1] = 0.5 * (b - cc);
                    k[r * 3 + 2] = 0.5 * (b + cc) + d;
                }
            }
        });
        dw
    }

    /// `P = A dY Aᵀ` of output channels `channels` of the `strips`' tiles of `dy`, into `p`:
    /// element ξ of channel `o`'s tile `t` at `p[(ξ·Cout + o)·cs + t]`.
    ///
    /// # Safety
    /// As [`Winograd::transform_input`], for `Cout` channels.
    unsafe fn transform_grad<L: WinogradKernels>(
        &self,
        dy: &[f32],
        strips: &[Strip],
        channels: std::ops::Range<usize>,
        p: *mut f32,
        cs: usize,
    ) {
        // SAFETY: as the caller guarantees.
        unsafe { self.transform_strips::<L>(L::grad_fn(), dy, self.cout, strips, channels, p, cs) }
    }

    /// Blocks of tile rows (about `tiles` tiles each, tile rows split evenly) of the sequence of
    /// all images' tile rows: (block count, tile rows per block).
    fn blocks(&self, tiles: usize) -> (usize, usize) {
        let all_rows = self.batch * self.th;
        let blocks = (all_rows * self.tw).div_ceil(tiles).max(1);
        let block_rows = all_rows.div_ceil(blocks);
        (all_rows.div_ceil(block_rows), block_rows)
    }

    /// `M_ξ = U_ξ · V_ξ` of one block: `cout × tiles` at `m + ξ·cout·tiles` from the packed
    /// kernels and the transformed input (channel stride `cs`, ξ stride `cin·cs`).
    ///
    /// # Safety
    /// The level is supported; `v` holds `16·cin·cs` values and `m` `16·cout·tiles`, with
    /// `cs ≥ tiles`.
    unsafe fn multiply<L: WinogradKernels>(
        &self,
        packs: &[f32],
        xi: usize,
        v: *const f32,
        cs: usize,
        m: *mut f32,
        tiles: usize,
    ) {
        let (cin, cout) = (self.cin, self.cout);
        let packed_len = cout.div_ceil(MR) * MR * cin;
        let segs = Seg::rows(1, tiles, 0, 0, L::N);
        let koff: Vec<usize> = (0..cin).map(|c| c * cs).collect();
        // SAFETY: the caller's sizes bound every read of `v` (`koff` < cin·cs, segments within
        // `tiles ≤ cs`) and every write of `m`.
        unsafe {
            microkernels::shift_gemm::<L>(
                cout,
                0..cout,
                &segs,
                &packs[xi * packed_len..(xi + 1) * packed_len],
                &koff,
                v.add(xi * cin * cs),
                m.add(xi * cout * tiles),
                tiles,
                None,
                None,
            );
        }
    }

    /// `Y = Aᵀ M A` of one block's `strips` for output channels `channels` (products at `m`,
    /// `cout` rows of `tiles` per ξ plane, `N` values of slack after the last), with the bias
    /// and epilogue, written into `y [B, Cout, H, W]` at `out`.
    ///
    /// # Safety
    /// The level is supported; `m` is as above; `out` holds `B·Cout·H·W` values and no other
    /// task writes these strips' pixel rows of these channels.
    #[allow(clippy::too_many_arguments)]
    unsafe fn transform_output<L: WinogradKernels>(
        &self,
        m: *const f32,
        tiles: usize,
        strips: &[Strip],
        channels: std::ops::Range<usize>,
        out: SyncPtr,
        bias: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) {
        let (cout, h, wd) = (self.cout, self.h, self.w);
        for o in channels {
            let mut scale = 1.0f32;
            let mut shift = bias.map_or(0.0, |bs| bs[o]);
            let mut relu = false;
            if let Some(e) = epilogue {
                // (v + bias)·s + t = v·s + (bias·s + t)
                shift = shift * e.scale[o] + e.shift[o];
                scale = e.scale[o];
                relu = e.relu;
            }
            for st in strips {
                // Rows past the strip's own tile rows belong to other strips or tasks.
                let rows = h.min(2 * (st.tile_row + st.rows));
                for j0 in (0..self.tw).step_by(L::N) {
                    // SAFETY: reads stay in `m` (the strip's `N` lanes start before the
                    // block's end, and `N` values of slack follow); stores are masked to the
                    // strip's own pixels of plane (image, o) (caller).
                    unsafe {
                        L::output_fn()(
                            m.add(o * tiles + st.at + j0),
                            cout * tiles,
                            out.get().add((st.image * cout + o) * h * wd),
                            [rows, wd],
                            [2 * st.tile_row, 2 * j0],
                            st.seg,
                            [scale, shift],
                            relu,
                        )
                    };
                }
            }
        }
    }
}

/// The lanes `first..last` of `l` whose columns `col + l` lie in `0..w`, as a bit mask.
fn window_bits(col: isize, w: usize, first: usize, last: usize) -> u16 {
    let lo = (first as isize).max(-col);
    let hi = (last as isize).min(w as isize - col);
    if lo >= hi {
        return 0;
    }
    (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16
}

/// Segments per half-strip of `n` values (see [`store_strip`]): 1 unless the strip stacks tile
/// rows of `seg / 2 < n` tiles, then `n / seg` (at most 2: tile rows of `n / 4` or `n / 2`).
fn strip_parts(seg: usize, n: usize) -> usize {
    let parts = if seg >= 2 * n { 1 } else { n / seg };
    debug_assert!(parts <= 2 && (parts == 1 || n.is_multiple_of(seg)));
    parts
}

/// Segment `k` of the strip values `lane0..lane0 + n` (see [`store_strip`]) starting at
/// `at = [row, col]` of the `hw` plane: the offset of its lane 0 in the plane and the mask of
/// its lanes that lie inside the plane. With `seg ≥ 2n` the one segment is row `row` itself.
fn strip_part(
    hw: [usize; 2],
    at: [isize; 2],
    lane0: usize,
    n: usize,
    seg: usize,
    k: usize,
) -> (isize, u16) {
    let (s, first, last) = if seg >= 2 * n {
        (0, 0, n)
    } else {
        let s = lane0 / seg + k;
        (s, s * seg - lane0, ((s + 1) * seg - lane0).min(n))
    };
    let r = at[0] + 2 * s as isize;
    let c = at[1] + lane0 as isize - (s * seg) as isize;
    let bits = if r >= 0 && r < hw[0] as isize {
        window_bits(c, hw[1], first, last)
    } else {
        0
    };
    (r * hw[1] as isize + c, bits)
}

/// The sum of the first `parts` masked loads `(offset from x, mask)` of `plan` (masked-off
/// lanes read as 0 and are never accessed).
#[inline(always)]
unsafe fn load_planned<L: Lanes>(x: *const f32, plan: &[(isize, L::M); 2], parts: usize) -> L::V {
    // SAFETY: the level's features are enabled (entry point); the masks bound the lanes read.
    unsafe {
        let v = L::load_part(plan[0].1, x.wrapping_offset(plan[0].0));
        if parts == 2 {
            L::add(v, L::load_part(plan[1].1, x.wrapping_offset(plan[1].0)))
        } else {
            v
        }
    }
}

/// Stores the lanes of `v` that are values `lane0..lane0 + N` of a *strip* in the `hw` plane
/// `dst`, skipping those outside it. A strip is a virtual row whose values `v = 0, 1, …` are
/// cut into segments of `seg`: `v` in segment `s = v / seg` is column `col + v − s·seg` of row
/// `row + 2s`. With `seg ≥ lane0 + N` that is just row `row` from column `col + lane0`; with
/// `seg = 2·tw` it puts the pixel rows of consecutive tile rows of a narrow image side by side.
#[inline(always)]
unsafe fn store_strip<L: Lanes>(
    dst: *mut f32,
    hw: [usize; 2],
    row: usize,
    col: usize,
    lane0: usize,
    seg: usize,
    v: L::V,
) {
    let n = L::N;
    // SAFETY (whole body): the level's features are enabled; stores are masked to the plane.
    unsafe {
        let mut s = lane0 / seg;
        while s * seg < lane0 + n {
            let r = row + 2 * s;
            if r >= hw[0] {
                break;
            }
            let first = (s * seg).saturating_sub(lane0);
            let last = ((s + 1) * seg - lane0).min(n);
            // Lane `l` of this segment is column `col + lane0 + l − s·seg`.
            let c = (col + lane0) as isize - (s * seg) as isize;
            let mask = window_bits(c, hw[1], first, last);
            if mask != 0 {
                let p = dst.wrapping_offset((r * hw[1]) as isize + c);
                L::store_part(p, L::mask(mask), v);
            }
            s += 1;
        }
    }
}

/// `V = Bᵀ d B` for a strip of `N` tiles read straight from the unpadded plane `x` (`hw`): the
/// first tile's patch starts at row `at[0] − 1`, column `at[1] − 1` (padding 1 reads as zero).
/// With `seg ≥ 2N` the tiles are consecutive tiles of one tile row; with `seg = 2·tw` (`tw`
/// tile columns dividing `N`) they are the `N / tw` tile rows from `at[0] / 2` on, whole.
/// Does so for `channels` consecutive planes (`x + c·H·W`), writing element ξ of channel `c`'s
/// `N` tiles at `dst + c·ldc + ξ·ld`.
///
/// The values are read as strips (see [`store_strip`]): row `i` of the patches is
/// `d_j = strip(at[0] − 1 + i)[2t + j]`, loaded as `N`-lane halves (`lo`, `hi`) from column
/// `at[1] − 1` (`d₀`, `d₁`) and `at[1] + 1` (`d₂`, `d₃`). Where each half's segments lie and
/// which of their lanes are inside the plane does not depend on the channel, so the masks and
/// offsets are worked out once.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn input_tile_body<L: Lanes>(
    x: *const f32,
    hw: [usize; 2],
    at: [usize; 2],
    seg: usize,
    channels: usize,
    dst: *mut f32,
    ld: usize,
    ldc: usize,
) {
    let (n, plane, parts) = (L::N, hw[0] * hw[1], strip_parts(seg, L::N));
    // SAFETY: the level's features are enabled; reads are masked to the planes (masked-off
    // lanes are never accessed, so the offsets may point anywhere); the caller guarantees 16
    // writable planes per channel.
    unsafe {
        // (offset, mask) of segment k of half q (lo/hi at column −1, lo/hi at +1) of row i.
        let mut plan = [[[(0isize, L::mask(0)); 2]; 4]; 4];
        for (i, row_plan) in plan.iter_mut().enumerate() {
            for (q, half) in row_plan.iter_mut().enumerate() {
                let lane0 = if q % 2 == 0 { 0 } else { n };
                let row = at[0] as isize - 1 + i as isize;
                let col = at[1] as isize - 1 + 2 * (q / 2) as isize;
                for (k, part) in half.iter_mut().take(parts).enumerate() {
                    let (offset, bits) = strip_part(hw, [row, col], lane0, n, seg, k);
                    *part = (offset, L::mask(bits));
                }
            }
        }
        for ch in 0..channels {
            let x = x.add(ch * plane);
            let dst = dst.add(ch * ldc);
            let mut r = [[L::zero(); 4]; 4];
            for (ri, hp) in r.iter_mut().zip(&plan) {
                let (d0, d1) = L::deinterleave(
                    load_planned::<L>(x, &hp[0], parts),
                    load_planned::<L>(x, &hp[1], parts),
                );
                let (d2, d3) = L::deinterleave(
                    load_planned::<L>(x, &hp[2], parts),
                    load_planned::<L>(x, &hp[3], parts),
                );
                *ri = [
                    L::sub(d0, d2),
                    L::add(d1, d2),
                    L::sub(d2, d1),
                    L::sub(d1, d3),
                ];
            }
            let [r0, r1, r2, r3] = r;
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
}

/// `P = A dY Aᵀ` (the gradient of `M` in `Y = Aᵀ M A`) for a strip of `N` output tiles of the
/// `hw` plane `dy`, from output row `at[0]`, column `at[1]` on (strips as in
/// [`input_tile_body`]; pixels outside the plane read as 0), for `channels` consecutive planes,
/// writing element ξ of channel `c`'s `N` tiles at `dst + c·ldc + ξ·ld`. With `A` =
/// `[[1,0],[1,1],[1,−1],[0,−1]]`: per output row `a`, `Q_a = [e, e + o, e − o, −o]` (`e`, `o`
/// the tile's even and odd pixels), then `P = [Q₀, Q₀ + Q₁, Q₀ − Q₁, −Q₁]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn grad_tile_body<L: Lanes>(
    dy: *const f32,
    hw: [usize; 2],
    at: [usize; 2],
    seg: usize,
    channels: usize,
    dst: *mut f32,
    ld: usize,
    ldc: usize,
) {
    let (n, plane, parts) = (L::N, hw[0] * hw[1], strip_parts(seg, L::N));
    // SAFETY: the level's features are enabled; reads are masked to the planes; the caller
    // guarantees 16 writable planes per channel.
    unsafe {
        // (offset, mask) of segment k of half q (lo, hi) of output row a.
        let mut plan = [[[(0isize, L::mask(0)); 2]; 2]; 2];
        for (a, row_plan) in plan.iter_mut().enumerate() {
            for (q, half) in row_plan.iter_mut().enumerate() {
                let at = [(at[0] + a) as isize, at[1] as isize];
                for (k, part) in half.iter_mut().take(parts).enumerate() {
                    let (offset, bits) = strip_part(hw, at, q * n, n, seg, k);
                    *part = (offset, L::mask(bits));
                }
            }
        }
        for ch in 0..channels {
            let dy = dy.add(ch * plane);
            let dst = dst.add(ch * ldc);
            let mut q = [[L::zero(); 4]; 2];
            for (qa, rp) in q.iter_mut().zip(&plan) {
                let (e, o) = L::deinterleave(
                    load_planned::<L>(dy, &rp[0], parts),
                    load_planned::<L>(dy, &rp[1], parts),
                );
                *qa = [e, L::add(e, o), L::sub(e, o), L::sub(L::zero(), o)];
            }
            let [q0, q1] = q;
            for j in 0..4 {
                let p = [
                    q0[j],
                    L::add(q0[j], q1[j]),
                    L::sub(q0[j], q1[j]),
                    L::sub(L::zero(), q1[j]),
                ];
                for (i, v) in p.iter().enumerate() {
                    L::store(dst.add((i * 4 + j) * ld), *v);
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` for a strip of `N` tiles (element ξ at `m + ξ·ld`; the strip as in
/// [`input_tile_body`]), then `y·scale + shift` (and ReLU), written to the `hw`-sized plane
/// `dst` from output row `at[0]`, column `at[1]` on, skipping pixels outside it (rows from
/// `hw[0]` on included, so a caller bounds the rows it writes through `hw[0]`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_tile_body<L: Lanes>(
    m: *const f32,
    ld: usize,
    dst: *mut f32,
    hw: [usize; 2],
    at: [usize; 2],
    seg: usize,
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
        for a in 0..2 {
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
            store_strip::<L>(dst, hw, at[0] + a, at[1], 0, seg, lo);
            store_strip::<L>(dst, hw, at[0] + a, at[1], n, seg, hi);
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
        // One thread (blocks run one task each), the default pool and 16 threads (few blocks
        // per thread: the three-phase path).
        for threads in [1, 0, 16] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            for &level in &levels {
                pool.install(|| matches_at(level));
            }
        }
    }

    fn matches_at(level: Level) {
        for (b, cin, cout, h, w) in [
            (4, 32, 32, 32, 32),
            (6, 40, 36, 17, 45),
            (1, 33, 64, 70, 66),
            (14, 32, 48, 9, 33),
            // Narrow images: tile rows of 8 (16 wide) and 4 (8 wide), stacked in the
            // transforms' strips, and of 5 and 9 tiles, whose strips spill past the row's end.
            (4, 32, 32, 16, 16),
            (16, 32, 40, 8, 8),
            (8, 33, 32, 15, 9),
            (5, 40, 64, 13, 17),
            // Stacked strips cut short by the image's last tile row (5 tile rows of 4 or 8 tiles)
            // and by a block boundary inside an image (blocks of 52 tile rows).
            (17, 32, 32, 9, 8),
            (41, 32, 32, 9, 8),
            (9, 32, 32, 15, 15),
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
            // The weight gradient against the im2col kernel's.
            let dy = data(b * cout * h * w, 6);
            let got = wg.weight_grad(&x, &dy);
            let want = dense::weight_grad(&g, &x, &dy);
            assert_eq!(got.len(), want.len());
            let size = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (p - q).abs() / size < 1e-5,
                    "{level} dW {b}×{cin}→{cout} {h}×{w} [{i}]: {p} vs {q}"
                );
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
