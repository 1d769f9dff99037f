//! Stride-1 dense convolution without im2col: products with shifted views of a padded image.
//!
//! Pad each input plane to `Hp × Wp` (`Hp = OH + dh·(KH−1)`, `Wp = OW + dw·(KW−1)`) and flatten
//! it. With `q = oh·Wp + ow` and the tap offset `off(kh, kw) = kh·dh·Wp + kw·dw`,
//!
//! * forward     `y[o, oh, ow] = b[o] + Σ_{c, t} W[o, c, t] · xp[c, q + off(t)]`
//! * input grad  `dx[c, h, w] = Σ_{o, t} W[o, c, T−1−t] · dyp[o, (h + pt)·Wp + pl + w + off(t)]`
//! * weight grad `dW[o, c, t] = Σ_{oh, ow} dy[o, oh, ow] · xp[c, q + off(t)]`
//!
//! where `dyp` is `dy` padded by `dh·(KH−1)` rows on top and `dw·(KW−1)` columns on the left
//! (row pitch `Wp`). Output rows are cut into [`Seg`]ments of one vector (16 or 8 columns) that
//! read the padded source and write the unpadded destination directly; each product is one
//! [`microkernels::shift_gemm`] / [`microkernels::shift_gemm_nt`] per image, at the layout's
//! SIMD level (AVX-512 or AVX2). Pointwise convolutions use `x` and `dy` as they are. Padded
//! buffers come from the [`scratch`] pool.
//!
//! Work is spread over the rayon pool in a fixed partition: forward and input grad by image and
//! segment range, the weight grad by (output-channel range, tap range), each task summing the
//! batch in order, so results do not depend on scheduling.

use rayon::prelude::*;

use crate::sync_ptr::SyncPtr;

use crate::geometry::ConvGeometry;
use crate::lanes::by_level;
use crate::microkernels::{self, Epilogue, Kernels, MR, Run, Seg};
use crate::scratch;
use crate::simd::Level;

/// Layout of the padded buffers of one convolution.
#[derive(Debug, Clone)]
pub struct Shifted {
    g: ConvGeometry,
    /// SIMD level of the kernels (AVX-512 or AVX2).
    level: Level,
    /// Padded row width `Wp`.
    wp: usize,
    /// Offsets of the taps in a padded plane, in `(kh, kw)` order.
    offs: Vec<usize>,
    /// Length of one padded input plane (with slack for the last tap's overrun).
    x_len: usize,
    /// Length of one padded output-gradient plane.
    dy_len: usize,
    /// Top / left margin of the padded output-gradient planes.
    margin: [usize; 2],
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Tasks `(first output channel, first source row)` of a weight gradient: output-channel ranges
/// of `mt`, source-row ranges (multiples of `step`) of at most `max_rows`, and at least two tasks
/// per thread where the rows allow. Returns the tasks and the row-range length.
fn weight_tasks(
    cout: usize,
    mt: usize,
    k: usize,
    max_rows: usize,
    step: usize,
) -> (Vec<(usize, usize)>, usize) {
    let m_parts = cout.div_ceil(mt);
    let k_parts = k
        .div_ceil(max_rows)
        .max((2 * threads()).div_ceil(m_parts))
        .min(k.div_ceil(step));
    let kr = k.div_ceil(k_parts).div_ceil(step) * step;
    let tasks = (0..m_parts)
        .flat_map(|mp| (0..k).step_by(kr).map(move |k0| (mp * mt, k0)))
        .collect();
    (tasks, kr)
}

/// One past the last source column any segment reads.
fn seg_end(segs: &[Seg]) -> usize {
    segs.iter().map(Seg::src_end).max().unwrap_or(0)
}

/// Tasks `(b, first segment, segment count, first row, row count)` over `batch` images of
/// `rows` output rows, segments in groups of `nv`: enough for the pool, splitting the rows (in
/// multiples of [`MR`]) when an image has too few segment groups.
fn segment_tasks(
    batch: usize,
    segs: usize,
    rows: usize,
    nv: usize,
) -> Vec<(usize, usize, usize, usize, usize)> {
    let per_image = (4 * threads()).div_ceil(batch).max(1);
    let groups = segs.div_ceil(nv).max(1);
    let seg_parts = per_image.min(groups);
    let chunk = groups.div_ceil(seg_parts) * nv;
    let seg_parts = segs.div_ceil(chunk).max(1);
    let row_parts = per_image.div_ceil(seg_parts).min(rows.div_ceil(MR)).max(1);
    let rchunk = rows.div_ceil(MR).div_ceil(row_parts) * MR;
    let mut tasks = Vec::new();
    for b in 0..batch {
        for s in (0..segs).step_by(chunk) {
            for r in (0..rows).step_by(rchunk) {
                tasks.push((b, s, chunk.min(segs - s), r, rchunk.min(rows - r)));
            }
        }
    }
    tasks
}

/// Writes `src` (`rows × width`) into `dst` at row `top`, column `left` with row pitch `pitch`,
/// and zeros everywhere else in `dst` (one pass).
fn pad_plane(dst: &mut [f32], src: &[f32], width: usize, pitch: usize, top: usize, left: usize) {
    let mut at = 0;
    for (r, line) in src.chunks_exact(width).enumerate() {
        let s = (r + top) * pitch + left;
        dst[at..s].fill(0.0);
        dst[s..s + width].copy_from_slice(line);
        at = s + width;
    }
    dst[at..].fill(0.0);
}

impl Shifted {
    /// The layout for `g` at the process's SIMD level ([`crate::simd::level`]), or `None` when
    /// this path does not apply (stride ≠ 1, groups ≠ 1, an end padding that crops, or the
    /// scalar level).
    pub fn new(g: &ConvGeometry) -> Option<Self> {
        Self::with_level(g, crate::simd::level())
    }

