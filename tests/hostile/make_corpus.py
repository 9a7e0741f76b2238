"""Generate the hostile-input corpus (issue 7) into a directory; nothing here is committed as binary.

    python tests/hostile/make_corpus.py OUT_DIR

Every input is built from code (hand-written PDF syntax, PIL images, zipfile, sparse files), in
bounded memory: the 200 MB text file is sparse, the bomb streams are compressed chunk by chunk.
``CASES`` maps each file name to what it exercises and the outcome the tests expect
(``failed`` or ``ok`` = a correct extraction).
"""
from __future__ import annotations

import io
import os
import random
import stat
import sys
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "samples" / "luolong-minzheng-2020.txt"

# name -> (what it is, expected end state: failed, ok = the same fields as the UTF-8 report,
# read = extracted but not comparable: Big5 cannot encode simplified characters)
CASES: dict[str, tuple[str, str]] = {
    "empty.txt": ("0-byte file", "failed"),
    "one-byte.pdf": ("1-byte file with a PDF extension", "failed"),
    "truncated.pdf": ("a valid PDF cut in half", "failed"),
    "encrypted.pdf": ("a PDF with a standard-security /Encrypt dictionary (user password)", "failed"),
    "malformed.pdf": ("%PDF header followed by garbage objects and no xref", "failed"),
    "bomb-stream.pdf": ("a page whose content stream inflates 1 MB -> 1 GiB", "failed"),
    "pages-500.pdf": ("a valid 500-page PDF", "failed"),
    "huge-declared.png": ("PNG header declaring 50,000 x 50,000 px", "failed"),
    "huge-declared.tiff": ("TIFF declaring 50,000 x 50,000 px", "failed"),
    "frames-1000.tiff": ("multi-page TIFF with 1,000 frames", "failed"),
    "bomb.zip": ("zip bomb: 1 GiB of zeros per member, nested zip inside", "failed"),
    "bomb.docx": ("zip bomb named .docx (word/document.xml inflating to 1 GiB)", "failed"),
    "slip.zip": ("zip with ../, absolute member paths and a symlink member", "failed"),
    "nested-tags.html": ("HTML with 100,000 nested tags", "failed"),
    "billion-laughs.html": ("HTML/XML with a billion-laughs entity DTD", "failed"),
    "report-gbk.txt": ("the real report in GBK", "ok"),
    "report-big5.txt": ("the real report in Big5 (simplified-only characters become ?)", "read"),
    "report-utf16.txt": ("the real report in UTF-16 with BOM", "ok"),
    "invalid-utf8.txt": ("bytes that are invalid in UTF-8 and every Chinese encoding", "failed"),
    "huge-200mb.txt": ("a 200 MB (sparse) text file", "failed"),
    "random.pdf": ("64 KiB of random bytes named .pdf", "failed"),
    "random.txt": ("64 KiB of random bytes named .txt", "failed"),
    "random.html": ("64 KiB of random bytes named .html", "failed"),
    "random.png": ("64 KiB of random bytes named .png", "failed"),
    "random.docx": ("64 KiB of random bytes named .docx", "failed"),
    "report-renamed.pdf": ("the real text report renamed .pdf", "ok"),
    "report-renamed.png": ("the real text report renamed .png", "ok"),
}


# --- PDF syntax -------------------------------------------------------------------------------

def _pdf(objects: list[bytes], trailer_extra: bytes = b"", root: int = 1) -> bytes:
    """A PDF from object bodies (object i+1 = objects[i]) with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, root, trailer_extra, xref))
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def pdf_pages(n: int, text: bytes = b"Hello") -> bytes:
    """A valid n-page PDF, one line of Helvetica text per page."""
    font = 3
    first_page = 4
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                         b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for i in range(n):
        page_id = first_page + 2 * i
        kids.append(b"%d 0 R" % page_id)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >> "
                    b"/Contents %d 0 R >>" % (font, page_id + 1))
        objs.append(_stream(b"BT /F1 12 Tf 72 720 Td (" + text + b" %d) Tj ET" % (i + 1)))
    objs[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % n
    return _pdf(objs)


def pdf_bomb(inflated: int = 2**30) -> bytes:
    """One page whose content stream is a few MB of Flate data inflating to ``inflated`` bytes of
    spaces (valid content syntax, so a reader really decodes all of it)."""
    comp = zlib.compressobj(9)
    parts = []
    chunk = b" " * (4 * 2**20)
    for _ in range(inflated // len(chunk)):
        parts.append(comp.compress(chunk))
    parts.append(comp.compress(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET"))
    parts.append(comp.flush())
    data = b"".join(parts)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
            b"/Contents 4 0 R >>",
            _stream(data, b"/Filter /FlateDecode "),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return _pdf(objs)


def pdf_encrypted() -> bytes:
    """Standard security handler, RC4 40-bit, with a user password the reader does not have
    (O/U entries that the empty password does not open)."""
    rnd = random.Random(7)
    o = bytes(rnd.randrange(256) for _ in range(32))
    u = bytes(rnd.randrange(256) for _ in range(32))
    base = pdf_pages(1)
    # rebuild with an /Encrypt object: easiest is to append it as object 6 via a fresh layout
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            _stream(bytes(rnd.randrange(256) for _ in range(64))),
            b"<< /Filter /Standard /V 1 /R 2 /O <" + o.hex().encode() + b"> /U <" + u.hex().encode()
            + b"> /P -44 >>"]
    del base
    file_id = os.urandom(16).hex().encode()
    return _pdf(objs, b"/Encrypt 5 0 R /ID [<" + file_id + b"> <" + file_id + b">] ")


# --- images -----------------------------------------------------------------------------------

def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height (8-bit gray) with a tiny IDAT: no decoder should
    ever allocate the declared size."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian TIFF IFD declaring width x height, 8-bit gray, one tiny uncompressed strip."""
    import struct
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd_off = 8
    n = len(entries)
    data_off = ifd_off + 2 + n * 12 + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_off))
    out += struct.pack("<H", n)
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_off
        if typ == 3:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += b"\x80" * 16
    return bytes(out)


