//! Subcommands of the `mgcc` binary, one file each.

pub mod bench;
pub mod bench_loader;
pub mod check;
pub mod demo;
pub mod device;
pub mod evaluate;
pub mod experiment;
pub mod import_busi;
pub mod interop;
pub mod ldm;
pub mod ldm_bench;
pub mod phantom;
pub mod pipeline;
pub mod predict;
pub mod run_args;
pub mod split;
pub mod train;

/// Log to stderr; `RUST_LOG`-style filtering is not needed, `MGCC_LOG=debug` raises the level.
pub fn init_logging() {
    let level = match std::env::var("MGCC_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        Ok("warn") => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    // Colour only on a terminal (and never with NO_COLOR): logs redirected to a file stay plain.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
