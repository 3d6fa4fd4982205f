"""Export files on any fsspec filesystem: named by the moment they were written, put in place whole or not at
all, and pruned to the newest `keep` of a sync.

A file is written under a hidden temporary name in its own folder, closed (and, on a local disk, synced),
then renamed to `<sync>-<YYYYMMDDTHHMMSSZ>.<ext>`: a reader of the folder sees a complete file or none. A
process killed mid-write leaves only the hidden temporary file, which the sync's next run removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

MANIFEST = ".manifest.json"
STAMP = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20
EXTENSIONS = ("csv", "parquet")


def render(template: str, sync: str, moment: datetime) -> str:
    """The folder of the sync's file written at `moment` (UTC): `{sync}` and `{date}` (YYYY-MM-DD) filled in."""
    return template.format(sync=sync, date=moment.strftime("%Y-%m-%d"))


def folder(template: str, sync: str, moment: datetime) -> tuple[AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(render(template, sync, moment))
    return fs, path.rstrip("/")


def shown(url: str) -> str:
    """A location as logs may show it: without a password an URL might carry."""
    return re.sub(r"//[^/@]*@", "//", url)


def _pattern(sync: str) -> re.Pattern[str]:
    return re.compile(re.escape(sync) + r"-(\d{8}T\d{6}Z)(?:-(\d+))?\.(" + "|".join(EXTENSIONS) + ")")


def file_name(fs: AbstractFileSystem, where: str, sync: str, moment: datetime, ext: str) -> str:
    """`<sync>-<stamp>.<ext>`; a second file within the same second gets `-2` (then `-3`) after the stamp."""
    stem = f"{sync}-{moment.strftime(STAMP)}"
    taken = {p.rsplit("/", 1)[-1] for p in fs.glob(f"{where}/{stem}*")}
    n = 1
    while any(f"{_numbered(stem, n)}.{e}" in taken for e in EXTENSIONS):
        n += 1
    return f"{_numbered(stem, n)}.{ext}"


def _numbered(stem: str, n: int) -> str:
    return f"{stem}-{n}" if n > 1 else stem


def _synced(fs: AbstractFileSystem, path: str) -> None:
    """On a local disk, the file's bytes reach the disk before it takes its name (elsewhere, close commits)."""
    if isinstance(fs, LocalFileSystem):
        with suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def sha256(fs: AbstractFileSystem, path: str) -> tuple[str, int]:
    """The SHA-256 hex digest and size of a file, as stored."""
    digest, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextmanager
def atomic(fs: AbstractFileSystem, where: str, name: str) -> Iterator[str]:
    """Write `where/name` whole or not at all: the block writes (and closes) the temporary path it is given;
    only when the block ends without an error is that file renamed to `name`."""
    temporary = f"{where}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield temporary
        _synced(fs, temporary)
        fs.mv(temporary, f"{where}/{name}")
    except BaseException:
        with suppress(Exception):
            if fs.exists(temporary):
                fs.rm(temporary)
        raise
    _synced(fs, where)


def write_bytes(fs: AbstractFileSystem, where: str, name: str, data: bytes) -> None:
    with atomic(fs, where, name) as temporary, fs.open(temporary, "wb") as out:
        out.write(data)


def prune(template: str, sync: str, keep: int) -> list[str]:
    """Remove the sync's files past the newest `keep` (each with its manifest), manifests whose file is gone,
    and temporary files a killed run left; the names of the files removed."""
    fs, folders = fsspec.core.url_to_fs(template.format(sync=sync, date="*"))  # every date's folder
    folders = folders.rstrip("/")
    pattern = _pattern(sync)
    files, manifests = {}, []
    for path in fs.glob(f"{folders}/{sync}-*"):
        name = path.rsplit("/", 1)[-1]
        match = pattern.fullmatch(name)
        if match:
            files[path] = (match.group(1), int(match.group(2) or 1))
        elif name.endswith(MANIFEST) and pattern.fullmatch(name[:-len(MANIFEST)]):
            manifests.append(path)
    newest = sorted(files, key=lambda p: files[p], reverse=True)
    removed = newest[keep:]
    for path in removed:
        fs.rm(path)
    kept = set(newest[:keep])
    for manifest in manifests:
        if manifest[:-len(MANIFEST)] not in kept:
            fs.rm(manifest)
    for temporary in fs.glob(f"{folders}/.{sync}-*.tmp"):
        with suppress(FileNotFoundError):
            fs.rm(temporary)
    return [p.rsplit("/", 1)[-1] for p in removed]
