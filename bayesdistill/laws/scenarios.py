"""The compute scenarios of a distillation decision (Eq. 9) and the options a decision weighs.

Plain data, no JAX: the command line lists them in its help without loading the numerical stack.
"""

from types import MappingProxyType

#: Scenario name -> ``(delta_lgt, delta_pre)`` of Eq. 9.
SCENARIOS = MappingProxyType({
    "best_case": (0, 0),
    "teacher_inference": (1, 0),
    "teacher_pretraining": (0, 1),
    "pretraining_inference": (1, 1),
})

#: Every option of a decision: the distillation scenarios, and training the student supervised.
OPTIONS = (*SCENARIOS, "supervised")

SCENARIO_DESCRIPTIONS = MappingProxyType({
    "best_case": "Teacher is free (amortised): only student training is paid.",
    "teacher_inference": "Teacher exists: pay for its logits on the D_S tokens.",
    "teacher_pretraining": "Train the teacher; its logits are stored and reused.",
    "pretraining_inference": "One teacher trained for one student: pay both.",
})

#: the options :func:`bayesdistill.recommend` weighs unless told otherwise
DEFAULT_SCENARIOS = ("pretraining_inference", "supervised")
