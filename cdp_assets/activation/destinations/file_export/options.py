"""A file export's `options:` in its sync YAML, checked when definitions load: where the files go, in which
format, which fields may hold personal data in clear, and how many past files stay."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import fsspec

from cdp_assets.settings import ConfigError, one_of, reject_unknown

FORMATS = ("csv", "parquet")
DEFAULT_PATH = "data/exports"
DEFAULT_FORMAT = "parquet"
DEFAULT_KEEP = 30
PLACEHOLDERS = ("sync", "date")
KEYS = ("path", "format", "clear", "keep")


def _path(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.path must be a folder or an fsspec URL, such as data/exports/{{sync}}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        raise ConfigError(f"{where}.path {value!r} has an unmatched brace; only {{sync}} and {{date}} may "
                          "appear in it") from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise ConfigError(f"{where}.path may hold {{sync}} and {{date}} only (found {', '.join(unknown)})")
    protocol, _ = fsspec.core.split_protocol(value)
    if protocol:
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ConfigError(f"{where}.path: fsspec knows no {protocol}:// filesystem") from None
        except ImportError as missing:
            raise ConfigError(f"{where}.path: {protocol}:// needs a package that is not installed ({missing})") \
                from None
    return value.strip()


def _clear(where: str, value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.clear must list the output fields that may hold personal data in clear, "
                          "such as [email, first_name]")
    return list(value)


def _keep(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}.keep must be a whole number of past files to keep, at least 1 (default "
                          f"{DEFAULT_KEEP})")
    return value


def export_options(where: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The sync's options, completed with the defaults; a ConfigError naming `where` and the option."""
    reject_unknown(where, options, KEYS)
    return {
        "path": _path(where, options.get("path", DEFAULT_PATH)),
        "format": one_of(f"{where}.format", options.get("format", DEFAULT_FORMAT), FORMATS),
        "clear": _clear(where, options.get("clear")),
        "keep": _keep(where, options.get("keep", DEFAULT_KEEP)),
    }
