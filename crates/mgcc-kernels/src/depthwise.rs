//! Backward pass of a depthwise convolution (`groups = Cin = Cout`, weight `[C, 1, KH, KW]`).
//!
//! With `i = o·s + k·d − p` per axis:
//!
//! * input grad   `dx[b, c, i] += Σ_k w[c, k] · dy[b, c, o]`
//! * weight grad  `dw[c, k] = Σ_{b, o} x[b, c, i] · dy[b, c, o]`
//!
//! Both are direct loops, parallel over planes (input grad) or channels (weight grad).

use rayon::prelude::*;

use crate::geometry::ConvGeometry;

/// Calls `f(ih, iw range start, oh, ow range)` for every kernel tap's valid output rows.
fn for_each_tap(
    g: &ConvGeometry,
    mut f: impl FnMut(usize, usize, usize, usize, std::ops::Range<usize>),
) {
    let [kh_n, kw_n] = g.kernel;
    for kh in 0..kh_n {
        for kw in 0..kw_n {
            let cols = g.valid_outputs(1, kw);
            if cols.is_empty() {
                continue;
            }
            for oh in g.valid_outputs(0, kh) {
                let ih = oh * g.stride[0] + kh * g.dilation[0] - g.pad[0];
                f(
                    kh * kw_n + kw,
                    ih,
                    oh,
                    cols.start * g.stride[1] + kw * g.dilation[1] - g.pad[1],
                    cols.clone(),
                );
            }
        }
    }
}

/// Gradient with respect to the input (`[B, C, H, W]`).
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let taps = g.kernel[0] * g.kernel[1];
    let [_, iw_n] = g.in_hw;
    let [_, ow_n] = g.out_hw;
    let s = g.stride[1];
    let mut dx = vec![0.0f32; g.batch * g.cin * ip];
    dx.par_chunks_mut(ip).enumerate().for_each(|(bc, dxp)| {
        let c = bc % g.cin;
        let dyp = &dy[bc * op..(bc + 1) * op];
        let wc = &w[c * taps..(c + 1) * taps];
        for_each_tap(g, |tap, ih, oh, iw0, cols| {
            let wv = wc[tap];
            let src = &dyp[oh * ow_n + cols.start..oh * ow_n + cols.end];
            let row = &mut dxp[ih * iw_n..(ih + 1) * iw_n];
            for (j, v) in src.iter().enumerate() {
                row[iw0 + j * s] += wv * v;
            }
        });
    });
    dx
}

/// Gradient with respect to the weight (`[C, 1, KH, KW]`).
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (ip, op) = (g.in_plane(), g.out_plane());
    let taps = g.kernel[0] * g.kernel[1];
    let [_, iw_n] = g.in_hw;
    let [_, ow_n] = g.out_hw;
    let s = g.stride[1];
    let mut dw = vec![0.0f32; g.cin * taps];
    dw.par_chunks_mut(taps).enumerate().for_each(|(c, dwc)| {
        for b in 0..g.batch {
            let bc = b * g.cin + c;
            let xp = &x[bc * ip..(bc + 1) * ip];
            let dyp = &dy[bc * op..(bc + 1) * op];
            for_each_tap(g, |tap, ih, oh, iw0, cols| {
                let src = &dyp[oh * ow_n + cols.start..oh * ow_n + cols.end];
                let row = &xp[ih * iw_n..(ih + 1) * iw_n];
                let dot: f32 = src
                    .iter()
                    .enumerate()
                    .map(|(j, v)| row[iw0 + j * s] * v)
                    .sum();
                dwc[tap] += dot;
            });
        }
    });
    dw
}
