"""HeteroFL (Diao, Ding, Tarokh, ICLR 2021, https://arxiv.org/abs/2010.01264) and the width-heterogeneous methods
after it, as a library. The public API is :data:`__all__`; everything else may change between versions.

Names are imported on first use (PEP 562), so ``import heterofl`` and the CLI's ``--help`` load no torch.

* configure a run: :class:`ExperimentConfig` (:class:`Control` is the reference's control string);
* run it: :func:`train_run` (folder, checkpoints, resume) or :class:`Federation` (one round at a time);
* the registries, one record per extension: :data:`METHODS` (:class:`MethodSpec`), :data:`MODELS`
  (:class:`ModelSpec`), :data:`DATASETS`, :data:`SERVER_UPDATES`;
* data: :func:`load_dataset`, :func:`make_partition`; models: :func:`build_model`;
* report: :func:`build_report` (summary, tables, figures from run folders).
"""

from __future__ import annotations

from heterofl.lazy import lazy_names

_PUBLIC = {
    "Control": "heterofl.config",
    "ExperimentConfig": "heterofl.config",
    "HeteroFLError": "heterofl.errors",
    "ModelMode": "heterofl.rates",
    "Federation": "heterofl.federation",
    "RunState": "heterofl.federation",
    "train_run": "heterofl.runner",
    "evaluate_run": "heterofl.evaluate_run",
    "METHODS": "heterofl.methods.registry",
    "MethodSpec": "heterofl.methods.registry",
    "MODELS": "heterofl.models.registry",
    "ModelSpec": "heterofl.models.registry",
    "build_model": "heterofl.models",
    "DATASETS": "heterofl.data.registry",
    "load_dataset": "heterofl.data",
    "make_partition": "heterofl.data",
    "SERVER_UPDATES": "heterofl.server_update",
    "build_report": "heterofl.report",
}
__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_names(globals(), _PUBLIC)
