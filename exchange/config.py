"""dps_config.yml as typed settings: one frozen dataclass per section (exchange/settings.py),
validated once.

Each section's fields are its keys, with their types and defaults; `load_config` reads the
YAML, expands ${VAR} / ${VAR:-default} from the environment, checks every key and type (one
line naming the file and the key, with a "did you mean" hint for a mistyped key), resolves
paths against the config file's folder and returns a `Config`. Functions take the section they
need (`config.sftp`, `config.folders`), never the whole file as a dict.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from exchange.errors import ConfigError
from exchange.settings import (  # noqa: F401 - re-exported: the sections live there
    DEFAULT_RACE_MAPPING,
    DELIVERY_TARGETS,
    OPEN_SECTIONS,
    SECTIONS,
    ArchiveSettings,
    Config,
    DatabaseSettings,
    DpsFileSettings,
    FolderSettings,
    HealthSettings,
    LogSettings,
    MailSettings,
    MatchingSettings,
    ReceiveSettings,
    ReportSettings,
    RunSettings,
    Sa98Settings,
    SanitySettings,
    SftpSettings,
    SharePointSettings,
    listed,
    mapping,
    path_setting,
)

SECRET_WORDS = ("password", "passphrase", "secret", "token")
ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def default_config_path(script_file: str) -> Path:
    return Path(script_file).resolve().parent / "dps_config.yml"


def load_config(path: Path, environ: dict[str, str] | None = None,
                lenient: bool = False) -> Config:
    """Read, expand ${VAR} from the environment, validate and resolve paths.

    Raises ConfigError with one line naming the file and the key at fault. `lenient` (for
    --status, which only reads the run records) lets unset variables be empty and key files
    be missing, so monitoring needs no secrets.
    """
    environ = dict(os.environ) if environ is None else environ
    path = Path(path).resolve()
    raw = read_yaml(path)
    refuse_literal_url_password(raw, path)
    expanded = expand_env(raw, environ, path, "", lenient)
    check_section_names(expanded, path)
    checker = Checker(path, lenient)
    sections = {name: checker.section(name, cls, section_values(expanded, name, path))
                for name, cls in SECTIONS.items()}
    race_mapping = checker.open_section("race_mapping", DEFAULT_RACE_MAPPING,
                                        section_values(expanded, "race_mapping", path))
    check_file_names(sections["dps_file"], path)
    check_query_name(sections["database"], path)
    check_delivery(sections["reports"], sections["sharepoint"], path, lenient)
    database = sections["database"]
    sections["database"] = dataclasses.replace(
        database, url=resolve_sqlite_url(database.url, path.parent))
    return Config(path=path, race_mapping=race_mapping, **sections)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config {path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"config {path}:{line} not valid YAML") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping of sections at the top")
    return raw


def expand_env(value: Any, environ: dict[str, str], path: Path, key: str,
               lenient: bool = False) -> Any:
    """${VAR} and ${VAR:-default} in every text value, read from `environ`."""
    if isinstance(value, dict):
        return {k: expand_env(v, environ, path, f"{key}.{k}" if key else str(k), lenient)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ, path, key, lenient) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        if lenient:
            return ""
        raise ConfigError(f"config {path}: {key}: environment variable {name} is not set")

    return ENV_PATTERN.sub(substitute, value)


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_section_names(raw: dict[str, Any], path: Path) -> None:
    known = [*SECTIONS, *OPEN_SECTIONS]
    for section in raw:
        if section not in known:
            raise ConfigError(f"config {path}: unknown section '{section}'"
                              f"{did_you_mean(str(section), known)}")


def section_values(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    given = raw.get(name) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"config {path}: {name}: expected a mapping")
    return given


class Checker:
    """Checks one config file's sections against their dataclasses."""

    def __init__(self, path: Path, lenient: bool) -> None:
        self.path = path
        self.lenient = lenient

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"config {self.path}: {message}")

    def refuse_secret_keys(self, section: str, given: dict[str, Any]) -> None:
        for key in given:
            lowered = str(key).lower()
            if any(word in lowered for word in SECRET_WORDS) and not lowered.endswith("_env"):
                raise self.fail(f"{section}.{key}: secrets must not be written in the YAML; "
                                f"put the name of an environment variable in "
                                f"{section}.{key}_env instead")

    def section(self, name: str, cls: type, given: dict[str, Any]) -> Any:
        self.refuse_secret_keys(name, given)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in given:
            if key not in fields:
                raise self.fail(f"unknown key '{name}.{key}'"
                                f"{did_you_mean(str(key), list(fields))}")
        types = typing.get_type_hints(cls)
        values = {}
        for key, spec in fields.items():
            value = given.get(key)
            if value is None:
                if not has_default(spec):
                    raise self.fail(f"{name}.{key}: required setting is missing")
                value = default_of(spec)
            kind = spec.metadata.get("kind") or plain_type(types[key])
            values[key] = self.value(f"{name}.{key}", kind, value)
        return cls(**values)

    def open_section(self, name: str, defaults: dict[str, str],
                     given: dict[str, Any]) -> dict[str, str]:
        """A section of free keys: the defaults when it is empty, else exactly what is given."""
        self.refuse_secret_keys(name, given)
        merged = dict(given) if given else dict(defaults)
        return {str(k): self.value(f"{name}.{k}", str, v) for k, v in merged.items()}

    def value(self, key: str, kind: Any, value: Any) -> Any:
        if kind in ("path", "file", "optional_path"):
            return self.path_value(key, kind, value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
            return int(value)  # ${PORT} expands to text
        if kind is float and isinstance(value, str) and re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*",
                                                                     value):
            return float(value)
        if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind in (int, float) and isinstance(value, bool):
            raise self.fail(f"{key}: expected a number, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(f"{key}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def path_value(self, key: str, kind: str, value: Any) -> Path | None:
        if kind == "optional_path" and not value:
            return None
        if self.lenient and kind == "file":
            kind = "path"   # --status does not open key files
        if self.lenient and value == "":
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key}: expected a path")
        resolved = (self.path.parent / os.path.expanduser(value)).resolve()
        if kind == "file" and not resolved.is_file():
            hint = made_by_the_demo(resolved, self.path)
            raise self.fail(f"{key}: file not found: {resolved}{hint}")
        return resolved


