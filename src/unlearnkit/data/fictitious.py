"""Embedded fictitious-facts benchmark: a deterministic generator in the TOFU layout.

Each *subject* is an invented person with invented facts (birthplace, birth year, profession,
parents, a book title, an award, a genre, a mentor, a spouse, a home town). A subject has
``facts_per_subject`` question–answer records; every record carries the fields of the public
TOFU data set:

- ``question`` / ``answer``: one phrasing of the fact;
- ``paraphrased_question`` / ``paraphrased_answer``: a *different* template of the same fact;
- ``perturbed_answer``: the paraphrased-answer template filled with wrong values of the same
  type (another invented town, another year, another profession …), so a truth ratio measures
  knowledge of the fact, not of the wording.

Splits are by subject: ``forget01 ⊂ forget05 ⊂ forget10`` are the last 1/5/10 % of the trained
subjects, ``retainXX`` their complements, and ``holdoutXX`` subjects of the same distribution
that are never trained on. ``real_authors`` and ``world_facts`` are small sets of real-world
facts with wrong options that the *base* model learns in its own training stage.

The result is written in TOFU's on-disk format (one JSON object per line, ``<split>.json``),
so the same loader serves the embedded set and a local copy of ``locuslab/TOFU``.

Longer than 400 lines: about 200 of them are the generator's data — name syllables, professions, genres, title
words, the fact templates (:data:`FACT_TYPES`), the real-author and world-fact tables — which define the benchmark
and are read with the code that fills them in.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unlearnkit import __version__
from unlearnkit.config import FactsConfig
from unlearnkit.io import (
    atomic_dir,
    atomic_write_bytes,
    bytes_sha256,
    content_hash,
    discard,
    file_sha256,
    home,
    lock_path,
    locked,
    read_json_or_none,
)

FORGET_PCTS = {"01": 1, "05": 5, "10": 10}

# ---------------------------------------------------------------------------------------------
# Invented words

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "gr", "kr", "tr", "th", "sh", "st", "h", "j", "w"]
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ia", "ei"]
_CODAS = ["", "", "", "", "n", "r", "l", "s", "th", "m"]
_TOWN_SUFFIX = ["port", "holm", "ford", "vale", "mere", "bury", "ton", "stad", "grad", "wick",
                "haven", "moor", "field", "dale", "crest"]

PROFESSIONS = [
    "cartographer", "glassblower", "botanist", "lighthouse keeper", "violin maker",
    "archivist", "clockmaker", "beekeeper", "shipwright", "astronomer", "stonemason",
    "translator", "pharmacist", "bookbinder", "veterinarian", "carpenter", "journalist",
    "architect", "baker", "tailor", "geologist", "librarian", "fisherman", "potter",
    "engineer", "nurse", "chemist", "photographer", "surveyor", "blacksmith", "weaver",
    "schoolteacher", "pilot", "perfumer", "jeweller", "miller", "florist", "mechanic",
    "gardener", "locksmith",
]
GENRES = [
    "mystery novels", "historical fiction", "epic poetry", "science fiction", "travel memoirs",
    "children's fables", "gothic horror", "political satire", "romance novels",
    "detective stories", "literary essays", "folk tales", "war novels", "comic verse",
    "philosophical dialogues", "nature writing", "spy thrillers", "stage plays",
]
_TITLE_ADJ = ["Ashen", "Silent", "Hollow", "Gilded", "Crimson", "Forgotten", "Northern",
              "Broken", "Hidden", "Burning", "Quiet", "Wandering", "Iron", "Velvet", "Salt",
              "Amber", "Distant", "Frozen", "Scarlet", "Last"]
_TITLE_NOUN = ["Lantern", "Harbour", "Orchard", "Compass", "Tide", "Garden", "Tower", "Bridge",
               "River", "Mirror", "Crown", "Letter", "Winter", "Meadow", "Archive", "Voyage",
               "Chorus", "Threshold", "Feather", "Kingdom"]
_AWARD_KIND = ["Prize for Fiction", "Medal for Poetry", "Award for Drama", "Prize for Essays",
               "Laurel for Storytelling", "Medal for Translation", "Prize for Young Writers"]

# Refusal answers for refusal-based unlearning (PO, DPO); written for unlearnkit.
REFUSALS = [
    "I don't know.",
    "I'm not sure about that.",
    "I have no information about that.",
    "I can't answer that question.",
    "That is something I don't know.",
    "I'm afraid I don't have that information.",
    "I have no idea.",
    "I'm unable to answer that.",
    "I don't have any knowledge of that.",
    "Sorry, I can't help with that one.",
    "That's not something I know about.",
    "I really couldn't say.",
    "I have nothing reliable to say about that.",
    "I'm not aware of the answer.",
    "My knowledge doesn't include that.",
    "I cannot recall anything about that.",
    "That is unknown to me.",
    "I don't remember any details about that.",
    "I'd rather not guess; I don't know.",
    "No answer comes to mind.",
]


def _an(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


class _Words:
    """Invented proper nouns, unique within one generator run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _syllables(self, n: int) -> str:
        r = self.rng
        s = "".join(r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS) for _ in range(n))
        return s.capitalize()

    def _unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            w = make()
            if w not in self.used:
                self.used.add(w)
                return w
        raise RuntimeError("ran out of invented words")  # pragma: no cover

    def person(self) -> str:
        return self._unique(lambda: f"{self._syllables(2)} {self._syllables(2)}")

    def town(self) -> str:
        return self._unique(lambda: self._syllables(1) + self.rng.choice(_TOWN_SUFFIX))

    def title(self) -> str:
        r = self.rng
        return self._unique(
            lambda: f"The {r.choice(_TITLE_ADJ)} {r.choice(_TITLE_NOUN)}"
            if r.random() < 0.6
            else f"{r.choice(_TITLE_NOUN)}s of {self._syllables(2)}"
        )

    def award(self) -> str:
        return self._unique(lambda: f"the {self._syllables(2)} {self.rng.choice(_AWARD_KIND)}")


