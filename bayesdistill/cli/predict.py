"""``bayesdistill predict`` for distilled students (distillation posteriors)."""

from __future__ import annotations

import numpy as np

from .common import load_posterior, print_json


def _student_arrays(args) -> dict:
    """The student and teacher options as equal-length arrays (checked, broadcast or gridded)."""
    from ..errors import BayesDistillError

    if any(v is not None for v in (args.N, args.D, args.tokens_per_param)):
        raise BayesDistillError("--N, --D and --tokens-per-param predict supervised loss; a distilled "
                                "student takes --N-S and --D-S instead")
    if args.N_S is None or args.D_S is None:
        raise BayesDistillError("give the student's size --N-S and distillation tokens --D-S")
    by_size = args.N_T is not None or args.D_T is not None
    if by_size == (args.L_T is not None) or (by_size and (args.N_T is None or args.D_T is None)):
        raise BayesDistillError("give the teacher either as --L-T (its loss) or as both --N-T and --D-T "
                                "(its size and training tokens)")
    names = ("N_S", "D_S", *(("N_T", "D_T") if by_size else ("L_T",)))
    arrays = [np.asarray(getattr(args, k), dtype=float) for k in names]
    for k, a in zip(names, arrays):
        if not np.all(np.isfinite(a) & (a > 0)):
            bad = a[~(np.isfinite(a) & (a > 0))][0]
            raise BayesDistillError(f"--{k.replace('_', '-')} must be positive and finite, got {bad:g}")
    if args.grid:
        arrays = [a.ravel() for a in np.meshgrid(*arrays, indexing="ij")]
    lengths = {len(a) for a in arrays} - {1}
    if len(lengths) > 1:
        counts = ", ".join(f"--{k.replace('_', '-')} {len(a)}" for k, a in zip(names, arrays))
        raise BayesDistillError(f"the student and teacher options have different numbers of values ({counts}): "
                                "give equal numbers, single values, or --grid for every combination")
    return dict(zip(names, np.broadcast_arrays(*arrays)))


def cmd_predict_student(args) -> int:
    from ..errors import BayesDistillError
    from ..report.markdown import fmt, fmt_interval
    from ..report.tables import text_table

    kw = _student_arrays(args)
    post = load_posterior(args.file, getattr(args, "group", None))
    if not post.is_distillation:
        raise BayesDistillError(f"the student and teacher options (--N-S, --D-S, --N-T, --D-T, --L-T) need a "
                                f"distillation posterior; {args.file} holds the supervised law {post.law.name!r}")
    p = post.predict_student(**kw, seed=args.seed)
    vs = post.student_vs_supervised(**kw)
    for col in ("supervised_median", "supervised_q05", "supervised_q95", "teacher_median",
                "p_distill_beats_supervised"):
        p[col] = vs[col].to_numpy()
    c = post.idata.constant_data
    ranges = {k: (float(c[f"{k}_drun"].min()), float(c[f"{k}_drun"].max()))
              for k in ("N", "D") if f"{k}_drun" in c}
    p["in_range"] = True
    for k, (lo, hi) in ranges.items():
        p["in_range"] &= (p[f"{k}_S"] >= lo) & (p[f"{k}_S"] <= hi)
    teacher = "N_T, D_T" if "N_T" in kw else "L_T"
    if args.json:
        print_json({"file": args.file, "kind": "distillation", "teacher": teacher,
                     "predictions": p.to_dict(orient="records")})
        return 0
    cols = ["N_T", "D_T"] if "N_T" in kw else []
    rows = [[fmt(r["N_S"]) + ("" if r["in_range"] else " *"), fmt(r["D_S"]), *(fmt(r[k]) for k in cols),
             fmt(r["teacher_median"], 4), fmt(r["median"], 4), fmt_interval(r["q05"], r["q95"], 4),
             fmt_interval(r["pred_q05"], r["pred_q95"], 4), fmt(r["supervised_median"], 4),
             fmt_interval(r["supervised_q05"], r["supervised_q95"], 4), f"{r['p_distill_beats_supervised']:.2f}"]
            for _, r in p.iterrows()]
    print(text_table(["N_S", "D_S", *cols, "L_T", "distilled", "law 90%", "new run 90%", "supervised",
                      "law 90%", "P(distilled wins)"], rows))
    print("\nloss in nats per token. 'distilled': the student distilled from the teacher on D_S tokens; "
          "'supervised': the same student\ntrained on D_S tokens without a teacher; L_T: the teacher's loss "
          "(median); 'P(distilled wins)': posterior\nprobability that the distilled student's (mean) loss is "
          "the lower one.")
    if not p["in_range"].all() and ranges:
        print("* outside the fitted range of student sizes and tokens "
              + ", ".join(f"{k}_S {fmt(lo)} to {fmt(hi)}" for k, (lo, hi) in ranges.items()) + ": extrapolation")
    return 0
