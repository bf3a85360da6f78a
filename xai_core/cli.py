"""Command line: ``python -m xai_core COMMAND`` (also the console script ``xai``).

Errors print one line on stderr and exit with status 2 (bad input) or 1 (anything else;
``XAI_DEBUG=1`` shows the traceback).  Each command imports what it needs when it runs: ``--help``,
``methods`` without a model and a video that cannot be read (checked before the model is loaded)
never import torch.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

EXIT_BAD_INPUT, EXIT_FAILURE = 2, 1


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- commands
def _cmd_models(args: argparse.Namespace) -> int:
    from .models.zoo import checkpoints_dir, zoo_cards
    from .zoo_report import headline_metric

    cards = zoo_cards()
    if args.markdown:
        from .zoo_report import zoo_markdown

        Path(args.markdown).write_text(zoo_markdown(cards))
        print(f"wrote {args.markdown} ({len(cards)} models)")
        return 0
    if args.json:
        _print_json(
            [
                {
                    k: c.get(k)
                    for k in ("name", "arch", "task", "labels", "input_spec", "parameters", "file_bytes", "metrics")
                }
                for c in cards
            ]
        )
        return 0
    if not cards:
        print(f"no models in {checkpoints_dir()}")
        return 0
    rows = [
        [
            c["name"],
            c["arch"],
            c["task"],
            ", ".join(c["labels"]),
            headline_metric(c, clips=True),
            f"{c['file_bytes'] / 1e6:.1f} MB",
        ]
        for c in cards
    ]
    print(_table(rows, ["name", "arch", "task", "labels", "held-out", "size"]))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    model = None
    if args.model:
        from .methods.machinery.registry import method_specs

        model = _load_model(args.model, "cpu", args)
        entries = []
        for spec in method_specs():
            reason = spec.unavailable_reason(model)
            entries.append({**spec.to_dict(), "available": reason is None, "reason": reason})
    else:
        from .method_catalog import catalog_entries

        entries = catalog_entries()  # the registry as data: no torch, no method imported
    if args.json:
        _print_json(entries)
        return 0
    if args.cards or args.markdown:
        from .method_catalog import cards_markdown

        shown = [e for e in entries if e.get("available", True)]
        text = cards_markdown(shown)
        if args.markdown:
            Path(args.markdown).write_text(text)
            print(f"wrote {args.markdown}")
        else:
            print(text, end="")
        return 0
    rows = []
    for e in entries:
        params = ", ".join(f"{p['name']}={_default_text(p['default'])}" for p in e["params"]) or "-"
        row = [e["name"], e["family"], params, e["description"]]
        if model is not None:
            row.insert(1, "yes" if e["available"] else "no: " + e["reason"])
        rows.append(row)
    header = ["method", "family", "parameters", "description"]
    if model is not None:
        header.insert(1, f"usable with {model.name}")
    print(_table(rows, header))
    return 0


def _default_text(value) -> str:
    """A parameter's default as the registry has it: (1, 10, 10) also when read back from JSON as a list."""
    return str(tuple(value) if isinstance(value, list) else value)


def _cmd_predict(args: argparse.Namespace) -> int:
    from .video import check_source, load_video

    check_source(args.video)  # a video that cannot be read is said before torch and the model load
    from .api import predict
    from .explanation import prediction_text

    model = _load_model(args.model, args.device, args)
    clip = load_video(args.video, model=model)
    prediction = predict(model, clip)
    if args.json:
        _print_json(
            {
                "model": model.name,
                "video": clip.source,
                "task": model.task,
                **prediction,
                "labels": model.labels,
                "frame_indices": [int(i) for i in clip.frame_indices],
            }
        )
        return 0
    print(prediction_text(prediction))
    from .notes import clip_notes

    for note in clip_notes(model, clip):
        print(f"note: {note}")
    if model.task == "classification":
        for label, p in sorted(zip(model.labels, prediction["probabilities"], strict=True), key=lambda lp: -lp[1])[:5]:
            print(f"  {p:7.2%}  {label}")
    return 0


