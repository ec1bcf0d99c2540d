"""Static pages of images: `HTML` (the reference's page of headers and captioned images) and `ResultPages` (test
results as a table, a row per input and a column per visual, split into pages). Images live in
`web_dir/images/`, linked relatively and URL-quoted, and load lazily.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import dominate
import torch
from dominate.tags import a, br, h3, img, meta, p, span, style, table, tbody, td, th, thead, tr

from .files import atomic_write, link_or_copy
from .images import save_image, tensors2ims


class HTML:
    """Build a page in memory with `add_header` / `add_images`, then `save()` it."""

    def __init__(self, web_dir: str | os.PathLike, title: str, refresh: int = 0) -> None:
        """`refresh` > 0 makes browsers reload the page every `refresh` seconds (for pages that grow)."""
        self.web_dir = Path(web_dir)
        self.img_dir = self.web_dir / "images"
        self.img_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.doc = dominate.document(title=title)
        with self.doc.head:
            meta(charset="utf-8")
            if refresh > 0:
                meta(http_equiv="refresh", content=str(refresh))

    def get_image_dir(self) -> Path:
        """The folder image files must be written to for `add_images` links to work."""
        return self.img_dir

    def add_header(self, text: str) -> None:
        """A section heading (e.g. `epoch [3]` or an input's name)."""
        with self.doc:
            h3(text)

    def add_links(self, links: Sequence[tuple[str, str | None]]) -> None:
        """A line of navigation links `(text, href)`; an href of None shows the text unlinked."""
        with self.doc:
            _nav(links)

    def add_image(self, name: str, alt: str) -> None:
        """One image on its own (e.g. the loss curves), linked to itself; `name` is inside the image folder."""
        with self.doc:
            with p():
                with a(href=_relative_url(name)):
                    img(src=_relative_url(name), alt=alt, style="max-width:100%")

    def add_images(self, ims: Sequence[str], txts: Sequence[str], links: Sequence[str], width: int = 256) -> None:
        """One table row: image `ims[i]` (a file name inside the image folder), captioned `txts[i]`,
        linking to `links[i]` (also inside the image folder)."""
        if not len(ims) == len(txts) == len(links):
            raise ValueError(f"add_images needs as many captions and links as images, got {len(ims)}, "
                             f"{len(txts)}, {len(links)}")
        row = tr()
        for im, txt, link in zip(ims, txts, links):
            cell = td(style="word-wrap: break-word;", halign="center", valign="top")
            with cell:
                with p():
                    with a(href=_relative_url(link)):
                        img(style=f"width:{int(width)}px", src=_relative_url(im), loading="lazy")
                    br()
                    p(txt)
            row.add(cell)
        self.doc.add(table(row, border=1, style="table-layout: fixed;"))

    def save(self, filename: str = "index.html") -> Path:
        """Write `web_dir/filename` atomically (a reader or browser never sees a half page)."""
        return write_atomic(self.web_dir / filename, self.doc.render())


def write_atomic(path: Path, text: str) -> Path:
    atomic_write(path, lambda f: f.write(text), mode="w", durable=False)
    return path


def page_name(number: int) -> str:
    """File name of page `number` (1-based) of a paged result: index.html, page_002.html, ..."""
    return "index.html" if number == 1 else f"page_{number:03d}.html"


def page_links(current: int, count: int, window: int = 3) -> list[tuple[str, str | None]]:
    """Navigation for page `current` of `count`: first, previous, a few neighbours, next, last (so its length
    does not depend on `count`)."""
    if count <= 1:
        return []
    links: list[tuple[str, str | None]] = [
        ("\u00ab first", page_name(1) if current > 1 else None),
        ("\u2039 previous", page_name(current - 1) if current > 1 else None)]
    for number in range(max(1, current - window), min(count, current + window) + 1):
        links.append((str(number), None if number == current else page_name(number)))
    links += [("next \u203a", page_name(current + 1) if current < count else None),
              (f"last ({count}) \u00bb", page_name(count) if current < count else None)]
    return links


_TABLE_CSS = """
body { font-family: sans-serif; }
table.results { border-collapse: collapse; }
table.results th, table.results td { border: 1px solid #ccc; padding: 4px; text-align: center; vertical-align: top; }
table.results thead th { position: sticky; top: 0; background: #f4f4f4; }
table.results td.name { text-align: left; word-break: break-all; max-width: 16em; }
"""


class ResultPages:
    """Test results: a table per page, a row per input (its name, then its visuals under column labels), at most
    `per_page` rows a page (index.html, page_002.html, ...); rows are kept as names and written by `save()`."""

    def __init__(self, web_dir: str | os.PathLike, title: str, per_page: int = 100, width: int = 256) -> None:
        self.web_dir = Path(web_dir)
        self.img_dir = self.web_dir / "images"
        self.img_dir.mkdir(parents=True, exist_ok=True)
        self.title, self.per_page, self.width = title, max(1, int(per_page)), int(width)
        self.rows: list[tuple[str, list[tuple[str, str]]]] = []
        self.notes: list[str] = []  # lines shown under the title of every page

    def add_note(self, text: str) -> None:
        self.notes.append(str(text))

    def get_image_dir(self) -> Path:
        """The folder image files must be written to for the row links to work."""
        return self.img_dir

    def add_row(self, name: str, images: Sequence[tuple[str, str]]) -> None:
        """One input: its `name` and its `(visual label, file inside the image folder)` pairs."""
        self.rows.append((str(name), [(str(label), str(file)) for label, file in images]))

    def save(self) -> list[Path]:
        """Write every page (atomically); returns their paths, index.html first. Stale pages of an
        earlier, longer run in the same folder are removed."""
        count = max(1, -(-len(self.rows) // self.per_page))
        paths = [write_atomic(self.web_dir / page_name(n), self._render(n, count)) for n in range(1, count + 1)]
        for old in self.web_dir.glob("page_*.html"):
            if old not in paths:
                old.unlink()
        return paths

    def _render(self, number: int, count: int) -> str:
        rows = self.rows[(number - 1) * self.per_page : number * self.per_page]
        first = (number - 1) * self.per_page + 1
        doc = dominate.document(title=self.title if count == 1 else f"{self.title} ({number}/{count})")
        with doc.head:
            meta(charset="utf-8")
            style(_TABLE_CSS)
        labels = list(dict.fromkeys(label for _, images in rows for label, _ in images))
        with doc:
            h3(self.title)
            for note in self.notes:
                p(note, cls="note")
            if rows:
                p(f"inputs {first}\u2013{first + len(rows) - 1} of {len(self.rows)}")
            nav = page_links(number, count)
            if nav:
                _nav(nav)
            with table(cls="results"):
                with thead():
                    with tr():
                        th("input")
                        for label in labels:
                            th(label)
                with tbody():
                    for name, images in rows:
                        by_label = dict(images)
                        with tr():
                            td(name, cls="name")
                            for label in labels:
                                with td():
                                    if label in by_label:
                                        with a(href=_relative_url(by_label[label])):
                                            img(src=_relative_url(by_label[label]), alt=f"{name} {label}",
                                                loading="lazy", style=f"width:{self.width}px")
            if nav:
                _nav(nav)
        return doc.render()


def _nav(links: Sequence[tuple[str, str | None]]) -> None:
    with p(cls="nav"):
        for text, href in links:
            if href is None:
                span(text, style="margin-right:1em; color:#888")
            else:
                a(text, href=quote(href), style="margin-right:1em")


def _relative_url(name: str) -> str:
    """`x.png` -> `images/x.png`, URL-quoted so names with `#`, `?`, spaces or `<` still resolve."""
    return "images/" + quote(str(name).replace(os.sep, "/"))


def save_test_images(webpage: ResultPages | HTML, visuals: Mapping[str, torch.Tensor], image_paths: Sequence[str],
                     aspect_ratio: float = 1.0, width: int = 256) -> None:
    """For every image of the batch and every visual: write images/<stem>_<visual>.png (the reference's name) and
    images/<visual>/<stem>.png (for metric tools), and add the input's row to `webpage` (the caller saves it);
    an `HTML` page gets a header and a row of captioned images per input instead."""
    batches = {label: tensors2ims(t) for label, t in visuals.items()}
    image_dir = webpage.get_image_dir()
    for i, source in enumerate(image_paths):
        stem = Path(str(source)).stem
        names = []
        for label, ims in batches.items():
            name = f"{stem}_{label}.png"
            save_image(ims[i], image_dir / name, aspect_ratio=aspect_ratio)
            link_or_copy(image_dir / name, image_dir / label / f"{stem}.png")
            names.append(name)
        if isinstance(webpage, ResultPages):
            webpage.add_row(stem, list(zip(batches, names)))
        else:
            webpage.add_header(stem)
            webpage.add_images(names, list(batches), names, width=width)
