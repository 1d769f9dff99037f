"""Fixture for mgcc's numerical test against PyTorch: the MGCC network of the published code
(src/network/MGCC.py of the MGCC repository), transcribed here with the same module and
parameter names so that its state dict is the published one, but with the first-level width
as a parameter (the published class fixes it at 16 x dim_mult) and a switch that turns the
three feature perturbations off.

Writes tests/fixtures/mgcc_torch_w{W}.safetensors (in the repository root) holding:
- every state-dict tensor under its PyTorch name (after two training-mode passes, so the
  batch-norm running statistics are not 0/1);
- `x` (input, 2x3x32x32), `y` (binary target, 2x1x32x32);
- `eval_main`: the main decoder in eval mode;
- `train_main`, `train_aux1..3`: the four decoders in train mode with perturbations off;
- `torch_f32_vs_f64`: how far PyTorch's own float32 gradients are from the float64 ones (the
  instance's conditioning: the seed is chosen so that this is small);
- `loss`: sup + 0.5 * cons, with sup = the mean over the four outputs of BCE+Dice and cons =
  the mean over the auxiliaries of mean((sigmoid(main) - sigmoid(aux))^2);
- `grad.NAME`: the gradient of that loss for every parameter NAME.
Outputs, loss and gradients are computed in float64 from the float32 weights and input.

Beside it, mgcc_torch_w{W}_state.pth holds the same state dict as a DataParallel checkpoint
(`{"state_dict": {"module.NAME": ...}}`) for the pickle reader of `mgcc import-torch`.

It also checks that the state dict loads into the transcribed class with strict=True, and,
with --check FILE, that a safetensors file written by `mgcc export` does too and gives the
same eval output.

    /tmp/torchref/bin/python tools/torch_reference/mgcc_fixture.py --width 2 --seed 5
"""

import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def bn(c):
    return nn.BatchNorm2d(c)


class MSAG(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pointwiseConv = nn.Sequential(nn.Conv2d(c, c, 1), bn(c))
        self.ordinaryConv = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), bn(c))
        self.dilationConv = nn.Sequential(nn.Conv2d(c, c, 3, padding=2, dilation=2), bn(c))
        self.voteConv = nn.Sequential(nn.Conv2d(3 * c, c, 1), bn(c), nn.Sigmoid())
        self.relu = nn.ReLU()

    def forward(self, x):
        branches = torch.cat([self.pointwiseConv(x), self.ordinaryConv(x), self.dilationConv(x)], 1)
        return x + x * self.voteConv(self.relu(branches))


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


class ConvMixerBlock(nn.Module):
    def __init__(self, dim, depth, k):
        super().__init__()
        layers = []
        for _ in range(depth):
            spatial = nn.Sequential(nn.Conv2d(dim, dim, k, groups=dim, padding=k // 2), nn.GELU(), bn(dim))
            layers.append(nn.Sequential(Residual(spatial), nn.Conv2d(dim, dim, 1), nn.GELU(), bn(dim)))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return self.block(x)


class conv_block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), bn(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1), bn(cout), nn.ReLU(),
        )

    def forward(self, x):
        return self.conv(x)


class up_conv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1), bn(cout), nn.ReLU())

    def forward(self, x):
        return self.up(x)


class Decoder(nn.Module):
    def __init__(self, w):
        super().__init__()
        c = [w, 2 * w, 4 * w, 8 * w, 16 * w]
        for i in range(4, 0, -1):  # Up5/Up_conv5 ... Up2/Up_conv2
            setattr(self, f"Up{i + 1}", up_conv(c[i], c[i - 1]))
            setattr(self, f"Up_conv{i + 1}", conv_block(2 * c[i - 1], c[i - 1]))
        self.Conv_1x1 = nn.Conv2d(w, 1, 1)
        for i in range(4, 0, -1):
            setattr(self, f"msag{i}", MSAG(c[i - 1]))

    def forward(self, feats):
        skips = [getattr(self, f"msag{i + 1}")(f) for i, f in enumerate(feats[:4])]
        d = feats[4]
        for i in range(4, 0, -1):
            d = getattr(self, f"Up{i + 1}")(d)
            d = getattr(self, f"Up_conv{i + 1}")(torch.cat([skips[i - 1], d], 1))
        return self.Conv_1x1(d)


class MGCC(nn.Module):
    def __init__(self, width, img_ch=3, length=(3, 3, 3), k=7):
        super().__init__()
        c = [width, 2 * width, 4 * width, 8 * width, 16 * width]
        self.Maxpool = nn.MaxPool2d(2, 2)
        self.Conv1 = conv_block(img_ch, c[0])
        for i in range(1, 5):
            setattr(self, f"Conv{i + 1}", conv_block(c[i - 1], c[i]))
        for s in range(3):
            setattr(self, f"ConvMixer{s + 1}", ConvMixerBlock(c[4], length[s], k))
        self.main_decoder = Decoder(width)
        self.aux_decoder1 = Decoder(width)
        self.aux_decoder2 = Decoder(width)
        self.aux_decoder3 = Decoder(width)
        self.perturb = True

    def features(self, x):
        feats = [self.Conv1(x)]
        for i in range(2, 6):
            feats.append(getattr(self, f"Conv{i}")(self.Maxpool(feats[-1])))
        return feats

    def forward(self, x):
        f = self.features(x)
        if not self.training:
            for s in range(1, 4):
                f[4] = getattr(self, f"ConvMixer{s}")(f[4])
            return self.main_decoder(f)
        assert not self.perturb, "this transcription is for the fixture: perturbations off"
        aux1 = self.aux_decoder1(list(f))
        f[4] = self.ConvMixer1(f[4])
        aux2 = self.aux_decoder2(list(f))
        f[4] = self.ConvMixer2(f[4])
        aux3 = self.aux_decoder3(list(f))
        f[4] = self.ConvMixer3(f[4])
        return self.main_decoder(f), aux1, aux2, aux3


