"""The zoo's evaluation report (``xai evaluate --suite all --zoo --n N --markdown EVALUATION.md``).

For every zoo model: the sanity suite (Spearman correlations of each method's maps on the
trained model and on copies with the output layer, or every weight, randomised; localisation
of the trained and the fully randomised model), and, for pause models, the temporal suite (how
high each frame curve ranks the pause frames, against chance).  Report 001's table layout:
methods as rows, each figure the mean over N clips with its standard error.

The results are also written as JSON beside the zoo's checkpoints (``RESULTS_FILE``), each
model's with the sha256 of the weights it was measured on, so that the app can warn about a
method whose maps survive randomisation for exactly those weights (``survival_for``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from ..methods.machinery.registry import MethodError, method_specs
from ..models.base import VideoModel
from ..models.checkpoint import card_config, load_checkpoint, read_card
from ..models.external import file_facts
from ..models.priors import architecture_priors
from ..models.zoo import checkpoints_dir, resolve_device
from ..zoo_report import headline_metric
from .markdown import model_section, to_markdown  # noqa: F401  (the report's text, re-exported)
from .suites import (
    BY_DRAW,
    FIRST_SEED,
    FLOW_METHODS,
    ON_REQUEST,
    SUITE_FAMILIES,
    add_missing_figures,
    heads_drawn,
    jsonable,
    run_suite,
    shapes_task,
    suite_methods,
    survival,
)

RESULTS_FILE = "evaluation.json"
PARTIAL_FILE = "evaluation.partial.json"  # rows of a zoo run stopped part-way through a model
FORMAT = 1

Progress = Callable[[str, int, int, str], None]  # (model name, done, total, what)


def weights_sha256(path: str | Path) -> str:
    """The sha256 of a checkpoint's weights file (as a card records a loaded file's)."""
    return file_facts(Path(path))["sha256"]


# files (relative to xai_core) that lay figures out or run the command line: they compute no figure
NOT_COMPUTING = ("cli.py", "zoo_report.py", "__main__.py", "evaluate/markdown.py")


def source_fingerprint(root: Path) -> str:
    """sha256 of the ``*.py`` files under ``root`` (a copy of ``xai_core``), their paths included,
    less ``NOT_COMPUTING``."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*.py")):
        if path.relative_to(root).as_posix() in NOT_COMPUTING:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """sha256 of the source of ``xai_core`` (less ``NOT_COMPUTING``: the command line and the
    report's layout): a stored evaluation is resumed only when it was measured by exactly this code."""
    return source_fingerprint(Path(__file__).resolve().parents[1])


def every_method(model: VideoModel, suite: str) -> list[str]:
    """Every method the suite can score on ``model``, the slow ones (TSR) included."""
    usable = suite_methods(model, suite, None)
    slow = [n for n in ON_REQUEST if n in {s.name for s in method_specs(model) if s.family in SUITE_FAMILIES[suite]}]
    return [s.name for s in usable] + slow


