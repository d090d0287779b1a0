"""Ship a model trained by fashion_mlp.py: self-contained model files, prediction on one's own
pictures, and ONNX export. Used by fashion_mlp.py (--predict, --export-onnx, --eval-only); it
takes that script's ``build_model`` as an argument rather than importing it.

The model file (model.npz) is a ``tg.save`` archive of ``{"format", "format_version",
"metadata", "state_dict"}``; ``metadata`` holds everything needed to use the model alone: the
architecture, the preprocessing (the training split's mean and std, or per-image), the class
names, the library version and the test accuracy. A file written before this layout (the state
dict alone) still loads when the run's config.json is beside it.

How a picture becomes a Fashion-MNIST input (``load_image``), after Zalando's own recipe for the
data set:

1. read with Pillow (PNG, JPEG, ...), apply the EXIF orientation, put transparent parts on white,
   convert to grey (ITU-R 601 luma);
2. the background is the median of the outermost ring of pixels; in ``auto`` mode the picture is
   inverted when that background is lighter than mid-grey (0.5), because Fashion-MNIST garments
   are light on black (``--invert yes|no`` decides instead);
3. an image of exactly 28x28 is taken as it is (it is framed like Fashion-MNIST already);
   otherwise rows and columns within 5 % of the background are trimmed from the edges, the
   longest side is resized to 28 pixels (Lanczos, aspect ratio kept), and the short side is
   padded equally on both sides with the background to 28;
4. pixel values scale to [0, 1] as the training images do, then the model's preprocessing runs.

A picture with nothing but background (every pixel within 5 % of it) is refused as empty.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

import tinygrad_mlp as tg
from tinygrad_mlp.data import CLASSES, normalize, standardize_per_image

FORMAT = "tinygrad_mlp.fashion_mlp.model"
FORMAT_VERSION = 1
ARCHITECTURE_KEYS = ("hidden", "activation", "batch_norm", "dropout", "input_dropout")
INPUT_SIZE, SIDE = 784, 28
TRIM_TOLERANCE = 0.05
EXIT_USAGE = 2


class DeployError(Exception):
    """A bad model file, image or option: one line on stderr, exit status 2, nothing written."""


def one_line(error) -> str:
    return " ".join(str(error).split())


# ------------------------------------------------------------------------ preprocessing

def fit_preprocessing(config: dict, x_train: np.ndarray) -> dict:
    """What a model of ``config`` expects done to [0, 1] pixels: a plain dict, kept in the file."""
    if config["preprocess"] == "per-image":
        return {"method": "per-image"}
    from tinygrad_mlp.data import fit_normalization
    mean, std = fit_normalization(x_train)
    return {"method": "normalize", "mean": mean, "std": std}


def apply_preprocessing(preprocessing: dict, x: np.ndarray) -> np.ndarray:
    if preprocessing["method"] == "per-image":
        return standardize_per_image(x)
    return normalize(x, preprocessing["mean"], preprocessing["std"])


def preprocessing_ops(preprocessing: dict, x):
    """The same preprocessing written with Tensor ops, so that it goes into an exported graph."""
    if preprocessing["method"] == "per-image":
        mean = x.mean(axis=1, keepdims=True)
        centered = x - mean
        std = (centered * centered).mean(axis=1, keepdims=True).sqrt()
        return centered / tg.maximum(std, 1.0 / math.sqrt(x.shape[1]))
    return (x - float(preprocessing["mean"])) / float(preprocessing["std"])


# ------------------------------------------------------------------------ model files

def architecture_of(config: dict) -> dict:
    hidden = [int(w) for w in str(config["hidden"]).split(",") if w.strip()]
    arch = {k: config[k] for k in ARCHITECTURE_KEYS}
    arch.update(hidden=hidden, input_size=INPUT_SIZE, num_classes=len(CLASSES))
    return arch


def save_model(path, model, config: dict, preprocessing: dict, test_accuracy=None,
               test_loss=None):
    """Write the weights and everything needed to use them alone (atomically, via ``tg.save``)."""
    metadata = {
        "architecture": architecture_of(config),
        "preprocessing": dict(preprocessing),
        "input": f"{SIDE}x{SIDE} grey images, pixel values in [0, 1], garments light on black, "
                 f"flattened to {INPUT_SIZE} values",
        "classes": list(CLASSES),
        "library_version": tg.__version__,
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "config": {k: v for k, v in config.items()
                   if v is None or isinstance(v, (bool, int, float, str))},
    }
    tg.save({"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": metadata,
             "state_dict": model.state_dict()}, path)


def _legacy_metadata(path: Path, defaults: dict) -> dict:
    """An older model.npz holds only the state dict: the architecture comes from the run's
    config.json beside it; the preprocessing statistics are in neither and must be recomputed."""
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        raise DeployError(f"{path} holds weights only (it was written before model files carried "
                          f"their architecture and preprocessing) and there is no config.json "
                          f"beside it to say the architecture; train again or put the run's "
                          f"config.json next to it")
    try:
        saved = json.loads(config_path.read_text())
        if not isinstance(saved, dict):
            raise ValueError(f"expected a JSON object, got {type(saved).__name__}")
    except (OSError, ValueError) as e:
        raise DeployError(f"cannot read {config_path}: {one_line(e)}")
    config = dict(defaults)
    config.update({k: v for k, v in saved.items() if k in defaults})
    return {"architecture": architecture_of(config), "preprocessing": None,
            "classes": list(CLASSES),
            "library_version": None, "test_accuracy": None, "config": config, "legacy": True}


def load_model(path, build_model, defaults: dict):
    """``(model in eval mode, metadata)`` from a model file; every problem is a DeployError."""
    path = Path(path)
    if not path.exists():
        raise DeployError(f"{path}: no such model file")
    if not path.is_file():
        raise DeployError(f"{path} is not a file")
    try:
        obj = tg.load(path)
    except (OSError, ValueError) as e:
        raise DeployError(f"cannot load {path}: {one_line(e)}")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("format_version") != FORMAT_VERSION:
            raise DeployError(f"{path}: model file format version {obj.get('format_version')!r}; "
                              f"this script reads version {FORMAT_VERSION}")
        metadata, state = obj.get("metadata"), obj.get("state_dict")
        missing = [k for k in ("architecture", "preprocessing", "classes")
                   if not isinstance(metadata, dict) or k not in metadata]
        if missing or not isinstance(state, dict):
            raise DeployError(f"{path}: the model file's metadata lacks "
                              f"{', '.join(missing) or 'the state dict'}")
    elif isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        metadata, state = _legacy_metadata(path, defaults), obj
    else:
        raise DeployError(f"{path} is not a model file of fashion_mlp.py (no {FORMAT!r} header "
                          f"and not a state dict)")
    arch = metadata["architecture"]
    if arch.get("input_size") != INPUT_SIZE or arch.get("num_classes") != len(CLASSES):
        raise DeployError(f"{path}: a model of another shape ({arch.get('input_size')} inputs, "
                          f"{arch.get('num_classes')} classes); this script needs "
                          f"{INPUT_SIZE} inputs ({SIDE}x{SIDE} images) and {len(CLASSES)} classes")
    config = dict(defaults)
    config.update({k: arch[k] for k in ARCHITECTURE_KEYS if k in arch})
    config["hidden"] = ",".join(str(w) for w in arch["hidden"])
    try:
        model = build_model(config, np.random.default_rng(0))
        model.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as e:
        raise DeployError(f"{path}: the weights do not fit the architecture its metadata "
                          f"describes ({config['hidden']} hidden): {one_line(e)}")
    model.eval()
    return model, metadata


# ------------------------------------------------------------------------ images

def _grey_pixels(img) -> np.ndarray:
    """Grey values in [0, 1] as float32. 16-bit and 32-bit greys are scaled by their own range
    (Pillow's conversion to 8 bits would clip them to white)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a / scale, 0, 1).astype(np.float32)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float32)
        return np.clip(a if a.max() <= 1 else a / np.float32(255.0), 0, 1).astype(np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)


def _open_image(path: Path):
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise DeployError("--predict reads images with Pillow, which comes with matplotlib: "
                          "pip install matplotlib (or pillow)") from None
    if not path.exists():
        raise DeployError(f"{path}: no such image file")
    if not path.is_file():
        raise DeployError(f"{path} is not a file")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.width == 0 or img.height == 0:
                raise DeployError(f"{path}: an empty image ({img.width}x{img.height} pixels)")
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                img = img.convert("RGBA")
                white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, img)
            return _grey_pixels(img), Image
    except UnidentifiedImageError:
        raise DeployError(f"{path}: not an image Pillow can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError as e:
        raise DeployError(f"{path}: refused as too large to decode safely: {one_line(e)}") \
            from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DeployError(f"{path}: cannot read the image: {one_line(e)}") from None


def load_image(path, invert: str = "auto") -> tuple:
    """``(pixels, inverted)``: a 28x28 float32 array in [0, 1] prepared as the module docstring
    says, and whether it was inverted."""
    path = Path(path)
    x, Image = _open_image(path)
    ring = np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])
    background = float(np.median(ring))
    inverted = invert == "yes" or (invert == "auto" and background > 0.5)
    if inverted:
        x = np.float32(1.0) - x
        background = 1.0 - background
    if x.shape == (SIDE, SIDE):
        if np.all(np.abs(x - background) <= TRIM_TOLERANCE):
            raise DeployError(f"{path}: an empty image (every pixel is background)")
        return x, inverted
    content = np.abs(x - background) > TRIM_TOLERANCE
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if rows.size == 0:
        raise DeployError(f"{path}: an empty image (every pixel is background)")
    x = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = x.shape
    scale = SIDE / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32)).resize(
        (new_w, new_h), Image.LANCZOS)
    x = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    out = np.full((SIDE, SIDE), background, dtype=np.float32)
    top, left = (SIDE - new_h) // 2, (SIDE - new_w) // 2
    out[top:top + new_h, left:left + new_w] = x
    return out, inverted


