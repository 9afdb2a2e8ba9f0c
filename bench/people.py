"""Deterministic labelled people for the record-linkage benchmark and tests (stdlib only).

Each person yields 1-4 source records with the noise real sources carry: one-letter typos,
nicknames, given and family names swapped, missing fields, moves, new phones, new email
addresses, email typos, birth dates with day and month exchanged. About a fifth of people live
in a household with others who share its address and often its phone and family name (and
sometimes an email domain); a few households hold twins (same family name, address and birth
date, different given names). Those are the pairs a matcher must keep apart.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate, combinations

from cdlm.matching.features import match_record
from cdlm.matching.nicknames import NICKNAMES


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN_FEMALE = _words(
    "Olivia Amelia Isla Ava Emily Sophia Grace Mia Poppy Ella Lily Evie Isabella Sophie Ivy "
    "Freya Harper Willow Charlotte Jessica Elizabeth Margaret Catherine Susan Patricia "
    "Deborah Jennifer Rebecca Victoria Abigail Barbara Christine Jacqueline Sarah Emma Laura "
    "Hannah Lucy Chloe Rachel Natalie Amy Joanne Karen Helen Claire Nicola Michelle Julie "
    "Gemma Louise Samantha Kelly Zoe Alice Eleanor Florence Matilda Rosie Daisy Phoebe Esme "
    "Harriet Imogen Jasmine Megan Naomi Beatrice Clara Edith Frances Georgia Heidi Iris Joan "
    "Kathleen Linda Maria Nora Pauline Ruth Sheila Tracey Ursula Vanessa Wendy Yvonne Anna "
    "Bethany Caroline Diane Erin Fiona Gillian Hazel Irene Janet Lorraine Maureen"
)
GIVEN_MALE = _words(
    "Oliver George Noah Arthur Harry Leo Muhammad Jack Charlie Oscar Jacob Henry Thomas "
    "Freddie Alfie Theo William Theodore Archie Joshua Alexander James Isaac Edward Lucas "
    "Robert John Michael David Richard Stephen Andrew Anthony Benjamin Charles Christopher "
    "Daniel Donald Frederick Gregory Jonathan Joseph Kenneth Lawrence Matthew Nicholas Peter "
    "Philip Samuel Timothy Mark Paul Gary Kevin Simon Ian Neil Adam Ryan Luke Nathan Jamie "
    "Callum Connor Dylan Ethan Finley Gabriel Harvey Jake Kai Liam Mason Max Reuben Ronnie "
    "Sebastian Toby Tyler Zachary Alan Brian Colin Derek Eric Francis Graham Howard Keith "
    "Leonard Martin Norman Owen Raymond Roger Stanley Trevor Victor Walter"
)
FAMILY = _words(
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan "
    "Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell "
    "Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan "
    "Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb "
    "Rogers Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes "
    "Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham "
    "Pearson Ahmed Fletcher Walsh Kaur Gibson Howard Andrews Stewart Elliott Reynolds Saunders "
    "Payne Fox Ford Pearce Day Brooks West Lawrence Cole Atkinson Bradley Spencer Gill Dawson "
    "Ball Burton O'Brien Watts Rose Booth Perry Ryan Grant Wells Armstrong Francis Rees Hayes "
    "Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page Marsh Riley Dunn "
    "Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton Oliver "
    "Reed Kennedy Williamson Bird Gardner Shah Dean Lane Cooke Bates Henderson Parry Burgess "
    "Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren Nicholls Hamilton "
    "Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins O'Connor Harper Coleman Watkins "
    "Moss McCarthy Chambers O'Neill Griffin Sharp Hardy Wheeler Potter Osborne Johnston Gordon "
    "Doyle Wallace George Jordan Hutchinson Rowe Burke May Pritchard Gilbert Willis Higgins "
    "Read Miles Stevenson Stephenson Hammond Arnold Buckley Walters Hewitt Barber Nelson "
    "Slater Austin Sullivan Whitehead Mann Frost Lambert Stephens Blake Akhtar Lynch Goodwin "
    "Barton Woodward Thomson Cunningham Quinn Barnett Baxter Bibi Clayton Nash Greenwood "
    "Jennings Holt Kemp Poole Gallagher Bond Stokes Tucker Davidson Fowler Heath Norman "
    "Middleton Lawson Banks French Stanley Jarvis Gibbs Ferguson Hayward Carroll Farrell "
    "Nowak Kowalski Müller Schmidt García López Fernández Núñez Rossi Russo Dubois Lefèvre "
    "Nguyen Tran Kim Park Chen Wang Zhang Liu Yilmaz Kaya Öztürk Silva Santos Pereira"
)
STREETS = _words(
    "High Station Church Park Victoria Green Manor Kings Queens Mill Windsor Albert "
    "Grange Chester Springfield Highfield Cedar Elm Oak Beech Ash Willow Maple Orchard "
    "Meadow Brook River Bridge Castle Abbey Priory School Hill Forest Heath Moor Lake "
    "Westfield Eastfield Northgate Southgate Kingsway Queensway Broadway Market New Old "
    "Main North South East West Cromwell Nelson Wellington Marlborough Clarence York "
    "Lancaster Warwick Stafford Derby Cambridge Oxford Bath Hampton Richmond Kensington "
    "Chelsea Regent Portland Clifton Belmont Fairfield Greenway Hollybush Ivy Laurel Rose "
    "Primrose Sycamore Hawthorn Rowan Linden Poplar Chestnut Walnut Birch Pine Holly Juniper"
)
STREET_TYPES = (
    ("Street", "St"), ("Road", "Rd"), ("Avenue", "Ave"), ("Lane", "Ln"), ("Drive", "Dr"),
    ("Close", "Cl"), ("Gardens", "Gdns"), ("Crescent", "Cres"), ("Way", "Way"),
    ("Grove", "Gr"), ("Place", "Pl"), ("Terrace", "Ter"),
)  # fmt: skip
CITIES = (
    ("London", "E"), ("London", "N"), ("London", "SE"), ("London", "SW"), ("London", "W"),
    ("Birmingham", "B"), ("Manchester", "M"), ("Leeds", "LS"), ("Liverpool", "L"),
    ("Sheffield", "S"), ("Bristol", "BS"), ("Newcastle upon Tyne", "NE"), ("Nottingham", "NG"),
    ("Leicester", "LE"), ("Coventry", "CV"), ("Bradford", "BD"), ("Cardiff", "CF"),
    ("Edinburgh", "EH"), ("Glasgow", "G"), ("Belfast", "BT"), ("Southampton", "SO"),
    ("Portsmouth", "PO"), ("Brighton", "BN"), ("Plymouth", "PL"), ("Reading", "RG"),
    ("Oxford", "OX"), ("Cambridge", "CB"), ("York", "YO"), ("Norwich", "NR"), ("Exeter", "EX"),
    ("Bath", "BA"), ("St Albans", "AL"), ("Milton Keynes", "MK"), ("Derby", "DE"),
    ("Stoke-on-Trent", "ST"), ("Wolverhampton", "WV"), ("Sunderland", "SR"), ("Hull", "HU"),
    ("Preston", "PR"), ("Swansea", "SA"), ("Aberdeen", "AB"), ("Dundee", "DD"),
)  # fmt: skip
DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "hotmail.co.uk", "hotmail.com", "yahoo.co.uk",
    "outlook.com", "icloud.com", "btinternet.com", "live.co.uk", "aol.com", "sky.com",
    "protonmail.com", "virginmedia.com", "talktalk.net",
)  # fmt: skip
UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
#: Noise of a person's later records (probabilities, each drawn independently).
NOISE = {
    "given_typo": 0.05, "nickname": 0.12, "given_initial": 0.02, "family_typo": 0.05,
    "swap_names": 0.02, "email_missing": 0.15, "email_new": 0.10, "email_typo": 0.05,
    "phone_missing": 0.20, "phone_new": 0.12, "birth_missing": 0.20, "birth_transposed": 0.05,
    "address_missing": 0.10, "moved": 0.12, "street_short": 0.25, "street_typo": 0.03,
    "given_missing": 0.01, "family_missing": 0.01,
}  # fmt: skip
HOUSEHOLD_SHARE = 0.2  # of people living with others
TWIN_SHARE = 0.05  # of households holding twins
RECORD_COUNTS = ((1, 0.40), (2, 0.32), (3, 0.18), (4, 0.10))
SOURCES = (("crm", 0.4), ("shop", 0.3), ("", 0.3))  # "" brings no external id
_NICKNAMES_OF: dict[str, list[str]] = {}
for _nick, _name in NICKNAMES.items():
    _NICKNAMES_OF.setdefault(_name, []).append(_nick)


@dataclass(frozen=True)
class LabelledRecord:
    """A source record and the person it describes (``person``: the truth label)."""

    record_id: str
    person: int
    profile: dict[str, str]
    external_ids: tuple[str, ...] = ()
    household: int | None = None


@dataclass
class _Address:
    line1: str
    city: str
    postal_code: str


@dataclass
class _Person:
    number: int
    given: str
    family: str
    born: date
    email: str
    phone: str
    address: _Address
    household: int | None = None
    crm: str = ""
    shop: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _frequencies(count: int, offset: int) -> list[float]:
    """Cumulative weights of a long-tailed name distribution (1 / (rank + offset))."""
    return list(accumulate(1 / (rank + offset) for rank in range(count)))


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.female_weights = _frequencies(len(GIVEN_FEMALE), 5)
        self.male_weights = _frequencies(len(GIVEN_MALE), 5)
        self.family_weights = _frequencies(len(FAMILY), 30)
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    def given(self) -> str:
        if self.rng.random() < 0.5:
            return self.rng.choices(GIVEN_FEMALE, cum_weights=self.female_weights)[0]
        return self.rng.choices(GIVEN_MALE, cum_weights=self.male_weights)[0]

    def family(self) -> str:
        return self.rng.choices(FAMILY, cum_weights=self.family_weights)[0]

    def born(self, low: int = 18, high: int = 85) -> date:
        return date(2026, 6, 1) - timedelta(days=self.rng.randrange(low * 365, high * 365))

    def phone(self) -> str:
        while True:
            number = f"+447{self.rng.randrange(400, 600)}{self.rng.randrange(10**6):06d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def address(self) -> _Address:
        rng = self.rng
        city_index = rng.randrange(len(CITIES))
        city, area = CITIES[city_index]
        street_index = rng.randrange(len(STREETS) * len(STREET_TYPES))
        name, kind = divmod(street_index, len(STREET_TYPES))
        number = rng.randrange(1, 220)
        line1 = f"{number} {STREETS[name]} {STREET_TYPES[kind][0]}"
        if rng.random() < 0.15:
            line1 = f"Flat {rng.randrange(1, 30)}, {line1}"
        return _Address(line1, city, _postcode(area, city_index, street_index, number // 40))

    def email(self, given: str, family: str, domain: str | None = None) -> str:
        rng = self.rng
        g, f = _ascii(given).lower(), _ascii(family).lower().replace("'", "")
        forms = (f"{g}.{f}", f"{g}{f}", f"{g[0]}{f}", f"{g}_{f}", f"{f}.{g}", f"{g}{f[0]}")
        local = rng.choice(forms)
        if rng.random() < 0.5:
            local += str(rng.randrange(1, 99))
        address = f"{local}@{domain or rng.choice(DOMAINS)}"
        while address in self.emails:
            address = f"{local}{rng.randrange(100, 9999)}@{domain or rng.choice(DOMAINS)}"
        self.emails.add(address)
        return address

    def person(
        self,
        number: int,
        *,
        given: str | None = None,
        family: str | None = None,
        born: date | None = None,
        address: _Address | None = None,
        domain: str | None = None,
        household: int | None = None,
    ) -> _Person:
        given = given or self.given()
        family = family or self.family()
        return _Person(
            number=number,
            given=given,
            family=family,
            born=born or self.born(),
            email=self.email(given, family, domain),
            phone=self.phone(),
            address=address or self.address(),
            household=household,
        )


def _postcode(area: str, city: int, street: int, block: int) -> str:
    """The postcode of a block of about 40 house numbers of one street: neighbours share it."""
    code = random.Random(f"{city}-{street}-{block}")
    unit = "".join(code.choice(UNIT_LETTERS) for _ in range(2))
    return f"{area}{code.randrange(1, 30)} {code.randrange(10)}{unit}"


def _ascii(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


def _typo(rng: random.Random, word: str) -> str:
    """One character deleted, inserted, replaced or two neighbours exchanged."""
    if len(word) < 3:
        return word
    at = rng.randrange(1, len(word) - 1)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    kind = rng.randrange(4)
    if kind == 0:
        return word[:at] + word[at + 1 :]
    if kind == 1:
        return word[:at] + letter + word[at:]
    if kind == 2:
        return word[:at] + letter + word[at + 1 :]
    return word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]


def _different_given(gen: _Generator, taken: Iterable[str]) -> str:
    """A given name that is none of ``taken`` nor a nickname of one (it may share an
    initial: Daniel and David)."""
    used = {NICKNAMES.get(name.lower(), name.lower()) for name in taken}
    while True:
        name = gen.given()
        if NICKNAMES.get(name.lower(), name.lower()) not in used:
            return name


def _people(gen: _Generator, n: int) -> list[_Person]:
    people: list[_Person] = []
    households = 0
    while len(people) < n:
        number = len(people)
        rng = gen.rng
        if rng.random() >= HOUSEHOLD_SHARE / 2.5 or n - number < 2:
            people.append(gen.person(number))
            continue
        households += 1
        size = min(rng.choice((2, 2, 2, 3, 3, 4)), n - number)
        first = gen.person(number, household=households)
        members = [first]
        phone = gen.phone()
        twins = rng.random() < TWIN_SHARE
        for index in range(1, size):
            family = first.family if rng.random() < 0.85 else gen.family()
            if twins and index == 1:
                born = first.born
            elif index == 1:
                born = first.born + timedelta(days=rng.randrange(-2000, 2000))
            else:
                born = first.born + timedelta(days=rng.randrange(20 * 365, 35 * 365))
            members.append(
                gen.person(
                    number + index,
                    given=_different_given(gen, [m.given for m in members]),
                    family=family,
                    born=min(born, date(2008, 1, 1)),
                    address=first.address,
                    domain=first.email.split("@")[1] if rng.random() < 0.5 else None,
                    household=households,
                )
            )
        for member in members:
            member.extra["home_phone"] = phone
        people.extend(members)
    for person in people:
        person.crm = f"crm:{100000 + person.number}"
        person.shop = f"shop:{900000 + person.number}"
    return people


def _profile(gen: _Generator, person: _Person, later: bool) -> dict[str, str]:
    rng = gen.rng

    def chance(name: str) -> bool:
        return later and rng.random() < NOISE[name]

    given, family = person.given, person.family
    if chance("nickname") and given.lower() in _NICKNAMES_OF:
        given = rng.choice(_NICKNAMES_OF[given.lower()]).title()
    if chance("given_typo"):
        given = _typo(rng, given)
    if chance("given_initial"):
        given = given[0]
    if chance("family_typo"):
        family = _typo(rng, family)
    if chance("swap_names"):
        given, family = family, given
    profile = {"given_name": given, "family_name": family, "country": "GB"}
    if chance("given_missing"):
        del profile["given_name"]
    if chance("family_missing"):
        del profile["family_name"]
    email = person.email
    if chance("email_new"):
        email = gen.email(person.given, person.family)
    if chance("email_typo"):
        local, _, domain = email.partition("@")
        email = f"{_typo(rng, local)}@{domain}"
    if not chance("email_missing"):
        profile["email"] = email
    phone = person.extra.get("home_phone") if rng.random() < 0.6 else None
    phone = phone or person.phone
    if chance("phone_new"):
        phone = gen.phone()
    if not chance("phone_missing"):
        profile["phone"] = phone
    born = person.born
    if chance("birth_transposed") and born.day <= 12 and born.day != born.month:
        born = date(born.year, born.day, born.month)
    if not chance("birth_missing"):
        profile["birth_date"] = born.isoformat()
    address = gen.address() if chance("moved") else person.address
    if not chance("address_missing"):
        line1 = address.line1
        if chance("street_short"):
            for long, short in STREET_TYPES:
                line1 = line1.replace(f" {long}", f" {short}")
        if chance("street_typo"):
            words = line1.split(" ")
            at = max(range(len(words)), key=lambda index: len(words[index]))
            words[at] = _typo(rng, words[at])
            line1 = " ".join(words)
        profile.update(address_line1=line1, city=address.city, postal_code=address.postal_code)
        if later and rng.random() < 0.2:
            profile["postal_code"] = address.postal_code.replace(" ", "").lower()
    return profile


def people(n: int, seed: int = 7) -> list[LabelledRecord]:
    """The source records of ``n`` people (1-4 each), shuffled, deterministic for ``seed``."""
    gen = _Generator(seed)
    records: list[LabelledRecord] = []
    for person in _people(gen, n):
        count = gen.rng.choices([c for c, _ in RECORD_COUNTS], [w for _, w in RECORD_COUNTS])[0]
        for index in range(count):
            source = gen.rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
            ids = (getattr(person, source),) if source else ()
            records.append(
                LabelledRecord(
                    record_id=f"r{person.number:07d}-{index}",
                    person=person.number,
                    profile=_profile(gen, person, later=index > 0),
                    external_ids=ids,
                    household=person.household,
                )
            )
    gen.rng.shuffle(records)
    return records


def _pairs(groups: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    return {
        (a, b) if a < b else (b, a) for group in groups for a, b in combinations(group, 2) if a != b
    }


def true_pairs(records: Sequence[LabelledRecord]) -> set[tuple[str, str]]:
    """Every pair of record ids (smaller first) describing the same person."""
    by_person: dict[int, list[str]] = {}
    for record in records:
        by_person.setdefault(record.person, []).append(record.record_id)
    return _pairs(by_person.values())


def household_pairs(records: Sequence[LabelledRecord]) -> set[tuple[str, str]]:
    """Pairs of records of different people sharing a phone or a postal address."""
    groups: dict[tuple[str, ...], list[LabelledRecord]] = {}
    for record in records:
        features = match_record(record.record_id, record.profile)
        if features.phone:
            groups.setdefault(("phone", features.phone), []).append(record)
        if features.postal_code and features.street_tokens:
            key = ("address", features.postal_code, *features.street_tokens)
            groups.setdefault(key, []).append(record)
    found: set[tuple[str, str]] = set()
    for group in groups.values():
        for a, b in combinations(group, 2):
            if a.person != b.person:
                low, high = sorted((a.record_id, b.record_id))
                found.add((low, high))
    return found