def evaluate_model(
    model: VideoModel,
    n: int,
    seed: int = FIRST_SEED,
    methods: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    noise: float = 8.0,
    distractors: int = 2,
    params: dict[str, dict] | None = None,
    slow_clips: int | None = None,
    earlier_rows: dict[str, dict[str, dict]] | None = None,
    on_row: Callable[[str, dict], None] | None = None,
) -> dict:
    """The sanity suite on ``n`` clips, and the temporal suite when the model was trained on the
    pause task: {"sanity": result, "temporal": result or None, "skipped": [methods named that
    the model cannot run]}.  ``methods``: default every method with a map, TSR included;
    ``slow_clips``: TSR (minutes a clip on a CPU) on the first ``slow_clips`` clips only.
    ``on_row(suite, row)`` is called as each method's row is complete; ``earlier_rows`` (suite ->
    method -> row, from such calls in a stopped run with the same arguments) are kept."""
    earlier_rows = earlier_rows or {}

    def suite_options(suite: str) -> dict:
        report = None if on_row is None else (lambda row: on_row(suite, row))
        return {"earlier_rows": earlier_rows.get(suite), "on_row": report}

    options = {
        "n": n,
        "seed": seed,
        "noise": noise,
        "distractors": distractors,
        "progress": progress,
        "slow_clips": slow_clips,
    }
    runnable = every_method(model, "sanity")
    wanted = runnable if methods is None else [m for m in methods if m in runnable]
    skipped = [] if methods is None else [m for m in methods if m not in runnable]
    if not wanted:
        raise MethodError(f"{model.name} can run none of the methods asked for ({', '.join(methods or [])})")
    sanity = run_suite("sanity", model, wanted, params=_params(params, wanted), **options, **suite_options("sanity"))
    temporal = None
    if shapes_task(model) == "pause":
        usable = every_method(model, "temporal")
        chosen = usable if methods is None else [m for m in methods if m in usable]
        if chosen:
            temporal = run_suite(
                "temporal", model, chosen, params=_params(params, chosen), **options, **suite_options("temporal")
            )
    return {"sanity": sanity, "temporal": temporal, "skipped": skipped}


def _params(params: dict[str, dict] | None, methods: list[str]) -> dict[str, dict]:
    return {m: p for m, p in (params or {}).items() if m in methods}


def evaluate_zoo(
    names: list[str],
    n: int,
    seed: int = FIRST_SEED,
    methods: list[str] | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    folder: Path | None = None,
    store: bool = True,
    resume: bool = False,
    add_missing: bool = False,
    **options,
) -> dict:
    """``evaluate_model`` for each zoo model named (from ``folder``, default the zoo's): the
    report's data, with each model's card facts and weights' sha256.  With ``store``, each
    model's results are written to ``folder/RESULTS_FILE`` as soon as they are measured (a
    stopped run keeps them), replacing that model's earlier results: the app's warnings read them.
    With ``resume``, a model whose stored results were measured on the same weights (sha256) with
    the same settings (clips, seed, methods, noise, distractors, parameters, TSR's clips, the
    card's config) by the same code (``code_fingerprint``) keeps them instead of being measured
    again: a long zoo run stopped part-way goes on where it stopped, and a model retrained later
    is measured alone.  The card's facts (headline, priors) are read again either way.
    With ``add_missing``, stored results measured on the same weights with the same settings by
    other code are kept too, and only the figures they lack are measured (``add_missing_figures``,
    by this code): the entry's ``added`` says which code measured what.
    ``options``: noise, distractors, params, slow_clips (as for ``evaluate_model``)."""

    folder = Path(folder) if folder is not None else checkpoints_dir()
    start = time.perf_counter()
    slow_clips = options.get("slow_clips")
    if slow_clips is not None and slow_clips >= n:
        options["slow_clips"] = slow_clips = None  # every clip: the same run as without it
    evaluation = {"format": FORMAT, "clips": n, "seed": seed, "slow_clips": slow_clips, "models": {}}
    for name in names:
        sha256 = weights_sha256(folder / f"{name}.safetensors")
        model = load_checkpoint(folder / name, device=resolve_device(device))
        card = read_card(folder / name)
        facts = {  # read from the card every time: a retest or a card fix shows at once
            "sha256": sha256,
            "arch": card["arch"],
            "task": (card.get("training") or {}).get("settings", {}).get("task") or shapes_task(model) or card["task"],
            "frames": model.input_spec.frames,
            "priors": architecture_priors(card["arch"], card_config(card)),
            "headline": headline_metric(card, clips=True, condition=True, missing="no test figure in its card"),
        }
        wanted = {
            "n": n,
            "seed": seed,
            "methods": every_method(model, "sanity") if methods is None else list(methods),
            "noise": float(options.get("noise", 8.0)),
            "distractors": int(options.get("distractors", 2)),
            "params": options.get("params") or {},
            "slow_clips": slow_clips,
            "config": card_config(card),  # what the weights compute with
            "code": code_fingerprint(),  # the code that computed the figures
        }
        earlier = stored_entry(name, sha256, folder) if resume or add_missing else None
        if (
            add_missing
            and earlier is not None
            and _same_but_code(earlier.get("settings"), wanted)
            and earlier.get("sanity", {}).get("device") == str(model.device)  # the copies' draws follow the device
        ):
            evaluation["models"][name] = {**facts, **_completed(model, earlier, progress, name)}
            if store:
                write_results({"models": {name: evaluation["models"][name]}}, folder, keep=names)
            continue
        if earlier is not None and jsonable(earlier.get("settings")) == jsonable(wanted):
            if progress is not None:
                progress(name, 1, 1, "kept from an earlier run on these weights with these settings and code")
            kept = {k: earlier[k] for k in ("sanity", "temporal", "skipped") if k in earlier}
            evaluation["models"][name] = {**facts, "settings": wanted, **kept}
            continue
        report = None if progress is None else (lambda d, t, w, name=name: progress(name, d, t, w))
        partial = {"sha256": sha256, "settings": wanted}
        rows = stored_rows(name, partial, folder) if resume else {}
        if rows and progress is not None:
            kept = sum(len(r) for r in rows.values())
            progress(name, 0, 1, f"{kept} methods' rows kept from a stopped run on these weights, settings and code")

        def keep_row(suite: str, row: dict, name=name, partial=partial, rows=rows) -> None:
            rows.setdefault(suite, {})[row["method"]] = row
            write_rows(name, {**partial, "rows": rows}, folder)

        evaluation["models"][name] = {
            **facts,
            "settings": wanted,
            **evaluate_model(
                model, n, seed, methods, report, earlier_rows=dict(rows), on_row=keep_row if store else None, **options
            ),
        }
        if store:
            write_results({"models": {name: evaluation["models"][name]}}, folder, keep=names)
            write_rows(name, None, folder)
    evaluation["seconds"] = round(time.perf_counter() - start, 1)
    return evaluation