def tiff_frames(n: int) -> bytes:
    from PIL import Image
    frames = [Image.new("L", (8, 8), color=255) for _ in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


# --- zips ---------------------------------------------------------------------------------------

def _zeros_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as w:
        block = b"\x00" * (4 * 2**20)
        for _ in range(size // len(block)):
            w.write(block)


def zip_bomb(path: Path, member_bytes: int = 2**30) -> None:
    """High-ratio members (1 GiB of zeros -> ~1 MB each) and a nested zip holding another bomb."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(2):
            _zeros_member(z, f"inner-{i}.txt", member_bytes)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(2):
            _zeros_member(z, f"report-{i}.txt", member_bytes)
        z.writestr("nested.zip", inner.getvalue(), compress_type=zipfile.ZIP_STORED)


def docx_bomb(path: Path, member_bytes: int = 2**30) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        _zeros_member(z, "word/document.xml", member_bytes)


def zip_slip(path: Path, report: bytes) -> None:
    """Members named ``../canary/pwned.txt``, ``/tmp/nianbao-pwned.txt``, a symlink to /etc/passwd."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../canary/pwned.txt", report)
        z.writestr("../../../../../../tmp/nianbao-slip-pwned.txt", report)
        z.writestr("/tmp/nianbao-abs-pwned.txt", report)
        link = zipfile.ZipInfo("link-to-passwd.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
        link2 = zipfile.ZipInfo("link-dir")
        link2.create_system = 3
        link2.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link2, "../canary")


# --- HTML ---------------------------------------------------------------------------------------

def html_nested(depth: int = 100_000) -> bytes:
    return (b"<html><body>" + b"<div>" * depth + "政府信息公开".encode() + b"</div>" * depth
            + b"</body></html>")


def html_billion_laughs() -> bytes:
    ents = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = f"&lol{i - 1};" if i > 1 else "&lol;"
        ents.append(f'<!ENTITY lol{i} "{prev * 10}">')
    return (('<?xml version="1.0"?>\n<!DOCTYPE html [\n' + "\n".join(ents) + "\n]>\n"
             "<html><body><p>&lol9;</p><table><tr><td>&lol9;</td></tr></table></body></html>\n").encode())


# --- build ----------------------------------------------------------------------------------------

def build(out: Path, *, bomb_bytes: int = 2**30) -> dict[str, Path]:
    """Write every case of ``CASES`` into ``out``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    report = SEED.read_bytes()
    text = report.decode("utf-8")
    rnd = random.Random(20240607)

    def put(name: str, data: bytes) -> None:
        (out / name).write_bytes(data)

    put("empty.txt", b"")
    put("one-byte.pdf", b"%")
    good = pdf_pages(3)
    put("truncated.pdf", good[: len(good) // 2])
    put("encrypted.pdf", pdf_encrypted())
    put("malformed.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\n"
        + bytes(rnd.randrange(256) for _ in range(4096)) + b"\n2 0 obj << /Length 99999999 >> stream\n"
        + b"\x00" * 100 + b"\n%%EOF\n")
    put("bomb-stream.pdf", pdf_bomb(bomb_bytes))
    put("pages-500.pdf", pdf_pages(500))
    put("huge-declared.png", png_declaring(50_000, 50_000))
    put("huge-declared.tiff", tiff_declaring(50_000, 50_000))
    put("frames-1000.tiff", tiff_frames(1000))
    zip_bomb(out / "bomb.zip", bomb_bytes)
    docx_bomb(out / "bomb.docx", bomb_bytes)
    zip_slip(out / "slip.zip", report)
    put("nested-tags.html", html_nested())
    put("billion-laughs.html", html_billion_laughs())
    put("report-gbk.txt", text.encode("gbk", errors="replace"))
    big5 = text.replace("“", '"').replace("”", '"')
    put("report-big5.txt", big5.encode("big5", errors="replace"))
    put("report-utf16.txt", text.encode("utf-16"))
    put("invalid-utf8.txt", b"\xff\xfe\xfd"[1:] + bytes([0x80 + rnd.randrange(0x7f) for _ in range(8192)])
        .replace(b"\x80", b"\xc0"))
    with open(out / "huge-200mb.txt", "wb") as f:     # sparse: no 200 MB ever in memory or on disk
        f.write("政府信息公开工作年度报告\n".encode())
        f.truncate(200 * 2**20)
    for ext in ("pdf", "txt", "html", "png", "docx"):
        put(f"random.{ext}", rnd.randbytes(65536))
    put("report-renamed.pdf", report)
    put("report-renamed.png", report)
    assert sorted(p.name for p in out.iterdir()) == sorted(CASES), "CASES and build() disagree"
    return {name: out / name for name in CASES}


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    for name, p in build(target).items():
        print(f"{p.stat().st_size:>12,}  {name}  ({CASES[name][0]})")