    /// [`Shifted::new`] at a given level.
    ///
    /// # Panics
    /// When the CPU does not support `level`.
    pub fn with_level(g: &ConvGeometry, level: Level) -> Option<Self> {
        assert!(
            level.supported(),
            "SIMD level {level} is not supported here"
        );
        if g.stride != [1, 1] || g.groups != 1 || level == Level::Scalar {
            return None;
        }
        let [kh, kw] = g.kernel;
        let [dh, dw] = g.dilation;
        let span = [dh * (kh - 1), dw * (kw - 1)];
        let hp = g.out_hw[0] + span[0];
        let wp = g.out_hw[1] + span[1];
        if hp < g.in_hw[0] + g.pad[0] || wp < g.in_hw[1] + g.pad[1] {
            return None;
        }
        let offs = (0..kh)
            .flat_map(|i| (0..kw).map(move |j| i * dh * wp + j * dw))
            .collect();
        let pad_bottom = hp - g.in_hw[0] - g.pad[0];
        let dy_rows = g.in_hw[0] + g.pad[0] + pad_bottom.max(span[0]) + 1;
        Some(Self {
            g: *g,
            level,
            wp,
            offs,
            x_len: (hp * wp + span[1]).div_ceil(16) * 16,
            dy_len: (dy_rows * wp + span[1]).div_ceil(16) * 16,
            margin: span,
        })
    }

    /// Whether `x` and `dy` serve as the padded buffers unchanged.
    fn direct(&self) -> bool {
        self.g.is_pointwise()
    }

    /// Padded input planes (`B·Cin` planes of the returned length), or `x` itself.
    fn padded_input<'a>(&self, x: &'a [f32]) -> (Buffer<'a>, usize) {
        let g = &self.g;
        if self.direct() {
            return (Buffer::Borrowed(x), g.in_plane());
        }
        let mut xp = scratch::take(g.batch * g.cin * self.x_len);
        xp.par_chunks_mut(self.x_len)
            .zip(x.par_chunks(g.in_plane()))
            .for_each(|(dst, src)| pad_plane(dst, src, g.in_hw[1], self.wp, g.pad[0], g.pad[1]));
        (Buffer::Scratch(xp), self.x_len)
    }

