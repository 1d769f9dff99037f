//! Shapes of a 2-D convolution in NCHW layout.
//!
//! Output size per spatial axis: `o = (i + p_begin + p_end − d·(k − 1) − 1) / s + 1`.

use burn::tensor::ops::ConvOptions;

/// Everything the kernels need to know about one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    pub in_hw: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding at the beginning of each spatial axis (the end padding only shapes the output).
    pub pad: [usize; 2],
    pub out_hw: [usize; 2],
}

impl ConvGeometry {
    /// Geometry of `x: [B, Cin, H, W]` convolved with `w: [Cout, Cin/groups, KH, KW]`.
    pub fn new(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> Self {
        let [batch, cin, h, wd] = x;
        let [cout, _, kh, kw] = w;
        let out = |axis: usize, i: usize, k: usize| {
            let (pb, pe) = options.padding[axis];
            let span = options.dilation[axis] * (k - 1) + 1;
            (i + pb + pe).saturating_sub(span) / options.stride[axis] + 1
        };
        Self {
            batch,
            cin,
            cout,
            groups: options.groups,
            in_hw: [h, wd],
            kernel: [kh, kw],
            stride: options.stride,
            dilation: options.dilation,
            pad: options.padding_begin(),
            out_hw: [out(0, h, kh), out(1, wd, kw)],
        }
    }

    /// Rows of the im2col matrix: `Cin·KH·KW` (groups = 1).
    pub fn col_rows(&self) -> usize {
        self.cin * self.kernel[0] * self.kernel[1]
    }

    pub fn in_plane(&self) -> usize {
        self.in_hw[0] * self.in_hw[1]
    }

    pub fn out_plane(&self) -> usize {
        self.out_hw[0] * self.out_hw[1]
    }

    /// A 1×1 convolution with unit stride and no padding: im2col is the identity.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.in_hw == self.out_hw
    }

    /// One filter per channel (`groups = Cin = Cout`).
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.cin && self.groups == self.cout
    }

    /// Input index `o·s + k·d − p` along `axis`, or `None` when it falls into the padding.
    #[inline]
    pub fn input_index(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        let i = (o * self.stride[axis] + k * self.dilation[axis]).checked_sub(self.pad[axis])?;
        (i < self.in_hw[axis]).then_some(i)
    }

    /// The range of outputs `o` whose input index for tap `k` lies inside the image.
    pub fn valid_outputs(&self, axis: usize, k: usize) -> std::ops::Range<usize> {
        let n = self.out_hw[axis];
        let start = (0..n).find(|&o| self.input_index(axis, o, k).is_some());
        match start {
            None => 0..0,
            Some(s) => {
                let end = (s..n)
                    .take_while(|&o| self.input_index(axis, o, k).is_some())
                    .last()
                    .map_or(s, |e| e + 1);
                s..end
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_keeps_size_and_valid_range_excludes_padding() {
        let opts = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);
        let g = ConvGeometry::new([2, 3, 8, 6], [4, 3, 3, 3], &opts);
        assert_eq!(g.out_hw, [8, 6]);
        // Tap 0 reads input o·1 + 0 − 2: valid for o ≥ 2.
        assert_eq!(g.valid_outputs(0, 0), 2..8);
        assert_eq!(g.valid_outputs(0, 2), 0..6);
        assert_eq!(g.input_index(1, 0, 1), Some(0));
        assert!(!g.is_pointwise());
    }

    #[test]
    fn strided_output_size() {
        let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let g = ConvGeometry::new([1, 1, 7, 8], [1, 1, 3, 3], &opts);
        assert_eq!(g.out_hw, [4, 4]);
    }
}
