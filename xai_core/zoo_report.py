"""Model cards as text: durations, sizes and figures in words, a card's facts, and the zoo's
README (``zoo_markdown``, written by ``python -m xai_core models --markdown``).  No Streamlit,
pandas or plotly here: the Models page's tables and figures are the app's (``workbench.figures``).

A card is the JSON beside a checkpoint (``checkpoints/NAME.json``, see ``models.checkpoint``),
with ``name`` and ``file_bytes`` added by ``zoo.zoo_cards()``; cards of uploaded models may lack
the training and metrics sections, and every function here copes with that.
"""

from __future__ import annotations

from .models.registry import ARCHITECTURES


def format_duration(seconds: float | None) -> str:
    """3725 -> '1 h 02 min', 95 -> '1 min 35 s', 4.2 -> '4 s'; None -> '-'."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def format_bytes(size: int | None) -> str:
    """2543300 -> '2.5 MB'; None -> '-'."""
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def format_count(count: int | None) -> str:
    """356259 -> '356k', 1_250_000 -> '1.25M'; None -> '-'."""
    if count is None:
        return "-"
    if count >= 1_000_000:
        return f"{count / 1e6:.3g}M"
    if count >= 1_000:
        return f"{count / 1e3:.3g}k"
    return str(count)


def format_metric(result: dict) -> str:
    """{'accuracy': 0.972, 'clips': 500} -> 'accuracy 97.2%'; {'mae_degrees': 4.13} -> 'MAE 4.1°'."""
    if "accuracy" in result:
        return f"accuracy {result['accuracy']:.1%}"
    if "mae_degrees" in result:
        return f"MAE {result['mae_degrees']:.1f}°"
    return "-"


def test_headline(test: dict | None, *, clips: bool = False, condition: bool = False, missing: str = "-") -> str:
    """The first figure of test results ({condition: {"accuracy" | "mae_degrees": ..., "clips": n}}):
    'accuracy 97.2%'; ``clips`` adds the clip count, 'accuracy 97.2% (500 clips)', ``condition``
    the condition's name, 'accuracy 97.2% (clean, 500 clips)'; ``missing`` when there is none."""
    for name, result in (test or {}).items():
        text = format_metric(result)
        if text == "-":
            continue
        notes = [name] if condition else []
        if clips and "clips" in result:
            notes.append(f"{result['clips']} clips")
        return text + (f" ({', '.join(notes)})" if notes else "")
    return missing


def headline_metric(card: dict, *, clips: bool = False, condition: bool = False, missing: str = "-") -> str:
    """A card's headline: the figure of its first test condition (``metrics.test``), worded by
    ``test_headline``; the command line, the zoo's README, the evaluation report and the app all
    state a model's quality this way."""
    return test_headline((card.get("metrics") or {}).get("test"), clips=clips, condition=condition, missing=missing)


def describe_arch(card: dict) -> str:
    """'cnn_transformer: per-frame CNN + CLS Transformer ...'; an uploaded model's own description."""
    arch = card.get("arch", "?")
    known = ARCHITECTURES.get(arch)
    text = card.get("description") or (known.description if known else "")
    return f"{arch}: {text}" if text else str(arch)


def task_text(card: dict) -> str:
    """'sides (classification)' for a zoo model (its Moving Shapes task), else the card's task."""
    shapes_task = ((card.get("training") or {}).get("settings") or {}).get("task")
    task = card.get("task", "?")
    return f"{shapes_task} ({task})" if shapes_task else task


def input_text(card: dict) -> str:
    """'32 frames of 112x112 · mean (0.45, 0.45, 0.45) · std (...) · layout BTCHW'."""
    spec = card.get("input_spec") or {}
    if not spec:
        return "-"
    mean = ", ".join(f"{v:g}" for v in spec.get("mean", []))
    std = ", ".join(f"{v:g}" for v in spec.get("std", []))
    text = f"{spec.get('frames')} frames of {spec.get('height')}x{spec.get('width')} · mean ({mean}) · std ({std})"
    return text + (f" · layout {card['layout']}" if card.get("layout") else "")


def training_text(card: dict) -> str | None:
    """How the model was trained, in one line (None for a card without a training section)."""
    training = card.get("training") or {}
    settings = training.get("settings") or {}
    if not training:
        return None
    steps = training.get("steps_done", settings.get("steps"))
    parts = [f"{steps} steps" if steps is not None else None]
    if settings.get("batch_size"):
        parts.append(f"batch {settings['batch_size']}")
    if training.get("wall_clock_seconds") is not None:
        parts.append(f"{format_duration(training['wall_clock_seconds'])} wall clock")
    if training.get("device"):
        parts.append(f"on {training['device']}")
    if training.get("best_step") is not None:
        parts.append(f"best validation at step {training['best_step']}")
    text = ", ".join(p for p in parts if p)
    if training.get("stopped_early"):
        text += f"; stopped early (planned {settings.get('steps', '?')} steps)"
    return text


def card_priors(card: dict) -> list[str]:
    """The architecture priors of a card's model (from its configuration, so older cards too)."""
    from .models.checkpoint import card_config
    from .models.priors import architecture_priors

    return architecture_priors(str(card.get("arch", "")), card_config(card))


