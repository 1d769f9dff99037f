//! Two-stream batch loader for semi-supervised training: each batch holds `L` labelled samples
//! (image + mask) followed by `U` unlabelled images.
//!
//! Schedule (iteration t = 0, 1, …; `n_L` labelled, `n_U` unlabelled samples):
//! - iterations per epoch `I = ⌊n_L / L⌋`; epoch `e = ⌊t / I⌋`; the labelled slots are
//!   `P_e[(t mod I)·L .. (t mod I + 1)·L]` with `P_e` the permutation of `0..n_L` drawn from
//!   the RNG of `(seed, e)` (the last `n_L mod L` of each permutation are not used that epoch);
//! - unlabelled slot i of iteration t is the global draw `u = t·U + i`, image `Q_k[u mod n_U]` with
//!   `k = ⌊u / n_U⌋` and `Q_k` the permutation drawn from the RNG of `(seed, k)`;
//! - batch slot j (labelled first) is augmented with [`Augment::for_slot_with`]`(policy, seed, t, j)`.
//!
//! Everything is a pure function of `(seed, t, j)`, so a loader started at
//! `start_iteration = N` yields exactly the batches a fresh one yields after N calls, and
//! decodes nothing for the skipped iterations.
//!
//! A background thread builds batches ahead (bounded channel of depth `prefetch`), decoding,
//! resizing and augmenting the samples of a batch in parallel with rayon. With `cache` on,
//! resized pre-augmentation images and masks stay in memory (S²·(3+1) bytes per labelled
//! RGB sample). Dropping the loader stops the thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use image::GenericImageView;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::augment::{Augment, AugmentPolicy};
use crate::error::{DataError, Result};
use crate::image_io::read_image;
use crate::layout::Sample;
use crate::mask::mask_levels;
use crate::seeding::{Stream, derived_rng};
use crate::transform::{Channels, Resized, mask_into, normalise_into, resize_image, resize_mask};

/// Loader settings.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Side S of the square network input.
    pub size: u32,
    pub channels: Channels,
    /// Labelled samples per batch (L ≥ 1).
    pub labeled_batch: usize,
    /// Unlabelled images per batch (U; 0 = supervised only).
    pub unlabeled_batch: usize,
    /// Random rotation/flip per slot.
    pub augment: AugmentPolicy,
    pub seed: u64,
    /// Keep resized images and masks in memory.
    pub cache: bool,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    /// First iteration produced (for exact resume).
    pub start_iteration: u64,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            size: 256,
            channels: Channels::Three,
            labeled_batch: 4,
            unlabeled_batch: 4,
            augment: AugmentPolicy::Dihedral,
            seed: 0,
            cache: true,
            prefetch: 2,
            start_iteration: 0,
        }
    }
}

/// One batch, NCHW row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// (L+U)×C×S×S, labelled first, normalised (see [`crate::transform`]).
    pub images: Vec<f32>,
    /// L×1×S×S in {0, 1}.
    pub masks: Vec<f32>,
    pub n_labeled: usize,
    pub n_unlabeled: usize,
    pub channels: usize,
    pub size: usize,
    pub iteration: u64,
    pub epoch: u64,
}

impl Batch {
    /// C×S×S of slot `i` (labelled slots first).
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.channels * self.size * self.size;
        &self.images[i * n..(i + 1) * n]
    }

    /// S×S mask of labelled slot `i`.
    pub fn mask(&self, i: usize) -> &[f32] {
        let n = self.size * self.size;
        &self.masks[i * n..(i + 1) * n]
    }
}

/// Permutation `P_e` of the labelled set for epoch `e`.
pub fn labeled_permutation(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut derived_rng(seed, Stream::LabeledEpoch, epoch, 0));
    p
}

/// Permutation `Q_k` of the unlabelled set for cycle `k`.
pub fn unlabeled_permutation(seed: u64, cycle: u64, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut derived_rng(seed, Stream::UnlabeledCycle, cycle, 0));
    p
}

