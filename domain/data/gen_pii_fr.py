#!/usr/bin/env python3
"""Generates domain/data/pii-fr-generated.jsonl: French call utterances with personal data
in the forms speech-to-text produces, and look-alikes that are not personal data.

The hand-written cases are in pii-fr.jsonl; these add volume and the value forms at
random (IBANs of several countries with their mod-97 check, Luhn-valid card numbers,
NIRs with their key, phones, addresses, birth dates), each written in one of several
ways: groups, one block, dashes, digit by digit, pairs or groups read in words. The
number words come from this file's own French speller, independent of the Rust parser.

Deterministic (seeded): `python3 domain/data/gen_pii_fr.py` rewrites the same file.
"""

import json
import os
import random

RNG = random.Random(13)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pii-fr-generated.jsonl")

UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf",
         "dix", "onze", "douze", "treize", "quatorze", "quinze", "seize"]
TENS = {20: "vingt", 30: "trente", 40: "quarante", 50: "cinquante", 60: "soixante"}


def below_100(n):
    if n <= 16:
        return UNITS[n]
    if n < 20:
        return "dix-" + UNITS[n - 10]
    if n < 70:
        tens, unit = n - n % 10, n % 10
        if unit == 0:
            return TENS[tens]
        if unit == 1:
            return TENS[tens] + " et un"
        return TENS[tens] + "-" + UNITS[unit]
    if n < 80:
        return "soixante et onze" if n == 71 else "soixante-" + below_100(n - 60)
    if n == 80:
        return "quatre-vingts"
    return "quatre-vingt-" + below_100(n - 80)


def words(n):
    """French words of 0 <= n < 10000."""
    if n < 100:
        return below_100(n)
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "cent" if hundreds == 1 else UNITS[hundreds] + (" cents" if rest == 0 else " cent")
        return head if rest == 0 else head + " " + below_100(rest)
    thousands, rest = divmod(n, 1000)
    head = "mille" if thousands == 1 else UNITS[thousands] + " mille"
    return head if rest == 0 else head + " " + words(rest)


def digits(n):
    return "".join(RNG.choice("0123456789") for _ in range(n))


def mod97_check(country, bban):
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return "%02d" % (98 - number % 97)


def iban_ok(iban):
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def luhn_ok(number):
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def luhn_complete(prefix):
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))


def nir_key(body):
    number = int(body.replace("2A", "19").replace("2B", "18"))
    return "%02d" % (97 - number % 97)


BBAN_LENGTHS = {"FR": 23, "DE": 18, "BE": 12, "ES": 20, "IT": 23, "LU": 16, "PT": 21, "CH": 17}


def new_iban():
    country = RNG.choice(["FR"] * 6 + list(BBAN_LENGTHS))
    bban = digits(BBAN_LENGTHS[country])
    if country == "IT":
        bban = RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + bban[1:]
    return country + mod97_check(country, bban) + bban


def groups(s, size=4, sep=" "):
    return sep.join(s[i:i + size] for i in range(0, len(s), size))


def spoken_pairs(s):
    """Digits read in pairs as numbers ("06" is "zéro six", "45" "quarante-cinq"),
    a last single digit as itself, pairs separated by commas or spaces."""
    parts = []
    for i in range(0, len(s), 2):
        pair = s[i:i + 2]
        if len(pair) == 1:
            parts.append(UNITS[int(pair)])
        elif pair[0] == "0":
            parts.append("zéro " + UNITS[int(pair[1])])
        else:
            parts.append(below_100(int(pair)))
    return RNG.choice([", ", ", ", " "]).join(parts)


def spoken_digits(s):
    return RNG.choice([" ", ", "]).join(UNITS[int(c)] for c in s)


def iban_form(iban):
    country, rest = iban[:2], iban[2:]
    forms = [
        groups(iban),
        groups(iban),
        groups(iban).lower(),
        groups(iban, sep="-"),
        iban,
        " ".join(country) + " " + " ".join(rest),
        " ".join(country) + " " + groups(rest, 2),
    ]
    if rest.isdigit():
        forms.append(" ".join(country) + " " + spoken_pairs(rest))
    return RNG.choice(forms)


def card_form(card):
    return RNG.choice([groups(card), groups(card), card, groups(card, sep="-"),
                       spoken_digits(card), spoken_pairs(card), " ".join(card)])


