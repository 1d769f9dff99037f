//! `mgcc import-busi SRC OUT`: convert the Kaggle BUSI release into the MGCC layout.

use std::path::PathBuf;

use mgcc_data::{ImportOptions, import_busi};

#[derive(clap::Args)]
pub struct Args {
    /// BUSI release: the folder with benign/, malignant/, normal/ (or the one holding
    /// Dataset_BUSI_with_GT/).
    pub src: PathBuf,
    /// Output dataset folder; must be absent or empty unless --force.
    pub out: PathBuf,
    /// Keep the normal images (all-zero masks); left out by default.
    #[arg(long)]
    pub include_normal: bool,
    /// Replace a non-empty OUT as a whole, only when mgcc wrote every file in it (an earlier
    /// import or phantom); a folder holding anything else is refused.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = ImportOptions {
        include_normal: args.include_normal,
        force: args.force,
    };
    let s = import_busi(&args.src, &args.out, &opts)?;
    let classes: Vec<String> = s
        .class_counts()
        .iter()
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    println!(
        "imported {} images ({}) from {} into {}",
        s.rows.len(),
        classes.join(", "),
        s.source.display(),
        s.out.display()
    );
    println!("  masks merged from 2+ files: {}", s.merged());
    if s.skipped_normal > 0 {
        println!(
            "  left out {} normal images (pass --include-normal to keep them)",
            s.skipped_normal
        );
    }
    if s.removed_stale > 0 {
        println!(
            "  removed {} image/mask files of an earlier import",
            s.removed_stale
        );
    }
    println!("  manifest: {}", s.out.join("manifest.csv").display());
    Ok(())
}
