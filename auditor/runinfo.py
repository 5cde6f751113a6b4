"""What a report was made with: the tool's version, the config file, the trust files (I/O edge).

Every report records it (formats/ print it), so a result can be traced to the exact policy and
certificates that produced it: a verdict changed between two runs because the trust store did
is told apart from one that changed because the registry did. Only paths and sha256 hashes are
recorded, never contents.

A directory (a trust store, one named store ``x509/ca/NAME``) is hashed as a whole: the sha256
of one line ``<relative path>\\0<sha256 of the file>\\n`` per regular file, in path order. It
does not depend on where the directory lies, so the same store on two machines has the same
hash. Files are read in chunks; symlinks to directories are not followed (``Path.rglob``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from auditor import __version__
from auditor.config import AuditorConfig
from auditor.model import FileStamp, RunInfo

_CHUNK = 1 << 16
MAX_FILES = 10_000
"""A trust store with more files is recorded without a hash (it is not what notation reads)."""


def file_sha256(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def directory_sha256(root: Path) -> str | None:
    """Relative paths and contents of every regular file under ``root`` (see the module doc)."""
    try:
        files = sorted(
            (p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()
        )
    except OSError:
        return None
    if len(files) > MAX_FILES:
        return None
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(f"{relative}\0{file_sha256(path) or 'unreadable'}\n".encode())
    return digest.hexdigest()


def stamp(path: Path | None, name: str | None = None) -> FileStamp | None:
    """A file's or a directory's path and hash; None for no path."""
    if path is None:
        return None
    sha256 = directory_sha256(path) if path.is_dir() else file_sha256(path)
    return FileStamp(path=str(path), sha256=sha256, name=name)


def holds_inline_secrets(config: AuditorConfig) -> bool:
    """Whether the config file itself holds a password or an identity token (``auth:``).

    Such a file is recorded by path only: the sha256 of a file whose every other byte a reader
    may know (configs are committed, the report is published) lets anyone test password guesses
    offline against it.
    """
    return any(
        r.auth is not None and (r.auth.password is not None or r.auth.identity_token is not None)
        for r in config.registries
    )


def run_info(
    *,
    config: Path | None = None,
    config_hashed: bool = True,
    trust_policy: Path | None = None,
    trust_store: Path | None = None,
    named_stores: Iterable[tuple[str, Path]] = (),
    cosign_files: Iterable[Path] = (),
) -> RunInfo:
    """Stamps of everything given; ``named_stores`` are ``("ca:acme", directory)`` pairs."""
    return RunInfo(
        version=__version__,
        config=(
            stamp(config) if config_hashed or config is None else FileStamp(str(config), None)
        ),
        trust_policy=stamp(trust_policy),
        trust_store=stamp(trust_store),
        trust_stores=tuple(
            s for name, path in named_stores if (s := stamp(path, name)) is not None
        ),
        cosign=tuple(s for path in cosign_files if (s := stamp(path)) is not None),
    )
