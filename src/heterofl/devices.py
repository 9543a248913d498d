"""Device classes and fleets as data, and the fleet file that says which device each client has.

A *device class* is what the simulated clock needs of a client (``clock.py``): its training throughput, its
download and upload bandwidth, optionally a per-round lognormal jitter of its time and the probability that it
is available in a round, each with its source. A *fleet* is a named mix of classes (shares summing to 1).
Both live in a YAML table (``config/devices.yaml``), so a user adds a class or a fleet without code:

    classes:
      phone-mid: {train_gflops: 1.76, down_mbps: 4.318, up_mbps: 3.286, jitter: 0.25, availability: 1.0,
                  source: "..."}
    fleets:
      phones: {phone-slow: 0.53, phone-mid: 0.466, phone-fast: 0.004}

A *fleet file* (``heterofl fleet``) fixes, for one (fleet, number of clients, seed), which class each client
has: exactly round(share x N) clients per class (largest remainders), in an order drawn from the seed. It
carries the classes' numbers and a content hash, so a run reads it without the table and refuses it damaged.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from heterofl.errors import HeteroFLError
from heterofl.io import write_text

FORMAT_VERSION = 1
FLEET_SALT = 0xF1EE7
CLASS_KEYS = ("train_gflops", "down_mbps", "up_mbps", "jitter", "availability", "source")
REQUIRED_CLASS_KEYS = ("train_gflops", "down_mbps", "up_mbps", "source")


@dataclass(frozen=True)
class DeviceClass:
    """One kind of client device. Throughput in GFLOP/s of training arithmetic, bandwidths in Mbit/s; ``jitter``
    is the sigma of a per-round lognormal factor of the client's time (median 1), ``availability`` the
    probability that it is online when sampled."""

    name: str
    train_gflops: float
    down_mbps: float
    up_mbps: float
    jitter: float = 0.0
    availability: float = 1.0
    source: str = ""


@dataclass(frozen=True)
class DeviceTable:
    classes: dict[str, DeviceClass]
    fleets: dict[str, dict[str, float]]


def _positive(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise HeteroFLError(where, f"{value!r} is not a positive number", "a finite number > 0")
    return float(value)


def device_class(name: str, raw: Any, where: str = "devices") -> DeviceClass:
    """A class from its YAML mapping, every value checked (one line naming the key on a bad one)."""
    where = f"{where}.classes.{name}"
    if not isinstance(raw, dict):
        raise HeteroFLError(where, f"{raw!r} is not a mapping", ", ".join(CLASS_KEYS))
    unknown = sorted(set(raw) - set(CLASS_KEYS))
    if unknown:
        raise HeteroFLError(f"{where}.{unknown[0]}", "is not a device-class key", ", ".join(CLASS_KEYS))
    missing = [key for key in REQUIRED_CLASS_KEYS if key not in raw]
    if missing:
        raise HeteroFLError(f"{where}.{missing[0]}", "is missing", "every class needs " + ", ".join(missing))
    jitter, availability = raw.get("jitter", 0.0), raw.get("availability", 1.0)
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 5:
        raise HeteroFLError(f"{where}.jitter", f"{jitter!r} is out of range", "a lognormal sigma in [0, 5)")
    if isinstance(availability, bool) or not isinstance(availability, int | float) or not 0 < availability <= 1:
        raise HeteroFLError(f"{where}.availability", f"{availability!r} is out of range", "a probability in (0, 1]")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        raise HeteroFLError(f"{where}.source", "is empty", "where its numbers come from")
    return DeviceClass(
        name=name,
        train_gflops=_positive(f"{where}.train_gflops", raw["train_gflops"]),
        down_mbps=_positive(f"{where}.down_mbps", raw["down_mbps"]),
        up_mbps=_positive(f"{where}.up_mbps", raw["up_mbps"]),
        jitter=float(jitter),
        availability=float(availability),
        source=raw["source"].strip(),
    )


def device_table(raw: Any, where: str = "devices") -> DeviceTable:
    """Classes and fleets from the YAML document, checked: a fleet names known classes with positive shares
    summing to 1."""
    if not isinstance(raw, dict) or set(raw) != {"classes", "fleets"}:
        raise HeteroFLError(where, "must hold exactly the keys classes and fleets", "classes: {...}, fleets: {...}")
    if not isinstance(raw["classes"], dict) or not raw["classes"]:
        raise HeteroFLError(f"{where}.classes", "is empty or not a mapping", "name: {train_gflops: ..., ...}")
    classes = {str(name): device_class(str(name), value, where) for name, value in raw["classes"].items()}
    if not isinstance(raw["fleets"], dict) or not raw["fleets"]:
        raise HeteroFLError(f"{where}.fleets", "is empty or not a mapping", "name: {class: share, ...}")
    fleets: dict[str, dict[str, float]] = {}
    for name, mix in raw["fleets"].items():
        at = f"{where}.fleets.{name}"
        if not isinstance(mix, dict) or not mix:
            raise HeteroFLError(at, f"{mix!r} is not a mapping of class to share", "class: share, ...")
        for cls, share in mix.items():
            if cls not in classes:
                raise HeteroFLError(f"{at}.{cls}", "is not a device class", ", ".join(classes))
            _positive(f"{at}.{cls}", share)
        total = sum(float(s) for s in mix.values())
        if abs(total - 1.0) > 1e-6:
            raise HeteroFLError(at, f"shares sum to {total:g}", "shares summing to 1")
        fleets[str(name)] = {str(c): float(s) for c, s in mix.items()}
    return DeviceTable(classes, fleets)


def read_device_table(path: str | Path) -> DeviceTable:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problem = f"{path} cannot be read ({type(error).__name__})"
        raise HeteroFLError("--devices", problem, "a YAML device table") from None
    return device_table(raw, str(path))


@dataclass(frozen=True)
class Fleet:
    """Which device class each client of one run has, and the classes' numbers."""

    name: str
    num_users: int
    seed: int
    classes: dict[str, DeviceClass]
    devices: tuple[str, ...]
    content_hash: str = ""

    def device(self, user: int) -> DeviceClass:
        return self.classes[self.devices[user]]


