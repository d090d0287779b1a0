"""Sweeps (tinygrad_mlp.sweep, examples/sweep.py): pruning, worker processes with one BLAS
thread, dead workers' trials retried from their checkpoints, a journal file and PostgreSQL, and
finalize's single look at the test set."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tg

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "sweep_toy_worker.py"
SWEEP = ROOT / "examples" / "sweep.py"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
sys.path.insert(0, str(TOY.parent))


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def optuna_or_skip():
    return pytest.importorskip("optuna", reason="the sweep extra is not installed: pip install "
                                                "'tinygrad_mlp[sweep]'")


def test_import_tinygrad_mlp_leaves_optuna_unloaded():
    code = ("import sys, tinygrad_mlp; assert 'tinygrad_mlp.sweep' not in sys.modules; "
            "import tinygrad_mlp.sweep; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('optuna', 'sqlalchemy', 'psycopg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env(), cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class RecordingTrial:
    """Stands in for an optuna Trial: records reports, prunes when told to."""

    def __init__(self, prune_at=None):
        self.number, self.reports, self.prune_at = 5, [], prune_at

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune_at is not None and self.reports[-1][0] >= self.prune_at


def test_pruned_trial_ends_pruned_and_stops_fit(tmp_path):
    optuna = optuna_or_skip()
    import sweep_toy_worker as toy
    from tinygrad_mlp.sweep import PruningCallback, open_study, work
    # This pruner prunes every trial from epoch 2 on; only the baseline (prune=False) runs on.
    study = open_study(tmp_path / "journal.log", "p",
                       pruner=optuna.pruners.ThresholdPruner(lower=1.1, n_warmup_steps=2))
    trained = {}

    def objective(trial):
        cb = PruningCallback(trial, "val_acc", prune=trial.number != 0)
        model, history = toy.train_toy(0.1, tmp_path / f"trial-{trial.number}", callbacks=[cb])
        trained[trial.number] = len(history)
        if cb.pruned:
            raise optuna.TrialPruned()
        return history.val_acc[-1]

    assert work(study, objective, 2, liveness_dir=tmp_path / "live") == 2
    t0, t1 = study.get_trials()
    assert t0.state.name == "COMPLETE" and trained[0] == toy.EPOCHS
    assert t1.state.name == "PRUNED" and trained[1] == 2
    assert sorted(t1.intermediate_values) == [1, 2]
    # Resuming a pruned run trains nothing more and stays pruned.
    stub = RecordingTrial()
    cb = PruningCallback(stub)
    _, history = toy.train_toy(0.1, tmp_path / "trial-1", callbacks=[cb], resume=True)
    assert len(history) == 2 and cb.pruned and cb.pruned_epoch == 2 and stub.reports == []


def test_pruning_callback_reports_every_epoch_and_checks_its_arguments(tmp_path):
    import sweep_toy_worker as toy
    from tinygrad_mlp.sweep import PruningCallback
    stub = RecordingTrial(prune_at=3)
    cb = PruningCallback(stub)
    _, history = toy.train_toy(0.1, tmp_path / "run", callbacks=[cb])
    assert [s for s, _ in stub.reports] == [1, 2, 3] and len(history) == 3
    assert [v for _, v in stub.reports] == history.val_acc
    with pytest.raises(ValueError, match="monitor"):
        PruningCallback(stub, monitor="accuracy")
    with pytest.raises(TypeError, match="optuna Trial"):
        PruningCallback(object())


def test_open_study_refuses_a_directory(tmp_path):
    optuna_or_skip()
    from tinygrad_mlp.sweep import open_study
    with pytest.raises(ValueError, match="directory"):
        open_study(tmp_path, "x")
    with pytest.raises(LookupError, match="no study named 'nothing'"):
        open_study(tmp_path / "j.log", "nothing", create=False)


def test_two_workers_on_one_journal_split_the_trials(tmp_path):
    optuna_or_skip()
    from tinygrad_mlp.sweep import open_study, start_workers, wait_workers
    storage = str(tmp_path / "journal.log")
    study = open_study(storage, "split")
    procs = start_workers([sys.executable, TOY, storage, "split", tmp_path, "4", "0.15"], 2,
                          env=env())
    assert wait_workers(procs, timeout=300) == [0, 0]
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(4))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert all(t.user_attrs["blas_threads"] == 1 for t in trials)
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    numbers = [int(name.split("-")[1]) for name in started]
    assert sorted(numbers) == list(range(4)), "every trial ran exactly once"
    assert len({t.user_attrs["pid"] for t in trials}) == 2, "both workers took trials"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL server in a temporary directory, on a unix socket only."""

    def __init__(self):
        self.home = Path(tempfile.mkdtemp(prefix="tinygrad-pg-"))
        self.as_user = []
        if os.geteuid() == 0:  # the server refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.home / "data", free_port()
        subprocess.run(self.as_user + [PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U",
                                       "postgres", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        self.url = (f"postgresql+psycopg://postgres@/postgres?host={self.home}"
                    f"&port={self.port}")

    def pg_ctl(self, *args, check=True):
        subprocess.run(self.as_user + [PG_BIN / "pg_ctl", "-D", self.data, *args], check=check,
                       capture_output=True, timeout=120)

    def start(self):
        self.pg_ctl("-l", self.home / "log", "-w", "-o", f"-p {self.port} -k {self.home} "
                    f"-c listen_addresses='' -c fsync=off", "start")

    def stop(self, check=True):
        self.pg_ctl("-m", "immediate", "stop", check=check)


@pytest.fixture(scope="module")
def postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL's binaries are not at {PG_BIN} (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install "
                                          "'tinygrad_mlp[sweep-pg]'")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.stop(check=False)
        shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres):
    return postgres.url