def bce_dice(logits, y):
    bce = F.binary_cross_entropy_with_logits(logits, y)
    p = torch.sigmoid(logits).flatten(1)
    t = y.flatten(1)
    dice = (2 * (p * t).sum(1) + 1e-5) / (p.sum(1) + t.sum(1) + 1e-5)
    return 0.5 * bce + (1 - dice.mean())


def decision_margin(state, x, width):
    """The smallest distance, relative to the layer's largest |input|, of any ReLU input from 0
    or of any 2x2 max-pool window's runner-up from its maximum, in a float64 training pass.
    (Windows whose maximum is 0, all zeros after a ReLU, carry no gradient and are skipped.)
    A tiny margin means float32 rounding may flip that decision and move a layer's gradient by
    a few per cent (a 32-pixel plane has few values per channel): such instances are not used."""
    n = MGCC(width)
    n.load_state_dict(state, strict=True)
    n.perturb = False
    n = n.double().train()
    margins = []

    def relu_hook(_, inp, __):
        v = inp[0].detach()
        margins.append((v.abs().min() / v.abs().max().clamp_min(1e-30)).item())

    def pool_hook(_, inp, __):
        v = inp[0].detach()
        w = F.unfold(v.flatten(0, 1).unsqueeze(1), 2, stride=2)  # (B*C) x 4 x windows
        top2 = w.topk(2, dim=1).values
        live = top2[:, 0] > 0  # all-zero windows (after a ReLU) carry no gradient either way
        gap = (top2[:, 0] - top2[:, 1])[live]
        if gap.numel():
            margins.append((gap.min() / v.abs().max().clamp_min(1e-30)).item())

    hooks = []
    for mod in n.modules():
        if isinstance(mod, nn.ReLU):
            hooks.append(mod.register_forward_hook(relu_hook))
        if isinstance(mod, nn.MaxPool2d):
            hooks.append(mod.register_forward_hook(pool_hook))
    with torch.no_grad():
        n(x.double())
    return min(margins)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--check", default=None, help="a safetensors file from `mgcc export`")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    net = MGCC(a.width)
    net.perturb = False
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(2, 3, a.size, a.size))
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    MGCC(a.width).load_state_dict(state, strict=True)

    x = torch.randn(2, 3, a.size, a.size)
    y = (torch.rand(2, 1, a.size, a.size) > 0.6).float()

    def step(dtype):
        """Eval output, train outputs, loss and gradients, computed in `dtype`."""
        n = MGCC(a.width)
        n.load_state_dict(state, strict=True)
        n.perturb = False
        n = n.to(dtype)
        xd, yd = x.to(dtype), y.to(dtype)
        n.eval()
        with torch.no_grad():
            ev = n(xd)
        n.train()
        outs = n(xd)
        sup = sum(bce_dice(o, yd) for o in outs) / 4
        probs = [torch.sigmoid(o) for o in outs]
        cons = sum(((probs[0] - p) ** 2).mean() for p in probs[1:]) / 3
        loss = sup + 0.5 * cons
        loss.backward()
        grads = {k: p.grad.detach().double() for k, p in n.named_parameters()}
        return ev.double(), [o.detach().double() for o in outs], loss.detach().double(), grads

    # The reference is computed in float64. How far PyTorch's own float32 lands from it says
    # how well-conditioned this instance is (tiny widths and planes can make batch-norm
    # gradients ill-conditioned); the test's tolerances are only meaningful when it is small.
    eval_main, outs, loss, grads = step(torch.float64)
    margin = decision_margin(state, x, a.width)
    print(f"smallest ReLU/max-pool decision margin: {margin:.2e} of the layer's scale")
    _, _, _, grads32 = step(torch.float32)
    top = max(g.abs().max().item() for g in grads.values())
    f32_gap = max(((grads32[k] - g).abs().max() / max(g.abs().max().item(), 1e-3 * top)).item()
                  for k, g in grads.items())
    print(f"PyTorch float32 vs float64 gradients: worst relative difference {f32_gap:.2e}")

    tensors = dict(state)
    tensors.update({"x": x, "y": y, "eval_main": eval_main.float(), "loss": loss.float().reshape(1),
                    "torch_f32_vs_f64": torch.tensor([f32_gap], dtype=torch.float32),
                    "decision_margin": torch.tensor([margin], dtype=torch.float32)})
    for name, o in zip(["train_main", "train_aux1", "train_aux2", "train_aux3"], outs):
        tensors[name] = o.float()
    for name, g in grads.items():
        tensors["grad." + name] = g.float()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = a.out or os.path.join(root, "tests", "fixtures", f"mgcc_torch_w{a.width}.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, out)
    print(f"wrote {out}: {len(state)} state tensors, loss {loss.item():.6f}, "
          f"{os.path.getsize(out) / 1e6:.2f} MB")

    # The same state dict as a DataParallel training checkpoint (a pickle with `module.` names
    # under `state_dict`), for the .pth reader of `mgcc import-torch`.
    pth = out.replace(".safetensors", "_state.pth")
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, pth)
    print(f"wrote {pth}: {os.path.getsize(pth) / 1e6:.2f} MB")

    if a.check:
        exported = load_file(a.check)
        other = MGCC(a.width)
        other.load_state_dict(exported, strict=True)
        other.eval()
        with torch.no_grad():
            d = (other(x) - eval_main).abs().max().item()
        print(f"{a.check} loads with strict=True; eval output differs by {d:.3g}")


if __name__ == "__main__":
    main()