    /// [`Shifted::padded_input`] and the offset of every source row `(c, tap)` in it.
    fn padded_source<'a>(&self, x: &'a [f32]) -> (Buffer<'a>, usize, Vec<usize>) {
        let (xp, x_len) = self.padded_input(x);
        let koff = (0..self.g.cin)
            .flat_map(|c| self.offs.iter().map(move |o| c * x_len + o))
            .collect();
        (xp, x_len, koff)
    }

    /// Padded output-gradient planes (`B·Cout` planes of the returned length), or `dy` itself.
    fn padded_output_grad<'a>(&self, dy: &'a [f32]) -> (Buffer<'a>, usize) {
        let g = &self.g;
        if self.direct() {
            return (Buffer::Borrowed(dy), g.out_plane());
        }
        let mut dyp = scratch::take(g.batch * g.cout * self.dy_len);
        let [top, left] = self.margin;
        dyp.par_chunks_mut(self.dy_len)
            .zip(dy.par_chunks(g.out_plane()))
            .for_each(|(dst, src)| pad_plane(dst, src, g.out_hw[1], self.wp, top, left));
        (Buffer::Scratch(dyp), self.dy_len)
    }

    /// The SIMD level of the kernels.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Segments of `lanes` columns of the output rows (`rows × width`) reading a padded source
    /// from `src0`; with `pairs` (for [`microkernels::shift_gemm`] only), two rows per segment
    /// where they fit in half a vector.
    fn segments(
        &self,
        rows: usize,
        width: usize,
        src0: usize,
        lanes: usize,
        pairs: bool,
    ) -> Vec<Seg> {
        if self.direct() {
            Seg::rows(1, rows * width, 0, 0, lanes)
        } else if pairs && rows > 1 && 2 * width <= lanes {
            Seg::row_pairs(rows, width, src0, self.wp, lanes)
        } else {
            Seg::rows(rows, width, src0, self.wp, lanes)
        }
    }

    /// `out_b[r, seg.dst] = init[r] + Σ_k a[r, k] · src_b[koff[k] + seg.src]` for every image `b`
    /// (`rows` output rows of `plane` values per image), in parallel.
    #[allow(clippy::too_many_arguments)]
    fn products<L: Kernels>(
        &self,
        rows: usize,
        plane: usize,
        a: &[f32],
        koff: &[usize],
        src: &[f32],
        src_image: usize,
        segs: &[Seg],
        init: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        let batch = self.g.batch;
        let apack = microkernels::pack_rows(a, rows, koff.len());
        let max_read = koff.iter().max().copied().unwrap_or(0) + seg_end(segs);
        assert!(
            src.len() >= (batch - 1) * src_image + max_read,
            "source too short"
        );
        let covered: usize = segs.iter().map(|s| s.mask.count_ones() as usize).sum();
        assert_eq!(covered, plane, "segments must cover each output plane once");
        assert!(
            microkernels::fits::<L>(segs),
            "segments wider than the vectors"
        );
        let len = batch * rows * plane;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let dst = SyncPtr(out.as_mut_ptr());
        segment_tasks(batch, segs.len(), rows, L::NV)
            .into_par_iter()
            .for_each(|(b, first, count, r0, nr)| {
                // SAFETY: the level is supported (checked in `with_level`); segments have
                // `L::N` lanes (built by the caller for `L`); reads stay below `max_read` within image
                // `b` (asserted above); each task writes its own rows and segments of image
                // `b`, inside the `len` reserved values; `r0` is a multiple of `MR`.
                unsafe {
                    microkernels::shift_gemm::<L>(
                        rows,
                        r0..r0 + nr,
                        &segs[first..first + count],
                        &apack,
                        koff,
                        src.as_ptr().add(b * src_image),
                        dst.get().add(b * rows * plane),
                        plane,
                        init,
                        epilogue,
                    );
                }
            });
        scratch::give(apack);
        // SAFETY: the segments cover every value of every output plane (asserted above), so
        // all `len` values have been written.
        unsafe { out.set_len(len) };
        out
    }

    /// Forward: `x [B, Cin, H, W]`, `w [Cout, Cin, KH, KW]`, `bias [Cout]` → `[B, Cout, OH, OW]`.
    pub fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        self.forward_fused(x, w, bias, None)
    }

    /// [`Shifted::forward`] with a per-output-channel affine map (and optional ReLU) applied
    /// to each value as it is stored.
    pub fn forward_fused(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        if let Some(wg) = crate::winograd_for(&self.g, self.level) {
            return wg.forward_fused(x, w, bias, epilogue);
        }
        by_level!(self.level, L => self.forward_direct::<L>(x, w, bias, epilogue))
    }

    fn forward_direct<L: Kernels>(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        epilogue: Option<Epilogue<'_>>,
    ) -> Vec<f32> {
        let g = &self.g;
        let (xp, x_len, koff) = self.padded_source(x);
        let [oh, ow] = g.out_hw;
        let segs = self.segments(oh, ow, 0, L::N, true);
        let y = self.products::<L>(
            g.cout,
            oh * ow,
            w,
            &koff,
            xp.as_slice(),
            g.cin * x_len,
            &segs,
            bias,
            epilogue,
        );
        xp.release();
        y
    }

    /// Gradient with respect to the input.
    pub fn input_grad(&self, w: &[f32], dy: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let taps = self.offs.len();
        // a[c, o·T + t] = w[o, c, T−1−t]: the weights of the transposed, flipped convolution.
        let mut a = vec![0.0f32; g.cin * g.cout * taps];
        a.par_chunks_mut(g.cout * taps)
            .enumerate()
            .for_each(|(c, row)| {
                for (o, dst) in row.chunks_exact_mut(taps).enumerate() {
                    let src = &w[(o * g.cin + c) * taps..(o * g.cin + c + 1) * taps];
                    for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                        *d = *s;
                    }
                }
            });
        // A 3×3 "same" convolution's input gradient is the "same" convolution of `dy` with
        // those weights: Winograd where it applies.
        if crate::winograd_for(g, self.level).is_some() {
            let opts = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let [h, w_] = g.in_hw;
            let gt = ConvGeometry::new([g.batch, g.cout, h, w_], [g.cin, g.cout, 3, 3], &opts);
            if let Some(wg) = crate::winograd_for(&gt, self.level) {
                return wg.forward_fused(dy, &a, None, None);
            }
        }
        by_level!(self.level, L => self.input_grad_direct::<L>(&a, dy))
    }

    /// [`Shifted::input_grad`] as a direct product with the flipped weights `a [Cin, Cout·T]`.
    fn input_grad_direct<L: Kernels>(&self, a: &[f32], dy: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let (dyp, dy_len) = self.padded_output_grad(dy);
        let koff: Vec<usize> = (0..g.cout)
            .flat_map(|o| self.offs.iter().map(move |off| o * dy_len + off))
            .collect();
        let [h, w_] = g.in_hw;
        let segs = self.segments(h, w_, g.pad[0] * self.wp + g.pad[1], L::N, true);
        let dx = self.products::<L>(
            g.cin,
            h * w_,
            a,
            &koff,
            dyp.as_slice(),
            g.cout * dy_len,
            &segs,
            None,
            None,
        );
        dyp.release();
        dx
    }

    /// Gradient with respect to the weight (`[Cout, Cin, KH, KW]`): Winograd's where it applies
    /// and pays off ([`crate::winograd::Winograd::weight_grad_pays`]).
    pub fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        if let Some(wg) = crate::winograd_for(&self.g, self.level).filter(|w| w.weight_grad_pays())
        {
            return wg.weight_grad(x, dy);
        }
        by_level!(self.level, L => self.weight_grad_at::<L>(x, dy))
    }

    /// [`Shifted::weight_grad`] with `L`'s kernels: outer products when `Cout` is a multiple
    /// of the vector width, lane-wise dot products otherwise.
    fn weight_grad_at<L: Kernels>(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        if self.g.cout.is_multiple_of(L::N) {
            return self.weight_grad_outer::<L>(x, dy);
        }
        let g = &self.g;
        let (xp, x_len, koff) = self.padded_source(x);
        let k = koff.len();
        let [oh, ow] = g.out_hw;
        let plane = oh * ow;
        let segs = self.segments(oh, ow, 0, L::N, false);
        let max_read = koff.iter().max().copied().unwrap_or(0) + seg_end(&segs);
        assert!(xp.as_slice().len() >= (g.batch - 1) * g.cin * x_len + max_read);
        assert!(dy.len() >= g.batch * g.cout * plane);
        // Tasks: output-channel ranges of ≤ 64 × tap ranges, ≤ 4096 accumulators each.
        let mt = g.cout.min(64);
        let m_pad = mt.div_ceil(MR) * MR;
        let kb = L::KB;
        let (tasks, kt) = weight_tasks(g.cout, mt, k, (4096 / m_pad / kb).max(1) * kb, kb);
        let xs = xp.as_slice();
        // Each task reduces its own lane-wise accumulators (in parallel) to `m × (k1 − k0)`.
        let partial: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(m0, k0)| {
                let m = mt.min(g.cout - m0);
                let k1 = (k0 + kt).min(k);
                let pad = m.div_ceil(MR) * MR;
                let mut acc = vec![0.0f32; (k1 - k0) * pad * L::N];
                for b in 0..g.batch {
                    // SAFETY: the level is supported (`with_level`); segments have `L::N`
                    // lanes; the asserts above bound every read.
                    unsafe {
                        microkernels::shift_gemm_nt::<L>(
                            m,
                            dy.as_ptr().add((b * g.cout + m0) * plane),
                            plane,
                            xs.as_ptr().add(b * g.cin * x_len),
                            &koff[k0..k1],
                            &segs,
                            &mut acc,
                        );
                    }
                }
                let mut block = vec![0.0f32; m * (k1 - k0)];
                for (kk, lanes) in acc.chunks_exact(pad * L::N).enumerate() {
                    for (r, v) in lanes.chunks_exact(L::N).take(m).enumerate() {
                        block[r * (k1 - k0) + kk] = microkernels::reduce_lanes(v);
                    }
                }
                block
            })
            .collect();
        xp.release();
        let mut dw = vec![0.0f32; g.cout * k];
        for (&(m0, k0), block) in tasks.iter().zip(&partial) {
            let width = (k0 + kt).min(k) - k0;
            for (r, row) in block.chunks_exact(width).enumerate() {
                dw[(m0 + r) * k + k0..][..width].copy_from_slice(row);
            }
        }
        dw
    }
}

