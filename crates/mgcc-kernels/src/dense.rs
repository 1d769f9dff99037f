//! Dense (groups = 1) convolution through im2col and the `gemm` crate, one image at a time.
//!
//! With `cols_b = im2col(x_b)` (`R × P`, `R = Cin·KH·KW`, `P = OH·OW`) and `W` as `Cout × R`:
//!
//! * forward      `y_b = W · cols_b + bias`
//! * input grad   `dx_b = col2im(Wᵀ · dy_b)`
//! * weight grad  `dW = Σ_b dy_b · cols_bᵀ`
//!
//! Images are spread over the rayon pool when the batch is at least as large as the pool
//! (each image's gemm then runs single-threaded); smaller batches run image by image with a
//! multi-threaded gemm.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::geometry::ConvGeometry;
use crate::im2col::{col2im, im2col};

/// Row-major matrix view: pointer, row count, column count, and whether it is read transposed.
struct Mat {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Mat {
    fn new(data: &[f32], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        Self {
            ptr: data.as_ptr(),
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose of this matrix (no copy).
    fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// (column stride, row stride) of the logical matrix.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.rows as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `dst (m × n, row-major) = [dst +] a · b`.
fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, par: Parallelism) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(dst.len() >= m * n, "destination too small");
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // SAFETY: the asserts above and `Mat::new` bound every index the strides reach.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.ptr,
            a_cs,
            a_rs,
            b.ptr,
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn pool_threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Whether to split the batch over the pool (true) or parallelise inside each gemm.
fn split_batch(g: &ConvGeometry) -> bool {
    g.batch >= pool_threads()
}

fn inner_par(g: &ConvGeometry) -> Parallelism {
    if split_batch(g) || pool_threads() == 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

/// Runs `f(b, out_b, scratch)` for every image, in parallel when the batch allows.
fn per_image(
    g: &ConvGeometry,
    out: &mut [f32],
    chunk: usize,
    f: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
) {
    if split_batch(g) {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (b, o)| f(b, o, scratch));
    } else {
        let mut scratch = Vec::new();
        for (b, o) in out.chunks_mut(chunk).enumerate() {
            f(b, o, &mut scratch);
        }
    }
}

/// The im2col matrix of image `b`: the image itself for pointwise convolutions.
fn columns<'a>(g: &ConvGeometry, x: &'a [f32], b: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
    let image = &x[b * g.cin * g.in_plane()..(b + 1) * g.cin * g.in_plane()];
    if g.is_pointwise() {
        return image;
    }
    scratch.resize(g.col_rows() * g.out_plane(), 0.0);
    im2col(g, image, scratch);
    scratch
}

/// Forward pass: `x [B, Cin, H, W]`, `w [Cout, Cin, KH, KW]`, `bias [Cout]` → `[B, Cout, OH, OW]`.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p, r) = (g.out_plane(), g.col_rows());
    let mut y = vec![0.0f32; g.batch * g.cout * p];
    let par = inner_par(g);
    per_image(g, &mut y, g.cout * p, |b, yb, scratch| {
        if let Some(bias) = bias {
            for (plane, &v) in yb.chunks_exact_mut(p).zip(bias) {
                plane.fill(v);
            }
        }
        let cols = columns(g, x, b, scratch);
        matmul(
            yb,
            Mat::new(w, g.cout, r),
            Mat::new(cols, r, p),
            bias.is_some(),
            par,
        );
    });
    y
}

/// Gradient with respect to the input.
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, r) = (g.out_plane(), g.col_rows());
    let image = g.cin * g.in_plane();
    let mut dx = vec![0.0f32; g.batch * image];
    let par = inner_par(g);
    per_image(g, &mut dx, image, |b, dxb, scratch| {
        let dyb = &dy[b * g.cout * p..(b + 1) * g.cout * p];
        let wt = Mat::new(w, g.cout, r).t();
        if g.is_pointwise() {
            matmul(dxb, wt, Mat::new(dyb, g.cout, p), false, par);
        } else {
            scratch.resize(r * p, 0.0);
            matmul(scratch, wt, Mat::new(dyb, g.cout, p), false, par);
            col2im(g, scratch, dxb);
        }
    });
    dx
}

/// Gradient with respect to the weight (`[Cout, Cin, KH, KW]`).
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, r) = (g.out_plane(), g.col_rows());
    let one = |b: usize, dw: &mut Vec<f32>, scratch: &mut Vec<f32>, par: Parallelism| {
        let dyb = &dy[b * g.cout * p..(b + 1) * g.cout * p];
        let cols = columns(g, x, b, scratch);
        matmul(
            dw,
            Mat::new(dyb, g.cout, p),
            Mat::new(cols, r, p).t(),
            true,
            par,
        );
    };
    if split_batch(g) {
        // One partial sum per fixed range of images, added in order: a `fold`/`reduce` over
        // the batch would group the images as work stealing happened to split them, so the
        // rounding (and a training run) would change from run to run.
        let per = g.batch.div_ceil(pool_threads().min(g.batch));
        let partials: Vec<Vec<f32>> = (0..g.batch)
            .step_by(per)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|b0| {
                let (mut dw, mut scratch) = (vec![0.0f32; g.cout * r], Vec::new());
                for b in b0..(b0 + per).min(g.batch) {
                    one(b, &mut dw, &mut scratch, Parallelism::None);
                }
                dw
            })
            .collect();
        let mut parts = partials.into_iter();
        let mut dw = parts.next().expect("at least one image");
        for p in parts {
            dw.iter_mut().zip(&p).for_each(|(a, b)| *a += *b);
        }
        dw
    } else {
        let mut dw = vec![0.0f32; g.cout * r];
        let mut scratch = Vec::new();
        for b in 0..g.batch {
            one(b, &mut dw, &mut scratch, inner_par(g));
        }
        dw
    }
}

/// Gradient with respect to the bias: `db[o] = Σ_{b, p} dy[b, o, p]` (16-lane partial sums per
/// plane, planes combined in f64, in a fixed order).
pub fn bias_grad(batch: usize, cout: usize, plane: usize, dy: &[f32]) -> Vec<f32> {
    (0..cout)
        .into_par_iter()
        .map(|o| {
            (0..batch)
                .map(|b| {
                    let s = (b * cout + o) * plane;
                    crate::norm::lane_sum(&dy[s..s + plane], |v| v)
                })
                .sum::<f64>() as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::data;
    use burn::tensor::ops::ConvOptions;

    /// The batch-split weight gradient is the same, bit for bit, on every call at a fixed thread
    /// count, whichever worker starts it and however the pool steals (a stride-2 layer of the
    /// autoencoder; a `fold` over the images made training runs differ).
    #[test]
    fn batch_split_weight_grad_does_not_depend_on_scheduling() {
        let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let g = ConvGeometry::new([64, 8, 12, 12], [8, 8, 3, 3], &opts);
        let x = data(64 * 8 * 12 * 12, 1);
        let dy = data(64 * 8 * g.out_plane(), 2);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .expect("a thread pool");
        assert!(pool.install(|| split_batch(&g)));
        let first = pool.install(|| weight_grad(&g, &x, &dy));
        for i in 0..100 {
            // Alternately from outside the pool and from one of its workers.
            let again = if i % 2 == 0 {
                pool.install(|| weight_grad(&g, &x, &dy))
            } else {
                pool.install(|| rayon::scope(|_| weight_grad(&g, &x, &dy)))
            };
            assert!(
                first
                    .iter()
                    .zip(&again)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "call {i} differs"
            );
        }
    }
}
