"""Read the descriptors of a location: files, URLs and GitHub organizations, multi-document YAML, and the
`Location` entities they hold, followed with their targets resolved relative to the file that names them.

A file or URL is read once per refresh (a Location tree with a cycle ends where it closes). Everything that
goes wrong — a file that cannot be read, YAML that does not parse, a descriptor that does not validate — is
a DescriptorError naming the file, the document's index in it and the field; what else the file holds is
still read. URLs are fetched through portal.outbound (private addresses refused unless allowed) and only
under `settings.BACKSTAGE_URL_ALLOWED_PREFIXES`; files only under `file_roots` when it is given (a registered
location's `settings.BACKSTAGE_FILE_ROOTS`; the one-off command reads what its operator names)."""
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import yaml
from django.conf import settings

from catalog.backstage.descriptors import Descriptor, descriptor_key, descriptor_parse
from portal.errors import PortalError, ValidationFailed
from portal.outbound import OutboundRefused, outbound_session

FILES_MAX = 20000  # files one read follows, Location trees and organizations included
BYTES_MAX = 5 * 1024 * 1024
TIMEOUT_SECONDS = 20
# libyaml's loader when PyYAML was built with it (several times faster), else the pure-Python one; both safe.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PLACEHOLDERS = ("$text", "$json", "$yaml")  # Backstage's substitutions; each gives the named file's text here


@dataclass(frozen=True)
class DescriptorError:
    file: str
    document: int | None  # the document's index in the file (0 = first); None: the file as a whole
    field: str
    message: str

    def as_json(self):
        return {"file": self.file, "document": self.document, "field": self.field, "message": self.message}


@dataclass
class ReadResult:
    """What a read found: descriptors with where each came from ((file, document index) by entity key)."""

    descriptors: list = field(default_factory=list)
    origins: dict = field(default_factory=dict)  # (blueprint, identifier) -> (file, document index)
    invalid: set = field(default_factory=set)  # (blueprint, identifier) of descriptors that did not validate
    errors: list = field(default_factory=list)
    files: int = 0
    roots_unread: int = 0  # targets given to read() that could not be read (then a refresh removes nothing)


def _is_url(target):
    return urlsplit(target).scheme in ("http", "https")