def new_card():
    prefix = RNG.choice(["4970", "4539", "4012", "5130", "5412", "2221", "6011", "3566"])
    return luhn_complete(prefix + digits(11))


def new_nir():
    department = RNG.choice(["%02d" % RNG.randint(1, 95)] * 9 + ["2A", "2B"])
    body = (RNG.choice("12") + "%02d" % RNG.randint(40, 99) + "%02d" % RNG.randint(1, 12)
            + department + digits(3) + "%03d" % RNG.randint(1, 999))
    return body + nir_key(body)


def nir_form(nir):
    parts = [nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]]
    forms = [" ".join(parts), " ".join(parts), nir, " ".join(parts[:-1]) + " clé " + parts[-1]]
    if nir[5:7].isdigit():
        spoken = [words(int(p)) if not p.startswith("0") else " ".join(UNITS[int(c)] for c in p)
                  for p in parts]
        forms.append(", ".join(spoken))
    return RNG.choice(forms)


def new_phone():
    return "0" + RNG.choice("1234567999") + digits(8)


def phone_form(phone):
    pairs = [phone[i:i + 2] for i in range(0, 10, 2)]
    return RNG.choice([
        " ".join(pairs), " ".join(pairs), ".".join(pairs), phone, "-".join(pairs),
        "+33 " + phone[1] + " " + " ".join(pairs[1:]),
        "0033 " + phone[1] + " " + " ".join(pairs[1:]),
        spoken_pairs(phone),
    ])


FIRST = ["jean", "marie", "pierre", "sophie", "luc", "nathalie", "karim", "ines", "thomas",
         "camille", "francois", "helene", "yann", "aurelie", "mehdi", "chloe"]
LAST = ["dupont", "martin", "bernard", "petit", "durand", "leroy", "moreau", "simon",
        "laurent", "lefebvre", "michel", "garcia", "roux", "fontaine", "benali", "nguyen"]
DOMAINS = [("gmail", "com"), ("orange", "fr"), ("free", "fr"), ("laposte", "net"),
           ("hotmail", "fr"), ("yahoo", "fr"), ("outlook", "com"), ("sfr", "fr"),
           ("wanadoo", "fr"), ("icloud", "com")]


def email_form():
    first, last = RNG.choice(FIRST), RNG.choice(LAST)
    host, tld = RNG.choice(DOMAINS)
    number = RNG.choice(["", "", "", str(RNG.randint(1, 99))])
    if RNG.random() < 0.45:
        sep = RNG.choice([".", "_", "-", "."])
        return f"{first}{sep}{last}{number}@{host}.{tld}"
    spoken_sep = RNG.choice(["point", "tiret", "tiret bas", "point"])
    spoken_number = (" " + words(int(number))) if number else ""
    return f"{first} {spoken_sep} {last}{spoken_number} {RNG.choice(['arobase', 'arobase', 'arrobase'])} {host} point {tld}"


MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre"]


def birth_form(day, month, year):
    return RNG.choice([
        "%02d/%02d/%d" % (day, month, year),
        "%02d/%02d/%d" % (day, month, year),
        "%02d-%02d-%d" % (day, month, year),
        "%d %s %d" % (day, MONTHS[month - 1], year),
        "%d %s %d" % (day, MONTHS[month - 1], year),
        "%s %s %s" % ("premier" if day == 1 else words(day), MONTHS[month - 1], words(year)),
        "%d %s %02d" % (day, MONTHS[month - 1], year % 100),
    ])


CARRIERS = {
    "IBAN": ["alors mon IBAN c'est {}", "le RIB c'est {} voilà", "{} c'est le compte joint",
             "oui je vous le donne, {}, c'est pour le prélèvement", "euh attendez, {}"],
    "CARD": ["la carte c'est {}", "mon numéro de carte bancaire, {}", "{} et le cryptogramme au dos",
             "c'est une Visa, {}", "alors la carte, {}, elle est à mon nom"],
    "NIR": ["mon numéro de sécu c'est {}", "sécurité sociale : {}", "le numéro de sécurité sociale de mon mari, {}",
            "{} c'est sur la carte vitale"],
    "PHONE": ["vous pouvez me joindre au {}", "mon portable c'est le {}", "rappelez-moi au {} demain matin",
              "{} c'est mon numéro", "le numéro de ma fille c'est le {}"],
    "EMAIL": ["mon mail c'est {}", "envoyez-le à {}", "l'adresse c'est {} voilà", "{} pour le devis"],
    "BIRTH_DATE": ["je suis né le {}", "ma date de naissance, {}", "née le {}", "date de naissance : {}",
                   "mon fils est né le {}"],
}