/// Weight-gradient sizes (values) from which [`Shifted::weight_grad_outer`] writes its result
/// in parallel.
const PARALLEL_TRANSPOSE: usize = 1 << 20;

/// Pixels per cache block of [`Shifted::weight_grad_outer`].
const OUTER_BLOCK: usize = 256;

/// Offset (in values) of the first 64-byte-aligned element of `v`.
fn aligned_start(v: &[f32]) -> usize {
    (v.as_ptr() as usize).wrapping_neg() % 64 / 4
}

/// `dy [B, C, P]` → channels-last `[B, P, C]` for `C` a multiple of `L::N`, in parallel (the
/// level must be supported).
fn channels_last<L: Kernels>(dy: &[f32], batch: usize, c: usize, plane: usize, out: &mut [f32]) {
    let n = L::N;
    assert!(c.is_multiple_of(n));
    const PIX: usize = 256;
    out[..batch * plane * c]
        .par_chunks_mut(PIX * c)
        .enumerate()
        .for_each(|(i, dst)| {
            let (b, p0) = ((i * PIX) / plane, (i * PIX) % plane);
            // Chunks never straddle images when `plane` is a multiple of PIX; otherwise split.
            let mut done = 0;
            while done < dst.len() / c {
                let (b, p) = (b + (p0 + done) / plane, (p0 + done) % plane);
                let len = (plane - p).min(dst.len() / c - done);
                let src = &dy[b * c * plane..(b + 1) * c * plane];
                let out = &mut dst[done * c..(done + len) * c];
                let full = len / n * n;
                for m in (0..c).step_by(n) {
                    for q in (0..full).step_by(n) {
                        // SAFETY: the level is supported (caller); the `n × n` source block
                        // (rows m.., columns p + q..) and destination block are in bounds.
                        unsafe {
                            microkernels::transpose::<L>(
                                src.as_ptr().add(m * plane + p + q),
                                plane,
                                out.as_mut_ptr().add(q * c + m),
                                c,
                            );
                        }
                    }
                    for q in full..len {
                        for r in 0..n {
                            out[q * c + m + r] = src[(m + r) * plane + p + q];
                        }
                    }
                }
                done += len;
            }
        });
}

