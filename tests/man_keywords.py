#!/usr/bin/env python3
"""man_keywords.py -- every config keyword documented in
docs/configuration.md appears in pbxgate.conf(5) (docs/man/pbxgate.conf.5.scd)
as a bold *keyword*, so the man page cannot fall behind the docs.

Keywords in docs/configuration.md, between "## Keywords" and the next "## ":
the "### a, b" headings, the first column of tables ("| `kw` |"), and the
backticked names in the "Login and mail keywords" list.
Usage: man_keywords.py DOCS_MD MAN_SCD; exit 1 listing what is missing."""

import re
import sys

IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


def doc_keywords(text):
    m = re.search(r"^## Keywords\n(.*?)(?=^## )", text, re.M | re.S)
    if m is None:
        sys.exit("man_keywords: no '## Keywords' section in the docs")
    kws, sub = set(), ""
    for line in m.group(1).splitlines():
        if line.startswith("### "):
            sub = line[4:]
            kws |= {w for w in (x.strip() for x in sub.split(",")) if IDENT.match(w)}
        elif line.startswith("| `"):
            w = line[3:].split("`", 1)[0]
            if IDENT.match(w):
                kws.add(w)
        elif sub.startswith("Login and mail"):
            kws |= {w for w in re.findall(r"`([^`]+)`", line) if IDENT.match(w)}
    return kws


def main():
    docs, man = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
    want = doc_keywords(docs)
    if len(want) < 40:
        sys.exit("man_keywords: only %d keywords found in %s: the parser no longer "
                 "fits the page" % (len(want), sys.argv[1]))
    have = set(re.findall(r"\*([a-z][a-z0-9_]*)\*", man.replace("\\_", "_")))
    missing = sorted(want - have)
    if missing:
        print("%s lacks keywords documented in %s: %s"
              % (sys.argv[2], sys.argv[1], " ".join(missing)))
        return 1
    print("%d keywords, all in %s" % (len(want), sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
