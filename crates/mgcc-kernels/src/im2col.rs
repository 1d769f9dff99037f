//! im2col / col2im for one image of a groups = 1 convolution.
//!
//! `cols[(c·KH + kh)·KW + kw, oh·OW + ow] = x[c, oh·s + kh·d − p, ow·s + kw·d − p]` (0 in the
//! padding), so that the convolution is the matrix product `W[Cout, Cin·KH·KW] · cols`.
//! [`col2im`] is its adjoint: it scatters-adds columns back onto the image.

use crate::geometry::ConvGeometry;

/// Fills `cols` (`col_rows × OH·OW`) from one image `x` (`Cin × H × W`).
pub fn im2col(g: &ConvGeometry, x: &[f32], cols: &mut [f32]) {
    let [kh_n, kw_n] = g.kernel;
    let [oh_n, ow_n] = g.out_hw;
    let [h, w] = g.in_hw;
    for (row, out) in cols.chunks_exact_mut(oh_n * ow_n).enumerate() {
        let c = row / (kh_n * kw_n);
        let kh = (row / kw_n) % kh_n;
        let kw = row % kw_n;
        let plane = &x[c * h * w..(c + 1) * h * w];
        let rows = g.valid_outputs(0, kh);
        let cols_ok = g.valid_outputs(1, kw);
        for (oh, line) in out.chunks_exact_mut(ow_n).enumerate() {
            if !rows.contains(&oh) || cols_ok.is_empty() {
                line.fill(0.0);
                continue;
            }
            let ih = oh * g.stride[0] + kh * g.dilation[0] - g.pad[0];
            let src = &plane[ih * w..(ih + 1) * w];
            line[..cols_ok.start].fill(0.0);
            line[cols_ok.end..].fill(0.0);
            let iw0 = cols_ok.start * g.stride[1] + kw * g.dilation[1] - g.pad[1];
            let dst = &mut line[cols_ok.clone()];
            if g.stride[1] == 1 {
                dst.copy_from_slice(&src[iw0..iw0 + dst.len()]);
            } else {
                for (j, v) in dst.iter_mut().enumerate() {
                    *v = src[iw0 + j * g.stride[1]];
                }
            }
        }
    }
}

/// Adds the columns `cols` (`col_rows × OH·OW`) back onto one image `x` (`Cin × H × W`).
pub fn col2im(g: &ConvGeometry, cols: &[f32], x: &mut [f32]) {
    let [kh_n, kw_n] = g.kernel;
    let [_, ow_n] = g.out_hw;
    let [h, w] = g.in_hw;
    for (row, col) in cols.chunks_exact(g.out_plane()).enumerate() {
        let c = row / (kh_n * kw_n);
        let kh = (row / kw_n) % kh_n;
        let kw = row % kw_n;
        let plane = &mut x[c * h * w..(c + 1) * h * w];
        let cols_ok = g.valid_outputs(1, kw);
        if cols_ok.is_empty() {
            continue;
        }
        let iw0 = cols_ok.start * g.stride[1] + kw * g.dilation[1] - g.pad[1];
        for oh in g.valid_outputs(0, kh) {
            let ih = oh * g.stride[0] + kh * g.dilation[0] - g.pad[0];
            let dst = &mut plane[ih * w..(ih + 1) * w];
            let src = &col[oh * ow_n + cols_ok.start..oh * ow_n + cols_ok.end];
            if g.stride[1] == 1 {
                for (d, s) in dst[iw0..iw0 + src.len()].iter_mut().zip(src) {
                    *d += *s;
                }
            } else {
                for (j, s) in src.iter().enumerate() {
                    dst[iw0 + j * g.stride[1]] += *s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::ConvOptions;

    fn geometry(stride: usize, pad: usize, dilation: usize) -> ConvGeometry {
        let opts = ConvOptions::new([stride, stride], [pad, pad], [dilation, dilation], 1);
        ConvGeometry::new([1, 2, 5, 4], [1, 2, 3, 3], &opts)
    }

    #[test]
    fn im2col_matches_definition() {
        for (s, p, d) in [(1, 1, 1), (1, 2, 2), (2, 1, 1), (1, 0, 1)] {
            let g = geometry(s, p, d);
            let x: Vec<f32> = (0..40).map(|v| v as f32 + 1.0).collect();
            let mut cols = vec![f32::NAN; g.col_rows() * g.out_plane()];
            im2col(&g, &x, &mut cols);
            for c in 0..2 {
                for kh in 0..3 {
                    for kw in 0..3 {
                        for oh in 0..g.out_hw[0] {
                            for ow in 0..g.out_hw[1] {
                                let ih = (oh * s + kh * d) as isize - p as isize;
                                let iw = (ow * s + kw * d) as isize - p as isize;
                                let want = if ih < 0 || iw < 0 || ih >= 5 || iw >= 4 {
                                    0.0
                                } else {
                                    x[c * 20 + ih as usize * 4 + iw as usize]
                                };
                                let row = (c * 3 + kh) * 3 + kw;
                                let got = cols[row * g.out_plane() + oh * g.out_hw[1] + ow];
                                assert_eq!(got, want, "s{s} p{p} d{d}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for arbitrary x and c.
        for (s, p, d) in [(1, 1, 1), (1, 2, 2), (2, 1, 1)] {
            let g = geometry(s, p, d);
            let x: Vec<f32> = (0..40).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
            let n = g.col_rows() * g.out_plane();
            let c: Vec<f32> = (0..n).map(|v| ((v * 5) % 13) as f32 - 6.0).collect();
            let mut cols = vec![0.0; n];
            im2col(&g, &x, &mut cols);
            let mut back = vec![0.0; 40];
            col2im(&g, &c, &mut back);
            let lhs: f32 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs);
        }
    }
}
