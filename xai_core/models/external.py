"""Bring your own model: explain a video network the zoo did not train.

Sources ``load_user_model`` accepts (``xai_core.load_model`` tries them after the zoo names):

* a TorchScript file (``torch.jit.save``): a zip archive holding TorchScript code;
* ``path/to/file.py:factory`` or ``path/to/package:factory`` plus optional ``weights``: the
  user's code is imported (``user_code``: a file with the modules beside it, a module of a
  package, a package), ``factory(**config)`` (a function or an ``nn.Module`` class) builds the
  network, and the weights (safetensors, or .pt/.pth read with ``torch.load(weights_only=True)``)
  are loaded strictly;
* an architecture of the registry by name: torchvision's ``r3d_18``, ``mc3_18``,
  ``r2plus1d_18``, ``s3d``, or e.g. ``cnn_lstm`` with ``config={"backbone": "resnet18"}``, plus
  optional ``weights`` and ``backbone_weights`` (a torchvision frame backbone's weights).

What the network does not say, the user states (``Statements``), or a card ``NAME.json`` beside
the weights file gives: task, labels, input spec, layout, Grad-CAM layer.  The layout and the
Grad-CAM layer are found by probing the network with a dummy clip (``probe.py``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from torch import nn

from ..channels import parse_channels
from . import per_frame
from .backbones import load_backbone_weights
from .base import TASKS, InputSpec, ModelError, ModelInfo, VideoModel
from .checkpoint import CARD_VERSION, make_card, save_checkpoint, state_differences
from .conv3d import TORCHVISION_VIDEO
from .probe import LAYOUTS, check_cam_layer, choose_layout, infer_cam_layer, probe, resolve_layer_name
from .registry import ARCHITECTURES, build_model
from .torchvision_weights import cached_file, is_weights_name, load_named, named_weights
from .user_code import build_factory_net, parse_factory
from .weights import TORCH_SUFFIXES, read_state_dict

WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
RANDOM_WEIGHTS = "random weights: no weights file was given"


@dataclass
class Statements:
    """What the user states about their model (None: not stated).  ``labels`` or
    ``labels_file`` (one name a line); ``mean``/``std`` per RGB channel, on pixels in [0, 1]."""

    weights: str | Path | None = None
    task: str | None = None
    labels: list[str] | None = None
    labels_file: str | Path | None = None
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    mean: tuple[float, ...] | list[float] | None = None
    std: tuple[float, ...] | list[float] | None = None
    layout: str | None = None
    cam_layer: str | None = None
    config: dict | None = None
    backbone_weights: str | Path | None = None

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


# ---------------------------------------------------------------------------- files
def is_torchscript(path: str | Path) -> bool:
    """A ``torch.jit.save`` archive: a zip holding TorchScript code (``ARCHIVE/code/...``).  A
    ``torch.save`` state_dict is a zip too, but without code."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def file_facts(path: Path) -> dict:
    """File name, path, size and sha256 (what a card records about a file that was loaded)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def read_labels_file(path: str | Path) -> list[str]:
    """Class names, one a line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"labels file {path} not found")
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise ModelError(f"labels file {path.name} is not UTF-8 text: {exc}") from None
    if not labels:
        raise ModelError(f"labels file {path.name} holds no names (one name a line)")
    return labels


def card_beside(weights: Path) -> dict:
    """The card NAME.json beside weights NAME.safetensors/.pt, if any: statements it gives."""
    path = weights.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"the card {path.name} beside the weights is not valid JSON: {exc}") from None
    if not isinstance(card, dict):
        raise ModelError(f"the card {path.name} beside the weights is not a JSON object")
    card["_card_file"] = path.name
    return card


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from .safetensors, or .pt/.pth read with ``weights_only=True`` (a pickle that
    needs code is refused by ``read_state_dict``, without running it)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    if is_torchscript(path):
        raise ModelError(f"{path.name} is a TorchScript file, not weights: give it as the model itself")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ModelError(
            f"{path.name}: weights are read from .safetensors, or from .pt/.pth files of tensors "
            "(torch.load with weights_only=True); a torch.save state_dict can be renamed to .pt"
        )
    return read_state_dict(path)


