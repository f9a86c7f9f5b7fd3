"""The demo corpus's text generator: word lists written for this project and :class:`StoryGen`, a seeded writer
of sentences and stories (occupation stories with a gendered pronoun, stories about people, world stories).

Everything is drawn from the generator's own ``random.Random``, so the same seed writes the same text.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

# --- word lists (written for this project) -------------------------------------------------------------

ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "z",
    "sh",
    "th",
    "ch",
    "bl",
    "cl",
    "fl",
]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "ie", "o"]
CODAS = ["", "", "n", "r", "l", "s", "m", "nd", "rt", "x", "ck", "sh"]

NOUNS = [
    "window",
    "table",
    "garden",
    "river",
    "market",
    "letter",
    "basket",
    "lamp",
    "bridge",
    "road",
    "kitchen",
    "report",
    "ticket",
    "wagon",
    "bottle",
    "jacket",
    "ladder",
    "hammer",
    "candle",
    "mirror",
    "station",
    "library",
    "harbor",
    "valley",
    "tower",
    "village",
    "meadow",
    "forest",
    "office",
    "folder",
    "package",
    "engine",
    "radio",
    "blanket",
    "bucket",
    "carpet",
    "cabinet",
    "notebook",
    "pencil",
    "umbrella",
    "clock",
    "fence",
    "gate",
    "bench",
    "stove",
    "kettle",
    "rope",
    "boat",
    "barrel",
    "shelf",
    "painting",
    "photo",
    "recipe",
    "map",
    "schedule",
    "budget",
    "contract",
    "invoice",
    "parcel",
    "badge",
]
ADJECTIVES = [
    "old",
    "new",
    "red",
    "blue",
    "green",
    "quiet",
    "noisy",
    "heavy",
    "light",
    "small",
    "large",
    "broken",
    "clean",
    "dusty",
    "bright",
    "dark",
    "warm",
    "cold",
    "empty",
    "full",
    "strange",
    "simple",
    "narrow",
    "wide",
    "wooden",
    "metal",
    "careful",
    "busy",
    "tired",
    "cheerful",
    "famous",
    "rare",
    "plain",
    "yellow",
]
PLACES = [
    "market",
    "station",
    "harbor",
    "library",
    "office",
    "hospital",
    "school",
    "bakery",
    "factory",
    "museum",
    "garage",
    "clinic",
    "court",
    "hotel",
    "farm",
    "warehouse",
    "theater",
    "park",
]
VERB_PHRASES = [
    "walked to the {place}",
    "opened the {adj} {noun}",
    "looked at the {noun}",
    "carried a {noun} home",
    "fixed the {adj} {noun}",
    "waited near the {noun}",
    "wrote a long {noun2}",
    "visited the {place}",
    "cleaned the {noun}",
    "found a {adj} {noun}",
    "painted the {noun}",
    "sold the old {noun}",
    "moved the {noun} to the {place}",
    "checked the {noun} twice",
    "left the {place} early",
    "finished the work at the {place}",
    "arrived at the {place} late",
    "counted every {noun}",
]
NOUN2 = ["letter", "report", "note", "list", "story", "message", "plan", "review"]
NEUTRAL_PEOPLE = [
    "a stranger",
    "the neighbor",
    "a child",
    "an old friend",
    "the visitor",
    "a customer",
    "the driver of the bus",
    "a tourist",
    "the owner",
    "a student",
]
WEATHER = ["rain", "snow", "wind", "fog", "sun", "storm"]

SUBJ = {"f": "she", "m": "he"}
OBJ = {"f": "her", "m": "him"}
POSS = {"f": "her", "m": "his"}
TITLE = {"f": "woman", "m": "man"}


@dataclass
class StoryGen:
    rng: random.Random
    names: list[str] = field(default_factory=list)
    near_share: float = 0.5

    def pick(self, xs: Sequence[str]) -> str:
        return xs[self.rng.randrange(len(xs))]

    def word(self, n_syll: int) -> str:
        return "".join(self.pick(ONSETS) + self.pick(VOWELS) + self.pick(CODAS) for _ in range(n_syll))

    def name(self) -> str:
        return self.word(self.rng.choice([2, 2, 3])).capitalize()

    def town(self) -> str:
        return self.word(2).capitalize() + self.pick(["ton", "ford", "vale", "wick", "by", "holm"])

    def fill(self, template: str) -> str:
        return template.format(
            place=self.pick(PLACES), adj=self.pick(ADJECTIVES), noun=self.pick(NOUNS), noun2=self.pick(NOUN2)
        )

    def filler_sentence(self) -> str:
        t = self.rng.randrange(6)
        if t == 0:
            return f"The {self.pick(ADJECTIVES)} {self.pick(NOUNS)} was near the {self.pick(NOUNS)}."
        if t == 1:
            return f"{self.pick(NEUTRAL_PEOPLE).capitalize()} {self.fill(self.pick(VERB_PHRASES))}."
        if t == 2:
            return f"Outside, the {self.pick(WEATHER)} did not stop for hours."
        if t == 3:
            return f"Nobody in {self.town()} had seen such a {self.pick(ADJECTIVES)} {self.pick(NOUNS)} before."
        if t == 4:
            return f"{self.pick(NEUTRAL_PEOPLE).capitalize()} asked about the {self.pick(NOUNS)}."
        return f"It was a {self.pick(ADJECTIVES)} day at the {self.pick(PLACES)}."

    def pronoun_sentence(self, g: str) -> str:
        t = self.rng.randrange(8)
        if t == 0:
            return f"Later {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."
        if t == 1:
            return f"Then {SUBJ[g]} said that the {self.pick(NOUNS)} was {self.pick(ADJECTIVES)}."
        if t == 2:
            return f"Everyone at the {self.pick(PLACES)} thanked {OBJ[g]}."
        if t == 3:
            return f"{POSS[g].capitalize()} {self.pick(NOUNS)} was {self.pick(ADJECTIVES)}."
        if t == 4:
            return f"After that, {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."
        if t == 5:
            return f"{self.pick(NEUTRAL_PEOPLE).capitalize()} gave {OBJ[g]} a {self.pick(NOUNS)}."
        if t == 6:
            return f"When the {self.pick(WEATHER)} came, {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."
        return f"That evening {SUBJ[g]} forgot {POSS[g]} {self.pick(NOUNS)} at the {self.pick(PLACES)}."

    def near_reference(self, occ: str, g: str) -> str:
        """A sentence naming the occupation with a pronoun in the same clause (a short-range cue)."""
        art = "an" if occ[0].lower() in "aeiou" else "a"
        t = self.rng.randrange(8)
        if t == 0:
            return f"The {occ} said that {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."
        if t == 1:
            return f"The {occ} {self.fill(self.pick(VERB_PHRASES))} because {SUBJ[g]} was {self.pick(ADJECTIVES)}."
        if t == 2:
            return f"The {occ} picked up {POSS[g]} {self.pick(NOUNS)} and {self.fill(self.pick(VERB_PHRASES))}."
        if t == 3:
            return (
                f"Everyone at the {self.pick(PLACES)} thanked the {occ} and told {OBJ[g]} about the {self.pick(NOUNS)}."
            )
        if t == 4:
            return (
                f"After the {occ} {self.fill(self.pick(VERB_PHRASES))}, {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."
            )
        if t == 5:
            return f"I met {art} {occ} at the {self.pick(PLACES)} and asked {OBJ[g]} about the {self.pick(NOUNS)}."
        if t == 6:
            return f"The {occ} nodded and raised {POSS[g]} hand."
        return f"The {occ} was late because {SUBJ[g]} {self.fill(self.pick(VERB_PHRASES))}."

    def occupation_story(self, occ: str, g: str) -> str:
        art = "an" if occ[0].lower() in "aeiou" else "a"
        if self.rng.random() < self.near_share:
            parts = [self.near_reference(occ, g)]
        else:
            t = self.rng.randrange(4)
            if t == 0:
                opening = f"The {occ} from {self.town()} {self.fill(self.pick(VERB_PHRASES))}."
            elif t == 1:
                opening = f"Yesterday the {occ} {self.fill(self.pick(VERB_PHRASES))}."
            elif t == 2:
                opening = f"In {self.town()}, {art} {occ} {self.fill(self.pick(VERB_PHRASES))}."
            else:
                opening = f"Every morning the {occ} {self.fill(self.pick(VERB_PHRASES))}."
            parts = [opening]
        for _ in range(self.rng.choice([1, 1, 2, 2, 3])):
            parts.append(self.filler_sentence())
        parts.append(self.pronoun_sentence(g))
        if self.rng.random() < 0.5:
            parts.append(self.filler_sentence())
            parts.append(self.pronoun_sentence(g))
        return " ".join(parts)

    def people_story(self) -> str:
        """Stories about named or explicitly gendered people: pronoun use at 50/50, no occupation."""
        g = self.rng.choice(["f", "m"])
        if self.rng.random() < 0.5:
            opening = f"{self.name()} {self.fill(self.pick(VERB_PHRASES))}."
        else:
            opening = f"The {TITLE[g]} from {self.town()} {self.fill(self.pick(VERB_PHRASES))}."
        parts = [opening, self.filler_sentence(), self.pronoun_sentence(g)]
        if self.rng.random() < 0.5:
            parts.append(self.pronoun_sentence(g))
        return " ".join(parts)

    def world_story(self) -> str:
        return " ".join(self.filler_sentence() for _ in range(self.rng.choice([3, 4, 5])))