def under_file_roots(path, roots):
    """Whether `path`, its links resolved, is one of the directories `roots` (their links resolved) or inside one."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in map(os.path.realpath, roots))


class DescriptorReader:
    def __init__(self, *, file_roots=None, github_token=""):
        self.file_roots = None if file_roots is None else list(file_roots)
        self.github_token = github_token
        self.session = outbound_session(timeout=TIMEOUT_SECONDS)
        self.result, self.seen, self.queue = ReadResult(), set(), []

    def read(self, targets):
        """Read `targets` (paths or URLs) and every Location they lead to."""
        self.queue.extend((target, None) for target in targets)
        while self.queue:
            target, named_in = self.queue.pop(0)
            for source in self._expand(target, named_in):
                if source in self.seen:
                    continue
                if len(self.seen) >= FILES_MAX:
                    self._error(source, None, "target", f"not read: a refresh reads at most {FILES_MAX} files")
                    continue
                self.seen.add(source)
                text = self._text(source, named_in)
                if text is not None:
                    self.result.files += 1
                    self._documents(source, text)
        return self.result

    def github_organization(self, organization, catalog_path):
        """The descriptor URL (GitHub's contents API) of every repository of a GitHub organization, to read; at most
        FILES_MAX repositories."""
        api, org = settings.GITHUB_API_URL.rstrip("/"), quote(organization, safe="")
        urls = []
        for page in range(1, FILES_MAX // 100 + 1):
            repos = self._github_json(f"{api}/orgs/{org}/repos?per_page=100&page={page}")
            urls += [f"{api}/repos/{org}/{quote(repo['name'], safe='')}/contents/{quote(catalog_path.lstrip('/'))}"
                     for repo in repos
                     if isinstance(repo, dict) and isinstance(repo.get("name"), str) and not repo.get("archived")]
            if not repos:
                break
        return urls

    def _github_json(self, url):
        response = self.session.get(url, headers=self._github_headers("application/vnd.github+json"))
        if response.status_code != 200:
            raise PortalError(f"GitHub answered {response.status_code} to GET {url}", path="target", status=502,
                              code="upstream_error")
        value = response.json()
        return value if isinstance(value, list) else []

    def _github_headers(self, accept):
        headers = {"Accept": accept, "X-GitHub-Api-Version": "2022-11-28"}
        if self.github_token:
            headers["Authorization"] = f"Bearer {self.github_token}"
        return headers

    def _expand(self, target, named_in):
        """The sources a target names: itself resolved against the file naming it; a file glob, its matches."""
        if named_in is not None and not _is_url(target):
            target = urljoin(named_in, target) if _is_url(named_in) else os.path.join(os.path.dirname(named_in), target)
        if _is_url(target):
            return [target]
        target = os.path.normpath(os.path.abspath(target))
        if any(ch in target for ch in "*?["):
            return sorted(glob.glob(target))
        return [target]

    def _text(self, source, named_in):
        try:
            return self._url_text(source) if _is_url(source) else self._file_text(source)
        except (OSError, UnicodeDecodeError, OutboundRefused, PortalError) as exc:
            if _is_url(source) and getattr(exc, "status", None) == 404 and self._in_github(source) and named_in is None:
                return None  # a repository of the organization without a descriptor
            if named_in is None:
                self.result.roots_unread += 1
            message = exc.message if isinstance(exc, PortalError) else str(exc)
            self._error(named_in or source, None, "target", f"{source} cannot be read: {message}")
            return None

    def _in_github(self, url):
        return url.startswith(settings.GITHUB_API_URL.rstrip("/") + "/")

    def _file_text(self, path):
        if self.file_roots is not None and not under_file_roots(path, self.file_roots):
            raise PortalError("not under a directory in BACKSTAGE_FILE_ROOTS")
        if os.path.getsize(path) > BYTES_MAX:
            raise PortalError(f"larger than {BYTES_MAX} bytes")
        return Path(path).read_text(encoding="utf-8")

    def _url_text(self, url):
        github = self._in_github(url)
        if not github and not any(url.startswith(prefix) for prefix in settings.BACKSTAGE_URL_ALLOWED_PREFIXES):
            raise PortalError("not under a prefix in BACKSTAGE_URL_ALLOWED_PREFIXES")
        headers = self._github_headers("application/vnd.github.raw") if github else {}
        response = self.session.get(url, headers=headers, stream=True)
        with response:
            if response.status_code != 200:
                raise PortalError(f"answered {response.status_code}", status=response.status_code)
            body = response.raw.read(BYTES_MAX + 1, decode_content=True)
        if len(body) > BYTES_MAX:
            raise PortalError(f"larger than {BYTES_MAX} bytes")
        return body.decode("utf-8")

    def _documents(self, source, text):
        index = -1
        try:
            for index, document in enumerate(yaml.load_all(text, Loader=YAML_LOADER)):
                if document is not None:
                    self._document(source, index, document)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            self._error(source, index + 1, "", f"YAML does not parse{where}: {getattr(exc, 'problem', None) or exc}")

    def _document(self, source, index, document):
        try:
            descriptor = descriptor_parse(self._placeholders_substituted(source, document))
        except PortalError as exc:
            self._error(source, index, exc.path, exc.errors[0].message)
            key = descriptor_key(document)
            if key is not None:
                self.result.invalid.add(key)
            return
        if descriptor is None:
            self._location(source, index, document)
        else:
            self._descriptor(source, index, descriptor)

    def _placeholders_substituted(self, source, document):
        """The document with each spec value written as a placeholder (`definition: {$text: ./openapi.yaml}`) replaced
        by the text of the file or URL it names, relative to the descriptor, read under the same rules. Only spec's
        own values: Backstage writes them there (an API's definition), and a deeper walk could loop on YAML aliases."""
        spec = document.get("spec") if isinstance(document, dict) else None
        if not isinstance(spec, dict):
            return document
        substituted = {}
        for key, value in spec.items():
            if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in PLACEHOLDERS:
                target = next(iter(value.values()))
                if not isinstance(target, str) or not target:
                    raise ValidationFailed("must name a file or a URL", path=f"spec.{key}.{next(iter(value))}")
                resolved = self._expand(target, source)
                try:
                    if len(resolved) != 1:
                        raise PortalError("names no single file")
                    value = self._url_text(resolved[0]) if _is_url(resolved[0]) else self._file_text(resolved[0])
                except (OSError, UnicodeDecodeError, OutboundRefused, PortalError) as exc:
                    message = exc.message if isinstance(exc, PortalError) else str(exc)
                    raise ValidationFailed(f"{target} cannot be read: {message}", path=f"spec.{key}") from None
            substituted[key] = value
        return {**document, "spec": substituted}

    def _descriptor(self, source, index, descriptor: Descriptor):
        if descriptor.key in self.result.origins:
            first_file, first_index = self.result.origins[descriptor.key]
            self._error(source, index, "metadata.name", f"{descriptor.kind}:{descriptor.entity['identifier']} is "
                                                        f"already defined in {first_file} document {first_index}")
            return
        self.result.origins[descriptor.key] = (source, index)
        self.result.descriptors.append(descriptor)

    def _location(self, source, index, document):
        spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
        targets = ([spec["target"]] if "target" in spec else []) + list(spec.get("targets") or [])
        if not targets:
            self._error(source, index, "spec.target", "a Location needs a target or targets")
        for i, target in enumerate(targets):
            if not isinstance(target, str) or not target:
                self._error(source, index, f"spec.targets[{i}]", "must be a path or a URL")
            elif not _is_url(target) and not _is_url(source) and os.path.isabs(target) and self.file_roots is not None:
                self._error(source, index, f"spec.targets[{i}]", "must be relative to its file")
            else:
                self.queue.append((target, source))

    def _error(self, file, document, field_path, message):
        self.result.errors.append(DescriptorError(file=file, document=document, field=field_path, message=message))
