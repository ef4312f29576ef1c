"""Redaction of secrets at record time: the secret's bytes never reach the tape.

A redacted value keeps what helps debugging and nothing that grants access: the auth scheme (``Bearer``)
and a keyed fingerprint, ``REDACTED:<12 hex>``, the first 48 bits of HMAC-SHA256(key, secret). Equal
secrets under the same key have equal fingerprints, so two tapes can show "same API key" without either
holding it; the key is never stored, only its id, so a fingerprint cannot be tested against guesses by
someone who only has the tape.

The key is, in order: the ``key`` argument, ``$STREAMTAPE_REDACT_KEY``, or a per-user key file
(``$XDG_CONFIG_HOME/streamtape/redact.key``, created 0600 on first use, in directories created 0700 whatever
the umask, and never through a link); if that cannot be written, a per-process random key (fingerprints then
compare only within one process).

What is fingerprinted is a value's bytes (spec/tape-format.md section 5): a header value's ISO-8859-1 bytes
(the raw bytes from the wire), a query value's or URL password's bytes after percent-decoding (UTF-8 text
stays UTF-8), so different secrets never share a fingerprint by way of their encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote_plus, unquote_to_bytes, urlsplit, urlunsplit

from ..format.records import Headers, Redaction
from ..storage.atomic import create_exclusive

#: Request headers whose values are secrets. Matched case-insensitively.
SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie")
#: Response headers whose values are secrets.
SECRET_RESPONSE_HEADERS = ("set-cookie",)
#: URL query parameters whose values are secrets.
SECRET_QUERY = ("key", "api_key", "apikey", "access_token", "token")

AUTH_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*) +(\S.*)$")  # "Bearer <token>": the scheme is kept
_process_key: bytes | None = None


def _key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "streamtape" / "redact.key"


def process_key() -> bytes:
    """A random key for this process only: for fingerprints that never leave it (error messages)."""
    global _process_key
    if _process_key is None:
        _process_key = secrets.token_bytes(32)
    return _process_key


def private_directory(path: Path) -> None:
    """Create ``path`` and every missing parent with mode 0700 (``mkdir -p`` would give the parents 0777
    less the umask, which may be nothing). An existing directory is left as it is."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # created meanwhile by another process
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask only ever downwards: be exact


def _read_key(path: Path) -> bytes | None:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return key or None


def default_key() -> bytes:
    """The fingerprint key, found as the module docstring says."""
    if env := os.environ.get("STREAMTAPE_REDACT_KEY"):
        return env.encode()
    path = _key_file()
    if (key := _read_key(path)) is not None:
        return key
    key = secrets.token_bytes(32)
    try:
        private_directory(path.parent)
        if create_exclusive(path, (key.hex() + "\n").encode()):
            return key
    except OSError:
        return process_key()
    return _read_key(path) or process_key()  # another process created it first: use theirs


def _decoded(value: str) -> bytes:
    """A URL component's bytes after percent-decoding (``+`` is a space): what section 5 fingerprints."""
    return unquote_to_bytes(value.replace("+", " "))


class Redactor:
    """Replaces secret header values and query parameters with scheme + fingerprint."""

    def __init__(
        self,
        *,
        headers: Iterable[str] = (),
        query: Iterable[str] = (),
        key: bytes | str | None = None,
    ) -> None:
        self.headers = frozenset(h.lower() for h in (*SECRET_HEADERS, *SECRET_RESPONSE_HEADERS, *headers))
        self.query = frozenset(q.lower() for q in (*SECRET_QUERY, *query))
        self._key = key.encode() if isinstance(key, str) else (key if key is not None else default_key())
        self.key_id = hmac.new(self._key, b"streamtape key id", hashlib.sha256).hexdigest()[:12]

    def describe(self) -> Redaction:
        return Redaction(headers=sorted(self.headers), query=sorted(self.query), key_id=self.key_id)

    def fingerprint(self, secret: str | bytes) -> str:
        """``REDACTED:<12 hex>`` for a secret's bytes; a ``str`` is a header value: its ISO-8859-1 bytes (the
        raw bytes from the wire), or UTF-8 for text that has characters beyond ISO-8859-1."""
        if isinstance(secret, str):
            try:
                data = secret.encode("latin-1")
            except UnicodeEncodeError:
                data = secret.encode("utf-8", "surrogatepass")
        else:
            data = secret
        digest = hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return f"REDACTED:{digest[:12]}"

    def _value(self, name: str, value: str) -> str:
        if name in ("cookie", "set-cookie"):
            return self._cookie(value, response=name == "set-cookie")
        match = AUTH_SCHEME.match(value)
        if match:
            return f"{match.group(1)} {self.fingerprint(match.group(2))}"
        return self.fingerprint(value)

    def _cookie(self, value: str, *, response: bool) -> str:
        """Keep cookie names and attributes; fingerprint the values."""
        parts = value.split(";")
        for i, part in enumerate(parts):
            if response and i > 0:
                break  # Set-Cookie attributes (Path, HttpOnly, ...) are not secrets
            name, eq, secret = part.partition("=")
            parts[i] = f"{name}={self.fingerprint(secret)}" if eq else self.fingerprint(part)
        return ";".join(parts)

    def redact_headers(self, headers: Headers) -> Headers:
        return [(n, self._value(n.lower(), v)) if n.lower() in self.headers else (n, v) for n, v in headers]

    def redact_url(self, url: str) -> str:
        """Fingerprint secret query values; every other byte of the URL stays as it was."""
        parts = urlsplit(url)
        changed = False
        if parts.password is not None:  # http://user:secret@host/: the user stays, the password goes
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            parts = parts._replace(netloc=f"{user}:{self.fingerprint(_decoded(parts.password))}@{hostport}")
            changed = True
        pieces = parts.query.split("&") if parts.query else []
        for i, piece in enumerate(pieces):
            name, eq, value = piece.partition("=")
            if eq and unquote_plus(name).lower() in self.query:
                pieces[i] = f"{name}={self.fingerprint(_decoded(value))}"
                changed = True
        if not changed:
            return url
        return urlunsplit(parts._replace(query="&".join(pieces)) if pieces else parts)


#: What a transport's ``redact=`` takes: True (the default names), False, extra names to add, or a Redactor.
RedactOption = bool | str | Iterable[str] | Redactor


def redactor_for(option: RedactOption) -> Redactor | None:
    """The redactor a ``redact=`` option asks for; None when recording is to keep everything."""
    if option is True:
        return Redactor()
    if option is False:
        return None
    if isinstance(option, Redactor):
        return option
    names = [option] if isinstance(option, str) else list(option)
    return Redactor(headers=names, query=names)


def is_redacted(value: str) -> bool:
    """Whether a value (or its part after the auth scheme) is a redaction fingerprint."""
    return "REDACTED:" in value