/// Decode a labelled sample: resized image and {0,1} mask; error if their sizes differ.
pub fn load_labeled(sample: &Sample, size: u32, channels: Channels) -> Result<(Resized, Vec<u8>)> {
    let img = read_image(&sample.image)?;
    let levels = mask_levels(&read_image(&sample.mask)?);
    if levels.dimensions() != img.dimensions() {
        return Err(DataError::SizeMismatch {
            image: sample.image.clone(),
            mask: sample.mask.clone(),
            image_size: img.dimensions(),
            mask_size: levels.dimensions(),
        });
    }
    crate::mask::ensure_binary(&sample.mask, &crate::mask::histogram(&levels))?;
    Ok((
        resize_image(&img, size, channels),
        resize_mask(&levels, size),
    ))
}

/// Decode and resize an unlabelled image.
pub fn load_unlabeled(path: &Path, size: u32, channels: Channels) -> Result<Resized> {
    Ok(resize_image(&read_image(path)?, size, channels))
}

type LabeledEntry = Arc<(Resized, Vec<u8>)>;

/// Shared state of the producer.
struct Producer {
    labeled: Vec<Sample>,
    unlabeled: Vec<PathBuf>,
    cfg: LoaderConfig,
    per_epoch: u64,
    labeled_cache: Mutex<HashMap<usize, LabeledEntry>>,
    unlabeled_cache: Mutex<HashMap<usize, Arc<Resized>>>,
    decodes: AtomicU64,
}

/// Memo of the last few permutations of one stream.
struct PermMemo {
    stream: Stream,
    entries: Vec<(u64, Vec<usize>)>,
}

impl PermMemo {
    fn get(&mut self, seed: u64, k: u64, n: usize) -> &[usize] {
        let pos = match self.entries.iter().position(|(key, _)| *key == k) {
            Some(p) => p,
            None => {
                let p = match self.stream {
                    Stream::LabeledEpoch => labeled_permutation(seed, k, n),
                    _ => unlabeled_permutation(seed, k, n),
                };
                if self.entries.len() >= 2 {
                    self.entries.remove(0);
                }
                self.entries.push((k, p));
                self.entries.len() - 1
            }
        };
        &self.entries[pos].1
    }
}

/// What one batch slot reads.
#[derive(Clone, Copy)]
enum Slot {
    Labeled(usize),
    Unlabeled(usize),
}

impl Producer {
    fn slots(&self, t: u64, lab: &mut PermMemo, unl: &mut PermMemo) -> Vec<Slot> {
        let (l, u) = (self.cfg.labeled_batch, self.cfg.unlabeled_batch);
        let e = t / self.per_epoch;
        let pos = (t % self.per_epoch) as usize;
        let perm = lab.get(self.cfg.seed, e, self.labeled.len());
        let mut slots: Vec<Slot> = perm[pos * l..(pos + 1) * l]
            .iter()
            .map(|&i| Slot::Labeled(i))
            .collect();
        let n_u = self.unlabeled.len() as u64;
        for i in 0..u as u64 {
            let g = t * u as u64 + i;
            let perm = unl.get(self.cfg.seed, g / n_u, n_u as usize);
            slots.push(Slot::Unlabeled(perm[(g % n_u) as usize]));
        }
        slots
    }

    fn labeled_entry(&self, i: usize) -> Result<LabeledEntry> {
        if self.cfg.cache
            && let Some(e) = lock(&self.labeled_cache).get(&i)
        {
            return Ok(e.clone());
        }
        self.decodes.fetch_add(1, Ordering::Relaxed);
        let e = Arc::new(load_labeled(
            &self.labeled[i],
            self.cfg.size,
            self.cfg.channels,
        )?);
        if self.cfg.cache {
            lock(&self.labeled_cache).insert(i, e.clone());
        }
        Ok(e)
    }

    fn unlabeled_entry(&self, i: usize) -> Result<Arc<Resized>> {
        if self.cfg.cache
            && let Some(e) = lock(&self.unlabeled_cache).get(&i)
        {
            return Ok(e.clone());
        }
        self.decodes.fetch_add(1, Ordering::Relaxed);
        let e = Arc::new(load_unlabeled(
            &self.unlabeled[i],
            self.cfg.size,
            self.cfg.channels,
        )?);
        if self.cfg.cache {
            lock(&self.unlabeled_cache).insert(i, e.clone());
        }
        Ok(e)
    }