def load_state_strictly(net: nn.Module, state: dict, file_name: str, what: str, outputs_said: str = "") -> None:
    """Load ``state`` into ``net`` with every key and shape matching, or say what differs.

    ``outputs_said`` ("3 labels were given") turns a final layer of another size into a message
    about the number of classes."""
    expected = net.state_dict()
    if all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in expected):
        state = {k[len("module.") :]: v for k, v in state.items()}  # saved from DataParallel
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if wrong and not (missing or unexpected):
        pairs = {(state[k].shape[0], expected[k].shape[0]) for k in wrong if state[k].dim() and expected[k].dim()}
        same_rest = all(state[k].shape[1:] == expected[k].shape[1:] for k in wrong)
        if len(pairs) == 1 and same_rest:
            (in_file, in_model), key = pairs.pop(), wrong[-1].rpartition(".")[0] or wrong[-1]
            if outputs_said:
                raise ModelError(
                    f"weights {file_name} have {in_file} classes in their final layer ({key}), but {outputs_said}; "
                    "give the labels they were trained with (labels_file= / --labels)"
                )
            raise ModelError(
                f"weights {file_name} have {in_file} outputs in their final layer ({key}), {what} has {in_model} "
                "(if the factory takes the number of classes, pass it with config= / --config)"
            )
    parts = state_differences(expected, state)
    if parts:
        raise ModelError(f"weights {file_name} do not fit {what}: " + "; ".join(parts))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights {file_name} do not fit {what}: {' '.join(str(exc).split())}") from None


# ---------------------------------------------------------------------------- statements
def _task(st: Statements, card: dict) -> str:
    task = st.task or card.get("task") or "classification"
    if task not in TASKS:
        raise ModelError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    return task


def distinct_labels(labels: list[str]) -> list[str]:
    """A repeated name gets its class index: ["crane", ..., "crane"] -> ["crane (class 134)", ...,
    "crane (class 517)"], so that every class can be named as a target."""
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"{label} (class {i})" if label in repeated else label for i, label in enumerate(labels)]


def _labels(st: Statements, card: dict, task: str) -> list[str] | None:
    """The stated labels (list or file), else the card's; None when nobody said."""
    if st.labels is not None and st.labels_file is not None:
        raise ModelError("give labels or labels_file, not both")
    if isinstance(st.labels, str):
        raise ModelError("labels is a list of class names; give a file of names (one a line) as labels_file")
    if st.labels_file is not None:  # a published list may repeat a name (ImageNet's "crane", "maillot")
        labels = distinct_labels(read_labels_file(st.labels_file))
    elif st.labels is not None:
        labels = [str(label) for label in st.labels]
    elif card.get("labels"):
        labels = [str(label) for label in card["labels"]]
    else:
        return None
    if not labels:
        raise ModelError("labels is empty")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ModelError(f"labels must be distinct; repeated: {', '.join(duplicates[:5])}")
    if task == "regression" and len(labels) != 1:
        raise ModelError(f"a regression model has one output, so one label, not {len(labels)}")
    return labels


