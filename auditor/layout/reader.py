"""An OCI image layout on disk (a directory, or a tar of one) as a ManifestSource.

A layout has no referrers API, and tools disagree on how they record referrers: notation
keeps a ``sha256-<hex>`` fallback tag index that can miss signatures, and some layouts have no
fallback tag at all. So referrers here are the union of the fallback tag index and every
manifest reachable from ``index.json`` whose ``subject`` names the digest.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

from auditor import gojson
from auditor.config import DEFAULT_LIMITS
from auditor.errors import DigestMismatch, MalformedContent, NotFound, RegistryError, TooLarge
from auditor.gojson import fields
from auditor.model import Descriptor
from auditor.oci import mediatypes as mt
from auditor.oci.digest import fallback_tag, is_valid_digest, verify_digest
from auditor.oci.manifest import (
    FetchedManifest,
    ImageIndex,
    Manifest,
    parse_manifest,
    referrer_descriptor,
)
from auditor.oci.reference import LAYOUT_PREFIX

DEFAULT_MAX_TAR_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_MAX_TAR_MEMBERS = 100_000
_MAX_INDEX_JSON_BYTES = 16 * 1024 * 1024
_MAX_MARKER_BYTES = 64 * 1024
_BLOB_PATH = re.compile(r"^blobs/(sha256/[a-f0-9]{64}|sha512/[a-f0-9]{128})$")
_LAYOUT_FILES = frozenset({"oci-layout", "index.json"})


@dataclass(frozen=True)
class _Entry:
    """One ``index.json`` entry: its descriptor and its ref name, if any."""

    descriptor: Descriptor
    ref_name: str | None


class OciLayoutSource:
    """Read-only ManifestSource over one OCI image layout directory.

    The layout is treated as immutable for the life of the object: the ``subject`` scan is
    done once and cached.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_manifest_bytes: int = DEFAULT_LIMITS.max_manifest_bytes,
        display_path: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_manifest_bytes = max_manifest_bytes
        self._display = f"{LAYOUT_PREFIX}{display_path or self.path}"
        self._entries = self._read_index_json()
        # Lookups by tag and by digest answer from maps, not a scan of index.json per node
        # (a layout of 10^4 tags is audited in 10^5 lookups); the first entry wins, as before.
        self._by_ref: dict[str, _Entry] = {}
        self._by_digest: dict[str, Descriptor] = {}
        for entry in self._entries:
            if entry.ref_name is not None:
                self._by_ref.setdefault(entry.ref_name, entry)
            self._by_digest.setdefault(entry.descriptor.digest, entry.descriptor)
        self._subject_index: dict[str, list[Descriptor]] | None = None
        self._cleanup: weakref.finalize[[Path, bool], OciLayoutSource] | None = None

    # -- ManifestSource -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._display

    async def list_repositories(self) -> list[str]:
        """A layout holds one unnamed repository."""
        return [""]

    async def list_tags(self, repository: str) -> list[str]:
        """Every ref name in index.json, in file order; fallback tags included, as registries do."""
        seen: dict[str, None] = {}
        for entry in self._entries:
            if entry.ref_name is not None:
                seen.setdefault(entry.ref_name, None)
        return list(seen)

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        return self.fetch_manifest(reference)

    async def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        return self._read_blob(digest, max_bytes, "blob")

    async def get_referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Fallback tag index entries first, in their order, then ``subject`` matches; each once."""
        if not is_valid_digest(digest):
            raise MalformedContent(f"{self.name}: {digest!r} is not a valid digest")
        found: dict[str, Descriptor] = {}
        tag = fallback_tag(digest)
        if tag in self._by_ref:
            fetched = self.fetch_manifest(tag)
            if not isinstance(fetched.manifest, ImageIndex):
                raise MalformedContent(
                    f"{self.name}: referrers fallback tag {tag} is not an image index"
                )
            for desc in fetched.manifest.manifests:
                found.setdefault(desc.digest, desc)
        for desc in self._subjects().get(digest, []):
            known = found.get(desc.digest)
            if known is None:
                found[desc.digest] = desc
            elif known.artifact_type is None:
                # The fallback index omitted artifactType; the manifest itself knows it.
                found[desc.digest] = desc
        result = list(found.values())
        if artifact_type is not None:
            result = [d for d in result if d.artifact_type == artifact_type]
        return result

    # -- layout-specific ------------------------------------------------------------------

    def untagged_roots(self) -> list[str]:
        """Digests of ``index.json`` entries that have no ref name and refer to nothing.

        Some layouts (docker buildx's, for one) name no tag at all; these are the images in
        them, as opposed to signature manifests, which carry a ``subject``.
        """
        roots: list[str] = []
        for entry in self._entries:
            if entry.ref_name is not None or entry.descriptor.digest in roots:
                continue
            fetched = self.fetch_manifest(entry.descriptor.digest)
            if fetched.manifest.subject is None:
                roots.append(entry.descriptor.digest)
        return roots

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        """A manifest by tag (ref name) or digest: size-limited, digest-verified, parsed."""
        expected: Descriptor | None = None
        if is_valid_digest(reference):
            digest = reference
            expected = self._by_digest.get(digest)
        else:
            entry = self._by_ref.get(reference)
            if entry is None:
                raise NotFound(f"{self.name}: no tag {reference!r} in index.json")
            expected, digest = entry.descriptor, entry.descriptor.digest
        raw = self._read_blob(digest, self.max_manifest_bytes, "manifest")
        if expected is not None and expected.size != len(raw):
            raise DigestMismatch(
                f"{self.name}: manifest {digest} is {len(raw)} bytes, "
                f"index.json says {expected.size}"
            )
        where = f"{self.name}: manifest {digest}"
        manifest = parse_manifest(raw, None, where)
        descriptor = Descriptor(
            media_type=manifest.media_type,
            digest=digest,
            size=len(raw),
            artifact_type=manifest.artifact_type,
        )
        return FetchedManifest(descriptor=descriptor, raw=raw, manifest=manifest)

    def close(self) -> None:
        """Remove the temporary extraction of a tar layout (no-op for a directory)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> OciLayoutSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _read_index_json(self) -> list[_Entry]:
        if not self.path.is_dir():
            raise NotFound(f"{self.name}: not a directory")
        try:
            marker = read_regular_file(
                self.path / "oci-layout", _MAX_MARKER_BYTES, f"{self.name}: oci-layout"
            )
        except NotFound:
            raise NotFound(f"{self.name}: no oci-layout file; not an OCI image layout") from None
        layout_doc = gojson.loads(marker, f"{self.name}: oci-layout")
        if isinstance(layout_doc, dict):
            version = fields(layout_doc, ("imageLayoutVersion",), f"{self.name}: oci-layout").get(
                "imageLayoutVersion"
            )
        else:
            version = None
        if not isinstance(version, str) or not version.startswith("1."):
            raise MalformedContent(
                f"{self.name}: oci-layout has no supported imageLayoutVersion (got {version!r})"
            )
        try:
            raw = read_regular_file(
                self.path / "index.json", _MAX_INDEX_JSON_BYTES, f"{self.name}: index.json"
            )
        except NotFound:
            raise NotFound(f"{self.name}: no index.json") from None
        index = parse_manifest(raw, mt.OCI_INDEX, f"{self.name}: index.json")
        if not isinstance(index, ImageIndex):
            raise MalformedContent(f"{self.name}: index.json is not an image index")
        return [_Entry(d, d.annotations.get(mt.ANNOTATION_REF_NAME)) for d in index.manifests]

    def _blob_path(self, digest: str) -> Path:
        if not is_valid_digest(digest):
            raise MalformedContent(f"{self.name}: {digest!r} is not a valid digest")
        algorithm, hexpart = digest.split(":", 1)
        return self.path / "blobs" / algorithm / hexpart

    def _read_blob(self, digest: str, max_bytes: int, what: str) -> bytes:
        path = self._blob_path(digest)
        try:
            data = read_regular_file(path, max_bytes, f"{self.name}: {what} {digest}")
        except NotFound:
            raise NotFound(f"{self.name}: {what} {digest} not found in blobs/") from None
        verify_digest(data, digest, f"{self.name}: {what} {digest}")
        return data

    def _subjects(self) -> dict[str, list[Descriptor]]:
        """subject digest -> referrer descriptors, over every manifest reachable from index.json."""
        if self._subject_index is None:
            index: dict[str, list[Descriptor]] = {}
            for found, manifest in self._walk():
                if manifest.subject is None:
                    continue
                index.setdefault(manifest.subject.digest, []).append(
                    referrer_descriptor(manifest, found.digest, found.size)
                )
            self._subject_index = index
        return self._subject_index

    def _walk(self) -> Iterator[tuple[Descriptor, Manifest]]:
        """Every manifest reachable from index.json, once each.

        A top-level entry that is missing or corrupt is an error (it could hide a signature);
        a missing child of a nested index is tolerated, since sparse layouts are legal, and so
        is a malformed one (it can be no valid signature; where it is listed, it is judged).
        """
        seen: set[str] = set()
        stack = [(e.descriptor, True) for e in reversed(self._entries)]
        while stack:
            desc, top_level = stack.pop()
            if desc.digest in seen or desc.media_type not in mt.MANIFEST_TYPES:
                continue
            seen.add(desc.digest)
            try:
                fetched = self.fetch_manifest(desc.digest)
            except (NotFound, MalformedContent):
                # A refused child (say, a signature manifest two readers would read two ways)
                # cannot be a valid signature of anything; it is judged where it is listed.
                if top_level:
                    raise
                continue
            manifest = fetched.manifest
            yield fetched.descriptor, manifest
            if isinstance(manifest, ImageIndex):
                stack.extend((child, False) for child in reversed(manifest.manifests))


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path, max_bytes: int, what: str) -> bytes:
    """A layout file's bytes: only a regular file (a symlink to one is fine), size checked first.

    Opened without blocking and checked on the open descriptor (no window between check and
    read), so a FIFO, a device, a socket or a symlink to ``/dev/zero`` under a layout's name
    neither blocks nor fills memory: each is a RegistryError naming the file. At most
    ``max_bytes`` are read even if the file grows meanwhile (TooLarge).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"{what} not found") from None
    except OSError as exc:
        raise RegistryError(f"{what} cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)
        if kind is not None:
            raise RegistryError(f"{what} is {kind}, not a regular file; refused")
        if info.st_size > max_bytes:
            raise TooLarge(f"{what} is {info.st_size} bytes, limit {max_bytes}")
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise RegistryError(f"{what} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if total > max_bytes:
        raise TooLarge(f"{what} exceeds {max_bytes} bytes")
    return b"".join(chunks)


def open_layout(
    path: Path,
    *,
    max_manifest_bytes: int = DEFAULT_LIMITS.max_manifest_bytes,
    max_tar_bytes: int = DEFAULT_MAX_TAR_BYTES,
) -> OciLayoutSource:
    """A layout directory as is, or a tar of one extracted safely into a private temp dir.

    The temp dir lives as long as the returned source (``close()`` removes it earlier).
    """
    path = Path(path)
    if path.is_dir():
        return OciLayoutSource(path, max_manifest_bytes=max_manifest_bytes)
    try:
        kind = _not_regular(path.stat().st_mode)
    except FileNotFoundError:
        raise NotFound(f"{LAYOUT_PREFIX}{path}: no such file or directory") from None
    except OSError as exc:
        raise RegistryError(f"{LAYOUT_PREFIX}{path}: {exc.strerror or exc}") from None
    if kind is not None:
        raise RegistryError(f"{LAYOUT_PREFIX}{path} is {kind}, not a layout directory or tar")
    workdir = Path(tempfile.mkdtemp(prefix="auditor-layout-"))
    try:
        extract_layout_tar(path, workdir, max_bytes=max_tar_bytes)
        source = OciLayoutSource(workdir, max_manifest_bytes=max_manifest_bytes, display_path=path)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    source._cleanup = weakref.finalize(source, shutil.rmtree, workdir, True)
    return source


def extract_layout_tar(
    tar_path: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_TAR_BYTES,
    max_members: int = DEFAULT_MAX_TAR_MEMBERS,
) -> None:
    """Extract only ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>`` regular files.

    Anything that could write outside ``dest`` (absolute names, ``..``, links, devices) is
    refused outright rather than skipped, because a tar carrying it is not a plain layout.
    Other regular files (e.g. docker's manifest.json) are ignored.
    """
    where = f"{LAYOUT_PREFIX}{tar_path}"
    try:
        fd = os.open(tar_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        handle = os.fdopen(fd, "rb")
    except OSError as exc:
        raise RegistryError(f"{where}: cannot be opened ({exc.strerror or exc})") from None
    kind = _not_regular(os.fstat(handle.fileno()).st_mode)
    if kind is not None:
        handle.close()
        raise RegistryError(f"{where} is {kind}, not a layout directory or tar")
    try:
        archive = tarfile.open(fileobj=handle, mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        handle.close()
        raise MalformedContent(f"{where}: not a layout directory or readable tar ({exc})") from None
    total = 0
    written: set[str] = set()
    with handle, archive:
        for count, member in enumerate(archive, 1):
            if count > max_members:
                raise TooLarge(f"{where}: more than {max_members} tar members")
            name = _safe_member_name(member.name, where)
            if member.issym() or member.islnk():
                raise MalformedContent(f"{where}: refusing link member {member.name!r}")
            if member.isdir():
                continue
            if not member.isfile():
                raise MalformedContent(f"{where}: refusing special member {member.name!r}")
            if name not in _LAYOUT_FILES and not _BLOB_PATH.match(name):
                continue
            if name in written:
                raise MalformedContent(f"{where}: member {name!r} appears twice")
            total += member.size
            if total > max_bytes:
                raise TooLarge(f"{where}: layout exceeds {max_bytes} bytes when extracted")
            source = archive.extractfile(member)
            if source is None:
                raise MalformedContent(f"{where}: cannot read member {member.name!r}")
            target = dest.joinpath(*PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, target.open("xb") as out:
                remaining = member.size
                while remaining > 0:
                    chunk = source.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise MalformedContent(f"{where}: member {member.name!r} is truncated")
                    out.write(chunk)
                    remaining -= len(chunk)
            written.add(name)
    if "oci-layout" not in written:
        raise MalformedContent(f"{where}: tar holds no oci-layout file; not an OCI image layout")


def _safe_member_name(raw: str, where: str) -> str:
    """Normalise ``./x`` to ``x``; refuse absolute names and any ``..`` component."""
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw):
        raise MalformedContent(f"{where}: refusing absolute tar member {raw!r}")
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise MalformedContent(f"{where}: refusing tar member {raw!r}: path escapes the layout")
    return "/".join(parts)
