"""Signed checkpoints of the audit chain's head, kept outside the database.

Beat writes one a minute (when the head moved) as a JSON line to settings.AUDIT_CHECKPOINT_FILE and as a log
line: position, hash, time and an HMAC-SHA256 under a key derived from SECRET_KEY. Someone who can rewrite
the database but not SECRET_KEY cannot forge one, so `audit_verify --checkpoint` finds a chain rewritten and
re-hashed before a checkpoint, or cut shorter than one.
"""
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from audit.chain import ChainFault, audit_seal
from audit.models import AuditSeal

logger = logging.getLogger(__name__)
TAIL_BYTES = 4096  # more than one line: enough to find the last checkpoint written


def _key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"portal audit checkpoint v1", hashlib.sha256).digest()


def checkpoint_signature(*, position, digest, at) -> str:
    message = json.dumps({"at": at, "hash": digest, "position": position}, sort_keys=True, separators=(",", ":"))
    return hmac.new(_key(), message.encode(), hashlib.sha256).hexdigest()


def _last_line(path: Path):
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - TAIL_BYTES))
            lines = file.read().splitlines()
    except FileNotFoundError:
        return None
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


def audit_checkpoint_write(path=None):
    """Append a signed checkpoint of the current head; None when the head has not moved since the last one."""
    path = Path(path or settings.AUDIT_CHECKPOINT_FILE)
    audit_seal()
    position, digest = AuditSeal.objects.order_by("-position").values_list("position", "hash").first() or (0, "")
    last = _last_line(path)
    if last and last.get("position") == position and last.get("hash") == digest:
        return None
    at = timezone.now().isoformat()
    line = {"position": position, "hash": digest, "at": at,
            "hmac": checkpoint_signature(position=position, digest=digest, at=at)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(json.dumps(line, sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
    logger.info("audit checkpoint %s", json.dumps(line, sort_keys=True))
    return line


def checkpoints_read(path):
    """({position: (hash, label)}, fault): every line must be a checkpoint signed with our key, and two
    checkpoints of one position must agree."""
    checkpoints = {}
    with Path(path).open() as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            label = f"checkpoint line {number}"
            try:
                line = json.loads(text)
                position, digest, at, signature = line["position"], line["hash"], line["at"], line["hmac"]
            except (ValueError, KeyError, TypeError):
                return checkpoints, ChainFault(f"{label} of {path} is not a checkpoint")
            expected = checkpoint_signature(position=position, digest=digest, at=at)
            if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
                return checkpoints, ChainFault(f"{label} of {path} has a bad signature: forged, or signed with another SECRET_KEY")
            if position in checkpoints and checkpoints[position][0] != digest:
                return checkpoints, ChainFault(f"{label} and {checkpoints[position][1]} disagree about position {position}")
            checkpoints.setdefault(position, (digest, f"{label} ({at})"))
    return checkpoints, None
