"""Canary exposure (Carlini et al. 2019, "The Secret Sharer").

A canary is a prefix the attacker knows and a secret s drawn from a randomness space R (its format,
:mod:`riskaudit.inputs.canary_format`). With the model's log-likelihood ℓ(r) = log P(r | prefix) of every
candidate r ∈ R,

    rank(s) = 1 + |{r ∈ R, r ≠ s : ℓ(r) > ℓ(s)}|   (ties count one half)
    exposure(s) = log2 |R| − log2 rank(s)            ∈ [0, log2 |R|]

A never-seen secret ranks uniformly at random (exposure ≈ log2 e ≈ 1.44 bits on average); a memorized one
ranks first (exposure = log2 |R|). Three quantities, each under its own name:

* ``exposure_exact`` — when |R| ≤ ``exact_max_space``: every other member of R is scored and the rank is
  counted (the formula above, no estimate).
* ``exposure_skewnorm`` — otherwise, the estimate of Carlini et al. (2019, §4.3): fit a skew-normal
  (scipy.stats.skewnorm, maximum likelihood) to the ℓ of C candidates sampled uniformly from R, and take
  rank ≈ 1 + (|R| − 1) · P(ℓ(r) > ℓ(s)) from its tail. Beyond the sampled candidates this is an
  extrapolation: the records keep C (``n_candidates``) and the direct evidence next to it.
* ``exposure_empirical`` — that direct evidence: log2((C + 1)/(c + 1)) with c of the C candidates at or
  above the canary; it cannot exceed the bound log2(C + 1) (``exposure_bound``), whatever |R| is.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Literal

import numpy as np
import numpy.typing as npt

from riskaudit.inputs.canary_format import SecretFormat

ExposureMethod = Literal["exact", "skewnorm"]
LOG2_E = 1.0 / math.log(2.0)  # mean exposure of a secret the model has never seen (uniform rank)


def _rng_for(canary_id: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{canary_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def candidate_secrets(
    canary_id: str, secret: str, fmt: SecretFormat, n_candidates: int, exact_max_space: int, seed: int
) -> tuple[list[str], ExposureMethod]:
    """The candidates the canary is ranked among.

    ``exact``: every member of R but the canary's own (|R| − 1 strings; another spelling of the same string,
    possible with ``{choice:…}``, is kept and ties). ``skewnorm``: ``n_candidates`` seeded uniform draws from
    R other than the secret itself.
    """
    if fmt.size <= exact_max_space:
        out = fmt.enumerate(exact_max_space)
        out.remove(secret)
        return out, "exact"
    rng = _rng_for(canary_id, seed)
    out = []
    for _ in range(50 * n_candidates):
        r = fmt.sample(rng)
        if r != secret:
            out.append(r)
            if len(out) == n_candidates:
                break
    return out, "skewnorm"


def exposure_exact(canary_ll: float, candidate_lls: npt.ArrayLike, space_size: int) -> float:
    """log2 |R| − log2 rank, rank = 1 + #{ℓ(r) > ℓ(s)} + ½ #{ℓ(r) = ℓ(s)} over the other candidates."""
    c = np.asarray(candidate_lls, dtype=np.float64)
    rank = 1.0 + float(np.sum(c > canary_ll)) + 0.5 * float(np.sum(c == canary_ll))
    return float(np.clip(math.log2(space_size) - math.log2(rank), 0.0, math.log2(space_size)))


def exposure_skewnorm(canary_ll: float, candidate_lls: npt.ArrayLike, space_size: int) -> float:
    """Skew-normal tail estimate (Carlini et al. 2019): rank ≈ 1 + (|R| − 1)·P(ℓ(r) > ℓ(s)), the tail of a
    skew-normal fitted to the candidates' ℓ by maximum likelihood."""
    c = np.asarray(candidate_lls, dtype=np.float64)
    if c.size < 3:
        raise ValueError("need at least 3 candidates to fit a skew-normal")
    top = math.log2(space_size)
    sd = float(c.std(ddof=1))
    if not sd > 0.0:
        return top if canary_ll > float(c[0]) else 0.0
    from scipy.stats import skew, skewnorm  # imported here: a scan served from the store never needs scipy

    # standardize for a well-conditioned fit; start from the moment estimate of the shape
    z = (c - c.mean()) / sd
    g = float(np.clip(skew(z), -0.99, 0.99))
    t = abs(g) ** (2.0 / 3.0)
    delta = min(math.sqrt(math.pi / 2.0 * t / (t + ((4.0 - math.pi) / 2.0) ** (2.0 / 3.0))), 0.99)
    a0 = math.copysign(delta / math.sqrt(1.0 - delta * delta), g)
    with np.errstate(all="ignore"):
        a, loc, scale = skewnorm.fit(z, a0)
        log_tail = float(skewnorm.logsf((canary_ll - c.mean()) / sd, a, loc, scale))
    if not math.isfinite(log_tail):
        log_tail = -math.inf
    log_rank = float(np.logaddexp(0.0, math.log(space_size - 1) + log_tail))  # natural log of the rank
    return float(np.clip(top - log_rank / math.log(2.0), 0.0, top))


def exposure_empirical(canary_ll: float, candidate_lls: npt.ArrayLike) -> float:
    """log2((C + 1)/(c + 1)), c = candidates with ℓ ≥ ℓ(s): the sample's direct evidence (≤ log2(C + 1))."""
    c = np.asarray(candidate_lls, dtype=np.float64)
    above = float(np.sum(c >= canary_ll))
    return math.log2((c.size + 1.0) / (above + 1.0))


def exposure_bound(n_candidates: int) -> float:
    """log2(C + 1): the most exposure C sampled candidates can show without extrapolating."""
    return math.log2(n_candidates + 1.0)
