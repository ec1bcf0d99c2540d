"""A static results page: headers and rows of captioned images, written as `web_dir/index.html`.

Images live in `web_dir/images/` and are linked relatively, so the folder can be moved or served
as is. dominate escapes all text and attribute values; file names are also URL-quoted in links.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import dominate
from dominate.tags import a, br, h3, img, meta, p, table, td, tr


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
                        img(style=f"width:{int(width)}px", src=_relative_url(im))
                    br()
                    p(txt)
            row.add(cell)
        self.doc.add(table(row, border=1, style="table-layout: fixed;"))

    def save(self) -> Path:
        """Write `web_dir/index.html` atomically (a reader or browser never sees a half page)."""
        path = self.web_dir / "index.html"
        # Same folder (atomic rename); plain open() so the page gets umask permissions, not mkstemp's 0600.
        tmp = self.web_dir / f".index.html.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "x", encoding="utf-8") as f:
                f.write(self.doc.render())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


def _relative_url(name: str) -> str:
    """`x.png` -> `images/x.png`, URL-quoted so names with `#`, `?`, spaces or `<` still resolve."""
    return "images/" + quote(str(name).replace(os.sep, "/"))
