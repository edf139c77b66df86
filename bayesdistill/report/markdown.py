"""A self-contained Markdown report of a fit, with its plots as PNG files.

:func:`write_report` writes ``report.md`` next to ``fit.png``,
``residuals.png``, ``isoflop.png``, ``frontier.png``, ``trace.png`` and ``rank.png``. Every
file is written atomically (a temporary file in the same folder, then
:func:`os.replace`), so a crash never leaves a half-written report.

The small formatting helpers (:func:`fmt`, :func:`markdown_table`,
:func:`text_table`) are shared with the command-line interface.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from .._files import write_atomically, write_text_atomically
from .._version import __version__
from ..allocation.supervised import compute_optimal
from ..errors import ExtrapolationWarning
from ..inference.posterior import EXTRAPOLATION_WARN_DECADES
from ..laws.flops import supervised_flops

PLOTS = (  # file, plots function, caption
    ("fit.png", "plot_fit", "Loss against tokens per model size: data, posterior median, "
     "90% band of the law (dark) and 90% predictive band of a new run (light)."),
    ("residuals.png", "plot_residuals", "Relative residuals with each run's 90% predictive interval; "
     "runs outside it are ringed in red."),
    ("isoflop.png", "plot_isoflop", "IsoFLOP curves: loss against N at each budget of the data (runs grouped "
     "at equal compute, else in half-decade compute levels) and one level beyond it (dashed), with the "
     "posterior median curve, its 90% predictive band, the 90% interval of N* (bar, | median) and the "
     "best run observed at each budget (star)."),
    ("frontier.png", "plot_frontier", "Compute-optimal N*, D* and loss against budget, "
     "median and 90% interval; the shaded span is the compute range of the data."),
    ("trace.png", "plot_trace", "Sampler traces by chain: chains should overlap and look like noise."),
    ("rank.png", "plot_rank", "Rank plots by chain: flat histograms mean the chains mix."),
)


# ------------------------------------------------------------------ formatting
def fmt(x, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits.

    Parameters
    ----------
    x : float, int or None
    digits : int

    Returns
    -------
    str
        Scientific notation outside [1e-3, 1e5) (``"2.73e+09"``), plain
        otherwise (``"0.233"``, ``"1.57"``, ``"190"``); ``"nan"`` / ``"-"``
        for NaN / None.
    """
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits - 1}e}"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:.0f}"
    return f"{x:#.{digits}g}".rstrip(".")


def fmt_interval(lo, hi, digits: int = 3) -> str:
    """``"[lo, hi]"`` with :func:`fmt`."""
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def markdown_table(headers, rows, align=None) -> str:
    """A GitHub-flavoured Markdown table.

    Parameters
    ----------
    headers : list of str
    rows : list of list
        Cells are converted with ``str``; ``|`` is escaped.
    align : str, optional
        One character per column: ``"l"`` or ``"r"`` (default: first column
        left, the others right).

    Returns
    -------
    str
    """
    align = align or "l" + "r" * (len(headers) - 1)

    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    rule = "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"
    return "\n".join([cells(headers), rule, *(cells(r) for r in rows)])


# ---------------------------------------------------------- tables of a fit
def summary_table(post):
    """Headers and formatted rows of :meth:`Posterior.summary`."""
    s = post.summary()
    headers = ["param", "mean", "sd", "median", "q05", "q95", "ess_bulk", "ess_tail", "r_hat"]
    rows = [[name, fmt(r["mean"]), fmt(r["sd"], 2), fmt(r["median"]), fmt(r["q05"]), fmt(r["q95"]),
             f"{r['ess_bulk']:.0f}", f"{r['ess_tail']:.0f}", f"{r['r_hat']:.2f}"]  # summary rounds r_hat
            for name, r in s.iterrows()]
    return headers, rows


def review_table(review):
    """Headers and rows of a :class:`~bayesdistill.inference.review.Review`."""
    rows = [[c.name, fmt(c.value, 4), c.threshold, "ok" if c.passed else "**FAIL**"] for c in review.checks]
    return ["check", "value", "needs", "verdict"], rows


def allocation_table(co, compact: bool = False):
    """Headers and rows of a :class:`~bayesdistill.allocation.ComputeOptimal` summary.

    With ``compact`` each quantity is one cell ``median [q05, q95]``.
    """
    quantities = (("N*", "N", 3), ("D*", "D", 3), ("D*/N*", "tokens_per_param", 3), ("loss", "loss", 4))
    headers = ["budget (FLOPs)"]
    for label, _, _ in quantities:
        headers += [f"{label} median [90%]"] if compact else [f"{label} median", f"{label} 90%"]
    headers.append("at bound")
    rows = []
    for _, r in co.summary().iterrows():
        row = [fmt(r["budget"])]
        for _, key, digits in quantities:
            med, iv = fmt(r[f"{key}_median"], digits), fmt_interval(r[f"{key}_q05"], r[f"{key}_q95"], digits)
            row += [f"{med} {iv}"] if compact else [med, iv]
        rows.append([*row, f"{100 * r['bound_hit']:.0f}%"])
    return headers, rows


