"""The pretrained zoo: generators found by name through `ganzoo.zoo` entry points, each with a card.

A distribution contributes cards with one entry point in the `ganzoo.zoo` group that names a
package; every sub-folder of that package holding a README.md is a card, and the folder's
name is the model's name. The README starts with YAML front matter (Hugging Face model-card
style) that `ModelCard` validates. The weights are a file beside the card or an https:// URL
(http:// only for a loopback host, for tests and local mirrors) or a file on the Hugging Face
Hub (hf://OWNER/REPO/PATH@REVISION), downloaded once into the cache; their sha256 is checked on
every load. A card folder on disk also works by its path.

Environment: GANZOO_CACHE (cache folder; else $XDG_CACHE_HOME/ganzoo, else ~/.cache/ganzoo),
GANZOO_OFFLINE=1 (or true, yes, on: never download), HF_HUB_OFFLINE (no Hub download) and
HF_ENDPOINT (another Hub).

A download follows redirects only to URLs that meet the card's own rule and fails when it
runs slower than DOWNLOAD_MIN_RATE bytes a second over DOWNLOAD_STALL_S seconds (a stalled or
trickling server), as curl's --speed-limit/--speed-time do; a large file on a slow but moving
link finishes. GANZOO_DOWNLOAD_TIMEOUT adds a cap on the whole transfer: connecting, the wait for
the headers and the body; at the cap the connection is shut. The Hub's files take
the same path: huggingface_hub names the URL, ganzoo's downloader fetches it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import hashlib
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPException
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from .errors import BrokenPlugin, CheckpointError, GanzooError, PluginNotFound, listed
from .registry import ZOO_GROUP, entries, pick

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CARD_FILE = "README.md"
#: a download fails when fewer than DOWNLOAD_MIN_RATE bytes a second arrive over this many seconds
DOWNLOAD_STALL_S = 30
DOWNLOAD_MIN_RATE = 1024
_TRUE = {"1", "true", "yes", "on"}
HUB = "hf://"
_CHUNK = 1 << 16
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class DownloadError(GanzooError):
    """Weights could not be downloaded (offline, HTTP error, truncated body)."""


class ModelCard(BaseModel):
    """A pretrained generator's card: the validated front matter of its README.md.

    `name` (the card's folder), `distribution` (the package that ships it) and `text` (the
    whole README) come from where the card was found; everything else from its front matter,
    which may carry more keys than ganzoo reads.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    distribution: str
    text: str
    license: str
    library_name: str = "ganzoo"
    tags: list[str] = []
    dataset: str = Field(description="the ganzoo dataset spec it was trained on, e.g. digits:size=16")
    loss: str
    constraints: list[str] = []
    generator: str
    generator_config: dict[str, Any]
    weights: str = Field(description="a file name beside the card, an https:// URL or hf://OWNER/REPO/PATH@REVISION")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, int | float | list[dict[str, int | float]]]  # lists: a conditional generator's per class
    training: dict[str, Any] = {}

    _folder: Any = PrivateAttr()  # a Traversable: where the card and a local weights file live

    @field_validator("weights")
    @classmethod
    def _inside_the_card(cls, weights: str) -> str:
        if "://" not in weights and (weights in ("", ".", "..") or "/" in weights or "\\" in weights):
            raise ValueError("must be a file name in the card's folder (no folders, no '..') or a URL")
        return weights

    @property
    def objective(self) -> str:
        """The loss and its constraints, e.g. 'wgan + clip'."""
        return " + ".join([self.loss, *self.constraints])


@dataclass(frozen=True)
class _CardSource:
    """One card folder offered by one distribution."""

    name: str
    distribution: str
    folder: Traversable


def _scan() -> tuple[list[_CardSource], list[str]]:
    """Every card of every card package, and a one-line reason for each package that does not import."""
    sources, broken = [], []
    for entry in entries("zoo", group=ZOO_GROUP):
        try:
            root = resources.files(entry.ep.module)
        except Exception as exc:  # a third party's broken package must not hide the other cards
            broken.append(
                f"card package '{entry.name}' from {entry.distribution} {entry.version} is broken: "
                f"importing {entry.ep.module} failed: {type(exc).__name__}: {exc}"
            )
            continue
        sources += [
            _CardSource(folder.name, entry.distribution, folder)
            for folder in root.iterdir()
            if folder.is_dir() and (folder / CARD_FILE).is_file()
        ]
    return sorted(sources, key=lambda s: (s.name, s.distribution)), broken


