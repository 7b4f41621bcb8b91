"""Artificial masks on the patch grid of a sensor matrix (LSM's ablation set).

Every function returns ``hidden: (B, Gc, Gt)`` bool, True = the patch is hidden from the
encoder, where ``Gc`` is the number of channel rows of patches and ``Gt`` the number of time
columns. Data that is missing in the recording ("inherited" mask, LSM-2 AIM) is *added* to
these by the model; these functions only draw the artificial part.

  random        each patch independently chosen; exactly ``round(ratio * Gc * Gt)`` per sample
  temporal      whole time columns (all channels at once); ``round(ratio * Gt)`` columns
  sensor        whole channel rows (all time at once); ``round(ratio * Gc)`` rows
  interpolate   one contiguous block of ``span`` columns, at least one column visible either side
  extrapolate   the last ``span`` columns (a forecast of the end of the window)

``span`` for interpolate/extrapolate may be an int or a (lo, hi) range drawn per sample.
Random draws happen on the CPU (so a CPU ``generator`` works for any model device);
``device`` moves the result.
"""

from __future__ import annotations

import torch

from edgefm.errors import ConfigError

MASK_KINDS = ("random", "temporal", "sensor", "interpolate", "extrapolate")


def _rank_select(scores: torch.Tensor, k: int) -> torch.Tensor:
    """True at the ``k`` smallest scores along the last dim."""
    idx = scores.argsort(dim=-1)[..., :k]
    out = torch.zeros_like(scores, dtype=torch.bool)
    return out.scatter_(-1, idx, True)


def random_mask(B: int, Gc: int, Gt: int, ratio: float = 0.8, *, generator=None, device=None) -> torch.Tensor:
    k = int(round(ratio * Gc * Gt))
    s = torch.rand(B, Gc * Gt, generator=generator)
    return _rank_select(s, k).view(B, Gc, Gt)


def temporal_mask(B: int, Gc: int, Gt: int, ratio: float = 0.8, *, generator=None, device=None) -> torch.Tensor:
    k = int(round(ratio * Gt))
    s = torch.rand(B, Gt, generator=generator)
    return _rank_select(s, k)[:, None, :].expand(B, Gc, Gt).clone()


def sensor_mask(B: int, Gc: int, Gt: int, ratio: float = 0.5, *, generator=None, device=None) -> torch.Tensor:
    k = int(round(ratio * Gc))
    s = torch.rand(B, Gc, generator=generator)
    return _rank_select(s, k)[:, :, None].expand(B, Gc, Gt).clone()


def _spans(B: int, span, Gt: int, generator, device) -> torch.Tensor:
    if isinstance(span, (tuple, list)):
        lo, hi = int(span[0]), int(span[1])
        return torch.randint(lo, hi + 1, (B,), generator=generator)
    return torch.full((B,), int(span))


def interpolate_mask(B: int, Gc: int, Gt: int, span=(1, 6), *, generator=None, device=None) -> torch.Tensor:
    n = _spans(B, span, Gt, generator, device).clamp(1, max(Gt - 2, 1))
    # start in [1, Gt - n - 1] so that one column stays visible on each side
    room = (Gt - n - 1).clamp(min=1)
    start = 1 + (torch.rand(B, generator=generator) * room).long()
    t = torch.arange(Gt)[None]
    cols = (t >= start[:, None]) & (t < (start + n)[:, None])
    return cols[:, None, :].expand(B, Gc, Gt).clone()


def extrapolate_mask(B: int, Gc: int, Gt: int, span=(1, 6), *, generator=None, device=None) -> torch.Tensor:
    n = _spans(B, span, Gt, generator, device).clamp(1, max(Gt - 1, 1))
    t = torch.arange(Gt)[None]
    cols = t >= (Gt - n)[:, None]
    return cols[:, None, :].expand(B, Gc, Gt).clone()


def draw_mask(kind: str, B: int, Gc: int, Gt: int, *, ratio: float = 0.8, span=(1, 6),
              generator=None, device=None) -> torch.Tensor:
    """Dispatch by name; see the module docstring."""
    fns = {"random": lambda: random_mask(B, Gc, Gt, ratio, generator=generator),
           "temporal": lambda: temporal_mask(B, Gc, Gt, ratio, generator=generator),
           "sensor": lambda: sensor_mask(B, Gc, Gt, ratio, generator=generator),
           "interpolate": lambda: interpolate_mask(B, Gc, Gt, span, generator=generator),
           "extrapolate": lambda: extrapolate_mask(B, Gc, Gt, span, generator=generator)}
    if kind in fns:
        return fns[kind]().to(device) if device is not None else fns[kind]()
    raise ConfigError(f"unknown mask kind {kind!r}", field="masking", hint=f"choose from {', '.join(MASK_KINDS)}")


def mixed_mask(mix: dict[str, float], B: int, Gc: int, Gt: int, *, ratio: float = 0.8, span=(1, 6),
               generator=None, device=None) -> torch.Tensor:
    """Each sample gets one mask kind drawn with probabilities ``mix`` (normalised)."""
    kinds = [k for k, w in mix.items() if w > 0]
    if not kinds:
        raise ConfigError("mask mix has no positive weight", field="mask_mix")
    w = torch.tensor([float(mix[k]) for k in kinds])
    pick = torch.multinomial(w / w.sum(), B, replacement=True, generator=generator)
    out = torch.zeros(B, Gc, Gt, dtype=torch.bool)
    for i, k in enumerate(kinds):
        sel = pick == i
        n = int(sel.sum())
        if n:
            out[sel] = draw_mask(k, n, Gc, Gt, ratio=ratio, span=span, generator=generator)
    return out.to(device) if device is not None else out