def exponents_table(co):
    """Headers and rows of the exponents a (N* ~ C^a) and b (D* ~ C^b)."""
    ex = co.exponents()
    rows = [[f"{k} ({'N' if k == 'a' else 'D'}* ~ C^{k})", fmt(r["median"]), fmt_interval(r["q05"], r["q95"])]
            for k, r in ex.iterrows()]
    return ["exponent", "median", "90% interval"], rows


def prediction_table(post, labels, N, D, seed: int = 0):
    """Headers and rows of :meth:`Posterior.predict` at (N, D), one row per label.

    Rows outside the fitted range of N or D get a ``*`` after the label; ``decades beyond`` is
    the decades of compute (6ND) beyond the largest fitted run. The
    :class:`~bayesdistill.errors.ExtrapolationWarning` of far extrapolations is not raised here:
    the column says it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        p = post.predict(N, D, seed=seed)
    data = post.data
    inside = ((p["N"] >= data["N"].min()) & (p["N"] <= data["N"].max())
              & (p["D"] >= data["D"].min()) & (p["D"] <= data["D"].max()))
    headers = ["configuration", "N", "D", "D/N", "loss median", "law 90%", "new run 90%", "decades beyond"]
    rows = [[lab + ("" if ok else " *"), fmt(r["N"]), fmt(r["D"]), fmt(r["D"] / r["N"]), fmt(r["median"], 4),
             fmt_interval(r["q05"], r["q95"], 4), fmt_interval(r["pred_q05"], r["pred_q95"], 4),
             f"{r['decades_beyond']:.2f}" + (" (!)" if r["decades_beyond"] > EXTRAPOLATION_WARN_DECADES else "")]
            for lab, ok, (_, r) in zip(labels, inside, p.iterrows())]
    return headers, rows


# ------------------------------------------------------------------ writing
def _save_figure(fig, path: Path, dpi: int = 110) -> Path:
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _fitted_section(post):
    data, cfg = post.data, post.config
    lines = ["## What was fitted", ""]
    items = [
        ("source", f"`{cfg.get('source', '?')}`"),
        ("runs", f"{len(data)} runs, {data['N'].nunique()} model sizes, {data['group'].nunique()} groups"),
        ("N (parameters)", f"{fmt(data['N'].min())} to {fmt(data['N'].max())}"),
        ("D (tokens)", f"{fmt(data['D'].min())} to {fmt(data['D'].max())}"),
        ("loss (nats/token)", f"{fmt(data['loss'].min(), 4)} to {fmt(data['loss'].max(), 4)}"),
        ("law", f"`{post.law.name}`: {post.law.description}"),
        *([("group", f"`{cfg['group']['name']}` of a grouped fit over column `{cfg['group']['column']}` "
                     f"({', '.join(cfg['group']['of'])}; pooled: {', '.join(cfg['group']['pool']) or 'none'})")]
          if "group" in cfg else []),
        ("noise on log loss", f"`{post.noise}`"),
        ("sampler", f"NUTS, {cfg.get('chains')} chains x {cfg.get('draws')} draws after "
                    f"{cfg.get('warmup')} warmup, seed {cfg.get('seed')}, target_accept "
                    f"{cfg.get('target_accept')}, dense mass {cfg.get('dense_mass')}"),
        ("sampling time", f"{cfg['seconds']:.1f} s" if "seconds" in cfg else "?"),
        ("bayesdistill", __version__),
    ]
    lines.append(markdown_table(["", ""], [[f"**{k}**", v] for k, v in items], align="ll"))
    lines += ["", "Priors:", ""]
    lines.append(markdown_table(["param", "prior", "note"],
                                [[k, f"{p.family}({', '.join(f'{a}={v:g}' for a, v in p.params.items())})",
                                  p.note]
                                 for k, p in post.priors.items()], align="lll"))
    return lines


def _identification_section(post) -> list[str]:
    """Which coefficients the data narrowed well below their prior (:mod:`bayesdistill.inference.identify`)."""
    from ..inference.identify import IDENTIFIED_BELOW

    ident = post.identification()
    weak = [k for k, v in ident["identified"].items() if not v]
    rows = [[k, f"{r.width_ratio:.2f}", "yes" if r.identified else "**no**",
             f"{fmt(r.prior_q05)} to {fmt(r.prior_q95)}", f"{fmt(r.q05)} to {fmt(r.q95)}"]
            for k, r in ident.iterrows()]
    return ["", "## What the data identify", "",
            "Posterior 90% width of each log coefficient as a share of its prior's; below "
            f"{IDENTIFIED_BELOW:g} counts as identified. " + (f"Not identified: {', '.join(weak)}: their intervals restate the prior."
                              if weak else "Every coefficient is identified."), "",
            markdown_table(["quantity", "width ratio", "identified", "prior 90%", "posterior 90%"], rows,
                           align="lrlll")]


def _kappa_note(post) -> str:
    """How the predictive intervals widen beyond the fitted compute (discrepancy="compute")."""
    info = post.config.get("kappa")
    if not post.has_kappa or not isinstance(info, dict):
        return ""
    if "kappa" not in info:  # saved before omega: one kappa summary at the top level
        if info.get("source") != "leave-last-level-out":
            return f" Beyond the fitted compute the intervals widen by `kappa` per decade, from its {info.get('source')}."
        return (f" Beyond the fitted compute the intervals widen by `kappa` = {info['median']:.4f} "
                f"(90%: {info['q05']:.4f} to {info['q95']:.4f}) of log loss per decade, learnt by fitting the "
                f"{info['inner_runs']} runs below the largest compute level and predicting its "
                f"{info['held_out_runs']} runs ({info['held_out_decades']:.2f} decades beyond).")
    k, o = info["kappa"], info.get("omega", {"median": 0.0, "q05": 0.0, "q95": 0.0})
    how = ("the population prior learnt across public sweeps (`models/misfit_prior.json`), updated by fitting the "
           f"{info['inner_runs']} runs below the largest compute level and predicting its {info['held_out_runs']} "
           f"runs ({info['held_out_decades']:.2f} decades beyond)"
           if info.get("source") == "leave-last-level-out" else f"its {info.get('source')}")
    return (f" Beyond the fitted compute the law's misfit has sd sqrt((kappa e)^2 + omega^2 e) of log loss at e "
            f"decades beyond: `kappa` = {k['median']:.4f} (90%: {k['q05']:.4f} to {k['q95']:.4f}) per decade and "
            f"`omega` = {o['median']:.4f} (90%: {o['q05']:.4f} to {o['q95']:.4f}) per square-root decade, from {how}.")


def write_report(post, out_dir, budget: float = 1e21, accounting: str = "paper") -> Path:
    """Write ``report.md`` and its plots for a fitted posterior.

    Parameters
    ----------
    post : Posterior
        A fitted (or loaded) posterior.
    out_dir : str or pathlib.Path
        Folder to write into (created if needed); existing files of the same
        names are replaced.
    budget : float
        Training budget in FLOPs for the compute-optimal allocation.
    accounting : {"paper", "6ND"}
        FLOP accounting of the budget.

    Returns
    -------
    pathlib.Path
        The path of ``report.md``.

    Raises
    ------
    BayesDistillError
        On an invalid budget or accounting.
    """
    from .. import plots  # matplotlib is imported only when a report is written

    co = compute_optimal(post, [float(budget)], accounting=accounting)  # validates budget and accounting
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    review = post.review()
    data = post.data
    lines = [f"# Bayesian scaling-law fit: `{post.law.name}` law", ""]
    if not review.ok:
        names = ", ".join(c.name for c in review.failed)
        lines += ["> **WARNING: THIS FIT FAILED ITS REVIEW** (" + names + "). The sampler did not "
                  "converge well enough for the numbers below to be trusted. "
                  f"Remedy: {review.failed[0].remedy}.", ""]
    lines += _fitted_section(post)
    lines += ["", "## Fit review", "", f"**{'PASSED' if review.ok else 'FAILED'}**", ""]
    lines.append(markdown_table(*review_table(review), align="lrll"))
    if review.steps == review.steps:  # not NaN
        lines += ["", f"Mean leapfrog steps per draw: {review.steps:.1f} (a well-conditioned posterior takes ~3-10)."]
    lines += ["", "## Posterior summary", "",
              "Coefficients in natural units; `sigma` is the scatter of log loss between runs"
              + (" and `nu` the Student-t degrees of freedom." if post.noise == "student_t" else "."),
              "q05 and q95 bound the 90% equal-tailed interval.", ""]
    lines.append(markdown_table(*summary_table(post)))
    lines += _identification_section(post)

    s = co.summary().iloc[0]
    n_max = float(data["N"].max())
    labels = [f"largest model ({fmt(n_max)}) at 20 tokens/param",
              f"largest model ({fmt(n_max)}) at 100 tokens/param",
              f"compute-optimal at {fmt(budget)} FLOPs (median N*, D*)"]
    N = [n_max, n_max, s["N_median"]]
    D = [20 * n_max, 100 * n_max, s["D_median"]]
    lines += ["", "## Predictions", "",
              "`law 90%` is the uncertainty of the law's mean loss; `new run 90%` adds the run-to-run "
              "noise. `*` marks configurations outside the fitted range of N or D (extrapolation); "
              "`decades beyond` is how far their compute 6ND lies beyond the largest fitted run "
              f"(`(!)`: more than {EXTRAPOLATION_WARN_DECADES:g}, where `Posterior.predict` warns: intervals are "
              "checked only up to there, see `benchmarks/bench_isoflop.py`)." + _kappa_note(post), ""]
    lines.append(markdown_table(*prediction_table(post, labels, N, D)))

    C_runs = np.asarray(supervised_flops(data["N"].to_numpy(), data["D"].to_numpy(), accounting=accounting))
    ratio = float(budget) / C_runs.max()
    where = (f"{fmt(ratio)}x the compute of the largest fitted run: an extrapolation" if ratio > 1
             else "within the compute range of the fitted runs")
    lines += ["", f"## Compute-optimal allocation at {fmt(budget)} FLOPs", "",
              f"FLOPs counted as `{'6ND' if accounting == '6ND' else '3 F(N) D (paper, Eq. 69)'}`. "
              f"The budget is {where}. Medians with 90% intervals over the posterior; `at bound` is the "
              "share of draws that hit the search bounds.", ""]
    lines.append(markdown_table(*allocation_table(co)))
    lines += ["", "Scaling exponents of the compute-optimal frontier (slopes over 1e18 to 1e24 FLOPs):", ""]
    lines.append(markdown_table(*exponents_table(co)))

    lines += ["", "## Plots", ""]
    for file, func, caption in PLOTS:
        fig = getattr(plots, func)(post, accounting=accounting) if func == "plot_frontier" \
            else getattr(plots, func)(post)
        _save_figure(fig, out / file)
        title = file.removesuffix(".png")
        lines += [f"### {title}", "", caption, "", f"![{title}]({file})", ""]
    return write_text_atomically(out / "report.md", "\n".join(lines))


def write_decision(rec, post, out_dir, name: str = "decision.md") -> Path:
    """Write a Markdown page for a :class:`~bayesdistill.decisions.recommendation.Recommendation` and its plots."""
    from ..plots import decisions as plots_decide

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a = rec.allocation
    lines = [f"# Distillation decision: {fmt(rec.budget)} FLOPs for a {fmt(rec.student_size)}-parameter student",
             ""]
    if not rec.review_ok:
        lines += ["> **WARNING: THE FIT BEHIND THIS DECISION FAILED ITS REVIEW.** Do not act on it.", ""]
    lines += [f"> {n}" for n in rec.notes] + ([""] if rec.notes else [])
    lines += [f"Posterior: `{post.law.name}` law fitted to `{post.config.get('source', '?')}`; objective "
              f"`{rec.objective}` over {post.n_draws} posterior draws.", "",
              f"**Recommended: {rec.option}**"
              + ("" if rec.option == "supervised" else f" with a teacher of {fmt(a['N_T'])} parameters "
                 f"trained on {fmt(a['D_T'])} tokens") + f"; the student sees {fmt(a['D_S'])} tokens "
              f"({a['tokens_per_param_S']:.1f} per parameter).", "",
              f"- student loss: median {rec.loss_summary['median']:.4f}, 90% interval "
              f"{fmt_interval(rec.loss_summary['q05'], rec.loss_summary['q95'], 4)}",
              f"- P(distillation beats supervised training) = {rec.p_distill_beats_supervised:.2f}",
              f"- plug-in answer (posterior-mean coefficients): `{rec.plugin['option']}`; expected regret "
              f"of using it: {rec.plugin_regret:.2e} ({rec.objective})",
              f"- status: {rec.status}", "", "Every option (its best allocation under the objective):", ""]
    rows = [[k, "yes" if r["allowed"] else "reference", f"{r['loss_median']:.4f}",
             fmt_interval(r["loss_q05"], r["loss_q95"], 4), fmt(r["D_S"]),
             "" if k == "supervised" else fmt(r["N_T"]), "" if k == "supervised" else fmt(r["D_T"])]
            for k, r in rec.options.iterrows()]
    lines.append(markdown_table(["option", "allowed", "loss median", "90%", "D_S", "N_T", "D_T"], rows,
                                align="llrrrrr"))
    figures = [("decision_options.png", plots_decide.plot_option_losses(rec),
                "Posterior distribution of each option's student loss."),
               ("decision_shares.png", plots_decide.plot_shares(post, student_size=rec.student_size),
                "Compute shares of training a teacher for this student, against budget (90% bands).")]
    lines += ["", "## Plots", ""]
    for file, fig, caption in figures:
        _save_figure(fig, out / file)
        lines += [caption, "", f"![{file}]({file})", ""]
    return write_text_atomically(out / name, "\n".join(lines))
