"""Explanations, measured (issue 15): pointing game, faithfulness, Grad-CAM speed.

    python benchmarks/explain_quality.py --run /tmp/shapes-demo        # after `cnnlab train shapes --out ...`
    python benchmarks/explain_quality.py --run RUN --skip-quality      # the speed part only

Prints one JSON line per measurement.

- Pointing game: on the 1,000 `shapes` test images (regenerated with their masks, checked to be
  the very images `load_shapes('test')` gives), the map of the true class is computed and its
  maximum (first arg-max, at the input's size) counts as a hit when it falls on the object's
  mask. Baseline: a uniform random point, whose expected hit rate is the mean area fraction of
  the objects (also drawn once, seeded, as a check).
- Faithfulness: the 20% most attributed pixels of each image (ties broken at random) are
  replaced by the image's mean colour; the same for 20% random pixels. Reported: the mean drop
  of the true class's probability for each method, against the random drop.
- Speed: Grad-CAM of 64 CIFAR-size (32x32x3) images on resnet20, against one forward + backward
  pass (cross-entropy, parameter gradients) of the same batch; interleaved repeats, medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import numpy as np
import torch


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def shapes_test(n: int):
    from cnnlab.data.shapes import generate_shapes, load_shapes

    images, labels, masks = generate_shapes(n, seed=0, stream=1, masks=True)
    reference = load_shapes("test", n=n)
    assert np.array_equal(reference.data, images) and np.array_equal(reference.targets, labels)
    return images, labels, masks


def _dilate(masks: np.ndarray, pixels: int) -> np.ndarray:
    t = torch.from_numpy(masks[:, None].astype(np.float32))
    return torch.nn.functional.max_pool2d(t, 2 * pixels + 1, 1, pixels)[:, 0].numpy() > 0


def pointing_game(model, x, labels, masks, methods, rng):
    """Hit: the map's maximum on the object's mask (also within 2 pixels of it); energy: the
    share of the map's sum that lies on the mask. Random baselines: the area fractions."""
    from cnnlab.explain import explain

    n = len(masks)
    flat = masks.reshape(n, -1)
    near = _dilate(masks, 2).reshape(n, -1)
    h, w = masks.shape[1:]
    ry, rx = rng.integers(0, h, n), rng.integers(0, w, n)
    drawn = masks[np.arange(n), ry, rx].mean()
    emit(measure="pointing_game", method="random point", hit_rate=float(flat.mean(1).mean()),
         hit_rate_2px=float(near.mean(1).mean()), energy_inside=float(flat.mean(1).mean()),
         drawn_once=float(drawn), images=n)
    maps = {}
    for method in methods:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = explain(model, x, method, target=labels.tolist())
        seconds = time.perf_counter() - start
        heat = result.maps.reshape(n, -1)
        peak = heat.argmax(1)  # the first maximum
        valid = ~np.array(result.empty)
        hits = flat[np.arange(n), peak] & valid
        hits_near = near[np.arange(n), peak] & valid
        energy = (heat * flat).sum(1) / np.maximum(heat.sum(1), 1e-12)
        maps[method] = result.maps
        emit(measure="pointing_game", method=method, layer=result.layer, hit_rate=float(hits.mean()),
             hit_rate_2px=float(hits_near.mean()), energy_inside=float(energy[valid].mean()) if valid.any() else 0.0,
             empty_maps=int((~valid).sum()), seconds=round(seconds, 2), images=n)
    return maps


def _probabilities(model, x, labels):
    with torch.no_grad():
        p = model.predict_tensor(x)
    return p[torch.arange(len(labels)), torch.as_tensor(labels)].numpy()


def faithfulness(model, x, labels, maps, rng, fraction=0.2):
    n, c, h, w = x.shape
    k = int(round(fraction * h * w))
    base = _probabilities(model, x, labels)
    fill = x.mean((2, 3), keepdim=True).expand_as(x)

    def drop(order: np.ndarray) -> float:
        keep = np.ones((n, h * w), bool)
        np.put_along_axis(keep, order[:, :k], False, axis=1)
        mask = torch.from_numpy(keep.reshape(n, 1, h, w))
        deleted = torch.where(mask, x, fill)
        return float((base - _probabilities(model, deleted, labels)).mean())

    random_order = np.argsort(rng.random((n, h * w)), axis=1)
    emit(measure="faithfulness", method="random 20%", probability_drop=drop(random_order),
         base_probability=float(base.mean()), images=n)
    for method, heat in maps.items():
        ties = rng.random((n, h * w)) * 1e-6  # below any real difference of a map in [0, 1]
        order = np.argsort(-(heat.reshape(n, -1) + ties), axis=1)
        emit(measure="faithfulness", method=method, probability_drop=drop(order), images=n)


def speed(repeats: int) -> None:
    from cnnlab.explain import gradcam
    from cnnlab.models import create

    torch.manual_seed(0)
    model = create("resnet20", num_classes=10).eval()
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))

    def forward_backward():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    runs = {"forward+backward": forward_backward,
            "gradcam (default layer)": lambda: gradcam(model, x),
            "gradcam (layer given)": lambda: gradcam(model, x, layer="features")}
    for fn in runs.values():  # warm-up
        fn()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():  # interleaved: the same machine load for each
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["forward+backward"])
    for name, values in times.items():
        emit(measure="speed", model="resnet20", images=64, what=name, median_ms=round(1000 * statistics.median(values), 1),
             ratio_to_forward_backward=round(statistics.median(values) / ref, 3), repeats=repeats,
             threads=torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="/tmp/shapes-demo", help="a run trained on shapes (make demo's model)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--methods", default="cam,gradcam,gradcam++,guided-gradcam,saliency,integrated-gradients,occlusion")
    parser.add_argument("--pointing-methods", default="cam,gradcam,gradcam++")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    emit(measure="machine", platform=platform.platform(), processor=platform.processor(), torch=torch.__version__,
         threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    if not args.skip_quality:
        from cnnlab.inference import load

        model = load(args.run)
        images, labels, masks = shapes_test(args.images)
        x = model.prepare(images).float()
        with torch.no_grad():
            accuracy = float((model.predict_tensor(x).argmax(1).numpy() == labels).mean())
        emit(measure="model", run=args.run, test_accuracy=accuracy, images=len(labels))
        rng = np.random.default_rng(0)
        methods = [m for m in args.methods.split(",") if m]
        pointing = [m for m in args.pointing_methods.split(",") if m]
        maps = pointing_game(model, x, labels, masks, list(dict.fromkeys(pointing + methods)), rng)
        faithfulness(model, x, labels, {m: maps[m] for m in methods}, rng)
    if not args.skip_speed:
        speed(args.repeats)


if __name__ == "__main__":
    main()
