"""Silent divergence: a run whose loss exploded without ever becoming NaN, so ``check_finite`` let it finish.

A NaN or infinite loss stops a run at once (``local_training.check_finite``, the ``FAILED`` file). A learning
rate that is merely far too large (lr 1000 on MNIST) does not: the weights stay finite, the training loss
sits around 1e5 and the global model predicts one class, yet the run completes and would be averaged into
the tables as a seed. :func:`detect_divergence` recognises such a history; the runner writes its reason to
the run folder's ``DIVERGED`` file and the report leaves the run out of every mean, naming it under the table.

The rule (both parts must hold):

1. **At chance**: the last ``CHANCE_EVALUATIONS`` (2) evaluations of the global model are all no better than
   a model that knows nothing. For a classifier with C classes chance is ``100 / C`` % and "no better" means
   at most ``CHANCE_FACTOR`` (1.5) times that, 15 % for 10 classes: a network collapsed onto one class
   scores that class's share of the test set, which on the balanced test sets used here stays within this
   margin (MNIST's largest class, the digit 1, is 11.35 %). For the language model a uniform prediction over
   the C tokens has perplexity C, and "no better" means a perplexity of at least ``C / CHANCE_FACTOR``.
   Two evaluations, not one, so that a single unlucky evaluation never flags a run.
2. **Loss exploded**: the last round's training loss exceeds ``LOSS_FACTOR`` (10) times the smaller of the
   first round's training loss and ``ln C``. ``ln C`` is the cross-entropy of the uniform prediction, which
   is what a freshly initialised network scores (2.30 for 10 classes); an average loss ten times that means
   the model is confidently wrong, which gradient descent that works never produces. The first round's loss
   enters through the minimum so that a run which had learned (first loss well below ``ln C``) and then
   blew up is caught as well, while a first round that already exploded (huge lr) cannot raise the bar.

A healthy run that is slow to learn is at chance too, but its loss stays near ``ln C``, so part 2 keeps it
unflagged; a run whose loss is high but whose accuracy is above chance still learns and is not flagged either.
A history with fewer than two evaluations is never flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

CHANCE_FACTOR = 1.5
LOSS_FACTOR = 10.0
CHANCE_EVALUATIONS = 2


def detect_divergence(history: pd.DataFrame | Sequence[dict], letter: str, num_classes: int) -> str | None:
    """The reason a finite run diverged (one line, with its numbers), or None when it did not.

    ``history`` is the run's ``history.csv`` (or its rows): ``train_loss`` every round and, on evaluated
    rounds, ``{letter}_Global-Accuracy`` (classifiers, in %) or ``{letter}_Global-Perplexity`` (language
    model); ``letter`` is the global model's rate letter, ``num_classes`` the classes (or vocabulary size).
    The rule and why it has these numbers: the module docstring.
    """
    frame = pd.DataFrame(history)
    if num_classes < 2 or "train_loss" not in frame.columns:
        return None
    accuracy, perplexity = f"{letter}_Global-Accuracy", f"{letter}_Global-Perplexity"
    if accuracy in frame.columns:
        column, chance = accuracy, 100.0 / num_classes
        limit = CHANCE_FACTOR * chance
        values = frame[column].dropna()
        at_chance = bool(len(values) >= CHANCE_EVALUATIONS and (values.iloc[-CHANCE_EVALUATIONS:] <= limit).all())
        shown = f"global accuracy {_numbers(values)} % (chance {chance:.3g} %)"
    elif perplexity in frame.columns:
        column, chance = perplexity, float(num_classes)
        limit = chance / CHANCE_FACTOR
        values = frame[column].dropna()
        at_chance = bool(len(values) >= CHANCE_EVALUATIONS and (values.iloc[-CHANCE_EVALUATIONS:] >= limit).all())
        shown = f"global perplexity {_numbers(values)} (uniform model {chance:.3g})"
    else:
        return None
    losses = frame["train_loss"].dropna()
    if not at_chance or losses.empty:
        return None
    first, last = float(losses.iloc[0]), float(losses.iloc[-1])
    bar = LOSS_FACTOR * min(first, math.log(num_classes))
    if not last > bar:
        return None
    return (
        f"train loss {last:.3g} in the last round is above {LOSS_FACTOR:g} x min(first round {first:.3g}, "
        f"ln {num_classes} = {math.log(num_classes):.3g}) and the last {CHANCE_EVALUATIONS} evaluations "
        f"at chance: {shown}"
    )


def _numbers(values: pd.Series) -> str:
    return ", ".join(f"{v:.3g}" for v in values.iloc[-CHANCE_EVALUATIONS:])
