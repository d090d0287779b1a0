"""Hyper-parameter sweeps of the Fashion-MNIST example on Optuna (docs/sweeps.md).

    python examples/sweep.py run --name wd --trials 40 --workers 4   # rerun the same to resume
    python examples/sweep.py status --name wd
    python examples/sweep.py finalize --name wd                      # the one look at test data

    # several machines, one PostgreSQL:
    python examples/sweep.py run --name wd --trials 40 --workers 0 \
        --storage postgresql+psycopg://...
    python examples/sweep.py worker --name wd --workers 16 --storage postgresql+psycopg://...

Each trial is an ordinary run directory of examples/fashion_mlp.py (runs/sweeps/NAME/trial-0007/)
trained on the training split and judged on the validation split only; a trial retried after
its worker died resumes bit-exactly from that directory's checkpoint. Trial 0 is the example's
default configuration and is never pruned. Needs the sweep extra: pip install 'tinygrad_mlp[sweep]'.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fashion_mlp as fm  # noqa: E402  (the example this sweep tunes)
from sweep_trial import (UsageError, cache_splits, load, make_objective,  # noqa: E402
                         make_pruner, make_sampler, new_settings, storage_of, sweep_dir,
                         sweep_lib, liveness_dir, train_run, finish_run, trial_config)

import tinygrad_mlp as tg  # noqa: E402
from tinygrad_mlp.data import DataLoader  # noqa: E402
from tinygrad_mlp.training import evaluate  # noqa: E402


# ------------------------------------------------------------------------ commands

def child_command(args, index_placeholder="{index}"):
    return [sys.executable, os.path.abspath(__file__), "_child", "--name", args.name,
            "--root", args.root, "--storage", storage_of(args), "--heartbeat",
            str(args.heartbeat), "--index", index_placeholder] + \
        (["--data-dir", args.data_dir] if args.data_dir else [])


def start(args, n, settings):
    _, sweep = sweep_lib()
    cache_splits(args, settings)
    print(f"starting {n} worker process(es), one BLAS thread each", flush=True)
    codes = sweep.wait_workers(sweep.start_workers(child_command(args), n))
    failed = [c for c in codes if c != 0]
    if failed:
        print(f"sweep.py: {len(failed)} worker(s) exited with an error (codes {failed}); "
              f"rerun the same command to continue", file=sys.stderr)
    return 1 if failed else 0


def cmd_run(args) -> int:
    settings = new_settings(args)
    settings["trials"] = args.trials
    study, saved = load(args, create=True)
    if saved is None:
        study.set_user_attr("sweep", settings)
        defaults = {k: fm.DEFAULTS[k] for k in settings["space"]}
        study.enqueue_trial(defaults, user_attrs={"baseline": True})
        print(f"sweep {args.name!r} created in {storage_of(args)}: {args.trials} trials of "
              f"{settings['epochs']} epochs; trial 0 is the default configuration", flush=True)
    else:
        differs = [k for k in settings if k != "trials" and saved.get(k) != settings[k]]
        if differs:
            changes = "; ".join(f"{k} was {saved.get(k)!r}, now {settings[k]!r}" for k in differs)
            raise UsageError(f"the sweep {args.name!r} already exists with other settings "
                             f"({changes}); rerun it with the same options, or choose another "
                             f"--name")
        if saved.get("trials") != args.trials:
            saved["trials"] = args.trials
            study.set_user_attr("sweep", saved)
        _, sweep = sweep_lib()
        print(f"sweep {args.name!r} resumed: {sweep.finished_count(study)} of {args.trials} "
              f"trials finished", flush=True)
    if args.workers == 0:
        print(f"no workers started here; start them with: sweep.py worker --name {args.name} "
              f"--storage {storage_of(args)} --workers N", flush=True)
        return 0
    code = start(args, args.workers, saved or settings)
    print_status(args, top=5)
    return code


def cmd_worker(args) -> int:
    _, settings = load(args)  # refuses clearly if the sweep does not exist
    return start(args, args.workers, settings)


def cmd_child(args) -> int:
    optuna, sweep = sweep_lib()
    study, settings = load(args)
    study = sweep.open_study(storage_of(args), args.name, create=False,
                             sampler=make_sampler(settings, args.index),
                             pruner=make_pruner(settings), heartbeat_interval=args.heartbeat)
    threads = sweep.blas_threads()["threads"]
    if threads not in (None, 1):
        print(f"worker {args.index}: {threads} BLAS threads although one was asked for",
              file=sys.stderr, flush=True)
    try:
        sweep.work(study, make_objective(args, settings, args.index), settings["trials"],
                   liveness_dir=liveness_dir(args))
    except KeyboardInterrupt:
        return 130
    return 0


# ------------------------------------------------------------------------ status

def trial_table(study):
    from optuna.trial import TrialState
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return trials, sorted(done, key=lambda t: -t.value)


def root_of(t) -> int:
    return int(t.system_attrs.get("failed_trial", t.number))


def standard_error(p, n) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def paired_se(dir_a: Path, dir_b: Path):
    """Standard error of the difference of two accuracies on the same validation images, from
    which images each run got right; None if either run's record is not on this machine."""
    try:
        a = np.load(dir_a / "val_correct.npy").astype(np.float64)
        b = np.load(dir_b / "val_correct.npy").astype(np.float64)
    except OSError:
        return None
    if a.shape != b.shape:
        return None
    d = a - b
    return float(d.std(ddof=1) / math.sqrt(len(d)))


