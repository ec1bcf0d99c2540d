"""PatchNCE (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", 2020).

A patch of the output should resemble the input patch at the same position more than any other input
patch. For one sampled position, q (output features, the query), k+ (input features there, the positive)
and k- (input features at the other sampled positions of the same image, the negatives), all L2-normalised:

    loss = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_k- exp(q.k- / tau)) )

computed as a cross-entropy whose class 0 is the positive. The keys are detached (no gradient through the
input's side), and the query's similarity with its own key also appears in the negatives' matrix, on the
diagonal; it is masked with -10 (before the division by tau) so it does not count as a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PatchNCELoss(nn.Module):
    """`PatchNCELoss(tau)(q, k, batch_size) -> per-patch loss [B * P]`, for q, k of shape [B * P, C]."""

    diagonal_fill = -10.0

    def __init__(self, nce_T: float = 0.07, all_negatives_from_minibatch: bool = False) -> None:
        super().__init__()
        self.nce_T = nce_T
        self.all_negatives_from_minibatch = all_negatives_from_minibatch

    def forward(self, feat_q: Tensor, feat_k: Tensor, batch_size: int) -> Tensor:
        if feat_q.shape != feat_k.shape or feat_q.dim() != 2:
            raise ValueError(f"PatchNCE needs queries and keys of one shape [B*P, C], got {tuple(feat_q.shape)} "
                             f"and {tuple(feat_k.shape)}")
        n, channels = feat_q.shape
        feat_k = feat_k.detach()
        l_pos = (feat_q * feat_k).sum(dim=1, keepdim=True)  # N x 1
        groups = 1 if self.all_negatives_from_minibatch else batch_size
        q = feat_q.view(groups, -1, channels)
        k = feat_k.view(groups, -1, channels)
        patches = q.shape[1]
        l_neg = torch.bmm(q, k.transpose(1, 2))  # groups x P x P: every query against every key of its group
        diagonal = torch.eye(patches, device=q.device, dtype=torch.bool)[None]
        l_neg = l_neg.masked_fill(diagonal, self.diagonal_fill).view(-1, patches)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.nce_T
        target = torch.zeros(n, dtype=torch.long, device=feat_q.device)
        return F.cross_entropy(logits, target, reduction="none")
