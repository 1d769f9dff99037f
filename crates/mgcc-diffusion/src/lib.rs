//! mgcc-diffusion