def parse_params(items: list[str]) -> dict:
    """['steps=20', 'baseline=blur'] -> {'steps': '20', 'baseline': 'blur'} (methods convert)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def _cmd_explain(args: argparse.Namespace) -> int:
    from .video import check_source, load_video, write_video

    if not args.out and not args.plan and args.no_store:
        raise ValueError("--no-store needs --out (the folder for the explanation): it would be kept nowhere")
    if args.overlay and Path(args.overlay).suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--overlay must end in .mp4 or .gif, got {args.overlay!r}")
    style = _overlay_style(args) if args.overlay else None  # a style that cannot be drawn: said before loading
    params = parse_params(args.param)
    check_source(args.video)  # a video that cannot be read is said before torch and the model load
    from .api import explain
    from .explanation import prediction_text
    from .render import styled_overlays

    model = _load_model(args.model, args.device, args)
    clip = load_video(args.video, model=model)
    if args.plan:
        from .api import plan

        print(f"{args.method} on {model.name}: {plan(model, clip, args.method, target=args.target, **params)}")
        return 0
    store = None if args.no_store else _run_store(args)
    expl = explain(model, clip, args.method, target=args.target, store=store, recompute=args.recompute, **params)
    written = []
    if args.out:
        out = expl.save(args.out)
        written += [str(out / "explanation.npz"), str(out / "explanation.json")]
    if args.overlay:
        if expl.spatial is None:
            raise ValueError(f"{args.method} gives no spatial map to overlay")
        frames = styled_overlays(
            clip.frames, expl.spatial, style, zoom=args.zoom, colorbar=not args.no_colorbar, padded=clip.padded
        )
        written.append(str(write_video(frames, args.overlay, fps=args.fps)))
    print(
        f"{model.name} on {clip.source}: {prediction_text(expl.prediction)}; {args.method} for "
        f"{expl.meta['target_description']} in {expl.seconds:.2f} s"
    )
    from .notes import clip_notes, explanation_notes

    for note in clip_notes(model, clip) + explanation_notes(expl, clip.padded):
        print(f"note: {note}")
    if "motion_reliance" in expl.meta:  # the motion methods' clip-level motion-vs-appearance figure
        m = expl.meta
        print(
            f"motion reliance {m['motion_reliance']:.0%}: score {m['score']:.4g}, nothing moving "
            f"{m['without_motion']:.4g}, no warp errors {m['without_errors']:.4g}"
        )
    for path in written:
        print(f"wrote {path}")
    if store is not None:
        record = store.record(expl.meta["run"])
        if "saved_at" in expl.meta:
            print(f"from saved {record.saved_text()} in {store.root} (--recompute: compute it again)")
        else:
            print(f"saved as run {record.key} in {store.root}")
    return 0


def _run_store(args: argparse.Namespace):
    """The run store named by --runs, else $XAI_RUNS, else runs/."""
    from .runs import RunStore

    return RunStore(args.runs) if args.runs else RunStore()


def _cmd_runs(args: argparse.Namespace) -> int:
    import time

    store = _run_store(args)
    if args.action == "list":
        records = store.records(model=args.model, method=args.method)
        if args.json:
            print(json.dumps([r.to_json() for r in records], indent=1, default=str))
            return 0
        if not records:
            print(f"no saved runs in {store.root}" + (" that match" if args.model or args.method else ""))
            return 0
        print(
            f"{'key':12s} {'saved':16s} {'model':28s} {'method':20s} {'target':10s} {'device':6s} {'s':>7s}  prediction"
        )
        for r in records:
            saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
            target = str(r.target or "predicted")[:10]
            print(
                f"{r.key[:12]:12s} {saved:16s} {r.model[:28]:28s} {r.method[:20]:20s} {target:10s} "
                f"{r.device[:6]:6s} {r.seconds:7.2f}  {r.prediction}"
            )
        print(f"{len(records)} runs in {store.root}")
        return 0
    if not args.keys:
        raise ValueError(f"xai runs {args.action} needs a run key (or the start of one: `xai runs list` shows them)")
    if args.action == "show":
        for key in args.keys:
            record = store.record(key)
            if args.json:
                print(json.dumps(record.to_json(), indent=1, default=str))
                continue
            for name, value in record.to_json().items():
                print(f"{name:10s} {value}")
        return 0
    if args.action == "export":
        from .figures import export_run

        if len(args.keys) != 1 or not args.out:
            raise ValueError("xai runs export takes one run key and --out FILE.zip")
        print(f"wrote {export_run(store, args.keys[0], args.out)}")
        return 0
    for key in args.keys:  # delete
        record = store.delete(key)
        print(f"deleted run {record.key} ({record.model}, {record.method})")
    return 0


def _cmd_strip(args: argparse.Namespace) -> int:
    from .video import check_source

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods names at least one method, e.g. gradcam,lrp")
    if Path(args.out).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"--out must end in .png, .svg or .pdf, got {args.out!r}")
    if args.curve and args.curve not in methods:
        raise ValueError(f"--curve {args.curve} must be one of --methods ({', '.join(methods)})")
    style = _overlay_style(args)
    check_source(args.video)
    from .api import explain
    from .explanation import prediction_text
    from .figures import film_strip, save_figure
    from .video import load_video

    model = _load_model(args.model, args.device, args)
    clip = load_video(args.video, model=model)
    store = None if args.no_store else _run_store(args)
    explanations = {m: explain(model, clip, m, target=args.target, store=store) for m in methods}
    maps = {m: e.spatial for m, e in explanations.items() if e.spatial is not None}
    curve_from = args.curve or next(iter(explanations))
    first = explanations[curve_from]
    # the strips: the chosen curve first (--pick top ranks by it), then every method that gives only a curve
    curves = {f"{curve_from} (frame)": first.temporal} if first.temporal is not None else {}
    curves |= {
        m: e.temporal
        for m, e in explanations.items()
        if e.spatial is None and e.temporal is not None and m != curve_from
    }
    figure = film_strip(
        clip.frames,
        maps,
        curves,
        count=args.count,
        pick=args.pick,
        style=style,
        padded=clip.padded,
        frame_indices=clip.frame_indices,
        title=f"{model.name} on {clip.source}: {prediction_text(first.prediction)}; "
        f"maps for {first.meta['target_description']}",
    )
    print(f"wrote {save_figure(figure, args.out, dpi=args.dpi)}")
    return 0


def _cmd_evaluate_model(args: argparse.Namespace) -> int:
    from .evaluate.model_quality import evaluate_model_quality, folder_clips, quality_markdown, shapes_clips

    model = _load_model(args.model, args.device, args)
    if args.clips == "shapes":
        clips = shapes_clips(model, args.n, args.seed, noise=args.noise, distractors=args.distractors)
    else:
        clips = folder_clips(model, args.clips)

    def progress(done: int, total: int, what: str) -> None:
        if not args.quiet:
            print(f"\r[{done}/{total}] {what}".ljust(78), end="", file=sys.stderr, flush=True)

    result = evaluate_model_quality(model, clips, progress)
    if not args.quiet:
        print(file=sys.stderr)
    text = quality_markdown(result)
    print(text, end="")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    (out / "quality.md").write_text(text)
    print(f"wrote {out / 'quality.json'}, {out / 'quality.md'}")
    if not args.no_store:
        from .evaluate.saved import save_evaluation

        settings = (
            {"folder": str(Path(args.clips).resolve())}
            if args.clips != "shapes"
            else {"n": args.n, "seed": args.seed, "noise": args.noise, "distractors": args.distractors}
        )
        source = f"clips in {args.clips}" if args.clips != "shapes" else f"{args.n} held-out Moving Shapes clips"
        record = save_evaluation(_run_store(args), model, "model quality", settings, result, 0.0,
                                 text.split("\n")[2], source)  # fmt: skip
        print(f"saved as run {record.key} in {record.folder.parent}")
    return 0


def _overlay_style(args: argparse.Namespace):
    """The overlay's ``display.Style`` from --show, --cmap, --scale, --contrast and --opacity."""
    from .display import Style

    low, sep, high = args.contrast.partition(",")
    try:
        percentiles = {"low": float(low), "high": float(high)} if sep else None
    except ValueError:
        percentiles = None
    if percentiles is None:
        raise ValueError(f"--contrast takes LOW,HIGH percentiles (e.g. 5,99), got {args.contrast!r}")
    if args.zoom < 1:
        raise ValueError(f"--zoom must be at least 1, got {args.zoom}")
    changes = {"cmap": args.cmap} if args.cmap else {}
    return Style.default_for(args.show, scale=args.scale, opacity=args.opacity, **percentiles, **changes)