def print_status(args, top=5) -> int:
    from optuna.trial import TrialState
    study, settings = load(args)
    trials, ranked = trial_table(study)
    surplus = sum(bool(t.user_attrs.get("surplus")) for t in trials)
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    counts["FAIL"] -= surplus
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    epochs = sum(len(t.intermediate_values) for t in finished)
    budget = len(finished) * settings["epochs"]
    print(f"sweep {args.name!r}: {counts['COMPLETE'] + counts['PRUNED']} of {settings['trials']} "
          f"finished ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned), "
          f"{counts['RUNNING']} running, {counts['WAITING']} waiting, {counts['FAIL']} failed "
          f"(dead workers' trials, retried){f', {surplus} surplus' if surplus else ''}; "
          f"{epochs} of {budget} epochs trained "
          f"({100 * epochs / max(budget, 1):.0f} %)")
    threads = sorted({t.user_attrs.get("blas_threads") for t in finished}, key=str)
    print(f"BLAS threads per trial: {threads}")
    base = next((t for t in ranked if t.user_attrs.get("baseline")), None)
    if not ranked:
        print("no complete trial yet")
        return 0
    n = next((t.user_attrs.get("val_size") for t in ranked if t.user_attrs.get("val_size")), None)
    root = sweep_dir(args)
    print(f"{'trial':>5} {'val_acc':>8} {'± se':>7} {'gap to 0':>9} {'± se':>7}  parameters")
    for t in ranked[:top]:
        se = standard_error(t.value, n) if n else float("nan")
        gap, gse = "", ""
        if base is not None:
            g = t.value - base.value
            s = paired_se(root / f"trial-{root_of(t):04d}", root / f"trial-{root_of(base):04d}")
            if s is None and n:  # unpaired: an upper bound on the paired one
                s = math.hypot(standard_error(t.value, n), standard_error(base.value, n))
            gap, gse = f"{100 * g:+8.2f}%", f"{100 * s:6.2f}%" if s is not None else ""
        label = f"{t.number}{'*' if t.user_attrs.get('baseline') else ''}"
        print(f"{label:>5} {100 * t.value:7.2f}% {100 * se:6.2f}% {gap:>9} {gse:>7}  "
              f"{json.dumps(t.params)}")
    if base is None:
        print("trial 0 (the default, marked *) has not completed yet")
    elif base not in ranked[:top]:
        print(f"trial 0 (the default): {100 * base.value:.2f}% (rank "
              f"{ranked.index(base) + 1} of {len(ranked)})")
    print(f"validation images: {n}; se = standard error on them (gap: paired, from which "
          f"images each run got right)")
    return 0


def cmd_status(args) -> int:
    return print_status(args, args.top)


# ------------------------------------------------------------------------ finalize

