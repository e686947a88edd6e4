#!/usr/bin/env python3
"""Builds the bilingual demo corpus from Debian packages (installed by
scripts/setup.sh): English from bible-kjv (one document per chapter, one verse
per line, the "Ge1:1" references removed) and Chinese from fortunes-zh (one
document per fortune, terminal colour codes removed). Documents are separated
by blank lines (openba-tokenize's paragraph split). Every 20th document of
each language goes to the held-out split.

Usage: prepare_demo_corpus.py OUT_DIR
Writes OUT_DIR/{train,heldout}/{en,zh}.txt (deterministic).
"""
import os
import re
import subprocess
import sys

FORTUNES = ["/usr/share/games/fortunes/chinese", "/usr/share/games/fortunes/tang300",
            "/usr/share/games/fortunes/song100"]
VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HELDOUT_EVERY = 20


def bible_chapters():
    text = subprocess.run(["bible", "-f", "Genesis 1:1-Revelation 22:21"], check=True, capture_output=True,
                          text=True).stdout
    chapters, key, verses = [], None, []
    for line in text.splitlines():
        m = VERSE.match(line)
        if not m:
            continue
        k = (m.group(1), m.group(2))
        if k != key and verses:
            chapters.append("\n".join(verses))
            verses = []
        key = k
        verses.append(m.group(4).strip())
    if verses:
        chapters.append("\n".join(verses))
    return chapters


def fortunes():
    docs = []
    for path in FORTUNES:
        with open(path, encoding="utf-8", errors="strict") as f:
            entries = f.read().split("\n%\n")
        for entry in entries:
            lines = [ANSI.sub("", l).rstrip() for l in entry.strip("\n%").splitlines()]
            lines = [l for l in lines if l.strip()]
            if lines:
                docs.append("\n".join(lines))
    return docs


def write(path, docs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(docs) + "\n")


def main(out):
    for lang, docs in (("en", bible_chapters()), ("zh", fortunes())):
        train = [d for i, d in enumerate(docs) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
        heldout = [d for i, d in enumerate(docs) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
        write(os.path.join(out, "train", lang + ".txt"), train)
        write(os.path.join(out, "heldout", lang + ".txt"), heldout)
        print(f"{lang}: {len(train)} train / {len(heldout)} held-out documents")


if __name__ == "__main__":
    main(sys.argv[1])