def class_counts(shares: dict[str, float], num_users: int) -> dict[str, int]:
    """Clients per class: floor(share x N), the remaining ones to the largest remainders (ties: table order)."""
    exact = {name: share * num_users for name, share in shares.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    left = num_users - sum(counts.values())
    by_remainder = sorted(exact, key=lambda name: -(exact[name] - counts[name]))  # stable: table order on ties
    for name in by_remainder[:left]:
        counts[name] += 1
    return counts


def assign_fleet(table: DeviceTable, fleet: str, num_users: int, seed: int) -> Fleet:
    """The fleet's classes dealt to ``num_users`` clients in an order drawn from ``seed``."""
    if fleet not in table.fleets:
        raise HeteroFLError("fleet", f"{fleet!r} is not in the device table", ", ".join(table.fleets))
    if isinstance(num_users, bool) or not isinstance(num_users, int) or num_users < 1:
        raise HeteroFLError("num_users", f"{num_users!r} is not a positive integer", "an integer >= 1")
    mix = table.fleets[fleet]
    dealt = [name for name, count in class_counts(mix, num_users).items() for _ in range(count)]
    order = np.random.default_rng(np.random.SeedSequence([int(seed), FLEET_SALT])).permutation(num_users)
    devices = tuple(dealt[i] for i in order)
    classes = {name: table.classes[name] for name in mix}
    made = Fleet(fleet, num_users, int(seed), classes, devices)
    return Fleet(**{**made.__dict__, "content_hash": _hash(_content(made))})


def _content(fleet: Fleet) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "fleet": fleet.name,
        "num_users": fleet.num_users,
        "seed": fleet.seed,
        "classes": {name: {k: v for k, v in asdict(c).items() if k != "name"} for name, c in fleet.classes.items()},
        "devices": list(fleet.devices),
    }


def _hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_fleet(fleet: Fleet, path: str | Path) -> None:
    """JSON with its content hash, written atomically (``heterofl.io``)."""
    content = _content(fleet)
    write_text(Path(path), json.dumps({**content, "content_hash": _hash(content)}, indent=1) + "\n")


def _bad(path: Path, problem: str) -> HeteroFLError:
    return HeteroFLError("fleet file", f"{path} {problem}", "a file written by 'heterofl fleet'; regenerate it")


def read_fleet(path: str | Path) -> Fleet:
    """Read and verify a fleet file: its hash, its classes' values, one known class per client."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad(path, f"cannot be read ({type(error).__name__})") from None
    keys = {"format", "fleet", "num_users", "seed", "classes", "devices", "content_hash"}
    if not isinstance(raw, dict) or set(raw) != keys:
        raise _bad(path, "does not hold exactly the keys " + ", ".join(sorted(keys)))
    if raw["format"] != FORMAT_VERSION:
        raise _bad(path, f"has format {raw['format']!r}, this version reads {FORMAT_VERSION}")
    content = {k: raw[k] for k in keys - {"content_hash"}}
    if _hash(content) != raw["content_hash"]:
        raise _bad(path, "fails its content hash (edited, truncated or corrupt)")
    if not isinstance(raw["classes"], dict):
        raise _bad(path, "has no class table")
    classes = {name: device_class(name, value, str(path)) for name, value in raw["classes"].items()}
    devices = raw["devices"]
    if not isinstance(devices, list) or len(devices) != raw["num_users"] or any(d not in classes for d in devices):
        raise _bad(path, f"does not give each of its {raw['num_users']} clients a known class")
    return Fleet(raw["fleet"], raw["num_users"], raw["seed"], classes, tuple(devices), raw["content_hash"])


__all__ = [
    "DeviceClass",
    "DeviceTable",
    "Fleet",
    "assign_fleet",
    "class_counts",
    "device_table",
    "read_device_table",
    "read_fleet",
    "write_fleet",
]