def cmd_train_one(args) -> int:
    """One retraining for finalize, in its own process (one BLAS thread)."""
    _, sweep = sweep_lib()
    job = json.loads(Path(args.job).read_text())
    run_dir = Path(job["run_dir"])
    model, history, val_set = train_run(job["config"], run_dir, job["settings"], args.data_dir,
                                        cache=Path(job["cache"]))
    finish_run(model, history, val_set, run_dir,
               dict(blas_threads=sweep.blas_threads()["threads"]))
    return 0


def cmd_finalize(args) -> int:
    _, sweep = sweep_lib()
    study, settings = load(args)
    root = sweep_dir(args)
    final_path = root / "final.json"
    if final_path.exists() and not args.force:
        raise UsageError(f"{final_path} exists: this sweep's test set was already evaluated. "
                         f"Every further look makes the test figure less of a test; pass --force "
                         f"to evaluate it again anyway")
    if args.seeds < 1 or args.top < 1:
        raise UsageError("--seeds and --top must be at least 1")
    trials, ranked = trial_table(study)
    base = next((t for t in ranked if t.user_attrs.get("baseline")), None)
    if base is None:
        raise UsageError("trial 0 (the default) has not completed; finish the sweep first")
    candidates = ranked[:args.top] + ([base] if base not in ranked[:args.top] else [])
    seeds = [settings["split_seed"] + i for i in range(args.seeds)]
    jobs, runs = [], {}
    final_dir = root / "final"
    final_dir.mkdir(parents=True, exist_ok=True)
    for t in candidates:
        number = root_of(t)
        runs[number] = []
        for seed in seeds:
            run_dir = root / f"trial-{number:04d}"  # the trial itself is the first seed...
            if seed != seeds[0] or not all((run_dir / f).exists()
                                           for f in ("result.json", "model.npz")):
                # ...unless it ran on another machine of a database sweep
                run_dir = final_dir / f"trial-{number:04d}-seed-{seed}"
            runs[number].append(run_dir)
            if not (run_dir / "result.json").exists():
                job = final_dir / f"trial-{number:04d}-seed-{seed}.json"
                fm.write_json(job, dict(config=trial_config(settings, t.params, seed=seed),
                                        run_dir=str(run_dir), settings=settings,
                                        cache=str(root / "data")))
                jobs.append(job)
    if jobs:
        cache_splits(args, settings)
    print(f"finalize: {len(candidates)} configurations x {len(seeds)} seeds; {len(jobs)} "
          f"runs to train ({args.workers} at a time)", flush=True)
    pending = list(jobs)
    running = []
    while pending or running:
        while pending and len(running) < args.workers:
            cmd = [sys.executable, os.path.abspath(__file__), "_train", "--job",
                   str(pending.pop(0))] + (["--data-dir", args.data_dir] if args.data_dir else [])
            running += sweep.start_workers(cmd, 1)
        time.sleep(0.5)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            if p.returncode != 0:
                for q in running:
                    q.terminate()
                raise UsageError(f"a retraining failed (exit code {p.returncode}); rerun "
                                 f"finalize to continue")
    table = []
    for t in candidates:
        number = root_of(t)
        accs = [json.loads((d / "result.json").read_text())["val_acc"] for d in runs[number]]
        table.append(dict(trial=number, baseline=bool(t.user_attrs.get("baseline")),
                          params=t.params, val_acc=accs, val_acc_mean=float(np.mean(accs)),
                          val_acc_sd=float(np.std(accs, ddof=1)) if len(accs) > 1 else None))
    table.sort(key=lambda r: -r["val_acc_mean"])
    chosen = table[0]
    default = next(r for r in table if r["baseline"])
    for r in table:
        print(f"trial {r['trial']:>4}{'*' if r['baseline'] else ' '} mean val_acc "
              f"{100 * r['val_acc_mean']:.2f}% over seeds {seeds}: "
              f"{[round(100 * a, 2) for a in r['val_acc']]}")
    # Recorded before the test set is touched, so an interrupted evaluation still counts as a look.
    fm.write_json(final_path, dict(status="testing", chosen_trial=chosen["trial"]))
    config = trial_config(settings, chosen["params"])
    _, _, _, test_set, _ = fm.prepare_data(dict(fm.DEFAULTS, **settings["base"],
                                             seed=settings["split_seed"]), args.data_dir)
    tests = []
    for run_dir in runs[chosen["trial"]]:
        model = fm.build_model(config, np.random.default_rng(0))
        model.load_state_dict(tg.load(run_dir / "model.npz"))
        result = evaluate(model, DataLoader(*test_set, 1000))
        tests.append(dict(run_dir=str(run_dir), test_acc=result.accuracy,
                          test_loss=result.loss))
    accs = [r["test_acc"] for r in tests]
    final = dict(status="done", chosen=chosen, default=default, candidates=table, seeds=seeds,
                 epochs=settings["epochs"], subset=settings["subset"],
                 gap_val_mean=chosen["val_acc_mean"] - default["val_acc_mean"],
                 test=tests, test_acc_mean=float(np.mean(accs)),
                 test_acc_sd=float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
                 test_size=int(len(test_set[1])), tested_at=time.strftime("%Y-%m-%d %H:%M:%S"))
    fm.write_json(final_path, final)
    print(f"chosen: trial {chosen['trial']} {json.dumps(chosen['params'])}\n"
          f"validation {100 * chosen['val_acc_mean']:.2f}% (default "
          f"{100 * default['val_acc_mean']:.2f}%), test {100 * final['test_acc_mean']:.2f}% "
          f"(mean of {len(accs)} seeds on {final['test_size']} images); written to "
          f"{final_path}")
    return 0


