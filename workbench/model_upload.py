"""From the Models page's upload form to a ``load_model`` call (no Streamlit here).

The form gives file names and bytes and text fields; ``load_request`` stores the files in a
folder of their own and turns the fields into ``(spec, keyword arguments)`` for
``xai_core.load_model(spec, **kwargs)``, or raises ModelError with one message naming what is
missing or malformed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from xai_core.channels import parse_channels
from xai_core.models.base import ModelError
from xai_core.models.conv3d import TORCHVISION_VIDEO
from xai_core.models.external import is_torchscript

SOURCES = {
    "TorchScript file": "torchscript",
    "Python file + factory": "factory",
    "torchvision architecture + weights": "torchvision",
    "An image classifier, run on every frame": "frames",
    "A path on this machine": "path",
}
ZIP_LIMITS = (2000, 500_000_000)  # at most this many files, and bytes unpacked, from one zip
LAYOUT_CHOICES = ("auto", "BTCHW", "BCTHW")
TORCHVISION_ARCHS = TORCHVISION_VIDEO


@dataclass(frozen=True)
class UploadedFile:
    """A file the user gave: its name as they named it, and its bytes."""

    name: str
    data: bytes


def safe_filename(name: str) -> str:
    """A file name with only letters, digits and '._-' (the rest become '_'); never empty or hidden."""
    base = Path(name).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "upload"
    return cleaned


def store(folder: str | Path, file: UploadedFile) -> Path:
    """Write ``file`` into ``folder`` under its (cleaned) name; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_filename(file.name)
    path.write_bytes(file.data)
    return path


def unpack_zip(folder: Path, file: UploadedFile) -> list[Path]:
    """The files of an uploaded zip written under ``folder``, keeping its subfolders (a package
    stays a package); a member that would land outside ``folder``, or a zip too large, is refused."""
    import io
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(file.data))
    except zipfile.BadZipFile:
        raise ModelError(f"{file.name} is not a readable zip file") from None
    members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
    count, size = ZIP_LIMITS
    if len(members) > count or sum(m.file_size for m in members) > size:
        raise ModelError(
            f"{file.name} holds more than {count} files or {size / 1e6:.0f} MB: give the model's code alone"
        )
    root = folder.resolve()
    targets = []
    for member in members:  # every member checked before any is written
        path = folder.joinpath(*Path(member.filename).parts)
        if Path(member.filename).is_absolute() or not path.resolve().is_relative_to(root):
            raise ModelError(f"{file.name} holds {member.filename!r}, a path outside its folder: refused")
        targets.append((member, path))
    try:
        for member, path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(member))
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:  # CRC, encryption, clashes
        raise ModelError(f"{file.name} cannot be unpacked: {exc}") from None
    return [path for _, path in targets]


