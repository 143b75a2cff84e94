"""The inspect page in a real browser: headless Chromium renders it (a screenshot that is
not blank and shows the heat maps' colours) and its DOM holds every heat-map cell with its
hover title. Runs where /usr/bin/chromium exists (Debian: apt-get install -y chromium);
skipped, saying so, only where it does not."""

from __future__ import annotations

import struct
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from numpy_ref.checkpoint import save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.html import ramp
from numpy_ref.random_init import random_params, random_vocab
from numpy_ref_cli.main import main

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is not installed (Debian: apt-get install -y chromium); the page's browser check needs it",
)


def chromium(*arguments: str, timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, capture_output=True, timeout=timeout)


def read_png(path) -> np.ndarray:
    """An 8-bit RGB or RGBA, non-interlaced PNG as an array [height, width, channels]."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    position, chunks = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for r in range(height):
        kind, line = raw[r, 0], raw[r, 1:]
        if kind == 0:  # none
            row = line.copy()
        elif kind == 1:  # sub: a running sum along the row, per channel
            row = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint32) % 256).astype(np.uint8).ravel()
        elif kind == 2:  # up
            row = line + prior
        else:  # average, Paeth: sequential along the row
            current, up = bytearray(line.tobytes()), prior.tobytes()
            for i in range(stride):
                a = current[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    current[i] = (current[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    current[i] = (current[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            row = np.frombuffer(bytes(current), dtype=np.uint8)
        image[r] = row
        prior = row
    return image.reshape(height, width, bpp)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chromium")
    config = ModelConfig(vocab_size=32)
    checkpoint = folder / "random.safetensors"
    save_checkpoint(checkpoint, random_params(config, seed=0), config, random_vocab(config.vocab_size))
    out = folder / "inspect.html"
    assert main(["inspect", "--checkpoint", str(checkpoint), "--steps", "3", "--html", str(out), "--color", "never"]) == 0
    return out


def test_the_screenshot_is_not_blank_and_shows_the_heat_maps(page, tmp_path):
    shot = tmp_path / "page.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1400,1800", page.as_uri())
    assert shot.exists(), result.stderr.decode(errors="replace")[-2000:]
    image = read_png(shot)[:, :, :3]
    assert image.shape[:2] == (1800, 1400)
    packed = image.astype(np.uint32)
    colors = np.unique((packed[:, :, 0] << 16) | (packed[:, :, 1] << 8) | packed[:, :, 2])
    assert len(colors) > 50, "the screenshot is (nearly) one colour"
    white = np.all(image == 255, axis=-1).mean()
    assert 0.3 < white < 0.99, f"{white:.1%} of the page is white"
    # Every head's first row attends to its only word with weight 1: the darkest blue of the scale.
    darkest = np.array(ramp(1.0))
    assert np.all(image == darkest, axis=-1).sum() > 500, "no heat-map cell of weight 1 is drawn"
    # The causal mask's hidden cells (#3a3a3a).
    assert np.all(image == [0x3A, 0x3A, 0x3A], axis=-1).sum() > 500, "the mask's hidden cells are not drawn"


class HeatCells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.cells, self.tables = 0, [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "heatmap" in (attrs.get("class") or ""):
            self.inside += 1
            self.tables += 1
        elif tag == "td" and self.inside:
            self.cells.append(attrs)

    def handle_endtag(self, tag):
        if tag == "table" and self.inside:
            self.inside -= 1


def test_the_dom_holds_every_heat_map_cell_with_its_title(page):
    result = chromium("--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    dom = result.stdout.decode("utf-8")
    parser = HeatCells()
    parser.feed(dom)
    assert parser.tables == 2 * 4  # layers x heads
    assert len(parser.cells) == 8 * 5 * 5
    assert all(cell.get("title") for cell in parser.cells)
    titles = [cell["title"] for cell in parser.cells]
    assert sum("hidden by the causal mask" in t for t in titles) == 8 * 10
    assert any(t.startswith("else → if: weight ") and "scaled score" in t for t in titles)
