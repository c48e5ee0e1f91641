"""Write strings to read as times: every date, time and offset form Prefect's DateTime
fields might take or refuse (pydantic's, pendulum's ISO 8601 and "common" forms, unix
times, words, whitespace, digits of other scripts), valid and not, and random mutations
of them; with --durations, strings to read as durations instead (ISO 8601 durations,
"1 day, 01:00:00", "01:30:00" and their near misses). No Prefect import;
`prefect_time_text.py` answers them.

    python tests/oracle/time_text_cases.py [--durations] SEED N OUT.jsonl   (one {"s": text} per line)
"""
from __future__ import annotations

import json
import random
import sys

YEARS = ["0000", "0001", "0099", "1600", "1900", "1969", "1970", "2000", "2023", "2024", "2026", "2100", "9998", "9999"]
SEPARATORS = ["T"] * 4 + [" "] * 3 + ["t", "_", "x", "-", "Z", "/", "\t", "\u00a0", ""]
OFFSETS = ["", "Z", "z", "+01", "-01", "+0100", "+01:00", "-05:30", "+01:", "\u221201:00", "+01:60", "+0160", "+00:99",
           "+01:00:30", "+010030", "+01.5", "+23:59", "+24:00", "+2400", "-24:00", "-25:00", "+25:00", "-00:00", "+14:00",
           " Z", "+1", "+001"]
WORDS = ["now", "Now", "NOW", "today", "tomorrow", "yesterday", "", " ", "T", "Z", "P1D", "PT1H", "2024-11-05/P1D",
         "2024-11-05T10:10/2024-11-06T10:10", "Tue, 05 Nov 2024 10:10:10 +0000", "11/05/2024", "5 Nov 2024", "2024-11-05 UTC",
         "2024-11-05T10:10:10 Europe/Paris", "20241105\n", "2024\n", "2024-11-05\n", "2024-11-05T10:10\n"]
OTHER_DIGITS = ["\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"]


def two(rng: random.Random, high: int) -> str:
    # Mostly in range (1..high), sometimes on or past an edge.
    if rng.random() < 0.8:
        return f"{rng.randint(1, high):02d}"
    return f"{rng.choice([0, high, high + 1, rng.randint(0, 99)]):02d}"


def date(rng: random.Random) -> str:
    y = rng.choice(YEARS)
    m, d = two(rng, 12), two(rng, 31)
    week, weekday = two(rng, 53), str(rng.choice([0, 1, rng.randint(0, 9), 7, 8]))
    ordinal = f"{rng.choice([0, 1, 59, 60, 90, 181, 243, 308, 334, 365, 366, 367, rng.randint(0, 999)]):03d}"
    forms = [f"{y}", f"{y}-{m}", f"{y}{m}", f"{y}-{m}-{d}", f"{y}{m}{d}", f"{y}-{ordinal}", f"{y}{ordinal}",
             f"{y}-W{week}", f"{y}-W{week}-{weekday}", f"{y}W{week}", f"{y}W{week}{weekday}", f"{y}/{m}/{d}",
             f"{y}:{m}:{d}", f"{y}/{m}{d}", f"{y}{m}/{d}", f"{y}-W{week}{weekday}", f"{y}w{week}", f"{y}-{m}-{d[1]}"]
    return rng.choice(forms)


def clock(rng: random.Random) -> str:
    h, mi, s = two(rng, 23), two(rng, 59), two(rng, 59)
    fraction = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 3, 6, 7, 9, 12])))
    mark = rng.choice([".", ",", "|"])
    forms = [h, f"{h}:{mi}", f"{h}:{mi}:{s}", f"{h}:{mi}:{s}{mark}{fraction}", f"{h}{mi}", f"{h}{mi}{s}",
             f"{h}{mi}{s}{mark}{fraction}", f"{h}{mark}{fraction}", f"{h}:{mi}{mark}{fraction}", f"{h[1]}:{mi[1]}",
             f"{h}:{mi}:{s[1]}", "24:00", "24:00:00", "23:59:60", f"{h}:", f"{h}:{mi}:"]
    return rng.choice(forms)


def unix(rng: random.Random) -> str:
    whole = rng.choice([0, 1, 5, 1730801410, 1730801410123, 20_000_000_000, 20_000_000_001, 253_402_300_799,
                        253_402_300_799_999, 11_676_096_000, 11_676_096_001, rng.randint(0, 10**rng.randint(1, 16))])
    sign = rng.choice(["", "", "-", "+"])
    decimals = "".join(rng.choice("0123456789") for _ in range(rng.choice([0, 1, 3, 6, 7, 12])))
    return rng.choice([f"{sign}{whole}", f"{sign}{whole}.{decimals}", f"{sign}.{decimals or '5'}", f"{sign}{whole}.",
                       f"{sign}{whole}e3", f"{sign}{whole}_0", f" {whole}", f"{whole} "])