def _same_but_code(stored: dict | None, wanted: dict) -> bool:
    """Whether stored settings are ``wanted``'s but for the code that measured them."""
    if not isinstance(stored, dict):
        return False
    return jsonable({k: v for k, v in stored.items() if k != "code"}) == jsonable(
        {k: v for k, v in wanted.items() if k != "code"}
    )


def _completed(model: VideoModel, earlier: dict, progress: Progress | None, name: str) -> dict:
    """A stored entry's results with the figures its code did not measure added by this code
    (``add_missing_figures``); ``added`` records this code's fingerprint when it measured any."""
    settings = earlier["settings"]
    report = None if progress is None else (lambda d, t, w: progress(name, d, t, w))
    sanity = dict(earlier["sanity"])
    rows = add_missing_figures(
        model,
        sanity["rows"],
        settings["n"],
        settings["seed"],
        settings["noise"],
        settings["distractors"],
        settings.get("params"),
        settings.get("slow_clips"),
        report,
    )
    kept = {k: earlier[k] for k in ("temporal", "skipped") if k in earlier}
    kept["added"] = list(earlier.get("added") or [])
    figures = sorted(
        {
            figure_name(key, new["method"])
            for old, new in zip(sanity["rows"], rows, strict=True)
            for key in set(new) - set(old)
            if figure_name(key, new["method"])
        }
        | {MORE_HEADS_NAME for a, b in zip(sanity["rows"], rows, strict=True) if heads_drawn(b) > heads_drawn(a)}
    )
    if figures:
        kept["added"].append({"code": code_fingerprint(), "figures": figures})
    elif progress is not None:
        progress(name, 1, 1, "kept from an earlier run on these weights with these settings; nothing to add")
    if not kept["added"]:
        del kept["added"]
    return {"settings": settings, "sanity": {**sanity, "rows": rows}, **kept}