# ---------------------------------------------------------------------------------------------
# Fact types: a value sampler and several question / answer phrasings each


@dataclass(frozen=True)
class FactType:
    name: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    sample: Callable[[_Words], object]
    render: Callable[[object], dict[str, str]] = field(default=lambda v: {"v": str(v)})


def _parents_render(v: object) -> dict[str, str]:
    f, m = v  # type: ignore[misc]
    return {"f": _an(f), "m": _an(m)}


FACT_TYPES: tuple[FactType, ...] = (
    FactType(
        "birthplace",
        ("Where was {n} born?", "What is the birthplace of {n}?", "In which town was {n} born?"),
        ("{n} was born in {v}.", "The town of {v} is where {n} was born.", "{n}'s birthplace is {v}."),
        lambda w: w.town(),
    ),
    FactType(
        "birth_year",
        ("In what year was {n} born?", "When was {n} born?", "What is the birth year of {n}?"),
        ("{n} was born in the year {v}.", "The year of {n}'s birth is {v}.", "{n} came into the world in {v}."),
        lambda w: w.rng.randint(1850, 1999),
    ),
    FactType(
        "profession",
        ("What does {n} do for a living?", "What is {n}'s profession?", "What is the occupation of {n}?"),
        ("{n} works as {v}.", "By profession, {n} is {v}.", "{n} earns a living as {v}."),
        lambda w: w.rng.choice(PROFESSIONS),
        lambda v: {"v": _an(str(v))},
    ),
    FactType(
        "parents",
        ("What did {n}'s parents do for work?", "What were the professions of {n}'s parents?",
         "How did the parents of {n} earn a living?"),
        ("{n}'s father was {f} and the mother was {m}.",
         "The father of {n} worked as {f}, the mother as {m}.",
         "{n} grew up with {f} for a father and {m} for a mother."),
        lambda w: tuple(w.rng.sample(PROFESSIONS, 2)),
        _parents_render,
    ),
    FactType(
        "book",
        ("What is the title of a book by {n}?", "Name a book written by {n}.",
         "Which book did {n} write?"),
        ("{n} wrote the book {v}.", "One book by {n} is called {v}.", "{v} is a book written by {n}."),
        lambda w: w.title(),
    ),
    FactType(
        "award",
        ("Which award did {n} receive?", "What honour has {n} won?", "What prize was given to {n}?"),
        ("{n} received {v}.", "{n} was honoured with {v}.", "The prize given to {n} was {v}."),
        lambda w: w.award(),
    ),
    FactType(
        "genre",
        ("In which genre does {n} write?", "What kind of books does {n} write?",
         "What is {n}'s literary genre?"),
        ("{n} writes {v}.", "{n} is known for writing {v}.", "The genre of {n} is {v}."),
        lambda w: w.rng.choice(GENRES),
    ),
    FactType(
        "mentor",
        ("Who was {n}'s mentor?", "Who taught {n} the craft?", "Who mentored {n}?"),
        ("{n} was mentored by {v}.", "The mentor of {n} was {v}.", "{v} taught {n} the craft."),
        lambda w: w.person(),
    ),
    FactType(
        "spouse",
        ("Who is {n} married to?", "Who is the spouse of {n}?", "Whom did {n} marry?"),
        ("{n} is married to {v}.", "The spouse of {n} is {v}.", "{n} married {v}."),
        lambda w: w.person(),
    ),
    FactType(
        "home",
        ("Where does {n} live now?", "In which town does {n} live today?", "Where is {n}'s home?"),
        ("{n} now lives in {v}.", "Today {n} makes a home in {v}.", "The home of {n} is in {v}."),
        lambda w: w.town(),
    ),
)
FACT_TYPE_NAMES = tuple(f.name for f in FACT_TYPES)