impl Shifted {
    /// [`Shifted::weight_grad`] for `Cout` a multiple of `L::N`: outer products of the source
    /// (broadcast) with the channels-last output gradient (vectors over output channels), each
    /// register tile accumulating a whole pixel block. Tasks own disjoint (output-channel range,
    /// tap range) blocks and sum the batch in order, so results do not depend on scheduling.
    fn weight_grad_outer<L: Kernels>(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let (cout, batch) = (g.cout, g.batch);
        let (xp, x_len, koff) = self.padded_source(x);
        let k = koff.len();
        let [oh, ow] = g.out_hw;
        let plane = oh * ow;
        assert!(dy.len() >= batch * cout * plane);
        let runs: Vec<Run> = if self.direct() {
            (0..plane)
                .step_by(OUTER_BLOCK)
                .map(|p| Run {
                    src: p,
                    dst: p,
                    len: OUTER_BLOCK.min(plane - p),
                })
                .collect()
        } else {
            (0..oh)
                .map(|r| Run {
                    src: r * self.wp,
                    dst: r * ow,
                    len: ow,
                })
                .collect()
        };
        let max_read = koff.iter().max().copied().unwrap_or(0)
            + runs.iter().map(|r| r.src + r.len).max().unwrap_or(0);
        let xs = xp.as_slice();
        assert!(xs.len() >= (batch - 1) * g.cin * x_len + max_read);
        // Blocks of whole runs, about OUTER_BLOCK pixels each.
        let mut blocks: Vec<&[Run]> = Vec::new();
        let mut first = 0;
        let mut pixels = 0;
        for (i, r) in runs.iter().enumerate() {
            if pixels > 0 && pixels + r.len > OUTER_BLOCK {
                blocks.push(&runs[first..i]);
                (first, pixels) = (i, 0);
            }
            pixels += r.len;
        }
        blocks.push(&runs[first..]);
        let mut dyt_buf = scratch::take(batch * plane * cout + 16);
        let start = aligned_start(&dyt_buf);
        channels_last::<L>(dy, batch, cout, plane, &mut dyt_buf[start..]);
        let dyt = &dyt_buf[start..];
        // Vectors of output channels per tile: as many as divide `Cout` while the tile keeps
        // at least 6 source rows (4 zmm, 2 ymm).
        let mv = [4, 2, 1]
            .into_iter()
            .find(|&mv| cout.is_multiple_of(L::N * mv) && microkernels::outer_rows::<L>(mv) >= 6)
            .unwrap_or(1);
        let mt = L::N * mv;
        let kt = microkernels::outer_rows::<L>(mv);
        // Accumulators of one task stay within 32 KiB.
        let (tasks, kr) = weight_tasks(cout, mt, k, (8192 / mt / kt).max(1) * kt, kt);
        let partial: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(m0, k0)| {
                let k1 = (k0 + kr).min(k);
                let mut acc = vec![0.0f32; (k1 - k0) * mt];
                for b in 0..batch {
                    for blk in &blocks {
                        // SAFETY: the level is supported (`with_level`); source reads stay below `max_read`
                        // in image `b` and gradient reads inside image `b`'s `plane × cout`
                        // values (asserted above); `acc` holds `(k1 − k0)` rows of `mt`.
                        unsafe {
                            microkernels::outer_gemm::<L>(
                                mv,
                                xs.as_ptr().add(b * g.cin * x_len),
                                &koff[k0..k1],
                                blk,
                                dyt.as_ptr().add(b * plane * cout + m0),
                                cout,
                                &mut acc,
                                mt,
                            );
                        }
                    }
                }
                acc
            })
            .collect();
        xp.release();
        scratch::give(dyt_buf);
        let mut dw = vec![0.0f32; cout * k];
        if cout * k < PARALLEL_TRANSPOSE {
            for (&(m0, k0), acc) in tasks.iter().zip(&partial) {
                for (kk, row) in acc.chunks_exact(mt).enumerate() {
                    for (r, v) in row.iter().enumerate() {
                        dw[(m0 + r) * k + k0 + kk] = *v;
                    }
                }
            }
            return dw;
        }
        // A large gradient: groups of `mt` rows in parallel, each row written contiguously
        // from the (L1-resident) accumulator block. The serial scatter with stride k above
        // took 13% of a denoiser step at Medfusion's widths.
        dw.par_chunks_mut(mt * k)
            .enumerate()
            .for_each(|(group, rows)| {
                let m0 = group * mt;
                for (&(tm0, k0), acc) in tasks.iter().zip(&partial) {
                    if tm0 != m0 {
                        continue;
                    }
                    let width = acc.len() / mt;
                    for (r, row) in rows.chunks_exact_mut(k).enumerate() {
                        for (kk, d) in row[k0..k0 + width].iter_mut().enumerate() {
                            *d = acc[kk * mt + r];
                        }
                    }
                }
            });
        dw
    }
}