def well_formed(rng: random.Random) -> str:
    """A date, separator, time and offset of one format (extended or basic): mostly
    times someone could mean."""
    y, m, d, h, mi, sec = rng.choice(YEARS[1:]), two(rng, 12), two(rng, 28), two(rng, 23), two(rng, 59), two(rng, 59)
    fraction = rng.choice(["", "." + str(rng.randint(0, 999_999_999)), "," + str(rng.randint(0, 9))])
    offset = rng.choice(["", "Z", "z", "+01", "+01:00", "-0530", "+01:", "\u221201:00", "+01:60", "+23:59", "-24:00"])
    if rng.random() < 0.6:
        day = rng.choice([f"{y}-{m}-{d}", f"{y}-W{two(rng, 52)}-{rng.randint(1, 7)}", f"{y}-{rng.randint(1, 365):03d}",
                          f"{y}-{m}"])
        time = rng.choice([h, f"{h}:{mi}", f"{h}:{mi}:{sec}{fraction}"])
        return day + rng.choice(["T", " ", "t", "_"]) + time + offset
    day = rng.choice([f"{y}{m}{d}", f"{y}W{two(rng, 52)}{rng.randint(1, 7)}", f"{y}{rng.randint(1, 365):03d}"])
    time = rng.choice([h, f"{h}{mi}", f"{h}{mi}{sec}{fraction}", f"{h}:{mi}"])
    return day + rng.choice(["T", " "]) + time + offset


def case(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return well_formed(rng)
    if kind < 0.55:
        text = date(rng) + rng.choice(SEPARATORS) + clock(rng) + rng.choice(OFFSETS)
    elif kind < 0.65:
        text = date(rng)
    elif kind < 0.72:
        text = rng.choice(["", "T"]) + clock(rng) + rng.choice(OFFSETS)
    elif kind < 0.82:
        text = unix(rng)
    elif kind < 0.86:
        text = rng.choice(WORDS)
    else:
        text = date(rng) + rng.choice(["T", " "]) + clock(rng) + rng.choice(OFFSETS)
        for _ in range(rng.randint(1, 2)):  # a mutation
            at = rng.randrange(len(text) + 1)
            what = rng.choice(["insert", "delete", "replace", "case", "space", "digits"])
            if what == "insert":
                text = text[:at] + rng.choice("0123456789-:T .,+Zz/") + text[at:]
            elif what == "delete" and text:
                text = text[:at] + text[at + 1:]
            elif what == "replace" and at < len(text):
                text = text[:at] + rng.choice("0123456789-:T .,+Zz") + text[at + 1:]
            elif what == "case":
                text = text.swapcase()
            elif what == "space":
                text = rng.choice([" ", "\t", "\n", "\ufeff"]) + text if rng.random() < 0.5 else text + rng.choice([" ", "\n"])
            else:
                script = rng.choice(OTHER_DIGITS)
                text = "".join(script[int(c)] if c.isdigit() and rng.random() < 0.7 else c for c in text)
    return text


def number(rng: random.Random) -> str:
    return str(rng.choice([0, 1, 2, 7, 12, 30, 59, 60, 90, 365, 999, 86400, 4294967295, 4294967296, 999999999,
                           rng.randint(0, 10**rng.randint(1, 11))]))


def duration(rng: random.Random) -> str:
    sign = rng.choice(["", "", "", "-", "+"])
    kind = rng.random()
    if kind < 0.45:  # ISO 8601
        items = []
        for _ in range(rng.randint(0, 4)):
            unit = rng.choice("YMWDHMS" + "T" * 3 + rng.choice("dhmsxZ"))
            if unit == "T":
                items.append("T")
            else:
                fraction = rng.choice(["", "", "", "." + str(rng.randint(0, 999_999_999)), ",5", "."])
                items.append(number(rng) + fraction + unit)
        text = "P" + "".join(items)
    elif kind < 0.75:  # days and a time of day
        day = rng.choice(["d", "D", " d", "day", " day", " days", " DAYS", " da", " dayz", "  day"])
        clock = rng.choice(["", "01:02", "01:02:03", "23:59:59.999999", "24:00", "1:02:03", "01:60", "01:02:03.1234567",
                            "01:02:03+05:00", "01:02:03Z", "01:02:03+24:00", "23"])
        text = number(rng)[:6] + day + rng.choice(["", ",", ", ", " ", ",  "]) + clock
    else:  # a time alone
        hours = rng.choice(["", "0", "01", "12", "100", "2400000000", "2400000001", str(rng.randint(0, 99999))])
        text = hours + rng.choice([":00", ":30", ":59", ":60", ":5"]) + rng.choice(
            ["", ":00", ":59", ":60", ":01.5", ":01,25", ":01.123456", ":01.1234567", ":01.123456 junk", ":01Z"])
    if rng.random() < 0.15:  # a mutation
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice("0123456789 :.,PTDdYMWHS-+") + text[at + 1:]
    return sign + text


DURATION_WORDS = ["", "P", "PT", "+P", "-P", "+PT", "-PT", "P1", "PT1.5", "pt1h", "P1d", "1d", "1 day", "5", "1e3",
                  " PT1H", "PT1H ", "P1.5DT1H", "P1.5DT", "P1,5D", "P1.D", "PT0.0000005S", "P1D1Y", "PT1S1H", "P.5D"]


def main(argv: list[str]) -> None:
    durations = argv[:1] == ["--durations"]
    if durations:
        argv = argv[1:]
    seed, count, out = int(argv[0]), int(argv[1]), argv[2]
    rng = random.Random(seed)
    seen: set[str] = set()
    with open(out, "w", encoding="utf-8") as f:
        for text in DURATION_WORDS if durations else WORDS:
            seen.add(text)
            f.write(json.dumps({"s": text}) + "\n")
        while len(seen) < count:
            text = duration(rng) if durations else case(rng)
            if text not in seen:
                seen.add(text)
                f.write(json.dumps({"s": text}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
