"""Tests for bayesdistill.data.replica: the laws against the paper, and the synthetic sweep."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdistill as bd
from bayesdistill._files import write_text_atomically
from bayesdistill.cli import main
from bayesdistill.data.replica import (
    TABLE6,
    TABLE13_SIZES,
    paper_design,
    paper_sweep,
    simulate_sweep,
    student_loss,
    supervised_loss,
)
from bayesdistill.laws.flops import supervised_flops

CSV = Path(__file__).resolve().parent.parent / "data" / "paper_replica.csv"
FLOATS = ["N", "D", "loss", "N_T", "D_T", "L_T", "budget"]


def law(df):
    """Noise-free law value of each row (distillation rows at the row's observed L_T)."""
    sup = (df["kind"] == "supervised").to_numpy()
    out = np.empty(len(df))
    out[sup] = supervised_loss(df["N"][sup], df["D"][sup])
    out[~sup] = student_loss(df["N"][~sup], df["D"][~sup], df["L_T"][~sup])
    return out


def best_teacher(n_s, m_s, m_t=20.0):
    """Teacher size minimising the student loss, teachers at M_T tokens per parameter."""
    n_t = np.geomspace(1e8, 1e11, 3001)
    ls = student_loss(n_s, m_s * n_s, supervised_loss(n_t, m_t * n_t))
    return n_t[np.argmin(ls)]


# --- the laws against the paper's numbers -------------------------------------------------

def test_table6_and_sizes():
    assert TABLE6["c1"] == 522.6 and TABLE6["A_prime"] == 2243.0 and len(TABLE6) == 15
    a = TABLE6["beta"] / (TABLE6["alpha"] + TABLE6["beta"])
    assert a == pytest.approx(0.513, abs=1e-3)  # 0.5137 from the rounded Table 6 values
    assert len(TABLE13_SIZES) == 33 and TABLE13_SIZES[0] == 1.028e8 and TABLE13_SIZES[-1] == 1.261e10
    assert np.all(np.diff(TABLE13_SIZES) > 0)


def test_supervised_loss_matches_direct_form():
    N, D = np.geomspace(1e7, 1e11, 7), np.geomspace(1e8, 1e13, 7)
    c = TABLE6
    direct = c["E"] + (c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]) ** c["gamma"]
    np.testing.assert_allclose(supervised_loss(N, D), direct, rtol=1e-12)


def test_student_loss_matches_direct_eq8():
    c = TABLE6
    N_S, D_S, L_T = np.array([1e8, 5e8, 3e9]), np.array([2e9, 4e10, 1e11]), np.array([2.6, 2.3, 2.0])
    lt_s = supervised_loss(N_S, D_S)
    direct = L_T + L_T ** -c["c0"] * (1 + (L_T / (lt_s * c["d1"])) ** (1 / c["f1"])) ** (-c["c1"] * c["f1"]) \
        * (c["A_prime"] / N_S ** c["alpha_prime"] + c["B_prime"] / D_S ** c["beta_prime"]) ** c["gamma_prime"]
    np.testing.assert_allclose(student_loss(N_S, D_S, L_T), direct, rtol=1e-12)


def test_point_check_546m_student_182b_teacher():
    l_t = supervised_loss(1.82e9, 20 * 1.82e9)
    assert student_loss(5.46e8, 20 * 5.46e8, l_t) == pytest.approx(2.424, abs=0.005)


def test_student_tends_to_teacher_and_stays_above():
    l_t = 2.1
    gaps = np.array([student_loss(n, 20 * n, l_t) - l_t for n in (1e8, 1e9, 1e10, 1e11)])
    assert np.all(gaps > 0) and np.all(np.diff(gaps) < 0) and gaps[-1] < 1e-6
    assert student_loss(1e13, 1e16, l_t) == pytest.approx(l_t, abs=1e-12)
    # strictly above wherever the teacher is below the break (L_T <= d1 * Ltilde_S) ...
    N_S, D_S, L_T = np.meshgrid(np.geomspace(1e7, 1e11, 9), np.geomspace(1e8, 1e13, 11),
                                np.linspace(1.5, 4.0, 11))
    ls = student_loss(N_S, D_S, L_T)
    below = L_T <= TABLE6["d1"] * supervised_loss(N_S, D_S)
    assert below.sum() > 300 and np.all(ls[below] > L_T[below])
    # ... and never below it: past the break (weak teacher) or for huge students the gap,
    # exactly positive, underflows below float resolution (e.g. 1e-60 relative)
    assert np.all(ls >= L_T)


