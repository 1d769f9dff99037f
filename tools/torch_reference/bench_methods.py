#!/usr/bin/env python3
"""PyTorch reference timing of one training step of each semi-supervised method on the MGCC
network, for side-by-side comparison with `mgcc bench --method NAME`.

The network classes (MGCC, Decoder, ...) and helpers (bce_dice, feature_dropout,
feature_noise) are imported from the yardstick script (../shared/bench/torch_mgcc.py relative
to the repository root by default, see --yardstick); nothing of it is copied here.

Run:  /tmp/torchref/bin/python tools/torch_reference/bench_methods.py --method cct
Prints one JSON line per training step (step 0 is the warm-up) and a summary line last.
"""
import argparse
import copy
import importlib.util
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

METHODS = ("supervised", "mean-teacher", "ua-mt", "cct", "cps", "urpc", "mgcc")
DEFAULT_YARDSTICK = Path(__file__).resolve().parents[2] / ".." / "shared" / "bench" / "torch_mgcc.py"


def load_yardstick(path):
    path = Path(path).resolve()
    if not path.is_file():
        sys.exit(f"yardstick not found: {path}")
    spec = importlib.util.spec_from_file_location("torch_mgcc_yardstick", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_params(*nets):
    return sum(p.numel() for n in nets for p in n.parameters() if p.requires_grad)


def build(ys, width, dev, aux=False):
    """An MGCC network holding only what a method uses: the aux decoders are dropped unless asked."""
    model = ys.MGCC(width=width)
    if not aux:
        model.aux = nn.ModuleList()
    return model.to(dev).train()


def main_path(model, x):
    """The inference path (encoder -> all three mixer stages on f[4] -> main decoder), any mode."""
    f = model.encode(x)
    for m in model.mixers:
        f[4] = m(f[4])
    return model.main(f)


def decoder_levels(dec, feats):
    """Decoder.forward of the yardstick, level by level: returns the decoder state after the
    fuse levels at size/8 (8w), size/4 (4w) and size/2 (2w), and the final logits."""
    skips = [g(f) for g, f in zip(dec.gates, feats[:4])]
    d = feats[4]
    states = {}
    for i in reversed(range(4)):
        d = dec.fuse[i](torch.cat([skips[i], dec.ups[i](d)], 1))
        states[i] = d
    return states[3], states[2], states[1], dec.head(d)


def draw_inputs(a, dev):
    """The yardstick's inputs; drawn after the networks are built, in the yardstick's order."""
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev)
    y = (torch.rand(a.batch, 1, a.size, a.size, device=dev) > 0.7).float()
    return x, y