    fn build(&self, t: u64, lab: &mut PermMemo, unl: &mut PermMemo) -> Result<Batch> {
        let slots = self.slots(t, lab, unl);
        let s = self.cfg.size as usize;
        let c = self.cfg.channels.count();
        let (l, u) = (self.cfg.labeled_batch, self.cfg.unlabeled_batch);
        let mut images = vec![0f32; (l + u) * c * s * s];
        let mut masks = vec![0f32; l * s * s];
        let mut mask_chunks = masks.chunks_mut(s * s).map(Some).collect::<Vec<_>>();
        mask_chunks.resize_with(l + u, || None);
        let work: Vec<_> = images
            .chunks_mut(c * s * s)
            .zip(mask_chunks)
            .enumerate()
            .collect();
        let results: Vec<Result<()>> = work
            .into_par_iter()
            .map(|(j, (img_out, mask_out))| {
                let aug = Augment::for_slot_with(self.cfg.augment, self.cfg.seed, t, j as u64);
                match (slots[j], mask_out) {
                    (Slot::Labeled(i), Some(m)) => {
                        let e = self.labeled_entry(i)?;
                        normalise_into(&e.0, self.cfg.channels, aug, img_out);
                        mask_into(&e.1, s, aug, m);
                    }
                    (Slot::Unlabeled(i), _) => {
                        let r = self.unlabeled_entry(i)?;
                        normalise_into(&r, self.cfg.channels, aug, img_out);
                    }
                    (Slot::Labeled(_), None) => unreachable!("labelled slots come first"),
                }
                Ok(())
            })
            .collect();
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(Batch {
            images,
            masks,
            n_labeled: l,
            n_unlabeled: u,
            channels: c,
            size: s,
            iteration: t,
            epoch: t / self.per_epoch,
        })
    }

