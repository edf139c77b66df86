"""Smoke tests of the ``bayesdistill`` command line (subprocesses, plus in-process calls of ``main``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bayesdistill.cli import main

TINY = ["--chains", "2", "--draws", "50", "--warmup", "50", "--no-retry"]


def run(*args, check_rc=0):
    """Run ``python -m bayesdistill.cli ARGS``; return the completed process."""
    proc = subprocess.run([sys.executable, "-m", "bayesdistill.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def run_json(*args, check_rc=0):
    proc = run(*args, "--json", check_rc=check_rc)
    return json.loads(proc.stdout)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    """A synthetic sweep with non-standard column names."""
    rng = np.random.default_rng(1)
    N, tpp = np.meshgrid(np.geomspace(2e7, 8e8, 5), [5, 10, 20, 40, 80], indexing="ij")
    N, D = N.ravel(), (N * tpp).ravel()
    loss = (1.8 + 480 / N**0.35 + 2000 / D**0.37) * np.exp(0.01 * rng.standard_normal(N.size))
    path = tmp_path_factory.mktemp("data") / "runs.csv"
    pd.DataFrame({"Model Size": N, "Tokens": D, "Loss": loss}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(sweep_csv, tmp_path_factory):
    """Posterior file from ``fit --strict --json``; the tiny fit fails review, so exit code 3."""
    out = tmp_path_factory.mktemp("fit") / "posterior.nc"
    proc = run("fit", sweep_csv, "--columns", "Model Size=N,Tokens=D,Loss=loss", "--out", out,
               *TINY, "--strict", "--json", check_rc=3)
    return out, json.loads(proc.stdout), proc.stderr


def test_fit_json_and_strict(fitted):
    out, res, stderr = fitted
    assert out.is_file() and res["posterior"] == str(out)
    assert res["law"] == "chinchilla" and res["noise"] == "student_t" and res["runs"] == 25
    assert set(res["summary"]) == {"E", "A", "B", "alpha", "beta", "sigma", "nu", "tau", "kappa", "omega"}
    assert res["review"]["ok"] is False and res["warnings"]
    assert "warning: the fit failed its review" in stderr
    assert res["config"]["chains"] == 2 and res["config"]["draws"] == 50


def test_summary(fitted, capsys):
    out, _, _ = fitted
    res = run_json("summary", out)
    assert res["summary"]["alpha"]["mean"] > 0 and res["review"]["ok"] is False
    assert main(["summary", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Fit review: FAILED" in captured.out and "WARNING: THIS FIT FAILED" in captured.out
    assert "alpha" in captured.out and "r_hat" in captured.out
    assert captured.err.startswith("warning: this posterior failed its review")


def test_predict(fitted, capsys):
    out, _, _ = fitted
    res = run_json("predict", out, "--N", "1e8", "1e10", "--tokens-per-param", "20")
    rows = res["predictions"]
    assert [r["D"] for r in rows] == [2e9, 2e11]
    assert [r["in_range"] for r in rows] == [True, False]
    for r in rows:
        assert r["pred_q05"] < r["q05"] < r["median"] < r["q95"] < r["pred_q95"]
    assert main(["predict", str(out), "--N", "1e8", "1e9", "--D", "1e9", "1e10", "1e11", "--grid"]) == 0
    text = capsys.readouterr().out
    table = text.split("\n\n")[0].splitlines()
    assert len(table) == 2 + 6 and "new run 90%" in table[0]  # header, rule, 2 x 3 combinations
    assert main(["predict", str(out), "--N", "1e8", "1e9", "--D", "1e9", "1e10", "1e11"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --N has 2 values and --D 3")


def test_optimal(fitted, capsys):
    out, _, _ = fitted
    res = run_json("optimal", out, "--budget", "1e20", "1e22", "--accounting", "6ND")
    assert res["accounting"] == "6ND" and len(res["allocations"]) == 2
    small, large = res["allocations"]
    assert small["N_q05"] <= small["N_median"] <= small["N_q95"] and large["N_median"] > small["N_median"]
    assert set(res["exponents"]) == {"a", "b"}
    assert main(["optimal", str(out), "--budget", "1e21"]) == 0
    text = capsys.readouterr().out
    assert "1.00e+21" in text and "a = " in text and "b = " in text


def test_report(fitted, tmp_path):
    out, _, _ = fitted
    res = run_json("report", out, "--out", tmp_path / "rep", "--budget", "3e20")
    assert res["report"] == str(tmp_path / "rep" / "report.md")
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert names == {"report.md", "fit.png", "residuals.png", "frontier.png", "isoflop.png", "trace.png", "rank.png"}
    assert "3.00e+20 FLOPs" in (tmp_path / "rep" / "report.md").read_text()


def test_datasets(capsys):
    res = run_json("datasets")
    assert "gadre_c4" in [d["name"] for d in res["datasets"]]
    assert main(["datasets"]) == 0
    assert "shipped:gadre_c4" in capsys.readouterr().out


def test_demo_quick(tmp_path):
    res = run_json("demo", "--quick", "--out", tmp_path)
    assert (tmp_path / "posterior.nc").is_file() and (tmp_path / "report.md").is_file()
    assert len(list(tmp_path.glob("*.png"))) == 8          # 6 of the fit, 2 of the decision
    assert (tmp_path / "decision.md").is_file() and "SYNTHETIC" in (tmp_path / "decision.md").read_text()
    rec = res["recommendation"]
    assert rec["option"] in ("teacher_inference", "pretraining_inference", "supervised")
    assert 0 <= rec["p_distill_beats_supervised"] <= 1
    alloc = res["optimal"]["allocations"][0]
    assert alloc["budget"] == 1e21 and 1e8 < alloc["N_median"] < 1e11
    assert "review" in res and res["seconds"] > 0


def test_help():
    proc = run("--help")
    for command in ("fit", "summary", "predict", "optimal", "recommend", "report", "demo", "datasets"):
        assert command in proc.stdout
    assert "examples:" in run("fit", "--help").stdout


def test_error_missing_sweep_file(tmp_path):
    proc = run("fit", tmp_path / "nope.csv", "--out", tmp_path / "p.nc", *TINY, check_rc=None)
    assert_one_line_error(proc, "not found", "nope.csv")


def test_error_bad_column(sweep_csv, tmp_path):
    proc = run("fit", sweep_csv, "--columns", "Nope=N", "--out", tmp_path / "p.nc", check_rc=None)
    assert_one_line_error(proc, "Nope")
    proc = run("fit", sweep_csv, "--out", tmp_path / "p.nc", check_rc=None)  # 'Model Size' is not N
    assert_one_line_error(proc, "missing column 'N'")


def test_error_unknown_law(sweep_csv, tmp_path):
    proc = run("fit", sweep_csv, "--law", "hoffmann", "--out", tmp_path / "p.nc", check_rc=None)
    assert_one_line_error(proc, "unknown law 'hoffmann'")
    assert not (tmp_path / "p.nc").exists()


def test_errors_in_process(tmp_path, capsys):
    cases = [
        (["summary", str(tmp_path / "missing.nc")], "posterior file not found"),
        (["fit", "shipped:nope", "--out", str(tmp_path / "p.nc")], "unknown dataset 'nope'"),
        (["fit", "shipped:gadre_c4", "--subset", "wiki", "--out", str(tmp_path / "p.nc")], "'wiki'"),
        (["fit", "shipped:gadre_c4", "--noise", "cauchy"], "unknown noise 'cauchy'"),
    ]
    bad = tmp_path / "bad.nc"
    bad.write_text("not a netCDF file")
    cases.append((["optimal", str(bad), "--budget", "1e21"], "not a readable posterior file"))
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and fragment in err and "\n" not in err, err


def test_console_script_declared():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "bayesdistill"]
    assert ep.value == "bayesdistill.cli:main"


# ------------------------------------------------- distilled students (predict with teacher options)
@pytest.fixture(scope="module")
def joint_file(tmp_path_factory):
    """A tiny joint (distillation) posterior, fitted in-process and saved; it fails its review."""
    import warnings

    import bayesdistill as bd

    sweep = bd.paper_sweep(seed=0)
    sweep = pd.concat([sweep[sweep["kind"] == "supervised"].iloc[:60],
                       sweep[sweep["kind"] == "distillation"].iloc[::6]], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.FitWarning)
        post = bd.fit(sweep, law="distillation", chains=2, draws=30, warmup=30, seed=0, progress_bar=False,
                      chain_method="sequential")
    return post.save(tmp_path_factory.mktemp("joint") / "joint.nc")


STUDENT_KEYS = {"N_S", "D_S", "mean", "median", "q05", "q95", "pred_q05", "pred_q95", "supervised_median",
                "supervised_q05", "supervised_q95", "teacher_median", "p_distill_beats_supervised", "in_range"}


def test_predict_student_json(joint_file):
    res = run_json("predict", joint_file, "--N-S", "1.43e8", "5.46e8", "--D-S", "1.1e10",
                   "--N-T", "1.82e9", "--D-T", "3.64e10")
    assert res["kind"] == "distillation" and res["teacher"] == "N_T, D_T" and res["file"] == str(joint_file)
    rows = res["predictions"]
    assert [r["N_S"] for r in rows] == [1.43e8, 5.46e8] and all(r["D_T"] == 3.64e10 for r in rows)
    for r in rows:
        assert set(r) == STUDENT_KEYS | {"N_T", "D_T"}
        assert r["pred_q05"] < r["q05"] <= r["median"] <= r["q95"] < r["pred_q95"]
        assert r["supervised_q05"] <= r["supervised_median"] <= r["supervised_q95"]
        assert 0 <= r["p_distill_beats_supervised"] <= 1 and r["median"] > r["teacher_median"]
        assert r["in_range"] is True
    assert rows[1]["median"] < rows[0]["median"]  # the bigger student


def test_predict_student_in_process(joint_file, capsys):
    assert main(["predict", str(joint_file), "--N-S", "1.43e8", "--D-S", "2.9e9", "4.6e13",
                 "--L-T", "2.2", "2.5", "--grid", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["teacher"] == "L_T" and len(res["predictions"]) == 4
    assert set(res["predictions"][0]) == STUDENT_KEYS | {"L_T"}
    assert [r["in_range"] for r in res["predictions"]] == [True, True, False, False]
    assert main(["predict", str(joint_file), "--N-S", "1.43e8", "--D-S", "2.9e9", "--L-T", "2.2", "2.5"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[0].splitlines()
    assert len(table) == 2 + 2 and "P(distilled wins)" in table[0] and "supervised" in table[0]
    # no teacher options: a joint posterior still predicts supervised loss from --N and --D
    assert main(["predict", str(joint_file), "--N", "1e9", "--D", "2e10", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["kind"] == "supervised" and set(res["predictions"][0]) >= {"N", "D", "median"}


def test_predict_student_on_supervised_posterior(fitted):
    out, _, _ = fitted
    proc = run("predict", out, "--N-S", "1e8", "--D-S", "2e9", "--L-T", "2.5", check_rc=None)
    assert_one_line_error(proc, "need a distillation posterior", "supervised law 'chinchilla'")


def test_predict_student_errors(joint_file, capsys):
    f = str(joint_file)
    cases = [
        (["--N-S", "1e8", "--D-S", "2e9"], "give the teacher either as --L-T"),
        (["--N-S", "1e8", "--D-S", "2e9", "--N-T", "1e9"], "as both --N-T and --D-T"),
        (["--N-S", "1e8", "--D-S", "2e9", "--L-T", "2.5", "--N-T", "1e9", "--D-T", "2e10"], "either as --L-T"),
        (["--N-S", "1e8", "--L-T", "2.5"], "--N-S and distillation tokens --D-S"),
        (["--N-S", "1e8", "0", "--D-S", "2e9", "--L-T", "2.5"], "--N-S must be positive and finite, got 0"),
        (["--N-S", "1e8", "--D-S", "2e9", "--L-T", "-2.5"], "--L-T must be positive and finite, got -2.5"),
        (["--N-S", "1e8", "2e8", "--D-S", "1e9", "2e9", "3e9", "--L-T", "2.5"], "--N-S 2, --D-S 3, --L-T 1"),
        (["--N", "1e8", "--N-S", "1e8", "--D-S", "2e9", "--L-T", "2.5"], "predict supervised loss"),
        ([], "give --N with --D or --tokens-per-param"),
    ]
    for argv, fragment in cases:
        assert main(["predict", f, *argv]) == 2, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert len(err) == 1 and fragment in err[0], (argv, err)


def test_predict_help_mentions_teachers():
    text = run("predict", "--help").stdout
    for flag in ("--N-S", "--D-S", "--N-T", "--D-T", "--L-T", "--L-T 2.2 2.5 --grid"):
        assert flag in text


@pytest.mark.parametrize("argv", [["--help"], ["datasets"], ["datasets", "--json"], ["recommend", "--help"],
                                  ["fit"], ["optimal", "x.nc", "--budget", "abc"]])
def test_light_commands_do_not_load_the_numerical_stack(argv):
    """``--help``, ``datasets`` and argument errors answer without importing JAX, numpyro, ArviZ, pandas or
    matplotlib (their speed is measured in benchmarks/bench_cli.py)."""
    code = ("import sys\nfrom bayesdistill.cli.app import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('jax', 'numpyro', 'arviz_base', 'arviz_stats', 'arviz_plots', 'xarray', 'pandas', 'matplotlib') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stderr, (argv, out.stderr[-2000:])
