"""Sentences for the small GLUE-format samples of the tasks other than QQP, written for this project.

Each `*_item(rng)` returns one labelled row's text fields; the people, firms, towns and facts are
made up. The point is files every GLUE reader and `run_glue.py` accept, with both labels and
sentences of natural shape, not a benchmark.
"""
from __future__ import annotations

import random

PEOPLE = (("Maya", "she", "her"), ("Tom", "he", "his"), ("Priya", "she", "her"), ("Lucas", "he", "his"),
          ("Aiko", "she", "her"), ("Omar", "he", "his"), ("Elena", "she", "her"), ("Sam", "he", "his"),
          ("Grace", "she", "her"), ("Daniel", "he", "his"))
# (past, past participle, base, object)
THINGS = ("letter", "report", "photo", "map", "cake", "box", "cup")
DEEDS = (("fixed", "fixed", "fix", "bike"), ("baked", "baked", "bake", "cake"),
         ("wrote", "written", "write", "letter"), ("opened", "opened", "open", "window"),
         ("sang", "sung", "sing", "song"), ("read", "read", "read", "report"),
         ("painted", "painted", "paint", "fence"), ("washed", "washed", "wash", "car"),
         ("took", "taken", "take", "photo"), ("drew", "drawn", "draw", "map"))
TOWNS = ("Caldmouth", "Riverton", "Ashby Cross", "Port Elms", "Norwick", "Halden", "Bramley Vale",
         "Eastmere", "Stonebridge", "Kirkhallow")
FIRMS = ("Norvale Systems", "Bright Harbour Foods", "Kestrel Motors", "Tallis Pharma", "Greyline Media",
         "Orchard Bank", "Pinewood Energy", "Marlow Textiles", "Quillon Software", "Redfern Airlines")
PRODUCTS = ("solar panels", "frozen meals", "electric scooters", "hearing aids", "accounting software",
            "garden tools", "children's books", "running shoes")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _two_people(rng: random.Random, same_gender: bool = False):
    first = rng.choice(PEOPLE)
    others = [p for p in PEOPLE if p != first and (not same_gender or p[1] == first[1])]
    return first, rng.choice(others)


# -- CoLA: (sentence, "1" acceptable / "0" not) ------------------------------------------------------

def _cola_good(rng: random.Random) -> str:
    (a, _, poss), (b, _, _) = _two_people(rng)
    past, pp, base, obj = rng.choice(DEEDS)
    place, adj = rng.choice(("table", "shelf", "floor", "desk")), rng.choice(("old", "new", "dusty", "tidy"))
    thing = rng.choice(THINGS)
    return rng.choice((
        f"{a} {past} the {obj} {rng.choice(('yesterday', 'on Monday', 'last night', 'before lunch'))}.",
        f"The {thing}s on the {place} look {adj}.",
        f"{a} seems to have lost {poss} keys again.",
        f"Which {obj} did {a} say that {b} {past}?",
        f"{a} wondered whether {b} would come to the party.",
        f"It is easy to please {a}.",
        f"{a} gave {b} the {obj}.",
        f"The {obj} that {a} {past} was on the {place}.",
        f"{a} has already {pp} the {obj}.",
        f"{a} asked {b} to {base} the {obj} before dinner.",
        f"{a} was surprised that {b} had {pp} the {obj} so quickly.",
        f"Nobody expected {a} to {base} the {obj}.",
    ))


def _cola_bad(rng: random.Random) -> str:
    (a, subject, poss), (b, _, _) = _two_people(rng)
    past, pp, base, obj = rng.choice(DEEDS)
    wrong_self = "himself" if subject == "she" else "herself"
    place, adj = rng.choice(("table", "shelf", "floor", "desk")), rng.choice(("old", "new", "dusty", "tidy"))
    thing = rng.choice(THINGS)
    bad = [
        f"The {thing}s on the {place} looks {adj}.",
        f"{a} put the {obj}.",
        f"{a} the {obj} {past} yesterday.",
        f"{a} might can {base} the {obj}.",
        f"{a} admired {wrong_self} in the mirror.",
        f"Who did {a} say that {past} the {obj}?",
        f"Which {obj} did {a} wonder whether {b} {past}?",
        f"{a} seems {poss} keys to have lost.",
        f"{a} gave to {b} the {obj}.",
    ]
    if past != pp:
        bad.append(f"{a} has already {past} the {obj}.")
    return rng.choice(bad)