# ------------------------------------------------------------------------ command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Hyper-parameter sweeps of examples/fashion_mlp.py "
                                            "on Optuna (docs/sweeps.md).")
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        q.add_argument("--name", required=True, help="the sweep's name")
        q.add_argument("--storage", help="a journal file's path (default "
                       "ROOT/NAME/journal.log) or a database URL "
                       "(postgresql+psycopg://user:password@host/db)")
        q.add_argument("--root", default=os.path.join("runs", "sweeps"),
                       help="where trial directories go (default runs/sweeps)")
        q.add_argument("--heartbeat", type=int, default=30,
                       help="database storages: seconds between a running trial's heartbeats; "
                            "a trial silent for 4 of them is retried (default 30)")
        q.add_argument("--data-dir", help="directory holding the four Fashion-MNIST files")
        return q

    q = common(sub.add_parser("run", help="create or resume a sweep and run its workers here"))
    q.add_argument("--trials", type=int, default=40, help="trials to finish (default 40)")
    q.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes on this machine (default: one per core; 0: none)")
    q.add_argument("--epochs", type=int, help=f"epochs per trial (default "
                                              f"{fm.DEFAULTS['epochs']})")
    q.add_argument("--subset", type=int, help="train on only the first N training images")
    q.add_argument("--space", help="a JSON file with the search space (replaces the default)")
    q.add_argument("--seed", type=int, default=0, help="the samplers' seed (default 0)")
    q = common(sub.add_parser("worker", help="join an existing sweep with more workers"))
    q.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    q = common(sub.add_parser("status", help="the best trials against trial 0"))
    q.add_argument("--top", type=int, default=5)
    q = common(sub.add_parser("finalize", help="retrain the best and the default with several "
                                               "seeds, choose on validation, test once"))
    q.add_argument("--top", type=int, default=3, help="configurations to retrain (default 3)")
    q.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    q.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    q.add_argument("--force", action="store_true", help="evaluate the test set again")
    q = common(sub.add_parser("_child", help=argparse.SUPPRESS))
    q.add_argument("--index", type=int, default=0)
    q = sub.add_parser("_train", help=argparse.SUPPRESS)
    q.add_argument("--job", required=True)
    q.add_argument("--data-dir")
    args = p.parse_args(argv)
    if getattr(args, "workers", 1) < 0 or (args.command in ("worker", "finalize")
                                           and args.workers < 1):
        p.error(f"--workers must be at least {0 if args.command == 'run' else 1}")
    if getattr(args, "trials", 1) < 1:
        p.error("--trials must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    commands = dict(run=cmd_run, worker=cmd_worker, status=cmd_status, finalize=cmd_finalize,
                    _child=cmd_child, _train=cmd_train_one)
    try:
        return commands[args.command](args)
    except UsageError as e:
        print(f"sweep.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