@pytest.mark.parametrize("n_s, m_s, lo, hi", [
    (1.434e8, 20, 8e9, 30e9),     # paper: ~15B
    (1.434e8, 320, 1.2e9, 5e9),   # paper: ~2.4B
    (1.983e8, 20, 10e9, 40e9),    # paper: ~20B
])
def test_capacity_gap(n_s, m_s, lo, hi):
    assert lo < best_teacher(n_s, m_s) < hi


def test_capacity_gap_values():
    assert best_teacher(1.434e8, 20) / 1e9 == pytest.approx(15.0, rel=0.05)
    assert best_teacher(1.434e8, 320) / 1e9 == pytest.approx(2.36, rel=0.05)
    assert best_teacher(1.983e8, 20) / 1e9 == pytest.approx(19.8, rel=0.05)


# --- the synthetic sweep --------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep():
    return paper_sweep(seed=0, noise=0.01)


def test_design_counts(sweep):
    assert (sweep["kind"] == "supervised").sum() == 73
    assert (sweep["kind"] == "distillation").sum() == 697
    assert sweep.groupby("group").size().to_dict() == {
        "supervised-fixedM": 33, "supervised-512B": 6, "supervised-isoflop": 34,
        "protocol1": 311, "protocol2": 136, "protocol3": 250}
    assert sweep["run_id"].is_unique
    assert set(sweep["N"]) <= set(TABLE13_SIZES) and set(sweep["N_T"].dropna()) <= set(TABLE13_SIZES)


def test_design_follows_section5(sweep):
    iso = sweep[sweep["budget"].notna() & (sweep["group"] != "protocol2")]
    flops = supervised_flops(iso["N"].to_numpy(), iso["D"].to_numpy(), accounting="paper")
    np.testing.assert_allclose(flops, iso["budget"], rtol=1e-6)  # D rounded to whole tokens
    assert set(iso["budget"]) == {3e19, 1e20, 3e20, 1e21}
    p1 = sweep[sweep["group"] == "protocol1"]
    np.testing.assert_allclose(sorted(p1["N_T"].unique()),
                               [5.46e8, 9.755e8, 1.821e9, 2.718e9, 4.823e9, 7.747e9])
    np.testing.assert_allclose(p1["D_T"] / p1["N_T"], 20)
    p2 = sweep[sweep["group"] == "protocol2"]
    np.testing.assert_allclose(sorted(p2["N"].unique()), [1.983e8, 5.46e8, 9.755e8, 1.821e9])
    np.testing.assert_allclose(p2["D"] / p2["N"], 20)
    p3 = sweep[sweep["group"] == "protocol3"]
    assert p3["N_T"].nunique() == 10 and p3["N_T"].max() == 1.261e10
    assert {1.434e8, 1.983e8} <= set(p3["N"]) and p3["N"].nunique() == 5
    assert set(np.round(p3["D"] / p3["N"])) == {20, 40, 80, 160, 320}
    assert (sweep[sweep["group"] == "supervised-512B"]["D"] == 512e9).all()


def test_teacher_loss_is_the_supervised_run(sweep):
    sup = sweep[sweep["kind"] == "supervised"].set_index(["N", "D"])["loss"]
    dis = sweep[sweep["kind"] == "distillation"]
    np.testing.assert_array_equal(dis["L_T"], sup.loc[list(zip(dis["N_T"], dis["D_T"]))].to_numpy())
    assert sweep.loc[sweep["kind"] == "supervised", ["N_T", "D_T", "L_T"]].isna().all().all()


def test_read_sweep_accepts_it(sweep):
    s = bd.read_sweep(sweep)
    assert len(s.supervised) == 73 and len(s.distillation) == 697
    for teacher, dropped in (("loss", {"N_T", "D_T"}), ("size", {"L_T"})):
        df = paper_sweep(teacher=teacher)
        assert not dropped & set(df.columns)
        assert len(bd.read_sweep(df).distillation) == 697
    with pytest.raises(ValueError, match="teacher"):
        paper_sweep(teacher="none")


def test_seed_determinism(sweep):
    pd.testing.assert_frame_equal(sweep, paper_sweep(seed=0, noise=0.01))
    other = paper_sweep(seed=1, noise=0.01)
    assert not np.allclose(other["loss"], sweep["loss"])
    pd.testing.assert_frame_equal(other.drop(columns=["loss", "L_T"]), sweep.drop(columns=["loss", "L_T"]))


