"""Choices of the data layer that the command line lists without loading pandas or JAX."""

#: how the synthetic replica gives each distillation run its teacher (:func:`bayesdistill.paper_sweep`)
TEACHER_MODES = ("both", "loss", "size")
