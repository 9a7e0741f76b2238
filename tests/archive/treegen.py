"""Build an archive folder for tests and the bench: unique reports, copies, a zip, junk."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from reportgen import make_report, seed_text

DEVSET_SUFFIXES = (".txt", ".md", ".html")
_CN_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def devset_dir() -> Path | None:
    """``/work/shared/devset`` (next to the repository) or ``$NIANBAO_DEVSET``; None if absent."""
    env = os.environ.get("NIANBAO_DEVSET")
    p = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "devset"
    return p.resolve() if p.is_dir() else None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Tree:
    """What an archive of ``root`` must find."""
    root: Path
    reports: dict[str, list[str]] = field(default_factory=dict)   # sha256 -> item keys (copies)
    junk: dict[str, str] = field(default_factory=dict)            # item key -> why it is junk

    def add_report(self, key: str, data: bytes) -> None:
        self.reports.setdefault(sha(data), []).append(key)

    @property
    def copies(self) -> int:
        return sum(len(v) - 1 for v in self.reports.values())

    @property
    def files(self) -> int:
        return sum(len(v) for v in self.reports.values()) + len(self.junk)


def _write(tree: Tree, rel: str, data: bytes, *, report: bool = True, junk: str = "") -> None:
    p = tree.root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if report:
        tree.add_report(str(p), data)
    else:
        tree.junk[str(p)] = junk


def unique_report(i: int) -> bytes:
    """Report number ``i``: its own organ, year and numbers."""
    organ = "测试" + f"{i // 4:03d}".translate(_CN_DIGITS) + "区民政局"   # digits would end the name
    year = 2019 + i % 4
    new, carried_in = i % 17, i % 5
    return make_report(organ, year, new=new, carried_in=carried_in,
                       carried_out=min(i % 3, new + carried_in)).encode("utf-8")


def build_tree(root: Path, n_unique: int = 300, n_copies: int = 60, with_devset: bool = True) -> Tree:
    """A folder of ``n_unique`` distinct reports in nested folders, ``n_copies`` copies of reports
    under other names (seed, devset text/markdown/HTML when present, and generated ones), a zip
    of more reports and copies with unsafe and nested members, and junk files."""
    tree = Tree(root)
    root.mkdir(parents=True, exist_ok=True)
    in_zip = max(n_unique // 10, 5)
    for i in range(n_unique - in_zip):
        _write(tree, f"organs/{i % 7}/year{i % 4}/report-{i:04d}.txt", unique_report(i))
    sources = [(".txt", seed_text().encode("utf-8"))]
    dev = devset_dir() if with_devset else None
    if dev is not None:
        sources += [(p.suffix, p.read_bytes()) for p in sorted(dev.iterdir())
                    if p.suffix in DEVSET_SUFFIXES and p.name != "README.md"]
    for j in range(n_copies):
        ext, data = sources[(j // 2) % len(sources)] if j % 2 == 0 else (".txt", unique_report(j))
        _write(tree, f"copies/{'deep/' * (j % 3)}copy-{j:03d}{ext}", data)
    # the zip: reports of its own, copies of files on disk, junk, an unsafe and a nested member
    zpath = root / "batch-upload.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n_unique - in_zip, n_unique):
            data = unique_report(i)
            zf.writestr(f"inner/r-{i}.txt", data)
            tree.add_report(f"{zpath}!inner/r-{i}.txt", data)
        for i in range(5):
            data = unique_report(i)          # also on disk: a duplicate across zip and folder
            zf.writestr(f"dups/again-{i}.txt", data)
            tree.add_report(f"{zpath}!dups/again-{i}.txt", data)
        zf.writestr("inner/program.exe", b"MZ\x90\x00" + bytes(range(256)) * 8)
        tree.junk[f"{zpath}!inner/program.exe"] = "binary"
        zf.writestr(zipfile.ZipInfo("../escape.txt"), unique_report(99999))
        tree.junk[f"{zpath}!../escape.txt"] = "zip_unsafe_path"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as inner:
            inner.writestr("x.txt", unique_report(88888))
        zf.writestr("inner/nested.zip", buf.getvalue())
        tree.junk[f"{zpath}!inner/nested.zip"] = "zip_nested"
        zf.writestr("__MACOSX/inner/._r-1.txt", b"\x00\x05\x16\x07")
        tree.junk[f"{zpath}!__MACOSX/inner/._r-1.txt"] = "hidden"
    # junk on disk
    _write(tree, "misc/notes.txt", "会议纪要：下周二开会，讨论办公用品采购。\n".encode("utf-8"), report=False,
           junk="no tables")
    _write(tree, "misc/empty.txt", b"", report=False, junk="empty")
    _write(tree, "misc/tool.exe", b"MZ\x90\x00\x03" + bytes(range(256)) * 16, report=False, junk="binary")
    _write(tree, "misc/.DS_Store", b"\x00\x00\x00\x01Bud1", report=False, junk="hidden")
    _write(tree, "misc/data.xlsx", b"PK\x03\x04" + b"\x00" * 64, report=False, junk="bad zip / not a report")
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_bytes(unique_report(77777))
    (root / "misc" / "link-out.txt").symlink_to(outside)
    tree.junk[str(root / "misc" / "link-out.txt")] = "symlink_outside"
    return tree
