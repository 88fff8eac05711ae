"""The built-in offline dataset: surnames by language, built from Faker.

Provenance
----------
The names come from the per-locale surname lists that ship with the Faker
package (https://github.com/joke2k/faker, MIT licence), read at run time from
``faker.providers.person.<locale>.Provider``:

==========  ==============================================================
Label       Faker locale(s) and list(s)
==========  ==============================================================
Arabic      ar_AA last_names (Arabic script)
Chinese     zh_CN last_names (hanzi) + last_romanized_names
Czech       cs_CZ last_names
Dutch       nl_NL last_names
English     en_GB + en_US last_names
French      fr_FR last_names
German      de_DE last_names
Greek       el_GR last_names (Greek script)
Irish       ga_IE last_names (Irish-language forms, e.g. "O Briain")
Italian     it_IT last_names
Japanese    ja_JP last_romanized_names + last_kana_names (kana)
Korean      ko_KR last_names (hangul)
Polish      pl_PL unisex_last_names + male_last_names
Portuguese  pt_PT last_names
Russian     ru_RU last_names (Cyrillic)
Spanish     es_ES last_names
Vietnamese  vi_VN last_names
==========  ==============================================================

Every name is transliterated to Latin letters with anyascii (ISC licence).
For scripts without letter case the result is capitalised word by word
("OuYang" -> "Ouyang"). A few Arabic letters are mapped before anyascii so
that long vowels and alef are not lost ("الأزد" -> "Alazd", not "l'zd"), and a
word-initial ain is read as "a" ("عبد" -> "Abd"); waw and ya after a consonant
become "u" and "i" ("البيطار" -> "Albitar", "أبو" -> "Abu").
Kanji readings from anyascii are Chinese, so Japanese uses the romanised and
kana lists instead. Entries of more than two words (Arabic tribe names, Dutch
historical names) are skipped and counted as "skipped_multiword".

After the usual cleaning, a language with fewer than MIN_NAMES distinct names
is left out (with Faker 40: Korean has 44 and Vietnamese 10): the report
counts its names as "dropped_small_labels" (so that lines read, less the
duplicates and these, is what is kept) and the languages as
"labels_dropped"; the Dataset names them (dropped_labels). The result is
deterministic and built in memory; nothing is cached on disk.
"""
from __future__ import annotations

import importlib
import re
from functools import lru_cache

from anyascii import anyascii

MIN_NAMES = 50
MAX_WORDS = 2

# label -> [(locale, attributes)]; an empty attribute tuple means "the
# locale's own surname list" (see _surnames).
LOCALES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "Arabic": [("ar_AA", ())],
    "Chinese": [("zh_CN", ("last_names", "last_romanized_names"))],
    "Czech": [("cs_CZ", ())],
    "Dutch": [("nl_NL", ())],
    "English": [("en_GB", ()), ("en_US", ())],
    "French": [("fr_FR", ())],
    "German": [("de_DE", ())],
    "Greek": [("el_GR", ())],
    "Irish": [("ga_IE", ())],
    "Italian": [("it_IT", ())],
    "Japanese": [("ja_JP", ("last_romanized_names", "last_kana_names"))],
    "Korean": [("ko_KR", ())],
    "Polish": [("pl_PL", ())],
    "Portuguese": [("pt_PT", ())],
    "Russian": [("ru_RU", ())],
    "Spanish": [("es_ES", ())],
    "Vietnamese": [("vi_VN", ())],
}
FALLBACK_ATTRS = (
    "last_names_male", "last_names_female", "unisex_last_names",
    "male_last_names", "female_last_names",
)
ARABIC_PREMAP = str.maketrans({
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ٱ": "a", "ى": "a", "ة": "a",
    "ع": "'", "ء": "'",
})

WORD_INITIAL_AIN = re.compile(r"(^|\s)ع")
ARABIC_LONG_VOWEL = re.compile(r"(?<=[b-df-hj-np-tv-z])[wy](?![aeiou])", re.IGNORECASE)


def _provider(locale: str):
    return importlib.import_module(f"faker.providers.person.{locale}").Provider


def _surnames(provider, attrs: tuple[str, ...]) -> list[str]:
    """Surnames from the given attributes, or the locale's own list.

    Lists are tuples, lists or OrderedDicts of weights (the keys are the
    names). A list inherited from Faker's base provider (["Doe"]) is ignored.
    """
    base = _provider_base()
    if not attrs:
        own = getattr(provider, "last_names", None)
        attrs = ("last_names",) if own is not None and own is not base.last_names else FALLBACK_ATTRS
    names: list[str] = []
    for attr in attrs:
        value = getattr(provider, attr, None)
        if value is None or value is getattr(base, attr, None):
            continue
        names.extend(value.keys() if isinstance(value, dict) else value)
    return names


def _provider_base():
    return importlib.import_module("faker.providers.person").Provider


def transliterate(name: str) -> str:
    """Latin transliteration; caseless scripts get capitalised words."""
    arabic = any("\u0600" <= c <= "\u06ff" for c in name)
    name = WORD_INITIAL_AIN.sub(r"\1ا", name)  # "عبد" -> "Abd", not "'bd"
    latin = anyascii(name.translate(ARABIC_PREMAP))
    if arabic:  # waw / ya after a consonant are long vowels: "Albytar" -> "Albitar"
        latin = ARABIC_LONG_VOWEL.sub(lambda m: "u" if m.group() == "w" else "i", latin)
    caseless = not any(c.lower() != c.upper() for c in name)
    if caseless:
        latin = " ".join(word.capitalize() for word in latin.split())
    return latin


@lru_cache(maxsize=1)
def builtin_rows() -> tuple[tuple[tuple[str, str], ...], int]:
    """All (transliterated name, label) rows and the count of skipped entries."""
    rows: list[tuple[str, str]] = []
    skipped = 0
    for label, sources in LOCALES.items():
        for locale, attrs in sources:
            for raw in _surnames(_provider(locale), attrs):
                name = transliterate(raw)
                if len(name.split()) > MAX_WORDS:
                    skipped += 1
                    continue
                rows.append((name, label))
    return tuple(rows), skipped


def small_labels(pairs: list[tuple[str, str]]) -> dict[str, int]:
    """The labels with fewer than MIN_NAMES distinct names (pairs are distinct), with how many each has, by name."""
    counts: dict[str, int] = {}
    for _, label in pairs:
        counts[label] = counts.get(label, 0) + 1
    return {label: n for label, n in sorted(counts.items()) if n < MIN_NAMES}


def drop_small_labels(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """Keep labels with at least MIN_NAMES distinct names; count the dropped labels."""
    small = small_labels(pairs)
    return [p for p in pairs if p[1] not in small], len(small)
