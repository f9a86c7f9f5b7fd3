"""Membership-inference signals and their evaluation (was this text in the training data?).

Per document, from the teacher-forced log-probabilities ``lp_t`` of its tokens (higher score = "member"):

* **loss** L = −mean_t lp_t (Yeom et al. 2018; the baseline attack of Carlini et al. 2021); score −L.
* **zlib ratio** L / zlib(x), zlib(x) = bytes of the zlib-compressed UTF-8 text (Carlini et al. 2021;
  the form of Shi et al.'s 2023 reference code); score −ratio.
* **Min-K% Prob** = mean of the k% lowest lp_t, over max(1, ⌊k·n⌋) tokens (Shi et al. 2023); score as is.
* **reference ratio** L_target / L_reference with the family's smallest member as the reference model
  (Carlini et al. 2021, "Small"; calibration as in Carlini et al. 2022); score −ratio. Computed at the
  family level from the per-item losses (:meth:`MemorizationProbe.finalize_family`).

Evaluation of members vs held-out non-members (Carlini et al. 2022, "Membership inference attacks from
first principles"): ROC-AUC (scikit-learn ``roc_auc_score``) and the TPR at a low FPR (1%): the largest TPR
on scikit-learn's ROC curve whose FPR ≤ the target. Bootstrap replicates resample members and non-members
separately (stratified) and are computed exactly, vectorised over resamples.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

# signal -> (record value key, sign: score = sign · value, so that a higher score means "member")
SIGNALS: dict[str, tuple[str, float]] = {
    "loss": ("loss", -1.0),
    "zlib": ("zlib_ratio", -1.0),
    "min_k": ("min_k_prob", 1.0),
    "ref_ratio": ("ref_ratio", -1.0),
}
PER_MODEL_SIGNALS: tuple[str, ...] = ("loss", "zlib", "min_k")  # ref_ratio needs the reference member


def loss(logprobs: npt.ArrayLike) -> float:
    """Mean negative log-likelihood per token (nats)."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("no tokens")
    return float(-lp.mean())


def zlib_entropy(text: str) -> int:
    """Length in bytes of the zlib-compressed UTF-8 text (default level)."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_ratio(logprobs: npt.ArrayLike, text: str) -> float:
    """loss / zlib_entropy(text)."""
    return loss(logprobs) / zlib_entropy(text)


def min_k_prob(logprobs: npt.ArrayLike, k_percent: float) -> float:
    """Mean of the ⌊k·n⌋ (at least one) lowest token log-probabilities (Shi et al. 2023)."""
    lp = np.sort(np.asarray(logprobs, dtype=np.float64))
    if lp.size == 0:
        raise ValueError("no tokens")
    if not 0.0 < k_percent <= 100.0:
        raise ValueError(f"k must be in (0, 100], got {k_percent}")
    n = max(1, math.floor(lp.size * k_percent / 100.0 + 1e-9))
    return float(lp[:n].mean())


def roc_auc(member_scores: npt.ArrayLike, nonmember_scores: npt.ArrayLike) -> float | None:
    """ROC-AUC of scores (higher = member); None without both classes."""
    pos, neg = np.asarray(member_scores, np.float64), np.asarray(nonmember_scores, np.float64)
    if pos.size == 0 or neg.size == 0:
        return None
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    from sklearn.metrics import roc_auc_score  # imported here: a scan served from the store never needs it

    return float(roc_auc_score(y, np.r_[pos, neg]))


def tpr_at_fpr(member_scores: npt.ArrayLike, nonmember_scores: npt.ArrayLike, fpr: float) -> float | None:
    """Largest TPR on the ROC curve with FPR ≤ ``fpr``; None without both classes."""
    pos, neg = np.asarray(member_scores, np.float64), np.asarray(nonmember_scores, np.float64)
    if pos.size == 0 or neg.size == 0:
        return None
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    from sklearn.metrics import roc_curve

    f, t, _ = roc_curve(y, np.r_[pos, neg], drop_intermediate=False)
    return float(t[f <= fpr + 1e-12].max())


def _weights(idx: IndexArray, n: int) -> FloatArray:
    """(B, n) multiplicity of each item in each resample."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def bootstrap_auc(pos: FloatArray, neg: FloatArray, idx_pos: IndexArray, idx_neg: IndexArray) -> FloatArray:
    """AUC of each resample (rows of ``idx_pos`` / ``idx_neg``): Mann–Whitney U / (n_pos·n_neg), ties ½."""
    wp, wn = _weights(idx_pos, pos.size), _weights(idx_neg, neg.size)
    gt = (pos[:, None] > neg[None, :]).astype(np.float64) + 0.5 * (pos[:, None] == neg[None, :])
    u = np.einsum("bi,ij,bj->b", wp, gt, wn, optimize=True)
    return np.asarray(u / (idx_pos.shape[1] * idx_neg.shape[1]), dtype=np.float64)


def bootstrap_tpr_at_fpr(
    pos: FloatArray, neg: FloatArray, idx_pos: IndexArray, idx_neg: IndexArray, fpr: float
) -> FloatArray:
    """TPR at FPR ≤ ``fpr`` of each resample: the share of members scoring above the (f+1)-th highest
    non-member, f = ⌊fpr · n_neg⌋ (equal to :func:`tpr_at_fpr` on every resample)."""
    n_neg = idx_neg.shape[1]
    f = math.floor(fpr * n_neg + 1e-9)
    if f >= n_neg:
        return np.ones(idx_pos.shape[0])
    order = np.argsort(-neg, kind="stable")
    wn = _weights(idx_neg, neg.size)[:, order]
    k = np.argmax(np.cumsum(wn, axis=1) >= f + 1, axis=1)
    thr = neg[order][k]  # (B,) the (f+1)-th highest resampled non-member score
    pos_sorted = np.sort(pos)
    wp = _weights(idx_pos, pos.size)[:, np.argsort(pos, kind="stable")]
    below = np.searchsorted(pos_sorted, thr, side="right")  # members at or below the threshold
    cum = np.concatenate([np.zeros((wp.shape[0], 1)), np.cumsum(wp, axis=1)], axis=1)
    n_at_or_below = np.take_along_axis(cum, below[:, None], axis=1)[:, 0]
    return np.asarray((idx_pos.shape[1] - n_at_or_below) / idx_pos.shape[1], dtype=np.float64)


def member_scores(values: npt.ArrayLike, signal: str) -> FloatArray:
    """Oriented scores (higher = member) of a signal's raw values."""
    return SIGNALS[signal][1] * np.asarray(values, dtype=np.float64)