def broken_card_packages() -> list[str]:
    """One line per installed card package that cannot be imported."""
    return _scan()[1]


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the pretrained generators matching a shell-style pattern.

    A name offered by several distributions is listed once per distribution as DIST/NAME,
    so every returned name can be passed to `load_pretrained`.
    """
    sources = [s for s in _scan()[0] if fnmatch.fnmatchcase(s.name, pattern)]
    offered = [s.name for s in sources]
    return [f"{s.distribution}/{s.name}" if offered.count(s.name) > 1 else s.name for s in sources]


def _front_matter(text: str, where: str) -> dict[str, Any]:
    import yaml

    head, sep, _ = text.removeprefix("---\n").partition("\n---\n")
    if not text.startswith("---\n") or not sep:
        raise BrokenPlugin(f"{where} does not start with YAML front matter between '---' lines")
    try:
        front = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())  # YAML's message spans lines; a table row cannot
        raise BrokenPlugin(f"{where} has invalid YAML front matter: {reason}") from None
    if not isinstance(front, dict):
        raise BrokenPlugin(f"{where} front matter is not a mapping")
    return front


def card_folder(name: str) -> Path | None:
    """`name` as a card folder on disk (what `ganzoo zoo export` writes), or None."""
    path = Path(name)
    return path if path.is_dir() and (path / CARD_FILE).is_file() else None


def model_card(name: str) -> ModelCard:
    """The card of a pretrained generator, by name, DIST/NAME, or the path of a card folder."""
    folder = card_folder(name)
    if folder is not None:
        source = _CardSource(folder.resolve().name, f"the folder {folder}", folder)
    else:
        sources, broken = _scan()
        try:
            source = pick("pretrained model", name, sources)
        except PluginNotFound as exc:
            if not broken:
                raise
            raise PluginNotFound(f"{exc}; also, " + "; ".join(broken)) from None
    where = f"card '{source.name}' from {source.distribution} ({CARD_FILE})"
    text = (source.folder / CARD_FILE).read_text(encoding="utf-8")
    fields = {**_front_matter(text, where), "name": source.name, "distribution": source.distribution, "text": text}
    try:
        card = ModelCard.model_validate(fields)
    except ValidationError as exc:
        problems = listed([f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()], sep="; ")
        raise BrokenPlugin(f"{where} is invalid: {problems}") from None
    card._folder = source.folder
    return card


def cache_dir() -> Path:
    """Where downloaded weights live: $GANZOO_CACHE, else $XDG_CACHE_HOME/ganzoo, else ~/.cache/ganzoo."""
    if os.environ.get("GANZOO_CACHE"):
        folder = Path(os.environ["GANZOO_CACHE"])
        if folder.exists() and not folder.is_dir():
            raise DownloadError(f"GANZOO_CACHE={folder} is not a folder")
        return folder
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganzoo"


def _true(variable: str) -> bool:
    """An environment switch set to 1, true, yes or on (any case), as huggingface_hub reads its own."""
    return os.environ.get(variable, "").strip().lower() in _TRUE


def offline() -> bool:
    return _true("GANZOO_OFFLINE")


def total_timeout() -> float | None:
    """GANZOO_DOWNLOAD_TIMEOUT: a cap on a whole transfer, in seconds, only when the user sets one."""
    text = os.environ.get("GANZOO_DOWNLOAD_TIMEOUT")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise DownloadError(f"GANZOO_DOWNLOAD_TIMEOUT={text!r} is not a positive number of seconds")
    return seconds


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, card: ModelCard, advice: str) -> None:
    actual = file_sha256(path)
    if actual != card.sha256:
        raise CheckpointError(
            f"{path} has sha256 {actual}, but the card of '{card.name}' expects {card.sha256}: {advice}"
        )


def _allowed(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


def _check_url(url: str, card: ModelCard) -> None:
    if not _allowed(url):
        raise BrokenPlugin(
            f"card '{card.name}' from {card.distribution}: weights URL {url} must be https:// "
            "(http:// only for 127.0.0.1 or localhost)"
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL that the card's own URL rule allows."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not _allowed(newurl):
            raise DownloadError(
                f"downloading {req.full_url} failed: it redirects to {newurl}, which is not https:// "
                "(http:// only for 127.0.0.1 or localhost)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """GANZOO_DOWNLOAD_TIMEOUT's cap on a whole transfer. The sockets' timeout bounds connecting;
    once connected, a socket is shut when the cap expires, which ends at once a read that waits
    for the headers or the body (a socket timeout alone restarts with every byte that trickles in)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.started = seconds, time.monotonic()
        self.socket_timeout = DOWNLOAD_STALL_S if seconds is None else min(DOWNLOAD_STALL_S, seconds)
        self._sockets: list[socket.socket] = []
        self._lock, self._expired = threading.Lock(), False
        self._timer = None if seconds is None else threading.Timer(seconds, self._expire)

    def __enter__(self) -> _Deadline:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def check(self, url: str, received: int) -> None:
        """A DownloadError when the cap has passed: what went wrong then is that it took too long."""
        if self.seconds is not None and (self._expired or time.monotonic() - self.started >= self.seconds):
            raise DownloadError(
                f"downloading {url} failed: not finished after {self.seconds:g} s "
                f"({received} bytes; GANZOO_DOWNLOAD_TIMEOUT sets the limit)"
            )

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self._expired
        if expired:  # connected just as the cap expired
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired, sockets = True, list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Mixed into urllib's HTTP(S) handlers: each connection's socket goes to the deadline once open."""

    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        deadline = self.deadline

        class Watched(http_class):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        return super().do_open(Watched, req, **kwargs)


class _WatchedHTTP(_Watched, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPS(_Watched, urllib.request.HTTPSHandler):
    pass


def download(
    url: str, target: str | Path, *, sha256: str | None = None, md5: str | None = None, what: str | None = None,
    quiet: bool = False, token: str | None = None,
) -> Path:
    """Fetch `url` into `target` atomically and return it: ganzoo's one downloader, for weights and data.

    The file is kept only when its `sha256` (or, for data published with one, its `md5`) is the
    expected one; a failure of any kind leaves no file behind. https only (http for loopback
    hosts), every redirect checked, bounded by DOWNLOAD_MIN_RATE over DOWNLOAD_STALL_S (and
    GANZOO_DOWNLOAD_TIMEOUT when set), refused under GANZOO_OFFLINE. `what` names the file in
    messages; `token` goes as a bearer token to `url`'s own host over https only, never on a redirect.
    """
    from tqdm.auto import tqdm

    target = Path(target)
    what = what or target.name
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    if not expected:
        raise ValueError("download needs the sha256 or md5 the file must have")
    if not _allowed(url):
        raise DownloadError(f"downloading {url} is refused: it is not https:// (http:// only for 127.0.0.1 or localhost)")
    if offline():
        raise DownloadError(
            f"{what} needs {url}, but GANZOO_OFFLINE={os.environ['GANZOO_OFFLINE']} forbids downloads (cache: {target})"
        )
    deadline = _Deadline(total_timeout())
    opener = urllib.request.build_opener(_CheckedRedirects, _WatchedHTTP(deadline), _WatchedHTTPS(deadline))
    request = urllib.request.Request(url)
    if token and urllib.parse.urlsplit(url).scheme == "https":
        request.add_unredirected_header("Authorization", f"Bearer {token}")

    def fetch(tmp: Path) -> None:
        digest, received = hashlib.new(algorithm), 0
        window_start, window_bytes = deadline.started, 0  # the last DOWNLOAD_STALL_S seconds' bytes
        try:
            with opener.open(request, timeout=deadline.socket_timeout) as response, tmp.open("wb") as out:
                declared = response.headers.get("Content-Length")
                total = int(declared) if declared else None
                with tqdm(total=total, unit="B", unit_scale=True, desc=what, disable=quiet) as bar:
                    # read1: whatever has arrived, so a server that trickles bytes meets the rate check
                    for chunk in iter(lambda: response.read1(_CHUNK), b""):
                        now = time.monotonic()
                        window_bytes += len(chunk)
                        if now - window_start >= DOWNLOAD_STALL_S:
                            if window_bytes < DOWNLOAD_MIN_RATE * DOWNLOAD_STALL_S:
                                raise DownloadError(
                                    f"downloading {url} failed: slower than {DOWNLOAD_MIN_RATE} bytes/s for "
                                    f"{DOWNLOAD_STALL_S:g} s ({received} bytes so far)"
                                )
                            window_start, window_bytes = now, 0
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            deadline.check(url, received)
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, TimeoutError):  # connecting, or the headers or the body, as urllib wraps it or not
                reason = f"no data for {DOWNLOAD_STALL_S:g} s"
            raise DownloadError(f"downloading {url} failed: {reason}") from None
        deadline.check(url, received)  # a connection shut at the cap reads as the body's end
        if total is not None and received != total:
            raise DownloadError(f"downloading {url} failed: the body was cut short ({received} of {total} bytes)")
        if digest.hexdigest() != expected:
            raise DownloadError(
                f"{url} has {algorithm} {digest.hexdigest()}, but {what} expects {expected}; nothing was kept"
            )

    from .checkpoint import atomic_write

    with deadline:
        return atomic_write(target, fetch)


@contextlib.contextmanager
def weights_file(card: ModelCard, quiet: bool = False) -> Iterator[Path]:
    """A local path to the card's weights, downloaded into the cache if need be, its sha256 verified."""
    if "://" not in card.weights:
        with resources.as_file(card._folder / card.weights) as path:
            if not path.is_file():
                raise CheckpointError(f"{path}: no such file (the weights of '{card.name}')")
            _verify(path, card, "the file is damaged or was replaced")
            yield path
        return
    url, token = _hub_url(card) if card.weights.startswith(HUB) else (card.weights, None)
    _check_url(url, card)
    from .checkpoint import remove_stale_temps  # torch comes with it: import it only to load weights

    path = cache_dir() / f"{card.name}-{card.sha256[:16]}.safetensors"
    if path.exists() and not path.is_file():
        raise DownloadError(f"{path} is a folder where the weights of '{card.name}' are to be cached; move it away")
    remove_stale_temps(path.parent)
    if not path.is_file():
        if card.weights.startswith(HUB) and (offline() or _true("HF_HUB_OFFLINE")):
            raise DownloadError(f"'{card.name}' needs {card.weights}, but GANZOO_OFFLINE or HF_HUB_OFFLINE forbids "
                                f"downloads and the cache does not hold it ({path})")  # fmt: skip
        download(url, path, sha256=card.sha256, what=f"the card of '{card.name}'", quiet=quiet, token=token)
    _verify(path, card, "the cached file is damaged; delete it to download it again")
    yield path