def card_facts(card: dict) -> list[tuple[str, str]]:
    """What the card view lists, as (label, text) pairs: task, labels, input, Grad-CAM layer,
    training, weights and notes (those the card has)."""
    facts = [("Task", task_text(card))]
    if card.get("description"):
        facts.append(("About", str(card["description"])))
    for prior in card_priors(card):
        facts.append(("Architecture prior", f"{prior}: where to look is computed, not learned"))
    labels = card.get("labels") or []
    if labels:
        facts.append(("Labels", ", ".join(str(label) for label in labels)))
    facts.append(("Input", input_text(card)))
    if card.get("cam_layer"):
        facts.append(("Grad-CAM layer", str(card["cam_layer"])))
    if card.get("parameters") is not None:
        facts.append(("Parameters", f"{card['parameters']:,}"))
    training = training_text(card)
    if training:
        facts.append(("Training", training))
    weights = card.get("weights")
    if isinstance(weights, dict) and weights.get("file"):
        digest = f", sha256 {weights['sha256'][:12]}…" if weights.get("sha256") else ""
        facts.append(("Weights", f"{weights['file']} ({format_bytes(weights.get('bytes'))}{digest})"))
    notes = card.get("notes") or {}
    for key, note in notes.items() if isinstance(notes, dict) else (("", n) for n in notes):
        facts.append((f"Note ({key.replace('_', ' ')})" if key else "Note", str(note)))
    return facts


def condition_text(name: str, result: dict) -> str:
    """'noise8_distractors2' with its options -> 'noise 8, 2 distractors'."""
    options = result.get("options")
    if not isinstance(options, dict):
        return name.replace("_", " ")
    parts = [f"noise {options.get('noise', 0):g}" if options.get("noise") else "no noise"]
    count = options.get("distractors", 0)
    white = "white " if options.get("white_distractors") else ""
    parts.append(f"{count} {white}distractor{'s' * (count != 1)}" if count else "no distractors")
    if options.get("radius"):
        low, high = options["radius"]
        parts.append(f"shape radius {low:g}-{high:g} px")
    if options.get("pause_length"):
        low, high = options["pause_length"]
        parts.append(f"pauses of {low}-{high} frames")
    return ", ".join(parts)


ROBUSTNESS_COLUMNS = [  # the card's robustness conditions (models.training.ROBUSTNESS_CONDITIONS)
    ("clean", "clean"),
    ("noise20_distractors3", "noise 20, 3 distractors"),
    ("noise8_white_distractors2", "white distractors"),
    ("noise8_distractors2_radius9to10", "radius 9-10 px"),
    ("noise8_distractors2_radius15to16", "radius 15-16 px"),
    ("noise8_distractors2_pause3to5", "pauses of 3-5 frames"),
    ("noise8_distractors2_pause12to14", "pauses of 12-14 frames"),
]
ZOO_README_COMMAND = "python -m xai_core models --markdown checkpoints/README.md"


def zoo_markdown(cards: list[dict]) -> str:
    """checkpoints/README.md: the zoo as a table (task, architecture, held-out and robustness
    figures, training time and steps, data seeds, size) and each model's exact training command."""
    lines = [
        "# The model zoo",
        "",
        f"Generated from the model cards by `{ZOO_README_COMMAND}`; do not edit by hand.",
        "Each model's training command is listed under it (the device is in its card; `xai train` now refuses",
        "the commands of models with a prior whose names do not end in `-gated`). Held-out",
        "figures are on Moving Shapes clips never seen in training (noise 8, two static distractors;",
        "15% of the clips pause for a while, half of them for the pause task), robustness figures on",
        "the conditions the app offers, at the ends of their ranges (the columns; a blank: the card",
        "predates the condition); accuracy for classification, mean absolute error in degrees for the angle.",
        "A model with a prior (the column) computes where to look by formula; only didactic models named",
        "`...-gated` may (issue 16), and the zoo refuses to load one under any other name.",
        "",
        "| name | task | architecture | prior | held-out | "
        + " | ".join(title for _, title in ROBUSTNESS_COLUMNS)
        + " | training | size | parameters |",
        "|---|---|---|---|---|" + "---|" * len(ROBUSTNESS_COLUMNS) + "---|---|---|",
    ]
    for card in cards:
        metrics = card.get("metrics") or {}
        robustness = metrics.get("robustness") or {}
        training = card.get("training") or {}
        held_out = headline_metric(card, clips=True)
        steps = training.get("steps_done") or (training.get("settings") or {}).get("steps")
        trained = format_duration(training.get("wall_clock_seconds")) + (f", {steps} steps" if steps else "")
        best = training.get("best_step")
        if best and steps and best != steps:
            trained += f" (weights from step {best})"
        lines.append(
            f"| `{card.get('name', '?')}` | {task_text(card)} | {card.get('arch', '?')} | "
            f"{'yes' if card_priors(card) else 'no'} | {held_out} | "
            + " | ".join(
                format_metric(robustness.get(k) or {}) if k in robustness else "" for k, _ in ROBUSTNESS_COLUMNS
            )
            + f" | {trained} | {format_bytes(card.get('file_bytes'))} | {format_count(card.get('parameters'))} |"
        )
    lines += ["", "## How each model was trained", ""]
    for card in cards:
        training = card.get("training") or {}
        metrics = card.get("metrics") or {}
        seeds = metrics.get("test_seeds")
        validation = (training.get("validation") or {}).get("seeds")
        lines.append(f"**{card.get('name', '?')}**: {describe_arch(card).rstrip('.')}.")
        facts = []
        if training.get("settings", {}).get("seed") is not None:
            facts.append(f"training data seed {training['settings']['seed']}")
        if validation:
            facts.append(f"validation seeds {validation[0]}-{validation[1]}")
        if seeds:
            facts.append(f"test seeds {seeds[0]}-{seeds[1]}")
        if facts:
            lines[-1] += " " + "; ".join(facts).capitalize() + "."
        if training.get("command"):
            lines += ["", "```bash", training["command"], "```"]
        if training.get("note"):
            lines += ["", str(training["note"])]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
