//! Elementwise math written as plain branch-free arithmetic, so the compiler vectorises the
//! loops that use it, and [`per_level!`] to compile such a loop once per SIMD level.
//!
//! libm's `expf` is a call per value: burn's SiLU and sigmoid spend most of their time there.
//! [`exp`] inlines into the loop instead and becomes 8 or 16 lanes of multiply-adds.

/// `eˣ` within about 2 ulp for `x ∈ [−87.33, 88.37]` (the normal f32 range), `x` clamped to it,
/// in plain arithmetic the compiler vectorises (Cody–Waite reduction by `ln 2`, degree-6
/// polynomial as Cephes' `expf`, the power of two built in the exponent bits).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.33, 88.37);
    let m = x * LOG2E + ROUND;
    let n = m - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // m's bits are ROUND's plus n; (n + 127) << 23 is 2ⁿ.
    let two_n = f32::from_bits(m.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    e * two_n
}

/// `σ(a) = 1/(1 + e^{−a})`.
#[inline(always)]
pub fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp(-a))
}

/// Generates `fn $name(level, args)`, which runs an `#[inline(always)]` body compiled with the
/// features of `level` (the portable build for [`Level::Scalar`](crate::simd::Level::Scalar) and off x86-64).
macro_rules! per_level {
    ($(#[$doc:meta])* fn $name:ident($($a:ident: $t:ty),*) = $body:ident;) => {
        $(#[$doc])*
        fn $name(level: $crate::simd::Level, $($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn on512($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn on256($($a: $t),*) {
                    $body($($a),*)
                }
                match level {
                    // SAFETY: callers pass only levels the CPU supports (`Level::supported`).
                    $crate::simd::Level::Avx512 => return unsafe { on512($($a),*) },
                    // SAFETY: as above.
                    $crate::simd::Level::Avx2 => return unsafe { on256($($a),*) },
                    $crate::simd::Level::Scalar => {}
                }
            }
            let _ = level;
            $body($($a),*)
        }
    };
}

pub(crate) use per_level;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Level;

    #[test]
    fn exp_matches_std_across_its_range() {
        let mut worst = 0.0f64;
        for i in -87_000..88_000 {
            let x = i as f32 / 1000.0 + 0.000_37;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        // Clamped: the smallest normal and a finite maximum.
        assert!(exp(-200.0) > 0.0 && exp(-200.0) < 1.2e-38);
        assert!(exp(200.0).is_finite() && exp(200.0) > 2e38);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[inline(always)]
    fn sigmoids_body(xs: &[f32], ys: &mut [f32]) {
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = sigmoid(x);
        }
    }

    per_level! {
        /// [`sigmoid`] over a slice.
        fn sigmoids(xs: &[f32], ys: &mut [f32]) = sigmoids_body;
    }

    #[test]
    fn every_level_computes_the_same_sigmoid() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.037).collect();
        let mut want = vec![0.0f32; xs.len()];
        sigmoids(Level::Scalar, &xs, &mut want);
        for (x, w) in xs.iter().zip(&want) {
            let exact = 1.0 / (1.0 + (-*x as f64).exp());
            assert!(
                (*w as f64 - exact).abs() < 1e-6,
                "σ({x}) = {w}, not {exact}"
            );
        }
        for level in Level::all_supported() {
            let mut got = vec![0.0f32; xs.len()];
            sigmoids(level, &xs, &mut got);
            assert_eq!(got, want, "{level}");
        }
    }
}
