//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, "same" (padding 1) layers.
//!
//! Each 2×2 output tile is `Y = Aᵀ [Σ_c (G g_{o,c} Gᵀ) ⊙ (Bᵀ d_c B)] A` (Lavin & Gray 2016),
//! with `d_c` the 4×4 input patch of channel `c`. The sum over channels is 16 matrix products
//! `M_ξ = U_ξ · V_ξ` (`U_ξ`: `Cout × Cin`, `V_ξ`: `Cin × tiles`), one per element ξ of the 4×4
//! transformed tile: 16 multiply-adds per tile and channel pair instead of 36, i.e. 2.25× fewer.
//! The products run on [`avx512::shift_gemm`]; the transforms are vectorised over 16 tiles of a
//! tile row. Results equal the direct convolution up to floating-point rounding (the transforms
//! only add, subtract and halve).
//!
//! Work is split into tasks (image × block of tile rows × output-channel range) that each
//! transform their block, multiply and write their own output rows, so results do not depend
//! on scheduling.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::sync_ptr::SyncPtr;

use crate::avx512::{self, Epilogue, MR, Seg};
use crate::geometry::ConvGeometry;
use crate::scratch;

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

/// All `U_ξ = G g Gᵀ` of `w [Cout, Cin, 3, 3]` as `[16][Cout][Cin]` (in a [`scratch`] buffer): 16 input channels at a
/// time (the nine taps gathered with stride 9), in parallel over output channels.
fn transform_kernels(w: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let plane = cout * cin;
    let mut u = scratch::take(16 * plane);
    let up = SyncPtr(u.as_mut_ptr());
    (0..cout).into_par_iter().for_each(|o| {
        let full = cin / 16 * 16;
        for c0 in (0..full).step_by(16) {
            // SAFETY: AVX-512 is available (checked in `Winograd::new`); the gathers read
            // `w[(o·cin + c0 + l)·9 + t]` for l < 16, t < 9, inside `w`; the stores write
            // `u[ξ·plane + o·cin + c0 ..][..16]`, owned by this task (output channel `o`).
            unsafe {
                transform16(
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

/// [`transform_kernel`] for 16 consecutive kernels at `w` (9 values each), writing element ξ
/// of the 16 results to `u + ξ·ld`.
#[target_feature(enable = "avx512f")]
unsafe fn transform16(w: *const f32, u: *mut f32, ld: usize) {
    // SAFETY: the caller guarantees 144 readable values at `w` and 16 writable rows at `u`.
    unsafe {
        let idx = _mm512_setr_epi32(
            0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135,
        );
        let g: [__m512; 9] = std::array::from_fn(|t| _mm512_i32gather_ps::<4>(idx, w.add(t)));
        let half = _mm512_set1_ps(0.5);
        // t = G g (4 × 3), then U = t Gᵀ (4 × 4).
        let mut t = [[_mm512_setzero_ps(); 3]; 4];
        for j in 0..3 {
            let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
            let ac = _mm512_add_ps(a, c);
            t[0][j] = a;
            t[1][j] = _mm512_mul_ps(half, _mm512_add_ps(ac, b));
            t[2][j] = _mm512_mul_ps(half, _mm512_sub_ps(ac, b));
            t[3][j] = c;
        }
        for (i, r) in t.iter().enumerate() {
            let ac = _mm512_add_ps(r[0], r[2]);
            let row = [
                r[0],
                _mm512_mul_ps(half, _mm512_add_ps(ac, r[1])),
                _mm512_mul_ps(half, _mm512_sub_ps(ac, r[1])),
                r[2],
            ];
            for (j, v) in row.iter().enumerate() {
                _mm512_storeu_ps(u.add((i * 4 + j) * ld), *v);
            }
        }
    }
}

impl Winograd {
    /// The layout for `g`, or `None` unless `g` is a 3×3, stride-1, dilation-1, ungrouped
    /// convolution with padding 1 on every side, at least `MIN_CHANNELS` (32) channels in and out,
    /// an image at least 32 wide, `MIN_PIXELS` (1024) output pixels, on a CPU with AVX-512.
    pub fn new(g: &ConvGeometry) -> Option<Self> {
        let applies = avx512::available()
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
        let u = transform_kernels(w, cout, cin);
        let packs: Vec<Vec<Vec<f32>>> = ranges
            .iter()
            .map(|&(o0, o1)| {
                (0..16)
                    .map(|xi| {
                        let plane = &u[xi * cout * cin..(xi + 1) * cout * cin];
                        avx512::pack_rows(&plane[o0 * cin..o1 * cin], o1 - o0, cin)
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
            // SAFETY (all three stages): AVX-512 checked in `new`; input reads are masked to
            // the image's planes; `v`
            // and `m` hold 16 planes of `cin`/`o1 − o0` rows × `tiles`; each task writes only
            // output rows `2·t0..2·t1` of channels `o0..o1` of image `b`, disjoint from every
            // other task's.
            unsafe {
                for c in 0..cin {
                    let src = image.as_ptr().add(c * h * wd);
                    for ti in t0..t1 {
                        let col0 = (ti - t0) * self.twp;
                        for j0 in (0..self.twp).step_by(16) {
                            input_tile(
                                src,
                                [h, wd],
                                [2 * ti, 2 * j0],
                                v.as_mut_ptr().add(c * tiles + col0 + j0),
                                cin * tiles,
                            );
                        }
                    }
                }
                let segs = Seg::rows(1, tiles, 0, 0);
                let koff: Vec<usize> = (0..cin).map(|c| c * tiles).collect();
                for (xi, pack) in packs[p].iter().enumerate() {
                    avx512::shift_gemm(
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
                        for j0 in (0..self.twp).step_by(16) {
                            output_tile(
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

/// Even (`EVEN`) or odd lanes of the 32 values `lo ‖ hi`.
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave(lo: __m512, hi: __m512) -> (__m512, __m512) {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    (
        _mm512_permutex2var_ps(lo, even, hi),
        _mm512_permutex2var_ps(lo, odd, hi),
    )
}

/// 16 values of image row `row` from column `col` (both possibly outside the `hw` plane
/// `x`); values outside the plane read as 0 and are never accessed.
#[target_feature(enable = "avx512f")]
unsafe fn load_masked(x: *const f32, hw: [usize; 2], row: isize, col: isize) -> __m512 {
    if row < 0 || row >= hw[0] as isize {
        return _mm512_setzero_ps();
    }
    let w = hw[1] as isize;
    if col >= 0 && col + 16 <= w {
        // SAFETY: all 16 columns lie inside row `row` of the plane.
        return unsafe { _mm512_loadu_ps(x.offset(row * w + col)) };
    }
    let first = (-col).clamp(0, 16);
    let last = (w - col).clamp(0, 16);
    if first >= last {
        return _mm512_setzero_ps();
    }
    let mask = (((1u32 << last) - 1) & !((1u32 << first) - 1)) as __mmask16;
    // The pointer may lie outside the plane; the masked load touches only lanes inside it.
    let p = x.wrapping_offset(row * w + col);
    // SAFETY: only lanes `first..last` (columns 0 ≤ col + l < w of an existing row) are read.
    unsafe { _mm512_maskz_loadu_ps(mask, p) }
}

/// `V = Bᵀ d B` for 16 consecutive tiles of one tile row, read straight from the unpadded
/// plane `x` (`hw`): the tiles' patches start at row `at[0] − 1`, column `at[1] − 1` (padding
/// 1 reads as zero); writes element ξ of the 16 tiles at `dst + ξ·ld`.
#[target_feature(enable = "avx512f")]
unsafe fn input_tile(x: *const f32, hw: [usize; 2], at: [usize; 2], dst: *mut f32, ld: usize) {
    // SAFETY: reads are masked to the plane; the caller guarantees 16 writable planes.
    unsafe {
        let col = at[1] as isize - 1;
        let row_terms = |i: usize| {
            let row = at[0] as isize - 1 + i as isize;
            let (d0, d1) = deinterleave(
                load_masked(x, hw, row, col),
                load_masked(x, hw, row, col + 16),
            );
            let (d2, d3) = deinterleave(
                load_masked(x, hw, row, col + 2),
                load_masked(x, hw, row, col + 18),
            );
            [
                _mm512_sub_ps(d0, d2),
                _mm512_add_ps(d1, d2),
                _mm512_sub_ps(d2, d1),
                _mm512_sub_ps(d1, d3),
            ]
        };
        let (r0, r1, r2, r3) = (row_terms(0), row_terms(1), row_terms(2), row_terms(3));
        for j in 0..4 {
            let v = [
                _mm512_sub_ps(r0[j], r2[j]),
                _mm512_add_ps(r1[j], r2[j]),
                _mm512_sub_ps(r2[j], r1[j]),
                _mm512_sub_ps(r1[j], r3[j]),
            ];
            for (i, x) in v.iter().enumerate() {
                _mm512_storeu_ps(dst.add((i * 4 + j) * ld), *x);
            }
        }
    }
}

/// `Y = Aᵀ M A` for 16 consecutive tiles (element ξ at `m + ξ·ld`), then `y·scale + shift`
/// (and ReLU), written to output rows `at[0]`, `at[0] + 1` from column `at[1]` of the
/// `hw`-sized plane `dst`, skipping pixels outside it.
#[target_feature(enable = "avx512f")]
unsafe fn output_tile(
    m: *const f32,
    ld: usize,
    dst: *mut f32,
    hw: [usize; 2],
    at: [usize; 2],
    affine: [f32; 2],
    relu: bool,
) {
    // SAFETY: the caller guarantees 16 readable planes; stores are masked to the plane.
    unsafe {
        let e = |i: usize, j: usize| _mm512_loadu_ps(m.add((i * 4 + j) * ld));
        let mut s = [[_mm512_setzero_ps(); 2]; 4];
        for (i, row) in s.iter_mut().enumerate() {
            let (a, b, c, d) = (e(i, 0), e(i, 1), e(i, 2), e(i, 3));
            row[0] = _mm512_add_ps(_mm512_add_ps(a, b), c);
            row[1] = _mm512_sub_ps(_mm512_sub_ps(b, c), d);
        }
        let (scale, shift) = (_mm512_set1_ps(affine[0]), _mm512_set1_ps(affine[1]));
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let cols = hw[1].saturating_sub(at[1]);
        let mask = |skip: usize| -> __mmask16 {
            let n = cols.saturating_sub(skip).min(16);
            ((1u32 << n) - 1) as __mmask16
        };
        for a in 0..2 {
            let row = at[0] + a;
            if row >= hw[0] {
                break;
            }
            let y: [__m512; 2] = std::array::from_fn(|b| {
                let v = if a == 0 {
                    _mm512_add_ps(_mm512_add_ps(s[0][b], s[1][b]), s[2][b])
                } else {
                    _mm512_sub_ps(_mm512_sub_ps(s[1][b], s[2][b]), s[3][b])
                };
                let v = _mm512_fmadd_ps(v, scale, shift);
                if relu {
                    _mm512_max_ps(v, _mm512_setzero_ps())
                } else {
                    v
                }
            });
            let p = dst.add(row * hw[1] + at[1]);
            _mm512_mask_storeu_ps(p, mask(0), _mm512_permutex2var_ps(y[0], lo, y[1]));
            _mm512_mask_storeu_ps(p.add(16), mask(16), _mm512_permutex2var_ps(y[0], hi, y[1]));
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
        if !avx512::available() {
            return;
        }
        for (b, cin, cout, h, w) in [
            (4, 32, 32, 32, 32),
            (6, 40, 36, 17, 45),
            (1, 33, 64, 70, 66),
            (14, 32, 48, 9, 33),
        ] {
            let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let g = ConvGeometry::new([b, cin, h, w], [cout, cin, 3, 3], &opts);
            let wg = Winograd::new(&g).expect("applies");
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
                        "{b}×{cin}→{cout} {h}×{w} [{i}]: {p} vs {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn applies_only_to_same_3x3_convolutions() {
        let g = |w: [usize; 4], opts: ConvOptions<2>| ConvGeometry::new([4, 32, 32, 32], w, &opts);
        let same = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        if avx512::available() {
            assert!(Winograd::new(&g([32, 32, 3, 3], same.clone())).is_some());
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