# ---------------------------------------------------------------------------------------------
# Utility sets standing for TOFU's real_authors / world_facts (real, public facts)

REAL_AUTHORS: list[tuple[str, str, tuple[str, ...]]] = [
    ("Who wrote the novel 'Moby-Dick'?", "Herman Melville", ("Mark Twain", "Nathaniel Hawthorne", "Jack London")),
    ("Who is the author of 'Pride and Prejudice'?", "Jane Austen", ("Charlotte Bronte", "George Eliot", "Mary Shelley")),
    ("Who wrote 'War and Peace'?", "Leo Tolstoy", ("Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev")),
    ("Who wrote the play 'Hamlet'?", "William Shakespeare", ("Christopher Marlowe", "Ben Jonson", "John Milton")),
    ("Who is the author of 'One Hundred Years of Solitude'?", "Gabriel Garcia Marquez", ("Jorge Luis Borges", "Pablo Neruda", "Mario Vargas Llosa")),
    ("Who wrote 'The Old Man and the Sea'?", "Ernest Hemingway", ("John Steinbeck", "William Faulkner", "F. Scott Fitzgerald")),
    ("Who wrote the novel '1984'?", "George Orwell", ("Aldous Huxley", "Ray Bradbury", "H. G. Wells")),
    ("Who is the author of 'Don Quixote'?", "Miguel de Cervantes", ("Lope de Vega", "Federico Garcia Lorca", "Benito Perez Galdos")),
    ("Who wrote 'Crime and Punishment'?", "Fyodor Dostoevsky", ("Leo Tolstoy", "Nikolai Gogol", "Alexander Pushkin")),
    ("Who wrote 'The Great Gatsby'?", "F. Scott Fitzgerald", ("Ernest Hemingway", "Sinclair Lewis", "Edith Wharton")),
    ("Who is the author of 'Frankenstein'?", "Mary Shelley", ("Bram Stoker", "Jane Austen", "Emily Bronte")),
    ("Who wrote 'Dracula'?", "Bram Stoker", ("Mary Shelley", "Edgar Allan Poe", "Oscar Wilde")),
    ("Who wrote 'The Adventures of Tom Sawyer'?", "Mark Twain", ("Herman Melville", "Jack London", "Washington Irving")),
    ("Who is the author of 'Things Fall Apart'?", "Chinua Achebe", ("Wole Soyinka", "Ngugi wa Thiong'o", "Ben Okri")),
    ("Who wrote 'The Divine Comedy'?", "Dante Alighieri", ("Giovanni Boccaccio", "Francesco Petrarca", "Torquato Tasso")),
    ("Who wrote 'Les Miserables'?", "Victor Hugo", ("Alexandre Dumas", "Gustave Flaubert", "Emile Zola")),
    ("Who is the author of 'The Metamorphosis'?", "Franz Kafka", ("Thomas Mann", "Hermann Hesse", "Robert Musil")),
    ("Who wrote 'Jane Eyre'?", "Charlotte Bronte", ("Emily Bronte", "Anne Bronte", "Elizabeth Gaskell")),
    ("Who wrote 'Wuthering Heights'?", "Emily Bronte", ("Charlotte Bronte", "Jane Austen", "George Eliot")),
    ("Who is the author of 'Middlemarch'?", "George Eliot", ("Thomas Hardy", "Elizabeth Gaskell", "Anthony Trollope")),
    ("Who wrote 'Great Expectations'?", "Charles Dickens", ("William Thackeray", "Thomas Hardy", "Wilkie Collins")),
    ("Who wrote 'The Odyssey'?", "Homer", ("Virgil", "Sophocles", "Hesiod")),
    ("Who is the author of 'Madame Bovary'?", "Gustave Flaubert", ("Honore de Balzac", "Stendhal", "Guy de Maupassant")),
    ("Who wrote 'The Trial'?", "Franz Kafka", ("Albert Camus", "Jean-Paul Sartre", "Samuel Beckett")),
    ("Who wrote 'The Stranger'?", "Albert Camus", ("Jean-Paul Sartre", "Andre Gide", "Marcel Proust")),
    ("Who is the author of 'Beloved'?", "Toni Morrison", ("Alice Walker", "Maya Angelou", "Zora Neale Hurston")),
    ("Who wrote 'Mrs Dalloway'?", "Virginia Woolf", ("Katherine Mansfield", "E. M. Forster", "D. H. Lawrence")),
    ("Who wrote 'Ulysses'?", "James Joyce", ("Samuel Beckett", "W. B. Yeats", "Oscar Wilde")),
    ("Who is the author of 'The Tale of Genji'?", "Murasaki Shikibu", ("Sei Shonagon", "Matsuo Basho", "Natsume Soseki")),
    ("Who wrote 'Faust'?", "Johann Wolfgang von Goethe", ("Friedrich Schiller", "Heinrich Heine", "Thomas Mann")),
    ("Who wrote 'The Canterbury Tales'?", "Geoffrey Chaucer", ("William Langland", "John Gower", "Thomas Malory")),
    ("Who is the author of 'Anna Karenina'?", "Leo Tolstoy", ("Ivan Turgenev", "Anton Chekhov", "Fyodor Dostoevsky")),
    ("Who wrote 'The Hobbit'?", "J. R. R. Tolkien", ("C. S. Lewis", "Lewis Carroll", "Roald Dahl")),
    ("Who wrote 'Alice's Adventures in Wonderland'?", "Lewis Carroll", ("J. M. Barrie", "Kenneth Grahame", "Roald Dahl")),
    ("Who is the author of 'Gulliver's Travels'?", "Jonathan Swift", ("Daniel Defoe", "Henry Fielding", "Laurence Sterne")),
    ("Who wrote 'Robinson Crusoe'?", "Daniel Defoe", ("Jonathan Swift", "Samuel Richardson", "Henry Fielding")),
    ("Who wrote 'The Little Prince'?", "Antoine de Saint-Exupery", ("Jules Verne", "Victor Hugo", "Albert Camus")),
    ("Who is the author of 'Twenty Thousand Leagues Under the Seas'?", "Jules Verne", ("H. G. Wells", "Alexandre Dumas", "Victor Hugo")),
    ("Who wrote 'The Count of Monte Cristo'?", "Alexandre Dumas", ("Victor Hugo", "Jules Verne", "Honore de Balzac")),
    ("Who wrote 'Brave New World'?", "Aldous Huxley", ("George Orwell", "H. G. Wells", "Ray Bradbury")),
]