def positive(kind):
    if kind == "IBAN":
        value = iban_form(new_iban())
    elif kind == "CARD":
        value = card_form(new_card())
    elif kind == "NIR":
        value = nir_form(new_nir())
    elif kind == "PHONE":
        value = phone_form(new_phone())
    elif kind == "EMAIL":
        value = email_form()
    else:
        year = RNG.randint(1935, 2008)
        value = birth_form(RNG.randint(1, 28), RNG.randint(1, 12), year)
    return RNG.choice(CARRIERS[kind]).format(value), [{"kind": kind, "text": value}]


def bad_iban():
    iban = new_iban()
    while True:
        i = RNG.randint(4, len(iban) - 1)
        if iban[i].isdigit():
            wrong = iban[:i] + str((int(iban[i]) + RNG.randint(1, 9)) % 10) + iban[i + 1:]
            if not iban_ok(wrong):
                return groups(wrong)


def bad_card():
    while True:
        number = RNG.choice("23456") + digits(15)
        if not luhn_ok(number):
            return groups(number)


def bad_nir():
    nir = new_nir()
    key = "%02d" % ((int(nir[13:]) + RNG.randint(1, 50)) % 97 + 1)
    return " ".join([nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], key])


def negative():
    kind = RNG.randrange(10)
    if kind == 0:
        return RNG.choice(["c'est {} mais je crois que je me suis trompé", "j'ai noté {} sur un papier, c'est pas le bon"]).format(bad_iban())
    if kind == 1:
        return RNG.choice(["le numéro de commande c'est le {}", "votre référence de dossier : {}",
                           "j'ai un ticket {}", "il est noté {} sur le bon"]).format(bad_card())
    if kind == 2:
        return "le numéro de sécu, {}, non attendez c'est faux".format(bad_nir())
    if kind == 3:
        euros, cents = RNG.randint(9, 1999), RNG.randint(0, 99)
        return RNG.choice(["ça vous fait {},{:02d} € par mois", "le total est de {} euros {:02d}",
                           "soit {},{:02d} euros TTC"]).format(euros, cents)
    if kind == 4:
        return RNG.choice(["c'est engagé sur {} mois", "vous avez {} jours pour changer d'avis",
                           "le délai est de {} semaines"]).format(RNG.randint(2, 48))
    if kind == 5:
        day, month, year = RNG.randint(1, 28), RNG.randint(1, 12), RNG.randint(2024, 2027)
        template = RNG.choice(["le contrat démarre le {}", "date d'effet au {}", "le prélèvement commence le {}",
                               "je vous rappelle le {}", "le rendez-vous est le {}"])
        return template.format(RNG.choice(["%02d/%02d/%d" % (day, month, year),
                                           "%d %s %d" % (day, MONTHS[month - 1], year),
                                           "%d %s" % (day, MONTHS[month - 1])]))
    if kind == 6:
        return "j'habite {} rue {}, {:05d} {}".format(
            RNG.randint(1, 120), RNG.choice(["de la Paix", "Victor Hugo", "des Écoles", "du Moulin"]),
            RNG.choice([75011, 69003, 13008, 33000, 59000, 31400, 44000, 67000]),
            RNG.choice(["Paris", "Lyon", "Marseille", "Bordeaux", "Lille"]))
    if kind == 7:
        return "la commande {} part demain".format(RNG.choice("123456789") + digits(RNG.randint(5, 11)))
    if kind == 8:
        return RNG.choice(["on a fait le point la semaine dernière", "c'est un point important pour nous",
                           "il y a un tiret entre les deux noms"])
    return "je suis client depuis {} et j'ai {} ans".format(RNG.randint(1990, 2023), RNG.randint(20, 85))


def main():
    cases = []
    kinds = ["IBAN", "CARD", "NIR", "PHONE", "EMAIL", "BIRTH_DATE"]
    for n in range(150):
        if n % 4 == 3:
            text, pii = negative(), []
        else:
            text, pii = positive(kinds[n % len(kinds)])
        cases.append({"id": "g%03d" % (n + 1), "text": text, "pii": pii})
    with open(OUT, "w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases written to {OUT}")


if __name__ == "__main__":
    main()