def test_postgres_a_killed_workers_trial_is_retried_by_the_other(tmp_path, postgres_url):
    optuna_or_skip()
    import sweep_toy_worker as toy
    from tinygrad_mlp.sweep import open_study, start_workers
    study = open_study(postgres_url, "pg", heartbeat_interval=1)
    work_dir = tmp_path / "runs"
    work_dir.mkdir()
    procs = start_workers([sys.executable, TOY, postgres_url, "pg", work_dir, "3", "0.4"], 2,
                          env=env())
    try:
        victim = None
        deadline = time.time() + 120
        while victim is None and time.time() < deadline:
            for marker in work_dir.glob("started-*"):
                _, number, pid = marker.name.split("-")
                ckpt = work_dir / f"trial-{int(number):04d}" / "checkpoint.npz"
                if ckpt.exists() and tg.training.load_checkpoint(ckpt)["epoch"] >= 2:
                    victim = int(number), int(pid)
                    break
            time.sleep(0.05)
        assert victim is not None, "no trial reached its second epoch"
        number, pid = victim
        os.kill(pid, signal.SIGKILL)
        survivor = next(p for p in procs if p.pid != pid)
        assert survivor.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    trials = study.get_trials()
    assert trials[number].state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state.name == "COMPLETE" and retry.user_attrs["pid"] == survivor.pid
    assert retry.user_attrs["resumed_from_epoch"] >= 2
    assert retry.params == trials[number].params
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    # The resumed run ends with the weights of an uninterrupted one.
    fresh, _ = toy.train_toy(retry.params["lr"], tmp_path / "fresh")
    saved = tg.load(work_dir / f"trial-{number:04d}" / "model.npz")
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(saved[key], value)


# ------------------------------------------------------------------------ the example, real data

def journal_trials(path, name):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    storage = optuna.storages.JournalStorage(
        JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    study = optuna.load_study(study_name=name, storage=storage)
    return study, study.get_trials()


def run_sweep(*args, timeout=300):
    return subprocess.run([sys.executable, SWEEP, *map(str, args)], capture_output=True,
                          text=True, env=env(), timeout=timeout)


def test_killed_sweep_resumes_and_finalize_tests_once(tmp_path):
    optuna_or_skip()
    run = ["run", "--name", "k", "--root", tmp_path, "--trials", 3, "--epochs", 3,
           "--subset", 2000, "--workers", 2]
    sweep_dir = tmp_path / "k"
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen([sys.executable, SWEEP, *map(str, run)], env=env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = sweep_dir / "trial-0000"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if (base / "checkpoint.npz").exists() and not (base / "result.json").exists():
                break
            time.sleep(0.02)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep: the command and its workers
        except ProcessLookupError:  # it ended by itself (an error, reported below)
            pass
    finally:
        proc.wait()
        log.close()
    output = (tmp_path / "first.log").read_text()
    if proc.returncode == 2 and "Fashion-MNIST" in output and "not found" in output \
            and not os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
        pytest.skip(f"Fashion-MNIST not found (apt-get install dataset-fashion-mnist): {output}")
    study, before = journal_trials(sweep_dir / "journal.log", "k")
    interrupted = [t.number for t in before if t.state.name == "RUNNING"]
    assert 0 in interrupted, output
    kept = {t.number: (t.state.name, t.value) for t in before
            if t.state.name in ("COMPLETE", "PRUNED")}

    again = run_sweep(*run)
    assert again.returncode == 0, again.stdout + again.stderr
    _, after = journal_trials(sweep_dir / "journal.log", "k")
    assert {n: (after[n].state.name, after[n].value) for n in kept} == kept
    for number in interrupted:
        assert after[number].state.name == "FAIL"
        retries = [t for t in after if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    retry0 = next(t for t in after if t.system_attrs.get("failed_trial") == 0)
    assert retry0.user_attrs["resumed_from_epoch"] >= 1
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in after) == 3
    assert all(t.user_attrs["blas_threads"] == 1 for t in after if t.state.name != "FAIL")

    # Trial 0's resumed model equals an uninterrupted run's.
    sys.path.insert(0, str(SWEEP.parent))
    import fashion_mlp as fm
    import sweep_trial
    settings = study.user_attrs["sweep"]
    config = json.loads((base / "config.json").read_text())
    threadpool_limits = pytest.importorskip("threadpoolctl").threadpool_limits
    with threadpool_limits(limits=1):  # as in the workers: a thread count is a summation order
        model, _ = fm.fit_on_splits(config, tmp_path / "fresh", *sweep_trial.splits(
            settings, cache=sweep_dir / "data"))
    saved = tg.load(base / "model.npz")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(saved[key], value)

    status = run_sweep("status", "--name", "k", "--root", tmp_path)
    assert status.returncode == 0 and "gap to 0" in status.stdout, status.stderr

    final = ["finalize", "--name", "k", "--root", tmp_path, "--top", 1, "--seeds", 2,
             "--workers", 2]
    first = run_sweep(*final)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads((sweep_dir / "final.json").read_text())
    assert result["status"] == "done" and len(result["test"]) == 2
    assert 0.1 < result["test_acc_mean"] <= 1 and len(result["chosen"]["val_acc"]) == 2
    second = run_sweep(*final)
    assert second.returncode == 2 and "already evaluated" in second.stderr
    assert json.loads((sweep_dir / "final.json").read_text()) == result
    for trial_dir in sweep_dir.glob("trial-*"):
        for f in list(trial_dir.glob("*.json")) + list(trial_dir.glob("*.csv")):
            assert "test" not in f.read_text(), f"{f} mentions the test set"


def test_bad_space_and_missing_sweep_are_refused_without_creating_anything(tmp_path):
    optuna_or_skip()
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"low": 0.01, "high": 0.1, "log": True}}))
    bad = run_sweep("run", "--name", "s", "--root", tmp_path / "runs", "--space", space)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "default lr=0.001 is outside" in bad.stderr
    missing = run_sweep("status", "--name", "nothing", "--root", tmp_path / "runs")
    assert missing.returncode == 2 and "no sweep named 'nothing'" in missing.stderr
    assert not (tmp_path / "runs").exists()


