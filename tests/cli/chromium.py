"""Headless Chromium for the tests: renders an HTML file to a PNG screenshot
and to its DOM, and reports what went wrong on the page.

    from chromium import render, available
    result = render("report.html", "out.png", height=3000)
    result["png"], result["dom"], result["xhtml_dom"], result["errors"]

Page errors are: console messages (the report has no scripts, so any message
is a fault: "Uncaught ...", CSP or parse complaints), any file the page loads
besides itself (FileURLLoader, logged through --vmodule), any network request
the page starts (from a --log-net-log, where Chromium's own background
requests have no page origin), and, for a copy of the page loaded as .xhtml,
a <parsererror> from Chromium's XML parser (malformed markup).

PNG files are decoded here with zlib alone (no PIL on these machines):
png_stats() gives the size and how much of the image is not background.
Debian's `chromium` package provides the browser; running as root needs
--no-sandbox."""
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

CHROMIUM = os.environ.get("OPENBA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Chromium's own services would otherwise phone home during a run.
_QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-default-apps", "--disable-extensions", "--force-device-scale-factor=1",
          "--enable-logging=stderr", "--v=0", "--vmodule=file_url_loader_factory=1"]


def available():
    return os.access(CHROMIUM, os.X_OK)


def _chromium(url, args, timeout):
    """Runs Chromium on `url` with a fresh profile; returns (stdout, errors)."""
    with tempfile.TemporaryDirectory(prefix="openba-chromium-") as profile:
        netlog = os.path.join(profile, "netlog.json")
        cmd = [CHROMIUM, *_QUIET, f"--user-data-dir={os.path.join(profile, 'user')}", f"--log-net-log={netlog}", *args, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        errors = _page_errors(proc.stderr, netlog, url)
        if proc.returncode != 0:
            errors.append(f"chromium exited with {proc.returncode}: {proc.stderr[-2000:]}")
        return proc.stdout, errors


def _page_errors(stderr, netlog, url):
    errors = []
    for line in stderr.splitlines():
        if ":CONSOLE" in line:
            errors.append("console: " + line.split("] ", 1)[-1])
        m = re.search(r"FileURLLoader::Start: (\S+)", line)
        if m and m.group(1) != url:
            errors.append("loads a file: " + m.group(1))
    try:
        with open(netlog) as f:
            log = json.load(f)
    except (OSError, ValueError):
        return errors  # Chromium writes the log at exit; a crash is reported by the exit code
    start_job = log["constants"]["logEventTypes"].get("URL_REQUEST_START_JOB")
    for event in log.get("events", []):
        params = event.get("params", {})
        # Requests from a page carry its origin; Chromium's own have "not an origin".
        if event.get("type") == start_job and params.get("initiator", "not an origin") != "not an origin":
            errors.append("network request: " + params.get("url", "?"))
    return errors


def render(html_path, out_png, height=3000, width=1280, timeout=120):
    """Screenshots `html_path` at width x height into out_png, dumps its DOM,
    and loads a copy saved as .xhtml through Chromium's XML parser.
    Returns dict(png=out_png, dom=..., xhtml_dom=..., errors=[...])."""
    html_path = os.path.abspath(html_path)
    url = "file://" + html_path
    _, errors = _chromium(url, [f"--window-size={width},{height}", f"--screenshot={os.path.abspath(out_png)}"], timeout)
    if not os.path.isfile(out_png):
        errors.append("no screenshot written")
    dom, more = _chromium(url, ["--dump-dom"], timeout)
    errors += more
    with tempfile.TemporaryDirectory(prefix="openba-xhtml-") as tmp:
        copy = os.path.join(tmp, os.path.splitext(os.path.basename(html_path))[0] + ".xhtml")
        shutil.copyfile(html_path, copy)
        xhtml_dom, more = _chromium("file://" + copy, ["--dump-dom"], timeout)
    errors += more
    m = re.search(r"<parsererror.*?</parsererror>", xhtml_dom, re.S)
    if m:
        errors.append("XML parser: " + re.sub(r"<[^>]+>", " ", m.group(0)).strip())
    return {"png": out_png, "dom": dom, "xhtml_dom": xhtml_dom, "errors": errors}


# --- PNG with zlib alone -----------------------------------------------------------

def read_png(path):
    """Decodes an 8-bit RGB/RGBA/grey PNG; returns (width, height, channels, rows)
    with each row a bytes object of width * channels samples."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]:
            raise ValueError(f"{path}: bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{path}: image data has {len(raw)} bytes, expected {height * (stride + 1)}")
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = rows[-1]
    return width, height, channels, rows


def _unfilter(kind, line, previous, bpp):
    if kind == 0:
        return
    if kind == 2:  # up: the common case for screenshots, done without a Python loop per byte
        line[:] = bytes((a + b) & 255 for a, b in zip(line, previous))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 255
        elif kind == 4:
            up_left = previous[i - bpp] if i >= bpp else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        else:
            raise ValueError(f"bad PNG filter type {kind}")


def png_stats(path):
    """Size and content of a PNG: non_white (pixels that are not pure white),
    background_share (share of the most common colour) and colours (distinct
    colours). A blank page is all one colour."""
    width, height, channels, rows = read_png(path)
    counts = {}
    for row in rows:
        for x in range(0, len(row), channels):
            pixel = row[x:x + min(channels, 3)]
            counts[pixel] = counts.get(pixel, 0) + 1
    white = counts.get(b"\xff" * min(channels, 3), 0)
    total = width * height
    return {"width": width, "height": height, "non_white": total - white,
            "background_share": max(counts.values()) / total, "colours": len(counts)}


def write_png(path, width, channels, rows):
    """Writes 8-bit rows (e.g. a crop of read_png's) as a PNG."""
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + row for row in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, colour, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def trim_png(path, out, background_rows_kept=24):
    """Copies a full-height screenshot without its empty bottom (rows equal to
    the last row), keeping a small margin."""
    width, _, channels, rows = read_png(path)
    last = len(rows) - 1
    while last > 0 and rows[last] == rows[-1]:
        last -= 1
    write_png(out, width, channels, rows[:min(len(rows), last + 1 + background_rows_kept)])