# ------------------------------------------------------------------------ commands

def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predict_arrays(model, metadata: dict, pixels: np.ndarray, preprocessing=None) -> np.ndarray:
    """Class probabilities for ``(N, 784)`` pixels in [0, 1]."""
    preprocessing = preprocessing or metadata["preprocessing"]
    with tg.no_grad():
        logits = model(tg.Tensor(apply_preprocessing(preprocessing, pixels))).numpy()
    return softmax(logits.astype(np.float64))


def legacy_preprocessing(config: dict, data_dir, download: bool) -> dict:
    """An older model file's normalisation statistics, recomputed from the training split its
    config.json describes (the same split and numbers training used)."""
    from tinygrad_mlp.data import FashionMNISTError, load_fashion_mnist, to_float, train_val_split
    if config["preprocess"] == "per-image":
        return {"method": "per-image"}
    try:
        ds = load_fashion_mnist(root=data_dir, download=download)
    except FashionMNISTError as e:
        raise DeployError(f"the model file was written before model files carried their "
                          f"preprocessing, so its normalisation statistics must be recomputed "
                          f"from the training data, which was not found: {one_line(e)}")
    x_train, _, _, _ = train_val_split(to_float(ds.train_images), ds.train_labels,
                                       config["val_fraction"],
                                       np.random.default_rng(config["seed"]))
    return fit_preprocessing(config, x_train)


