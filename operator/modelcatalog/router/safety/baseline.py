"""The built-in filter: a curated list of words and phrases per category and severity, matched offline.

Text is normalised before matching, and the list is normalised the same way: Unicode compatibility
forms and accents folded, lower case, common digit and symbol swaps (`k1ll`, `$uicide`, `@`), letters
spelt out with separators (`k.i.l.l`, `k i l l`), and repeated letters (`kiiill`). A phrase matches on
word boundaries; a trailing `*` matches any ending (`shoot*`: shoots, shooting).

It catches the explicit: threats, calls to violence, self-harm intent and methods, sexual content
involving minors, explicit sexual requests, dehumanising language about groups. It cannot see context
(quotes, fiction, news, negation: "I would never kill you" matches "kill you"), other languages,
paraphrase, misspellings beyond the swaps above, or meaning spread over sentences; it holds no list of
slurs. docs/content-safety.md says so; use the moderation or guard adapter where that matters.
"""

from __future__ import annotations

import re
import unicodedata

from modelcatalog.router.safety.filters import Category, Role, Scores, Severity

LOW, MEDIUM, HIGH = Severity.LOW, Severity.MEDIUM, Severity.HIGH

TERMS: dict[Category, dict[Severity, tuple[str, ...]]] = {
    Category.VIOLENCE: {
        LOW: ("kill*", "shoot*", "stab*", "punch*", "beat up", "fight to the death", "bloodbath", "massacre*"),
        MEDIUM: (
            "murder*", "torture*", "behead*", "dismember*", "slit your throat", "break your legs", "gun them down",
            "kill him", "kill her", "kill them", "shoot him", "shoot her", "shoot them", "stab him", "stab her",
        ),
        HIGH: (
            "kill you", "i will kill", "i am going to kill", "im going to kill", "going to shoot up",
            "mass shooting", "shoot up the school", "make a bomb", "build a bomb", "pipe bomb*", "make a pipe bomb",
            "nerve agent", "how to poison someone", "plant a bomb", "murder you", "hunt you down and",
        ),
    },
    Category.SELF_HARM: {
        LOW: ("self harm", "self-harm", "hurt myself", "suicidal", "suicide*"),
        MEDIUM: ("kill myself", "end my life", "want to die", "cut myself", "cutting myself", "take my own life"),
        HIGH: (
            "how to kill myself", "best way to kill myself", "best way to commit suicide", "painless way to die",
            "how many pills to overdose", "how to overdose", "lethal dose to kill myself", "how to hang myself",
        ),
    },
    Category.SEXUAL: {
        LOW: ("sexy", "nude*", "naked", "erotic*", "lingerie"),
        MEDIUM: ("porn*", "explicit sex", "sex scene", "have sex with", "blowjob*", "nsfw", "orgasm*", "masturbat*"),
        HIGH: (
            "child porn*", "sex with a child", "sex with a minor", "sex with children", "underage sex",
            "sexual content involving minors", "naked children", "rape her", "rape him", "rape you",
        ),
    },
    Category.HATE: {
        LOW: ("bigot*", "racist*", "xenophob*", "hate them"),
        MEDIUM: ("subhuman*", "inferior race", "go back to your country", "are vermin", "are animals and"),
        HIGH: (
            "ethnic cleansing", "exterminate them all", "white power", "heil hitler", "racial holy war",
            "should all be killed", "should be exterminated", "deserve to be exterminated",
        ),
    },
}  # fmt: skip

COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")  # accents
SWAPS = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# A swap only inside a word or at its start ("k1ll", "$uicide"); "1 000", "3." and "now!" keep their meaning.
SWAPPED = re.compile(r"(?<=[a-z])[013457@$!]+(?=[a-z])|(?<![a-z0-9])[013457@$]+(?=[a-z])")
NOT_LETTERS = re.compile(r"[^a-z*]+")
SPELT_OUT = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")  # "k i l l": three or more single letters
REPEATS = re.compile(r"([a-z])\1+")


def normalise(text: str) -> str:
    """Lower-case letters separated by single spaces, with the obfuscations above undone."""
    folded = text if text.isascii() else COMBINING.sub("", unicodedata.normalize("NFKD", text))
    folded = folded.lower()
    folded = SWAPPED.sub(lambda m: m.group().translate(SWAPS), folded)
    spaced = NOT_LETTERS.sub(" ", folded).strip()
    spaced = SPELT_OUT.sub(lambda m: m.group().replace(" ", ""), spaced)
    return REPEATS.sub(r"\1", spaced)


def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = []
    for term in terms:
        stem = normalise(term.rstrip("*"))
        alternatives.append(re.escape(stem) + (r"[a-z]*" if term.endswith("*") else ""))
    return re.compile(r"(?<![a-z])(?:" + "|".join(alternatives) + r")(?![a-z])")


PATTERNS = {
    category: sorted(((severity, _pattern(terms)) for severity, terms in levels.items()), reverse=True)
    for category, levels in TERMS.items()
}


class Baseline:
    """The offline filter: the highest severity whose list matches, per category."""

    name = "baseline"

    def scores(self, text: str) -> Scores:
        normal = normalise(text)
        found: Scores = {}
        for category, levels in PATTERNS.items():
            severity = next((s for s, pattern in levels if pattern.search(normal)), None)
            if severity is not None:
                found[category] = severity
        return found

    async def screen(self, text: str, role: Role) -> Scores:
        return self.scores(text)
