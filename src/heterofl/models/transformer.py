"""The reference's WikiText2 model: a post-norm Transformer encoder trained as a *masked* LM (spec 2, 4).

Attention heads keep their count (8) at every rate; each head gets narrower, so extraction is
head-wise (``Heads`` in the layout) rather than a plain prefix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from heterofl.layout import FULL, LABELS, Heads, Layout, Width
from heterofl.models.layers import Scaler
from heterofl.rates import width

EMBED, HIDDEN, HEADS, LAYERS, BPTT, DROPOUT = 256, 512, 8, 4, 64, 0.2


class MultiHeadAttention(nn.Module):
    def __init__(self, embed: int, heads: int, rate: float) -> None:
        super().__init__()
        self.heads = heads
        self.linear_q, self.linear_k = nn.Linear(embed, embed), nn.Linear(embed, embed)
        self.linear_v, self.linear_o = nn.Linear(embed, embed), nn.Linear(embed, embed)
        self.scaler = Scaler(rate)
        self.temperature = math.sqrt(embed / heads)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split(self.scaler(self.linear_q(x)))
        k = self._split(self.scaler(self.linear_k(x)))
        v = self._split(self.scaler(self.linear_v(x)))
        attention = torch.softmax(q @ k.transpose(-2, -1) / self.temperature, dim=-1)
        out = (attention @ v).transpose(1, 2).flatten(2)
        return self.scaler(self.linear_o(out))


class EncoderLayer(nn.Module):
    def __init__(self, embed: int, hidden: int, heads: int, rate: float, dropout: float) -> None:
        super().__init__()
        self.mha = MultiHeadAttention(embed, heads, rate)
        self.norm1, self.norm2 = nn.LayerNorm(embed), nn.LayerNorm(embed)
        self.linear1, self.linear2 = nn.Linear(embed, hidden), nn.Linear(hidden, embed)
        self.scaler = Scaler(rate)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.linear1.weight, 0.0, 0.02)
        nn.init.normal_(self.linear2.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.mha(x)))
        ff = self.linear2(self.dropout(F.gelu(self.scaler(self.linear1(x)))))
        return self.norm2(x + self.dropout(self.scaler(ff)))


class Transformer(nn.Module):
    """Token ids (B, S) -> logits (B, S, num_tokens). Token id ``num_tokens`` is the [MASK] input."""

    def __init__(
        self,
        rate: float = 1.0,
        scaler_rate: float = 1.0,
        num_tokens: int = 33279,
        dropout: float = DROPOUT,
        bptt: int = BPTT,
    ) -> None:
        super().__init__()
        embed, hidden = width(EMBED, rate), width(HIDDEN, rate)
        self.widths = {"embed": embed, "hidden": hidden}
        self.num_tokens = num_tokens
        self.token_embedding = nn.Embedding(num_tokens + 1, embed)
        self.position_embedding = nn.Embedding(bptt, embed)
        self.embedding_norm = nn.LayerNorm(embed)
        self.scaler = Scaler(scaler_rate)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(embed, hidden, HEADS, scaler_rate, dropout) for _ in range(LAYERS))
        self.decoder1 = nn.Linear(embed, embed)
        self.decoder_norm = nn.LayerNorm(embed)
        self.decoder2 = nn.Linear(embed, num_tokens)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        self.layout = self._layout()

    def _layout(self) -> Layout:
        e, h, heads = Width("embed"), Width("hidden"), Heads("embed", HEADS)
        layout: Layout = {
            "token_embedding.weight": (LABELS, e),
            "position_embedding.weight": (FULL, e),
            "decoder1.weight": (e, e),
            "decoder1.bias": (e,),
            "decoder2.weight": (LABELS, e),
            "decoder2.bias": (LABELS,),
        }
        for norm in ("embedding_norm", "decoder_norm"):
            layout[f"{norm}.weight"] = layout[f"{norm}.bias"] = (e,)
        for i in range(len(self.layers)):
            p = f"layers.{i}"
            for name in ("q", "k", "v"):
                layout[f"{p}.mha.linear_{name}.weight"] = (heads, e)
                layout[f"{p}.mha.linear_{name}.bias"] = (heads,)
            layout[f"{p}.mha.linear_o.weight"] = (e, heads)
            layout[f"{p}.mha.linear_o.bias"] = (e,)
            layout[f"{p}.linear1.weight"] = (h, e)
            layout[f"{p}.linear1.bias"] = (h,)
            layout[f"{p}.linear2.weight"] = (e, h)
            layout[f"{p}.linear2.bias"] = (e,)
            for norm in ("norm1", "norm2"):
                layout[f"{p}.{norm}.weight"] = layout[f"{p}.{norm}.bias"] = (e,)
        return layout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[-1], device=tokens.device)
        x = self.scaler(self.token_embedding(tokens)) + self.scaler(self.position_embedding(positions))
        x = self.dropout(self.embedding_norm(x))
        for layer in self.layers:
            x = layer(x)
        return self.decoder2(self.decoder_norm(F.gelu(self.scaler(self.decoder1(x)))))
