"""Fixture for mgcc's numerical test of the generation stage against PyTorch: Medfusion's
autoencoder (`VAE` in medical_diffusion/models/embedders/latent_embedders.py, with residual
blocks) and its latent UNet (`UNet` in medical_diffusion/models/estimators/unet2.py, the one
`from medical_diffusion.models.estimators import UNet` gives), transcribed here with
Medfusion's module and parameter names (its MONAI helpers written out: `get_padding(k, s) =
int((k - s + 1) / 2)`, GroupNorm with affine parameters, Swish = SiLU, attention 'none' = the
identity, `UnetOutBlock` = a 1x1 conv under `.conv.conv`), at small widths.

The autoencoder's loss is Medfusion's `rec_loss` with `loss = MSELoss(reduction='none')`, the
real `pytorch_msssim.ssim(..., data_range=1, size_average=False, nonnegative_ssim=True)` on
the clamped prediction, deep supervision against `interpolate(mode='nearest-exact')` and
`+ emb_loss * 1e-6` (LPIPS left out, as in mgcc).

Writes tests/fixtures/medfusion_torch.safetensors (in the repository root) holding
- every parameter under its **mgcc (burn) name** (`vae.` / `unet.` prefixes; Linear weights
  transposed to burn's [in, out]); `MAP` below lists the Medfusion name of each;
- autoencoder: `vae.x` (2x3x32x32), `vae.eps` (the reparameterisation noise), and the
  references `vae.mean`, `vae.logvar` (the encoder's moments), `vae.image`, `vae.half` (the
  decoder's outputs for z = mean + exp(logvar/2) * eps), `vae.kl`, `vae.loss`;
- denoiser: `unet.x` (3x4x8x8), `unet.t`, `unet.classes`, and `unet.cond` (the prediction with
  those classes) and `unet.uncond` (condition=None);
computed in float64 from the float32 weights and inputs. Every parameter, including those
Medfusion zero-initialises, is drawn at random so that every one of them matters.

    /tmp/torchref/bin/pip install torch==2.9.0 safetensors pytorch-msssim
    /tmp/torchref/bin/python tools/torch_reference/medfusion_fixture.py --seed 3
"""

import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from pytorch_msssim import ssim
from safetensors.torch import save_file


def get_padding(k, s):
    return int((k - s + 1) / 2)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=None, act=False, zero_conv=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=get_padding(k, stride))
        if zero_conv:
            for p in self.conv.parameters():
                p.detach().zero_()
        if groups is not None:
            self.norm = nn.GroupNorm(groups, cout, affine=True)
        if act:
            self.act = nn.SiLU()

    def forward(self, x):
        out = self.conv(x)
        if hasattr(self, "norm"):
            out = self.norm(out)
        if hasattr(self, "act"):
            out = self.act(out)
        return out


class BasicResBlock(nn.Module):
    def __init__(self, cin, cout, k, groups, zero_conv):
        super().__init__()
        self.basic_block = BasicBlock(cin, cout, k, 1, groups, True, zero_conv)
        self.conv_res = nn.Conv2d(cin, cout, 1, 1, 0) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.basic_block(x) + self.conv_res(x)


class UnetResBlock(nn.Module):
    def __init__(self, cin, cout, k, groups, emb_channels=None, blocks=2):
        super().__init__()
        self.block_seq = nn.ModuleList(
            [BasicResBlock(cin if i == 0 else cout, cout, k, groups, i == blocks - 1) for i in range(blocks)]
        )
        if emb_channels is not None:
            self.local_embedder = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, cout))

    def forward(self, x, emb=None):
        if emb is not None:
            emb = self.local_embedder(emb)
            b, c = emb.shape
            emb = emb.reshape(b, c, 1, 1)
        n = len(self.block_seq)
        for i, block in enumerate(self.block_seq):
            x = block(x)
            if emb is not None and i < n - 1:
                x = x + emb
        return x