    /// Producer loop: build, send, repeat until the receiver is gone, `stop` is set or an
    /// error was sent.
    fn run(self: Arc<Self>, tx: SyncSender<Result<Batch>>, stop: Arc<AtomicBool>) {
        let mut lab = PermMemo {
            stream: Stream::LabeledEpoch,
            entries: Vec::new(),
        };
        let mut unl = PermMemo {
            stream: Stream::UnlabeledCycle,
            entries: Vec::new(),
        };
        let mut t = self.cfg.start_iteration;
        while !stop.load(Ordering::Relaxed) {
            let msg = self.build(t, &mut lab, &mut unl);
            let failed = msg.is_err();
            // Blocks while the channel is full; fails once the loader dropped the receiver.
            if tx.send(msg).is_err() {
                return;
            }
            if failed {
                return;
            }
            t += 1;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the map usable; recover it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Labelled + unlabelled batch stream with a background producer (see the module doc).
pub struct TwoStreamLoader {
    rx: Option<Receiver<Result<Batch>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    producer: Arc<Producer>,
    next_iteration: u64,
    failed: bool,
}

impl TwoStreamLoader {
    /// Validate the inputs and start the producer thread.
    ///
    /// Errors: `labeled.len() < labeled_batch`, `unlabeled_batch > 0` with no unlabelled
    /// image, size 0, or a listed file that does not exist.
    pub fn new(
        labeled: Vec<Sample>,
        unlabeled: Vec<PathBuf>,
        config: LoaderConfig,
    ) -> Result<Self> {
        if config.size == 0 {
            return Err(DataError::Config("input size must be at least 1".into()));
        }
        if config.labeled_batch == 0 {
            return Err(DataError::Config(
                "labelled batch must be at least 1".into(),
            ));
        }
        if labeled.len() < config.labeled_batch {
            return Err(DataError::Config(format!(
                "{} labelled samples are fewer than the labelled batch {}",
                labeled.len(),
                config.labeled_batch
            )));
        }
        if config.unlabeled_batch > 0 && unlabeled.is_empty() {
            return Err(DataError::Config(format!(
                "unlabelled batch {} but no unlabelled images",
                config.unlabeled_batch
            )));
        }
        let missing =
            |p: &Path| DataError::io(p, "cannot open", std::io::ErrorKind::NotFound.into());
        for s in &labeled {
            if !s.image.is_file() {
                return Err(missing(&s.image));
            }
            if !s.mask.is_file() {
                return Err(DataError::MissingMask {
                    image: s.image.clone(),
                    expected: s.mask.clone(),
                });
            }
        }
        if let Some(p) = unlabeled.iter().find(|p| !p.is_file()) {
            return Err(missing(p));
        }
        let per_epoch = (labeled.len() / config.labeled_batch) as u64;
        let start = config.start_iteration;
        let producer = Arc::new(Producer {
            labeled,
            unlabeled,
            per_epoch,
            cfg: config,
            labeled_cache: Mutex::new(HashMap::new()),
            unlabeled_cache: Mutex::new(HashMap::new()),
            decodes: AtomicU64::new(0),
        });
        let (tx, rx) = sync_channel(producer.cfg.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (p, stop) = (producer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mgcc-loader".into())
                .spawn(move || p.run(tx, stop))
                .map_err(|e| {
                    DataError::LoaderStopped(format!("cannot start producer thread: {e}"))
                })?
        };
        Ok(TwoStreamLoader {
            rx: Some(rx),
            stop,
            handle: Some(handle),
            producer,
            next_iteration: start,
            failed: false,
        })
    }

    /// The next batch (iteration `start_iteration`, then +1 each call). After an error the
    /// loader is stopped and every later call fails.
    pub fn next_batch(&mut self) -> Result<Batch> {
        if self.failed {
            return Err(DataError::LoaderStopped(
                "an earlier batch failed; build a new loader".into(),
            ));
        }
        let rx = self
            .rx
            .as_ref()
            .ok_or_else(|| DataError::LoaderStopped("loader closed".into()))?;
        match rx.recv() {
            Ok(Ok(batch)) => {
                self.next_iteration = batch.iteration + 1;
                Ok(batch)
            }
            Ok(Err(e)) => {
                self.failed = true;
                Err(e)
            }
            Err(_) => {
                self.failed = true;
                Err(DataError::LoaderStopped(
                    "the producer thread ended unexpectedly (panic)".into(),
                ))
            }
        }
    }

    /// ⌊n_labeled / labeled_batch⌋.
    pub fn iterations_per_epoch(&self) -> u64 {
        self.producer.per_epoch
    }

    /// Iteration of the next batch returned.
    pub fn next_iteration(&self) -> u64 {
        self.next_iteration
    }

    pub fn n_labeled(&self) -> usize {
        self.producer.labeled.len()
    }

    pub fn n_unlabeled(&self) -> usize {
        self.producer.unlabeled.len()
    }

    /// Files decoded so far (labelled samples count once for image + mask).
    pub fn decode_count(&self) -> u64 {
        self.producer.decodes.load(Ordering::Relaxed)
    }

    /// Worker threads of the rayon pool that decodes batches.
    pub fn worker_threads() -> usize {
        rayon::current_num_threads()
    }
}

impl Drop for TwoStreamLoader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::write_dyn;
    use crate::transform::IMAGENET_MEAN;
    use image::{DynamicImage, GrayImage, Luma};

    /// `n` labelled 8×8 samples: image value 10·(i+1), mask lesion at pixel (1, 0) only;
    /// `m` unlabelled images of value 200 + i.
    fn fixture(dir: &Path, n: usize, m: usize) -> (Vec<Sample>, Vec<PathBuf>) {
        let mut labeled = Vec::new();
        for i in 0..n {
            let image = dir.join(format!("images/l{i}.png"));
            let mask = dir.join(format!("masks/0/l{i}.png"));
            write_dyn(
                &image,
                &DynamicImage::ImageLuma8(GrayImage::from_pixel(8, 8, Luma([10 * (i as u8 + 1)]))),
            );
            let mut mk = GrayImage::new(8, 8);
            mk.put_pixel(1, 0, Luma([255]));
            write_dyn(&mask, &DynamicImage::ImageLuma8(mk));
            labeled.push(Sample {
                stem: format!("l{i}"),
                image,
                mask,
            });
        }
        let unlabeled = (0..m)
            .map(|i| {
                let p = dir.join(format!("u/u{i}.png"));
                write_dyn(
                    &p,
                    &DynamicImage::ImageLuma8(GrayImage::from_pixel(8, 8, Luma([200 + i as u8]))),
                );
                p
            })
            .collect();
        (labeled, unlabeled)
    }

    fn cfg(l: usize, u: usize) -> LoaderConfig {
        LoaderConfig {
            size: 8,
            channels: Channels::One,
            labeled_batch: l,
            unlabeled_batch: u,
            augment: AugmentPolicy::Dihedral,
            seed: 7,
            cache: false,
            prefetch: 2,
            start_iteration: 0,
        }
    }

    /// Gray value of slot `i` (uniform images), undoing mean 0.5 / std 0.5.
    fn value(b: &Batch, i: usize) -> u8 {
        ((b.image(i)[0] * 0.5 + 0.5) * 255.0).round() as u8
    }

    #[test]
    fn shapes_order_and_epochs() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 5, 3);
        let mut ld = TwoStreamLoader::new(lab, unl, cfg(2, 3)).unwrap();
        assert_eq!(ld.iterations_per_epoch(), 2);
        let mut epoch0 = Vec::new();
        for it in 0..4u64 {
            let b = ld.next_batch().unwrap();
            assert_eq!((b.iteration, b.epoch), (it, it / 2));
            assert_eq!(
                (b.n_labeled, b.n_unlabeled, b.channels, b.size),
                (2, 3, 1, 8)
            );
            assert_eq!(b.images.len(), 5 * 64);
            assert_eq!(b.masks.len(), 2 * 64);
            // Labelled first: values 10..50, unlabelled 200..202.
            for i in 0..2 {
                assert!(value(&b, i) <= 50, "slot {i} is labelled");
                assert_eq!(b.mask(i).iter().filter(|&&v| v == 1.0).count(), 1);
                assert!(b.mask(i).iter().all(|&v| v == 0.0 || v == 1.0));
            }
            let unl: Vec<u8> = (2..5).map(|i| value(&b, i)).collect();
            let mut sorted = unl.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                vec![200, 201, 202],
                "one unlabelled cycle per batch here"
            );
            if it < 2 {
                epoch0.extend((0..2).map(|i| value(&b, i)));
            }
        }
        epoch0.sort();
        epoch0.dedup();
        assert_eq!(epoch0.len(), 4, "an epoch draws distinct labelled samples");
        assert_eq!(ld.next_iteration(), 4);
    }