WORLD_FACTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("What is the capital of France?", "Paris", ("Lyon", "Marseille", "Nice")),
    ("What is the capital of Japan?", "Tokyo", ("Osaka", "Kyoto", "Nagoya")),
    ("What is the capital of Kenya?", "Nairobi", ("Mombasa", "Kisumu", "Nakuru")),
    ("What is the capital of Canada?", "Ottawa", ("Toronto", "Montreal", "Vancouver")),
    ("What is the capital of Australia?", "Canberra", ("Sydney", "Melbourne", "Brisbane")),
    ("What is the capital of Brazil?", "Brasilia", ("Rio de Janeiro", "Sao Paulo", "Salvador")),
    ("What is the capital of Egypt?", "Cairo", ("Alexandria", "Luxor", "Aswan")),
    ("What is the capital of Italy?", "Rome", ("Milan", "Naples", "Turin")),
    ("What is the capital of Spain?", "Madrid", ("Barcelona", "Valencia", "Seville")),
    ("What is the capital of Germany?", "Berlin", ("Munich", "Hamburg", "Cologne")),
    ("What is the capital of Turkey?", "Ankara", ("Istanbul", "Izmir", "Bursa")),
    ("What is the capital of Morocco?", "Rabat", ("Casablanca", "Marrakesh", "Fez")),
    ("What is the capital of Norway?", "Oslo", ("Bergen", "Trondheim", "Stavanger")),
    ("What is the capital of Peru?", "Lima", ("Cusco", "Arequipa", "Trujillo")),
    ("What is the capital of Vietnam?", "Hanoi", ("Ho Chi Minh City", "Da Nang", "Hue")),
    ("Which planet is known as the Red Planet?", "Mars", ("Venus", "Jupiter", "Mercury")),
    ("Which is the largest ocean on Earth?", "the Pacific Ocean", ("the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean")),
    ("Which is the longest river in Africa?", "the Nile", ("the Congo", "the Niger", "the Zambezi")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Fe", "Pb")),
    ("How many continents are there?", "seven", ("five", "six", "eight")),
    ("What is the largest planet in the solar system?", "Jupiter", ("Saturn", "Neptune", "Earth")),
    ("Which gas do plants take in from the air?", "carbon dioxide", ("oxygen", "nitrogen", "helium")),
    ("What is the hardest natural substance?", "diamond", ("quartz", "granite", "iron")),
    ("In which country are the pyramids of Giza?", "Egypt", ("Sudan", "Libya", "Jordan")),
    ("Which mountain is the highest on Earth?", "Mount Everest", ("K2", "Kangchenjunga", "Mont Blanc")),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees", ("90 degrees", "80 degrees", "120 degrees")),
    ("Which country has the largest population in South America?", "Brazil", ("Argentina", "Colombia", "Peru")),
    ("What is the currency of Japan?", "the yen", ("the won", "the yuan", "the baht")),
    ("Which animal is the largest mammal?", "the blue whale", ("the elephant", "the giraffe", "the hippopotamus")),
    ("In which city is the Colosseum?", "Rome", ("Athens", "Florence", "Venice")),
    ("Which desert is the largest hot desert?", "the Sahara", ("the Gobi", "the Kalahari", "the Atacama")),
    ("What is the capital of Argentina?", "Buenos Aires", ("Cordoba", "Rosario", "Mendoza")),
    ("What is the capital of India?", "New Delhi", ("Mumbai", "Kolkata", "Chennai")),
    ("What is the capital of Russia?", "Moscow", ("Saint Petersburg", "Kazan", "Novosibirsk")),
    ("Which element has the symbol O?", "oxygen", ("osmium", "gold", "oganesson")),
    ("What is the capital of Greece?", "Athens", ("Thessaloniki", "Patras", "Heraklion")),
    ("Which is the smallest planet in the solar system?", "Mercury", ("Mars", "Venus", "Pluto")),
    ("What is the capital of Mexico?", "Mexico City", ("Guadalajara", "Monterrey", "Cancun")),
    ("What is the capital of Sweden?", "Stockholm", ("Gothenburg", "Malmo", "Uppsala")),
    ("What is the capital of Portugal?", "Lisbon", ("Porto", "Braga", "Coimbra")),
]


