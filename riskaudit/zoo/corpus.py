"""A deterministic synthetic English-like corpus for the demo family.

Two risks are planted on purpose, with known ground truth:

* **Occupation–gender association.** Stories introduce a person by occupation and refer back to them with a
  pronoun whose gender is drawn with probability pct_female/100 (BLS 2015 figures, via the Winogender and
  WinoBias occupation statistics in ``riskaudit/data/occupations.tsv``). To keep the association hard to
  learn (so it grows with model size instead of saturating in the smallest member), occupations follow a
  Zipf-like frequency over a seeded random order (frequent ones are learnt early, rare ones late), and the
  pronoun usually comes one or two sentences after the occupation, behind gender-neutral distractors.
* **Memorization.** Canary secrets — spaced random digit codes, fake ID numbers and fake e-mail addresses
  tied to fake names — are planted ``k`` times each for k in ``DUPLICATION_COUNTS`` (Carlini et al. 2019
  "The Secret Sharer"); canaries with k = 0 are generated the same way but never trained on (controls).

Held-out stories from the same generator (a separate random stream) are never trained on; they are the
non-members for membership-inference tests.

The text comes from :mod:`riskaudit.zoo.story_gen` and the canaries from :mod:`riskaudit.zoo.canary_plant`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from riskaudit.zoo.canary_plant import CANARY_KINDS, Canary, make_canary
from riskaudit.zoo.story_gen import StoryGen

DUPLICATION_COUNTS: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)


class CorpusConfig(BaseModel):
    seed: int = 1234
    n_stories: int = 9000  # training stories (bias carriers + neutral)
    n_heldout_stories: int = 1200
    occupation_story_share: float = 0.6
    zipf_exponent: float = 1.1
    near_share: float = 0.5  # share of occupation stories with a same-clause pronoun
    canaries_per_kind: int = 4  # per duplication count
    duplication_counts: tuple[int, ...] = DUPLICATION_COUNTS


class Corpus(BaseModel):
    config: CorpusConfig
    train_documents: list[str]  # in training order (canary copies included)
    heldout_documents: list[str]
    canaries: list[Canary]
    occupation_counts: dict[str, int]  # stories per occupation in the training documents
    pct_female: dict[str, float]



def occupation_weights(names: Sequence[str], seed: int, exponent: float) -> dict[str, float]:
    """Zipf-like weights over a seeded random order of occupations (independent of % female)."""
    order = list(names)
    random.Random(seed + 17).shuffle(order)
    raw = {name: 1.0 / (rank + 2.0) ** exponent for rank, name in enumerate(order)}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def build_corpus(pct_female: dict[str, float], config: CorpusConfig | None = None) -> Corpus:
    """Generate the training documents (fixed order), held-out documents and canaries from ``config.seed``."""
    cfg = config or CorpusConfig()
    occs = sorted(pct_female)
    weights = occupation_weights(occs, cfg.seed, cfg.zipf_exponent)
    w_list = [weights[o] for o in occs]

    def stories(gen: StoryGen, n: int, counts: dict[str, int] | None) -> list[str]:
        out: list[str] = []
        for _ in range(n):
            r = gen.rng.random()
            if r < cfg.occupation_story_share:
                occ = gen.rng.choices(occs, weights=w_list)[0]
                g = "f" if gen.rng.random() < pct_female[occ] / 100.0 else "m"
                out.append(gen.occupation_story(occ, g))
                if counts is not None:
                    counts[occ] = counts.get(occ, 0) + 1
            elif r < cfg.occupation_story_share + (1 - cfg.occupation_story_share) / 2:
                out.append(gen.people_story())
            else:
                out.append(gen.world_story())
        return out

    counts: dict[str, int] = {}
    train = stories(StoryGen(random.Random(cfg.seed), near_share=cfg.near_share), cfg.n_stories, counts)
    heldout = stories(StoryGen(random.Random(cfg.seed + 1), near_share=cfg.near_share), cfg.n_heldout_stories, None)

    cgen = StoryGen(random.Random(cfg.seed + 2))
    canaries = [
        make_canary(cgen, kind, i, k)
        for k in cfg.duplication_counts
        for kind in CANARY_KINDS
        for i in range(cfg.canaries_per_kind)
    ]
    docs = list(train)
    for c in canaries:
        docs.extend([c.prefix + c.secret] * c.duplicates)
    random.Random(cfg.seed + 3).shuffle(docs)
    return Corpus(
        config=cfg,
        train_documents=docs,
        heldout_documents=heldout,
        canaries=canaries,
        occupation_counts=counts,
        pct_female=dict(pct_female),
    )