MORE_HEADS_NAME = "five more random output layers where three leave the test open"


def figure_name(key: str, method: str) -> str | None:
    """The name ``added`` gives a figure ``add_missing_figures`` can add, by the key that carries
    it and its method; None for the other keys."""
    if key == "spearman_logits_pair":
        return "two random output layers"
    if key == "spearman_logits_pairs":
        return "three random output layers"
    if key == BY_DRAW:
        return "the trained model against each random output layer, over the draws"
    if key == "spearman_all_twin":
        return "a second copy with every weight randomised"
    if key == "spearman_all_given_objects":
        return "the maps against nearness to the shapes and across clips"
    if key == "spearman_all_input":
        return (
            "the flow gradients against the warp's derivative"
            if method in FLOW_METHODS
            else "the maps against the input"
        )
    return None


def write_results(evaluation: dict, folder: Path, keep: list[str] | None = None) -> Path:
    """Write the evaluation's models into ``folder/RESULTS_FILE`` (strict JSON: no value is
    null), merged over the models already there; with ``keep``, models not in it and not in the
    zoo folder any more are dropped."""
    path = Path(folder) / RESULTS_FILE
    merged = {"format": FORMAT, "models": {}}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if old.get("format") == FORMAT:
            merged["models"] = old.get("models", {})
    merged["models"].update(evaluation["models"])
    if keep is not None:
        present = {p.name[: -len(".safetensors")] for p in Path(folder).glob("*.safetensors")}
        merged["models"] = {k: v for k, v in merged["models"].items() if k in keep or k in present}
    path.write_text(json.dumps(jsonable(merged), indent=1, allow_nan=False) + "\n")
    return path


def write_rows(name: str, entry: dict | None, folder: Path) -> None:
    """Keep (or with None, drop) the rows measured so far for model ``name`` in a run not yet
    finished, in ``folder/PARTIAL_FILE``: {"sha256", "settings", "rows": suite -> method -> row}."""
    path = Path(folder) / PARTIAL_FILE
    try:
        stored = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        stored = {}
    models = stored.get("models", {}) if stored.get("format") == FORMAT else {}
    if entry is None:
        models.pop(name, None)
    else:
        models[name] = entry
    if models:
        path.write_text(json.dumps(jsonable({"format": FORMAT, "models": models}), allow_nan=False) + "\n")
    else:
        path.unlink(missing_ok=True)


def stored_rows(name: str, partial: dict, folder: Path) -> dict[str, dict[str, dict]]:
    """The rows (suite -> method -> row) a stopped run measured for model ``name`` with exactly
    ``partial``'s weights (sha256) and settings (which name the code), else none."""
    path = Path(folder) / PARTIAL_FILE
    try:
        entry = json.loads(path.read_text()).get("models", {}).get(name) if path.exists() else None
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(entry, dict) or jsonable({k: entry.get(k) for k in partial}) != jsonable(partial):
        return {}
    rows = entry.get("rows")
    return rows if isinstance(rows, dict) else {}


def stored_entry(name: str, sha256: str, folder: Path) -> dict | None:
    """The stored evaluation of model ``name`` in ``folder/RESULTS_FILE`` if it was measured on
    exactly these weights, else None."""
    path = Path(folder) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text()).get("models", {}).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or entry.get("sha256") != sha256:
        return None
    return entry


def survival_for(name: str, sha256: str, folder: Path) -> dict[str, float]:
    """method -> the largest Spearman correlation between its maps on the trained model and on the
    copy with every weight randomised, from ``folder/RESULTS_FILE``, for the model ``name`` with
    exactly these weights (empty when there is no result for them)."""
    entry = stored_entry(name, sha256, folder)
    if entry is None:
        return {}
    return {row["method"]: survival(row) for row in entry["sanity"]["rows"]}
