#!/usr/bin/python3
"""PyTorch's own ONNX exports against PyTorch's own outputs.

For each CNN family, a torchvision model (seeded weights; torchvision's initialisation; eval
mode) is exported by torch.onnx.export at opset 13, run by PyTorch on a seeded input, and run
by `hotsplit infer` on the same input. hotsplit's logits must match PyTorch's to a tolerance
of the largest logit's magnitude: hotsplit folds BatchNormalization into the convolution and
runs convolutions as im2col + GEMM, so it sums in another order than PyTorch.

usage: export_check.py HOTSPLIT OUT_DIR [--models a,b,...] [--tolerance T]
Writes OUT_DIR/torch_check.csv and .json, and keeps OUT_DIR/NAME.kept.onnx of the models
test_split checks (KEPT_FOR_SPLIT); exits 0 when every model matches, 1 when one does not,
77 (CTest's skip) when this Python has no torch or torchvision (scripts/setup.sh --tests
installs both), or 1 then if HS_REQUIRE_TORCH=1.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
    import torchvision
except ImportError as e:
    # scripts/test.sh sets HS_REQUIRE_TORCH=1: there, where it installs them, a missing
    # PyTorch fails the test instead of skipping it.
    required = os.environ.get("HS_REQUIRE_TORCH") == "1"
    print(f"export_check: {'failed' if required else 'skipped'}: {e.name or e} is not "
          f"installed for {sys.executable} (scripts/setup.sh --tests installs python3-torch "
          "and python3-torchvision)")
    sys.exit(1 if required else 77)

# One or more models per family the issue names, the smallest standard variant first.
FAMILIES = [
    ("ResNet", "resnet18"), ("ResNet", "resnet50"),
    ("MobileNet v2", "mobilenet_v2"),
    ("MobileNet v3", "mobilenet_v3_small"), ("MobileNet v3", "mobilenet_v3_large"),
    ("EfficientNet", "efficientnet_b0"),
    ("VGG", "vgg11_bn"), ("VGG", "vgg16"),
    ("AlexNet", "alexnet"),
    ("SqueezeNet", "squeezenet1_0"), ("SqueezeNet", "squeezenet1_1"),
    ("ShuffleNet v2", "shufflenet_v2_x1_0"),
    ("GoogLeNet", "googlenet"),
    ("DenseNet", "densenet121"),
    ("MnasNet", "mnasnet1_0"),
    ("RegNet", "regnet_x_400mf"), ("RegNet", "regnet_y_400mf"),
]


# The least share of the largest logit that the input must decide for a check to count.
MIN_INPUT_EFFECT = 0.05


# Exports kept in OUT_DIR (PyTorch's default, folded one) for test_split, which checks every
# cut of them: the branchy graphs the zoo does not have (inception branches, channel split
# and shuffle, fire modules, squeeze-and-excitation).
KEPT_FOR_SPLIT = {"googlenet", "shufflenet_v2_x1_0", "squeezenet1_1", "mobilenet_v3_small",
                  "regnet_y_400mf"}


def build(name):
    """torchvision's model `name` with its own initialisation, seeded, in eval mode, its
    BatchNorm statistics measured on random inputs. With the statistics at their initial
    values (mean 0, variance 1) the activations of most of these models shrink layer by layer
    until the logits are the last layer's bias alone, which no input changes, and a check
    of them would check nothing but that bias."""
    torch.manual_seed(1)
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a plain mean over the batches below
        model.train()
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(4, 3, 224, 224))
    return model.eval()


def run_export(hotsplit, onnx_path, in_path, out_path, want, scale, input_effect, tolerance):
    """Runs `hotsplit infer` on one export and returns the row's verdict fields."""
    if os.path.exists(out_path):
        os.remove(out_path)
    try:
        run = subprocess.run([hotsplit, "infer", onnx_path, "--input", in_path, "--output",
                              out_path, "--repeat", "1"], capture_output=True, text=True)
    except OSError as e:
        return {"ok": False, "error": f"{hotsplit}: {e.strerror}"}
    if run.returncode != 0 or not os.path.exists(out_path):
        lines = (run.stderr or run.stdout).strip().splitlines()
        return {"ok": False, "error": lines[-1] if lines else f"exit {run.returncode}, no output"}
    got = np.fromfile(out_path, dtype="<f4")
    if got.shape != want.shape:
        return {"ok": False, "error": f"{got.size} outputs, PyTorch gave {want.size}"}
    diff = float(np.max(np.abs(got - want))) / scale if scale > 0 else float("nan")
    top1 = bool(np.argmax(got) == np.argmax(want))
    verdict = {"ok": bool(diff <= tolerance and top1 and input_effect >= MIN_INPUT_EFFECT),
               "rel_diff": diff if np.isfinite(diff) else None, "top1_agrees": top1,
               "error": ""}
    if not np.isfinite(diff):
        verdict["error"] = "the logits are not finite, or PyTorch's are all 0"
    elif input_effect < MIN_INPUT_EFFECT:
        verdict["error"] = (f"degenerate: the input decides {input_effect:.1e} of the largest "
                            "logit, the biases the rest, so the check would check nothing")
    return verdict