class BasicDown(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.down_op = nn.Conv2d(cin, cout, k, stride, padding=get_padding(k, stride))

    def forward(self, x, emb=None):
        return self.down_op(x)


class BasicUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up_op = nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, x, emb=None):
        size = tuple(2 * s for s in x.shape[2:])
        return self.up_op(F.interpolate(x, size=size, mode="nearest-exact"))


class DownBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.down_op = BasicDown(cin, cout, 3, 2)
        self.conv_block = UnetResBlock(cout, cout, 3, groups)

    def forward(self, x):
        return self.conv_block(self.down_op(x))


class UpBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.up_op = BasicUp(cin, cout)
        self.conv_block = UnetResBlock(cout, cout, 3, groups)

    def forward(self, x):
        return self.conv_block(self.up_op(x))


class VAE(nn.Module):
    """Medfusion's VAE with use_res_block=True, learnable_interpolation=True, attention 'none'."""

    def __init__(self, in_channels, emb_channels, hid_chs, groups, deep_supervision):
        super().__init__()
        depth = len(hid_chs)
        self.inc = UnetResBlock(in_channels, hid_chs[0], 3, groups)
        self.encoders = nn.ModuleList([DownBlock(hid_chs[i - 1], hid_chs[i], groups) for i in range(1, depth)])
        self.out_enc = nn.Sequential(
            BasicBlock(hid_chs[-1], 2 * emb_channels, 3), BasicBlock(2 * emb_channels, 2 * emb_channels, 1)
        )
        self.inc_dec = UnetResBlock(emb_channels, hid_chs[-1], 3, groups)
        self.decoders = nn.ModuleList([UpBlock(hid_chs[i + 1], hid_chs[i], groups) for i in range(depth - 1)])
        self.outc = BasicBlock(hid_chs[0], in_channels, 1, zero_conv=True)
        self.outc_ver = nn.ModuleList(
            [BasicBlock(hid_chs[i], in_channels, 1, zero_conv=True) for i in range(1, deep_supervision + 1)]
        )

    def moments(self, x):
        h = self.inc(x)
        for enc in self.encoders:
            h = enc(h)
        mean, logvar = torch.chunk(self.out_enc(h), 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def decode(self, z):
        out_hor = []
        h = self.inc_dec(z)
        for i in range(len(self.decoders) - 1, -1, -1):
            if i < len(self.outc_ver):
                out_hor.append(self.outc_ver[i](h))
            h = self.decoders[i](h)
        return self.outc(h), out_hor[::-1]


def ssim_loss(pred, target):
    return 1 - ssim(
        ((pred + 1) / 2).clamp(0, 1), (target + 1) / 2, data_range=1, size_average=False, nonnegative_ssim=True
    ).reshape(-1, *[1] * (pred.ndim - 1))


def rec_loss(pred, pred_vertical, target):
    """Medfusion's VAE.rec_loss with MSELoss(reduction='none') and no perceptual term."""
    loss = 0
    rec = F.mse_loss(pred, target, reduction="none") + ssim_loss(pred, target)
    loss += torch.sum(rec) / pred.shape[0]
    for pred_i in pred_vertical:
        target_i = F.interpolate(target, size=pred_i.shape[2:], mode="nearest-exact")
        rec_i = F.mse_loss(pred_i, target_i, reduction="none") + ssim_loss(pred_i, target_i)
        loss += torch.sum(rec_i) / pred.shape[0]
    return loss


class SinusoidalPosEmb(nn.Module):
    def __init__(self, emb_dim, downscale_freq_shift=1, max_period=10000):
        super().__init__()
        self.emb_dim, self.shift, self.max_period = emb_dim, downscale_freq_shift, max_period

    def forward(self, x):
        half = self.emb_dim // 2
        emb = torch.log(torch.tensor(float(self.max_period), dtype=torch.float64)) / (half - self.shift)
        emb = torch.exp(-emb * torch.arange(half, dtype=torch.float64)).to(x.dtype)
        emb = x[:, None] * emb[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class TimeEmbbeding(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.emb_dim = emb_dim
        pos = emb_dim // 4
        self.time_emb = nn.Sequential(SinusoidalPosEmb(pos), nn.Linear(pos, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t):
        return self.time_emb(t)


class LabelEmbedder(nn.Module):
    def __init__(self, emb_dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(num_classes, emb_dim)

    def forward(self, c):
        return self.embedding(c)


class SequentialEmb(nn.Sequential):
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb)
        return x


class NoAttention(nn.Module):
    def forward(self, x, emb=None):
        return x


class OutBlock(nn.Module):
    """MONAI's UnetOutBlock: a 1x1 conv stored as `.conv.conv`."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential()
        self.conv.add_module("conv", nn.Conv2d(cin, cout, 1))

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    """Medfusion's unet2.UNet, attention 'none', no deep supervision, no self-conditioning."""

    def __init__(self, in_ch, hid_chs, groups, emb_dim, num_classes, num_res_blocks=2):
        super().__init__()
        depth = len(hid_chs)
        self.num_res_blocks = num_res_blocks
        self.time_embedder = TimeEmbbeding(emb_dim)
        self.cond_embedder = LabelEmbedder(emb_dim, num_classes)
        self.in_conv = BasicBlock(in_ch, hid_chs[0], 3)
        in_blocks = []
        for i in range(1, depth):
            for k in range(num_res_blocks):
                in_blocks.append(
                    SequentialEmb(
                        UnetResBlock(hid_chs[i - 1 if k == 0 else i], hid_chs[i], 3, groups, emb_dim), NoAttention()
                    )
                )
            if i < depth - 1:
                in_blocks.append(BasicDown(hid_chs[i], hid_chs[i], 3, 2))
        self.in_blocks = nn.ModuleList(in_blocks)
        self.middle_block = SequentialEmb(
            UnetResBlock(hid_chs[-1], hid_chs[-1], 3, groups, emb_dim),
            NoAttention(),
            UnetResBlock(hid_chs[-1], hid_chs[-1], 3, groups, emb_dim),
        )
        out_blocks = []
        for i in range(1, depth):
            for k in range(num_res_blocks + 1):
                out_channels = hid_chs[i - 1 if k == 0 else i]
                seq = [
                    UnetResBlock(hid_chs[i] + hid_chs[i - 1 if k == 0 else i], out_channels, 3, groups, emb_dim),
                    NoAttention(),
                ]
                if i > 1 and k == 0:
                    seq.append(BasicUp(out_channels, out_channels))
                out_blocks.append(SequentialEmb(*seq))
        self.out_blocks = nn.ModuleList(out_blocks)
        self.outc = OutBlock(hid_chs[0], in_ch)
        for p in self.outc.parameters():
            p.detach().zero_()

    def forward(self, x_t, t, condition=None):
        emb = self.time_embedder(t)
        if condition is not None:
            emb = emb + self.cond_embedder(condition)
        x = [self.in_conv(x_t)]
        for blk in self.in_blocks:
            x.append(blk(x[-1], emb))
        h = self.middle_block(x[-1], emb)
        for i in range(len(self.out_blocks), 0, -1):
            h = torch.cat([h, x.pop()], dim=1)
            h = self.out_blocks[i - 1](h, emb)
        return self.outc(h)


# ---------------------------------------------------------------- names: Medfusion -> mgcc


def resblock_map(torch_prefix, burn_prefix, cin, cout, emb):
    m = {}
    for j, sub in enumerate(["first", "second"]):
        t = f"{torch_prefix}.block_seq.{j}"
        b = f"{burn_prefix}.{sub}"
        m[f"{t}.basic_block.conv.weight"] = f"{b}.conv.weight"
        m[f"{t}.basic_block.conv.bias"] = f"{b}.conv.bias"
        m[f"{t}.basic_block.norm.weight"] = f"{b}.norm.gamma"
        m[f"{t}.basic_block.norm.bias"] = f"{b}.norm.beta"
        if j == 0 and cin != cout:
            m[f"{t}.conv_res.weight"] = f"{b}.skip.weight"
            m[f"{t}.conv_res.bias"] = f"{b}.skip.bias"
    if emb:
        m[f"{torch_prefix}.local_embedder.1.weight"] = f"{burn_prefix}.emb_proj.weight"
        m[f"{torch_prefix}.local_embedder.1.bias"] = f"{burn_prefix}.emb_proj.bias"
    return m


def conv_map(t, b):
    return {f"{t}.weight": f"{b}.weight", f"{t}.bias": f"{b}.bias"}


def vae_map(hid, in_ch, emb_ch):
    m = resblock_map("inc", "encoder.inc", in_ch, hid[0], False)
    depth = len(hid)
    for i in range(1, depth):
        m.update(conv_map(f"encoders.{i-1}.down_op.down_op", f"encoder.downs.{i-1}.0"))
        m.update(resblock_map(f"encoders.{i-1}.conv_block", f"encoder.downs.{i-1}.1", hid[i], hid[i], False))
    m.update(conv_map("out_enc.0.conv", "encoder.conv_moments"))
    m.update(conv_map("out_enc.1.conv", "encoder.proj_moments"))
    m.update(resblock_map("inc_dec", "decoder.inc", emb_ch, hid[-1], False))
    # mgcc's ups run deepest first: ups[j] is Medfusion's decoders[depth - 2 - j].
    for j in range(depth - 1):
        i = depth - 2 - j
        m.update(conv_map(f"decoders.{i}.up_op.up_op", f"decoder.ups.{j}.0"))
        m.update(resblock_map(f"decoders.{i}.conv_block", f"decoder.ups.{j}.1", hid[i], hid[i], False))
    m.update(conv_map("outc.conv", "decoder.conv_out"))
    m.update(conv_map("outc_ver.0.conv", "decoder.head_half"))
    return m


def unet_map(hid, nb):
    depth = len(hid)
    m = conv_map("in_conv.conv", "conv_in")
    m["time_embedder.time_emb.1.weight"] = "time_mlp.0.weight"
    m["time_embedder.time_emb.1.bias"] = "time_mlp.0.bias"
    m["time_embedder.time_emb.3.weight"] = "time_mlp.1.weight"
    m["time_embedder.time_emb.3.bias"] = "time_mlp.1.bias"
    m["cond_embedder.embedding.weight"] = "class_emb"
    idx = 0
    for i in range(1, depth):
        for k in range(nb):
            cin = hid[i - 1 if k == 0 else i]
            m.update(resblock_map(f"in_blocks.{idx}.0", f"down_blocks.{i-1}.{k}", cin, hid[i], True))
            idx += 1
        if i < depth - 1:
            m.update(conv_map(f"in_blocks.{idx}.down_op", f"downsamples.{i-1}"))
            idx += 1
    m.update(resblock_map("middle_block.0", "mid.0", hid[-1], hid[-1], True))
    m.update(resblock_map("middle_block.2", "mid.1", hid[-1], hid[-1], True))
    # mgcc's up_blocks: level 0 is the deepest (Medfusion's i = depth - 1); within a level the
    # blocks in the order they run (k = nb ... 0).
    for i in range(1, depth):
        level = depth - 1 - i
        for k in range(nb + 1):
            j = (i - 1) * (nb + 1) + k
            cin = hid[i] + hid[i - 1 if k == 0 else i]
            cout = hid[i - 1 if k == 0 else i]
            m.update(resblock_map(f"out_blocks.{j}.0", f"up_blocks.{level}.{nb - k}", cin, cout, True))
            if i > 1 and k == 0:
                m.update(conv_map(f"out_blocks.{j}.2.up_op", f"upsamples.{level}"))
    m.update(conv_map("outc.conv.conv", "conv_out"))
    return m


def randomise(model):
    """Every parameter random: conv/linear U(+-1/sqrt(fan_in)), GroupNorm 1 + 0.2 N / 0.2 N,
    embeddings N(0, 1)."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                bound = fan_in**-0.5
                mod.weight.uniform_(-bound, bound)
                mod.bias.uniform_(-bound, bound)
            elif isinstance(mod, nn.GroupNorm):
                mod.weight.copy_(1 + 0.2 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.2 * torch.randn_like(mod.bias))
            elif isinstance(mod, nn.Embedding):
                mod.weight.normal_()


def export(model, mapping, prefix, out):
    state = model.state_dict()
    missing = set(state) - set(mapping)
    extra = set(mapping) - set(state)
    assert not missing and not extra, (missing, extra)
    for tname, bname in mapping.items():
        t = state[tname].detach().float()
        if tname.endswith(".weight") and t.ndim == 2 and "embedding" not in tname:
            t = t.t()  # burn's Linear stores [in, out]
        out[f"{prefix}.{bname}"] = t.contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "medfusion_torch.safetensors"),
    )
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    out = {}

    # Autoencoder: 3x32x32 images, widths 8,16,16 (two stages: 4x8x8 latents), GroupNorm(8).
    hid, in_ch, emb_ch = [8, 16, 16], 3, 4
    vae = VAE(in_ch, emb_ch, hid, 8, deep_supervision=1)
    randomise(vae)
    export(vae, vae_map(hid, in_ch, emb_ch), "vae", out)
    x = torch.rand(2, in_ch, 32, 32) * 2 - 1
    eps = torch.randn(2, emb_ch, 8, 8)
    v64 = vae.double()
    with torch.no_grad():
        mean, logvar = v64.moments(x.double())
        z = mean + torch.exp(0.5 * logvar) * eps.double()
        image, half = v64.decode(z)
        kl = 0.5 * torch.sum(mean.pow(2) + logvar.exp() - 1.0 - logvar) / x.shape[0]
        loss = rec_loss(image, half, x.double()) + kl * 1e-6
    out.update(
        {
            "vae.x": x,
            "vae.eps": eps,
            "vae.mean": mean,
            "vae.logvar": logvar,
            "vae.image": image,
            "vae.half": half[0],
            "vae.kl": kl.reshape(1),
            "vae.loss": loss.reshape(1),
        }
    )

    # Denoiser: 4x8x8 latents, widths 16,16,32,32 (two downsamplings), 2 blocks, GroupNorm(8),
    # embedding 32 (time position 8), 2 classes.
    uhid, nb = [16, 16, 32, 32], 2
    unet = UNet(4, uhid, 8, 32, 2, nb)
    randomise(unet)
    export(unet, unet_map(uhid, nb), "unet", out)
    ux = torch.randn(3, 4, 8, 8)
    t = torch.tensor([0.0, 421.0, 999.0])
    classes = torch.tensor([1, 0, 1])
    u64 = unet.double()
    with torch.no_grad():
        cond = u64(ux.double(), t.double(), classes)
        uncond = u64(ux.double(), t.double(), None)
    out.update({"unet.x": ux, "unet.t": t, "unet.classes": classes.float(), "unet.cond": cond, "unet.uncond": uncond})

    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, args.out)
    size = os.path.getsize(args.out)
    print(
        f"wrote {args.out}: {len(out)} tensors, {size / 1e6:.2f} MB; vae loss {loss.item():.6f} "
        f"(kl {kl.item():.4f}), |image| max {image.abs().max().item():.3f}, |cond| max {cond.abs().max().item():.3f}"
    )


if __name__ == "__main__":
    main()