def _cmd_shapes(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.moving_shapes import ShapesOptions, generate
    from .video import write_video

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = ShapesOptions(
        noise=args.noise, distractors=args.distractors, pause=args.pause, white_distractors=args.white_distractors
    )
    index = []
    for i in range(args.n):
        seed = args.seed + i
        sample = generate(seed, options)
        stem = out / f"shapes_{seed}"
        np.save(f"{stem}.npy", sample.video)
        write_video(sample.video, f"{stem}.mp4", fps=8)
        np.savez_compressed(f"{stem}_truth.npz", **sample.ground_truth())
        meta = sample.metadata()
        Path(f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
        index.append(
            {"file": f"shapes_{seed}.npy", **{k: meta[k] for k in ("seed", "sides", "shape", "angle", "has_pause")}}
        )
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {args.n} clips to {out} (.npy, .mp4, _truth.npz, .json; index.json)")
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"takes a whole number of at least 1, got {text}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from .models.training import TrainSettings, train
    from .zoo_report import headline_metric

    config = json.loads(args.config) if args.config else {}
    if args.init_prefix and not args.init_from:
        raise ValueError("--init-prefix chooses which weights --init-from copies: give --init-from too")
    settings = TrainSettings(
        arch=args.arch,
        task=args.task,
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        validate_every=args.validate_every,
        checkpoint_every=args.checkpoint_every,
        threads=args.threads,
        config=config,
        test_clips=args.test_clips,
        validation_clips=args.validation_clips,
        robustness_clips=args.robustness_clips,
        backbone_weights=args.backbone_weights,
        init_from=args.init_from,
        init_prefix=args.init_prefix,
        frames=args.frames,
        size=args.size,
        progress=args.progress,
        max_distractors=args.max_distractors,
        device=args.device,
    )
    command = "python -m xai_core " + shlex.join(args.argv)  # as typed, also when main() is called from Python
    card = train(settings, command=command, log=lambda m: print(m, file=sys.stderr, flush=True))
    stopped = card["training"].get("stopped_early")
    when = (
        f" (stopped early at step {card['training']['steps_done']} of {args.steps}; the same command continues it)"
        if stopped
        else ""
    )
    print(f"saved {args.out}.safetensors and {args.out}.json{when}: {headline_metric(card, clips=True)}")
    return 0


def _cmd_retest(args: argparse.Namespace) -> int:
    import torch

    from .models.training import retest

    if args.threads:
        torch.set_num_threads(args.threads)
    card = retest(args.checkpoint, args.test_clips, args.robustness_clips)
    for group in ("test", "robustness"):
        for cond, metrics in card["metrics"][group].items():
            figure = metrics.get("accuracy", metrics.get("mae_degrees"))
            unit = "accuracy" if "accuracy" in metrics else "degrees MAE"
            print(f"{group:10s} {cond:36s} {figure:.3f} {unit} ({metrics['clips']} clips)")
    print(f"updated {args.checkpoint}.json")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_suite, to_markdown

    if bool(args.zoo) == bool(args.model):
        raise ValueError("evaluate takes --model M or --zoo (every zoo model), not both or neither")
    if (args.resume or args.add_missing) and not args.zoo:
        raise ValueError("--resume and --add-missing keep stored zoo results: they go with --zoo")
    if args.zoo and args.suite != "all":
        raise ValueError("--zoo runs --suite all (sanity, localisation and, for pause models, temporal)")
    if not args.out and not args.markdown:
        raise ValueError("evaluate needs --out DIR or --markdown FILE (or both)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    params: dict[str, dict] = {}
    for item in args.param:
        method, _, rest = item.partition(":")
        if not rest:
            raise ValueError(f"--param for evaluate takes METHOD:KEY=VALUE, got {item!r}")
        params.setdefault(method, {}).update(parse_params([rest]))

    def progress(done: int, total: int, what: str) -> None:
        print(f"\r[{done}/{total}] {what}".ljust(78), end="", file=sys.stderr, flush=True)

    if args.suite == "all":
        return _evaluate_all(args, methods, params, None if args.quiet else progress)
    model = _load_model(args.model, args.device, args)
    result = run_suite(
        args.suite,
        model,
        methods,
        n=args.n,
        seed=args.seed,
        noise=args.noise,
        distractors=args.distractors,
        params=params,
        progress=None if args.quiet else progress,
        randomised=args.randomised,
        slow_clips=args.slow_n,
    )
    if not args.quiet:
        print(file=sys.stderr)
    text = to_markdown(result)
    print(text)
    _write_outputs(args, args.suite, result, text)
    if not args.no_store:
        from .evaluate.saved import clips_text, save_evaluation, suite_settings

        names = [row["method"] for row in result["rows"]]
        settings = suite_settings(args.suite, names, args.n, args.seed, args.noise, args.distractors,
                                  args.randomised, params, args.slow_n)  # fmt: skip
        record = save_evaluation(_run_store(args), model, f"{args.suite} suite", settings, result,
                                 float(result.get("seconds", 0.0)), text.splitlines()[0].lstrip("# "),
                                 clips_text(args.n, args.seed))  # fmt: skip
        print(f"saved as run {record.key} in {record.folder.parent}")
    return 0


def _write_outputs(args: argparse.Namespace, stem: str, result: dict, text: str) -> None:
    from .evaluate.suites import jsonable

    written = []
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.json").write_text(json.dumps(jsonable(result), indent=2, allow_nan=False) + "\n")
        (out / f"{stem}.md").write_text(text)
        written += [out / f"{stem}.json", out / f"{stem}.md"]
    if args.markdown:
        Path(args.markdown).write_text(text)
        written.append(Path(args.markdown))
    print("wrote " + ", ".join(str(p) for p in written))


def _evaluate_all(args: argparse.Namespace, methods: list[str] | None, params: dict, progress) -> int:
    """``--suite all``: the zoo report (``--zoo``) or one model's section of it."""
    from .evaluate import report
    from .models.priors import architecture_priors
    from .models.zoo import checkpoints_dir, zoo_names

    # --resume only saves time (the results are those of a fresh run), so the report names the plain command
    # (with --add-missing the report says which code measured which figures)
    command = "python -m xai_core " + shlex.join(a for a in args.argv if a not in ("--resume", "--add-missing"))
    options = {"noise": args.noise, "distractors": args.distractors, "params": params, "slow_clips": args.slow_n}
    if args.zoo:
        names = zoo_names()
        if not names:
            raise ValueError("the zoo is empty: no checkpoints in " + str(checkpoints_dir()))

        def each(name: str, done: int, total: int, what: str) -> None:
            if progress is not None:
                progress(done, total, f"{name}: {what}")

        store = methods is None or args.store
        evaluation = report.evaluate_zoo(
            names,
            args.n,
            args.seed,
            methods,
            args.device,
            each,
            store=store,
            resume=args.resume,
            add_missing=args.add_missing,
            **options,
        )
        if progress is not None:
            print(file=sys.stderr)
        text = report.to_markdown(evaluation, command)
        print(text)
        if store:
            print(f"wrote {checkpoints_dir() / report.RESULTS_FILE}")
        _write_outputs(args, "all", evaluation, text)
        return 0
    model = _load_model(args.model, args.device, args)
    entry = report.evaluate_model(model, args.n, args.seed, methods, progress, **options)
    if progress is not None:
        print(file=sys.stderr)
    arch = getattr(model.info, "arch", "") or ""
    entry = {
        "arch": arch or "user model",
        "task": report.shapes_task(model) or model.task,
        "frames": model.input_spec.frames,
        "priors": architecture_priors(arch, getattr(model.info, "config", None) or {}),
        "headline": "measured by this command",
        **entry,
    }
    text = "\n".join(report.model_section(model.name, entry))
    print(text)
    _write_outputs(args, "all", entry, text)
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    names = lambda text: [n.strip() for n in text.split(",") if n.strip()]  # noqa: E731
    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"--params is not valid JSON: {exc}") from None
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise ValueError('--params takes {"METHOD": {"KEY": VALUE}}, e.g. {"integrated_gradients": {"steps": 16}}')
    if args.engine == "local":  # the workers' imports (torch: a second or more) from now on, beside the driver's
        from .batch.local import start_worker_server

        start_worker_server()
    from .batch import BatchSpec, run_batch

    spec = BatchSpec(names(args.models), names(args.methods), args.clips, params, args.target, args.suite)
    counts = run_batch(spec, args.out, engine=args.engine, workers=args.workers, address=args.address,
                       device=args.device, runs=args.runs, retry_failed=args.retry_failed,
                       threads=args.threads)  # fmt: skip
    print(f"{counts['total']} items in {args.out}: {counts['ok']} ok, {counts['failed']} failed "
          f"({counts['skipped']} done before; this run {counts['ran_ok']} ok, {counts['ran_failed']} failed "
          f"in {counts['seconds']:.1f} s)")  # fmt: skip
    print(f"wrote {Path(args.out) / 'results.parquet'} and {Path(args.out) / 'summary.md'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import suite

    keep = tuple(part.strip() for part in (args.keep or "").split(",") if part.strip())
    suite.main(args.out, quick=args.quick, markdown=args.markdown, threads=args.threads, keep=keep)
    print(
        f"wrote {Path(args.out) / 'bench.json'} and {Path(args.out) / 'BENCHMARKS.md'}"
        + (f" and {args.markdown}" if args.markdown else "")
    )
    return 0


def parse_size(values: list[str]) -> tuple[int, int]:
    """['64x48'] or ['64', '48'] (height, width) or ['64'] (square) -> (64, 48)."""
    parts = values[0].lower().split("x") if len(values) == 1 else values
    try:
        sizes = [int(v) for v in parts]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(f"--size takes HxW (or H W), e.g. 112x112, got {' '.join(values)!r}")
    return sizes[0], sizes[1]


def model_statements(args: argparse.Namespace) -> dict:
    """What the user stated about their own model on the command line -> load_model keywords."""
    from .channels import parse_channels

    statements = {
        "weights": args.weights,
        "labels_file": args.labels,
        "task": args.task,
        "frames": args.frames,
        "layout": args.layout,
        "cam_layer": args.cam_layer,
        "backbone_weights": args.backbone_weights,
    }
    if args.size:
        statements["height"], statements["width"] = parse_size(args.size)
    if args.mean:
        statements["mean"] = parse_channels(args.mean, "--mean")
    if args.std:
        statements["std"] = parse_channels(args.std, "--std", positive=True)
    if args.config:
        try:
            statements["config"] = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config is not valid JSON: {exc}") from None
    return {k: v for k, v in statements.items() if v is not None}


def _load_model(spec: str, device: str, args: argparse.Namespace | None = None):
    from .models.zoo import load_model

    return load_model(spec, device=device, **(model_statements(args) if args is not None else {}))


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xai", description="Video XAI workbench: explain video models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--markdown", metavar="FILE", help="write the zoo's table and training commands (checkpoints/README.md)"
    )
    p.set_defaults(func=_cmd_models)

    def model_options(p: argparse.ArgumentParser, frames_option: str = "--frames") -> None:
        """Statements about your own model (TorchScript file, file.py:factory, architecture name)."""
        g = p.add_argument_group("your own model (TorchScript file, FILE.py:FACTORY, or an architecture name)")
        g.add_argument(
            "--weights",
            help="weights for FILE.py:FACTORY or an architecture: .safetensors, .pt, .pth; or torchvision's by name "
            "for r3d_18, mc3_18, r2plus1d_18, s3d (KINETICS400_V1, DEFAULT: labels, size and normalisation from them)",
        )
        g.add_argument("--labels", metavar="FILE", help="class names, one a line (default: class 0..K-1)")
        g.add_argument("--task", choices=["classification", "regression"])
        g.add_argument(frames_option, dest="frames", type=int, help="frames the model takes")
        g.add_argument("--size", nargs="+", metavar="HxW", help="frame size the model takes: HxW or H W")
        g.add_argument("--mean", metavar="R,G,B", help="normalisation mean per channel (pixels in [0, 1])")
        g.add_argument("--std", metavar="R,G,B", help="normalisation std per channel")
        g.add_argument("--layout", choices=["BTCHW", "BCTHW"], help="input layout the network takes (default: probed)")
        g.add_argument("--cam-layer", help="Grad-CAM layer (default: the last conv layer, when usable)")
        g.add_argument(
            "--config", help='architecture options or factory keyword arguments as JSON, e.g. {"backbone": "resnet18"}'
        )
        g.add_argument(
            "--backbone-weights",
            help="weights for a torchvision frame backbone (resnet18/50, vgg16): a file, or by name (IMAGENET1K_V1)",
        )

    p = sub.add_parser("methods", help="list explanation methods (those a model supports)")
    p.add_argument("--model", help="zoo name, checkpoint or your own model; marks which methods it supports")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--cards",
        action="store_true",
        help="each method's card: what it computes, the paper, what it needs, cannot show, fails at, costs",
    )
    p.add_argument("--markdown", metavar="FILE", help="write the cards as Markdown (docs/methods.md)")
    model_options(p)
    p.set_defaults(func=_cmd_methods)

    def run_store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--runs", metavar="DIR", help="the run store (default: $XAI_RUNS, else runs/)")
        p.add_argument("--no-store", action="store_true", help="neither look up nor save the run in the run store")

    def model_video(p: argparse.ArgumentParser, frames_option: str = "--frames") -> None:
        p.add_argument(
            "--model",
            required=True,
            help="zoo name (cnn_transformer-sides), checkpoint path, TorchScript file, FILE.py:FACTORY, "
            "or architecture name (r3d_18, s3d, ...)",
        )
        p.add_argument("--video", required=True, help="video file, folder of frames, .npy/.npz, or shapes:SEED")
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        model_options(p, frames_option)

    p = sub.add_parser("predict", help="a model's prediction on a video")
    model_video(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("explain", help="explain a model's prediction on a video")
    model_video(p)
    p.add_argument("--method", required=True)
    p.add_argument("--target", default=None, help="class index or label; regression: output or ref=VALUE")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument("--out", help="also write explanation.npz and explanation.json to this folder")
    p.add_argument(
        "--plan",
        action="store_true",
        help="long methods (frame_mask, occlusion, tsr_onestep, tsr): print how many model evaluations they need "
        "and about how long they take here (timed on a sample), and stop",
    )
    p.add_argument("--overlay", help="also write the map over the frames as FILE.mp4 (H.264) or FILE.gif")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the overlay video")
    p.add_argument(
        "--show",
        default="positive",
        choices=["positive", "abs", "signed"],  # display.MODES (not imported: --help stays fast)
        help="overlay: the positive part (evidence for the target), the magnitude, or both signs",
    )
    p.add_argument("--cmap", default=None, help="overlay colour map (default: turbo; bwr for --show signed)")
    p.add_argument(  # display.SCALES
        "--scale", default="frame", choices=["frame", "clip"], help="overlay: one range per frame or clip"
    )
    p.add_argument(
        "--contrast",
        default="5,99",
        metavar="LOW,HIGH",
        help="overlay: percentiles of the shown values drawn as nothing (LOW) and as full colour (HIGH)",
    )
    p.add_argument("--opacity", type=float, default=0.6, help="overlay: opacity of full colour")
    p.add_argument("--zoom", type=int, default=3, help="overlay: enlarge the frames this many times")
    p.add_argument("--no-colorbar", action="store_true", help="overlay: leave out the colour bar")
    run_store_options(p)
    p.add_argument("--recompute", action="store_true", help="compute again even when the run is saved")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser(
        "evaluate-model", help="where a model errs: confusion matrix, precision / recall / F1, ROC (or errors)"
    )
    p.add_argument("--model", required=True, help="zoo name, checkpoint or your own model")
    p.add_argument(
        "--clips",
        default="shapes",
        help="shapes (held-out Moving Shapes clips for the model's task) or a folder with one subfolder per class",
    )
    p.add_argument("--n", type=int, default=100, help="shapes: how many clips")
    p.add_argument("--seed", type=int, default=1_500_000_000, help="shapes: seed of the first clip")
    p.add_argument("--noise", type=float, default=8.0, help="shapes: noise std in grey levels")
    p.add_argument("--distractors", type=int, default=2, help="shapes: distractor shapes")
    p.add_argument("--out", required=True, help="folder for quality.json and quality.md")
    p.add_argument("--runs", metavar="DIR", help="the run store (default: $XAI_RUNS, else runs/)")
    p.add_argument("--no-store", action="store_true", help="do not keep the result in the run store")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")
    model_options(p)
    p.set_defaults(func=_cmd_evaluate_model)

    p = sub.add_parser("runs", help="saved runs: list, show, export (zip) or delete them")
    p.add_argument("action", choices=["list", "show", "export", "delete"])
    p.add_argument("keys", nargs="*", metavar="KEY", help="run keys, or their first digits (show, export, delete)")
    p.add_argument("--model", help="list: only this model's runs")
    p.add_argument("--method", help="list: only this method's runs")
    p.add_argument("--json", action="store_true", help="list, show: as JSON")
    p.add_argument("--out", help="export: the zip to write (arrays, record, overlay.mp4, curve.csv, strip.png)")
    p.add_argument("--runs", metavar="DIR", help="the run store (default: $XAI_RUNS, else runs/)")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("strip", help="a film strip for a paper: frames, a frame curve, one row of overlays a method")
    model_video(p, frames_option="--model-frames")  # --frames: the strip's
    p.add_argument("--methods", required=True, help="comma-separated methods, one row each, e.g. gradcam,lrp")
    p.add_argument("--out", required=True, help="FILE.png (print resolution), FILE.svg or FILE.pdf")
    p.add_argument("--frames", dest="count", type=int, default=8, help="how many frames the strip shows")
    p.add_argument(
        "--pick", default="every", choices=["every", "top"], help="evenly spread frames, or the curve's top frames"
    )
    p.add_argument("--curve", help="the method whose frame curve is the first strip (default: the first of --methods)")
    p.add_argument("--target", default=None, help="class index or label; regression: output or ref=VALUE")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution")
    p.add_argument("--show", default="positive", choices=["positive", "abs", "signed"])
    p.add_argument("--cmap", default=None)
    p.add_argument("--scale", default="frame", choices=["frame", "clip"])
    p.add_argument("--contrast", default="5,99", metavar="LOW,HIGH")
    p.add_argument("--opacity", type=float, default=0.6)
    p.add_argument("--zoom", type=int, default=1, help=argparse.SUPPRESS)
    run_store_options(p)
    p.set_defaults(func=_cmd_strip)

    p = sub.add_parser("shapes", help="write Moving Shapes clips with their ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True, help="seed of the first clip; clip i uses seed + i")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise std in grey levels (0-255)")
    p.add_argument("--distractors", type=int, default=0)
    p.add_argument("--white-distractors", action="store_true")
    p.add_argument("--pause", action="store_true", help="the shape stops moving for a while")
    p.set_defaults(func=_cmd_shapes)

    p = sub.add_parser("train", help="train an architecture on Moving Shapes")
    p.add_argument("--arch", required=True)
    p.add_argument("--task", required=True, choices=["sides", "angle", "pause"])
    p.add_argument("--out", required=True, help="checkpoint stem, e.g. checkpoints/cnn_transformer-sides")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=250)
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        help="steps between resume files (a killed run continues from the last one); 0: only at validations",
    )
    p.add_argument("--validation-clips", type=int, default=200)
    p.add_argument("--test-clips", type=int, default=500)
    p.add_argument("--robustness-clips", type=int, default=200)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--config", default=None, help='architecture options as JSON, e.g. {"backbone": "resnet18"}')
    p.add_argument(
        "--backbone-weights", default=None, help="weights (.safetensors/.pt) for a torchvision frame backbone"
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="CHECKPOINT",
        help="start from a checkpoint's weights (zoo name or path to NAME.safetensors): every weight under "
        "--init-prefix that this model also has, by name (a shape mismatch is an error), e.g. a trained model's "
        "frame encoder; the card records the source, its sha256 and the tensors",
    )
    p.add_argument(
        "--init-prefix",
        default="",
        metavar="PREFIX",
        help='with --init-from: only the weights whose names start with this, e.g. "frame_encoder."',
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where to train (the card records it)"
    )
    p.add_argument("--frames", type=int, default=None, help="clip length (default 32; at least 8)")
    p.add_argument("--size", type=int, default=None, help="frame height and width in pixels (default 112)")
    p.add_argument(
        "--max-distractors",
        type=int,
        default=3,
        help="distractor shapes at most (0-3) in training, validation and test clips; 0 makes a task that one "
        "frame can solve (the moving shape is the only one)",
    )
    p.add_argument(
        "--progress",
        default=None,
        metavar="FILE",
        help="append JSON lines (one per step, validation, stop and end) to FILE; SIGTERM or Ctrl-C stops "
        "gracefully (the checkpoint is validated, tested and saved; its card says stopped_early)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("retest", help="measure a trained checkpoint's held-out figures again and update its card")
    p.add_argument("checkpoint", help="checkpoint stem, e.g. checkpoints/r3d-sides")
    p.add_argument("--test-clips", type=int, default=None)
    p.add_argument("--robustness-clips", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_cmd_retest)

    p = sub.add_parser(
        "evaluate",
        help="score methods against Moving Shapes' ground truth (pointing game, ranks, ...)",
        allow_abbrev=False,  # the report quotes the command as typed, less --resume
    )
    p.add_argument(
        "--suite",
        required=True,
        choices=["localization", "sanity", "temporal", "all"],
        help="all: sanity (with localisation of the trained and randomised model) and, for pause models, temporal",
    )
    p.add_argument("--model", help="zoo name, checkpoint or your own model (it sees Moving Shapes clips)")
    p.add_argument("--zoo", action="store_true", help="every zoo model in turn (instead of --model)")
    p.add_argument(
        "--randomised",
        action="store_true",
        help="localization: also explain a copy with every weight randomised, beside each method",
    )
    p.add_argument("--markdown", help="also write the report here (e.g. EVALUATION.md at the repository root)")
    p.add_argument(
        "--store",
        action="store_true",
        help="--zoo with --methods: still store the results in the zoo's evaluation.json (a run of every method "
        "always does; the app's warnings read it)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="--zoo: keep a model's stored results when they were measured on the same weights with the same "
        "settings (clips, seed, methods, noise, distractors, parameters, --slow-n, the card's config) by the same "
        "code, and the rows of the methods a stopped run finished for a model (evaluation.partial.json); measure "
        "the rest (results are stored when every method runs, or with --store)",
    )
    p.add_argument(
        "--add-missing",
        action="store_true",
        help="--zoo: keep a model's stored results measured on the same weights with the same settings even by "
        "other code on this device, and measure only the figures they lack (the sanity suite's two random output "
        "layers, and the input methods' maps against the input, whose stored all-weights figures must be "
        "reproduced); the report names the code that measured each",
    )
    p.add_argument("--methods", default=None, help="comma-separated method names (default: every usable one)")
    p.add_argument("--n", type=int, required=True, help="number of clips")
    p.add_argument(
        "--slow-n",
        type=positive_int,
        default=None,
        metavar="K",
        help="run TSR (minutes a clip on a CPU) on the first K of the N clips only; its rows say n=K",
    )
    p.add_argument("--out", help="folder for SUITE.json and SUITE.md (needed unless --markdown is given)")
    p.add_argument("--seed", type=int, default=50_000, help="seed of the first clip; clip i uses seed + i")
    p.add_argument("--noise", type=float, default=8.0, help="Gaussian noise std in grey levels (0-255)")
    p.add_argument("--distractors", type=int, default=2)
    p.add_argument(
        "--param", action="append", default=[], metavar="METHOD:KEY=VALUE", help="method parameter (repeatable)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--runs", metavar="DIR", help="--model: the run store the result is kept in (default: $XAI_RUNS)")
    p.add_argument("--no-store", action="store_true", help="--model: do not keep the result in the run store")
    model_options(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "batch",
        help="explain (and evaluate) a dataset: models x clips x methods, resumable, on local workers or Ray",
    )
    p.add_argument("--models", required=True, help="comma-separated zoo names or checkpoint paths")
    p.add_argument("--methods", required=True, help="comma-separated method names")
    p.add_argument(
        "--clips",
        required=True,
        metavar="SOURCE",
        help="a folder of videos, a CSV / Parquet manifest (path, optional label, start, end in seconds), or a "
        "Moving Shapes range shapes:FIRST..END?noise=8&distractors=2 (seeds FIRST to END-1)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="results.parquet, summary.md, rows.jsonl, runs/")
    p.add_argument("--params", help='method parameters as JSON: {"METHOD": {"KEY": VALUE}}')
    p.add_argument(
        "--target",
        default="predicted",
        help="predicted (default), label (the manifest's, or Moving Shapes' true class), a class index or label, "
        "output or ref=VALUE",
    )
    p.add_argument("--suite", choices=["localization", "sanity", "temporal"], help="score every item in this suite")
    p.add_argument("--engine", default="local", choices=["local", "ray"], help="ray: pip install -e .[ray]")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (ray: a local cluster's CPUs)")
    p.add_argument("--address", help="ray: a running cluster's address (auto, HOST:6379, ray://HOST:10001)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--runs", metavar="DIR", help="the run store the workers save runs in (default: DIR/runs)")
    p.add_argument("--retry-failed", action="store_true", help="run the items that failed before again")
    p.add_argument(
        "--threads", type=positive_int, help="torch threads of each worker (default: the cores over the workers)"
    )
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("bench", help="measure speed (medians, ratios against peers) into BENCHMARKS.md")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--out", required=True, help="folder for bench.json and BENCHMARKS.md")
    p.add_argument("--markdown", help="also write the report here (e.g. BENCHMARKS.md at the repository root)")
    p.add_argument("--threads", type=int, help="torch threads for the measurements (default: torch's own)")
    p.add_argument(
        "--keep",
        help="slow sections to take from OUT/bench.json instead of measuring again: temporal, video "
        "(comma-separated; their dates are kept in the report)",
    )
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for reports
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # bad input: VideoError, ModelError, MethodError, TargetError
        if os.environ.get("XAI_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # one line for the user; XAI_DEBUG=1 shows the traceback
        if os.environ.get("XAI_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
