//! Runs burn ops one at a time on `Device::vulkan(DeviceKind::Cpu)` (cubecl's SPIR-V compiler),
//! printing each step before it runs, to find the first kernel lavapipe crashes on.
//! `cargo run -- read` stops after the first read-back (enough to see the adapter and layers load).
use burn::tensor::{Device, DeviceKind, Distribution, Tensor};
use std::io::Write;

fn step(name: &str) {
    println!("step: {name}");
    std::io::stdout().flush().unwrap();
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let device = Device::vulkan(DeviceKind::Cpu);
    step("from_data");
    let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
    step("read back");
    println!("  {:?}", a.to_data());
    if which == "read" {
        return;
    }
    step("add");
    let b = a.clone() + a.clone();
    println!("  {:?}", b.to_data());
    step("exp");
    println!("  {:?}", a.clone().exp().to_data());
    step("sum");
    println!("  {:?}", a.clone().sum().to_data());
    step("random");
    let x = Tensor::<4>::random([1, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    println!("  {:?}", x.clone().sum().to_data());
    step("matmul");
    println!("  {:?}", a.clone().matmul(a.clone()).to_data());
    step("conv2d");
    let w = Tensor::<4>::random([3, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let y = burn::tensor::module::conv2d(
        x,
        w,
        None,
        burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
    println!("  {:?}", y.sum().to_data());
    step("done");
}