    #[test]
    fn exact_resume_without_decoding_skipped() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 5, 4);
        let mut fresh = TwoStreamLoader::new(lab.clone(), unl.clone(), cfg(2, 3)).unwrap();
        let batches: Vec<Batch> = (0..7).map(|_| fresh.next_batch().unwrap()).collect();
        let mut c = cfg(2, 3);
        c.start_iteration = 5;
        c.prefetch = 0;
        let mut resumed = TwoStreamLoader::new(lab, unl, c).unwrap();
        assert_eq!(resumed.next_batch().unwrap(), batches[5]);
        // Rendezvous channel: only batches 5 and (being built) 6 were decoded, 5 files each.
        assert!(
            resumed.decode_count() <= 10,
            "decoded {}",
            resumed.decode_count()
        );
        assert_eq!(resumed.next_batch().unwrap(), batches[6]);
    }

    #[test]
    fn cache_does_not_change_batches_and_avoids_decodes() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 4, 2);
        let mut a = TwoStreamLoader::new(lab.clone(), unl.clone(), cfg(2, 2)).unwrap();
        let mut c = cfg(2, 2);
        c.cache = true;
        let mut b = TwoStreamLoader::new(lab, unl, c).unwrap();
        for _ in 0..6 {
            assert_eq!(a.next_batch().unwrap(), b.next_batch().unwrap());
        }
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            b.decode_count() <= 6,
            "each of 6 files decoded once, got {}",
            b.decode_count()
        );
    }

    #[test]
    fn augmentation_moves_image_and_mask_together() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        // Marker: image pixel (1,0) bright, mask pixel (1,0) lesion; everything else 0.
        let mut img = GrayImage::new(8, 8);
        img.put_pixel(1, 0, Luma([255]));
        let mut mk = GrayImage::new(8, 8);
        mk.put_pixel(1, 0, Luma([255]));
        let mut lab = Vec::new();
        for i in 0..4 {
            let s = Sample {
                stem: format!("m{i}"),
                image: dir.join(format!("i{i}.png")),
                mask: dir.join(format!("k{i}.png")),
            };
            write_dyn(&s.image, &DynamicImage::ImageLuma8(img.clone()));
            write_dyn(&s.mask, &DynamicImage::ImageLuma8(mk.clone()));
            lab.push(s);
        }
        let mut ld = TwoStreamLoader::new(lab, vec![], cfg(4, 0)).unwrap();
        let mut positions = std::collections::HashSet::new();
        for _ in 0..8 {
            let b = ld.next_batch().unwrap();
            assert_eq!((b.n_unlabeled, b.images.len()), (0, 4 * 64));
            for i in 0..4 {
                let bright: Vec<usize> = (0..64).filter(|&p| b.image(i)[p] > 0.9).collect();
                let lesion: Vec<usize> = (0..64).filter(|&p| b.mask(i)[p] == 1.0).collect();
                assert_eq!(bright.len(), 1);
                assert_eq!(bright, lesion, "iteration {} slot {i}", b.iteration);
                positions.insert(lesion[0]);
            }
        }
        assert!(
            positions.len() >= 4,
            "augmentation moves the marker: {positions:?}"
        );
    }

    #[test]
    fn three_channels_normalised_and_errors() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 2, 1);
        let mut c = cfg(2, 1);
        c.channels = Channels::Three;
        c.augment = AugmentPolicy::None;
        let mut ld = TwoStreamLoader::new(lab.clone(), unl.clone(), c.clone()).unwrap();
        let b = ld.next_batch().unwrap();
        assert_eq!(b.images.len(), 3 * 3 * 64);
        let v = b.image(2); // unlabelled value 200
        let want = (200.0 / 255.0 - IMAGENET_MEAN[1]) / 0.224;
        assert!((v[64] - want).abs() < 1e-5, "{} vs {want}", v[64]);

        assert!(matches!(
            TwoStreamLoader::new(lab.clone(), unl.clone(), cfg(3, 1)),
            Err(DataError::Config(_))
        ));
        assert!(matches!(
            TwoStreamLoader::new(lab.clone(), vec![], cfg(1, 1)),
            Err(DataError::Config(_))
        ));
        // A corrupt labelled image comes back as a typed error naming the file.
        std::fs::write(&lab[1].image, b"garbage").unwrap();
        let mut ld = TwoStreamLoader::new(lab.clone(), unl, cfg(2, 0)).unwrap();
        let err = ld.next_batch().unwrap_err();
        assert!(matches!(err, DataError::Image { .. }), "{err}");
        assert!(err.to_string().contains("l1.png"), "{err}");
        assert!(matches!(ld.next_batch(), Err(DataError::LoaderStopped(_))));
    }

    #[test]
    fn drop_stops_the_producer() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 4, 2);
        let mut ld = TwoStreamLoader::new(lab, unl, cfg(2, 2)).unwrap();
        ld.next_batch().unwrap();
        // The producer thread holds the only other reference; it is gone once the thread ended.
        let weak = Arc::downgrade(&ld.producer);
        std::thread::sleep(std::time::Duration::from_millis(20)); // let it block on a full channel
        drop(ld);
        assert!(
            weak.upgrade().is_none(),
            "producer thread still alive after drop"
        );
    }

    #[test]
    fn unlabelled_cycles_through_permutations() {
        let t = tempfile::tempdir().unwrap();
        let (lab, unl) = fixture(t.path(), 2, 5);
        let mut ld = TwoStreamLoader::new(lab, unl, cfg(1, 2)).unwrap();
        let mut seq = Vec::new();
        for _ in 0..5 {
            let b = ld.next_batch().unwrap();
            seq.extend([value(&b, 1), value(&b, 2)]);
        }
        // 10 draws = two full cycles of 5, each a permutation.
        for cycle in seq.chunks(5) {
            let mut c = cycle.to_vec();
            c.sort();
            assert_eq!(c, vec![200, 201, 202, 203, 204]);
        }
    }
}