def _spec(st: Statements, card: dict, default: InputSpec) -> InputSpec:
    """The stated input spec over the card's, over ``default``."""
    base = default
    if card.get("input_spec"):
        try:
            base = InputSpec.from_dict(card["input_spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"the card {card.get('_card_file')} has a bad input_spec: {exc}") from None
    changes = {}
    for name in ("frames", "height", "width"):
        value = getattr(st, name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{name} must be a positive integer, got {value!r}")
            changes[name] = value
    for name in ("mean", "std"):
        if getattr(st, name) is not None:
            changes[name] = parse_channels(getattr(st, name), name, positive=name == "std", error=ModelError)
    return replace(base, **changes)


def _layout(st: Statements, card: dict) -> str | None:
    layout = st.layout or card.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise ModelError(f"layout must be BTCHW or BCTHW, not {layout!r}")
    return layout


def _config(st: Statements, card: dict) -> dict:
    config = st.config if st.config is not None else card.get("config") or {}
    if not isinstance(config, dict):
        raise ModelError(f"config must be a mapping of options, not {type(config).__name__}")
    return dict(config)


def _outputs_said(task: str, labels: list[str]) -> str:
    return "a regression model has 1 output" if task == "regression" else f"{len(labels)} labels were given"


# ---------------------------------------------------------------------------- sources
def load_torchscript(path: Path) -> nn.Module:
    """A ``torch.jit.save`` file -> its ScriptModule, on the CPU."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, not gone
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"{path.name} is not a loadable TorchScript file: {' '.join(str(exc).split())}") from None


def _wrap_probed(
    net: nn.Module, st: Statements, card: dict, info: ModelInfo, device: torch.device, default_spec: InputSpec
) -> VideoModel:
    """Statements resolved, layout and Grad-CAM layer found by probing, the adapter built."""
    task = _task(st, card)
    labels = _labels(st, card, task)
    if task == "regression" and labels is None:
        labels = ["output"]
    spec = _spec(st, card, default_spec)
    net = net.to(device).eval()
    scripted = isinstance(net, torch.jit.ScriptModule)
    cam = st.cam_layer or card.get("cam_layer") or (None if scripted else getattr(net, "cam_layer_name", None))
    if cam and scripted:
        raise ModelError(
            "a TorchScript model runs compiled code that forward hooks cannot see, so it has no Grad-CAM layer; "
            "load the Python model as file.py:factory with its weights for Grad-CAM"
        )
    cam = resolve_layer_name(net, cam) if cam else None
    num_outputs = len(labels) if labels else None
    p = choose_layout(
        net,
        spec,
        num_outputs,
        _layout(st, card),
        what=info.arch,
        outputs_said=_outputs_said(task, labels) if labels else "",
        watch=[cam] if cam else [],
    )
    if labels is None:
        labels = [f"class {i}" for i in range(p.output.shape[1])]
    if cam:
        check_cam_layer(p, cam, spec.frames)
    else:
        cam, note = infer_cam_layer(net, p, spec.frames)
        if note:
            info.notes["cam_layer"] = note
    info.notes["layout"] = (
        f"{p.layout} as stated" if _layout(st, card) else f"{p.layout}, inferred by probing both layouts"
    )
    return VideoModel(net, task=task, labels=labels, input_spec=spec, layout=p.layout, info=info, cam_layer=cam)


def _from_factory(path: Path, name: str, st: Statements, device: torch.device) -> VideoModel:
    if st.backbone_weights is not None:
        raise ModelError("backbone_weights is for the registry's per-frame models (cnn_lstm, ...); use weights=")
    w_path = Path(st.weights) if st.weights is not None else None
    state = read_weights(w_path) if w_path else None
    card = card_beside(w_path) if w_path else {}
    config = _config(st, card)
    net = build_factory_net(path, name, config)
    what = f"{path.name}:{name}"
    if state is not None:
        load_state_strictly(net, state, w_path.name, what)
    info = ModelInfo(name=name, arch=what, config=config)
    info.source = {
        "kind": "factory",
        "file": str(path),
        "factory": name,
        "weights": file_facts(w_path) if w_path else None,
    }
    if card:
        info.source["card"] = card["_card_file"]
    if w_path is None:
        info.notes["weights"] = RANDOM_WEIGHTS
    return _wrap_probed(net, st, card, info, device, InputSpec())


def _from_torchscript(path: Path, st: Statements, device: torch.device) -> VideoModel:
    for name in ("weights", "config", "backbone_weights"):
        if getattr(st, name) is not None:
            raise ModelError(
                f"{path.name} is a TorchScript file, which holds its own weights and code; {name}= is not used"
            )
    net = load_torchscript(path)
    info = ModelInfo(name=path.stem, arch="torchscript")
    info.source = {"kind": "torchscript", **file_facts(path)}
    return _wrap_probed(net, st, {}, info, device, InputSpec())


def outputs_in_state(arch: str, config: dict, state: dict) -> int:
    """The number of outputs of weights ``state`` for architecture ``arch``: build it with two
    outputs and read the size of the layers that differ only in their first dimension."""
    reference = build_model(arch, labels=["a", "b"], config=config).net.state_dict()
    sizes = {
        int(state[k].shape[0])
        for k, v in reference.items()
        if k in state
        and v.dim()
        and state[k].dim() == v.dim()
        and v.shape[0] == 2
        and state[k].shape[0] != 2
        and state[k].shape[1:] == v.shape[1:]
    }
    return sizes.pop() if len(sizes) == 1 else 2


def _from_architecture(arch: str, st: Statements, device: torch.device) -> VideoModel:
    spec_arch = ARCHITECTURES[arch]
    if st.weights is not None and st.backbone_weights is not None:
        raise ModelError("give weights (the whole model) or backbone_weights (its frame backbone), not both")
    named = None  # torchvision weights by name (KINETICS400_V1, DEFAULT, ...): labels and input from their metadata
    if is_weights_name(st.weights):
        if arch not in TORCHVISION_VIDEO:
            raise ModelError(f"weights by name are torchvision's ({', '.join(TORCHVISION_VIDEO)}); give {arch} a file")
        named = named_weights(arch, st.weights)
    elif is_weights_name(st.backbone_weights):
        backbone = (st.config or {}).get("backbone")
        if not backbone:
            raise ModelError('backbone weights by name need a torchvision backbone: config {"backbone": "resnet18"}')
        named = named_weights(backbone, st.backbone_weights)
    w_path = Path(st.weights) if st.weights is not None and not is_weights_name(st.weights) else None
    state = read_weights(w_path) if w_path else load_named(named) if named and is_weights_name(st.weights) else None
    card = card_beside(w_path) if w_path else {}
    config = _config(st, card)
    task = _task(st, card)
    labels = _labels(st, card, task)
    if labels is None and named is not None and is_weights_name(st.weights):
        labels = list(named.labels)
    stated_labels = labels is not None
    if labels is None:
        if task == "regression":
            labels = ["output"]
        else:
            try:
                k = outputs_in_state(arch, config, state) if state else (400 if arch in TORCHVISION_VIDEO else 2)
            except ModelError:
                raise
            except (TypeError, ValueError) as exc:
                raise ModelError(f"bad configuration for {arch}: {exc}") from None
            labels = [f"class {i}" for i in range(k)]
    default_spec = spec_arch.default_spec
    if named is not None:  # the frame size and normalisation the weights were trained with
        height, width = named.size
        default_spec = replace(default_spec, height=height, width=width, mean=named.mean, std=named.std)
    spec = _spec(st, card, default_spec)
    layout = _layout(st, card)
    if layout and layout != spec_arch.layout:
        raise ModelError(f"{arch} takes layout {spec_arch.layout}, not {layout}")
    try:
        model = build_model(arch, task=task, labels=labels, input_spec=spec, config=config, name=arch)
    except ModelError:
        raise
    except (TypeError, ValueError) as exc:
        raise ModelError(f"bad configuration for {arch}: {exc}") from None
    info = model.info
    info.source = {"kind": "architecture", "weights": file_facts(w_path) if w_path else None}
    if named is not None:
        facts = {"torchvision": named.enum, "url": named.url, **file_facts(named.path)}
        info.source["weights" if is_weights_name(st.weights) else "backbone_weights"] = facts
    if card:
        info.source["card"] = card["_card_file"]
    if state is not None:
        said = _outputs_said(task, labels) if stated_labels or task == "regression" else ""
        load_state_strictly(model.net, state, w_path.name if w_path else named.file, f"architecture {arch!r}", said)
    elif st.backbone_weights is not None:
        backbone_file = cached_file(named) if named is not None else Path(st.backbone_weights)
        _load_backbone(model, backbone_file)
        if named is None:
            info.source["backbone_weights"] = file_facts(backbone_file)
        info.notes["weights"] = (
            f"frame backbone weights from {named.enum if named else backbone_file.name}; "
            "the rest of the model has random weights"
        )
    else:
        info.notes["weights"] = RANDOM_WEIGHTS
    model = model.to(device).eval()
    cam = st.cam_layer or card.get("cam_layer")
    if cam and "net." + cam.removeprefix("net.") != model.cam_layer_name:
        model = with_cam_layer(model, cam)
    return model


def _load_backbone(model: VideoModel, path: Path) -> None:
    encoder = getattr(model.net, "frame_encoder", None)
    if encoder is None:
        raise ModelError(
            f"backbone_weights are for per-frame models on a torchvision backbone (e.g. cnn_lstm with config "
            f'{{"backbone": "resnet18"}}); {model.info.arch} has no frame encoder'
        )
    if not path.is_file():
        raise ModelError(f"backbone weights file {path} not found")
    try:
        load_backbone_weights(encoder, path)
    except ModelError:
        raise
    except ValueError as exc:
        raise ModelError(str(exc)) from None


def with_cam_layer(model: VideoModel, name: str) -> VideoModel:
    """The same model with ``name`` as its Grad-CAM layer, checked by a probe (it must run and
    give activations Grad-CAM can use)."""
    name = resolve_layer_name(model.net, name)
    p = probe(model.net, model.input_spec, model.layout, watch=[name])
    if p.error:
        raise ModelError(f"{model.name} fails on a dummy clip: {p.error}")
    check_cam_layer(p, name, model.input_spec.frames)
    model.info.notes.pop("cam_layer", None)
    return VideoModel(
        model.net,
        task=model.task,
        labels=model.labels,
        input_spec=model.input_spec,
        layout=model.layout,
        info=model.info,
        cam_layer=name,
    )


def _from_frames(inner: str, st: Statements, device: torch.device) -> VideoModel:
    """``frames:SPEC``: an image classifier (torchvision name, file.py:factory, TorchScript) run on
    every frame, the clip's logits their mean (``per_frame.PerFrame``)."""
    if st.backbone_weights is not None or (st.layout not in (None, "BTCHW")):
        raise ModelError("frames:SPEC takes weights= for the image network; it runs frame by frame (layout BTCHW)")
    named = None
    labels = _labels(st, {}, _task(st, {}))
    factory = parse_factory(inner)
    path = Path(inner)
    if factory is not None:
        w_path = Path(st.weights) if st.weights is not None else None
        image_net = build_factory_net(*factory, _config(st, {}))
        what = f"{factory[0].name}:{factory[1]}"
        if w_path is not None:
            load_state_strictly(image_net, read_weights(w_path), w_path.name, what)
        source = {"kind": "factory", "file": str(factory[0]), "factory": factory[1],
                  "weights": file_facts(w_path) if w_path else None}  # fmt: skip
    elif path.is_file() and is_torchscript(path):
        if st.weights is not None:
            raise ModelError(f"{path.name} is a TorchScript file, which holds its own weights; weights= is not used")
        image_net = load_torchscript(path)
        what = path.name
        source = {"kind": "torchscript", **file_facts(path)}
    else:
        if is_weights_name(st.weights):
            named = named_weights(inner, st.weights)
            labels = labels if labels is not None else list(named.labels)
        w_path = Path(st.weights) if st.weights is not None and named is None else None
        state = load_named(named) if named else read_weights(w_path) if w_path else None
        classes = len(labels) if labels else 1000
        image_net = per_frame.torchvision_image_net(inner, classes)
        if state is not None:
            load_state_strictly(image_net, state, named.file if named else w_path.name, f"frames:{inner}")
        what = inner
        source = {"kind": "torchvision image classifier", "arch": inner}
        if named is not None:
            source["weights"] = {"torchvision": named.enum, "url": named.url, **file_facts(named.path)}
        elif w_path is not None:
            source["weights"] = file_facts(w_path)
    default_spec = per_frame.DEFAULT_SPEC
    if named is not None:
        height, width = named.size
        default_spec = replace(default_spec, height=height, width=width, mean=named.mean, std=named.std)
    info = ModelInfo(name=f"frames:{what}", arch=f"frames:{what}")
    info.source = {"kind": "frames", "image_network": source}
    if st.weights is None and not path.is_file():
        info.notes["weights"] = RANDOM_WEIGHTS
    net = per_frame.PerFrame(image_net)
    frame_statements = replace(st, weights=None, labels=labels, labels_file=None, layout="BTCHW", config=None)
    return _wrap_probed(net, frame_statements, {}, info, device, default_spec)


def load_user_model(spec: str | Path, statements: Statements, device: torch.device) -> VideoModel | None:
    """A user's model from ``spec`` (``file.py:factory``, a TorchScript file, an architecture
    name, ``frames:SPEC`` for an image classifier run on every frame) in eval mode on ``device``;
    None when ``spec`` is none of these."""
    text = str(spec)
    if text.startswith(per_frame.PREFIX):
        return _from_frames(text[len(per_frame.PREFIX) :], statements, device)
    factory = parse_factory(text)
    if factory is not None:
        return _from_factory(*factory, statements, device)
    path = Path(text)
    if path.is_file() and is_torchscript(path):
        return _from_torchscript(path, statements, device)
    if text in ARCHITECTURES:
        return _from_architecture(text, statements, device)
    if text.endswith(".py"):
        if not path.is_file():
            raise ModelError(f"{text}: no such Python file")
        raise ModelError(f"{text}: name the function or class in it that builds the model, as {text}:NAME")
    return None


def with_checkpoint_statements(model: VideoModel, statements: Statements, what: str) -> VideoModel:
    """A zoo model or checkpoint: its card states everything; only ``cam_layer`` may be chosen."""
    given = [name for name in statements.given() if name != "cam_layer"]
    if given:
        raise ModelError(
            f"{what} is a checkpoint whose card states the model; {', '.join(given)} "
            "are for your own models (a TorchScript file, file.py:factory, an architecture name)"
        )
    model.info.source = {"kind": "checkpoint", "path": what}
    return with_cam_layer(model, statements.cam_layer) if statements.cam_layer else model


# ---------------------------------------------------------------------------- cards
def make_user_card(model: VideoModel) -> dict:
    """A JSON-able description of what was loaded: source kind, architecture or factory, task,
    labels, input spec, layout, Grad-CAM layer, the weights file's name and sha256, and notes
    (random weights, why no Grad-CAM layer)."""
    source = dict(model.info.source) or {"kind": "built"}
    cam = model.cam_layer_name
    card = {
        "card_version": CARD_VERSION,
        "name": model.name,
        "source": source.get("kind"),
        "arch": model.info.arch,
        "config": dict(model.info.config),
        "task": model.task,
        "labels": list(model.labels),
        "input_spec": model.input_spec.to_dict(),
        "layout": model.layout,
        "cam_layer": cam[len("net.") :] if cam else None,
        "capabilities": sorted(model.capabilities),
        "weights": source.get("weights"),
        "notes": dict(model.info.notes),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    if source.get("kind") == "factory":
        card["factory"] = f"{source['file']}:{source['factory']}"
    if source.get("kind") == "torchscript":
        card["weights"] = {k: source[k] for k in ("file", "path", "bytes", "sha256")}
    for key in ("backbone_weights", "card", "path"):
        if source.get(key):
            card[key] = source[key]
    return card


def save_user_model(model: VideoModel, stem: str | Path) -> tuple[Path, Path]:
    """Save a factory or architecture model as ``stem.safetensors`` + ``stem.json``.

    An architecture model's card rebuilds it: ``load_model("stem")``.  A factory model's card
    gives the statements back when its code is named again:
    ``load_model("file.py:factory", weights="stem.safetensors")``."""
    kind = model.info.source.get("kind")
    if kind == "torchscript":
        raise ModelError("a TorchScript model is one file already: copy it")
    card = {**make_card(model), **make_user_card(model)}
    card["loaded_weights"] = card.pop("weights")
    if kind == "factory":
        card["factory"] = f"{model.info.source['file']}:{model.info.source['factory']}"
    return save_checkpoint(model, stem, card)
