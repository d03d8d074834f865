"""Quora-style question pairs written for this project: question families, the words that fill them,
and the rules that turn them into duplicate and non-duplicate pairs.

A family is one intent ("how do I learn {code}?") with several phrasings. Two phrasings of the same
family with the same words are a duplicate; the same family with another word, or another family on
the same word, is a non-duplicate that still shares most of its words (as in QQP, where most negatives
are about the same topic). Some questions carry a sentence of background first, which gives the
long tail of lengths.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# Slot values: a string, or (singular, plural / third-person form) where a family needs the second.
SLOTS: dict[str, tuple] = {
    "code": ("Python", "Java", "JavaScript", "C++", "Rust", "Go", "SQL", "Kotlin", "Swift", "PHP",
             "TypeScript", "R"),
    "tongue": ("Spanish", "French", "German", "Japanese", "Korean", "Mandarin", "Italian", "Portuguese",
               "Arabic", "Russian", "Dutch", "Turkish"),
    "city": ("Berlin", "Toronto", "Mumbai", "Lisbon", "Tokyo", "Melbourne", "Chicago", "Dublin",
             "Bangalore", "Seoul", "Amsterdam", "Cape Town"),
    "country": ("Canada", "Germany", "Australia", "Japan", "New Zealand", "Ireland", "Singapore",
                "the Netherlands", "Sweden", "the UK", "Norway", "Switzerland"),
    "origin": ("India", "Nigeria", "the Philippines", "Pakistan", "Brazil", "Egypt", "Bangladesh",
               "Vietnam"),
    "job": (("software engineer", "software engineers"), ("nurse", "nurses"), ("teacher", "teachers"),
            ("data analyst", "data analysts"), ("civil engineer", "civil engineers"), ("lawyer", "lawyers"),
            ("pharmacist", "pharmacists"), ("architect", "architects"),
            ("chartered accountant", "chartered accountants"), ("airline pilot", "airline pilots"),
            ("UX designer", "UX designers"), ("physiotherapist", "physiotherapists")),
    "exam": ("GRE", "GMAT", "IELTS", "TOEFL", "CAT", "SAT", "UPSC prelims", "bar exam"),
    "instrument": ("guitar", "piano", "violin", "drums", "flute", "ukulele", "cello", "saxophone"),
    "sport": ("running", "swimming", "cycling", "tennis", "rock climbing", "yoga", "boxing", "badminton"),
    "food": ("rice", "pasta", "chicken", "quinoa", "salmon", "oatmeal", "tofu", "spinach"),
    "animal": ("crows", "octopuses", "dolphins", "pigs", "parrots", "rats", "elephants", "goats"),
    "device": ("laptop", "phone", "tablet", "smartwatch"),
    "problem": (("keep overheating", "keeps overheating"),
                ("get so slow after a few months", "gets so slow after a few months"),
                ("turn off by itself", "turns off by itself"), ("lose battery so fast", "loses battery so fast"),
                ("freeze when I open the camera", "freezes when I open the camera")),
    "genre": ("science fiction", "fantasy", "mystery", "historical fiction", "horror", "romance", "thriller"),
}
_AN_WORDS = ("a", "e", "i", "o", "airline")         # "an" before these; "a UX designer" is right as is


@dataclass(frozen=True)
class Family:
    area: str                  # picks the background sentences (CONTEXTS) and related families
    slots: tuple[str, ...]     # slot names; "code2" is a second, different value from SLOTS["code"]
    forms: tuple[str, ...]     # phrasings of one intent: {code}, {a_job} (with article), {job_s} (plural)


F = Family
FAMILIES: tuple[Family, ...] = (
    # -- programming -------------------------------------------------------------------------------
    F("coding", ("code",), ("What is the best way to learn {code}?",
                            "How should a complete beginner start learning {code}?",
                            "How can I teach myself {code} without a computer science degree?",
                            "Where should I start if I want to learn {code} programming?",
                            "What is a good learning path for {code} for someone starting from zero?")),
    F("coding", ("code",), ("What is {code} mainly used for?",
                            "What kind of software is usually written in {code}?",
                            "What are the most common uses of {code} today?")),
    F("coding", ("code", "code2"), ("Should I learn {code} or {code2} first?",
                                    "Which language should a beginner pick first, {code} or {code2}?",
                                    "{code} or {code2}: which one is better as a first programming language?")),
    F("coding", ("code", "code2"), ("What are the main differences between {code} and {code2}?",
                                    "How is {code} different from {code2}?",
                                    "In what ways does {code} differ from {code2} in practice?")),
    F("coding", ("code",), ("Can I get a job if {code} is the only language I know?",
                            "Is knowing just {code} enough to get hired as a developer?",
                            "How hard is it to find a programming job with only {code} skills?")),
    F("coding", ("code",), ("How long does it take to learn {code} well enough to get a job?",
                            "How many months of study does it take to become job-ready in {code}?",
                            "If I study {code} two hours a day, how soon could I apply for junior roles?")),
    F("coding", ("code",), ("Does {code} have a future in the next ten years?",
                            "Will {code} still be popular ten years from now?",
                            "Is {code} slowly dying, or will it stay relevant?")),
    # -- languages ---------------------------------------------------------------------------------
    F("language", ("tongue",), ("How long does it take to become fluent in {tongue}?",
                                "How many years does it take an adult to speak {tongue} fluently?",
                                "Realistically, how long would it take me to become fluent in {tongue}?")),
    F("language", ("tongue",), ("What is the fastest way to learn {tongue} at home?",
                                "How can I learn {tongue} by myself without taking classes?",
                                "Is it possible to teach yourself {tongue}, and if so, how?")),
    F("language", ("tongue",), ("Is {tongue} a hard language for English speakers?",
                                "How difficult is {tongue} for a native English speaker to learn?",
                                "Why do so many English speakers find {tongue} hard to learn?")),
    F("language", ("tongue",), ("Which apps actually work for learning {tongue}?",
                                "What are the best apps to learn {tongue} on my phone?",
                                "Are there any good mobile apps for learning {tongue} from scratch?")),
    F("language", ("tongue", "tongue2"), ("Is it a bad idea to learn {tongue} and {tongue2} at the same time?",
                                          "Can I study {tongue} and {tongue2} together without mixing them up?")),
    # -- travelling and living abroad --------------------------------------------------------------
    F("travel", ("city",), ("What are the best places to visit in {city}?",
                            "What should a first-time visitor not miss in {city}?",
                            "Which places in {city} are worth seeing if I only have three days?")),
    F("travel", ("city",), ("Is {city} safe for tourists?",
                            "How safe is {city} for someone travelling alone?",
                            "Are there parts of {city} that visitors should avoid at night?")),
    F("travel", ("city",), ("What is the cheapest way to get around {city}?",
                            "How do tourists usually travel around {city} on a budget?")),
    F("living", ("city",), ("What is it like to live in {city}?",
                            "How is life in {city} for someone who just moved there?",
                            "What should I know before moving to {city}?")),
    F("living", ("city",), ("How much money do I need per month to live in {city}?",
                            "What is the monthly cost of living in {city} for a single person?",
                            "Is {city} an expensive city to live in on an average salary?")),
    F("living", ("job", "origin", "country"), (
        "How can {a_job} from {origin} move to {country}?",
        "What is the easiest way for {a_job} from {origin} to immigrate to {country}?",
        "I am {a_job} in {origin}. How do I get a work visa for {country}?")),
    F("living", ("country",), ("Is it worth doing a master's degree in {country}?",
                               "Should I do my master's in {country}?",
                               "What are the pros and cons of studying for a master's in {country}?")),
    F("living", ("city",), ("How do I make friends after moving to {city}?",
                            "What is the best way to meet new people in {city}?",
                            "Where do people in {city} go to make new friends as adults?")),
    # -- careers -----------------------------------------------------------------------------------
    F("career", ("job",), ("How do I become {a_job}?",
                           "What steps should I follow to become {a_job}?",
                           "What does it take to become {a_job}?")),
    F("career", ("job", "country"), ("What is the average salary of {a_job} in {country}?",
                                     "How much does {a_job} earn in {country}?",
                                     "How much money do {job_s} make in {country}?")),
    F("career", ("job",), ("What is a typical day like for {a_job}?",
                           "What does {a_job} actually do all day?",
                           "What is the daily routine of {a_job}?")),
    F("career", ("job",), ("Do you regret becoming {a_job}?",
                           "Are there any {job_s} who regret their career choice?",
                           "If you are {a_job}, would you choose the same career again?")),
    F("career", ("job", "job2"), ("How can I switch careers from {job} to {job2}?",
                                  "Is it possible to go from being {a_job} to working as {a_job2}?",
                                  "I work as {a_job}. How do I become {a_job2}?")),
    F("career", ("job",), ("How should I prepare for {a_job} job interview?",
                           "What are the most common interview questions for {job_s}?",
                           "What do interviewers usually ask when hiring {a_job}?")),
    F("career", (), ("How do I know when it is time to quit my job?",
                     "What are the signs that you should leave your job?",
                     "When is the right time to quit a job you don't enjoy anymore?")),
    F("career", (), ("How do I ask my manager for a raise?",
                     "What is the best way to ask for a salary increase?",
                     "How should I bring up a pay raise with my boss without sounding greedy?")),
    F("career", (), ("How do I explain a two-year gap in my resume?",
                     "What should I say in an interview about a long gap in my work history?")),
    # -- studying ----------------------------------------------------------------------------------
    F("study", ("exam",), ("How should I prepare for the {exam} in three months?",
                           "What is a good three-month study plan for the {exam}?",
                           "Can I prepare for the {exam} in 90 days, and how?")),
    F("study", ("exam",), ("What is considered a good {exam} score?",
                           "What score on the {exam} counts as good?",
                           "How high does my {exam} score need to be for a good university?")),
    F("study", ("exam",), ("Which books are best for {exam} preparation?",
                           "What books should I read to prepare for the {exam}?",
                           "Can anyone recommend study material for the {exam}?")),
    F("study", (), ("How can I concentrate better while studying?",
                    "How do I stay focused during long study sessions?",
                    "What can I do to stop getting distracted when I study?")),
    F("study", (), ("How can I improve my memory for exams?",
                    "What are some proven ways to remember what I study?",
                    "Is there a way to train your brain to retain more of what you read?")),
    F("study", (), ("Is it better to study late at night or early in the morning?",
                    "When is the best time of day to study, morning or night?")),
    # -- habits and fitness ------------------------------------------------------------------------
    F("health", (), ("How do I stop procrastinating on important work?",
                     "What are some practical ways to beat procrastination?",
                     "How can I stop putting things off until the last minute?")),
    F("health", (), ("How can I fall asleep faster at night?",
                     "What helps you fall asleep quickly when your mind is racing?",
                     "What are some tricks for falling asleep fast?")),
    F("health", (), ("How can I wake up early every morning without feeling tired?",
                     "What is the secret to waking up early consistently?",
                     "How do people train themselves to get up at 5 am?")),
    F("health", (), ("How can I become more confident when talking to people?",
                     "How do I build self-confidence in social situations?",
                     "What are some ways to feel less awkward around new people?")),
    F("health", (), ("How do I reduce the time I spend on my phone?",
                     "How can I stop checking my phone every few minutes?",
                     "What actually works for breaking a smartphone addiction?")),
    F("fitness", (), ("How can I lose weight without going to a gym?",
                      "What is a healthy way to lose weight at home?",
                      "Is it possible to lose weight with diet and home workouts only?")),
    F("fitness", ("sport",), ("Is {sport} a good way to lose weight?",
                              "Can {sport} alone help me lose weight?",
                              "How effective is {sport} for weight loss?")),
    F("fitness", ("sport",), ("How do I get started with {sport} as a complete beginner?",
                              "What should a beginner know before taking up {sport}?",
                              "What is the best way for an adult to start {sport}?")),
    F("fitness", ("sport",), ("Is it okay to do {sport} every day?",
                              "Is doing {sport} daily bad for your body?",
                              "Do I need rest days if I do {sport}?")),
    F("food", ("food",), ("Is it healthy to eat {food} every day?",
                          "What happens to your body if you eat {food} every day?",
                          "Is eating {food} daily bad for you?")),
    F("food", ("food",), ("How long does cooked {food} last in the fridge?",
                          "How many days can I keep cooked {food} in the refrigerator?",
                          "Is cooked {food} still safe to eat after four days in the fridge?")),
    F("food", ("food",), ("Does eating {food} make you gain weight?",
                          "Can {food} make you fat if you eat it at night?",
                          "Is {food} fattening?")),
    # -- music -------------------------------------------------------------------------------------
    F("music", ("instrument",), ("Is it too late to learn the {instrument} at 30?",
                                 "Can an adult in their thirties still learn to play the {instrument}?",
                                 "Am I too old to start learning the {instrument} at 30?")),
    F("music", ("instrument",), ("How long does it take an adult beginner to learn the {instrument}?",
                                 "How many hours of practice does it take to get good at the {instrument}?",
                                 "How long before a beginner can play real songs on the {instrument}?")),
    F("music", ("instrument",), ("Can I learn the {instrument} on my own using online videos?",
                                 "Is it possible to teach yourself the {instrument} from YouTube?",
                                 "Do I need a teacher to learn the {instrument}, or can I learn online?")),
    F("music", ("instrument", "instrument2"), (
        "Which is easier to learn, the {instrument} or the {instrument2}?",
        "Should a beginner learn the {instrument} or the {instrument2} first?")),
    # -- devices -----------------------------------------------------------------------------------
    F("device", ("device", "problem"), ("Why does my {device} {problem}?",
                                        "My {device} {problem_s}. How can I fix it?",
                                        "What should I do if my {device} {problem_s}?")),
    F("device", ("device",), ("How can I make my {device} battery last longer?",
                              "What are some tips to save battery on a {device}?",
                              "Which settings drain the most battery on a {device}?")),
    F("gadget", ("device",), ("How can I recover deleted photos from my {device}?",
                              "Is there any way to get back photos I deleted from my {device}?",
                              "I accidentally deleted all my photos from my {device}. Can I restore them?")),
    F("gadget", ("device",), ("What is the best {device} to buy for under 500 dollars?",
                              "Which {device} should I buy if my budget is 500 dollars?",
                              "What {device} gives the best value for around 500 dollars?")),
    # -- money -------------------------------------------------------------------------------------
    F("money", (), ("What are the best ways to save money on a small salary?",
                    "How can I save money when I don't earn much?",
                    "How do people on low incomes manage to save anything at all?")),
    F("money", (), ("How should I start investing with very little money?",
                    "What is a good way to begin investing if I only have a small amount to spare?",
                    "Is it worth investing if I can only put aside 50 dollars a month?")),
    F("money", (), ("How can I raise my credit score quickly?",
                    "What is the fastest way to improve a bad credit score?",
                    "What steps can I take this month to fix my credit score?")),
    F("money", (), ("What are some legitimate ways for a student to earn money online?",
                    "How can a college student make some extra money online?",
                    "Which online side jobs are actually worth it for students?")),
    F("money", (), ("Is buying a flat better than renting one in the long run?",
                    "Financially, does it make more sense to rent or to buy a home?",
                    "Should I keep renting or take a mortgage and buy an apartment?")),
    # -- animals and science -----------------------------------------------------------------------
    F("animals", ("animal",), ("How intelligent are {animal}?",
                               "Just how smart are {animal} compared to other animals?",
                               "Are {animal} really as clever as people say?")),
    F("animals", ("animal",), ("How do {animal} sleep?",
                               "Do {animal} sleep the same way humans do?",
                               "How many hours a day do {animal} sleep?")),
    F("animals", ("animal",), ("Is it a good idea to keep {animal} as pets?",
                               "Do {animal} make good pets?",
                               "What is it like to have {animal} as pets?")),
    F("science", (), ("Why does ice float on water instead of sinking?",
                      "How come ice floats on top of a glass of water?",
                      "Why is ice less dense than liquid water?")),
    F("science", (), ("What would happen if the Earth stopped spinning for a second?",
                      "What would happen to us if the Earth suddenly stopped rotating?")),
    F("science", (), ("What is the purpose of dreaming while we sleep?",
                      "Why does the brain produce dreams at night?",
                      "Do dreams serve any real function for the brain?")),
    F("science", (), ("What keeps a heavy passenger plane up in the air?",
                      "How does something as heavy as an airliner manage to fly?",
                      "Why don't big planes fall out of the sky?")),
    F("science", (), ("Where does the salt in the ocean come from?",
                      "Why is sea water salty when river water is not?")),
    F("science", (), ("Does physics allow travel into the past?",
                      "Is travelling back in time possible according to physics?")),
    # -- books, films, people ----------------------------------------------------------------------
    F("books", ("genre",), ("What are some must-read {genre} novels?",
                            "Which {genre} books should everyone read at least once?",
                            "What are the best {genre} novels you have ever read?")),
    F("books", ("genre",), ("What are some good {genre} movies to watch this weekend?",
                            "Can you suggest some great {genre} films?",
                            "Which {genre} movies are worth watching more than once?")),
    F("books", (), ("How can I get back into the habit of reading books?",
                    "How do I start reading again after years of not reading?",
                    "What helped you start reading regularly as an adult?")),
    F("people", (), ("How can you tell if someone likes you but is hiding it?",
                     "What are the signs that a person secretly likes you?",
                     "How do I know if my friend has a crush on me?")),
    F("people", (), ("How do I get over a breakup that happened months ago?",
                     "What helps you move on after a long relationship ends?",
                     "Why can't I stop thinking about my ex even after a year?")),
    F("people", (), ("How do I convince my parents to let me study abroad?",
                     "What can I say to persuade my parents to let me go abroad for college?")),
    F("people", (), ("How do I deal with a coworker who takes credit for my work?",
                     "What should I do when a colleague presents my ideas as their own?")),
)

# One sentence of background a Quora asker might put before the question.
CONTEXTS: dict[str, tuple[str, ...]] = {
    "coding": ("I am a mechanical engineering student with no programming background.",
               "I have been working in sales for five years and want to move into tech.",
               "I know a little HTML and CSS from building my own website.",
               "I am 35, have a family, and have never written a line of code."),
    "language": ("I am planning to move abroad next year for work.",
                 "I studied it at school for two years but forgot almost everything.",
                 "I can only give it about an hour every evening after work."),
    "travel": ("I am a student on a tight budget.",
               "It will be my first trip abroad.",
               "I will be travelling with my parents, who are both in their sixties."),
    "living": ("My company is relocating me next spring and I have never lived abroad before.",
               "I am a student on a tight budget.",
               "I have a job offer there and need to decide within two weeks."),
    "career": ("I graduated two years ago and I am still not sure about my direction.",
               "I am 29 and feel completely stuck in my current role.",
               "My parents want me to choose a stable career, but I am not sure it is right for me."),
    "study": ("I work part time, so I can only study in the evenings.",
              "My exam is in about four months and I have not started yet.",
              "I keep reading the same page again and again without remembering anything."),
    "health": ("I have tried many times before and always give up after a week or two.",
               "I am a university student living on my own for the first time.",
               "It is starting to affect my grades and my mood."),
    "fitness": ("I sit at a desk for almost ten hours a day.",
                "I have tried many times before and always give up after a week or two.",
                "I am in my early forties and not very active."),
    "food": ("I cook in bulk on Sundays to save time during the week.",
             "My doctor told me to watch my diet after my last blood test."),
    "music": ("I have never played any instrument before.",
              "I work full time and can practise only on weekends.",
              "I played a little as a child but stopped when I was twelve."),
    "device": ("It is less than a year old and still under warranty.",
               "I have already tried restarting it and updating the software.",
               "I bought it second hand from a friend a few months ago."),
    "gadget": ("My old one broke last week.",
               "I mostly use it for video calls, photos and reading the news."),
    "money": ("I earn a modest salary and live in a big city.",
              "I am 24 and just got my first full-time job.",
              "I have some savings but no experience with finance at all."),
    "animals": ("My younger brother asked me this and I could not answer.",
                "I saw a documentary about them last night."),
    "science": ("My younger brother asked me this and I could not answer.",
                "I read a short article about it, but it did not really explain much."),
    "books": ("I used to read a lot as a teenager but stopped at university.",
              "I like stories with complex characters more than fast action."),
    "people": ("I am quite shy and it takes me a long time to open up.",
               "I am 22 and still live with my family."),
}
CONTEXT_RATE = 0.13          # share of questions with background
LONG_SHARE = 0.3             # of those, the share with two sentences of it (the long tail)
LOWERCASE_RATE = 0.05        # share written all in lower case, as some askers do
NO_MARK_RATE = 0.04          # share without the final question mark


def _slot_base(name: str) -> str:
    return name.rstrip("2")


def _article(word: str) -> str:
    return "an" if word.lower().startswith(_AN_WORDS) else "a"


def draw_fill(rng: random.Random, slots: tuple[str, ...], keep: dict | None = None) -> dict:
    """Values for a family's slots (distinct values for "x" and "x2"); `keep` fixes some of them."""
    fill = dict(keep or {})
    for name in slots:
        if name in fill:
            continue
        taken = {fill.get(other) for other in slots if _slot_base(other) == _slot_base(name)}
        fill[name] = rng.choice([v for v in SLOTS[_slot_base(name)] if v not in taken])
    return fill


