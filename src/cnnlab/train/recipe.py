"""A zoo model's default training recipe, filled into the settings the user left unset.

A zoo entry may carry a :class:`cnnlab.models.Recipe` (``@register(..., recipe=...)``):
experiment-file fields, as timm's ``pretrained_cfg`` or a paper's training table
give them. :func:`apply_recipe` fills each of those fields the user did not set
(no flag, not in the experiment file: pydantic's ``model_fields_set`` tells unset
from a value equal to the default) and leaves everything the user set alone:

- top-level fields (``epochs``, ``batch_size``, ...) and the fields of a section
  (``optimizer.lr``, ``data.standardize``, ...) are filled one by one;
- a section's settings belong to its choice: where the user names another
  optimizer, schedule or loss than the recipe's, the recipe's section is left
  out whole (SGD's momentum means nothing to Adam);
- ``model_options`` likewise: a user option that differs from the recipe's
  (``output: dense`` against the recipe's ``rbf``) leaves the recipe's options out.

A recipe is for training the model from scratch: a run with ``transfer.pretrained``
takes none. A resumed run never comes here: it re-uses its saved ``config.yaml``, where the
recipe's values were written when it started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.train import config as cfg

# Sections whose other fields only mean something for the choice named by this key.
CHOICE = {"optimizer": "name", "schedule": "name", "loss": "name"}


@dataclass
class Applied:
    """What :func:`apply_recipe` did: the filled fields (dotted name -> value), the sections left out."""

    model: str
    summary: str
    filled: dict[str, Any] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)  # section -> why
    complete: bool = False  # every setting of the recipe is in effect (filled, or set by the user to the same value)

    def line(self) -> str | None:
        """The ``picked:`` line (None when the user set everything the recipe has)."""
        if not self.filled:
            return None
        if self.complete:
            return f"{self.model}'s recipe (the zoo's default for it): {self.summary}"
        shown = ", ".join(f"{key} {_show(value)}" for key, value in self.filled.items())
        text = f"{self.model}'s recipe (the zoo's default for it) where you left settings unset: {shown}"
        if self.left_out:
            text += "; left out: " + "; ".join(f"{section} ({why})" for section, why in self.left_out.items())
        return text


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def model_recipe(exp: cfg.Experiment):  # noqa: ANN201 - a cnnlab.models.Recipe or None
    """The recipe of the experiment's zoo model, or None (no model, a spec, transfer, no recipe)."""
    model = exp.model
    if not isinstance(model, str) or exp.transfer.pretrained or cfg.is_spec_file(model):
        return None
    from cnnlab.models import info

    try:
        return info(model).recipe
    except CnnlabError:
        return None  # an unknown name: building the model says so, with the closest names


def apply_recipe(exp: cfg.Experiment) -> tuple[cfg.Experiment, Applied | None]:
    """``exp`` with its zoo model's recipe filled in where the user left settings unset (module doc)."""
    recipe = model_recipe(exp)
    if recipe is None:
        return exp, None
    applied = Applied(str(exp.model), recipe.summary)
    raw = exp.model_dump(mode="python", exclude_unset=True)
    for key, value in recipe.settings.items():
        if key == "model_options":
            given = exp.model_options
            clash = sorted(k for k in value if k in given and given[k] != value[k])
            if clash:
                applied.left_out["model_options"] = ", ".join(f"you set {k}: {_show(given[k])}" for k in clash)
                continue
            options = dict(given)
            for name, option in value.items():
                if name not in given:
                    options[name] = option
                    applied.filled[f"model_options.{name}"] = option
            raw["model_options"] = options
        elif isinstance(value, dict):
            section = getattr(exp, key)
            user_set = section.model_fields_set if key in exp.model_fields_set else set()
            choice = CHOICE.get(key)
            if choice in value and choice in user_set and getattr(section, choice) != value[choice]:
                applied.left_out[key] = f"you picked {getattr(section, choice)}"
                continue
            merged = dict(raw.get(key) or {})
            for name, setting in value.items():
                if name not in user_set:
                    merged[name] = setting
                    applied.filled[f"{key}.{name}"] = setting
            raw[key] = merged
        elif key not in exp.model_fields_set:
            raw[key] = value
            applied.filled[key] = value
    if applied.filled:
        exp = cfg.validate(raw, source=f"{exp.model}'s training recipe")
    applied.complete = not applied.left_out and all(
        _value(exp, key) == setting for key, setting in _dotted(recipe.settings).items())
    return exp, applied


def _dotted(settings: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.05}} -> {'optimizer.lr': 0.05} (model options and sections one level deep)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and not prefix:
            out.update(_dotted(value, f"{key}."))
        else:
            out[prefix + key] = value
    return out


def _value(exp: cfg.Experiment, dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    if not name:
        return getattr(exp, section)
    if section == "model_options":
        return exp.model_options.get(name)
    return getattr(getattr(exp, section), name)