/// A padded buffer from the [`scratch`] pool, or the unpadded input itself.
enum Buffer<'a> {
    Borrowed(&'a [f32]),
    Scratch(Vec<f32>),
}

impl Buffer<'_> {
    fn as_slice(&self) -> &[f32] {
        match self {
            Buffer::Borrowed(s) => s,
            Buffer::Scratch(v) => v,
        }
    }

    /// Returns a scratch buffer to the pool.
    fn release(self) {
        if let Buffer::Scratch(v) = self {
            scratch::give(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense;
    use crate::test_data::data;
    use burn::tensor::ops::ConvOptions;

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() / scale < 1e-5, "{what}[{i}]: {x} vs {y}");
        }
    }

    /// The SIMD levels this CPU runs (not the scalar one, which has no shifted kernels).
    fn levels() -> Vec<Level> {
        let l: Vec<Level> = Level::all_supported()
            .into_iter()
            .filter(|l| *l != Level::Scalar)
            .collect();
        assert!(Shifted::with_level(&tiny(), Level::Scalar).is_none());
        l
    }

    fn tiny() -> ConvGeometry {
        ConvGeometry::new(
            [1, 1, 4, 4],
            [1, 1, 3, 3],
            &ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        )
    }

    /// Same results as the im2col kernels for same, dilated, cropping and pointwise shapes, at
    /// every SIMD level.
    #[test]
    fn matches_im2col_kernels() {
        for level in levels() {
            matches_im2col_kernels_at(level);
        }
    }

    fn matches_im2col_kernels_at(level: Level) {
        let cases = [
            // (x dims, w dims, padding (begin, end) per axis, dilation)
            ([2, 3, 9, 7], [5, 3, 3, 3], [(1, 1), (1, 1)], 1),
            ([1, 4, 8, 8], [4, 4, 3, 3], [(2, 2), (2, 2)], 2),
            ([3, 6, 5, 4], [3, 6, 1, 1], [(0, 0), (0, 0)], 1),
            ([2, 2, 6, 9], [3, 2, 3, 2], [(0, 2), (1, 0)], 1),
            ([1, 5, 16, 16], [9, 5, 3, 3], [(1, 1), (1, 1)], 1),
            ([2, 70, 6, 20], [67, 70, 3, 3], [(1, 1), (1, 1)], 1),
            // Output channels a multiple of 16 (8): the channels-last weight gradient, with 1, 2
            // and 4 vectors of output channels, planes not a multiple of 16 and blocks of
            // several rows, more source rows than one tile, pointwise and dilated.
            ([3, 3, 17, 23], [16, 3, 3, 3], [(1, 1), (1, 1)], 1),
            ([2, 5, 9, 40], [32, 5, 3, 3], [(2, 2), (2, 2)], 2),
            ([2, 7, 11, 5], [64, 7, 3, 3], [(1, 1), (1, 1)], 1),
            ([1, 9, 30, 31], [48, 9, 1, 1], [(0, 0), (0, 0)], 1),
            ([2, 12, 4, 4], [128, 12, 3, 3], [(1, 1), (1, 1)], 1),
            // A multiple of 8 but not of 16: outer products on AVX2, lane sums on AVX-512.
            ([2, 6, 9, 13], [24, 6, 3, 3], [(1, 1), (1, 1)], 1),
            // A weight gradient of at least PARALLEL_TRANSPOSE values (written in parallel).
            ([1, 1024, 4, 4], [128, 1024, 3, 3], [(1, 1), (1, 1)], 1),
            // Winograd forward and input gradient (≥ 32 channels, ≥ 32 wide, ≥ 1024 pixels).
            ([2, 40, 17, 33], [32, 40, 3, 3], [(1, 1), (1, 1)], 1),
        ];
        for (i, (xd, wd, padding, d)) in cases.into_iter().enumerate() {
            let opts = ConvOptions::new_with_padding([1, 1], padding, [d, d], 1);
            let g = ConvGeometry::new(xd, wd, &opts);
            let s = Shifted::with_level(&g, level).expect("applies");
            assert_eq!(s.level(), level);
            let x = data(xd.iter().product(), 1);
            let w = data(wd.iter().product(), 2);
            let bias = data(wd[0], 3);
            let dy = data(g.batch * g.cout * g.out_plane(), 4);
            let what = format!("{level} case {i}");
            close(
                &s.forward(&x, &w, Some(&bias)),
                &dense::forward(&g, &x, &w, Some(&bias)),
                &format!("{what} forward"),
            );
            close(
                &s.input_grad(&w, &dy),
                &dense::input_grad(&g, &w, &dy),
                &format!("{what} dx"),
            );
            close(
                &s.weight_grad(&x, &dy),
                &dense::weight_grad(&g, &x, &dy),
                &format!("{what} dw"),
            );
        }
    }

    /// The width-2 MGCC decoder's shapes (batch 2, planes 2×2 … 32×32), each computed after
    /// the scratch pool has been filled with garbage: results must not depend on what earlier
    /// convolutions left in reused buffers.
    #[test]
    fn small_planes_and_a_dirty_scratch_pool() {
        for level in levels() {
            small_planes_at(level);
        }
    }

    fn small_planes_at(level: Level) {
        let mut cases = Vec::new();
        for (c, hw) in [(2usize, 32usize), (4, 16), (8, 8), (16, 4), (32, 2)] {
            for (cin, cout, k, d) in [
                (c, c, 3, 1),
                (c, c, 3, 2),
                (c, c, 1, 1),
                (3 * c, c, 1, 1),
                (2 * c, c, 3, 1),
                (2 * c.min(16), c.min(16), 3, 1),
            ] {
                cases.push(([2, cin, hw, hw], [cout, cin, k, k], d));
            }
        }
        for (i, (xd, wd, d)) in cases.into_iter().enumerate() {
            let pad = d * (wd[2] - 1) / 2;
            let opts = ConvOptions::new_with_padding([1, 1], [(pad, pad), (pad, pad)], [d, d], 1);
            let g = ConvGeometry::new(xd, wd, &opts);
            let Some(s) = Shifted::with_level(&g, level) else {
                continue;
            };
            let x = data(xd.iter().product(), 1);
            let w = data(wd.iter().product(), 2);
            let dy = data(g.batch * g.cout * g.out_plane(), 4);
            let reference = (
                dense::forward(&g, &x, &w, None),
                dense::input_grad(&g, &w, &dy),
                dense::weight_grad(&g, &x, &dy),
            );
            for round in 0..3 {
                // Dirty buffers of many sizes back into the pool.
                let dirty: Vec<Vec<f32>> = (0..40)
                    .map(|j| {
                        let mut v = scratch::take(16 << (j % 12));
                        v.fill(1e6 + j as f32);
                        v
                    })
                    .collect();
                dirty.into_iter().for_each(scratch::give);
                let what = format!("{level} case {i} {xd:?} {wd:?} d{d} round {round}");
                close(
                    &s.forward(&x, &w, None),
                    &reference.0,
                    &format!("{what} forward"),
                );
                close(&s.input_grad(&w, &dy), &reference.1, &format!("{what} dx"));
                close(&s.weight_grad(&x, &dy), &reference.2, &format!("{what} dw"));
            }
        }
    }
}
