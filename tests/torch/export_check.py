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
77 (CTest's skip) when this Python has no torch or torchvision (scripts/setup.sh installs both).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
    import torchvision
except ImportError as e:
    print(f"export_check: skipped: {e.name} is not installed for {sys.executable} "
          "(scripts/setup.sh installs python3-torch and python3-torchvision)")
    sys.exit(77)

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


def check(hotsplit, out_dir, family, name, tolerance):
    """Rows for `name` exported with PyTorch's constant folding on, then off (see main)."""
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
    x.numpy().astype("<f4").tofile(in_path)
    for folded in (True, False):
        onnx_path = os.path.join(out_dir, f"{name}.onnx")
        out_path = os.path.join(out_dir, f"{name}.out.f32")
        t0 = time.time()
        torch.onnx.export(model, x, onnx_path, opset_version=13, input_names=["input"],
                          output_names=["logits"], do_constant_folding=folded)
        export_s = time.time() - t0
        if os.path.exists(out_path):
            os.remove(out_path)
        run = subprocess.run([hotsplit, "infer", onnx_path, "--input", in_path, "--output",
                              out_path, "--repeat", "1"], capture_output=True, text=True)
        row = {"family": family, "model": name, "opset": 13, "folded_by_pytorch": folded,
               "params": sum(p.numel() for p in model.parameters()),
               "onnx_bytes": os.path.getsize(onnx_path), "export_s": round(export_s, 2),
               "max_abs_logit": scale, "input_effect": input_effect}
        got = np.fromfile(out_path, dtype="<f4") if run.returncode == 0 else None
        if got is None:  # the file stays, to look into
            lines = (run.stderr or run.stdout).strip().splitlines()
            row.update(ok=False, error=lines[-1] if lines else f"exit {run.returncode}")
        elif got.shape != want.shape:
            row.update(ok=False, error=f"{got.size} outputs, PyTorch gave {want.size}")
        else:
            diff = float(np.max(np.abs(got - want))) / scale if scale > 0 else float("inf")
            top1 = bool(np.argmax(got) == np.argmax(want))
            row.update(ok=bool(diff <= tolerance and top1 and input_effect >= MIN_INPUT_EFFECT),
                       rel_diff=diff, top1_agrees=top1, error="")
            if input_effect < MIN_INPUT_EFFECT:
                row["error"] = (f"degenerate: the input decides {input_effect:.1e} of the "
                                "largest logit, the biases the rest, so the check would check "
                                "nothing")
            if folded and name in KEPT_FOR_SPLIT:
                os.replace(onnx_path, os.path.join(out_dir, f"{name}.kept.onnx"))
            else:
                os.remove(onnx_path)  # the large ones (vgg16: 528 MB) are not kept
        yield row


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
            detail = row["error"] or (
                f"rel diff {row['rel_diff']:.1e}, input effect {row['input_effect']:.2f}, top-1 "
                f"{'agrees' if row['top1_agrees'] else 'differs'}")
            print(f"[{len(rows)}/{count}] {family:14} {name:19} "
                  f"{'folded  ' if row['folded_by_pytorch'] else 'unfolded'} "
                  f"{'ok  ' if row['ok'] else 'FAIL'} {detail}", flush=True)
    fields = ["family", "model", "opset", "folded_by_pytorch", "params", "onnx_bytes",
              "export_s", "ok", "max_abs_logit", "input_effect", "rel_diff", "top1_agrees",
              "error"]
    with open(os.path.join(a.out_dir, "torch_check.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(a.out_dir, "torch_check.json"), "w") as f:
        json.dump(rows, f, indent=1)
    failed = [r["model"] + ("" if r["folded_by_pytorch"] else " (unfolded)")
              for r in rows if not r["ok"]]
    print(f"export_check: {len(rows) - len(failed)} of {len(rows)} PyTorch exports match PyTorch"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
