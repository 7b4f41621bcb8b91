"""LSM teacher: a ViT masked autoencoder over a sensor matrix (channels x time).

Follows facebookresearch/mae ``models_mae.py`` and "Scaling wearable foundation models"
(LSM, Narayanswamy et al., ICLR 2025), with LSM-2's Adaptive and Inherited Masking (AIM)
for missing data:

* the input ``x: (B, C, T)`` (normalised) is cut into patches of ``patch_c`` channels x
  ``patch_t`` time steps; channels are zero-padded up to a multiple of ``patch_c``
  (LSM minutely: 26 -> 30 channels, patches 10 min x 5 signals, 6 x 30 = 180 tokens);
* a patch is **inherited-missing** when fewer than ``min_observed`` of its real (non-padding)
  samples are observed in ``mask``; it joins the artificial mask, never reaches the encoder
  and never counts in the loss. Missing samples inside a kept patch are read as 0 (the
  model never reads the stored value, so NaN there is harmless);
* the encoder sees only visible tokens. Visible counts differ across a batch (real gaps), so
  tokens are sorted visible-first and cut to the batch's largest visible count; the surplus
  slots are blocked with an attention key mask and ignored by pooling ("sort and pad");
* the decoder puts one learnable mask token at every hidden position (artificial or
  inherited) and predicts every patch; the loss is the MSE over samples that were
  artificially hidden *and* truly observed;
* optionally (``residual="linear"``) the decoder's output is added to the linear interpolation
  of the samples the encoder saw, so that a briefly trained model starts from that baseline
  instead of from zero (an output skip path: nothing is imputed before the encoder);
* optionally (``decoder_sees_baseline``, with a residual) every decoder token also gets an
  embedding of that baseline's values and of which samples it was drawn from: a hidden token
  then starts from its sample-specific boundary values, not from the mask token alone. Without
  it a Tiny decoder learned no correction at all in 15 minutes on 2 CPU cores (its hidden tokens
  were nearly identical across windows); with it, it learned in a few hundred steps. The
  encoder and ``embed()`` are unchanged and still never see a hidden or missing value;
* optionally (``decoder_context``, with ``decoder_sees_baseline``) that embedding also gets
  the baseline redrawn between *local means* of the available samples at a few time scales
  (:func:`local_mean_fill`): single boundary samples are noisy, and a hidden token otherwise
  has to learn to average its neighbours through attention before it can correct anything.
  Like the linear baseline, these are computed from the samples the encoder saw only. With
  ``context_residual`` the residual baseline itself is a learned per-channel blend of the
  linear and local-mean baselines (it starts at the linear one).

Shapes: ``B`` batch, ``C`` channels, ``T`` time steps, ``Gc x Gt`` patch grid,
``L = Gc * Gt`` tokens, ``P = patch_c * patch_t`` values per patch, ``D`` width.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgefm.errors import ConfigError, ShapeError
from edgefm.models.masking import draw_mask, mixed_mask


@dataclass
class LSMConfig:
    n_channels: int = 26            # real input channels C (padded up to a multiple of patch_c)
    seq_len: int = 300              # time steps T per window (must be a multiple of patch_t)
    patch_t: int = 10               # time steps per patch (LSM minutely: 10 minutes)
    patch_c: int = 5                # channels per patch (LSM minutely: 5 signals)
    enc_dim: int = 192
    enc_depth: int = 4
    enc_heads: int = 3
    dec_dim: int = 128
    dec_depth: int = 2
    dec_heads: int = 4
    mlp_ratio: float = 4.0
    mask_ratio: float = 0.8         # default artificial random-mask ratio (LSM: 0.8)
    min_observed: float = 0.5       # a patch with fewer observed real samples than this is missing
    norm_eps: float = 1e-6
    channel_names: tuple[str, ...] = ()   # model channel order; needed by embed(channels=...)
    fs_hz: float = 1.0 / 60.0       # sample rate of the time axis (for reporting and eval spans)
    # None: the decoder predicts values (MAE). "linear": it predicts a correction to the linear
    # interpolation (per channel, edges held) of the samples the encoder saw, so an untrained
    # model starts at that baseline; the encoder and embed() are unchanged.
    residual: str | None = None
    # with a residual: add to every decoder token an embedding of the baseline's patch values and
    # of the patch's available-sample map (2 * patch_dim inputs); see the module docstring
    decoder_sees_baseline: bool = False
    # with decoder_sees_baseline: time scales (samples) of extra local-mean baselines fed to the
    # decoder the same way (LSM minutely: (5, 15, 45) minutes); () = none
    decoder_context: tuple[int, ...] = ()
    # with decoder_context: the residual baseline itself becomes a learned per-channel blend of the
    # linear and the local-mean baselines (initialised at the linear one), a smoother per channel
    context_residual: bool = False
    # reconstruction loss over hidden observed samples: "mse" (MAE, LSM) or "l1" (the
    # median fill, which is what an MAE-scored imputation rewards on skewed signals)
    loss: str = "mse"

    def __post_init__(self):
        self.channel_names = tuple(self.channel_names)
        self.decoder_context = tuple(int(k) for k in self.decoder_context)
        if self.seq_len % self.patch_t:
            raise ConfigError(f"seq_len {self.seq_len} is not a multiple of patch_t {self.patch_t}",
                              field="patch_t")
        if self.enc_dim % self.enc_heads or self.dec_dim % self.dec_heads:
            raise ConfigError("dims must be divisible by their head counts", field="enc_heads/dec_heads")
        if self.channel_names and len(self.channel_names) != self.n_channels:
            raise ConfigError(f"{len(self.channel_names)} channel names for {self.n_channels} channels",
                              field="channel_names")
        if self.residual not in (None, "linear"):
            raise ConfigError(f"unknown residual {self.residual!r}", field="residual", hint="None or 'linear'")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError("mask_ratio must be in [0, 1)", field="mask_ratio")
        if self.decoder_sees_baseline and not self.residual:
            raise ConfigError("decoder_sees_baseline needs a residual baseline", field="decoder_sees_baseline",
                              hint="set residual='linear' or drop decoder_sees_baseline")
        if self.decoder_context and not self.decoder_sees_baseline:
            raise ConfigError("decoder_context needs decoder_sees_baseline", field="decoder_context",
                              hint="set decoder_sees_baseline=True (and residual='linear') or drop decoder_context")
        if self.context_residual and not self.decoder_context:
            raise ConfigError("context_residual needs decoder_context scales", field="context_residual",
                              hint="set decoder_context=(5, 15, 45) or drop context_residual")
        if any(k < 1 or k > self.seq_len for k in self.decoder_context):
            raise ConfigError(f"decoder_context scales {self.decoder_context} must be in [1, seq_len={self.seq_len}]",
                              field="decoder_context")
        if self.loss not in ("mse", "l1"):
            raise ConfigError(f"unknown loss {self.loss!r}", field="loss", hint="'mse' or 'l1'")

    @property
    def padded_channels(self) -> int:
        return int(math.ceil(self.n_channels / self.patch_c) * self.patch_c)

    @property
    def grid(self) -> tuple[int, int]:
        """(Gc, Gt): channel rows x time columns of patches."""
        return self.padded_channels // self.patch_c, self.seq_len // self.patch_t

    @property
    def num_patches(self) -> int:
        gc, gt = self.grid
        return gc * gt

    @property
    def patch_dim(self) -> int:
        return self.patch_c * self.patch_t

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channel_names"] = list(self.channel_names)
        d["decoder_context"] = list(self.decoder_context)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LSMConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------- building blocks

def _neighbours(avail: torch.Tensor):
    """avail: (B, C, T) -> (t, prev, nxt): each sample's time index, the last available index at
    or before it (-1: none) and the first at or after it (T: none)."""
    T = avail.shape[-1]
    t = torch.arange(T, device=avail.device).expand_as(avail)
    prev = torch.where(avail, t, torch.full_like(t, -1)).cummax(-1).values
    nxt = torch.where(avail, t, torch.full_like(t, T)).flip(-1).cummin(-1).values.flip(-1)
    return t, prev, nxt


def _blend(left: torch.Tensor, right: torch.Tensor, t, prev, nxt) -> torch.Tensor:
    """Distance-weighted blend of the values at ``prev`` (left) and ``nxt`` (right); an edge
    holds its one side; a channel with no available sample gives 0."""
    T = t.shape[-1]
    hp, hn = prev >= 0, nxt < T
    w = (t - prev).to(left.dtype) / (nxt - prev).clamp(min=1).to(left.dtype)
    both = left + (right - left) * w
    zero = torch.zeros((), dtype=left.dtype, device=left.device)
    return torch.where(hp & hn, both, torch.where(hp, left, torch.where(hn, right, zero)))


def linear_fill_torch(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """x, avail: (B, C, T) -> linear interpolation over available samples per channel; the
    edges hold the nearest available value; a channel with none available gives 0."""
    T = x.shape[-1]
    t, prev, nxt = _neighbours(avail)
    return _blend(x.gather(-1, prev.clamp(min=0)), x.gather(-1, nxt.clamp(max=T - 1)), t, prev, nxt)


def local_mean_fills(x: torch.Tensor, avail: torch.Tensor, ks) -> list[torch.Tensor]:
    """:func:`local_mean_fill` at every scale in ``ks``, sharing the neighbour search and the
    prefix sums across scales."""
    B, C, T = x.shape
    pad = torch.zeros((B, C, 1), dtype=x.dtype, device=x.device)
    S = torch.cat([pad, torch.cumsum(torch.where(avail, x, torch.zeros((), dtype=x.dtype, device=x.device)), -1)], -1)
    A = torch.cat([pad, torch.cumsum(avail.to(x.dtype), -1)], -1)      # (B, C, T + 1) prefix sums
    t, prev, nxt = _neighbours(avail)

    def window_mean(lo, hi):                                             # mean over [lo, hi)
        lo, hi = lo.clamp(0, T), hi.clamp(0, T)
        s = S.gather(-1, hi) - S.gather(-1, lo)
        c = A.gather(-1, hi) - A.gather(-1, lo)
        return s / c.clamp(min=1)

    return [_blend(window_mean(prev + 1 - k, prev + 1), window_mean(nxt, nxt + k), t, prev, nxt) for k in ks]


def local_mean_fill(x: torch.Tensor, avail: torch.Tensor, k: int) -> torch.Tensor:
    """x, avail: (B, C, T) -> linear interpolation between local means at scale ``k``.

    At every t, ``p`` is the last available sample at or before t and ``n`` the first at or
    after it; the left value is the mean of the available samples in ``(p - k, p]``, the right
    one of those in ``[n, n + k)``, blended by distance as :func:`linear_fill_torch` blends
    ``x[p]`` and ``x[n]`` (an edge holds its one side; no available sample gives 0). ``k = 1``
    is :func:`linear_fill_torch`. Reads ``x`` only where ``avail``.
    """
    return local_mean_fills(x, avail, (k,))[0]


def sincos_2d(dim: int, gc: int, gt: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE): (gc * gt, dim), half rows, half columns."""
    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    rr, cc = np.meshgrid(np.arange(gc, dtype=np.float64), np.arange(gt, dtype=np.float64), indexing="ij")
    half = dim // 2
    emb = np.concatenate([one(half - half % 2, rr), one(dim - half + (half % 2), cc)], axis=1)
    if emb.shape[1] != dim:  # odd widths: pad with zeros
        emb = np.pad(emb, ((0, 0), (0, dim - emb.shape[1])))
    return torch.from_numpy(emb).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D); keep: (B, N) bool, False = padding slot no query may attend to."""
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        am = None if keep is None else keep[:, None, None, :]
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # the same attention, written out: under bfloat16 autocast on CPU, PyTorch's fused SDPA
            # kernel (flash for CPU) took ~1.5x longer per training step of a Tiny teacher than these
            # three ops (its backward alone was 46% of the step). In float32 the fused kernel is the
            # faster one (embed() of 256 wrist-raw windows: 619 vs 748 ms), so it stays there.
            a = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            if am is not None:
                a = a.masked_fill(~am, float("-inf"))
            y = a.softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=am)
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Pre-norm transformer block (ViT / nanoGPT)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, keep=None):
        x = x + self.attn(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


# ---------------------------------------------------------------- the model

class MaskedAutoencoder(nn.Module):
    """ViT MAE over (channels x time) patches with inherited (real) and artificial masks."""

    def __init__(self, cfg: LSMConfig):
        super().__init__()
        self.cfg = cfg
        gc, gt = cfg.grid
        # encoder
        self.patch_embed = nn.Linear(cfg.patch_dim, cfg.enc_dim)
        self.register_buffer("pos_embed", sincos_2d(cfg.enc_dim, gc, gt)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.enc_dim, cfg.enc_heads, cfg.mlp_ratio, cfg.norm_eps)
                                    for _ in range(cfg.enc_depth))
        self.norm = nn.LayerNorm(cfg.enc_dim, eps=cfg.norm_eps)
        # decoder
        self.decoder_embed = nn.Linear(cfg.enc_dim, cfg.dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.dec_dim))
        self.register_buffer("decoder_pos_embed", sincos_2d(cfg.dec_dim, gc, gt)[None], persistent=False)
        self.decoder_blocks = nn.ModuleList(Block(cfg.dec_dim, cfg.dec_heads, cfg.mlp_ratio, cfg.norm_eps)
                                            for _ in range(cfg.dec_depth))
        self.decoder_norm = nn.LayerNorm(cfg.dec_dim, eps=cfg.norm_eps)
        self.decoder_pred = nn.Linear(cfg.dec_dim, cfg.patch_dim)
        # baseline values + availability of each patch -> decoder width (decoder_sees_baseline)
        n_base = 2 + len(cfg.decoder_context)
        # per channel and local-mean scale: weight of (local-mean baseline - linear baseline)
        self.context_mix = (nn.Parameter(torch.zeros(len(cfg.decoder_context), cfg.n_channels))
                            if cfg.context_residual else None)
        self.decoder_base = nn.Linear(n_base * cfg.patch_dim, cfg.dec_dim) if cfg.decoder_sees_baseline else None
        # real (non-padding) entries of each patch, (L, P)
        real = torch.zeros(cfg.padded_channels, cfg.seq_len, dtype=torch.bool)
        real[:cfg.n_channels] = True
        self.register_buffer("_real", self._patchify(real[None].float())[0] > 0.5, persistent=False)
        self.initialize_weights()

    def initialize_weights(self):
        torch.nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.cfg.residual:  # start exactly at the baseline; learning only adds corrections
            nn.init.zeros_(self.decoder_pred.weight)
            nn.init.zeros_(self.decoder_pred.bias)

    # ------------------------------------------------------------ accounting

    def num_params(self, part: str = "all") -> int:
        """Trainable parameters of ``all``, ``encoder`` or ``decoder``."""
        enc = ("patch_embed", "blocks", "norm.")
        n = 0
        for name, p in self.named_parameters():
            is_enc = name.startswith(enc)
            if part == "all" or (part == "encoder") == is_enc:
                n += p.numel()
        return n

    def flops(self, seq_len: int | None = None, n_channels: int | None = None, *, part: str = "encoder",
              mask_ratio: float = 0.0) -> int:
        """Forward FLOPs for one window, counted as LSM Table 8 does (fvcore convention: one
        multiply-add = one FLOP; encoder over every token, no masking).

        ``part="all"`` adds the decoder; ``mask_ratio`` > 0 counts the encoder on the visible
        tokens only (the training cost).
        """
        cfg = self.cfg
        T = seq_len or cfg.seq_len
        C = n_channels or cfg.n_channels
        L = int(math.ceil(C / cfg.patch_c)) * (T // cfg.patch_t)
        Le = max(1, int(round(L * (1 - mask_ratio))))

        def blocks(n_tok, dim, depth):
            hid = int(dim * cfg.mlp_ratio)
            per = n_tok * (3 * dim * dim + dim * dim + 2 * dim * hid) + 2 * n_tok * n_tok * dim
            return depth * per

        f = L * cfg.patch_dim * cfg.enc_dim + blocks(Le, cfg.enc_dim, cfg.enc_depth)
        if part == "all":
            f += Le * cfg.enc_dim * cfg.dec_dim + blocks(L, cfg.dec_dim, cfg.dec_depth)
            f += L * cfg.dec_dim * cfg.patch_dim
            if cfg.decoder_sees_baseline:
                f += L * (2 + len(cfg.decoder_context)) * cfg.patch_dim * cfg.dec_dim
        return int(f)

    # ------------------------------------------------------------ patches

    def _patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, Cp, T) padded -> (B, L, P), row-major over (Gc, Gt)."""
        cfg = self.cfg
        gc, gt = cfg.grid
        B = x.shape[0]
        x = x.reshape(B, gc, cfg.patch_c, gt, cfg.patch_t)
        return x.permute(0, 1, 3, 2, 4).reshape(B, gc * gt, cfg.patch_dim)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, L, P); channels zero-padded to a multiple of patch_c."""
        self._check(x)
        pad = self.cfg.padded_channels - x.shape[1]
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        return self._patchify(x)

    def unpatchify(self, p: torch.Tensor) -> torch.Tensor:
        """p: (B, L, P) -> (B, C, T) with the padding channels dropped."""
        cfg = self.cfg
        gc, gt = cfg.grid
        B = p.shape[0]
        x = p.reshape(B, gc, gt, cfg.patch_c, cfg.patch_t).permute(0, 1, 3, 2, 4)
        return x.reshape(B, cfg.padded_channels, cfg.seq_len)[:, :cfg.n_channels]

    def _check(self, x: torch.Tensor):
        if x.ndim != 3 or x.shape[1] != self.cfg.n_channels or x.shape[2] != self.cfg.seq_len:
            raise ShapeError(f"input {tuple(x.shape)} does not match the model's "
                             f"(B, {self.cfg.n_channels}, {self.cfg.seq_len})", field="x",
                             hint="window the data with the preset the teacher was trained on")

    # ------------------------------------------------------------ masks

    def inherited_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """mask: (B, C, T) bool observed -> (B, L) bool, True = patch missing in the data."""
        obs = self.patchify(mask.float())                         # (B, L, P), padding = 0
        n_real = self._real.sum(-1).clamp(min=1).float()          # (L,)
        return obs.sum(-1) / n_real < self.cfg.min_observed

    def patch_mask_from_samples(self, hide: torch.Tensor) -> torch.Tensor:
        """hide: (B, C, T) bool -> (B, L) bool, True where a patch holds any hidden sample."""
        return self.patchify(hide.float()).amax(-1) > 0

    def draw_mask(self, B: int, kind: str = "random", *, ratio: float | None = None, span=(1, 6),
                  mix: dict[str, float] | None = None, generator=None) -> torch.Tensor:
        """Artificial mask (B, L) bool True = hidden, of one kind or a per-sample ``mix``."""
        gc, gt = self.cfg.grid
        ratio = self.cfg.mask_ratio if ratio is None else ratio
        if mix:
            m = mixed_mask(mix, B, gc, gt, ratio=ratio, span=span, generator=generator)
        else:
            m = draw_mask(kind, B, gc, gt, ratio=ratio, span=span, generator=generator)
        return m.reshape(B, gc * gt).to(self.pos_embed.device)

    # ------------------------------------------------------------ encoder / decoder

    def forward_encoder(self, x: torch.Tensor, hidden: torch.Tensor):
        """x: (B, C, T) with missing samples already 0; hidden: (B, L) bool.

        Returns latent (B, K, D) after the final norm, ids (B, K) token index of each slot, and
        keep (B, K) bool (False = padding slot: a hidden token cut in to fill the batch).
        """
        B = x.shape[0]
        tok = self.patch_embed(self.patchify(x)) + self.pos_embed     # (B, L, D)
        n_vis = (~hidden).sum(1)
        K = int(n_vis.max().clamp(min=1))
        # stable sort: visible tokens first, in their original order
        ids = torch.argsort(hidden.to(torch.int8), dim=1, stable=True)[:, :K]
        keep = torch.arange(K, device=x.device)[None] < n_vis[:, None]
        keep[:, 0] = True  # a sample with nothing visible attends to one zeroed token (no data)
        h = torch.gather(tok, 1, ids[..., None].expand(-1, -1, tok.shape[-1]))
        # padding slots (and the forced slot of an empty sample) carry nothing, not even a position
        h = h * (keep & ~torch.gather(hidden, 1, ids))[..., None]
        for blk in self.blocks:
            h = blk(h, keep)
        return self.norm(h), ids, keep

    def forward_decoder(self, latent: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor,
                        hidden: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """-> pred (B, L, P): every patch predicted; hidden ones start from the mask token.

        ``base`` (B, L, (2 + len(decoder_context)) P): baseline patch values, availability and
        local-mean baselines, added through
        ``decoder_base`` to every token when the model has one."""
        B, L = hidden.shape
        z = self.decoder_embed(latent)                                   # (B, K, Dd)
        full = self.mask_token.expand(B, L, -1).clone()
        vis = keep & ~torch.gather(hidden, 1, ids)                       # slots holding real tokens
        src = torch.where(vis[..., None], z, torch.gather(full, 1, ids[..., None].expand_as(z)))
        full = full.scatter(1, ids[..., None].expand_as(z), src)
        h = full + self.decoder_pos_embed
        if self.decoder_base is not None:
            h = h + self.decoder_base(base)
        for blk in self.decoder_blocks:
            h = blk(h)
        return self.decoder_pred(self.decoder_norm(h))

    def forward_loss(self, x: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor,
                     artificial: torch.Tensor, inherited: torch.Tensor) -> torch.Tensor:
        """MSE (or L1, ``cfg.loss``) over samples artificially hidden AND observed; inherited
        patches never count."""
        target = self.patchify(x)
        obs = self.patchify(mask.float()) > 0.5
        w = (obs & (artificial & ~inherited)[..., None]).float()
        err = (pred - target).abs() if self.cfg.loss == "l1" else (pred - target) ** 2
        return (err * w).sum() / w.sum().clamp(min=1.0)

    def _prepare(self, x: torch.Tensor, mask: torch.Tensor | None):
        self._check(x)
        if mask is None:
            mask = torch.isfinite(x)
        if mask.shape != x.shape:
            raise ShapeError(f"mask {tuple(mask.shape)} differs from x {tuple(x.shape)}", field="mask")
        mask = mask.bool() & torch.isfinite(x)
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))  # never read
        return x, mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, artificial: torch.Tensor | None = None,
                kind: str = "random", mask_ratio: float | None = None, mix: dict[str, float] | None = None,
                span=(1, 6), generator=None, base_avail: torch.Tensor | None = None):
        """x: (B, C, T) normalised; mask: (B, C, T) bool True = observed (None: finite values).

        ``artificial``: (B, L) bool patch mask to use; otherwise one is drawn (``kind`` /
        ``mix``, ``mask_ratio``). Returns ``loss`` (scalar), ``pred`` (B, C, T) reconstruction
        in normalised units, ``mask_used`` (B, C, T) bool True = hidden from the encoder
        (artificial or inherited). ``base_avail`` (B, C, T) bool: samples the ``residual``
        baseline may use (default: observed samples of the patches shown to the encoder).
        """
        x, mask = self._prepare(x, mask)
        inherited = self.inherited_mask(mask)
        if artificial is None:
            artificial = self.draw_mask(x.shape[0], kind, ratio=mask_ratio, span=span, mix=mix,
                                        generator=generator)
        hidden = artificial | inherited
        latent, ids, keep = self.forward_encoder(x, hidden)
        used = self.unpatchify(hidden[..., None].expand(-1, -1, self.cfg.patch_dim).float()) > 0.5
        base, dec_in = None, None
        if self.cfg.residual == "linear":
            avail = mask & ~used if base_avail is None else mask & base_avail
            lin = linear_fill_torch(x, avail)
            base = self.patchify(lin)
            if self.decoder_base is not None:
                ctx = local_mean_fills(x, avail, self.cfg.decoder_context)
                dec_in = torch.cat([base, self.patchify(avail.to(x.dtype)), *map(self.patchify, ctx)], -1)
                if self.context_mix is not None:
                    base = self.patchify(lin + sum(a[None, :, None] * (c - lin) for a, c in zip(self.context_mix, ctx)))
        pred = self.forward_decoder(latent, ids, keep, hidden, dec_in)
        if base is not None:
            pred = pred + base
        loss = self.forward_loss(x, mask, pred, artificial, inherited)
        return loss, self.unpatchify(pred), used

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor, hide: torch.Tensor) -> torch.Tensor:
        """Fill ``hide`` (B, C, T) bool samples: every patch touching one is hidden from the encoder.

        Returns (B, C, T): the model's prediction where ``hide`` else the input.
        """
        art = self.patch_mask_from_samples(hide)
        # the encoder loses whole patches; the residual baseline (if any) uses every visible sample
        _, pred, _ = self.forward(x, mask & ~hide, artificial=art, base_avail=~hide)
        return torch.where(hide, pred, torch.where(mask, x, pred))

    def channel_index(self, channels) -> list[int]:
        names = list(self.cfg.channel_names)
        idx = []
        for c in channels:
            if c not in names:
                raise ConfigError(f"channel {c!r} is not one of the teacher's channels {names}",
                                  field="channels")
            idx.append(names.index(c))
        return idx

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None, channels=None) -> torch.Tensor:
        """Pooled encoder output (B, D_enc): mean over visible tokens, nothing artificially hidden.

        ``channels``: names of the channels to use; every other channel is treated as missing.
        A sample with nothing observed gets the embedding of zero visible data (one zeroed token).
        """
        x, mask = self._prepare(x, mask)
        if channels is not None:
            keep_c = torch.zeros(self.cfg.n_channels, dtype=torch.bool, device=x.device)
            keep_c[self.channel_index(channels)] = True
            mask = mask & keep_c[None, :, None]
            x = x * mask
        hidden = self.inherited_mask(mask)
        latent, ids, keep = self.forward_encoder(x, hidden)
        w = keep.float()[..., None]
        return (latent * w).sum(1) / w.sum(1).clamp(min=1.0)


# ---------------------------------------------------------------- sizes (LSM Table 8)

def _size(enc, dec, **kw) -> LSMConfig:
    (ed, ew, eh), (dd, dw, dh) = enc, dec
    d = dict(enc_depth=ed, enc_dim=ew, enc_heads=eh, dec_depth=dd, dec_dim=dw, dec_heads=dh)
    return LSMConfig(**{**d, **kw})  # kw may override widths (e.g. micro models in tests)


def lsm_tiny(**kw) -> MaskedAutoencoder:
    """Enc 4 x 192 (3 heads), dec 2 x 128 (4 heads); LSM: ~2M params, 0.37 GFLOPs."""
    return MaskedAutoencoder(_size((4, 192, 3), (2, 128, 4), **kw))


def lsm_small(**kw) -> MaskedAutoencoder:
    """Enc 8 x 256 (4), dec 2 x 192 (4); LSM: ~7M, 1.28 GFLOPs."""
    return MaskedAutoencoder(_size((8, 256, 4), (2, 192, 4), **kw))


def lsm_base(**kw) -> MaskedAutoencoder:
    """Enc 12 x 768 (12), dec 8 x 512 (16); LSM: ~110M, 15.94 GFLOPs."""
    return MaskedAutoencoder(_size((12, 768, 12), (8, 512, 16), **kw))


def lsm_large(**kw) -> MaskedAutoencoder:
    """Enc 24 x 1024 (16), dec 8 x 512 (16); LSM: ~328M, 56.10 GFLOPs."""
    return MaskedAutoencoder(_size((24, 1024, 16), (8, 512, 16), **kw))


SIZES = {"tiny": lsm_tiny, "small": lsm_small, "base": lsm_base, "large": lsm_large}
#: LSM Table 8: (params, GFLOPs) on 300 x 26 with 10 x 5 patches.
TABLE8 = {"tiny": (2e6, 0.37), "small": (7e6, 1.28), "base": (110e6, 15.94), "large": (328e6, 56.10)}


def preset_config(preset: str, **kw) -> dict:
    """Input geometry for a data preset: n_channels, seq_len, patches, channel names, rate."""
    from edgefm.data.windows import get_preset
    p = get_preset(preset)
    base = {"n_channels": len(p.channels), "seq_len": p.window, "fs_hz": p.fs_hz,
            "channel_names": p.channel_names}
    if p.name == "lsm-minutely":
        base.update(patch_t=10, patch_c=5)
    else:  # raw presets: one channel per patch row (sensors are heterogeneous), 0.5 s patches
        base.update(patch_t=16 if p.window % 16 == 0 else p.window // 16 or 1, patch_c=1)
    base.update(kw)
    return base


def build_teacher(size: str = "tiny", preset: str | None = None, **kw) -> MaskedAutoencoder:
    """A teacher of a named size for a data preset (or for explicit geometry in ``kw``)."""
    if size not in SIZES:
        raise ConfigError(f"unknown teacher size {size!r}", field="size", hint=f"choose one of {', '.join(SIZES)}")
    geo = preset_config(preset, **kw) if preset else kw
    return SIZES[size](**geo)