def check(hotsplit, out_dir, family, name, tolerance):
    """Rows for `name` exported with PyTorch's constant folding on, then off (see main). An
    unfolded export byte for byte the same as the folded one is not run again."""
    kept = os.path.join(out_dir, f"{name}.kept.onnx")
    if os.path.exists(kept):
        os.remove(kept)  # test_split must never check a stale file
    model = build(name)
    torch.manual_seed(2)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = model(x).numpy().astype(np.float32).ravel()
        blank = model(torch.zeros(1, 3, 224, 224)).numpy().astype(np.float32).ravel()
    scale = float(np.max(np.abs(want)))
    # How much of the logits the input decides, against an all-zero input: near 0, the
    # logits are what the biases alone give, and the check below would pass whatever the
    # layers computed from the input.
    input_effect = float(np.max(np.abs(want - blank))) / scale if scale > 0 else 0.0
    in_path = os.path.join(out_dir, f"{name}.in.f32")
    out_path = os.path.join(out_dir, f"{name}.out.f32")
    x.numpy().astype("<f4").tofile(in_path)
    params = sum(p.numel() for p in model.parameters())
    folded_digest = None
    try:
        for folded in (True, False):
            onnx_path = os.path.join(out_dir, f"{name}.{'folded' if folded else 'unfolded'}.onnx")
            row = {"family": family, "model": name, "opset": 13, "folded_by_pytorch": folded,
                   "params": params, "max_abs_logit": scale, "input_effect": input_effect}
            t0 = time.time()
            try:
                torch.onnx.export(model, x, onnx_path, opset_version=13, input_names=["input"],
                                  output_names=["logits"], do_constant_folding=folded)
            except Exception as e:  # PyTorch's exporter raises many kinds
                row.update(ok=False, error=f"torch.onnx.export: {type(e).__name__}: {e}")
                yield row
                continue
            with open(onnx_path, "rb") as f:
                content = f.read()
            digest = hashlib.sha256(content).digest()
            row.update(onnx_bytes=len(content), onnx_nodes=count_nodes(content),
                       export_s=round(time.time() - t0, 2))
            del content  # vgg16's is 528 MB
            if not folded and digest == folded_digest:
                os.remove(onnx_path)
                row.update(ok=True, same_as_folded=True, error="")
                yield row
                continue
            row["same_as_folded"] = False
            folded_digest = digest if folded else None
            row.update(run_export(hotsplit, onnx_path, in_path, out_path, want, scale,
                                  input_effect, tolerance))
            if row["ok"] and folded and name in KEPT_FOR_SPLIT:
                os.replace(onnx_path, kept)
            elif row["ok"]:
                os.remove(onnx_path)  # the large ones (vgg16: 528 MB) are not kept
            # a file hotsplit failed on stays, to look into
            yield row
    finally:
        for path in (in_path, out_path):
            if os.path.exists(path):
                os.remove(path)


def count_nodes(content):
    """The number of nodes in an ONNX file's graph, read off the protobuf wire format
    (ModelProto.graph is field 7, GraphProto.node field 1) without an ONNX package."""
    def fields(b):
        i = 0
        while i < len(b):
            key, i = varint(b, i)
            kind = key & 7
            if kind == 0:
                _, i = varint(b, i)
                yield key >> 3, None
            elif kind == 2:
                size, i = varint(b, i)
                yield key >> 3, b[i:i + size]
                i += size
            elif kind in (1, 5):
                i += 8 if kind == 1 else 4
                yield key >> 3, None
            else:
                raise ValueError(f"wire type {kind}")

    def varint(b, i):
        value = shift = 0
        while True:
            byte = b[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    content = memoryview(content)  # slices without copying the weights
    graph = next(v for f, v in fields(content) if f == 7)
    return sum(1 for f, _ in fields(graph) if f == 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hotsplit")
    ap.add_argument("out_dir")
    ap.add_argument("--models", default="")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    wanted = [m for m in a.models.split(",") if m]
    unknown = [m for m in wanted if m not in {n for _, n in FAMILIES}]
    if unknown:
        print(f"export_check: --models: unknown model {unknown[0]}", file=sys.stderr)
        return 2
    os.makedirs(a.out_dir, exist_ok=True)
    torch.set_num_threads(1)
    print(f"export_check: torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"opset 13, tolerance {a.tolerance:g} of the largest |logit|", flush=True)
    rows = []
    # Each model twice: as torch.onnx.export writes it by default (constants folded), and
    # unfolded, with the Shape/Gather/Unsqueeze/Concat chains that feed Reshape left for
    # hotsplit's loader to fold.
    todo = [(f, n) for f, n in FAMILIES if not wanted or n in wanted]
    count = 2 * len(todo)
    for family, name in todo:
        for row in check(a.hotsplit, a.out_dir, family, name, a.tolerance):
            rows.append(row)
            if row.get("same_as_folded"):
                detail = "the same file as the folded export: not run again"
            else:
                detail = row["error"] or (
                    f"rel diff {row['rel_diff']:.1e}, input effect {row['input_effect']:.2f}, "
                    f"top-1 {'agrees' if row['top1_agrees'] else 'differs'}, "
                    f"{row['onnx_nodes']} nodes")
            print(f"[{len(rows)}/{count}] {family:14} {name:19} "
                  f"{'folded  ' if row['folded_by_pytorch'] else 'unfolded'} "
                  f"{'ok  ' if row['ok'] else 'FAIL'} {detail}", flush=True)
    fields = ["family", "model", "opset", "folded_by_pytorch", "same_as_folded", "params",
              "onnx_bytes", "onnx_nodes", "export_s", "ok", "max_abs_logit", "input_effect",
              "rel_diff", "top1_agrees", "error"]
    with open(os.path.join(a.out_dir, "torch_check.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(a.out_dir, "torch_check.json"), "w") as f:
        finite = [{k: None if isinstance(v, float) and not math.isfinite(v) else v
                   for k, v in r.items()} for r in rows]
        json.dump(finite, f, indent=1, allow_nan=False)
    failed = [r["model"] + ("" if r["folded_by_pytorch"] else " (unfolded)")
              for r in rows if not r["ok"]]
    distinct = [r for r in rows if not r.get("same_as_folded")]
    print(f"export_check: {len(distinct) - len(failed)} of {len(distinct)} distinct PyTorch "
          f"exports of {len(todo)} models match PyTorch"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