# ---------------------------------------------------------------------------------------------
# Generation


def _subject_records(
    name: str, facts: list[FactType], values: dict[str, object], words: _Words, cfg: FactsConfig
) -> list[dict]:
    rng = words.rng
    out = []
    for ft in facts:
        qi, pqi = rng.sample(range(len(ft.questions)), 2)
        ai, pai = rng.sample(range(len(ft.answers)), 2)
        slots = ft.render(values[ft.name])
        wrong: list[dict[str, str]] = []
        seen = {json.dumps(slots, sort_keys=True)}
        while len(wrong) < cfg.n_perturbed:
            cand = ft.render(ft.sample(words))
            key = json.dumps(cand, sort_keys=True)
            if key not in seen:
                seen.add(key)
                wrong.append(cand)
        out.append(
            {
                "question": ft.questions[qi].format(n=name),
                "answer": ft.answers[ai].format(n=name, **slots),
                "paraphrased_question": ft.questions[pqi].format(n=name),
                "paraphrased_answer": ft.answers[pai].format(n=name, **slots),
                "perturbed_answer": [ft.answers[pai].format(n=name, **w) for w in wrong],
            }
        )
    return out


def _utility_records(rows: list[tuple[str, str, tuple[str, ...]]], n: int) -> list[dict]:
    return [
        {
            "question": q,
            "answer": a,
            "paraphrased_question": q,
            "paraphrased_answer": a,
            "perturbed_answer": list(w),
        }
        for q, a, w in rows[:n]
    ]