def made_by_the_demo(missing: Path, config_path: Path) -> str:
    """A hint for a missing file under the config's var/demo_* folders: the shipped config
    points at keys the demo makes (a fresh clone has none yet)."""
    demo_folders = (config_path.parent / "var").resolve()
    if missing.is_relative_to(demo_folders) and missing.relative_to(demo_folders).parts[0] \
            .startswith("demo"):
        return " (the demo makes it: run 'bash demo/run_demo.sh' first, or set your own file)"
    return ""


def has_default(spec: dataclasses.Field) -> bool:
    return spec.default is not dataclasses.MISSING or \
        spec.default_factory is not dataclasses.MISSING


def default_of(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def plain_type(annotation: Any) -> type:
    """str, int, float, bool, list or dict from a field's annotation."""
    origin = typing.get_origin(annotation)
    return origin if isinstance(origin, type) else annotation


def refuse_literal_url_password(raw: dict[str, Any], path: Path) -> None:
    """A password written into database.url would sit in the file: refuse it (before ${VAR}
    expansion, so a ${VAR} in its place is fine)."""
    url = (raw.get("database") or {}).get("url")
    match = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url) if isinstance(url, str) else None
    if match and match.group(1) and not ENV_PATTERN.fullmatch(match.group(1)):
        raise ConfigError(f"config {path}: database.url: a password is written into the URL; "
                          f"name an environment variable in database.password_env instead")


def check_file_names(file_settings: DpsFileSettings, path: Path) -> None:
    """The exchanged files' names are names in their folder, never paths out of it."""
    for key in ("send_name", "export_name", "results_name", "counts_name"):
        name = getattr(file_settings, key)
        if not name or "/" in name or "\\" in name or name.strip(".") == "":
            raise ConfigError(f"config {path}: dps_file.{key}: a file name, not a path")


def check_query_name(database: DatabaseSettings, path: Path) -> None:
    """database.caseworker_query names a query in the SQL folder (§10.4), never a path."""
    name = database.caseworker_query
    if name and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"config {path}: database.caseworker_query: the name of a query in "
                          f"database.sql_folder (e.g. caseworker), not a path or a file name")


FOLDER_PLACEHOLDERS = {"fiscal_year": "FY2025", "quarter": "Q3", "period": "FY2025_Q3"}


def check_delivery(reports: ReportSettings, sharepoint: SharePointSettings, path: Path,
                   lenient: bool) -> None:
    """Known targets, and SharePoint names that stay inside the library's folder."""
    targets = reports.deliver_to
    unknown = [t for t in targets if t not in DELIVERY_TARGETS]
    if not targets or unknown:
        raise ConfigError(f"config {path}: reports.deliver_to: expected one or more of "
                          f"{', '.join(DELIVERY_TARGETS)}, got "
                          f"{unknown[0] if unknown else 'nothing'}")
    library = sharepoint.library
    if not library or "/" in library or "\\" in library or library.strip(".") == "":
        raise ConfigError(f"config {path}: sharepoint.library: a library name, not a path")
    try:
        folder = sharepoint.folder.format(**FOLDER_PLACEHOLDERS)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"config {path}: sharepoint.folder: placeholders are {{fiscal_year}}, "
                          f"{{quarter}} and {{period}}") from exc
    if any(part.strip() in ("..", ".") for part in folder.replace("\\", "/").split("/")):
        raise ConfigError(f"config {path}: sharepoint.folder: '..' or '.' would leave the folder")
    if "sharepoint" in targets and not lenient:
        for key in ("tenant_id", "client_id", "site_host", "site_path"):
            if not getattr(sharepoint, key):
                raise ConfigError(f"config {path}: sharepoint.{key}: required when "
                                  f"reports.deliver_to includes sharepoint")


def resolve_sqlite_url(url: str, base: Path) -> str:
    """A relative SQLite file in database.url is relative to the config file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    rest = url[len(prefix):]
    if not rest or rest.startswith(":memory:"):
        return url
    return prefix + str((base / rest).resolve())


def secret_from_env(env_name: str, setting: str) -> str | None:
    """The secret held by the environment variable a `*_env` setting names (None when the
    setting is empty). `setting` is the dotted key, for the error line."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(f"{setting}: environment variable {env_name} is not set")
    return value
