"""Training recipes as objects: named, documented records of how a result is trained.

A :class:`Recipe` holds the model and its arguments, the dataset, splits and pipelines, the
optimizer with its parameter groups and learning-rate scaling rule, the schedule, the length,
the global batch, AMP, EMA, clipping, the loss, the evaluation protocol, the expected result
with its source, a cost estimate, and the fields where it departs from its reference
(``differences``, each with its reason). They live in a registry, like models::

    from wavevision.recipes import get_recipe, list_recipes
    list_recipes("wave_vit_*")
    get_recipe("wave_vit_s_in1k_tl").lr        # 1e-3: 5e-4 scaled by 1024 / 512

``wavevision list --recipes``, ``wavevision info --recipe NAME`` and ``wavevision train
--recipe NAME`` use them; ``wavevision.engine.recipe`` says which fields the engine applies and
names the ones it cannot apply yet. The recipes of the embedded datasets are the defaults of
``wavevision train --dataset NAME``.
"""
from __future__ import annotations

from . import _embedded, _published  # noqa: F401,E402  (they register the recipes)
from ._recipe import (
                      EMA,
                      Cost,
                      Data,
                      Difference,
                      EvalProtocol,
                      Expected,
                      Loss,
                      Mixing,
                      Optimizer,
                      Recipe,
                      Schedule,
                      Source,
                      Step,
                      TokenLabels,
                      analytical_hours,
)
from ._registry import dataset_recipe, get_recipe, list_recipes, register_recipe

__all__ = ["EMA", "Cost", "Data", "Difference", "EvalProtocol", "Expected", "Loss", "Mixing", "Optimizer", "Recipe",
           "Schedule", "Source", "Step", "TokenLabels", "analytical_hours", "dataset_recipe", "get_recipe",
           "list_recipes", "register_recipe"]