def check_export_path(path) -> Path:
    """Refuse an ONNX path that exists or whose directory does not, before any work is done."""
    path = Path(path)
    if path.exists():
        raise DeployError(f"--export-onnx: {path} already exists; nothing was overwritten "
                          f"(remove it or choose another path)")
    if not path.parent.is_dir():
        raise DeployError(f"--export-onnx: the directory {path.parent} does not exist")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise DeployError("--export-onnx needs the onnx extra: pip install "
                          "'tinygrad_mlp[onnx]'") from None
    return path


def export_onnx(model, metadata: dict, path, preprocessing=None):
    """Write the model with its preprocessing in front and a softmax behind: the ONNX graph takes
    ``image`` (N, 784) pixels in [0, 1] and gives ``probabilities`` (N, 10)."""
    from tinygrad_mlp.onnx import export
    preprocessing = preprocessing or metadata["preprocessing"]

    def deployed(x):
        return model(preprocessing_ops(preprocessing, x)).softmax(axis=-1)

    example = np.zeros((2, INPUT_SIZE), dtype=np.float32)
    example[1] = np.linspace(0, 1, INPUT_SIZE, dtype=np.float32)
    info = {"classes": json.dumps(list(metadata["classes"])),
            "preprocessing": json.dumps(preprocessing),
            "input": "(N, 784) float32: 28x28 grey pixels in [0, 1], garments light on black",
            "test_accuracy": json.dumps(metadata.get("test_accuracy"))}
    proto = export(deployed, example, None, input_names=["image"],
                   output_names=["probabilities"], dynamic_batch=True)
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    from tinygrad_mlp.serialization import atomic_write
    with atomic_write(os.fspath(path), "wb") as f:
        f.write(proto.SerializeToString())