def make_step(a, ys, dev):
    """Builds the method's networks, then draws the inputs; returns (step function returning
    the loss as a float, learnable parameter count)."""
    half = a.batch // 2
    x = y = None
    sig = torch.sigmoid
    bce_dice = ys.bce_dice

    def sgd(params):
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)

    def sup_loss(outs):
        return sum(bce_dice(o[:half], y[:half]) for o in outs) / len(outs)

    def noisy(t):
        return t + torch.clamp(torch.randn_like(t) * 0.1, -0.2, 0.2)

    if a.method == "supervised":
        net = build(ys, a.width, dev)
        opt = sgd(net.parameters())
        x, y = draw_inputs(a, dev)

        def step():
            out = main_path(net, x)
            loss = bce_dice(out[:half], y[:half])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return step, count_params(net)

    if a.method in ("mean-teacher", "ua-mt"):
        student = build(ys, a.width, dev)
        teacher = copy.deepcopy(student).train()
        for p in teacher.parameters():
            p.requires_grad_(False)
        opt = sgd(student.parameters())
        x, y = draw_inputs(a, dev)
        alpha = 0.99
        uncertainty = a.method == "ua-mt"

        def step():
            out = main_path(student, x)
            with torch.no_grad():
                t = main_path(teacher, noisy(x[half:]))
            sup = bce_dice(out[:half], y[:half])
            if uncertainty:
                r = x[half:].repeat(2, 1, 1, 1)
                preds = []
                for _ in range(4):
                    with torch.no_grad():
                        preds.append(main_path(teacher, noisy(r)))
                p = sig(torch.cat(preds)).reshape(8, half, 1, a.size, a.size).mean(0)
                unc = -(p * torch.log(p + 1e-6) + (1 - p) * torch.log(1 - p + 1e-6))
                mask = (unc < 0.75 * math.log(2)).float()
                sq = 2 * (sig(out[half:]) - sig(t)) ** 2
                cons = (mask * sq).sum() / (2 * mask.sum() + 1e-16)
            else:
                cons = torch.mean((sig(out[half:]) - sig(t)) ** 2)
            loss = sup + 0.1 * cons
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for tp, sp in zip(teacher.parameters(), student.parameters()):
                    tp.data.mul_(alpha).add_(sp.data, alpha=1 - alpha)
            return loss.item()

        return step, count_params(student)

    if a.method == "cct":
        net = build(ys, a.width, dev, aux=True)
        opt = sgd(net.parameters())
        x, y = draw_inputs(a, dev)

        def step():
            f = net.encode(x)
            for m in net.mixers:
                f[4] = m(f[4])
            main = net.main(f)
            a1 = net.aux[0]([ys.feature_noise(t) for t in f])
            a2 = net.aux[1]([F.dropout(t, 0.3) for t in f])
            a3 = net.aux[2]([ys.feature_dropout(t) for t in f])
            sup = sup_loss([main, a1, a2, a3])
            pm = sig(main[half:])
            cons = sum(torch.mean((pm - sig(o[half:])) ** 2) for o in (a1, a2, a3)) / 3
            loss = sup + 0.1 * cons
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return step, count_params(net)

    if a.method == "cps":
        n1 = build(ys, a.width, dev)
        n2 = build(ys, a.width, dev)
        opt1, opt2 = sgd(n1.parameters()), sgd(n2.parameters())
        x, y = draw_inputs(a, dev)

        def step():
            o1 = main_path(n1, x)
            o2 = main_path(n2, x)
            l1 = bce_dice(o1[:half], y[:half])
            l2 = bce_dice(o2[:half], y[:half])
            p1 = (sig(o1[half:]) > 0.5).float().detach()
            p2 = (sig(o2[half:]) > 0.5).float().detach()
            ps1 = F.binary_cross_entropy_with_logits(o1[half:], p2)
            ps2 = F.binary_cross_entropy_with_logits(o2[half:], p1)
            loss = l1 + l2 + 0.1 * (ps1 + ps2)
            opt1.zero_grad()
            opt2.zero_grad()
            loss.backward()
            opt1.step()
            opt2.step()
            return loss.item()

        return step, count_params(n1, n2)

    if a.method == "urpc":
        net = build(ys, a.width, dev)
        w = a.width
        heads = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in (8 * w, 4 * w, 2 * w)).to(dev).train()
        opt = sgd(list(net.parameters()) + list(heads.parameters()))
        x, y = draw_inputs(a, dev)
        size = (a.size, a.size)

        def step():
            f = net.encode(x)
            for m in net.mixers:
                f[4] = m(f[4])
            d8, d4, d2, main = decoder_levels(net.main, f)
            s3 = F.interpolate(heads[0](F.dropout(d8, 0.5)), size=size)
            s2 = F.interpolate(heads[1](ys.feature_dropout(d4)), size=size)
            s1 = F.interpolate(heads[2](ys.feature_noise(d2)), size=size)
            outputs = [main, s1, s2, s3]
            sup = sup_loss(outputs)
            u = [o[half:] for o in outputs]
            probs = [sig(o) for o in u]
            avg = sum(probs) / 4
            cs = []
            for o, p in zip(u, probs):
                v = (torch.xlogy(avg, avg) - avg * F.logsigmoid(o)
                     + torch.xlogy(1 - avg, 1 - avg) - (1 - avg) * F.logsigmoid(-o))
                e = torch.exp(-v)
                cs.append(torch.mean((avg - p) ** 2 * e) / (torch.mean(e) + 1e-8) + torch.mean(v))
            cons = sum(cs) / 4
            loss = sup + 0.1 * cons
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return step, count_params(net, heads)

    if a.method == "mgcc":
        net = build(ys, a.width, dev, aux=True)
        opt = sgd(net.parameters())
        x, y = draw_inputs(a, dev)

        def step():  # the yardstick's step, consistency weight 0.5
            outs = net(x)
            sup = sup_loss(outs)
            pm = sig(outs[0][half:])
            cons = sum(((pm - sig(o[half:])) ** 2).mean() for o in outs[1:]) / 3
            loss = sup + 0.5 * cons
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        return step, count_params(net)

    raise ValueError(a.method)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--width", type=int, default=16, help="first-level channels")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="first half labelled, second half unlabelled")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps after one warm-up")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--yardstick", default=str(DEFAULT_YARDSTICK), help="path of torch_mgcc.py")
    a = ap.parse_args()
    if a.batch < 2 or a.batch % 2:
        sys.exit("--batch must be even and at least 2")

    ys = load_yardstick(a.yardstick)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    step, params = make_step(a, ys, dev)

    times = []
    for i in range(a.steps + 1):
        sync()
        t0 = time.perf_counter()
        loss = step()
        sync()
        dt = time.perf_counter() - t0
        if i > 0:
            times.append(dt)
        print(json.dumps({"train_step": i, "seconds": round(dt, 4), "loss": round(loss, 5)}), flush=True)

    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "method": a.method, "device": a.device, "params": params,
        "width": a.width, "size": a.size, "batch": a.batch, "threads": a.threads,
        "train_step_median_s": round(statistics.median(times), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