def cola_item(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.7:                 # CoLA is about 70% acceptable
        return _cola_good(rng), "1"
    return _cola_bad(rng), "0"


# -- SST-2: (lower-cased, tokenized sentence with GLUE's trailing space, "1" positive / "0" negative) -

_GOOD = ("warm", "funny", "gorgeous", "moving", "clever", "heartfelt", "sharp", "tender", "smart",
         "thrilling", "charming", "beautifully acted", "touching", "witty")
_BAD = ("dull", "clumsy", "tedious", "shallow", "predictable", "overlong", "lifeless", "muddled", "flat",
        "forgettable", "annoying", "lazy", "joyless", "pretentious")
_KINDS = ("film", "movie", "comedy", "drama", "thriller", "documentary", "story", "picture", "romance")
_PARTS = ("the performances", "the script", "the dialogue", "the direction", "the soundtrack",
          "the ending", "the cast", "the camera work")


_MOST = ("moving", "heartfelt", "charming", "touching", "thrilling", "gorgeous", "beautifully acted")


def _plural(kind: str) -> str:
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def _be(part: str) -> str:
    return "are" if part.endswith("s") else "is"


def _sst_positive(rng: random.Random) -> str:
    g1, g2 = rng.sample(_GOOD, 2)
    kind, (part, part2) = rng.choice(_KINDS), rng.sample(_PARTS, 2)
    return rng.choice((
        f"a {g1} and {g2} {kind} .",
        f"{part} {_be(part)} {g1} , and {part2} {_be(part2)} even better .",
        f"one of the most {rng.choice(_MOST)} {_plural(kind)} of the year .",
        f"it 's a {g1} {kind} that never loses sight of its characters .",
        f"the director handles the material with a light , {g1} touch .",
        f"even when the plot wobbles , the {kind} stays {g1} .",
        f"{g1} and {g2} .",
        f"you 'll leave the theater smiling , and you wo n't forget {part} .",
        f"a {g1} little {kind} that earns every one of its laughs .",
    ))


def _sst_negative(rng: random.Random) -> str:
    b1, b2 = rng.sample(_BAD, 2)
    kind, (part, part2), good = rng.choice(_KINDS), rng.sample(_PARTS, 2), rng.choice(_GOOD)
    return rng.choice((
        f"a {b1} , {b2} {kind} .",
        f"{part} {_be(part)} {b1} and {part2} {'do' if part2.endswith('s') else 'does'} n't help .",
        f"the {kind} is not nearly as {good} as it thinks it is .",
        f"it 's {b1} , and at nearly two hours it feels even longer .",
        f"a {kind} that mistakes being loud for being {good} .",
        f"{b1} and {b2} .",
        f"there 's nothing {good} about {part} .",
        "by the end , you 'll be checking your watch more than the screen .",
        f"a {b1} mess of a {kind} .",
    ))


def sst2_item(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.55:
        return _sst_positive(rng) + " ", "1"
    return _sst_negative(rng) + " ", "0"


# -- MRPC: (string 1, string 2, "1" paraphrase / "0" not) ---------------------------------------------

def _mrpc_earnings(rng: random.Random) -> tuple[str, str, str]:
    firm, day = rng.choice(FIRMS), rng.choice(DAYS)
    pct, money = rng.randint(3, 28), rng.randint(12, 480)
    quarter = rng.choice(("first-quarter", "second-quarter", "third-quarter", "fourth-quarter"))
    a = f"{firm} said on {day} that its {quarter} profit rose {pct} percent to ${money} million."
    if rng.random() < 0.68:
        return a, f"{firm}'s {quarter} profit climbed {pct} percent to ${money} million, the company said {day}.", "1"
    return a, (f"{firm} said its {quarter} sales rose {pct + rng.randint(2, 9)} percent, "
               f"but warned that costs would keep growing next year."), "0"


def _mrpc_court(rng: random.Random) -> tuple[str, str, str]:
    town, years = rng.choice(TOWNS), rng.randint(2, 15)
    (person, _, poss), day = rng.choice(PEOPLE), rng.choice(DAYS)
    a = f"A court in {town} on {day} sentenced {person} Hale to {years} years in prison for fraud."
    if rng.random() < 0.68:
        return a, f"{person} Hale was sentenced to {years} years in prison for fraud by a {town} court on {day}.", "1"
    return a, f"{person} Hale, who was convicted of fraud in {town}, plans to appeal, {poss} lawyer said.", "0"


def _mrpc_storm(rng: random.Random) -> tuple[str, str, str]:
    town, homes, day = rng.choice(TOWNS), rng.randint(2, 90) * 1000, rng.choice(DAYS)
    a = f"The storm knocked out power to about {homes:,} homes in and around {town} on {day}."
    if rng.random() < 0.68:
        return a, f"Roughly {homes:,} homes around {town} lost power on {day} as the storm passed through.", "1"
    return a, f"Crews expect to restore power to most of {town} by the weekend, officials said on {day}.", "0"


def _mrpc_deal(rng: random.Random) -> tuple[str, str, str]:
    buyer, target = rng.sample(FIRMS, 2)
    money, product = rng.randint(40, 900), rng.choice(PRODUCTS)
    a = f"{buyer} agreed to buy {target}, a maker of {product}, for ${money} million in cash."
    if rng.random() < 0.68:
        return a, f"{buyer} will pay ${money} million in cash for {target}, which makes {product}.", "1"
    return a, f"Shares of {target} jumped {rng.randint(5, 30)} percent after the deal was announced.", "0"


def mrpc_item(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice((_mrpc_earnings, _mrpc_court, _mrpc_storm, _mrpc_deal))(rng)


# -- STS-B: (sentence 1, sentence 2, score 0-5) -------------------------------------------------------

_ACTORS = ("A man", "A woman", "A boy", "A girl", "An old man", "A young woman", "A child", "A chef")
# (present participle phrase, a paraphrase of it, another action on the same object, two fitting places)
_ACTIONS = (("is playing a guitar", "plays the guitar", "is tuning a guitar", ("on a porch", "in a small bar")),
            ("is slicing an onion", "is cutting an onion into pieces", "is peeling an onion",
             ("in a small kitchen", "at a wooden table")),
            ("is riding a horse", "rides a horse", "is feeding a horse", ("along a beach", "across a field")),
            ("is reading a newspaper", "reads the paper", "is folding a newspaper",
             ("on a park bench", "at a café table")),
            ("is swimming in a pool", "swims in a swimming pool", "is cleaning a pool",
             ("behind a hotel", "at night")),
            ("is kicking a ball", "kicks a football", "is throwing a ball", ("in a yard", "on a sandy beach")),
            ("is pouring milk into a bowl", "pours some milk in a bowl", "is washing a bowl",
             ("in a kitchen", "next to a window")),
            ("is typing on a laptop", "types on a laptop computer", "is closing a laptop",
             ("on a train", "in a library")),
            ("is walking a dog", "walks a dog on a leash", "is bathing a dog", ("in the rain", "by a river")),
            ("is painting a fence", "paints a wooden fence", "is repairing a fence",
             ("in a garden", "next to a barn")))


def stsb_item(rng: random.Random) -> tuple[str, str, float]:
    actor, other_actor = rng.sample(_ACTORS, 2)
    (doing, same, nearby, places), other = rng.sample(_ACTIONS, 2)
    where = rng.choice(places)
    first = f"{actor} {doing} {where}."
    kind = rng.random()
    if kind < 0.3:
        return first, f"{actor} {same} {where}.", rng.uniform(4.2, 5.0)
    if kind < 0.5:
        return first, f"{other_actor} {doing} {rng.choice(places)}.", rng.uniform(2.4, 3.6)
    if kind < 0.75:
        return first, f"{actor} {nearby} {rng.choice(places)}.", rng.uniform(1.4, 2.6)
    return first, f"{other_actor} {other[0]} {rng.choice(other[3])}.", rng.uniform(0.0, 0.8)


# -- RTE / QNLI / WNLI / MNLI --------------------------------------------------------------------------

def rte_item(rng: random.Random) -> tuple[str, str, str]:
    """(premise, hypothesis, "entailment" / "not_entailment")."""
    (person, subj, _), org, town = rng.choice(PEOPLE), rng.choice(FIRMS), rng.choice(TOWNS)
    year, n = rng.randint(1990, 2015), rng.randint(3, 40)
    frames = (
        (f"{person} Whitlow, who has led {org} since {year}, announced on {rng.choice(DAYS)} that {subj} "
         f"would step down at the end of the year.",
         f"{person} Whitlow is the head of {org}.", f"{person} Whitlow founded {org}."),
        (f"The bridge over the river at {town}, completed in {year}, carries about {n},000 vehicles a day "
         f"and is due for repairs next spring.",
         f"A bridge at {town} is used by thousands of vehicles every day.",
         f"The bridge at {town} was closed in {year} because of damage."),
        (f"Heavy rain in {town} on {rng.choice(DAYS)} forced the closure of {n} schools and left thousands "
         f"of homes without power.",
         f"Schools in {town} were closed because of the weather.",
         f"The rain in {town} caused several deaths."),
        (f"{org}, which employs about {n * 100} people in {town}, said it would move its headquarters to "
         f"a larger site outside the town by {year + 12}.",
         f"{org} has staff in {town}.", f"{org} is closing its offices in {town}."),
    )
    premise, entailed, not_entailed = rng.choice(frames)
    if rng.random() < 0.5:
        return premise, entailed, "entailment"
    return premise, not_entailed, "not_entailment"


def qnli_item(rng: random.Random) -> tuple[str, str, str]:
    """(question, sentence, "entailment" when the sentence answers it / "not_entailment")."""
    town, year, n = rng.choice(TOWNS), rng.randint(1850, 1990), rng.randint(12, 95)
    (person, _, _), firm = rng.choice(PEOPLE), rng.choice(FIRMS)
    frames = (
        (f"When was the town hall of {town} completed?",
         f"The town hall of {town} was completed in {year} after six years of work.",
         f"The town hall of {town} is built of grey stone from a nearby quarry."),
        (f"How tall is the lighthouse at {town}?",
         f"The lighthouse at {town} stands {n} metres above the sea.",
         f"The lighthouse at {town} was painted red and white to make it easier to see."),
        (f"Who founded {firm}?",
         f"{firm} was founded by {person} Marsh, a former engineer, in {year}.",
         f"{firm} grew quickly in its first years and opened offices in three countries."),
        (f"In which month is the {town} music festival held?",
         f"The {town} music festival takes place every {rng.choice(('June', 'July', 'August'))} by the harbour.",
         f"The {town} music festival was first held in {year} with only {n} performers."),
    )
    question, answer, other = rng.choice(frames)
    if rng.random() < 0.5:
        return question, answer, "entailment"
    return question, other, "not_entailment"


def wnli_item(rng: random.Random) -> tuple[str, str, str]:
    """(sentence with a pronoun, the sentence with the pronoun replaced, "1" right referent / "0")."""
    (a, subj, _), (b, _, _) = _two_people(rng, same_gender=True)
    frames = (  # (sentence, clause after the pronoun, whom the pronoun means: 0 = a, 1 = b)
        (f"{a} thanked {b} because {subj} had helped with the move.", "had helped with the move.", 1),
        (f"{a} lent {b} an umbrella because {subj} was going out in the rain.", "was going out in the rain.", 1),
        (f"{a} could not lift {b} because {subj} was too weak.", "was too weak.", 0),
        (f"{a} could not lift {b} because {subj} was too heavy.", "was too heavy.", 1),
        (f"{a} called {b} to apologise because {subj} had been rude.", "had been rude.", 0),
        (f"{a} beat {b} at chess because {subj} had practised all summer.", "had practised all summer.", 0),
    )
    sentence, clause, who = rng.choice(frames)
    right, wrong = (a, b) if who == 0 else (b, a)
    if rng.random() < 0.5:
        return sentence, f"{right} {clause}", "1"
    return sentence, f"{wrong} {clause}", "0"


MNLI_LABELS = ("entailment", "contradiction", "neutral")


def mnli_premise(rng: random.Random) -> tuple[str, str, tuple[str, str, str]]:
    """(genre, premise, its entailed, contradicting and neutral hypotheses)."""
    (person, subj, poss), town, n = rng.choice(PEOPLE), rng.choice(TOWNS), rng.randint(3, 20)
    place = rng.choice(("bench by the river", "café on the corner", "library steps", "old pier"))
    return rng.choice((
        ("fiction", f"{person} walked to the {place} after lunch and sat there until it got dark.",
         (f"{person} spent the afternoon at the {place}.", f"{person} stayed at home all day.",
          f"{person} was waiting for a friend at the {place}.")),
        ("telephone", f"well i think we 've been recycling for about {n} years now and it 's gotten a lot easier",
         ("They have been recycling for years.", "They have never recycled anything.",
          "Their town pays them to recycle.")),
        ("government", f"The agency will publish its report on water quality in {town} by the end of the month.",
         (f"A report about the water in {town} is expected soon.",
          "The agency has stopped publishing reports.",
          f"The report will say that the water in {town} is unsafe.")),
        ("travel", f"The old market of {town} is busiest in the morning, when farmers bring fruit and fish "
                   f"from the villages nearby.",
         (f"Farmers sell food at the market in {town}.", f"The market in {town} is empty in the morning.",
          f"The market in {town} is the largest in the region.")),
        ("fiction", f"{person} folded the letter twice, put it in {poss} coat pocket and did not mention it again.",
         (f"{person} kept the letter.", f"{person} read the letter aloud to everyone.",
          f"The letter was from {poss} brother.")),
        ("slate", f"Ticket prices for the ferry to {town} went up by {n} percent this year, and fewer tourists "
                  f"made the trip.",
         (f"The ferry to {town} became more expensive.", f"The ferry to {town} is free this year.",
          "The ferry company lost money this year.")),
    ))
