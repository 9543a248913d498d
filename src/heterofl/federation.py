"""The federated round: sample clients, select their units, train, aggregate, evaluate every rate.

One round is the same for every method (HeteroFL, FedRolex, Federated Dropout, FedEcover, FjORD, and the
depth methods DepthFL and InclusiveFL, whose rates name depth levels of a model with an exit per stage): the
method (``methods/``) only says which units each sampled client holds; the round extracts those
submodels, hands every group of clients of one rate to the engine (which only trains), and aggregates
what comes back through the same selections. FIARSE (``methods/fiarse.py``, an *unstructured* method)
differs in three places, all here: its clients train the dense model under a magnitude mask, the server
averages each entry over the clients that changed it, and the global model is evaluated at every rate through
its largest weights. ``Federation`` holds what is fixed for a run (config, data,
partition, models per rate); the evolving state is a plain :class:`RunState` so that a checkpoint is
just that state written to disk.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache

import torch

from heterofl.accounting import BYTES_PER_PARAMETER, RoundAccounting
from heterofl.aggregation import Aggregator
from heterofl.batched import make_engine
from heterofl.clock import client_seconds, round_draws, schedule_round
from heterofl.config import ExperimentConfig
from heterofl.data import Dataset
from heterofl.data.partition import Partition
from heterofl.device import pick_device, set_precision
from heterofl.devices import Fleet
from heterofl.errors import HeteroFLError
from heterofl.evaluation import evaluate_classifier, evaluate_language_model, local_pairs
from heterofl.feddyn import client_state_after, server_step
from heterofl.local_training import (
    TRAIN_COLUMNS,
    ClientJob,
    DivergenceError,
    LocalSettings,
    TrainMetrics,
    check_finite,
    client_seed,
)
from heterofl.methods import make_method
from heterofl.methods.base import ClientSlot
from heterofl.methods.fiarse import maskable_names, mean_of_nonzero_updates, top_k_params
from heterofl.methods.registry import depth_level, method_spec
from heterofl.models import model_factory, model_spec
from heterofl.models.exits import distillation_weight
from heterofl.rates import LETTER_OF_RATE, RATE_OF_LETTER, letters_up_to
from heterofl.selection import Selection, space_sizes, space_widths
from heterofl.server_update import make_server_update
from heterofl.static_bn import fit_static_bn, statistics_order
from heterofl.submodel import Params, extract, load_into, parameters_of
from heterofl.tasks import ImageTask, make_task

log = logging.getLogger(__name__)


def learning_rate(config: ExperimentConfig, round_: int) -> float:
    """The global MultiStepLR: rounds after each milestone use ``gamma`` times the rate."""
    drops = sum(1 for milestone in config.milestones if milestone < round_)
    return config.lr * config.gamma**drops


@dataclass
class RunState:
    """Everything that changes during a run; a checkpoint is exactly this."""

    round: int
    params: Params
    sampler_state: torch.Tensor
    history: list[dict] = field(default_factory=list)
    method_state: dict = field(default_factory=dict)
    """What an extraction method carries between rounds (FedEcover's pools); empty for the others."""
    server_state: dict = field(default_factory=dict)
    """What the server update carries between rounds (server momentum's velocity, FedDyn's h); empty for the mean."""
    client_state: dict = field(default_factory=dict)
    """What clients carry between the rounds they are sampled in: ``{"feddyn_h": {user: Params}}`` with FedDyn
    (``feddyn.py``); empty otherwise."""


@dataclass
class TrainedRound:
    """What a round's training and aggregation give the server step."""

    mean: Params
    counts: Params | None
    """Clients each mean entry was taken over (None for FIARSE's mean over non-zero updates)."""
    metrics: dict
    columns: dict
    """Method-specific history columns (FIARSE's sparse upload)."""
    client_state: dict = field(default_factory=dict)
    """FedDyn: each trained client's h_k after the round, by user."""


class Federation:
    def __init__(
        self,
        config: ExperimentConfig,
        dataset: Dataset,
        partition: Partition,
        device: torch.device | None = None,
        engine: str | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.config = config
        self.fleet = check_fleet(config, fleet)
        self.mode = config.mode
        self.device = device or pick_device()
        set_precision(config.precision, self.device)
        self.task = make_task(dataset, self.device)
        self.partition = partition
        control = config.control
        self.method = make_method(config.method)
        spec = method_spec(config.method)
        self.unstructured = spec.unstructured
        self.depth_exits = spec.depth_exits
        self.depth_of = depth_levels(config) if self.depth_exits is not None else None
        self.server_update = make_server_update(config)
        self.build = model_factory(
            config.model,
            global_rate=self.mode.global_rate,
            norm=control.norm,
            scale=config.uses_scaler,
            num_classes=dataset.num_classes,
            in_channels=int(dataset.train_x.shape[1]) if dataset.train_x.dim() == 4 else 1,
            resnet_blocks=config.resnet_blocks,
            stage_exits=self.depth_exits,
            depth_of=self.depth_of,
        )
        self.labels_held = partition.label_mask(dataset.num_classes).to(self.device)
        self.train_indices = [torch.as_tensor(ix, dtype=torch.long) for ix in partition.train_indices]
        self.local_indices, self.local_users = local_pairs(partition.test_indices, self.device)
        self.statistics_order = (
            statistics_order(config.seed, len(self.task.statistics_inputs()), self.device)
            if isinstance(self.task, ImageTask)
            else None
        )
        self.fixed_rates = self.mode.fixed_rates(control.num_users)
        global_model = self.build(self.mode.global_rate)
        self.layout = global_model.layout
        self.maskable = maskable_names(global_model)
        self.space_sizes = space_sizes(self.layout, parameters_of(global_model))
        self.engine = make_engine(engine or config.engine, self.train_model, self.task)
        self.eval_letters = (
            letters_up_to(self.mode.global_rate)
            if config.eval_rates == "all"
            else [LETTER_OF_RATE[self.mode.global_rate]]
        )
        if self.depth_of is not None:  # depth methods: the letters that name a depth level
            self.eval_letters = [letter for letter in self.eval_letters if RATE_OF_LETTER[letter] in self.depth_of]
        self.accounting = RoundAccounting(self.build, self.task)
        self.unfit_users: list[int] = []
        """Clients of the current round whose device misses the deadline even at the smallest width."""

    def build_models(self) -> None:
        """Build every model the run will use, now: a model built lazily in the middle of a run would draw
        its initialisation from the global RNG at a different moment in a resumed run than in a fresh one."""
        for rate in self.mode.rates:
            self.train_model(rate)
            for step_rate in self.method.step_rates(rate):
                self.train_model(step_rate)
        for letter in self.eval_letters:
            self.eval_model(RATE_OF_LETTER[letter])

    @cache  # noqa: B019 - one model per rate for the lifetime of the run
    def train_model(self, rate: float) -> torch.nn.Module:
        return self.build(rate).to(self.device)

    @cache  # noqa: B019
    def eval_model(self, rate: float) -> torch.nn.Module:
        return self.build(rate).to(self.device)

    def global_template(self) -> Params:
        """The global model's parameters by name (the shapes and dtypes a checkpoint or model.pt must match),
        from a model built on a forked random generator, so asking changes no later draw."""
        with torch.random.fork_rng(devices=[]):
            return parameters_of(self.build(self.mode.global_rate))

    def initial_state(self) -> RunState:
        torch.manual_seed(self.config.seed)
        model = self.build(self.mode.global_rate)
        sampler = torch.Generator().manual_seed(self.config.seed)
        params = {k: v.to(self.device) for k, v in parameters_of(model).items()}
        return RunState(round=0, params=params, sampler_state=sampler.get_state())

    def _round_jobs(
        self, round_: int, sampler: torch.Generator, method_state: dict, settings: LocalSettings | None = None
    ) -> tuple[list[ClientJob], dict]:
        """The round's clients with their rates and units; the method's state after the round. With
        ``capability_widths`` (and the round's ``settings``) a sampled client's rate is the largest its device
        can train within the deadline this round (:meth:`_capable_rate`)."""
        control = self.config.control
        if control.model_split_mode == "dynamic":
            rates = self.mode.draw_dynamic_rates(control.num_users, sampler)
        else:
            rates = self.fixed_rates
        sampled = self._sampled(self._active())
        users = torch.randperm(control.num_users, generator=sampler)[:sampled].tolist()
        self.unfit_users = []
        if self.config.capability_widths and settings is not None:
            jitter, _ = round_draws(self.fleet, users, self.config.seed, round_)  # the draws the clock will use
            rates = list(rates)
            for user, factor in zip(users, jitter, strict=True):
                rates[user] = self._capable_rate(round_, user, factor, settings)
        slots = [ClientSlot(u, rates[u], self._space_widths(rates[u])) for u in users]
        selections, method_state = self.method.select(round_, slots, self.space_sizes, self.config.seed, method_state)
        jobs = [self._job(round_, u, rates[u], selection) for u, selection in zip(users, selections, strict=True)]
        return jobs, method_state

    def _job(self, round_: int, user: int, rate: float, selection=None) -> ClientJob:
        return ClientJob(
            user,
            self.mode.global_rate if self.unstructured else rate,  # FIARSE: every client trains dense
            self.train_indices[user],
            self.labels_held[user],
            client_seed(self.config.seed, round_, user),
            selection,
            self.method.step_rates(rate),
            self._keep_fraction(rate) if self.unstructured else None,
        )

    def _capable_rate(self, round_: int, user: int, jitter: float, settings: LocalSettings) -> float:
        """The largest rate of the model mode whose time on the client's device, with this round's jitter,
        fits the deadline; the smallest (and the client named in ``unfit_users``) when none does."""
        device = self.fleet.device(user)
        for rate in sorted(set(self.mode.rates), reverse=True):
            job = self._job(round_, user, rate)
            size = self.accounting.submodel_bytes(job.rate)
            work = self.accounting.client_train_macs(job, settings)
            if client_seconds(device, size, size, work, jitter) <= self.config.deadline:
                return rate
        self.unfit_users.append(user)
        return min(self.mode.rates)

    def _active(self) -> int:
        """K, the clients a round's update is made of."""
        return math.ceil(self.config.control.frac * self.config.control.num_users)

    def _sampled(self, active: int) -> int:
        """How many clients a round samples: K, or ceil(overcommit x K) on the clock (at most every client)."""
        if self.fleet is None:
            return active
        return min(self.config.control.num_users, math.ceil(self.config.overcommit * active - 1e-9))

    def _clock(
        self, round_: int, jobs: list[ClientJob], settings: LocalSettings, previous: float
    ) -> tuple[list[ClientJob], dict, int]:
        """The sampled clients on the simulated clock (``clock.py``): the jobs whose update the round keeps, the
        history's clock columns, and the bytes sent to the online clients (the dropped ones downloaded too)."""
        jitter, online = round_draws(self.fleet, [job.user for job in jobs], self.config.seed, round_)
        sizes = [self.accounting.submodel_bytes(job.rate) for job in jobs]
        macs = [self.accounting.client_train_macs(job, settings) for job in jobs]
        seconds = [
            client_seconds(self.fleet.device(job.user), size, size, work, factor)
            for job, size, work, factor in zip(jobs, sizes, macs, jitter, strict=True)
        ]
        plan = schedule_round(seconds, online, self._active(), self.config.deadline)
        classes_of = [self.fleet.devices[job.user] for job in jobs]
        dropped_classes = [classes_of[i] for i in plan.dropped]
        kept_classes = [classes_of[i] for i in plan.kept]

        def samples(positions, name: str) -> int:  # training samples of these clients of class ``name``
            return sum(len(jobs[i].indices) for i in positions if classes_of[i] == name)

        columns = {
            "sim_round_seconds": plan.seconds,
            "sim_seconds": previous + plan.seconds,
            "clients_sampled": len(jobs),
            "clients_offline": len(plan.offline),
            "clients_dropped": len(plan.dropped),
            "wasted_client_train_macs": sum(macs[i] for i in plan.dropped),
            **({"clients_unfit": len(self.unfit_users)} if self.config.capability_widths else {}),
            **{f"dropped_{name}": dropped_classes.count(name) for name in self.fleet.classes},
            **{f"sampled_{name}": classes_of.count(name) for name in self.fleet.classes},
            **{f"kept_{name}": kept_classes.count(name) for name in self.fleet.classes},
            **{f"sampled_samples_{name}": samples(range(len(jobs)), name) for name in self.fleet.classes},
            **{f"kept_samples_{name}": samples(plan.kept, name) for name in self.fleet.classes},
        }
        sent = sum(size for size, up in zip(sizes, online, strict=True) if up)
        return [jobs[i] for i in plan.kept], columns, sent

    def _keep_fraction(self, rate: float) -> float:
        """FIARSE's size of a client (or an evaluation) of ``rate``: a width-``rate`` submodel's share of the
        global model's parameters."""
        return (rate / self.mode.global_rate) ** 2

    def _space_widths(self, rate: float) -> dict[str, int]:
        return space_widths(self.layout, self.train_model(rate).widths)

    def _train_and_aggregate(self, jobs: list[ClientJob], params: Params, settings: LocalSettings) -> TrainedRound:
        """Extract every rate group's submodels, let the engine train them, aggregate what comes back."""
        if self.unstructured:
            return self._train_and_aggregate_masked(jobs, params, settings)
        aggregator = Aggregator(params, self.layout)
        metrics = TrainMetrics()
        client_state = {}
        groups: dict[float, list[ClientJob]] = {}
        for job in jobs:
            groups.setdefault(job.rate, []).append(job)
        for rate, group in groups.items():
            selections = [job.selection for job in group]
            local = stacked_submodels(params, self.layout, selections)
            trained = self.engine.train(self.train_model(rate), local, group, settings, metrics)
            check_finite(trained, group, metrics)
            aggregator.add(trained, selections, torch.stack([job.labels_held for job in group]))
            for i, job in enumerate(group if settings.feddyn_alpha else ()):
                mine = {name: value[i] for name, value in trained.items()}
                start = {name: value[i] for name, value in local.items()}
                client_state[job.user] = client_state_after(job.feddyn_h, mine, start, settings.feddyn_alpha)
        return TrainedRound(aggregator.mean(), aggregator.counts, metrics.summary(), {}, client_state)

    def _with_feddyn_state(self, jobs: list[ClientJob], client_state: dict) -> list[ClientJob]:
        """The jobs, each carrying its client's FedDyn state for the parameters it holds (zeros at first)."""
        states = client_state.get("feddyn_h", {})
        out = []
        for job in jobs:
            held = dict(self.train_model(job.rate).named_parameters())
            mine = states.get(job.user, {})
            h = {name: mine[name] if name in mine else torch.zeros_like(p) for name, p in held.items()}
            out.append(replace(job, feddyn_h=h))
        return out

    def _train_and_aggregate_masked(
        self, jobs: list[ClientJob], params: Params, settings: LocalSettings
    ) -> TrainedRound:
        """FIARSE: every client trains the dense model under its mask; per entry, the mean over the clients whose
        update is non-zero. Its upload could be sent sparse (a 4-byte value and a 4-byte index per non-zero
        entry, or dense where that is smaller): counted apart from the dense ``bytes_from_clients``."""
        metrics = TrainMetrics()
        local = stacked_submodels(params, self.layout, [job.selection for job in jobs])
        trained = self.engine.train(self.train_model(self.mode.global_rate), local, jobs, settings, metrics)
        check_finite(trained, jobs, metrics)
        labels = torch.stack([job.labels_held for job in jobs])
        mean, nonzero = mean_of_nonzero_updates(params, trained, self.layout, labels)
        dense = self.accounting.submodel_bytes(self.mode.global_rate)
        sparse = sum(min(int(n) * 2 * BYTES_PER_PARAMETER, dense) for n in nonzero.tolist())
        return TrainedRound(mean, None, metrics.summary(), {"sparse_bytes_from_clients": sparse})

    def run_round(self, state: RunState) -> RunState:
        """One communication round; returns the new state (the input state is not modified)."""
        check_fleet(self.config, self.fleet, training=True)
        round_ = state.round + 1
        sampler = torch.Generator()
        sampler.set_state(state.sampler_state)
        settings = LocalSettings(
            lr=learning_rate(self.config, round_),
            momentum=self.config.momentum,
            weight_decay=self.config.weight_decay,
            clip_norm=self.config.clip_norm,
            epochs=self.config.local_epochs,
            batch_size=self.config.batch_size_train,
            use_mask=bool(self.config.control.mask),
            autocast=torch.bfloat16 if self.config.precision == "bf16" else None,
            distill_weight=distillation_weight(round_, self.config.rounds) if self.depth_exits == "all" else 0.0,
            feddyn_alpha=self.config.feddyn_alpha,
        )
        jobs, method_state = self._round_jobs(round_, sampler, state.method_state, settings)
        if self.unfit_users:
            log.info(
                "round %d: clients %s cannot meet the deadline even at the smallest width", round_, self.unfit_users
            )
        clock_columns, sent = {}, None
        if self.fleet is not None:
            previous = state.history[-1]["sim_seconds"] if state.history else 0.0
            jobs, clock_columns, sent = self._clock(round_, jobs, settings, previous)
        if settings.feddyn_alpha:
            jobs = self._with_feddyn_state(jobs, state.client_state)
        started = time.perf_counter()
        try:
            if jobs:
                outcome = self._train_and_aggregate(jobs, state.params, settings)
            else:  # every sampled client was offline or late: no update this round
                columns = {"sparse_bytes_from_clients": 0} if self.unstructured else {}
                zeros = {name: torch.zeros_like(value) for name, value in state.params.items()}
                outcome = TrainedRound(state.params, zeros, dict.fromkeys(TRAIN_COLUMNS, math.nan), columns)
        except DivergenceError as error:
            error.round = round_
            raise
        train_metrics, method_columns = outcome.metrics, outcome.columns
        client_state = state.client_state
        if settings.feddyn_alpha:
            params, server_state = server_step(
                state.params,
                outcome.mean,
                outcome.counts,
                state.server_state,
                settings.feddyn_alpha,
                self.config.control.num_users,
            )
            client_state = {"feddyn_h": {**state.client_state.get("feddyn_h", {}), **outcome.client_state}}
        else:
            params, server_state = self.server_update(state.params, outcome.mean, state.server_state)
        trained = bool(jobs)
        if (trained and not math.isfinite(train_metrics["train_loss"])) or not all(
            torch.isfinite(v).all() for v in params.values()
        ):
            raise DivergenceError(None, round_)
        row = {
            "round": round_,
            "lr": settings.lr,
            "clients": len(jobs),
            **train_metrics,
            "seconds_train": time.perf_counter() - started,
            **self.accounting.train_columns(jobs, settings),  # server columns 0 unless the round evaluates
            **method_columns,
            **clock_columns,
        }
        if sent is not None:
            row["bytes_to_clients"] = sent
        if round_ % self.config.eval_every == 0 or round_ == self.config.rounds:
            started = time.perf_counter()
            for letter, metrics in self.evaluate(params).items():
                row.update({f"{letter}_{name}": value for name, value in metrics.items()})
            row["seconds_evaluate"] = time.perf_counter() - started
            dense = self.mode.global_rate if self.unstructured else None  # FIARSE evaluates masked dense models
            row.update(self.accounting.server_columns(self.eval_letters, dense))
        history = [*state.history, row]
        return RunState(round_, params, sampler.get_state(), history, method_state, server_state, client_state)

    def evaluate(self, params: Params) -> dict[str, dict[str, float]]:
        """Metrics of the global model at every evaluated rate, each with fresh static BN statistics."""
        results = {}
        for letter in self.eval_letters:
            if self.unstructured:  # FIARSE: the dense model keeping the largest weights of the letter's share
                model = self.eval_model(self.mode.global_rate)
                load_into(model, top_k_params(params, self.maskable, self._keep_fraction(RATE_OF_LETTER[letter])))
            else:
                model = self.eval_model(RATE_OF_LETTER[letter])
                load_into(model, extract(params, self.layout, model.widths))
            if isinstance(self.task, ImageTask):
                fit_static_bn(model, self.task.statistics_inputs(), self.config.stats_batch_size, self.statistics_order)
                results[letter] = evaluate_classifier(
                    model,
                    self.task,
                    self.config.stats_batch_size,
                    self.local_indices,
                    self.local_users,
                    self.labels_held if self.config.control.mask else None,
                )
            else:
                results[letter] = evaluate_language_model(model, self.task, self.config.seed)
        return results

    def train(self, state: RunState | None = None, on_round: Callable[[RunState], None] | None = None) -> RunState:
        state = state or self.initial_state()
        while state.round < self.config.rounds:
            state = self.run_round(state)
            if on_round is not None:
                on_round(state)
        return state


def stacked_submodels(params: Params, layout, selections: list[Selection]) -> Params:
    """(K, *local_shape) starting parameters of K clients; clients that share a selection share memory."""
    if all(s == selections[0] for s in selections):
        local = extract(params, layout, selections[0])
        return {k: v.unsqueeze(0).expand(len(selections), *v.shape) for k, v in local.items()}
    locals_ = [extract(params, layout, s) for s in selections]
    return {k: torch.stack([loc[k] for loc in locals_]) for k in locals_[0]}


def depth_levels(config: ExperimentConfig) -> dict[float, int]:
    """Rate -> depth level for a depth method: every letter up to the global one that names at least one stage."""
    stages = model_spec(config.model).stages
    global_rate = config.mode.global_rate
    levels = {rate: depth_level(rate, global_rate, stages) for rate in RATE_OF_LETTER.values() if rate <= global_rate}
    return {rate: level for rate, level in levels.items() if level >= 1}


def check_fleet(config: ExperimentConfig, fleet: Fleet | None, training: bool = False) -> Fleet | None:
    """The run's fleet, refused unless it is the one its settings name, for its clients and seed. None is
    accepted for evaluation (it needs no clock), not for ``training`` a run whose settings name a fleet."""
    if fleet is None:
        if training and config.fleet is not None:
            raise HeteroFLError("fleet", f"{config.fleet!r} is set but no fleet file was given", "--fleet FILE")
        return None
    if config.fleet is None:
        raise HeteroFLError("fleet file", "was given but the run sets no fleet", "--set fleet=NAME with --fleet")
    expected = {"fleet": config.fleet, "num_users": config.control.num_users, "seed": config.seed}
    found = {"fleet": fleet.name, "num_users": fleet.num_users, "seed": fleet.seed}
    for key, value in expected.items():
        if found[key] != value:
            raise HeteroFLError(
                "fleet file", f"is for {key} {found[key]!r}, the run's is {value!r}", "a fleet file made for this run"
            )
    return fleet