def test_a_trial_asked_for_beyond_the_requested_number_ends_as_surplus(tmp_path):
    optuna = optuna_or_skip()
    from tinygrad_mlp.sweep import open_study
    from tinygrad_mlp.sweep.workers import _surplus
    study = open_study(tmp_path / "journal.log", "surplus")
    study.enqueue_trial({"x": 0.5})
    asked = [study.ask() for _ in range(4)]  # as if three workers asked at the same moment
    study.tell(asked[1], state=optuna.trial.TrialState.FAIL)  # a failed trial does not count
    decisions = [_surplus(study, asked[i], 2, log=lambda m: None) for i in (0, 2, 3)]
    # trial 0 is enqueued (always runs); trial 2 has one unfailed trial below it; trial 3 has two
    assert decisions == [False, False, True]
    trials = study.get_trials()
    assert trials[3].state.name == "FAIL" and trials[3].user_attrs["surplus"] is True
    assert trials[2].state.name == "RUNNING"


def test_postgres_going_away_mid_sweep_loses_no_trial(tmp_path, postgres):
    optuna_or_skip()
    from tinygrad_mlp.sweep import open_study, start_workers, wait_workers
    study = open_study(postgres.url, "away", heartbeat_interval=1)
    work_dir = tmp_path / "runs"
    work_dir.mkdir()
    logs = [open(tmp_path / f"worker-{i}.log", "w+") for i in range(2)]
    procs = [start_workers([sys.executable, TOY, postgres.url, "away", work_dir, "2", "0.3"], 1,
                           env=env(), stdout=log, stderr=subprocess.STDOUT)[0] for log in logs]
    try:
        deadline = time.time() + 120
        while not list(work_dir.glob("trial-*/checkpoint.npz")) and time.time() < deadline:
            time.sleep(0.05)
        postgres.stop()  # mid-trial: the next report fails, the heartbeats fail
        time.sleep(2)
        postgres.start()
        codes = wait_workers(procs, timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    logs = "".join(open(log.name).read() for log in logs)
    assert codes == [0, 0], logs
    assert "the storage went away" in logs or "the storage is away" in logs, logs
    trials = study.get_trials()
    summary = [(t.number, t.state.name, t.system_attrs.get("failed_trial"),
                t.user_attrs.get("surplus"), t.user_attrs.get("pid")) for t in trials]
    # At least the 2 requested: Optuna fails all stale trials before it enqueues their retries,
    # and a worker asking in between may start one new trial more.
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 2, (summary, logs)
    for t in trials:
        if t.state.name == "FAIL" and not t.user_attrs.get("surplus"):  # abandoned when the database went away, then retried once
            retries = [r for r in trials if r.system_attrs.get("failed_trial") == t.number]
            assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