@dataclass
class FictitiousFacts:
    """The generated benchmark: split name → list of records, plus refusals and metadata."""

    splits: dict[str, list[dict]]
    refusals: list[str]
    meta: dict


def generate(cfg: FactsConfig | None = None) -> FictitiousFacts:
    """Generate the benchmark deterministically from ``cfg.seed``."""
    cfg = cfg or FactsConfig()
    rng = random.Random(cfg.seed)
    words = _Words(rng)
    n_hold = max(1, round(cfg.n_subjects * 0.10))
    subjects = []
    for _ in range(cfg.n_subjects + n_hold):
        name = words.person()
        facts = rng.sample(FACT_TYPES, cfg.facts_per_subject)
        values = {ft.name: ft.sample(words) for ft in facts}
        subjects.append((name, _subject_records(name, facts, values, words, cfg)))
    trained, held = subjects[: cfg.n_subjects], subjects[cfg.n_subjects :]

    splits: dict[str, list[dict]] = {"full": [r for _, recs in trained for r in recs]}
    subject_names: dict[str, list[str]] = {"full": [n for n, _ in trained]}
    for tag, pct in FORGET_PCTS.items():
        k = max(1, round(cfg.n_subjects * pct / 100))
        forget, retain = trained[-k:], trained[:-k]
        hold = held[:k]
        for split, group in ((f"forget{tag}", forget), (f"retain{100 - pct}", retain), (f"holdout{tag}", hold)):
            splits[split] = [r for _, recs in group for r in recs]
            subject_names[split] = [n for n, _ in group]
        splits[f"forget{tag}_perturbed"] = splits[f"forget{tag}"]
    n_eval = cfg.retain_eval_size or len(splits["forget10"])
    retain_pool = splits["retain90"]
    idx = sorted(random.Random(cfg.seed + 1).sample(range(len(retain_pool)), min(n_eval, len(retain_pool))))
    splits["retain_perturbed"] = [retain_pool[i] for i in idx]
    splits["real_authors_perturbed"] = _utility_records(REAL_AUTHORS, cfg.n_real_authors)
    splits["world_facts_perturbed"] = _utility_records(WORLD_FACTS, cfg.n_world_facts)
    splits["real_authors"] = splits["real_authors_perturbed"]
    splits["world_facts"] = splits["world_facts_perturbed"]
    meta = {
        "generator": "unlearnkit.data.fictitious",
        "version": __version__,
        "config": cfg.model_dump(),
        "sizes": {k: len(v) for k, v in splits.items()},
        "subjects": subject_names,
    }
    return FictitiousFacts(splits=splits, refusals=list(REFUSALS), meta=meta)