def test_noise(sweep):
    exact = paper_sweep(noise=0.0)
    np.testing.assert_array_equal(exact["loss"], law(exact))
    resid = np.log(sweep["loss"] / law(sweep))
    assert np.std(resid) == pytest.approx(0.01, rel=0.1)
    assert abs(np.mean(resid)) < 0.002
    big = paper_sweep(seed=3, noise=0.05)
    assert np.std(np.log(big["loss"] / law(big))) == pytest.approx(0.05, rel=0.1)


def test_shipped_csv_is_the_seed0_replica(sweep):
    shipped = pd.read_csv(CSV)
    assert list(shipped.columns) == list(sweep.columns)
    for col in FLOATS:  # rtol: last-bit differences of libm across platforms
        np.testing.assert_allclose(shipped[col].to_numpy(float), sweep[col].to_numpy(float), rtol=1e-12)
    for col in ("kind", "run_id", "group", "protocol"):
        assert (shipped[col].to_numpy() == sweep[col].to_numpy()).all()


def test_main_writes_csv(tmp_path, capsys):
    out = tmp_path / "sub" / "r.csv"
    main(["replica", "--seed", "2", "--noise", "0.02", "--out", str(out)])
    assert "770 runs" in capsys.readouterr().out
    df = pd.read_csv(out)
    np.testing.assert_array_equal(df["loss"], paper_sweep(seed=2, noise=0.02)["loss"])
    assert [p.name for p in out.parent.iterdir()] == ["r.csv"]  # no temporary file left


def test_written_files_get_the_users_umask(tmp_path):
    """Files the package writes are readable as the umask allows (a temporary file alone is 0600)."""
    old = os.umask(0o022)
    try:
        main(["replica", "--seed", "0", "--out", str(tmp_path / "r.csv")])
        write_text_atomically(tmp_path / "note.md", "x")
    finally:
        os.umask(old)
    for name in ("r.csv", "note.md"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_simulate_sweep_fills_losses():
    design = pd.DataFrame({
        "N": [1e8, 4e8, 1e8, 1e8, 2e8],
        "D": [2e9, 8e9, 4e9, 4e9, 4e9],
        "N_T": [np.nan, np.nan, 4e8, 3e9, 3e9],
        "D_T": [np.nan, np.nan, 8e9, 6e10, 6e10],
    })
    out = simulate_sweep(design, seed=5, noise=0.01)
    assert list(out["kind"]) == ["supervised"] * 2 + ["distillation"] * 3
    assert out["loss"].notna().all() and "loss" not in design.columns
    assert out.loc[2, "L_T"] == out.loc[1, "loss"]  # teacher is the supervised 400M run
    assert out.loc[3, "L_T"] == out.loc[4, "L_T"]  # fresh teacher draw reused
    assert out.loc[3, "L_T"] != supervised_loss(3e9, 6e10)
    np.testing.assert_array_equal(out["loss"], simulate_sweep(design, seed=5, noise=0.01)["loss"])
    exact = simulate_sweep(design, noise=0.0)
    np.testing.assert_array_equal(exact["loss"], law(exact))
    assert exact.loc[3, "L_T"] == supervised_loss(3e9, 6e10)
    given = simulate_sweep(pd.DataFrame({"N": [1e8], "D": [2e9], "L_T": [2.5]}), noise=0.0)
    assert given.loc[0, "kind"] == "distillation" and given.loc[0, "L_T"] == 2.5
    assert given.loc[0, "loss"] == student_loss(1e8, 2e9, 2.5)
    bd.read_sweep(out)


def test_simulate_sweep_errors():
    with pytest.raises(ValueError, match="'D'"):
        simulate_sweep(pd.DataFrame({"N": [1e8]}))
    with pytest.raises(ValueError, match="noise"):
        simulate_sweep(pd.DataFrame({"N": [1e8], "D": [1e9]}), noise=-1)
    with pytest.raises(ValueError, match="kind"):
        simulate_sweep(pd.DataFrame({"N": [1e8], "D": [1e9], "kind": ["teacher"]}))
    with pytest.raises(ValueError, match="without a teacher"):
        simulate_sweep(pd.DataFrame({"N": [1e8], "D": [1e9], "kind": ["distillation"]}))


def test_paper_design_has_no_losses():
    d = paper_design()
    assert len(d) == 770 and "loss" not in d.columns and "L_T" not in d.columns