def format_prediction(path, probabilities, classes, inverted: bool) -> str:
    top = np.argsort(-probabilities, kind="stable")[:3]
    lines = [f"{path}{'  (inverted: light background)' if inverted else ''}"]
    width = max(len(classes[i]) for i in top)
    for rank, i in enumerate(top, 1):
        lines.append(f"  {rank}. {classes[i]:<{width}}  {100 * probabilities[i]:5.1f} %")
    return "\n".join(lines)


def run_predict(args, build_model, defaults: dict) -> int:
    """``--predict MODEL.npz IMAGE...``: every input is checked before anything is printed."""
    try:
        model_path, images = Path(args.predict[0]), [Path(p) for p in args.predict[1:]]
        if not images:
            raise DeployError("--predict needs a model file and at least one image: "
                              "--predict MODEL.npz IMAGE [IMAGE ...]")
        onnx_path = check_export_path(args.export_onnx) if args.export_onnx else None
        model, metadata = load_model(model_path, build_model, defaults)
        problems, loaded = [], []
        for p in images:
            try:
                loaded.append((p,) + load_image(p, args.invert))
            except DeployError as e:
                problems.append(one_line(e))
        if problems:
            for message in problems:
                print(f"fashion_mlp.py: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        preprocessing = metadata["preprocessing"]
        if preprocessing is None:
            preprocessing = legacy_preprocessing(metadata["config"], args.data_dir,
                                                 not args.no_download)
        pixels = np.stack([x.reshape(-1) for _, x, _ in loaded])
        probabilities = predict_arrays(model, metadata, pixels, preprocessing)
        if onnx_path is not None:
            export_onnx(model, metadata, onnx_path, preprocessing)
    except DeployError as e:
        print(f"fashion_mlp.py: error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    classes = metadata["classes"]
    if args.json:
        out = [{"image": str(p), "inverted": inv,
                "top": [{"class": classes[i], "index": int(i), "probability": float(pr[i])}
                        for i in np.argsort(-pr, kind="stable")[:3]]}
               for (p, _, inv), pr in zip(loaded, probabilities)]
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(format_prediction(p, pr, classes, inv)
                        for (p, _, inv), pr in zip(loaded, probabilities)))
    if onnx_path is not None:
        print(f"ONNX model written to {onnx_path}", file=sys.stderr if args.json else sys.stdout)
    return 0


def add_arguments(parser):
    parser.add_argument("--predict", nargs="+", metavar="PATH",
                        help="MODEL.npz IMAGE [IMAGE ...]: classify PNG/JPEG pictures")
    parser.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                        help="--predict: invert the picture (auto: when its border is light)")
    parser.add_argument("--json", action="store_true", help="--predict: print JSON")
    parser.add_argument("--export-onnx", metavar="PATH",
                        help="write the model as ONNX (with --eval-only or --predict, or after "
                             "training)")