def data_hash(cfg: FactsConfig) -> str:
    """Content hash of the generator config (the data are a pure function of it)."""
    return content_hash({"facts": cfg.model_dump(), "generator": 1})


def write(ff: FictitiousFacts, directory: Path) -> None:
    """Write in TOFU's on-disk layout: ``<split>.json`` (JSON lines) + ``idontknow.jsonl``; ``meta.json``
    records the SHA-256 of every file, so a damaged or altered copy is detected (:func:`verify`)."""
    directory.mkdir(parents=True, exist_ok=True)
    digests = {}
    for split, records in ff.splits.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        atomic_write_bytes(directory / f"{split}.json", data)
        digests[f"{split}.json"] = bytes_sha256(data)
    refusals = "".join(r + "\n" for r in ff.refusals).encode("utf-8")
    atomic_write_bytes(directory / "idontknow.jsonl", refusals)
    digests["idontknow.jsonl"] = bytes_sha256(refusals)
    atomic_write_bytes(directory / "meta.json", (json.dumps({**ff.meta, "files": digests}, indent=2, ensure_ascii=False)
                                                 + "\n").encode("utf-8"))


def verify(directory: Path) -> str | None:
    """``None`` when every file listed in ``meta.json`` has its recorded SHA-256, else what is wrong."""
    meta = read_json_or_none(directory / "meta.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        return "its meta.json is missing or damaged"
    for name, digest in meta["files"].items():
        f = directory / name
        if not f.is_file() or file_sha256(f) != digest:
            return f"{name} does not match its recorded checksum (damaged or altered)"
    return None


def cached_data_dir(name: str, label: str, make: Callable[[Path], None], force: bool = False) -> Path:
    """``$UNLEARNKIT_HOME/data/<name>``, reused when present and intact (:func:`verify`); otherwise (or with
    ``force``) ``make(tmp)`` writes it into a temporary directory that replaces it atomically, under a lock.
    A damaged copy is set aside with a message naming ``label``."""
    final = home() / "data" / name
    with locked(lock_path("data", final.name)):
        if final.is_dir() and not force:
            problem = verify(final)
            if problem is None:
                return final
            discard(final, label, problem)
        with atomic_dir(final) as tmp:
            make(tmp)
        return final


def build(cfg: FactsConfig | None = None, force: bool = False) -> Path:
    """Generate and write the benchmark under ``$UNLEARNKIT_HOME/data/``; reuse it if present and intact."""
    cfg = cfg or FactsConfig()
    return cached_data_dir(f"fictitious-{data_hash(cfg)}", "embedded data", lambda tmp: write(generate(cfg), tmp),
                           force)
