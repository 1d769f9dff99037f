"""PyTorch yardstick for `mgcc ldm bench`: the same three timings on Medfusion's networks (the
transcription in medfusion_fixture.py, which the fixture test proves equal to mgcc's), at the
same settings, printing the same JSON keys.

- autoencoder training step: encode, reparameterise, decode, Medfusion's `rec_loss`
  (summed MSE + C*H*W*(1 - SSIM) with pytorch_msssim, deep supervision) + 1e-6 KL, backward,
  Adam (lr 1e-4);
- denoiser training step: x_t from random latents and timesteps, L1 on the noise, backward,
  AdamW (lr 1e-4, weight decay 0.01), unconditional;
- sampling: `--sample-steps` DDIM steps (eta 1, scaled_linear 0.002..0.02) on a batch of
  `--sample-batch` latents, then decoding.
One warm-up each, then the median of `--steps` timed steps (sampling: one timed batch).

    /tmp/torchref/bin/python tools/torch_reference/bench_ldm.py --size 64 \
        --vae-channels 32,64,128 --unet-channels 64,64,128 --emb-dim 256 --unet-batch 16 \
        --sample-steps 25 --sample-batch 16 --threads 2
    mgcc ldm bench  (same flags)

`ATEN_CPU_CAPABILITY=avx2` restricts PyTorch to AVX2 kernels.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from medfusion_fixture import UNet, VAE, rec_loss  # noqa: E402


def widths(s):
    return [int(v) for v in s.split(",")]


def timed(f, runs):
    f()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--vae-channels", default="64,128,256,512")
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--unet-channels", default="256,256,512,1024")
    ap.add_argument("--emb-dim", type=int, default=1024)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--sample-batch", type=int, default=8)
    ap.add_argument("--skip-vae", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    hid, latent_ch = widths(a.vae_channels), 8
    vae = VAE(3, latent_ch, hid, 8, deep_supervision=1).to(dev)
    side = a.size // 2 ** (len(hid) - 1)
    vae_median = None
    if not a.skip_vae:
        opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
        x = torch.rand(a.vae_batch, 3, a.size, a.size, device=dev) * 2 - 1

        def vae_step():
            mean, logvar = vae.moments(x)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            image, half = vae.decode(z)
            kl = 0.5 * torch.sum(mean.pow(2) + logvar.exp() - 1.0 - logvar) / x.shape[0]
            loss = rec_loss(image, half, x) + kl * 1e-6
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
            sync()

        vae_median = timed(vae_step, a.steps)
        print(json.dumps({"part": "vae_step", "median_s": vae_median}), flush=True)

    uhid = widths(a.unet_channels)
    unet = UNet(latent_ch, uhid, 32 if min(uhid) % 32 == 0 else 8, a.emb_dim, 2).to(dev)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4, weight_decay=0.01)
    betas = torch.linspace(0.002**0.5, 0.02**0.5, 1000, dtype=torch.float64) ** 2
    ab = torch.cumprod(1 - betas, 0).float().to(dev)
    x0 = torch.randn(a.unet_batch, latent_ch, side, side, device=dev)
    ts = torch.tensor([(i * 997) % 1000 for i in range(a.unet_batch)], device=dev)

    def unet_step():
        noise = torch.randn_like(x0)
        abt = ab[ts].reshape(-1, 1, 1, 1)
        xt = abt.sqrt() * x0 + (1 - abt).sqrt() * noise
        loss = F.l1_loss(unet(xt, ts.float(), None), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        sync()

    unet_median = timed(unet_step, a.steps)
    print(json.dumps({"part": "unet_step", "median_s": unet_median}), flush=True)

    steps = torch.linspace(0, 999, a.sample_steps, dtype=torch.long).tolist()

    @torch.no_grad()
    def sample():
        x = torch.randn(a.sample_batch, latent_ch, side, side, device=dev)
        for i, t in enumerate(reversed(steps)):
            tt = torch.full((a.sample_batch,), float(t), device=dev)
            eps = unet(x, tt, None)
            abt = ab[t]
            x0_hat = (x - (1 - abt).sqrt() * eps) / abt.sqrt()
            if i + 1 < len(steps):
                abn = ab[steps[len(steps) - i - 2]]
                sigma = ((1 - abt / abn) * (1 - abn) / (1 - abt)).sqrt()
                c = (1 - abn - sigma**2).clamp(min=0).sqrt()
                x = x0_hat * abn.sqrt() + c * eps + sigma * torch.randn_like(x)
            else:
                x = x0_hat
        img, _ = vae.decode(x)
        img.clamp(-1, 1).mean().item()
        sync()

    vae.eval()
    unet.eval()
    sample_s = timed(sample, 1)
    print(json.dumps({"part": "sample", "batch_s": sample_s}), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "device": a.device,
                "threads": torch.get_num_threads(),
                "size": a.size,
                "latent": [latent_ch, side, side],
                "vae_params": sum(p.numel() for p in vae.parameters()),
                "unet_params": sum(p.numel() for p in unet.parameters()),
                "vae_batch": a.vae_batch,
                "vae_step_median_s": vae_median,
                "unet_batch": a.unet_batch,
                "unet_step_median_s": unet_median,
                "sample_steps": a.sample_steps,
                "sample_batch": a.sample_batch,
                "sample_batch_s": sample_s,
                "images_per_s": a.sample_batch / sample_s,
                "peak_rss_mib": peak,
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