#: the Hub's rules for the parts of hf://OWNER/REPO/PATH@REVISION (git's ref names, safe paths)
_HUB_REF = re.compile(r"hf://(?P<repo>[^/@]+/[^/@]+)/(?P<path>[^@]+?)(?:@(?P<revision>[^@]+))?")
_HUB_PART = re.compile(r"[\w\-.]+(/[\w\-.]+)*", re.ASCII)


def _hub_url(card: ModelCard) -> tuple[str, str | None]:
    """The https URL of a card's hf:// weights, and the user's Hub token; every part of the reference
    is checked first (no '..', no empty or hidden segments), so nothing but ganzoo's own cache file
    is ever written. HF_ENDPOINT is read when the file is asked for."""
    try:
        from huggingface_hub import get_token, hf_hub_url
        from huggingface_hub.utils import HFValidationError, validate_repo_id
    except ImportError:
        raise DownloadError(f"'{card.name}' is on the Hugging Face Hub: pip install 'ganzoo[hub]'") from None
    bad = f"card '{card.name}' from {card.distribution}: weights {card.weights[:200]!r}"
    match = _HUB_REF.fullmatch(card.weights)
    if not match:
        raise BrokenPlugin(f"{bad} is not hf://OWNER/REPO/PATH[@REVISION]")
    repo, path, revision = match["repo"], match["path"], match["revision"] or "main"
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise BrokenPlugin(f"{bad} names no valid Hub repository: {exc}") from None
    for part, value in (("path", path), ("revision", revision)):
        segments = value.split("/")
        if not _HUB_PART.fullmatch(value) or any(s.startswith(".") or s.endswith(".lock") for s in segments):
            raise BrokenPlugin(
                f"{bad}: its {part} {value[:100]!r} is not allowed (letters, digits, '-', '_' and '.' in "
                "'/'-separated parts, none starting with '.')"
            )
    endpoint = os.environ.get("HF_ENDPOINT") or None
    if endpoint and not _allowed(endpoint):
        raise DownloadError(f"HF_ENDPOINT={endpoint} must be https:// (http:// only for 127.0.0.1 or localhost)")
    return hf_hub_url(repo, path, revision=revision, endpoint=endpoint), get_token()


def load_pretrained(name: str, device: Any = "cpu", quiet: bool = False):
    """A pretrained generator by name (or DIST/NAME), in eval mode, its weights verified by sha256."""
    from .checkpoint import load_generator

    card = model_card(name)
    with weights_file(card, quiet) as path:
        return load_generator(path, device=device)
