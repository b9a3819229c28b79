"""The explorer's HTTP API as plain functions: a path and its query in, a response out.

Every parameter is checked here (names, counts, ranges, z's length and finiteness);
a bad one is an ``ApiError`` with a 4xx status and a one-line message. Model work
(decoding) passes through one ``Gate``: one request uses the model at a time and at
most ``MAX_WAITING`` wait, so a client that fires a burst gets 503s instead of a
queue of hundreds of decodes. The page itself keeps one decode in flight and sends
only the latest slider position (see static/explore.js).
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from zspace.core.display import data_url
from zspace.core.errors import ZspaceError
from zspace.explorer.session import Session

MAX_SAMPLES = 64  # images per /api/sample
MAX_STEPS = 32  # images per path of /api/interpolate
MAX_ABS_Z = 1e6  # a z component beyond this is refused (finite but meaningless)
MAX_WAITING = 4  # model requests running or waiting; more get 503
MAX_FIELDS = 16  # query parameters per request
MAX_SEED = 2**32 - 1


class ApiError(Exception):
    """A request the API refuses: HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())  # one line, always


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    return Response(status, "application/json", body)


def error_response(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", (message + "\n").encode())


class Gate:
    """One model user at a time, at most ``limit`` running or waiting (else 503)."""

    def __init__(self, limit: int = MAX_WAITING) -> None:
        self.limit = limit
        self._model = threading.Lock()
        self._count = threading.Lock()
        self.waiting = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._count:
            if self.waiting >= self.limit:
                raise ApiError(503, f"busy: {self.waiting} model requests already queued")
            self.waiting += 1
        try:
            with self._model:
                yield
        finally:
            with self._count:
                self.waiting -= 1


# ---------------------------------------------------------------- parameters


class Query:
    """The checked parameters of one request; unknown or repeated names are refused."""

    def __init__(self, endpoint: str, query: str, allowed: tuple[str, ...]) -> None:
        try:
            pairs = parse_qsl(
                query, keep_blank_values=True, strict_parsing=bool(query),
                max_num_fields=MAX_FIELDS,
            )  # fmt: skip
        except ValueError:
            raise ApiError(400, f"{endpoint}: malformed query string") from None
        self.endpoint = endpoint
        self.values: dict[str, str] = {}
        for key, value in pairs:
            if key not in allowed:
                takes = ", ".join(allowed) if allowed else "no parameters"
                raise ApiError(400, f"{endpoint}: unknown parameter {key!r} (takes {takes})")
            if key in self.values:
                raise ApiError(400, f"{endpoint}: parameter {key!r} given twice")
            self.values[key] = value

    def text(self, name: str, default: str | None = None) -> str:
        value = self.values.get(name, default)
        if value is None:
            raise ApiError(400, f"{self.endpoint}: parameter {name!r} is required")
        return value

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int:
        raw = self.text(name, None if default is None else str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{self.endpoint}: {name}={raw[:40]!r} is not an integer") from None
        if not lo <= value <= hi:
            raise ApiError(400, f"{self.endpoint}: {name}={value} is out of range {lo}..{hi}")
        return value

    def number(self, name: str, lo: float, hi: float, default: float | None = None) -> float:
        raw = self.text(name, None if default is None else repr(default))
        value = _float(raw)
        if value is None or not lo < value <= hi:
            raise ApiError(
                400, f"{self.endpoint}: {name}={raw[:40]!r}: expected a number in ({lo:g}, {hi:g}]"
            )
        return value

    def choice(self, name: str, choices: list[str], default: str | None = None) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ApiError(
                400, f"{self.endpoint}: {name}={value[:40]!r}: choose one of {', '.join(choices)}"
            )
        return value


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_z(q: Query, d: int) -> np.ndarray:
    """A comma-separated z of exactly ``d`` finite numbers, each within ``MAX_ABS_Z``."""
    where = q.endpoint
    parts = q.text("z").split(",")
    if len(parts) != d:
        raise ApiError(400, f"{where}: z has {len(parts)} values; this model's z_dim is {d}")
    z = [_float(part) for part in parts]
    for k, (part, value) in enumerate(zip(parts, z, strict=True)):
        if value is None:
            raise ApiError(400, f"{where}: z[{k}] = {part[:40]!r} is not a finite number")
        if abs(value) > MAX_ABS_Z:
            raise ApiError(400, f"{where}: z[{k}] = {value:g}: |z_i| must be <= {MAX_ABS_Z:g}")
    return np.array(z, np.float32)


# ---------------------------------------------------------------- the handlers


class Api:
    """Routes ``/api/...`` paths to handlers over one ``Session``."""

    def __init__(self, session: Session, gate: Gate | None = None) -> None:
        self.s = session
        self.gate = gate or Gate()
        self.routes: dict[str, tuple[tuple[str, ...], Callable[[Query], Response]]] = {
            "/api/info": ((), self.info),
            "/api/directions": ((), self.directions),
            "/api/map": (("name", "colour"), self.map),
            "/api/decode": (("z",), self.decode),
            "/api/nearest": (("z",), self.nearest),
            "/api/point": (("i",), self.point),
            "/api/thumb": (("i",), self.thumb),
            "/api/sample": (("sampler", "n", "seed", "limit"), self.sample),
            "/api/interpolate": (("a", "b", "steps"), self.interpolate),
        }
        # the JSON of maps already asked for
        self._map_json = functools.cache(lambda *key: json_response(session.map_data(*key)).body)

    def handle(self, path: str, query: str) -> Response:
        """A response for every request: ApiError becomes its 4xx/503 with one line."""
        try:
            if path not in self.routes:
                raise ApiError(404, f"{path[:80]}: no such API endpoint")
            allowed, handler = self.routes[path]
            return handler(Query(path, query, allowed))
        except ApiError as err:
            return error_response(err.status, err.message)
        except ZspaceError as err:  # the run cannot do what was asked (e.g. no images)
            return error_response(400, " ".join(f"{path}: {err}".split()))

    def _row(self, q: Query, name: str) -> int:
        return q.integer(name, 0, len(self.s.z) - 1)

    # -- facts

    def info(self, q: Query) -> Response:
        out = self.s.info()
        out["limits"] = {"samples": MAX_SAMPLES, "steps": MAX_STEPS, "abs_z": MAX_ABS_Z}
        return json_response(out)

    def directions(self, q: Query) -> Response:
        return json_response(self.s.directions())

    def map(self, q: Query) -> Response:
        name = q.choice("name", list(self.s.maps), "pca")
        by = q.choice("colour", self.s.colour_choices(), self.s.default_colour())
        return Response(200, "application/json", self._map_json(name, by))

    # -- images

    def decode(self, q: Query) -> Response:
        """One z to a PNG (its radius and the server's time in headers). The nearest
        training point is a request of its own (``nearest``): its cost grows with the
        data set (52 ms median for 162,770 x 256 on a loaded 2-core machine), the
        decode's does not."""
        z = parse_z(q, self.s.z_dim)
        started = time.perf_counter()
        with self.gate():
            png = self.s.decode_png(z[None])[0]
        headers = {
            "X-Zspace-Radius": f"{float(self.s.radius(z)):.6g}",
            "X-Zspace-Seconds": f"{time.perf_counter() - started:.4f}",
        }
        return Response(200, "image/png", png, headers)

    def nearest(self, q: Query) -> Response:
        """The training point nearest to z (exact) and its distance."""
        z = parse_z(q, self.s.z_dim)
        started = time.perf_counter()
        row, dist = self.s.nearest(z[None])
        return json_response({
            "row": int(row[0]), "distance": float(dist[0]), "radius": float(self.s.radius(z)),
            "seconds": round(time.perf_counter() - started, 4),
        })  # fmt: skip

    def point(self, q: Query) -> Response:
        i = self._row(q, "i")
        with self.gate():
            out = self.s.point(i)
        rows, dist = self.s.nearest(self.s.z[i][None])
        out["nearest"] = {"row": int(rows[0]), "distance": float(dist[0])}
        for key in ("original", "reconstruction"):  # no original without the run's images
            out[key] = None if out[key] is None else data_url(out[key])
        return json_response(out)

    def thumb(self, q: Query) -> Response:
        i = self._row(q, "i")
        if self.s.images is None:
            raise ApiError(404, f"/api/thumb: {self.s.images_note}")
        return Response(200, "image/png", self.s.image_png(i))

    def sample(self, q: Query) -> Response:
        offered = {e["name"]: e for e in self.s.sampler_list()}
        name = q.choice("sampler", list(offered))
        if not offered[name]["available"]:
            raise ApiError(409, f"/api/sample: sampler {name!r} is not available: "
                                f"{offered[name]['note']}")  # fmt: skip
        n = q.integer("n", 1, MAX_SAMPLES, 16)
        seed = q.integer("seed", 0, MAX_SEED, self.s.run.config.seed)
        limit = None
        if name == "uniform":
            limit = q.number("limit", 0.0, MAX_ABS_Z, offered["uniform"]["limit"])
        elif "limit" in q.values:
            raise ApiError(400, "/api/sample: limit applies to the uniform sampler only")
        z = self.s.draw(name, n, seed, limit)  # a first gauss fit runs here, not holding the model
        params = {"limit": limit} if limit is not None else {}
        return json_response({
            "sampler": name, "n": n, "seed": seed, "params": params, **self._decoded(z),
            "z": [np.round(row.astype(np.float64), 6).tolist() for row in z],
        })  # fmt: skip

    def interpolate(self, q: Query) -> Response:
        a, b = self._row(q, "a"), self._row(q, "b")
        steps = q.integer("steps", 2, MAX_STEPS, 8)
        paths = {name: self._decoded(z) for name, z in self.s.path_points(a, b, steps).items()}
        return json_response({"a": a, "b": b, "steps": steps, "paths": paths})

    def _decoded(self, z: np.ndarray) -> dict[str, Any]:
        """Points' images (data URLs), radii and distances to the nearest training point."""
        with self.gate():
            pngs = self.s.decode_png(z)
        _, dist = self.s.nearest(z)
        return {
            "images": [data_url(p) for p in pngs],
            "radius": self.s.radius(z).tolist(),
            "nearest_distance": dist.tolist(),
        }
