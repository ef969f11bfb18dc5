"""The README and the pages under docs/ link to each other and to files of the repository: every
relative link must name a file or folder that exists (from the linking page's folder), and every
`#anchor` a heading of its target page, by GitHub's rules (lowercase; punctuation but `-` and `_`
dropped; each space a `-`; a repeated heading gets `-1`, `-2`, ...). The repository paths the pages
quote in code spans (`tests/test_workspace.py`, `samples/cmake`) must exist too.

Run alone: python tests/test_docs.py (prints each broken link; exit status 1 if any)."""
import glob
import os
import re
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the text may hold `code` and one level of brackets.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# Top-level folders of the repository whose paths the pages quote in code spans.
REPO_DIRS = ("samples/", "tests/", "onnx2src/", "templates/", "docs/", ".ci/")


def pages():
    """README.md and docs/*.md, as paths relative to the repository."""
    return ["README.md"] + sorted(os.path.relpath(p, ROOT)
                                  for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def prose_lines(text):
    """(line number, line) outside fenced code blocks and indented code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None and not line.startswith("    "):
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)                         # inline HTML
    text = text.lower()
    text = "".join(c for c in text
                   if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return text.replace(" ", "-")


def anchors(path):
    """The anchors the headings of the page at `path` (relative to the repository) define."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    seen, result = {}, set()
    for _, line in prose_lines(text):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def problems():
    """One line per broken link, anchor or quoted path in the README and docs/*.md."""
    out = []
    cache = {}
    for page in pages():
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
        folder = os.path.dirname(page)
        for number, line in prose_lines(text):
            where = f"{page}:{number}"
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, mailto:, ...
                    continue
                file_part, _, anchor = target.partition("#")
                linked = os.path.normpath(os.path.join(folder, file_part)) if file_part else page
                if not os.path.exists(os.path.join(ROOT, linked)):
                    out.append(f"{where}: {target}: no file {linked}")
                    continue
                if anchor:
                    if not linked.endswith(".md"):
                        out.append(f"{where}: {target}: an anchor into a file that is not Markdown")
                        continue
                    if linked not in cache:
                        cache[linked] = anchors(linked)
                    if anchor not in cache[linked]:
                        out.append(f"{where}: {target}: no heading #{anchor} in {linked}")
            for span in CODE_SPAN.findall(line):
                if not span.startswith(REPO_DIRS) or " " in span:
                    continue
                # samples/simple_{rnn,lstm,gru}.onnx names three files.
                m = re.match(r"^(.*)\{([^}]*)\}(.*)$", span)
                paths = [m.group(1) + p + m.group(3) for p in m.group(2).split(",")] if m else [span]
                for p in paths:
                    if not os.path.exists(os.path.join(ROOT, p)):
                        out.append(f"{where}: `{span}`: no file {p} in the repository")
    return out


def test_slug_rules():
    assert slug("Large models and the weights file") == "large-models-and-the-weights-file"
    assert slug("Reduced-precision weights") == "reduced-precision-weights"
    assert slug("int8 weights") == "int8-weights"
    assert slug("A `--check` in CI, (mostly) fine!") == "a---check-in-ci-mostly-fine"


def test_docs_pages_exist():
    assert len(pages()) > 1, "no pages under docs/"


def test_links_and_anchors_resolve():
    broken = problems()
    assert not broken, "\n".join(broken)


if __name__ == "__main__":
    broken = problems()
    print("\n".join(broken) if broken else f"{len(pages())} pages: every link and anchor resolves")
    sys.exit(1 if broken else 0)