def render(form: str, fill: dict) -> str:
    """A phrasing with its slots filled: {x} the value, {x_s} its second form, {a_x} with an article."""
    words = {}
    for name, value in fill.items():
        first, second = value if isinstance(value, tuple) else (value, value)
        words[name], words[f"{name}_s"], words[f"a_{name}"] = first, second, f"{_article(first)} {first}"
    text = form.format(**words)
    return text[0].upper() + text[1:]


def _dress(rng: random.Random, family: Family, text: str) -> str:
    """Add a background sentence or an asker's habits (lower case, no question mark) now and then."""
    if rng.random() < CONTEXT_RATE:
        count = 2 if rng.random() < LONG_SHARE else 1
        text = " ".join([*rng.sample(CONTEXTS[family.area], count), text])
    if rng.random() < LOWERCASE_RATE:
        text = text.lower()
    if rng.random() < NO_MARK_RATE and text.endswith("?"):
        text = text[:-1]
    return text


# Small rewordings that keep a question's meaning: the near-identical duplicates QQP is full of.
REWORDINGS = (("How can I ", "How do I "), ("How do I ", "How can I "), ("What are some ", "What are the "),
              ("What are the best ", "What are some good "), ("What is the best way to ", "How can I best "),
              ("Is it ", "Would it be "), ("Which ", "What "), ("What is ", "What's "), ("How should ", "How do "),
              (" really ", " actually "), (" actually ", " really "), (" quickly", " fast"),
              ("Can I ", "Is it possible to "), (" without ", " with no "))


