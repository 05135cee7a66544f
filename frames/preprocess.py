"""Preprocessing: every step the spec language accepts, in batch (takt test) and streaming (runner).

Steps come from either side of the build: pydantic spec models at `takt test`, runner-contract
dataclasses on the device. Both carry the same attribute names (`op`, `input`, and each op's
parameters), which is all `Pipeline.from_steps` reads. Element-wise steps broadcast over the
last axis (one parameter per feature, or one for all). `window` stacks the last `size` rows of
an input into one sample, every `stride` rows; the streaming form keeps exactly those rows and
emits the same samples the batch form gives for the same rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frames.assemble import FramesError

OPS = ("standardize", "minmax", "clip", "fill-missing", "window")


class PreprocessError(FramesError):
    """A step the pipeline cannot run (unknown op, bad parameters, an input that does not exist)."""


@dataclass(frozen=True)
class Step:
    op: str
    input: str
    a: tuple[float, ...] = ()  # mean | min | (clip min,) | (fill value,)
    b: tuple[float, ...] = ()  # std | max | (clip max,)
    size: int = 1
    stride: int = 1


Elementwise = Callable[..., np.ndarray]  # f(x, out=None): the step on x, written into `out` where given (out is x)


def _elementwise(step: Step) -> Elementwise:
    """The step as f(x, out=None). With out=x (a float64 array the caller owns, as large as the result) it
    writes the same values into x instead of new arrays: each allocation of a batch-sized array costs its
    page faults again."""
    a, b = np.asarray(step.a, dtype=np.float64), np.asarray(step.b, dtype=np.float64)
    if step.op == "standardize":
        return lambda x, out=None: np.divide(np.subtract(x, a, out=out), b, out=out)
    if step.op == "minmax":
        span = np.where(b - a == 0, 1, b - a)
        return lambda x, out=None: np.divide(np.subtract(x, a, out=out), span, out=out)
    if step.op == "clip":
        return _clip(np.float64(a[0]), np.float64(b[0]))
    if step.op == "fill-missing":

        def fill(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            if out is None:
                return np.where(np.isnan(x), a[0], x)
            np.copyto(out, a[0], where=np.isnan(x))
            return out

        return fill
    raise PreprocessError(f"preprocessing op {step.op!r} is not element-wise")


def _clip(lo: np.float64, hi: np.float64) -> Elementwise:
    """minimum(maximum(x, lo), hi), the step's definition, through np.clip (2-4x faster on numpy 2). The two
    differ only in which zero a tie of ±0 gives (maximum and minimum return their second argument, clip
    keeps x): with the usual bound 0 below, the definition's zeros are all +0, so adding +0 (which turns -0
    into +0 and changes no other value) makes them equal; other bounds at zero, and NaN ones, keep the
    definition itself."""
    if np.isnan(lo) or np.isnan(hi) or hi == 0 or (lo == 0 and (np.signbit(lo) or hi < 0)):
        return lambda x, out=None: np.minimum(np.maximum(x, lo, out=out), hi, out=out)
    if lo != 0:
        return lambda x, out=None: np.clip(x, lo, hi, out=out)

    def clip(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        y: np.ndarray = np.clip(x, lo, hi, out=out)
        np.add(y, 0.0, out=y)
        return y

    return clip


def _step_from(obj: Any, default_input: str) -> Step:
    op = getattr(obj, "op", None)
    name = getattr(obj, "input", None) or default_input

    def floats(v: Any) -> tuple[float, ...]:
        return tuple(float(x) for x in (v if isinstance(v, list | tuple) else [v]))

    if op == "standardize":
        std = floats(obj.std)
        if any(s == 0 for s in std):
            raise PreprocessError(f"standardize on {name!r}: std must not be 0")
        return Step(op, name, floats(obj.mean), std)
    if op == "minmax":
        return Step(op, name, floats(obj.min), floats(obj.max))
    if op == "clip":
        return Step(op, name, floats(obj.min), floats(obj.max))
    if op == "fill-missing":
        return Step(op, name, floats(obj.value))
    if op == "window":
        size, stride = int(obj.size), int(getattr(obj, "stride", 1) or 1)
        if size < 1 or stride < 1:
            raise PreprocessError(f"window on {name!r}: size and stride must be >= 1")
        return Step(op, name, size=size, stride=stride)
    raise PreprocessError(f"unknown preprocessing op {op!r} (known: {', '.join(OPS)})")


@dataclass(frozen=True)
class Pipeline:
    """The preprocessing of one model: steps in spec order, each bound to one input."""

    inputs: tuple[str, ...]
    steps: tuple[Step, ...]

    @classmethod
    def from_steps(cls, steps: Iterable[Any], inputs: Sequence[str]) -> Pipeline:
        """Steps without `input` apply to the model's first input, as the spec language says."""
        inputs = tuple(inputs)
        out = tuple(_step_from(s, inputs[0]) for s in steps)
        for s in out:
            if s.input not in inputs:
                raise PreprocessError(f"preprocessing {s.op!r} names input {s.input!r}, not one of the model's")
        return cls(inputs, out)

    def window(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.op == "window" and s.input == name), None)

    def accepts_missing(self, name: str) -> bool:
        """Whether NaN in this input is filled before the model sees it (fill-missing before any window)."""
        return any(s.op == "fill-missing" and s.input == name for s in self.steps)

    def rows(self, n: int) -> np.ndarray:
        """Which of n input rows each output sample belongs to (its last row): all rows without a window.

        Raises when inputs are windowed differently, as their samples would not line up.
        """
        windows = {(s.size, s.stride) for s in self.steps if s.op == "window"}
        if not windows:
            return np.arange(n)
        if len(windows) > 1 or len({s.input for s in self.steps if s.op == "window"}) != len(self.inputs):
            raise PreprocessError("inputs windowed differently (or only some windowed) give samples that do not align")
        size, stride = windows.pop()
        return np.arange(size - 1, n, stride)

    def apply(self, feeds: Mapping[str, np.ndarray], owned: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """Batch form: rows along axis 0; a window turns (n, …) into (m, size, …). `owned`: inputs whose
        arrays the caller gives away (made for this call), which element-wise steps may overwrite; any
        other is only read (a float64 one is used as it is, not copied), and a step's own result is ours."""
        out = {k: np.asarray(v) for k, v in feeds.items()}
        mine = set(owned)
        for step in self.steps:
            given = out[step.input]
            x = given.astype(np.float64, copy=False)
            if step.op == "window":
                out[step.input] = _windows(x, step.size, step.stride)
            elif (step.input in mine or x is not given) and x.flags.writeable and _fits(step, x):
                out[step.input] = _elementwise(step)(x, out=x)
            else:
                out[step.input] = _elementwise(step)(x)
            mine.add(step.input)  # a copy or a step's result: made here
        return out

    def stream(self) -> StreamState:
        return StreamState(self)


def _fits(step: Step, x: np.ndarray) -> bool:
    """Whether the step's result has x's shape (its parameters broadcast into x), so it can be written into x."""
    try:
        return np.broadcast_shapes(x.shape, (len(step.a),), (len(step.b) or 1,)) == x.shape
    except ValueError:
        return False


def _windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    if len(x) < size:
        return np.empty((0, size, *x.shape[1:]), dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=0)  # (n-size+1, …, size)
    return np.moveaxis(view, -1, 1)[::stride].copy()


class StreamState:
    """Streaming form for one row at a time: `push(feeds)` gives the model's feeds, or None while a
    window is still filling or between strides. The same samples as `Pipeline.apply` on all rows."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._buffers: dict[int, deque[np.ndarray]] = {}
        self._seen: dict[int, int] = {}
        for i, s in enumerate(pipeline.steps):
            if s.op == "window":
                self._buffers[i] = deque(maxlen=s.size)
                self._seen[i] = 0
        self._fns = {i: _elementwise(s) for i, s in enumerate(pipeline.steps) if s.op != "window"}

    def push(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """`feeds` hold one row per input (shape (1, …)); returns preprocessed feeds or None."""
        out = {k: np.asarray(v) for k, v in feeds.items()}
        ready = True
        for i, step in enumerate(self.pipeline.steps):
            x = out[step.input].astype(np.float64)
            if step.op != "window":
                out[step.input] = self._fns[i](x)
                continue
            buf = self._buffers[i]
            buf.append(x[0])
            self._seen[i] += 1
            seen = self._seen[i]
            if len(buf) < step.size or (seen - step.size) % step.stride:
                ready = False
                out[step.input] = np.empty((0, step.size, *x.shape[1:]))
            else:
                out[step.input] = np.stack(list(buf))[None, ...]
        return out if ready else None
