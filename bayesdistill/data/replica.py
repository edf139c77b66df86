"""A synthetic replica of the Busbridge et al. (2025) distillation sweep.

No per-run data of "Distillation Scaling Laws" (ICML 2025) was released. This
module rebuilds the *design* of its sweep (section 5: 73 supervised and 697
distillation runs over protocols 1-3, model sizes of Table 13) and fills the
losses from the paper's own fitted laws (Eq. 1 and Eq. 8 with Table 6) plus
lognormal noise. The result is SYNTHETIC: a known truth to test fits against,
not measurements. ``simulate_sweep`` does the same for a design you plan.

Run ``bayesdistill replica --seed 0 --noise 0.01 --out data/paper_replica.csv``
to write the bundled CSV (see ``data/paper_replica.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..laws.distillation import TABLE6
from ..laws.flops import tokens_for_budget
from .options import TEACHER_MODES

#: The 33 model sizes of Table 13 (non-embedding parameters).
TABLE13_SIZES = tuple(float(round(b * 1e9)) for b in (
    0.1028, 0.1434, 0.1983, 0.2657, 0.3398, 0.4348, 0.546, 0.6636, 0.8096, 0.9755, 1.147,
    1.355, 1.586, 1.821, 2.102, 2.41, 2.718, 3.082, 3.478, 3.87, 4.329, 4.823, 5.309, 5.873,
    6.476, 7.066, 7.747, 8.47, 9.173, 10.05, 10.84, 11.66, 12.61))

BUDGETS = (3e19, 1e20, 3e20, 1e21)  #: IsoFLOP budgets (FLOPs) of section 5
COLUMNS = ("kind", "N", "D", "loss", "N_T", "D_T", "L_T", "run_id", "group", "protocol", "budget")


def _size(billions: float) -> float:
    """The Table 13 size closest (in log) to ``billions`` x 1e9 parameters."""
    sizes = np.asarray(TABLE13_SIZES)
    return float(sizes[np.argmin(np.abs(np.log(sizes / (billions * 1e9))))])


def supervised_loss(N, D, coef=TABLE6):
    """Supervised loss of Eq. 1, ``E + (A / N^alpha + B / D^beta)^gamma``.

    Evaluated as ``exp(LSE(log E, gamma * LSE(log A - alpha log N, log B - beta log D)))``.

    Parameters
    ----------
    N, D : float or array_like
        Non-embedding parameters and training tokens.
    coef : mapping, optional
        Keys ``E, A, B, alpha, beta, gamma`` (default: Table 6).

    Returns
    -------
    float or numpy.ndarray
        Cross-entropy in nats per token.
    """
    logN, logD = np.log(np.asarray(N, float)), np.log(np.asarray(D, float))
    inner = np.logaddexp(np.log(coef["A"]) - coef["alpha"] * logN, np.log(coef["B"]) - coef["beta"] * logD)
    return np.exp(np.logaddexp(np.log(coef["E"]), coef["gamma"] * inner))


def student_loss(N_S, D_S, L_T, coef=TABLE6):
    """Student loss of the distillation law, Eq. 8 (with ``A'``, ``B'``; see the errata).

    ``L_T + L_T^-c0 (1 + (L_T / (Ltilde_S d1))^(1/f1))^(-c1 f1) (A'/N_S^alpha' + B'/D_S^beta')^gamma'``
    with ``Ltilde_S = supervised_loss(N_S, D_S)``, evaluated in the log-space form of Eq. 49.

    Parameters
    ----------
    N_S, D_S : float or array_like
        Student non-embedding parameters and distillation tokens.
    L_T : float or array_like
        Teacher cross-entropy (nats per token).
    coef : mapping, optional
        Supervised and distillation coefficients (default: Table 6).

    Returns
    -------
    float or numpy.ndarray
        Student cross-entropy in nats per token; always above ``L_T``.
    """
    log_lt = np.log(np.asarray(L_T, float))
    log_ls = np.log(supervised_loss(N_S, D_S, coef))
    gap = np.logaddexp(0.0, (log_lt - log_ls - np.log(coef["d1"])) / coef["f1"])
    power = np.logaddexp(np.log(coef["A_prime"]) - coef["alpha_prime"] * np.log(np.asarray(N_S, float)),
                         np.log(coef["B_prime"]) - coef["beta_prime"] * np.log(np.asarray(D_S, float)))
    second = -coef["c0"] * log_lt - coef["c1"] * coef["f1"] * gap + coef["gamma_prime"] * power
    return np.exp(np.logaddexp(log_lt, second))


def _isoflop(C: float, k: int, step: int, coef=TABLE6) -> list[tuple[float, float]]:
    """``k`` Table 13 sizes, every ``step``-th, around the supervised valley at ``C``.

    Returns ``(N, D)`` pairs with ``D = C / (3 F(N))`` rounded to whole tokens.
    """
    grid = np.geomspace(1e7, 1e11, 2001)
    best = grid[np.argmin(supervised_loss(grid, tokens_for_budget(grid, C), coef))]
    sizes = np.asarray(TABLE13_SIZES)
    start = int(np.argmin(np.abs(np.log(sizes / best)))) - step * (k - 1) // 2
    start = min(max(start, 0), len(sizes) - 1 - step * (k - 1))
    return [(float(n), float(round(tokens_for_budget(n, C)))) for n in sizes[start + step * np.arange(k)]]


def paper_design(coef=TABLE6) -> pd.DataFrame:
    """The run design (no losses) of section 5; :func:`paper_sweep` fills the losses.

    Supervised (73): every Table 13 size at ``M = D/N = 20`` (33), six sizes at
    ``D = 512B`` (6), IsoFLOPs at 3e19, 1e20, 3e20, 1e21 FLOPs with 8, 8, 9, 9
    sizes (34). Distillation (697): protocol 1, six ``M_T = 20`` teachers x four
    student IsoFLOPs x 13 students, less one run (311); protocol 2, four
    ``M_S = 20`` students x the 34 supervised IsoFLOP runs as teachers (136);
    protocol 3, ten ``M_T = 20`` teachers x five students x ``M_S`` in
    20..320 (250). ``coef`` only places the IsoFLOP valleys.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`COLUMNS` except ``loss`` and ``L_T``.
    """
    rows, count = [], {}

    def add(group, protocol, N, D, N_T=np.nan, D_T=np.nan, budget=np.nan):
        kind = "supervised" if protocol == 0 else "distillation"
        count[group] = count.get(group, -1) + 1
        rows.append((kind, N, D, N_T, D_T, f"{group}-{count[group]:03d}", group, protocol, budget))

    def fixed_m(n, m=20.0):
        return n, float(round(m * n))

    for n in TABLE13_SIZES:
        add("supervised-fixedM", 0, *fixed_m(n))
    for b in (0.1434, 0.3398, 0.8096, 1.821, 4.329, 7.747):
        add("supervised-512B", 0, _size(b), 512e9)
    iso_teachers = []
    for C, k in zip(BUDGETS, (8, 8, 9, 9)):
        for n, d in _isoflop(C, k, 2, coef):
            add("supervised-isoflop", 0, n, d, budget=C)
            iso_teachers.append((n, d, C))
    for b in (0.546, 0.975, 1.82, 2.72, 4.82, 7.75):  # protocol 1
        for C in BUDGETS:
            for n, d in _isoflop(C, 13, 1, coef):
                add("protocol1", 1, n, d, *fixed_m(_size(b)), budget=C)
    rows.pop()  # 6 x 4 x 13 = 312; drop the last (7.75B teacher, 1e21, largest student) -> 311
    for b in (0.198, 0.546, 0.975, 1.82):  # protocol 2
        for n_t, d_t, C in iso_teachers:
            add("protocol2", 2, *fixed_m(_size(b)), n_t, d_t, budget=C)
    sizes = np.asarray(TABLE13_SIZES)
    teachers = sizes[np.round(np.linspace(4, len(sizes) - 1, 10)).astype(int)]  # 0.34B..12.61B
    for n_t in teachers:  # protocol 3
        for n in sizes[:5]:  # 103M, 143M, 198M, 266M, 340M
            for m in (20.0, 40.0, 80.0, 160.0, 320.0):
                add("protocol3", 3, *fixed_m(n, m), *fixed_m(float(n_t)))
    cols = ["kind", "N", "D", "N_T", "D_T", "run_id", "group", "protocol", "budget"]
    return pd.DataFrame(rows, columns=cols)


def simulate_sweep(design: pd.DataFrame, seed: int = 0, noise: float = 0.01, coef=TABLE6) -> pd.DataFrame:
    """Fill a planned design with losses drawn from the laws plus lognormal noise.

    Each loss is ``law x exp(noise z)``, ``z ~ N(0, 1)``. Supervised rows use
    Eq. 1. Distillation rows use Eq. 8 at the teacher's *observed* loss ``L_T``:
    a given ``L_T`` is kept; otherwise ``N_T, D_T`` are looked up among the
    supervised rows (same ``N``, ``D``) and that run's noisy loss is used, else
    one fresh noisy draw of Eq. 1 is made per distinct teacher and reused.

    Parameters
    ----------
    design : pandas.DataFrame
        Columns ``N``, ``D`` and optionally ``kind`` (default: ``distillation``
        where ``N_T`` or ``L_T`` is given), ``N_T``, ``D_T``, ``L_T``.
    seed : int, optional
        Seed of the ``numpy.random.Generator``; same seed, same losses.
    noise : float, optional
        Standard deviation of the log loss; 0 gives the exact law values.
    coef : mapping, optional
        Coefficients of both laws (default: :data:`TABLE6`).

    Returns
    -------
    pandas.DataFrame
        A copy of ``design`` with ``kind``, ``loss``, ``N_T``, ``D_T`` and ``L_T``.

    Raises
    ------
    ValueError
        Missing ``N``/``D``, bad ``kind``, negative ``noise`` or a teacherless
        distillation row.
    """
    for col in ("N", "D"):
        if col not in design.columns:
            raise InputError(f"design needs column {col!r}; found {list(design.columns)}")
    if not noise >= 0:
        raise InputError(f"noise must be >= 0 (got {noise!r})")
    df = design.copy().reset_index(drop=True)
    for col in ("N_T", "D_T", "L_T"):
        df[col] = df[col].astype(float) if col in df.columns else np.nan
    if "kind" not in df.columns:
        df["kind"] = np.where(df["N_T"].notna() | df["L_T"].notna(), "distillation", "supervised")
    if not df["kind"].isin(("supervised", "distillation")).all():
        raise InputError("column 'kind' must hold only 'supervised' or 'distillation'")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(len(df))
    N, D = df["N"].to_numpy(float), df["D"].to_numpy(float)
    sup = (df["kind"] == "supervised").to_numpy()
    loss = np.full(len(df), np.nan)
    loss[sup] = supervised_loss(N[sup], D[sup], coef) * np.exp(noise * z[sup])
    known = {}
    for i in np.flatnonzero(sup):
        known.setdefault((N[i], D[i]), loss[i])
    L_T = df["L_T"].to_numpy(float).copy()
    L_T[sup] = np.nan
    for i in np.flatnonzero(~sup):
        if np.isnan(L_T[i]):
            key = (float(df.at[i, "N_T"]), float(df.at[i, "D_T"]))
            if np.isnan(key).any():
                raise InputError(f"row {i} is a distillation run without a teacher: give L_T or N_T and D_T")
            if key not in known:
                known[key] = float(supervised_loss(*key, coef)) * np.exp(noise * rng.standard_normal())
            L_T[i] = known[key]
    loss[~sup] = student_loss(N[~sup], D[~sup], L_T[~sup], coef) * np.exp(noise * z[~sup])
    df["loss"], df["L_T"] = loss, L_T
    return df


def paper_sweep(seed: int = 0, noise: float = 0.01, coef=TABLE6, teacher: str = "both") -> pd.DataFrame:
    """The synthetic replica of the paper's sweep: 73 supervised + 697 distillation runs.

    Design of :func:`paper_design`, losses of :func:`simulate_sweep` (truth:
    ``coef``, Table 6 by default). Every teacher is one of the supervised runs,
    so ``L_T`` is that run's noisy loss.

    Parameters
    ----------
    seed : int, optional
        Seed of the noise; same seed, identical DataFrame.
    noise : float, optional
        Standard deviation of the log loss (the ~1% scatter of the paper); 0: exact laws.
    coef : mapping, optional
        True coefficients (default: :data:`TABLE6`).
    teacher : {"both", "loss", "size"}, optional
        Teacher columns kept: ``N_T, D_T`` and ``L_T``; only ``L_T``; only ``N_T, D_T``.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind, N, D, loss, N_T, D_T, L_T, run_id, group, protocol, budget``
        (``N, D`` are the student for distillation rows; ``protocol`` 0 is
        supervised; ``budget`` is the IsoFLOP budget in FLOPs, else NaN), accepted
        by :func:`bayesdistill.read_sweep`.

    Examples
    --------
    >>> from bayesdistill.data.replica import paper_sweep
    >>> paper_sweep()["kind"].value_counts().to_dict()
    {'distillation': 697, 'supervised': 73}
    """
    if teacher not in TEACHER_MODES:
        raise InputError(f"teacher must be one of {TEACHER_MODES} (got {teacher!r})")
    df = simulate_sweep(paper_design(coef), seed=seed, noise=noise, coef=coef)[list(COLUMNS)]
    drop = {"both": [], "loss": ["N_T", "D_T"], "size": ["L_T"]}[teacher]
    return df.drop(columns=drop)