def reword(rng: random.Random, text: str) -> str | None:
    """`text` with one meaning-keeping rewording, or None when none applies."""
    options = [(old, new) for old, new in REWORDINGS if old in text]
    if not options:
        return None
    old, new = rng.choice(options)
    return text.replace(old, new, 1)


def duplicate_pair(rng: random.Random) -> tuple[str, str]:
    """Two phrasings of one intent with the same words: two of the family's forms, or (a third of the
    time, where one applies) one form and a light rewording of it."""
    family = rng.choice(FAMILIES)
    fill = draw_fill(rng, family.slots)
    first, second = rng.sample(family.forms, 2)
    first, second = render(first, fill), render(second, fill)
    if rng.random() < 0.35:
        second = reword(rng, first) or second
    return _dress(rng, family, first), _dress(rng, family, second)


def _other_fill(rng: random.Random, family: Family, fill: dict) -> dict:
    """The same family's slots with one value changed: "learn Python" against "learn Go"."""
    changed = rng.choice(family.slots)
    kept = {name: value for name, value in fill.items() if name != changed}
    while True:
        other = draw_fill(rng, family.slots, kept)
        if other[changed] != fill[changed]:
            return other


def _sibling(rng: random.Random, family: Family) -> Family:
    """Another family of the same area, preferring one that shares a slot."""
    same_area = [f for f in FAMILIES if f.area == family.area and f is not family]
    sharing = [f for f in same_area if set(f.slots) & set(family.slots)]
    return rng.choice(sharing or same_area)


def different_pair(rng: random.Random) -> tuple[str, str]:
    """Two questions that are not duplicates, usually on the same topic with many shared words."""
    family = rng.choice(FAMILIES)
    fill = draw_fill(rng, family.slots)
    kind = rng.random()
    if kind < 0.5 and family.slots:                      # same intent, another value
        other_family, other_fill = family, _other_fill(rng, family, fill)
    elif kind < 0.92:                                    # same area (and values), another intent
        other_family = _sibling(rng, family)
        other_fill = draw_fill(rng, other_family.slots, {k: v for k, v in fill.items()
                                                         if k in other_family.slots})
    else:                                                # unrelated
        other_family = rng.choice([f for f in FAMILIES if f.area != family.area])
        other_fill = draw_fill(rng, other_family.slots)
    form = rng.choice(family.forms)
    # the same intent mostly in the same words: "learn Python" against "learn Go"
    other_form = form if other_family is family and rng.random() < 0.7 else rng.choice(other_family.forms)
    return _dress(rng, family, render(form, fill)), _dress(rng, other_family, render(other_form, other_fill))
