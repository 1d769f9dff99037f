"""Check an ONNX file from `mgcc export --format onnx` with onnxruntime against the published
MGCC network in PyTorch (the transcription in mgcc_fixture.py) holding the same run's weights
from `mgcc export --format safetensors`.

- `onnx.checker.check_model(..., full_check=True)` (structure and shape inference);
- onnxruntime (CPU) on random inputs at batch 1 and 3: `logits` against the PyTorch class in
  eval mode, with the input multiplied by the graph's `mgcc.input_scale` metadata (1/255 for a
  run with the published code's double scaling, which the published code applies in its data
  loader), and `probability` against the sigmoid of those logits.

    mgcc export RUN --format onnx --out run.onnx
    mgcc export RUN --format safetensors --out run.safetensors
    /tmp/torchref/bin/python tools/torch_reference/check_onnx.py run.onnx run.safetensors

Needs torch, safetensors, onnx and onnxruntime. Exit status 1 when a difference exceeds --tol.
CI never runs it.
"""

import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mgcc_fixture import MGCC  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx_file")
    ap.add_argument("weights", help="the same run exported as safetensors")
    ap.add_argument("--size", type=int, default=None,
                    help="input size when the graph's height and width are symbolic")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    model = onnx.load(a.onnx_file)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    scale = float(meta.get("mgcc.input_scale", "1"))
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    print(f"{a.onnx_file}: IR {model.ir_version}, opset {opset}, input {dims}, metadata {meta}")
    channels = dims[1]
    h = dims[2] if isinstance(dims[2], int) else (a.size or int(meta["mgcc.train_size"]))
    w = dims[3] if isinstance(dims[3], int) else (a.size or int(meta["mgcc.train_size"]))

    state = load_file(a.weights)
    width = state["Conv1.conv.0.weight"].shape[0]
    net = MGCC(width, img_ch=channels)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith("aux_decoder") for k in missing), missing
    net.eval()

    session = ort.InferenceSession(a.onnx_file, providers=["CPUExecutionProvider"])
    worst = 0.0
    torch.manual_seed(0)
    for batch in (1, 3):
        x = torch.randn(batch, channels, h, w)
        logits, prob = session.run(["logits", "probability"], {"image": x.numpy()})
        with torch.no_grad():
            ref = net(x * scale).numpy()
        d = float(np.abs(logits - ref).max())
        dp = float(np.abs(prob - 1 / (1 + np.exp(-ref))).max())
        print(f"batch {batch}, {h}x{w}: logits max |diff| {d:.2e} (max |logit| "
              f"{np.abs(ref).max():.2f}), probability {dp:.2e}")
        worst = max(worst, d, dp)
    ok = worst <= a.tol
    print(f"{'OK' if ok else 'FAILED'}: worst difference {worst:.2e} (tolerance {a.tol:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