def _factory_spec(folder: Path, files: list[UploadedFile], factory: str) -> str:
    """Store the uploaded code (.py files, or one .zip) in ``folder``; ``factory`` names the
    function or class, as NAME (when one .py file was given) or FILE.py:NAME / PACKAGE:NAME
    (a path inside what was uploaded) -> the spec ``load_model`` takes."""
    if not files or any(not f.name.endswith((".py", ".zip")) for f in files):
        raise ModelError("upload the Python file (.py) that defines the model, with the .py files it imports, or a zip")
    written: list[Path] = []
    for file in files:
        written += unpack_zip(folder, file) if file.name.endswith(".zip") else [store(folder, file)]
    text = factory.strip()
    where, sep, name = text.rpartition(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ModelError(f"name the function or class that builds the model (a Python name), got {factory!r}")
    code = [p for p in written if p.suffix == ".py"]
    if not sep:
        top = [p for p in code if p.parent == folder]
        if len(top) != 1:
            given = ", ".join(str(p.relative_to(folder)) for p in code) or "no .py file"
            raise ModelError(f"name the file too, as FILE.py:{name} (the upload holds {given})")
        return f"{top[0]}:{name}"
    path = (folder / where).resolve()
    if not path.is_relative_to(folder.resolve()) or not (path.is_file() or (path / "__init__.py").is_file()):
        given = ", ".join(str(p.relative_to(folder)) for p in code) or "no .py file"
        raise ModelError(f"{where!r} is neither a .py file nor a package in the upload (it holds {given})")
    return f"{path}:{name}"


def _path_spec(text: str) -> str:
    """A model on this machine: FILE.py:NAME, PACKAGE_FOLDER:NAME or a TorchScript file, checked
    to exist (its imports are checked when it loads)."""
    from xai_core.models.user_code import parse_factory

    text = text.strip().strip('"')
    factory = parse_factory(text)
    if factory is not None:
        path, _ = factory
        if not (path.is_file() or (path / "__init__.py").is_file()):
            raise ModelError(f"{path}: no such Python file or package folder on this machine")
        return text
    path = Path(text).expanduser()
    if path.is_file() and is_torchscript(path):
        return str(path)
    if not text:
        raise ModelError("give the path of the model's code (FILE.py:NAME or PACKAGE:NAME) or of a TorchScript file")
    raise ModelError(
        f"{text}: not FILE.py:NAME, PACKAGE_FOLDER:NAME (a folder with __init__.py) or an existing TorchScript file"
    )


def parse_labels(text: str | None) -> list[str] | None:
    """Class names, one a line, or on one line separated by commas; '' -> None."""
    if text is None or not text.strip():
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def default_name(kind: str, model: UploadedFile | None, factory: str, arch: str) -> str:
    """The name a loaded model gets when the user gives none: the file's stem, the factory, the architecture."""
    if kind == "torchscript" and model is not None:
        return Path(safe_filename(model.name)).stem
    if kind == "factory":
        return factory or (Path(safe_filename(model.name)).stem if model else "model")
    return arch


def load_request(
    kind: str,
    folder: str | Path,
    *,
    model_file: UploadedFile | None = None,
    model_files: list[UploadedFile] | None = None,
    local_path: str = "",
    weights_path: str = "",
    weights_file: UploadedFile | None = None,
    weights_name: str = "",
    labels_file: UploadedFile | None = None,
    factory: str = "",
    arch: str = "",
    task: str = "classification",
    labels_text: str = "",
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    mean_text: str = "",
    std_text: str = "",
    layout: str = "auto",
    cam_layer: str = "",
) -> tuple[str, dict]:
    """Store the files in a new subfolder of ``folder`` and return ``(spec, kwargs)`` for
    ``load_model``.  ``kind``: "torchscript", "factory" (``model_file`` or ``model_files``: .py
    files or a zip), "torchvision" (a ``weights_file``, or torchvision's weights by ``weights_name``),
    "frames" (an image classifier named in ``arch`` run on every frame, with a ``weights_file``, or
    ``weights_name``: torchvision's by name or a file on this machine), or "path" (``local_path``
    and ``weights_path`` on this machine, nothing copied)."""
    if kind not in SOURCES.values():
        raise ModelError(f"unknown kind of model {kind!r}; choose one of {', '.join(SOURCES.values())}")
    labels = parse_labels(labels_text)
    if labels is not None and labels_file is not None:
        raise ModelError("give the labels either as text or as a file, not both")
    kwargs: dict = {
        "task": task,
        "frames": frames,
        "height": height,
        "width": width,
        "mean": parse_channels(mean_text, "mean", error=ModelError),
        "std": parse_channels(std_text, "std", positive=True, error=ModelError),
        "layout": None if layout in ("auto", "", None) else layout,
        "cam_layer": cam_layer.strip() or None,
        "labels": labels,
    }
    target = Path(folder) / uuid.uuid4().hex[:12]  # one folder per submission: cached models keep their files
    if labels_file is not None:
        kwargs["labels_file"] = str(store(target, labels_file))
    if kind == "torchscript":
        if model_file is None:
            raise ModelError("upload the TorchScript file (saved with torch.jit.save)")
        path = store(target, model_file)
        if not is_torchscript(path):
            raise ModelError(
                f"{model_file.name} is not a TorchScript file (a torch.jit.save archive with its code); "
                "for a state_dict, give the Python file that builds the model, or a torchvision architecture"
            )
        spec = str(path)
    elif kind == "factory":
        spec = _factory_spec(target, [model_file] if model_file is not None else list(model_files or []), factory)
    elif kind == "frames":  # frames:SPEC: a torchvision image architecture, FILE.py:NAME or TorchScript here
        inner = arch.strip()
        if not inner:
            raise ModelError("name the image classifier: a torchvision architecture (mobilenet_v2, resnet50, ...), "
                             "or FILE.py:NAME or a TorchScript file on this machine")  # fmt: skip
        spec = f"frames:{inner}"
        if weights_file is not None:
            kwargs["weights"] = str(store(target, weights_file))
        elif weights_name.strip():
            text = weights_name.strip()
            kwargs["weights"] = text if text.isupper() else str(Path(text).expanduser())
        return spec, {k: v for k, v in kwargs.items() if v is not None}
    elif kind == "path":
        spec = _path_spec(local_path)
        if weights_path.strip():
            weights = Path(weights_path.strip().strip('"')).expanduser()
            if not weights.is_file():
                raise ModelError(f"{weights}: no such weights file on this machine")
            kwargs["weights"] = str(weights)
        return spec, {k: v for k, v in kwargs.items() if v is not None}
    else:
        if arch not in TORCHVISION_ARCHS:
            raise ModelError(f"choose one of {', '.join(TORCHVISION_ARCHS)}, not {arch!r}")
        spec = arch
        if weights_name and weights_file is None:  # torchvision's own weights: labels and input from their metadata
            kwargs["weights"] = weights_name
            return spec, {k: v for k, v in kwargs.items() if v is not None}
    if kind != "torchscript":
        if weights_file is None:
            raise ModelError("upload the weights file (.safetensors, or a .pt/.pth state_dict)")
        kwargs["weights"] = str(store(target, weights_file))
    return spec, {k: v for k, v in kwargs.items() if v is not None}
